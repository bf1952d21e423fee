"""A multi-process cluster of one C node, one Lua node and one Python node
on one host, sharing one cluster map file (db and lua on ipc:// paths, py
on TCP port 0):

    db   build/bin/simpledb_c -m MAP db     the C simpledb as @sdb
    lua  build/bin/skc run CONFIG           pyclient.lua: the Lua simpledb
                                            as @sdb, calls py and db
    py   this process                       @sdb, @echo, @fail in Python

Every node calls every other one.  Then the C node is killed with calls in
flight: each call ends with an error within its deadline; the node is
restarted on the same address and the next calls succeed without any
action by the caller.

Skips (exit 77, reason printed) only if a needed binary was not built."""

import os
import signal
import threading
import time
import unittest

import skctest
from skctest import skc, Server, TempDir

SIMPLEDB_C = skctest.binary("simpledb_c")
LUA_MISSING = skctest.lua_missing()
MISSING = LUA_MISSING or (
    None if SIMPLEDB_C else "%s was not built (examples/c)"
    % os.path.join(skctest.BIN_DIR, "simpledb_c"))


@unittest.skipIf(MISSING, MISSING)
class Cluster(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)

        # py first: it binds port 0, the others get free ports.
        self.py = skc.Node("py", call_timeout=5)
        self.addCleanup(self.py.close)
        py_addr = self.py.open("127.0.0.1:0")[len("tcp://"):]
        # db and lua listen on ipc:// paths of this test's own directory:
        # no other test can take them, not even while db is down.
        self.db_addr = "ipc://" + self.tmp.join("db.ipc")
        self.mapfile = skctest.write_map(self.tmp.join("clustermap.lua"), {
            "db": self.db_addr,
            "lua": "ipc://" + self.tmp.join("lua.ipc"),
            "py": py_addr,
        }, style="assignments")
        self.py.load_map(self.mapfile)

        self.store = {}
        self.pings = []
        self.pinged = threading.Event()

        def sdb(cmd, *args):
            cmd = cmd.upper()
            if cmd == "PING":
                self.pings.append(args)
                self.pinged.set()
                return None
            if cmd == "GET":
                return self.store.get(args[0])
            if cmd == "SET":
                last = self.store.get(args[0])
                self.store[args[0]] = args[1]
                return (last,)
            raise KeyError("Unknown command %s" % cmd)

        def fail(arg):
            raise ValueError("python says no to %s" % arg)

        self.py.register("sdb", sdb)
        self.py.register("echo", lambda *a: a)
        self.py.register("fail", fail)

        self.db = self.start_db()
        self.srv = Server(self.py)
        self.addCleanup(self.srv.stop)

    def start_db(self):
        db = skctest.Proc([SIMPLEDB_C, "-m", self.mapfile, "db"],
                          name="simpledb_c")
        self.addCleanup(db.kill)
        db.wait_for(r"Database node ready", 20)
        return db

    def client(self, timeout=5):
        """A second Python node for the test thread (py is served by the
        Server thread)."""
        n = skc.Node("py-client", call_timeout=timeout)
        self.addCleanup(n.close)
        n.load_map(self.mapfile)
        return n

    def test_everyone_calls_everyone(self):
        cfg = skctest.lua_config(self.tmp, "config_lua", "pyclient",
                                 self.mapfile, self_node="lua",
                                 py_node="py", c_node="db")
        lua = skctest.start_lua(cfg, self.tmp.path, "lua node")
        self.addCleanup(lua.kill)
        lua.wait_for(r"PYCLIENT DONE", 30)
        out = lua.output()
        # Lua -> Python
        self.assertRegex(out, r"ECHO hello 42 \{x=1\}")
        self.assertRegex(out, r"FAIL false .*ValueError: python says no")
        self.assertRegex(out, r"(?m)SET nil$")
        self.assertRegex(out, r"(?m)GET lua!$")
        self.assertTrue(self.pinged.wait(10), "no PING from Lua")
        self.assertEqual(self.pings, [("ping from lua",)])
        # Lua -> C
        self.assertRegex(out, r"(?m)CGET lua via c$")

        c = self.client()
        # Python -> C: sees what Lua stored there
        self.assertEqual(c.call("db", "@sdb", "GET", "from_lua"),
                         "lua via c")
        self.assertEqual(c.call("db", "@sdb", "GET", "a"), "showsss")
        # Python -> Lua
        self.assertIsNone(c.call("lua", "@sdb", "SET", "from_py", [1, 2]))
        self.assertEqual(c.call("lua", "@sdb", "GET", "from_py"), [1, 2])
        # Python -> Python (the other node of this process)
        self.assertEqual(c.call("py", "@sdb", "GET", "from_lua"), "lua!")
        # a value written by Python into C, read back through Lua's node?
        # (Lua only calls when its script says so; check C directly.)
        c.call("db", "@sdb", "SET", "from_py", {"k": "v"})
        self.assertEqual(c.call("db", "@sdb", "GET", "from_py"), {"k": "v"})
        # queries across languages
        self.assertGreater(c.query("lua", "@sdb"), 0)
        self.assertGreater(c.query("db", "@sdb"), 0)
        self.assertEqual(c.query("py", "@echo"), self.py.lookup("echo"))

    def test_kill_and_restart_c_node(self):
        c = self.client()
        self.assertIsNone(c.call("db", "@sdb", "SET", "k", "before"))
        calls = [c.call_async("db", "@sdb", "GET", "k", timeout=2)
                 for _ in range(50)]
        self.db.kill(signal.SIGKILL)
        t0 = time.monotonic()
        outcomes = []
        for call in calls:
            try:
                outcomes.append(call.result())
            except skc.Error as e:
                outcomes.append(e)
        self.assertLess(time.monotonic() - t0, 2 + 3,
                        "calls outlived their deadline")
        for o in outcomes:
            # answered before the kill, or ended with a clear error
            if isinstance(o, skc.Error):
                self.assertIsInstance(o, (skc.ConnectionLost,
                                          skc.Unreachable, skc.Timeout))
                self.assertTrue(o.detail)
            else:
                self.assertEqual(o, "before")

        # while it is down: a clear error within the deadline
        t0 = time.monotonic()
        with self.assertRaises((skc.Unreachable, skc.ConnectionLost,
                                skc.Timeout)) as cm:
            c.call("db", "@sdb", "GET", "k", timeout=1)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertIn("db", cm.exception.detail)

        # restart on the same address: the next calls succeed
        self.db = self.start_db()
        got = skctest.wait_until(
            lambda: c.call("db", "@sdb", "GET", "a", timeout=1), 15,
            what="calls to the restarted C node")
        self.assertEqual(got, "showsss")
        self.assertIsNone(c.call("db", "@sdb", "GET", "k"))   # new process


if __name__ == "__main__":
    skctest.main()
