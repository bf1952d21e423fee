"""Peer health and groups from Python (issue #12): Node(heartbeat_ms=,
heartbeat_misses=), monitor(), peer_state(), ping(), map_set_group() and
groups in reload(); and the failover scenario with two member processes
(fo_member.py) behind the group db = ["a", "b"]: a is killed with
kill -9 while this node calls db every 50 ms -- the calls go to b within
1.5 s with at most a few errors, the monitor reports a down -- and a is
restarted: the calls return to it and the monitor reports it up."""

import os
import signal
import sys
import time
import unittest

import skctest
from skctest import skc, TempDir

MEMBER = os.path.join(skctest.HERE, "fo_member.py")


class Failover(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.addr = {n: "ipc://" + self.tmp.join(n + ".ipc")
                     for n in ("a", "b")}
        self.members = {}
        for n in ("a", "b"):
            self.start(n)
        self.node = skc.Node("cli", call_timeout=2, heartbeat_ms=200,
                             heartbeat_misses=3)
        self.addCleanup(self.node.close)
        self.events = []
        self.node.monitor(lambda *e: self.events.append(
            (time.monotonic(),) + e))
        self.node.reload({"a": self.addr["a"], "b": self.addr["b"],
                          "db": ["a", "b"]})

    def start(self, name):
        p = skctest.Proc([sys.executable, MEMBER, name, self.addr[name]],
                         name="member " + name)
        self.addCleanup(p.kill)
        p.wait_for(r"^ready$", 30)
        self.members[name] = p

    def wait(self, pred, timeout, what):
        """Polls the node (so its monitor runs) until pred() is true."""
        end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= end:
                self.fail("timed out after %.1fs waiting for %s"
                          % (timeout, what))
            self.node.poll(0.02)

    def test_api(self):
        n = self.node
        self.wait(lambda: n.peer_state("a")[0] == "up"
                  and n.peer_state("b")[0] == "up", 10,
                  "members connected without a call")
        state, detail = n.peer_state("db")
        self.assertEqual(state, "up")
        self.assertIn("group (failover)", detail)
        self.assertIn(self.addr["a"], n.peer_state("a")[1])
        self.assertEqual(n.peer_state("ghost")[0], "unknown")
        self.assertEqual(n.map_get("db"), '{"a","b"}')

        rtt = n.ping("a")
        self.assertIsInstance(rtt, float)
        self.assertTrue(0 < rtt < 2, rtt)
        self.assertGreater(n.ping("db", timeout=1), 0)
        with self.assertRaises(skc.UnknownNode):
            n.ping("ghost", timeout=0.2)

        n.map_set_group("rr", ["a", "b"], policy="roundrobin")
        self.assertEqual(n.map_get("rr"), '{"a","b",policy="roundrobin"}')
        self.assertEqual({n.call("rr", "who") for _ in range(4)}, {"a", "b"})

        # statistics: this node's, then member a's over the network
        st = n.stats()
        self.assertEqual(st["node"], "cli")
        self.assertEqual(st["version"], skc.version_string())
        self.assertGreaterEqual(st["counters"]["calls_ok"], 6)
        self.assertEqual(st["peers"]["a"]["address"], self.addr["a"])
        self.assertEqual(st["peers"]["a"]["state"], "up")
        self.assertEqual(st["peers"]["db"]["group"], "failover")
        self.assertEqual(st["peers"]["db"]["members"], ["a", "b"])
        self.assertIn("ENONODE", st["counters"]["calls_failed"])
        sa = n.stats("a", timeout=2)
        self.assertEqual(sa["node"], "a")
        self.assertGreaterEqual(sa["counters"]["calls_in"], 2)
        self.assertGreaterEqual(sa["gauges"]["connections_in"], 1)
        with self.assertRaises(skc.UnknownNode):
            n.stats("ghost", timeout=0.2)
        with self.assertRaises(skc.Error):
            n.map_set_group("bad", ["db"])         # a group as a member
        with self.assertRaises(skc.Error):
            n.map_set_group("bad", ["a"], policy="nearest")

        n.reload({"sdb": {"members": ["b", "a"], "policy": "random"},
                  "c": "ipc://" + self.tmp.join("c.ipc")})
        self.assertEqual(n.map_get("sdb"), '{"b","a",policy="random"}')
        self.assertEqual(n.map_get("c"), "ipc://" + self.tmp.join("c.ipc"))
        with self.assertRaises(skc.MapSyntaxError) as cm:
            n.reload({"d": "ipc://" + self.tmp.join("d.ipc"),
                      "bad": {"members": ["a"], "policy": "nearest"}})
        self.assertIn("group 'bad'", cm.exception.detail)
        with self.assertRaises(skc.MapSyntaxError):
            n.reload({"bad": []})
        with self.assertRaises(ValueError):
            n.reload({"bad": {"member": ["a"]}})
        for name in ("d", "bad"):
            with self.assertRaises(skc.UnknownNode):
                n.map_get(name)                      # nothing applied

        with self.assertRaises(ValueError):
            skc.Node(heartbeat_ms=-2)
        with self.assertRaises(ValueError):
            skc.Node(heartbeat_misses=0)
        skc.Node(heartbeat_ms=-1).close()

        seen = []
        cb = n.monitor(lambda *e: seen.append(e))
        self.assertTrue(n.unmonitor(cb))
        self.assertFalse(n.unmonitor(cb))

    def test_kill_and_restart_first_member(self):
        n = self.node
        self.wait(lambda: n.peer_state("a")[0] == "up"
                  and n.peer_state("b")[0] == "up", 10, "members up")
        results = []

        def call_once():
            t = time.monotonic()
            try:
                results.append((t, True, n.call("db", "who", timeout=1)))
            except skc.Error as e:
                results.append((t, False, e))
            n.poll(0.05)        # every 50 ms; the monitor runs here too

        for _ in range(6):
            call_once()
        self.assertEqual([r[2] for r in results], ["a"] * 6)

        before = len(self.events)
        t_kill = time.monotonic()
        self.members["a"].kill(signal.SIGKILL)
        while time.monotonic() - t_kill < 10:
            call_once()
            if results[-1][1] and results[-1][2] == "b":
                break
        after = [r for r in results if r[0] >= t_kill]
        switched = [r for r in after if r[1] and r[2] == "b"]
        self.assertTrue(switched, "no call reached b: %r" % after)
        self.assertLessEqual(switched[0][0] - t_kill, 1.5,
                             "switched to b too late: %r" % after)
        errors = [r[2] for r in after if not r[1]]
        self.assertLessEqual(len(errors), 3, errors)
        for e in errors:
            self.assertIsInstance(e, (skc.ConnectionLost, skc.Unreachable,
                                      skc.NodeDown))
        self.wait(lambda: any(e[1:3] == ("a", "down")
                              for e in self.events[before:]), 5,
                  "the monitor to report a down")
        self.assertEqual(n.peer_state("a")[0], "down")
        self.assertEqual(n.peer_state("db")[0], "up")

        before = len(self.events)
        t_restart = time.monotonic()
        self.start("a")
        while time.monotonic() - t_restart < 20:
            call_once()
            if results[-1][1] and results[-1][2] == "a":
                break
        self.assertEqual(results[-1][2], "a",
                         "calls did not return to a after its restart")
        ups = [e for e in self.events[before:] if e[1:3] == ("a", "up")]
        self.assertTrue(ups, self.events)
        self.assertEqual(ups[0][3], "connected")
        for _ in range(3):
            call_once()
        self.assertEqual([r[2] for r in results[-3:]], ["a"] * 3)


if __name__ == "__main__":
    skctest.main()
