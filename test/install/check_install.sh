#!/bin/sh
# Installs skc into a temporary prefix and builds a program outside the
# tree against it twice: with find_package(skc) and with pkg-config.
# Usage: check_install.sh SOURCE_DIR BUILD_DIR
set -eu
SRC=$1
BLD=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cmake --install "$BLD" --prefix "$T/prefix" >"$T/install.log"
LIBDIR=$(ls -d "$T"/prefix/lib*/ | head -n1)
test -f "$T/prefix/include/skc/skc.h"
ls "$LIBDIR" | grep -q '^libskc.so.0$' || { echo "no libskc.so.0"; exit 1; }

# 1. CMake package
cmake -S "$SRC/test/install/app" -B "$T/app-cmake" \
    -DCMAKE_PREFIX_PATH="$T/prefix" >"$T/cfg.log"
cmake --build "$T/app-cmake" >"$T/build.log"
LD_LIBRARY_PATH="$LIBDIR" "$T/app-cmake/app"

# 2. pkg-config
PKG_CONFIG_PATH="$LIBDIR/pkgconfig" pkg-config --exists skc
cc -std=c11 "$SRC/test/install/app.c" -o "$T/app-pc" \
    $(PKG_CONFIG_PATH="$LIBDIR/pkgconfig" pkg-config --cflags --libs skc)
LD_LIBRARY_PATH="$LIBDIR" "$T/app-pc"
echo "install check: 2 passed, 0 failed"
