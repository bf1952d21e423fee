#!/bin/sh
# The seed's cluster with both nodes in C: db on 127.0.0.1:7102, then the
# gate on 127.0.0.1:7101, as two processes.  Usage: run_demo.sh [BUILD_DIR]
set -u
B=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mktemp -d)
"$B/bin/simpledb_c" -m "$HERE/clustermap.lua" db >"$OUT/db.log" 2>&1 &
DB=$!
trap 'kill $DB 2>/dev/null; wait $DB 2>/dev/null; rm -rf "$OUT"' EXIT
i=0
while ! grep -q "Database node ready" "$OUT/db.log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $DB 2>/dev/null; then
        echo "db node did not start:"; cat "$OUT/db.log"; exit 1
    fi
    sleep 0.05
done
"$B/bin/gate_c" -m "$HERE/clustermap.lua" >"$OUT/gate.log" 2>&1
rc=$?
kill $DB; wait $DB 2>/dev/null
echo "== db node (C) =="; cat "$OUT/db.log"
echo "== gate node (C) =="; cat "$OUT/gate.log"
exit $rc
