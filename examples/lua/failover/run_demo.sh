#!/bin/sh
# The seed's fault scenario 1 on skc (issue #12): three processes on
# loopback -- db_main, db_backup and the gate (clustermap.lua) -- where the
# gate calls the group db = { "db_main", "db_backup" } every 100 ms.
# db_main is killed with kill -9 mid-run: the gate's monitor prints
# "DB node unreachable!" / "Switch to backup node" and its calls go to
# db_backup; db_main is restarted: the calls return to it.  The gate's
# output is shown as it happens, the db nodes' at the end.
#   usage: run_demo.sh [BUILD_DIR]     (default: build, relative to the cwd)
set -u

. "$(dirname "$0")/../demo_skc.sh"   # sets here, skc

out=$(mktemp -d "${TMPDIR:-/tmp}/skc-failover.XXXXXX")
main=
backup=
gate=
tailer=
cleanup() {
    for pid in $gate $main $backup $tailer; do
        kill "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$out"
}
trap cleanup EXIT INT TERM

# Waits (at most $3 s, default 10) until file $1 has a line matching $2
# after its first $4 lines (default 0).
wait_for() {
    i=0
    while [ $i -lt $((${3:-10} * 10)) ]; do
        tail -n +$((${4:-0} + 1)) "$1" 2>/dev/null | grep -q "$2" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    echo "run_demo: no '$2' in $1 after ${3:-10} s:" >&2
    cat "$1" >&2
    return 1
}

lines() {
    wc -l <"$1"
}

# The gate's output goes to gate.log (appended, so the markers below land
# between its lines in order) and is shown as it grows.
gatelog="$out/gate.log"
say() {
    echo "----- $* -----" >>"$gatelog"
}

# The configs name their files relative to this directory.
cd "$here" || exit 1

"$skc" run config_db_main >"$out/db_main.log" 2>&1 &
main=$!
"$skc" run config_db_backup >"$out/db_backup.log" 2>&1 &
backup=$!
wait_for "$out/db_main.log" "ready" || exit 1
wait_for "$out/db_backup.log" "ready" || exit 1

: >"$gatelog"
tail -s 0.1 -n +1 -f "$gatelog" &
tailer=$!
say "gate (skc run config_gate): calls db every 100 ms"
"$skc" run config_gate >>"$gatelog" 2>&1 &
gate=$!
wait_for "$gatelog" "answered by db_main" || exit 1
sleep 1.5

say "kill -9 db_main (pid $main)"
n=$(lines "$gatelog")
kill -9 "$main"
wait "$main" 2>/dev/null
main=
wait_for "$gatelog" "answered by db_backup" 10 "$n" || exit 1
sleep 1.5

say "restart db_main"
n=$(lines "$gatelog")
"$skc" run config_db_main >"$out/db_main2.log" 2>&1 &
main=$!
# skc redials a lost node with backoff (100 ms doubling to 5 s): the gate
# finds db_main again within a few seconds of its restart.
wait_for "$gatelog" "answered by db_main" 20 "$n" || exit 1
sleep 1.5

kill "$gate" "$main" "$backup" 2>/dev/null
wait "$gate" "$main" "$backup" 2>/dev/null
gate=
main=
backup=
sleep 0.3
kill "$tailer" 2>/dev/null
wait 2>/dev/null
tailer=

echo "===== db_main (first run, killed) ====="
cat "$out/db_main.log"
echo "===== db_main (restarted) ====="
cat "$out/db_main2.log"
echo "===== db_backup ====="
cat "$out/db_backup.log"
