#!/bin/sh
# Fails (and lists the files) when C code is not formatted as .clang-format
# says.  Run by `make test` (ctest skc.format); `scripts/check-format.sh
# --fix` rewrites the files instead.  Needs clang-format 14 (Debian 12's).
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null 2>&1 ||
    { echo "clang-format not found (scripts/deps.sh installs it)"; exit 1; }
files=$(git ls-files 'lib/*.[ch]' 'include/*.h' 'lua/*.[ch]' 'tools/*.c' \
    'bench/*.[ch]' 'examples/*.c' 2>/dev/null ||
    find lib include lua tools bench examples -name '*.[ch]')
if [ "${1:-}" = "--fix" ]; then
    # shellcheck disable=SC2086
    clang-format -i $files
    exit 0
fi
bad=""
for f in $files; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        bad="$bad $f"
    fi
done
if [ -n "$bad" ]; then
    echo "not formatted (run scripts/check-format.sh --fix):$bad"
    exit 1
fi
echo "format: $(echo "$files" | wc -w) files formatted as .clang-format says"
