"""Who may talk to a node (issue #17) from Python, and with a Lua node:

- the cluster cookie between Python nodes: the right one works (calls and
  sends), a wrong or missing one raises skc.AuthError with the reason
  within the deadline; a cookie file readable by others is refused;
- mutual TLS plus the cookie between a Python node and a Lua node started
  by the launcher (`skc run`, config keys cluster_cookie_file and
  cluster_tls_*), both directions; a Python node with the right
  certificate but a wrong cookie, and one without a certificate, are
  refused with skc.AuthError.

Certificates are made with openssl at run time.  Skips (exit 77, reason
printed) only if openssl, build/bin/skc or the Lua example is absent."""

import os
import shutil
import subprocess
import threading
import time
import unittest

import skctest
from skctest import skc, Server, TempDir

COOKIE = "py-cookie-42"
LUA_MISSING = skctest.lua_missing()
OPENSSL = shutil.which("openssl")


def openssl(*args):
    subprocess.run(("openssl",) + args, check=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(tmp):
    """A CA and two certificates it signed (node "py", node "lua")."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes")
    openssl("req", "-x509", *ec, "-keyout", tmp.join("ca.key"), "-out",
            tmp.join("ca.pem"), "-days", "2", "-subj", "/CN=test CA")
    for name in ("py", "lua"):
        openssl("req", *ec, "-keyout", tmp.join(name + ".key"), "-out",
                tmp.join(name + ".csr"), "-subj", "/CN=" + name)
        openssl("x509", "-req", "-in", tmp.join(name + ".csr"), "-CA",
                tmp.join("ca.pem"), "-CAkey", tmp.join("ca.key"),
                "-CAcreateserial", "-out", tmp.join(name + ".pem"),
                "-days", "2")


class Cookie(unittest.TestCase):
    def setUp(self):
        self.srv = skc.Node("db", cluster_cookie=COOKIE)
        self.addCleanup(self.srv.close)
        self.addr = self.srv.open("127.0.0.1:0")
        self.sends = []
        self.got = threading.Event()

        def sink(*args):
            self.sends.append(args)
            self.got.set()

        self.srv.register("echo", lambda *a: a)
        self.srv.register("sink", sink)
        self.server = Server(self.srv)
        self.addCleanup(self.server.stop)

    def client(self, name, **kw):
        n = skc.Node(name, call_timeout=3, **kw)
        self.addCleanup(n.close)
        n.map_set("db", self.addr)
        return n

    def test_right_cookie(self):
        n = self.client("good", cluster_cookie=COOKIE)
        self.assertEqual(n.call("db", "@echo", "hi", 1), ("hi", 1))
        n.send("db", "@sink", "s1")
        self.assertTrue(self.got.wait(5))
        self.assertEqual(self.sends, [("s1",)])

    def check_refused(self, n, why):
        t0 = time.monotonic()
        with self.assertRaises(skc.AuthError) as cm:
            n.call("db", "@echo", "hi")
        self.assertLess(time.monotonic() - t0, 3 + 1.5)
        self.assertIn(why, str(cm.exception))
        self.assertEqual(cm.exception.name, "EAUTH")

    def test_wrong_and_missing_cookie(self):
        bad = self.client("bad", cluster_cookie="nope")
        bad.send("db", "@sink", "from bad")
        self.check_refused(bad, "wrong cluster cookie")
        none = self.client("none")
        none.send("db", "@sink", "from none")
        self.check_refused(none, "requires the cluster cookie")
        time.sleep(0.3)
        self.assertEqual(self.sends, [])

    def test_cookie_file(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        path = tmp.write("cookie", COOKIE + "\n")
        os.chmod(path, 0o640)
        with self.assertRaises(skc.InvalidArgument) as cm:
            skc.Node("f", cluster_cookie_file=path)
        self.assertIn("chmod 600", str(cm.exception))
        os.chmod(path, 0o600)
        n = self.client("f", cluster_cookie_file=path)
        self.assertEqual(n.call("db", "@echo", "x"), "x")


@unittest.skipIf(LUA_MISSING or not OPENSSL,
                 LUA_MISSING or "openssl is not installed")
class LuaOverMutualTls(unittest.TestCase):
    def test_both_directions(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        make_pki(tmp)
        cookie = tmp.write("cookie", COOKIE + "\n")
        os.chmod(cookie, 0o600)
        tls = dict(tls_cert=tmp.join("py.pem"), tls_key=tmp.join("py.key"),
                   tls_ca=tmp.join("ca.pem"))
        node = skc.Node("py", cluster_cookie=COOKIE, call_timeout=5, **tls)
        self.addCleanup(node.close)
        py_addr = node.open("tls+tcp://127.0.0.1:0")
        lua_addr = "tls+tcp://127.0.0.1:%d" % skctest.free_port()
        mapfile = skctest.write_map(tmp.join("clustermap.lua"), {
            "py": py_addr, "lua": lua_addr})
        node.load_map(mapfile)
        pings = threading.Event()
        db = skctest.simpledb(set_one_value=False)

        def sdb(cmd, *args):
            if cmd == "PING":
                pings.set()
            return db(cmd, *args)

        node.register("sdb", sdb)
        node.register("echo", lambda *args: args)

        def fail(arg):
            raise ValueError("python says no to %s" % arg)

        node.register("fail", fail)
        srv = Server(node)
        self.addCleanup(srv.stop)

        cfg = skctest.lua_config(
            tmp, "config_pyclient", "pyclient", mapfile, self_node="lua",
            py_node="py", cluster_cookie_file=cookie,
            cluster_tls_cert=tmp.join("lua.pem"),
            cluster_tls_key=tmp.join("lua.key"),
            cluster_tls_ca=tmp.join("ca.pem"))
        lua = skctest.start_lua(cfg, tmp.path, "lua pyclient")
        self.addCleanup(lua.kill)
        lua.wait_for(r"PYCLIENT DONE", 20)
        out = lua.output()
        self.assertRegex(out, r"ECHO hello 42 \{x=1\}")
        self.assertRegex(out, r"GET lua!")
        self.assertTrue(pings.wait(5), "the Lua node's send never came")
        # Python -> Lua over the same mutual TLS and cookie.
        self.assertIsNone(node.call("lua", "@sdb", "GET", "nothing"))
        self.assertIsNone(node.call("lua", "@sdb", "SET", "k", "v"))
        self.assertEqual(node.call("lua", "@sdb", "GET", "k"), "v")

        # The right certificate and a wrong cookie; no certificate.
        bad = skc.Node("bad", cluster_cookie="wrong", call_timeout=3, **tls)
        self.addCleanup(bad.close)
        bad.load_map(mapfile)
        with self.assertRaises(skc.AuthError) as cm:
            bad.call("lua", "@sdb", "GET", "k")
        self.assertIn("wrong cluster cookie", str(cm.exception))
        nocert = skc.Node("nocert", cluster_cookie=COOKIE, call_timeout=3,
                          tls_ca=tmp.join("ca.pem"))
        self.addCleanup(nocert.close)
        nocert.load_map(mapfile)
        with self.assertRaises(skc.AuthError) as cm:
            nocert.call("lua", "@sdb", "GET", "k")
        self.assertIn("TLS", str(cm.exception))


if __name__ == "__main__":
    skctest.main()
