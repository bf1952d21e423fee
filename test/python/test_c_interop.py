"""Python and C nodes as separate processes:

- Python calls the C simpledb (examples/c, build/bin/simpledb_c);
- the C gate (build/bin/gate_c) calls a Python simpledb standing in for
  the db node and runs the seed's whole gate script to its end.

Skips (exit 77, reason printed) only if those binaries were not built."""

import os
import unittest

import skctest
from skctest import skc, Server, TempDir

SIMPLEDB_C = skctest.binary("simpledb_c")
GATE_C = skctest.binary("gate_c")


def missing(name):
    return "%s was not built (examples/c, SKC_BUILD_EXAMPLES=ON)" % \
        os.path.join(skctest.BIN_DIR, name)


@unittest.skipUnless(SIMPLEDB_C, missing("simpledb_c"))
class PythonCallsCSimpledb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.mapfile = skctest.write_map(cls.tmp.join("clustermap.lua"), {
            "db": "127.0.0.1:%d" % skctest.free_port()})
        cls.db = skctest.Proc([SIMPLEDB_C, "-m", cls.mapfile, "db"],
                              name="simpledb_c")
        try:
            cls.db.wait_for(r"Database node ready", 20)
        except BaseException:
            cls.db.kill()
            cls.tmp.cleanup()
            raise
        cls.node = skc.Node("py", call_timeout=5)
        cls.node.load_map(cls.mapfile)

    @classmethod
    def tearDownClass(cls):
        cls.node.close()
        cls.db.kill()
        cls.tmp.cleanup()

    def test_seed_output(self):
        out = self.db.output()
        self.assertRegex(out, r"(?m)^nil$")
        self.assertRegex(out, r"(?m)^showsss$")

    def test_get_set(self):
        n = self.node
        self.assertEqual(n.call("db", "@sdb", "GET", "a"), "showsss")
        self.assertIsNone(n.call("db", "@sdb", "SET", "c1", "v1"))
        self.assertEqual(n.call("db", "@sdb", "GET", "c1"), "v1")
        self.assertEqual(n.call("db", "@sdb", "SET", "c1", "v2"), "v1")
        self.assertIsNone(n.call("db", "@sdb", "GET", "never set"))
        self.assertEqual(n.call("db", ".SIMPLEDB", "GET", "c1"), "v2")

    def test_values_round_trip_through_c(self):
        n = self.node
        cases = [42, -7, 2 ** 40, 2 ** 64 - 1, 1.5, True, False, None,
                 "héllo ☃", b"\xff\x00bin", [1, 2, 3],
                 {"name": "Alice", "level": 10},
                 {"nested": [1, {"k": "v"}]}]
        for i, v in enumerate(cases):
            key = "t%d" % i
            n.call("db", "@sdb", "SET", key, v)
            self.assertEqual(n.call("db", "@sdb", "GET", key), v, key)

    def test_send_ping(self):
        self.node.send("db", "@sdb", "PING", "hello from python")
        self.db.wait_for(r"ping hello from python", 10)

    def test_c_error_is_handler_error(self):
        with self.assertRaises(skc.HandlerError) as cm:
            self.node.call("db", "@sdb", "FOO")
        self.assertIn("Unknown command FOO", cm.exception.detail)

    def test_no_service(self):
        with self.assertRaises(skc.NoService):
            self.node.call("db", "@nothere")

    def test_query_and_call_by_handle(self):
        h = self.node.query("db", "@sdb")
        self.assertEqual(h, self.node.query("db", ".SIMPLEDB"))
        self.assertEqual(self.node.call("db", h, "GET", "a"), "showsss")

    def test_many_async_calls(self):
        n = self.node
        calls = [n.call_async("db", "@sdb", "SET", "k%d" % i, i)
                 for i in range(300)]
        for c in calls:
            self.assertIsNone(c.result())
        self.assertEqual(n.call("db", "@sdb", "GET", "k299"), 299)

    def test_big_value(self):
        v = "x" * (1 << 20)
        self.node.call("db", "@sdb", "SET", "big", v)
        self.assertEqual(self.node.call("db", "@sdb", "GET", "big"), v)


@unittest.skipUnless(GATE_C, missing("gate_c"))
class CGateCallsPythonDb(unittest.TestCase):
    def test_gate_c(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        mapfile = skctest.write_map(tmp.join("clustermap.lua"), {
            "gate": "127.0.0.1:%d" % skctest.free_port(),
            "db": "127.0.0.1:%d" % skctest.free_port()})
        node = skc.Node()
        self.addCleanup(node.close)
        node.load_map(mapfile)
        node.open("db")
        calls = []
        h = skctest.simpledb(calls)
        handle = node.register("sdb", h)
        srv = Server(node)
        self.addCleanup(srv.stop)

        gate = skctest.Proc([GATE_C, "-m", mapfile], name="gate_c")
        self.addCleanup(gate.kill)
        try:
            rc = gate.p.wait(timeout=30)
        except Exception:
            self.fail("gate_c did not finish:\n" + gate.output())
        gate.kill()
        out = gate.output()
        self.assertEqual(rc, 0, out)
        self.assertIn("proxy :%08x" % handle, out)
        self.assertEqual(out.count('{name="Alice", level=10}'), 2, out)
        self.assertIn("Cluster config updated!", out)
        self.assertRegex(out, r"(?m)^hishow$")
        self.assertRegex(out, r"DB query failed: ENODEDOWN")
        self.assertEqual(h.db, {"player_1001": '{name="Alice", level=10}'})
        self.assertEqual(calls, [
            ("SET", "player_1001", '{name="Alice", level=10}'),
            ("GET", "player_1001"), ("GET", "player_1001")])
        self.assertIsNone(srv.error)


if __name__ == "__main__":
    skctest.main()
