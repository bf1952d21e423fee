#!/bin/sh
# vs-skynet.sh SKYNET_DIR [--build DIR] [--runs N] [--warm ms] [--dur ms]
#              [--cases call1,call16,...] [--no-raw]
#
# skc against a real skynet build (issue #15).  The same Lua bench
# (bench/vs_skynet/: vs_server.lua and vs_client.lua, written with skynet's
# API only) runs on SKYNET_DIR's skynet and on skc's launcher (<build>/bin/skc
# run CONFIG), one fresh server + client process pair per sample, on
# 127.0.0.1.  For every run and case the two go one after the other, and
# which goes first alternates.  Cases: small calls with 1, 16 and 128
# coroutines in flight (calls/s), one-way sends counted at the receiver
# (msgs/s), 64 KiB and 1 MiB replies (MB/s), and for each the client +
# server CPU per operation (us, /proc/PID/stat utime+stime over the
# window).  Raw NNG (skc_bench raw_server/raw_client, 32 B echo) is
# measured beside the 1 and 16 in flight cases, for reference.
#
# SKYNET_DIR must hold a built skynet (`make linux`; without jemalloc:
# `make linux MALLOC_STATICLIB= SKYNET_DEFINES=-DNOUSE_JEMALLOC`).  Its
# commit is read with git, or from $SKYNET_COMMIT for an exported tree.
# Prints the table (medians over the runs; ratio = median of the per-run
# ratios, with their range).  Exits 1 if a sample failed, 2 on bad usage.
set -eu

usage() {
    echo "usage: $0 SKYNET_DIR [--build DIR] [--runs N] [--warm ms]" \
        "[--dur ms] [--cases a,b,...] [--no-raw]" >&2
    exit 2
}

die() {
    echo "vs-skynet: $*" >&2
    exit 2
}

[ $# -ge 1 ] || usage
case $1 in
-*) usage ;;
esac
skynet_dir=$1
shift
src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build
runs=3
warm=300
dur=2000
cases=call1,call16,call128,send,blob64k,blob1m
raw=1
while [ $# -gt 0 ]; do
    case $1 in
    --build) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --runs) [ $# -ge 2 ] || usage; runs=$2; shift 2 ;;
    --warm) [ $# -ge 2 ] || usage; warm=$2; shift 2 ;;
    --dur) [ $# -ge 2 ] || usage; dur=$2; shift 2 ;;
    --cases) [ $# -ge 2 ] || usage; cases=$2; shift 2 ;;
    --no-raw) raw=0; shift ;;
    *) usage ;;
    esac
done
for n in "$runs" "$warm" "$dur"; do
    case $n in
    '' | *[!0-9]*) usage ;;
    esac
done
[ "$runs" -ge 1 ] || usage

# A missing or unbuilt skynet is an error, never a silent skip.
[ -d "$skynet_dir" ] || die "SKYNET_DIR '$skynet_dir' is not a directory"
skynet_dir=$(cd "$skynet_dir" && pwd)
for f in skynet cservice/snlua.so luaclib/skynet.so lualib/skynet.lua \
    lualib/skynet/cluster.lua service/clusterd.lua; do
    if [ ! -e "$skynet_dir/$f" ]; then
        die "$skynet_dir is not a built skynet ($f is missing; build it" \
            "with: make linux MALLOC_STATICLIB= SKYNET_DEFINES=-DNOUSE_JEMALLOC)"
    fi
done
[ -x "$skynet_dir/skynet" ] || die "$skynet_dir/skynet is not executable"
build=$(cd "$build" 2>/dev/null && pwd) || die "no build directory (make build)"
skc=$build/bin/skc
[ -x "$skc" ] || die "$skc is not built (make build)"
[ -f "$build/lua/skc.so" ] || die "$build/lua/skc.so is not built (make build)"
bench=$build/bin/skc_bench
if [ "$raw" = 1 ] && [ ! -x "$bench" ]; then
    echo "vs-skynet: $bench not built: no raw NNG column" >&2
    raw=0
fi
lua=$(command -v lua5.4) || die "lua5.4 is needed for the report"

skynet_commit=${SKYNET_COMMIT:-}
if [ -z "$skynet_commit" ]; then
    skynet_commit=$(git -C "$skynet_dir" rev-parse HEAD 2>/dev/null) ||
        skynet_commit="unknown (not a git checkout; set SKYNET_COMMIT)"
fi
skc_rev=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$src" status --porcelain \
    --untracked-files=no -- lib include lua 2>/dev/null)" ]; then
    skc_rev="$skc_rev + uncommitted changes"
fi

vsdir=$src/bench/vs_skynet
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vs-skynet.XXXXXX")
results=$tmp/results.tsv
: >"$results"
live=
cleanup() {
    for p in $live; do
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export VS_SKYNET_DIR="$skynet_dir" VS_BENCH_DIR="$vsdir"
export VS_WARM_MS="$warm" VS_DUR_MS="$dur"
VS_CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
export VS_CLK_TCK
limit=$(((warm + dur) / 1000 + 60)) # seconds a client may take

# start_server IMPL LOG: starts vs_server.lua; sets srv_pid and port.
start_server() {
    : >"$2" # exists before the server's shell opens it: read below
    if [ "$1" = skynet ]; then
        VS_START=vs_server VS_SRV=- VS_SRV_PID=- VS_CASE=- \
            "$skynet_dir/skynet" "$vsdir/config.skynet" >"$2" 2>&1 &
    else
        VS_START=vs_server VS_SRV=- VS_SRV_PID=- VS_CASE=- \
            "$skc" run "$vsdir/config.skc" >"$2" 2>&1 &
    fi
    srv_pid=$!
    live="$live $srv_pid"
    port=
    i=0
    while [ $i -lt 200 ]; do
        port=$(sed -n 's/.*VS_LISTEN \([0-9][0-9]*\).*/\1/p' "$2" | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.05
        i=$((i + 1))
    done
    echo "vs-skynet: the $1 server did not start; its log:" >&2
    tail -n 20 "$2" >&2
    return 1
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# sample RUN CASE IMPL: one server + client pair; appends a line
# "run case impl value cpu_us" to the results.
sample() {
    r=$1 c=$2 impl=$3
    log=$tmp/$impl-$c-$r
    if [ "$impl" = raw ]; then
        sample_raw "$@"
        return $?
    fi
    start_server "$impl" "$log.srv" || return 1
    if [ "$impl" = skynet ]; then
        set -- "$skynet_dir/skynet" "$vsdir/config.skynet"
    else
        set -- "$skc" run "$vsdir/config.skc"
    fi
    VS_START=vs_client VS_SRV="127.0.0.1:$port" VS_SRV_PID=$srv_pid \
        VS_CASE=$c timeout -k 5 "$limit" "$@" >"$log.cli" 2>&1 || true
    stop_pid "$srv_pid"
    record "$r" "$c" "$impl" "$log.cli"
}

# Raw NNG: skc_bench's raw server (exits when its stdin closes) and client.
sample_raw() {
    r=$1 c=$2
    case $c in
    call1) k=1 ;;
    call16) k=16 ;;
    *) return 0 ;;
    esac
    mkfifo "$log.in"
    : >"$log.srv"
    "$bench" raw_server --addr tcp://127.0.0.1:0 --max-serving 128 \
        <"$log.in" >"$log.srv" 2>&1 &
    srv_pid=$!
    live="$live $srv_pid"
    exec 3>"$log.in"
    url=
    i=0
    while [ $i -lt 200 ] && [ -z "$url" ]; do
        url=$(sed -n 's/^ADDR \([^ ]*\).*/\1/p' "$log.srv")
        [ -n "$url" ] || sleep 0.05
        i=$((i + 1))
    done
    if [ -n "$url" ]; then
        SKC_BENCH_SERVER_PID=$srv_pid timeout -k 5 "$limit" "$bench" \
            raw_client --addr "$url" --case call --inflight "$k" --size 32 \
            --echo 1 --warm "$warm" --dur "$dur" >"$log.cli" 2>&1 || true
    fi
    exec 3>&-
    stop_pid "$srv_pid"
    record "$r" "$c" raw "$log.cli"
}

# Reads the RESULT line of a client log into the results.
record() {
    line=$(grep -o 'RESULT .*' "$4" | head -n 1 || true)
    val=$(echo "$line" | awk -v c="$2" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        if (v["ops"] == "" || v["secs"] <= 0 || v["errors"] > 0) exit
        if (v["mbps"] != "") print v["mbps"], v["cpu_us"]
        else print v["ops"] / v["secs"], v["cpu_us"]
    }')
    if [ -z "$val" ]; then
        echo "vs-skynet: run $1 $2 on $3 failed; the client's log:" >&2
        tail -n 20 "$4" >&2
        failures=$((failures + 1))
        return 0
    fi
    echo "$1 $2 $3 $val" >>"$results"
    printf '  %-6s %-8s %s\n' "$3" "$2" "$val" >&2
}

echo "skynet: $skynet_dir, commit $skynet_commit" >&2
echo "skc: $src at $skc_rev, launcher $skc" >&2
load0=$(cut -d' ' -f1-3 /proc/loadavg)
failures=0
r=1
while [ "$r" -le "$runs" ]; do
    ci=0
    for c in $(echo "$cases" | tr ',' ' '); do
        echo "[run $r/$runs] $c" >&2
        if [ $(((r + ci) % 2)) = 0 ]; then
            order="skynet skc raw"
        else
            order="skc skynet raw"
        fi
        for impl in $order; do
            if [ "$impl" = raw ] && [ "$raw" = 0 ]; then
                continue
            fi
            sample "$r" "$c" "$impl" || failures=$((failures + 1))
        done
        ci=$((ci + 1))
    done
    r=$((r + 1))
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "skc against skynet: the same skynet-API Lua bench (bench/vs_skynet/)," \
    "tcp 127.0.0.1, thread = 2"
echo "skynet commit $skynet_commit; skc $skc_rev"
echo "$runs run(s) x $(awk -v d="$dur" 'BEGIN { print d / 1000 }') s per" \
    "case; $(nproc) CPUs; load average $load0 at start, $load1 at end"
"$lua" "$vsdir/report.lua" "$results" "$runs"
[ "$failures" -eq 0 ] || {
    echo "vs-skynet: $failures sample(s) failed" >&2
    exit 1
}
