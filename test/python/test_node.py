"""skc.Node inside one process: listening, services, call/send/query,
call_async, deferred replies, the cluster map, polling and run()."""

import os
import select
import threading
import time
import unittest

import skctest
from skctest import skc, Server, TempDir

SLOW = float(os.environ.get("SKC_SYS_SLOW") or "1")


def echo(*args):
    return args


class Basics(unittest.TestCase):
    def test_create_close(self):
        n = skc.Node("a")
        self.assertEqual(n.name, "a")
        self.assertFalse(n.closed)
        self.assertIn("'a'", repr(n))
        n.close()
        self.assertTrue(n.closed)
        n.close()                      # idempotent
        with self.assertRaises(skc.Closed):
            n.call("a", "@x")
        with self.assertRaises(skc.Closed):
            n.poll()

    def test_context_manager(self):
        with skc.Node() as n:
            self.assertEqual(n.name, "")
            addr = n.open("127.0.0.1:0")
        self.assertTrue(n.closed)
        self.assertRegex(addr, r"^tcp://127\.0\.0\.1:[1-9]\d*$")

    def test_unknown_option(self):
        with self.assertRaises(TypeError):
            skc.Node("a", workers=2)
        with self.assertRaises(ValueError):
            skc.Node("a", call_timeout=0)
        with self.assertRaises(ValueError):
            skc.Node("a", max_msg_size=-1)

    def test_options_accepted(self):
        with skc.Node("a", call_timeout=2.5, max_msg_size=1 << 20,
                      max_inflight=100, max_serving=10, max_conns=10,
                      log=True, log_level="debug") as n:
            n.open("127.0.0.1:0")

    def test_open_ipc(self):
        d = TempDir()
        try:
            with skc.Node("a") as n:
                url = "ipc://" + d.join("a.sock")
                self.assertEqual(n.open(url), url)
        finally:
            d.cleanup()

    def test_open_map_name_sets_name(self):
        with skc.Node() as n:
            n.map_set("me", "127.0.0.1:%d" % skctest.free_port())
            n.open("me")
            self.assertEqual(n.name, "me")

    def test_watch_map(self):
        d = TempDir()
        try:
            with skc.Node("w") as n:
                path = d.write("m.lua", "a = '127.0.0.1:1'\n")
                with self.assertRaises(skc.StateError):
                    n.watch_map(True)
                n.load_map(path)
                got = []
                n.watch_map(True, lambda ok, detail: got.append((ok, detail)))

                def wait(count):
                    end = time.monotonic() + 5 * SLOW
                    while len(got) < count and time.monotonic() < end:
                        n.poll(0.05)
                    self.assertEqual(len(got), count, got)

                d.write("m.lua", "a = '127.0.0.1:2'\n")
                wait(1)
                self.assertEqual(got[0], (True, path))
                self.assertEqual(n.map_get("a"), "tcp://127.0.0.1:2")
                d.write("m.lua", "a = \n")
                wait(2)
                self.assertFalse(got[1][0])
                self.assertIn("m.lua:", got[1][1])
                self.assertEqual(n.map_get("a"), "tcp://127.0.0.1:2")
                n.watch_map(False)
                d.write("m.lua", "a = '127.0.0.1:3'\n")
                end = time.monotonic() + 0.4 * SLOW
                while time.monotonic() < end:
                    n.poll(0.05)
                self.assertEqual(n.map_get("a"), "tcp://127.0.0.1:2")
                self.assertEqual(len(got), 2)
        finally:
            d.cleanup()

    def test_fileno(self):
        with skc.Node("a") as n:
            fd = n.fileno()
            self.assertIsInstance(fd, int)
            self.assertGreaterEqual(fd, 0)


class SelfCalls(unittest.TestCase):
    """One node calling its own services: call() polls while it waits."""

    def setUp(self):
        self.n = skc.Node("me", call_timeout=5)
        addr = self.n.open("127.0.0.1:0")
        self.n.map_set("me", addr)
        self.addCleanup(self.n.close)

    def test_reply_conventions(self):
        n = self.n
        n.register("echo", echo)
        n.register("none", lambda *a: None)
        n.register("one", lambda *a: [1, 2])
        self.assertEqual(n.call("me", "@echo", 1, "a"), (1, "a"))
        self.assertEqual(n.call("me", "@echo", "x"), "x")
        self.assertIsNone(n.call("me", "@echo"))
        self.assertIsNone(n.call("me", "@none", 1))
        self.assertEqual(n.call("me", "@one"), [1, 2])
        # a bare name means "@name"
        self.assertEqual(n.call("me", "echo", 7), 7)

    def test_value_types(self):
        self.n.register("echo", echo)
        values = [None, True, False, 0, -1, 2 ** 63 - 1, -2 ** 63,
                  2 ** 64 - 1, 1.25, "", "héllo ☃", b"\x00\x01\xff",
                  [1, [2, [3]]], {"a": {"b": [1, 2]}, 1: None}]
        got = self.n.call("me", "@echo", *values)
        self.assertEqual(list(got), values)

    def test_handler_gets_args_and_message(self):
        seen = []

        def h(*args):
            m = self.n.message
            seen.append((args, m.kind, m.target, m.remaining, m.service))
            return "ok"

        handle = self.n.register("svc", h)
        self.assertEqual(self.n.call("me", "@svc", 1, 2, timeout=3), "ok")
        args, kind, target, remaining, service = seen[0]
        self.assertEqual(args, (1, 2))
        self.assertEqual(kind, "call")
        self.assertEqual(target, "@svc")
        self.assertTrue(0 < remaining <= 3.0, remaining)
        self.assertEqual(service, handle)
        self.assertIsNone(self.n.message)

    def test_send(self):
        got = []
        self.n.register("sink", lambda *a: got.append(a))
        self.n.send("me", "@sink", "PING", "x")
        self.n.send("me", "@sink", "PING", "y")
        skctest.wait_until(lambda: self.n.poll(0.1) is not None and
                           len(got) == 2, 5, what="two sends handled")
        self.assertEqual(got, [("PING", "x"), ("PING", "y")])

    def test_send_message_kind(self):
        kinds = []
        self.n.register("sink", lambda *a: kinds.append(
            (self.n.message.kind, self.n.message.remaining)))
        self.n.send("me", "@sink")
        skctest.wait_until(lambda: self.n.poll(0.1) is not None and kinds,
                           5, what="send handled")
        self.assertEqual(kinds, [("send", None)])

    def test_query_and_call_by_handle(self):
        h = self.n.register("svc", lambda: "by handle")
        self.assertEqual(self.n.lookup("svc"), h)
        self.assertEqual(self.n.query("me", "@svc"), h)
        self.assertEqual(self.n.query("me", "svc"), h)
        self.assertEqual(self.n.call("me", h), "by handle")
        self.assertEqual(self.n.call("me", ":%08x" % h), "by handle")

    def test_local_name(self):
        self.n.register(".local", lambda: "local")
        self.assertEqual(self.n.call("me", ".local"), "local")

    def test_several_names_and_unregister(self):
        h = self.n.register("a", echo)
        self.assertEqual(self.n.register("b", h), h)
        self.assertEqual(self.n.call("me", "@b", 1), 1)
        self.n.unregister("a")
        self.assertEqual(self.n.call("me", "@b", 2), 2)   # still alive
        self.n.unregister("b")
        with self.assertRaises(skc.NoService):
            self.n.call("me", "@b", 3)
        with self.assertRaises(skc.NoService):
            self.n.call("me", h, 3)                      # service gone too

    def test_create_and_destroy_service(self):
        h = self.n.create_service(lambda x: x * 2)
        self.assertEqual(self.n.call("me", h, 21), 42)
        self.n.destroy_service(h)
        with self.assertRaises(skc.NoService):
            self.n.call("me", h, 1)

    def test_raw(self):
        self.n.register("raw", lambda data: data[::-1], raw=True)
        self.assertEqual(self.n.call_raw("me", "@raw", b"\x01\x02\x03"),
                         b"\x03\x02\x01")
        self.n.register("echo", echo)
        self.assertEqual(self.n.call_raw("me", "@echo", skc.pack(1, "a")),
                         skc.pack(1, "a"))

    def test_call_async(self):
        self.n.register("echo", echo)
        results = []
        c = self.n.call_async("me", "@echo", 5,
                              callback=lambda e, r: results.append((e, r)))
        self.assertFalse(c.done())
        self.assertEqual(c.result(), 5)
        self.assertTrue(c.done())
        self.assertEqual(results, [(None, 5)])
        # errors reach the callback and result()
        c = self.n.call_async("me", "@nobody",
                              callback=lambda e, r: results.append((e, r)))
        with self.assertRaises(skc.NoService):
            c.result()
        self.assertIsInstance(results[-1][0], skc.NoService)
        self.assertIsInstance(c.error, skc.NoService)

    def test_many_async_in_flight(self):
        self.n.register("echo", echo)
        calls = [self.n.call_async("me", "@echo", i) for i in range(200)]
        self.assertEqual([c.result() for c in calls], list(range(200)))

    def test_deferred_reply_after_nested_call(self):
        # A handler cannot poll, so it defers its reply, calls another
        # service of its own node asynchronously, and answers from the
        # completion.
        n = self.n
        n.register("db", lambda k: "value-of-" + k)

        def front(key):
            d = n.message.defer()
            n.call_async("me", "@db", key, callback=lambda e, r:
                         d.fail(e) if e else d.reply("front", r))
            return "ignored"

        n.register("front", front)
        self.assertEqual(n.call("me", "@front", "k"), ("front", "value-of-k"))

    def test_deferred_from_other_thread(self):
        n = self.n

        def slow(x):
            d = n.message.defer()
            threading.Timer(0.1, d.reply, args=(x + 1,)).start()

        n.register("slow", slow)
        self.assertEqual(n.call("me", "@slow", 1), 2)

    def test_timeout_default_none_and_seconds(self):
        # timeout= left out (or skc.DEFAULT_TIMEOUT) is the node's
        # call_timeout; None is no deadline; a number is seconds.
        n = self.n
        seen = []

        def remaining():
            seen.append(n.message.remaining)

        n.register("rem", remaining)
        n.call("me", "@rem")
        n.call("me", "@rem", timeout=skc.DEFAULT_TIMEOUT)
        n.call("me", "@rem", timeout=None)
        n.call("me", "@rem", timeout=0.5)
        n.proxy("me", "@rem").call(timeout=None)
        n.call_async("me", "@rem", timeout=None).result()
        self.assertTrue(0 < seen[0] <= 5.0, seen)
        self.assertTrue(0 < seen[1] <= 5.0, seen)
        # None: no deadline from the caller; the serving node caps what a
        # handler is given at its max_deadline_ms (600 s by default)
        cap = 600.0
        self.assertTrue(cap - 60 < seen[2] <= cap, ("None", seen))
        self.assertTrue(0 < seen[3] <= 0.5, seen)
        self.assertTrue(cap - 60 < seen[4] <= cap,
                        ("Proxy.call(timeout=None)", seen))
        self.assertTrue(cap - 60 < seen[5] <= cap,
                        ("call_async(timeout=None)", seen))
        self.assertEqual(repr(skc.DEFAULT_TIMEOUT), "skc.DEFAULT_TIMEOUT")

        def slow():
            d = n.message.defer()
            threading.Timer(0.6, d.reply, args=("late",)).start()

        n.register("slow", slow)
        with self.assertRaises(skc.Timeout):
            n.call("me", "@slow", timeout=0.2)
        self.assertEqual(n.call("me", "@slow", timeout=None), "late")
        with self.assertRaises(ValueError):
            n.call("me", "@slow", timeout=0)

    def test_proxy(self):
        self.n.register("echo", echo)
        p = self.n.proxy("me", "@echo")
        self.assertEqual(p.call(1, 2), (1, 2))
        self.assertEqual(p.call_async(3).result(), 3)

    def test_run_and_stop_from_handler(self):
        got = []

        def h(x):
            got.append(x)
            if x == "stop":
                self.n.stop()

        self.n.register("ctl", h)
        self.n.send("me", "@ctl", "a")
        self.n.send("me", "@ctl", "stop")
        t0 = time.monotonic()
        self.n.run(timeout=10)
        self.assertLess(time.monotonic() - t0, 9)
        self.assertEqual(got, ["a", "stop"])

    def test_run_timeout_and_stop_from_thread(self):
        t0 = time.monotonic()
        self.n.run(timeout=0.3)
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        threading.Timer(0.2, self.n.stop).start()
        t0 = time.monotonic()
        self.n.run(timeout=10)
        self.assertLess(time.monotonic() - t0, 5)

    def test_poll_and_fileno(self):
        got = []
        self.n.register("sink", lambda x: got.append(x))
        self.assertEqual(self.n.poll(0), 0)
        self.n.send("me", "@sink", 1)
        fd = self.n.fileno()
        r, _, _ = select.select([fd], [], [], 5)
        self.assertEqual(r, [fd])
        skctest.wait_until(lambda: self.n.poll(0.1) is not None and got, 5,
                           what="send handled")
        self.assertEqual(got, [1])

    def test_handler_exception_logged_for_send(self):
        def bad(*a):
            raise RuntimeError("boom in send")

        self.n.register("bad", bad)
        with self.assertLogs("skc", "ERROR") as cm:
            self.n.send("me", "@bad")
            skctest.wait_until(lambda: self.n.poll(0.1) is not None and
                               cm.records, 5, what="error logged")
        self.assertIn("boom in send", cm.output[0])

    def test_keyboard_interrupt_in_handler_reaches_poll(self):
        def h():
            raise KeyboardInterrupt()

        self.n.register("ki", h)
        c = self.n.call_async("me", "@ki")
        with self.assertRaises(KeyboardInterrupt):
            for _ in range(100):
                self.n.poll(0.1)
        # the caller still got an answer
        with self.assertRaises(skc.HandlerError) as cm:
            c.result()
        self.assertIn("KeyboardInterrupt", cm.exception.detail)


class TwoNodes(unittest.TestCase):
    """A Python client node and a Python server node served by a thread."""

    def setUp(self):
        self.d = TempDir()
        self.addCleanup(self.d.cleanup)
        self.server = skc.Node("srv")
        self.addCleanup(self.server.close)
        self.srv_addr = self.server.open("127.0.0.1:0")
        self.data = {}

        def sdb(cmd, *args):
            cmd = cmd.upper()
            if cmd == "SET":
                last = self.data.get(args[0])
                self.data[args[0]] = args[1]
                return last
            if cmd == "GET":
                return self.data.get(args[0])
            raise KeyError("Unknown command %s" % cmd)

        self.server.register("sdb", sdb)
        self.client = skc.Node("cli", call_timeout=5)
        self.addCleanup(self.client.close)
        self.mapfile = skctest.write_map(self.d.join("clustermap.lua"),
                                         {"srv": self.srv_addr[6:]})
        self.client.load_map(self.mapfile)
        self.srv = Server(self.server)
        self.addCleanup(self.srv.stop)

    def test_simpledb(self):
        c = self.client
        self.assertIsNone(c.call("srv", "@sdb", "SET", "a", "showsss"))
        self.assertEqual(c.call("srv", "@sdb", "GET", "a"), "showsss")
        self.assertEqual(c.call("srv", "@sdb", "SET", "a", "x"), "showsss")
        with self.assertRaises(skc.HandlerError) as cm:
            c.call("srv", "@sdb", "NOPE")
        self.assertIn("KeyError", cm.exception.detail)
        self.assertIn("Unknown command NOPE", cm.exception.detail)

    def test_map_get_and_reload(self):
        c = self.client
        self.assertEqual(c.map_get("srv"), self.srv_addr)
        with self.assertRaises(skc.UnknownNode):
            c.map_get("nobody")
        c.reload({"srv": False, "other": "127.0.0.1:1"})
        self.assertIsNone(c.map_get("srv"))
        self.assertEqual(c.map_get("other"), "tcp://127.0.0.1:1")
        with self.assertRaises(skc.NodeDown):
            c.call("srv", "@sdb", "GET", "a")
        # re-reading the file restores srv; "other" keeps its value
        c.reload()
        self.assertEqual(c.map_get("srv"), self.srv_addr)
        self.assertEqual(c.map_get("other"), "tcp://127.0.0.1:1")
        self.assertIsNone(c.call("srv", "@sdb", "GET", "zz"))

    def test_parse_map_assignments(self):
        c = self.client
        c.parse_map('-- comment\nalias = "%s"\n__nowaiting = true\n'
                    % self.srv_addr, "inline")
        self.assertEqual(c.call("alias", "@sdb", "SET", "k", 1), None)
        self.assertEqual(c.call("alias", "@sdb", "GET", "k"), 1)

    def test_query(self):
        h = self.client.query("srv", "@sdb")
        self.assertEqual(h, self.server.lookup("sdb"))
        self.assertEqual(self.client.call("srv", h, "SET", "q", 2), None)

    def test_send_then_call(self):
        got = []
        self.server.register("log", lambda *a: got.append(a))
        for i in range(20):
            self.client.send("srv", "@log", i)
        skctest.wait_until(lambda: len(got) == 20, 5, what="20 sends")
        self.assertEqual(got, [(i,) for i in range(20)])   # in order

    def test_concurrent_async_calls(self):
        calls = [self.client.call_async("srv", "@sdb", "SET", "k%d" % i, i)
                 for i in range(100)]
        for c in calls:
            self.assertIsNone(c.result())
        self.assertEqual(self.client.call("srv", "@sdb", "GET", "k99"), 99)

    def test_blocking_call_from_handler(self):
        # Inside a handler call() cannot poll; it blocks on skc_node_call,
        # which works for other nodes.
        c = self.client
        c.map_set("cli", c.open("127.0.0.1:0"))
        c.register("relay", lambda k: c.call("srv", "@sdb", "GET", k))
        c.call("srv", "@sdb", "SET", "r", "relayed")
        self.assertEqual(c.call("cli", "@relay", "r"), "relayed")

    def test_call_from_other_thread_while_polling(self):
        # Thread B uses the node while the main thread polls it.
        c = self.client
        out = []

        def worker():
            out.append(c.call("srv", "@sdb", "SET", "t", "thread"))
            out.append(c.call("srv", "@sdb", "GET", "t"))

        t = threading.Thread(target=worker)
        t.start()
        end = time.monotonic() + 10
        while t.is_alive() and time.monotonic() < end:
            c.poll(0.05)
        t.join(1)
        self.assertEqual(out, [None, "thread"])

    def test_log_sink(self):
        records = []
        threads = set()

        def sink(*r):
            records.append(r)
            threads.add(threading.get_ident())

        with skc.Node("logger", log=sink, log_level="debug") as n:
            n.open("127.0.0.1:0")
            n.map_set("nowhere", "127.0.0.1:%d" % skctest.free_port())
            with self.assertRaises(skc.Error):
                n.call("nowhere", "@x", timeout=0.5)
            n.poll(0.05)
        self.assertTrue(records)
        for level, node, text in records:
            self.assertIn(level, (1, 2, 3, 4))
            self.assertEqual(node, "logger")
            self.assertIsInstance(text, str)
        self.assertTrue(any("listening on" in r[2] for r in records))
        # delivered on this (the polling) thread only
        self.assertEqual(threads, {threading.get_ident()})

    def test_close_from_other_thread_stops_run(self):
        n = skc.Node("closing")
        n.open("127.0.0.1:0")
        t = threading.Thread(target=n.run)
        t.start()
        time.sleep(0.1)
        n.close()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertTrue(n.closed)


if __name__ == "__main__":
    skctest.main()
