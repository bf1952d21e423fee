#!/bin/sh
# Runs the seed's two-node cluster on skc: the db node, then the gate node,
# as two processes on loopback (127.0.0.1:7101/7102 from clustermap.lua),
# and prints both outputs.
#   usage: run_demo.sh [BUILD_DIR]     (default: build, relative to the cwd)
set -u

. "$(dirname "$0")/../demo_skc.sh"   # sets here, skc

out=$(mktemp -d "${TMPDIR:-/tmp}/skc-demo.XXXXXX")
db=
gate=
cleanup() {
    [ -n "$gate" ] && kill "$gate" 2>/dev/null
    [ -n "$db" ] && kill "$db" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$out"
}
trap cleanup EXIT INT TERM

# The configs name their files relative to this directory, as skynet's do
# relative to where skynet is started.
cd "$here" || exit 1

"$skc" run config_db >"$out/db.log" 2>&1 &
db=$!

# Wait (at most 10 s) until the db node listens.
i=0
while [ $i -lt 100 ]; do
    grep -q "Listen on" "$out/db.log" 2>/dev/null && break
    kill -0 "$db" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done

"$skc" run config_gate >"$out/gate.log" 2>&1 &
gate=$!

# The gate reloads its map after 1 s and then calls itself: 3 s is plenty.
sleep 3

kill "$gate" "$db" 2>/dev/null
wait 2>/dev/null
gate=
db=

echo "===== db node (skc run config_db) ====="
cat "$out/db.log"
echo "===== gate node (skc run config_gate) ====="
cat "$out/gate.log"
