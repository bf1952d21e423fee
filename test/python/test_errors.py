"""Every failure raises the skc.Error subclass for its kind, with a detail
that says what happened and where, and within the call's deadline."""

import time
import unittest

import skctest
from skctest import skc, Server, TempDir


class Errors(unittest.TestCase):
    def setUp(self):
        self.d = TempDir()
        self.addCleanup(self.d.cleanup)
        self.n = skc.Node("me", call_timeout=5)
        self.addCleanup(self.n.close)
        self.addr = self.n.open("127.0.0.1:0")
        self.n.map_set("me", self.addr)

    def assertQuick(self, t0, limit):
        took = time.monotonic() - t0
        self.assertLess(took, limit, "took %.2fs" % took)

    def test_error_attributes(self):
        with self.assertRaises(skc.NoService) as cm:
            self.n.call("me", "@nobody")
        e = cm.exception
        self.assertIsInstance(e, skc.Error)
        self.assertEqual(e.code, -6)
        self.assertEqual(e.name, "ENOSERVICE")
        self.assertEqual(e.strerror, skc.strerror(-6))
        self.assertTrue(e.detail)
        self.assertIn("nobody", e.detail)
        self.assertTrue(str(e).startswith("ENOSERVICE: "))

    def test_unknown_node_nowaiting(self):
        self.n.reload({"__nowaiting": True})
        t0 = time.monotonic()
        with self.assertRaises(skc.UnknownNode) as cm:
            self.n.call("ghost", "@sdb", "GET", "a")
        self.assertQuick(t0, 1.0)
        self.assertIn("ghost", cm.exception.detail)
        with self.assertRaises(skc.UnknownNode):
            self.n.send("ghost", "@sdb", "PING", "x")

    def test_unknown_node_waits_until_deadline(self):
        t0 = time.monotonic()
        with self.assertRaises((skc.Timeout, skc.UnknownNode)) as cm:
            self.n.call("ghost", "@sdb", timeout=0.3)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.25)
        self.assertLess(took, 3.0)
        self.assertIn("ghost", cm.exception.detail)

    def test_unknown_node_defined_by_reload_while_waiting(self):
        self.n.register("echo", lambda *a: a)
        c = self.n.call_async("late", "@echo", "hi", timeout=5)
        self.n.poll(0.2)
        self.assertFalse(c.done())
        self.n.reload({"late": self.addr})
        self.assertEqual(c.result(), "hi")

    def test_node_down(self):
        self.n.reload({"db": False})
        t0 = time.monotonic()
        with self.assertRaises(skc.NodeDown) as cm:
            self.n.call("db", "@sdb", "GET", "a")
        self.assertQuick(t0, 1.0)
        self.assertIn("db", cm.exception.detail)
        with self.assertRaises(skc.NodeDown):
            self.n.send("db", "@sdb", "PING", "x")
        with self.assertRaises(skc.NodeDown):
            self.n.query("db", "@sdb")

    def test_unreachable(self):
        port = skctest.free_port()
        self.n.map_set("dead", "127.0.0.1:%d" % port)
        t0 = time.monotonic()
        with self.assertRaises((skc.Unreachable, skc.Timeout)) as cm:
            self.n.call("dead", "@sdb", timeout=2)
        self.assertQuick(t0, 4.0)
        self.assertIn(str(port), cm.exception.detail)

    def test_no_service(self):
        with self.assertRaises(skc.NoService):
            self.n.call("me", "@missing")
        with self.assertRaises(skc.NoService):
            self.n.query("me", "@missing")
        with self.assertRaises(skc.NoService):
            self.n.lookup("missing")
        with self.assertRaises(skc.NoService):
            self.n.unregister("missing")

    def test_handler_error_text(self):
        def bad(key):
            raise ValueError("bad key %r" % key)

        self.n.register("bad", bad)
        with self.assertRaises(skc.HandlerError) as cm:
            self.n.call("me", "@bad", "k")
        self.assertIn("ValueError: bad key 'k'", cm.exception.detail)

    def test_handler_wrong_arity(self):
        self.n.register("one", lambda x: x)
        with self.assertRaises(skc.HandlerError) as cm:
            self.n.call("me", "@one", 1, 2)
        self.assertIn("TypeError", cm.exception.detail)

    def test_unencodable_reply(self):
        self.n.register("set", lambda: {1, 2})
        with self.assertRaises(skc.HandlerError) as cm:
            self.n.call("me", "@set")
        self.assertIn("TypeError", cm.exception.detail)

    def test_malformed_payloads(self):
        self.n.register("echo", lambda *a: a)
        with self.assertRaises(skc.HandlerError) as cm:
            self.n.call_raw("me", "@echo", b"\x92\x01")   # truncated
        self.assertIn("ProtocolError", cm.exception.detail)
        self.n.register("junk", lambda data: b"\xc1", raw=True)
        with self.assertRaises(skc.ProtocolError):
            self.n.call("me", "@junk")

    def test_timeout(self):
        other = skc.Node("slow")
        self.addCleanup(other.close)
        other.register("sleep", lambda s: time.sleep(s))
        self.n.map_set("slow", other.open("127.0.0.1:0"))
        srv = Server(other)
        self.addCleanup(srv.stop)
        t0 = time.monotonic()
        with self.assertRaises(skc.Timeout) as cm:
            self.n.call("slow", "@sleep", 1.5, timeout=0.3)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.25)
        self.assertLess(took, 1.3)
        self.assertTrue(cm.exception.detail)

    def test_default_timeout_from_node_option(self):
        other = skc.Node("slow")
        self.addCleanup(other.close)
        other.register("sleep", lambda s: time.sleep(s))
        addr = other.open("127.0.0.1:0")
        srv = Server(other)
        self.addCleanup(srv.stop)
        with skc.Node("quick", call_timeout=0.3) as n:
            n.map_set("slow", addr)
            t0 = time.monotonic()
            with self.assertRaises(skc.Timeout):
                n.call("slow", "@sleep", 1.5)
            self.assertLess(time.monotonic() - t0, 1.3)

    def test_too_big(self):
        with skc.Node("small", max_msg_size=1024) as n:
            n.map_set("me", self.addr)
            self.n.register("echo", lambda *a: a)
            with self.assertRaises(skc.TooBig):
                n.call("me", "@echo", b"x" * 4096)
            with self.assertRaises(skc.TooBig):
                n.send("me", "@echo", b"x" * 4096)

    def test_reply_too_big_for_caller(self):
        other = skc.Node("big")
        self.addCleanup(other.close)
        other.register("big", lambda n: b"x" * n)
        addr = other.open("127.0.0.1:0")
        srv = Server(other)
        self.addCleanup(srv.stop)
        with skc.Node("small", max_msg_size=1024) as n:
            n.map_set("big", addr)
            self.assertEqual(len(n.call("big", "@big", 10)), 10)
            with self.assertRaises(skc.TooBig):
                n.call("big", "@big", 4096)

    def test_closed(self):
        n = skc.Node("x")
        n.close()
        with self.assertRaises(skc.Closed):
            n.open("127.0.0.1:0")
        with self.assertRaises(skc.Closed):
            n.register("a", lambda: None)

    def test_pending_calls_end_when_node_closes(self):
        n = skc.Node("x")
        got = []                 # "ghost" is not in the map: the call waits
        c = n.call_async("ghost", "@x", timeout=30,
                         callback=lambda e, r: got.append(e))
        n.close()
        self.assertTrue(c.done())
        self.assertIsInstance(c.error, skc.Closed)
        self.assertEqual(len(got), 1)

    def test_map_syntax_error(self):
        p = self.d.write("bad.lua", 'db = "127.0.0.1:7102"\ngate = \n')
        with self.assertRaises(skc.MapSyntaxError) as cm:
            self.n.load_map(p)
        self.assertIn("bad.lua:", cm.exception.detail)
        with self.assertRaises(skc.MapSyntaxError):
            self.n.parse_map("return { x = }", "inline")
        # nothing was merged
        with self.assertRaises(skc.UnknownNode):
            self.n.map_get("db")

    def test_map_file_missing(self):
        with self.assertRaises(skc.FileError) as cm:
            self.n.load_map(self.d.join("absent.lua"))
        self.assertIn("absent.lua", cm.exception.detail)

    def test_reload_without_file(self):
        with skc.Node("fresh") as n:
            with self.assertRaises(skc.StateError):
                n.reload()

    def test_name_exists(self):
        self.n.register("x", lambda: 1)
        with self.assertRaises(skc.Exists):
            self.n.register("x", lambda: 2)
        self.assertEqual(self.n.call("me", "@x"), 1)

    def test_address_in_use(self):
        with skc.Node("y") as n:
            with self.assertRaises((skc.Exists, skc.TransportError)):
                n.open(self.addr)

    def test_invalid_arguments(self):
        with self.assertRaises(skc.InvalidArgument):
            self.n.register("@" + "x" * 300, lambda: 1)
        with self.assertRaises(ValueError):
            self.n.call("me", "@x", timeout=-1)
        with self.assertRaises(TypeError):
            self.n.call(1, "@x")
        with self.assertRaises(TypeError):
            self.n.register("y", "not callable")

    def test_busy_inside_handler(self):
        seen = []

        def h():
            for f in (lambda: self.n.poll(0), self.n.run, self.n.close):
                try:
                    f()
                except skc.Busy as e:
                    seen.append(e.name)
            return len(seen)

        self.n.register("h", h)
        self.assertEqual(self.n.call("me", "@h"), 3)
        self.assertEqual(seen, ["EBUSY"] * 3)
        self.assertFalse(self.n.closed)

    def test_no_reply(self):
        kept = []

        def h():
            d = self.n.message.defer()
            d.abandon()

        def h2():
            kept.append(self.n.message.defer())
            kept[-1].abandon()

        self.n.register("h", h)
        self.n.register("h2", h2)
        with self.assertRaises(skc.NoReply):
            self.n.call("me", "@h")
        with self.assertRaises(skc.NoReply):
            self.n.call("me", "@h2")

    def test_state_errors(self):
        kept = []

        def h():
            d = self.n.message.defer()
            d.reply(1)
            kept.append(d)
            with self.assertRaises(skc.StateError):
                self.n.message.defer()
            kept.append(self.n.message)

        self.n.register("h", h)
        self.assertEqual(self.n.call("me", "@h"), 1)
        with self.assertRaises(skc.StateError):
            kept[0].reply(2)
        with self.assertRaises(skc.StateError):
            kept[1].defer()          # the handler has returned

        def s():
            with self.assertRaises(skc.StateError):
                self.n.message.defer()
            kept.append("send checked")

        self.n.register("s", s)
        self.n.send("me", "@s")
        skctest.wait_until(lambda: self.n.poll(0.1) is not None and
                           "send checked" in kept, 5, what="send handled")

    def test_deferred_fail(self):
        def h():
            self.n.message.defer().fail(KeyError("k"))

        self.n.register("h", h)
        with self.assertRaises(skc.HandlerError) as cm:
            self.n.call("me", "@h")
        self.assertIn("KeyError", cm.exception.detail)


if __name__ == "__main__":
    skctest.main()
