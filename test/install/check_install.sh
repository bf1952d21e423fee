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

# 4. pip: a wheel built from bindings/python (pyproject.toml), installed
#    into a directory of its own, loads the installed libskc by its SONAME;
#    its version is skc.h's.
HDR_VERSION=$(sed -n 's/^#define SKC_VERSION_STRING "\(.*\)"$/\1/p' \
    "$T/prefix/include/skc/skc.h")
if /usr/bin/python3 -c 'import setuptools' 2>/dev/null &&
    /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
    cp -r "$SRC/bindings/python" "$T/pysrc" # setuptools writes beside it
    /usr/bin/python3 -m pip wheel -q --no-deps --no-build-isolation \
        --no-index -w "$T/wheel" "$T/pysrc" >"$T/pip.log" 2>&1 ||
        { cat "$T/pip.log"; echo "FAIL: pip wheel"; exit 1; }
    WHEEL=$(ls "$T"/wheel/skc-*.whl)
    case "$WHEEL" in
    */skc-"$HDR_VERSION"-*) ;;
    *) echo "FAIL: wheel $WHEEL is not version $HDR_VERSION"; exit 1 ;;
    esac
    /usr/bin/python3 -m pip install -q --no-deps --no-index \
        --target "$T/pipsite" "$WHEEL" >"$T/pip.log" 2>&1 ||
        { cat "$T/pip.log"; echo "FAIL: pip install"; exit 1; }
    (cd "$T" && LD_LIBRARY_PATH="$LIBDIR" PYTHONPATH="$T/pipsite" \
        /usr/bin/python3 -c '
import skc, sys
assert skc.__file__.startswith(sys.argv[1]), skc.__file__
n = skc.Node("outside-pip")
assert n.open("inproc://outside-pip").startswith("inproc://")
n.close()
print("pip wheel: ok")' "$T/pipsite")
    passed=$((passed + 1))
else
    echo "pip or setuptools missing (python3-pip, python3-setuptools): pip not checked"
fi

# 5. LuaRocks: the rockspec (bindings/lua) lists every Lua source, has
#    skc.h's version, and `luarocks make` builds the module against the
#    installed libskc; the skynet layer loads from the rock tree.
ROCKSPEC="$SRC/bindings/lua/skc-$HDR_VERSION-1.rockspec"
test -f "$ROCKSPEC" || { echo "FAIL: no $ROCKSPEC"; exit 1; }
for f in $(cd "$SRC" && ls lua/*.c && find lua -name '*.lua'); do
    grep -q "\"$f\"" "$ROCKSPEC" || { echo "FAIL: $f not in $ROCKSPEC"; exit 1; }
done
if [ "$LUA_BUILT" != "OFF" ] && command -v luarocks >/dev/null 2>&1; then
    # From a copy: the builtin build writes its objects beside the sources.
    mkdir -p "$T/rocksrc" && cp -r "$SRC/lua" "$T/rocksrc/"
    (cd "$T/rocksrc" && luarocks --lua-version 5.4 make --tree "$T/rocks" \
        "$ROCKSPEC" SKC_DIR="$T/prefix" SKC_LIBDIR="$LIBDIR" \
        >"$T/rocks.log" 2>&1) ||
        { cat "$T/rocks.log"; echo "FAIL: luarocks make"; exit 1; }
    RLIB=$(ls -d "$T"/rocks/lib/lua/5.4)
    RSHARE=$(ls -d "$T"/rocks/share/lua/5.4)
    LD_LIBRARY_PATH="$LIBDIR" LUA_CPATH="$RLIB/?.so" LUA_PATH="$RSHARE/?.lua" \
        lua5.4 -e '
local skc = require "skc"
assert(skc.version())
assert(package.searchpath("skynet.cluster", package.path):find("rocks", 1, true))
require "skynet.queue"
print("luarocks make: ok")'
    passed=$((passed + 1))
else
    echo "luarocks missing (Debian package luarocks): luarocks make not checked"
fi
echo "install check: $passed passed, 0 failed"
