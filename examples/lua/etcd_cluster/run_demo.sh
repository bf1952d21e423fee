#!/bin/sh
# The seed's gate/db cluster with its map kept in etcd and no map file:
# starts etcd on loopback (temporary data dir), the db node, then the
# gate node, each with the seed's own config plus
#   cluster = "etcd://127.0.0.1:PORT/skc/demo"
# Each node announces itself under /skc/demo/nodes/<name> (on a free port)
# and finds the other there.  Prints both outputs and `skc map` of etcd.
#   usage: run_demo.sh [BUILD_DIR]     (default: build, relative to the cwd)
#   SKC_DEMO_ETCD_PORT: etcd's client port (default 23790; peer port + 1)
set -u

. "$(dirname "$0")/../demo_skc.sh" # sets here, skc
seed="$here/../skynet_cluster"
etcd_bin=$(command -v etcd || echo /usr/bin/etcd)
if [ ! -x "$etcd_bin" ]; then
    echo "run_demo: no etcd binary (apt-get install etcd-server)" >&2
    exit 1
fi
port=${SKC_DEMO_ETCD_PORT:-23790}
ep="http://127.0.0.1:$port"
peer="http://127.0.0.1:$((port + 1))"
url="etcd://127.0.0.1:$port/skc/demo"

out=$(mktemp -d "${TMPDIR:-/tmp}/skc-demo-etcd.XXXXXX")
etcd= db= gate=
cleanup() {
    for p in $gate $db $etcd; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$out"
}
trap cleanup EXIT INT TERM

"$etcd_bin" --name demo --data-dir "$out/etcd.data" \
    --listen-client-urls "$ep" --advertise-client-urls "$ep" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "demo=$peer" >"$out/etcd.log" 2>&1 &
etcd=$!
# wait (bounded: 20 s) for `$1` in file $2 while process $3 lives
wait_line() {
    i=0
    while [ $i -lt 200 ]; do
        grep -q "$1" "$2" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "run_demo: no '$1' in $2:" >&2
    cat "$2" >&2
    exit 1
}
wait_line "ready to serve client requests" "$out/etcd.log" "$etcd"

for n in db gate; do
    printf 'include "%s/config_%s"\ncluster = "%s"\n' "$seed" "$n" "$url" \
        >"$out/config_$n"
done

# The configs name their files relative to the seed's directory.
cd "$seed" || exit 1
"$skc" run "$out/config_db" >"$out/db.log" 2>&1 &
db=$!
wait_line "Listen on" "$out/db.log" "$db"
"$skc" run "$out/config_gate" >"$out/gate.log" 2>&1 &
gate=$!
# The gate reloads its map after 1 s and then calls itself: 3 s is plenty.
sleep 3

echo "===== skc map -e $url ====="
"$skc" map -e "$url"
kill "$gate" "$db" 2>/dev/null
wait "$gate" "$db" 2>/dev/null
gate= db=
echo "===== db node (skc run config_db, cluster = \"$url\") ====="
cat "$out/db.log"
echo "===== gate node (skc run config_gate, cluster = \"$url\") ====="
cat "$out/gate.log"
