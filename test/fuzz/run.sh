#!/bin/sh
# run.sh -- builds the libFuzzer targets with clang and runs each one over a
# fresh copy of its checked-in corpus.
#
#   test/fuzz/run.sh [short|long] [OUTDIR]
#
#   short  ~5 s per target (`make test`, via ctest skc.system.fuzz)
#   long   5 min per target (`make fuzz`)
#   FUZZ_SECONDS overrides the time per target; FUZZ_TARGETS the list
#   (default "wire map unpack"); CLANG the compiler.
#
# Targets, corpora, binaries and logs go to OUTDIR (default
# ${TMPDIR:-/tmp}/skc-fuzz); the checked-in corpus is never written.  New
# inputs found in a long run stay in OUTDIR/corpus-<name> (copy the
# interesting ones into test/fuzz/corpus/<name> by hand).  A crash makes
# this script fail and prints the reproducer's path and the log's end.
# Exit 77 (ctest: skipped) with a printed reason if clang or its fuzzer
# runtime is missing -- never a silent pass.
set -u
MODE=${1:-short}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${2:-${TMPDIR:-/tmp}/skc-fuzz}
CLANG=${CLANG:-clang}
TARGETS=${FUZZ_TARGETS:-"wire map unpack"}
case $MODE in
    short) SECS=${FUZZ_SECONDS:-5} ;;
    long) SECS=${FUZZ_SECONDS:-300} ;;
    *) echo "usage: $0 [short|long] [OUTDIR]" >&2; exit 2 ;;
esac

if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "SKIPPED: clang not found ($CLANG); install clang to fuzz"
    exit 77
fi
mkdir -p "$OUT" || exit 1
probe="$OUT/probe.c"
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
    '{ (void)d; (void)n; return 0; }' > "$probe"
if ! "$CLANG" -fsanitize=fuzzer "$probe" -o "$OUT/probe" \
    >"$OUT/probe.log" 2>&1; then
    echo "SKIPPED: $CLANG cannot build with -fsanitize=fuzzer:"
    tail -3 "$OUT/probe.log"
    exit 77
fi

CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror \
 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 -I$SRC/include -I$SRC/lib"

sources() {
    case $1 in
        wire) echo "$SRC/lib/wire.c $SRC/lib/error.c $SRC/lib/util.c" ;;
        map) echo "$SRC/lib/map.c $SRC/lib/maplex.c $SRC/lib/url.c $SRC/lib/error.c $SRC/lib/util.c" ;;
        unpack) echo "$SRC/lib/value.c $SRC/lib/error.c $SRC/lib/util.c" ;;
    esac
}
libs() {
    case $1 in
        unpack) pkg-config --cflags --libs msgpack ;;
    esac
}

status=0
for t in $TARGETS; do
    bin="$OUT/fuzz_$t"
    # shellcheck disable=SC2046,SC2086
    if ! "$CLANG" $CFLAGS $(sources "$t") "$SRC/test/fuzz/fuzz_$t.c" \
        $(libs "$t") -o "$bin" >"$OUT/build-$t.log" 2>&1; then
        echo "fuzz_$t: BUILD FAILED"
        cat "$OUT/build-$t.log"
        status=1
        continue
    fi
    corpus="$OUT/corpus-$t"
    if [ "$MODE" = short ]; then
        rm -rf "$corpus"
    fi
    mkdir -p "$corpus" "$OUT/crashes-$t"
    cp "$SRC/test/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null
    log="$OUT/fuzz-$t.log"
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -max_len=70000 -print_final_stats=1 \
        -artifact_prefix="$OUT/crashes-$t/" "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        echo "fuzz_$t: FAILED (exit $rc) after ${runs:-?} runs; log $log"
        ls "$OUT/crashes-$t/" 2>/dev/null | sed 's/^/  reproducer: /'
        tail -40 "$log"
        status=1
    else
        echo "fuzz_$t: ${SECS} s, ${runs:-?} runs, ${cov:-cov ?}," \
            "$(ls "$corpus" | wc -l) corpus inputs, no failure"
    fi
done
exit $status
