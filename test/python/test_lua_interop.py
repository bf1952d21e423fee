"""Python and Lua nodes in one cluster, as separate processes:

- Python calls the seed's Lua simpledb (examples/lua/skynet_cluster run by
  `skc run config_db`);
- the seed's Lua gate (`skc run config_gate`) calls a Python simpledb that
  stands in for the db node, and prints what real skynet prints;
- a Lua service (test/python/lua/pyclient.lua) calls Python services, sees
  a Python handler's error, and sends to Python.

Skips (exit 77, reason printed) only if build/bin/skc or the Lua example
is absent."""

import re
import threading
import unittest

import skctest
from skctest import skc, Server, TempDir

MISSING = skctest.lua_missing()


@unittest.skipIf(MISSING, MISSING)
class PythonCallsLuaSimpledb(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.db_port = skctest.free_port()
        cls.dir = skctest.example_copy(cls.tmp, {
            "gate": "127.0.0.1:%d" % skctest.free_port(),
            "db": "127.0.0.1:%d" % cls.db_port,
        })
        cls.db = skctest.start_lua("config_db", cls.dir, "lua db")
        try:
            cls.db.wait_for(r"Database node ready", 20)
        except BaseException:
            cls.db.kill()
            cls.tmp.cleanup()
            raise
        cls.node = skc.Node("py", call_timeout=5)
        cls.node.load_map(cls.dir + "/clustermap.lua")

    @classmethod
    def tearDownClass(cls):
        cls.node.close()
        cls.db.kill()
        cls.tmp.cleanup()

    def test_seed_output(self):
        # db.lua prints the SET's old value and the GET's value.
        out = self.db.output()
        self.assertRegex(out, r"(?m)^nil$")
        self.assertRegex(out, r"(?m)^showsss$")
        self.assertIn("Listen on", out)

    def test_get_set(self):
        n = self.node
        self.assertEqual(n.call("db", "@sdb", "GET", "a"), "showsss")
        self.assertIsNone(n.call("db", "@sdb", "SET", "py1", "v1"))
        self.assertEqual(n.call("db", "@sdb", "GET", "py1"), "v1")
        self.assertEqual(n.call("db", "@sdb", "SET", "py1", "v2"), "v1")
        self.assertIsNone(n.call("db", "@sdb", "GET", "never set"))
        # lower case command, as simpledb upper-cases it
        self.assertEqual(n.call("db", "@sdb", "get", "py1"), "v2")

    def test_values_round_trip_through_lua(self):
        n = self.node
        cases = [42, -7, 2 ** 40, 1.5, True, False, "héllo ☃",
                 [1, 2, 3], {"name": "Alice", "level": 10},
                 {"nested": [1, {"k": "v"}]}]
        for i, v in enumerate(cases):
            key = "t%d" % i
            n.call("db", "@sdb", "SET", key, v)
            self.assertEqual(n.call("db", "@sdb", "GET", key), v, key)
        # Lua strings are bytes: bin comes back as a str whose non-UTF-8
        # bytes are surrogate escapes, and packs back to the same bytes.
        n.call("db", "@sdb", "SET", "bin", b"\xff\x00ok")
        got = n.call("db", "@sdb", "GET", "bin")
        self.assertEqual(got.encode("utf-8", "surrogateescape"),
                         b"\xff\x00ok")

    def test_send_ping_is_logged_by_lua(self):
        self.node.send("db", "@sdb", "PING", "hello from python")
        self.db.wait_for(r"ping hello from python", 10)
        long = "x" * 50
        self.node.send("db", "@sdb", "PING", long)
        self.db.wait_for(re.escape("ping " + "x" * 20 + "...(50)"), 10)

    def test_lua_error_is_handler_error(self):
        with self.assertRaises(skc.HandlerError) as cm:
            self.node.call("db", "@sdb", "FOO")
        self.assertIn("Unknown command FOO", cm.exception.detail)
        self.assertIn("db", cm.exception.detail)

    def test_no_service(self):
        with self.assertRaises(skc.NoService):
            self.node.call("db", "@nothere")

    def test_query_and_call_by_handle(self):
        h = self.node.query("db", "@sdb")
        self.assertIsInstance(h, int)
        self.assertGreater(h, 0)
        self.assertEqual(self.node.call("db", h, "GET", "a"), "showsss")

    def test_many_async_calls(self):
        n = self.node
        calls = [n.call_async("db", "@sdb", "SET", "k%d" % i, i)
                 for i in range(200)]
        for c in calls:
            self.assertIsNone(c.result())
        self.assertEqual([n.call("db", "@sdb", "GET", "k%d" % i)
                          for i in (0, 99, 199)], [0, 99, 199])

    def test_proxy(self):
        p = self.node.proxy("db", "@sdb")
        p.call("SET", "proxied", "yes")
        self.assertEqual(p.call("GET", "proxied"), "yes")


@unittest.skipIf(MISSING, MISSING)
class LuaGateCallsPythonDb(unittest.TestCase):
    """The seed's gates.lua, unchanged, against a Python db node."""

    def test_seed_gate(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        node = skc.Node()
        self.addCleanup(node.close)
        db_addr = "127.0.0.1:%d" % skctest.free_port()
        d = skctest.example_copy(tmp, {
            "gate": "127.0.0.1:%d" % skctest.free_port(),
            "db": db_addr,
        })
        node.load_map(d + "/clustermap.lua")
        node.open("db")
        self.assertEqual(node.name, "db")
        calls = []
        h = skctest.simpledb(calls, set_one_value=False)
        node.register("sdb", h)
        srv = Server(node)
        self.addCleanup(srv.stop)

        gate = skctest.start_lua("config_gate", d, "lua gate")
        self.addCleanup(gate.kill)
        data = re.escape('{name="Alice", level=10}')
        gate.wait_for(r"proxy ", 20)
        gate.wait_for(data, 20)
        skctest.wait_until(lambda: gate.count(data) >= 2, 20,
                           what="the gate's second GET")
        gate.wait_for(r"Cluster config updated!", 20)
        gate.wait_for(r"hishow", 20)
        self.assertEqual(h.db, {"player_1001": '{name="Alice", level=10}'})
        self.assertEqual(calls[0],
                         ("SET", "player_1001", '{name="Alice", level=10}'))
        self.assertEqual(calls[1:], [("GET", "player_1001")] * 2)
        self.assertIsNone(srv.error)


@unittest.skipIf(MISSING, MISSING)
class LuaCallsPythonServices(unittest.TestCase):
    def test_pyclient(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        node = skc.Node("py")
        self.addCleanup(node.close)
        py_addr = node.open("127.0.0.1:0")
        lua_addr = "127.0.0.1:%d" % skctest.free_port()
        mapfile = skctest.write_map(tmp.join("clustermap.lua"), {
            "py": py_addr[len("tcp://"):], "lua": lua_addr})
        node.load_map(mapfile)

        sdb = skctest.simpledb(set_one_value=False)
        pings = []
        done = threading.Event()

        def sdb_with_ping(cmd, *args):
            if cmd == "PING":
                pings.append(args)
                done.set()
            return sdb(cmd, *args)

        def fail(arg):
            raise ValueError("python says no to %s" % arg)

        node.register("sdb", sdb_with_ping)
        node.register("echo", lambda *args: args)
        node.register("fail", fail)
        srv = Server(node)
        self.addCleanup(srv.stop)

        cfg = skctest.lua_config(tmp, "config_pyclient", "pyclient", mapfile,
                                 self_node="lua", py_node="py")
        lua = skctest.start_lua(cfg, tmp.path, "lua pyclient")
        self.addCleanup(lua.kill)
        lua.wait_for(r"PYCLIENT DONE", 20)
        out = lua.output()
        self.assertRegex(out, r"ECHO hello 42 \{x=1\}")
        self.assertRegex(out, r"FAIL false .*ValueError: python says no to "
                              r"boom")
        # a Python handler returning None replies with no values
        self.assertRegex(out, r"(?m)\] SET$")
        self.assertRegex(out, r"(?m)GET lua!$")
        self.assertTrue(done.wait(10), "PING from Lua not received")
        self.assertEqual(pings, [("ping from lua",)])
        self.assertEqual(sdb.db["from_lua"], "lua!")

        # and the other way: the Lua node's simpledb, from the test thread
        # through a second Python node
        with skc.Node("py2", call_timeout=5) as n2:
            n2.load_map(mapfile)
            self.assertIsNone(n2.call("lua", "@sdb", "SET", "k", "v"))
            self.assertEqual(n2.call("lua", "@sdb", "GET", "k"), "v")


if __name__ == "__main__":
    skctest.main()
