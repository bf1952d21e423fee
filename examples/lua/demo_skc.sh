# Sourced by the Lua demos' run_demo.sh: sets `here` (the demo's
# directory) and `skc` (the launcher of build directory $1, default
# "build" relative to the cwd), or exits with a message if it is missing.
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
case $build in
/*) ;;
*) build="$PWD/$build" ;;
esac
skc="$build/bin/skc"
if [ ! -x "$skc" ]; then
    echo "run_demo: $skc not found: build first (cmake --build $build)" >&2
    exit 1
fi
