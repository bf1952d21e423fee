#!/bin/sh
# run.sh <builddir> [--quick] [skc_bench run options...]
#
# Runs the benchmark (skc against raw NNG, see bench/CMakeLists.txt), prints
# the table and writes <builddir>/bench/results.json (results-quick.json
# with --quick, so a test run does not overwrite a real one).
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 <builddir> [--quick] [options]" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
shift
src=$(cd "$(dirname "$0")/.." && pwd)
bench="$build/bin/skc_bench"
if [ ! -x "$bench" ]; then
    echo "run.sh: $bench is not built (cmake -DSKC_BUILD_BENCH=ON)" >&2
    exit 1
fi

json="$build/bench/results.json"
for a in "$@"; do
    if [ "$a" = "--quick" ]; then
        json="$build/bench/results-quick.json"
    fi
done
mkdir -p "$build/bench"

# The Lua rows need the binding: <build>/lua/skc.so that loads.
lua_bin=$(command -v lua5.4 || true)
lua_so="$build/lua/skc.so"
set -- --json "$json" "$@"
if [ -z "$lua_bin" ]; then
    set -- --no-lua "lua5.4 not installed" "$@"
elif [ ! -f "$lua_so" ]; then
    set -- --no-lua "Lua binding not built" "$@"
elif ! LUA_CPATH="$build/lua/?.so;;" LUA_PATH="$src/lua/?.lua;;" \
        "$lua_bin" -e 'require "skc"' >/dev/null 2>&1; then
    set -- --no-lua "Lua binding does not load" "$@"
else
    set -- --lua-bin "$lua_bin" --lua-script "$src/bench/lua_client.lua" \
        --lua-cpath "$build/lua/?.so" --lua-path "$src/lua/?.lua" "$@"
fi

# The Python rows need Debian's python3 and the binding importing the
# libskc just built.
py_bin=/usr/bin/python3
py_lib="$build/lib/libskc.so"
if [ ! -x "$py_bin" ]; then
    set -- --no-py "$py_bin not installed" "$@"
elif [ ! -f "$py_lib" ]; then
    set -- --no-py "libskc.so not built" "$@"
elif ! PYTHONPATH="$src/bindings/python" SKC_LIBRARY="$py_lib" \
        "$py_bin" -c 'import skc' >/dev/null 2>&1; then
    set -- --no-py "Python binding does not load" "$@"
else
    set -- --py-bin "$py_bin" --py-script "$src/bench/python_client.py" \
        --py-path "$src/bindings/python" --py-lib "$py_lib" "$@"
fi

# Which code was measured (the table is only meaningful with it).
# GIT_OPTIONAL_LOCKS=0: only read, never refresh the index others use.
rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$src" status --porcelain \
        --untracked-files=no -- lib include 2>/dev/null)" ]; then
    rev="$rev + uncommitted changes in lib/ or include/"
fi
echo "skc source: $rev"
exec "$bench" run "$@"
