#!/usr/bin/python3
"""python_client.py -- the Python binding's call rate, for skc_bench.

    python3 python_client.py <addr> <inflight> <size> <warm_ms> <dur_ms>

Keeps <inflight> calls to @echo on the bench server in flight with
Node.call_async_raw(): each completion, which runs inside Node.poll() on
this thread, starts the next call.  Prints "RESULT ops=N secs=S errors=E"
like the C clients.  Needs the skc package on PYTHONPATH and SKC_LIBRARY
(bench/run.sh passes both).
"""

import sys
import time

import skc


def main():
    addr = sys.argv[1]
    inflight = int(sys.argv[2])
    size = int(sys.argv[3])
    warm_s = int(sys.argv[4]) / 1000.0
    dur_s = int(sys.argv[5]) / 1000.0

    node = skc.Node("benchpy")
    node.map_set("srv", addr)
    # The first call dials and says hello; retry until the server answers.
    deadline = time.monotonic() + 10
    while True:
        try:
            node.call_raw("srv", "@echo", b"hi", timeout=2)
            break
        except skc.Error as exc:
            if time.monotonic() > deadline:
                sys.stderr.write("python_client: cannot reach the server: "
                                 "%s\n" % exc)
                return 1

    payload = b"x" * size
    state = {"ops": 0, "errors": 0, "active": 0, "stop": False}

    def done(error, _reply):
        state["active"] -= 1
        if error is None:
            state["ops"] += 1
        else:
            state["errors"] += 1
            if not state["stop"]:
                sys.stderr.write("python_client: call failed: %s\n" % error)
            return
        if not state["stop"]:
            start()

    def start():
        state["active"] += 1
        node.call_async_raw("srv", "@echo", payload, callback=done,
                            timeout=30)

    for _ in range(inflight):
        start()

    t_start = time.monotonic()
    while time.monotonic() - t_start < warm_s:
        node.poll(0.02)
    c0, t0 = state["ops"], time.monotonic()
    while time.monotonic() - t0 < dur_s:
        node.poll(0.02)
    c1, t1 = state["ops"], time.monotonic()
    state["stop"] = True
    drain_until = time.monotonic() + 10
    while state["active"] > 0 and time.monotonic() < drain_until:
        node.poll(0.02)

    sys.stdout.write("RESULT ops=%d secs=%.6f errors=%d\n"
                     % (c1 - c0, t1 - t0, state["errors"]))
    sys.stdout.flush()
    node.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
