#!/bin/sh
# soak.sh -- the load test of issue #6 between two processes.
#
#   test/system/soak.sh BUILD_DIR [short|long]
#
#   long  (`make soak`): 1,000,000 calls, 64 in flight, payloads 32 B to
#         1 MiB, plus a send every 8 calls; zero errors; RSS of both
#         processes flat after warm-up.  Then the same shorter run under
#         valgrind (both processes, 5,000 calls) and under ASan+UBSan
#         (50,000 calls, in an ASan build tree: $SKC_ASAN_BUILD, default
#         <source>/build-asan, configured and built here if missing).
#   short: 50,000 calls (what `make test` runs as skc.system.soak) and the
#         valgrind run with 1,500 calls.
#
# Every run prints a "FIGURE soak ..." line; they are also appended to
# BUILD_DIR/soak-results.txt for docs/RELIABILITY.md.
set -u
B=${1:?usage: soak.sh BUILD_DIR [short|long]}
MODE=${2:-short}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
case $B in /*) ;; *) B=$(pwd)/$B ;; esac
RESULTS=$B/soak-results.txt
status=0

run() { # name, command...
    name=$1
    shift
    echo "== soak: $name"
    out=$("$@" 2>&1)
    rc=$?
    echo "$out" | grep -v '^\[soak\] [0-9]* calls,' | tail -20
    echo "$out" | grep 'FIGURE soak' |
        sed "s/^/$(date -u +%Y-%m-%dT%H:%MZ) $name: /" >>"$RESULTS"
    if [ $rc -ne 0 ]; then
        echo "== soak: $name FAILED (exit $rc)"
        status=1
    fi
}

for f in "$B/bin/sys_soak" "$B/bin/skc_sysnode"; do
    [ -x "$f" ] || { echo "missing $f: build first (make build)"; exit 1; }
done

if [ "$MODE" = long ]; then
    CALLS=1000000 VG_CALLS=5000 ASAN_CALLS=50000
else
    CALLS=50000 VG_CALLS=1500 ASAN_CALLS=0
fi

run "calls=$CALLS" "$B/bin/sys_soak" "$B/bin/skc_sysnode" "$CALLS" --rss

if command -v valgrind >/dev/null 2>&1 &&
    ! grep -q 'SKC_SANITIZE:BOOL=ON' "$B/CMakeCache.txt" 2>/dev/null; then
    VG="valgrind -q --fair-sched=yes --leak-check=full"
    VG="$VG --errors-for-leak-kinds=definite,possible"
    VG="$VG --suppressions=$SRC/test/valgrind.supp --error-exitcode=99"
    # shellcheck disable=SC2086
    SKC_SYS_SLOW=6 SKC_SYS_WRAP="$VG" run "valgrind calls=$VG_CALLS" \
        $VG "$B/bin/sys_soak" "$B/bin/skc_sysnode" "$VG_CALLS" \
        --inflight 16 --max-size 262144
else
    echo "== soak: valgrind run SKIPPED (valgrind missing or ASan build)"
fi

if [ "$ASAN_CALLS" -gt 0 ]; then
    A=${SKC_ASAN_BUILD:-$SRC/build-asan}
    if [ ! -f "$A/CMakeCache.txt" ]; then
        cmake -S "$SRC" -B "$A" -DCMAKE_BUILD_TYPE=Debug -DSKC_WERROR=ON \
            -DSKC_SANITIZE=ON -DSKC_BUILD_BENCH=OFF >/dev/null || status=1
    fi
    if cmake --build "$A" --target sys_soak skc_sysnode \
        -j"$(nproc 2>/dev/null || echo 2)" >/dev/null; then
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            run "asan calls=$ASAN_CALLS" "$A/bin/sys_soak" \
            "$A/bin/skc_sysnode" "$ASAN_CALLS"
    else
        echo "== soak: ASan build in $A FAILED"
        status=1
    fi
fi
[ $status -eq 0 ] && echo "== soak: all runs passed ($RESULTS)"
exit $status
