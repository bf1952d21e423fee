#!/bin/sh
# header_test.sh -- skc.h compiles alone as strict C and as C++.
#
#   header_test.sh SRCDIR INCLUDEDIR OUTDIR [LIBRARY]
#
# C:   every C compiler found (gcc, clang) compiles header_c99.c with
#      -std=c99 -pedantic -Werror -Wall -Wextra and friends, and -std=c11.
# C++: every C++ compiler found (g++, clang++) compiles header_cxx.cc with
#      -std=c++11 (and c++17) -Wall -Wextra -pedantic -Werror; with LIBRARY
#      it also links against it (proving C linkage) and runs the program
#      (checking skc_version() against the header).
# The project's CMake enables C only, so this script drives the compilers.
# Needs at least one C and one C++ compiler; exits 77 (skip) otherwise.
set -u

SRC=$1
INC=$2
OUT=$3
LIB=${4:-}
mkdir -p "$OUT"

fail=0
ccs=0
cxxs=0

CWARN="-pedantic -Werror -Wall -Wextra -Wstrict-prototypes \
-Wold-style-definition -Wmissing-prototypes -Wshadow -Wundef -Wcast-qual \
-Wconversion -Wsign-conversion"
CXXWARN="-pedantic -Werror -Wall -Wextra -Wshadow -Wundef -Wcast-qual \
-Wold-style-cast -Wconversion -Wsign-conversion"

run() {
    echo "+ $*"
    if ! "$@"; then
        echo "FAIL: $*"
        fail=1
        return 1
    fi
}

for cc in gcc clang; do
    command -v "$cc" >/dev/null 2>&1 || { echo "skip: no $cc"; continue; }
    ccs=$((ccs + 1))
    for std in c99 c11; do
        # shellcheck disable=SC2086
        run "$cc" -std=$std $CWARN -I"$INC" -c "$SRC/header_c99.c" \
            -o "$OUT/header_$cc.$std.o"
    done
done

for cxx in g++ clang++; do
    command -v "$cxx" >/dev/null 2>&1 || { echo "skip: no $cxx"; continue; }
    cxxs=$((cxxs + 1))
    for std in c++11 c++17; do
        # shellcheck disable=SC2086
        run "$cxx" -std=$std $CXXWARN -I"$INC" -c "$SRC/header_cxx.cc" \
            -o "$OUT/header_$cxx.$std.o" || continue
        [ -n "$LIB" ] || continue
        exe="$OUT/header_$cxx.$std"
        run "$cxx" -o "$exe" "$OUT/header_$cxx.$std.o" "$LIB" || continue
        ldpath=$(dirname "$LIB")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        run env LD_LIBRARY_PATH="$ldpath" "$exe"
    done
done

if [ "$ccs" -eq 0 ] || [ "$cxxs" -eq 0 ]; then
    echo "SKIP: need a C compiler (gcc/clang) and a C++ compiler" \
        "(g++/clang++); found $ccs and $cxxs"
    exit 77
fi
if [ "$fail" -ne 0 ]; then
    echo "header test FAILED"
    exit 1
fi
echo "ok: skc.h compiles alone as C99/C11 ($ccs compilers) and C++" \
    "($cxxs compilers)"
exit 0
