#!/bin/sh
# Installs skc into a temporary prefix and builds a program outside the
# tree against it twice: with find_package(skc) and with pkg-config.
# Usage: check_install.sh SOURCE_DIR BUILD_DIR [LUA_BUILT=ON|OFF]
set -eu
SRC=$1
BLD=$2
LUA_BUILT=${3:-ON}
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
passed=1

# 2. pkg-config
PKG_CONFIG_PATH="$LIBDIR/pkgconfig" pkg-config --exists skc
cc -std=c11 "$SRC/test/install/app.c" -o "$T/app-pc" \
    $(PKG_CONFIG_PATH="$LIBDIR/pkgconfig" pkg-config --cflags --libs skc)
LD_LIBRARY_PATH="$LIBDIR" "$T/app-pc"
passed=$((passed + 1))
# 3. the Python package, the Lua module and the launcher from the prefix
PYDIR=$(ls -d "$T"/prefix/lib/python3*/dist-packages 2>/dev/null | head -n1)
if [ -n "$PYDIR" ]; then
    (cd "$T" && PYTHONPATH="$PYDIR" /usr/bin/python3 -c '
import skc
n = skc.Node("outside")
assert n.open("inproc://outside-py").startswith("inproc://")
n.close()
print("outside python: ok")')
    passed=$((passed + 1))
else
    echo "FAIL: the Python package was not installed"; exit 1
fi
if [ -f "$LIBDIR/lua/5.4/skc.so" ]; then
    LUA_CPATH="$LIBDIR/lua/5.4/?.so" LUA_PATH="$T/prefix/share/lua/5.4/?.lua" \
        lua5.4 -e 'local skc = require "skc"; assert(skc.version()); print("outside lua: ok")'
    "$T/prefix/bin/skc" version
    passed=$((passed + 2))
elif [ "$LUA_BUILT" = "OFF" ]; then
    echo "Lua module not built (SKC_BUILD_LUA=OFF): not checked"
else
    echo "FAIL: the Lua module was not installed"; exit 1
fi
echo "install check: $passed passed, 0 failed"
