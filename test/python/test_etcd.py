"""The cluster map kept in etcd (issue #16), with a C, a Lua and a Python
node as separate processes and no map file:

- each finds the others through etcd (the Lua node calls the C and the
  Python node; Python calls both);
- a new C node is callable within 1 s of its start;
- kill -9 of a C node: the others see it down within TTL + 1 s (the map
  and the monitor) and a group set once in etcd fails over;
- etcd killed: calls go on; restarted: the watches resume;
- a clean stop (the Lua node, the Python node) is seen at once;
- a second Python node announcing a taken name is refused.

A real etcd runs on loopback (temporary data dir, free ports) and is
killed by PID.  Skips (exit 77, reason printed) when the etcd binary, the
Lua launcher or skc_sysnode is absent."""

import os
import shutil
import subprocess
import time
import unittest

import skctest
from skctest import skc, Server, TempDir, Proc

TTL = 3
PREFIX = "/skc/py"
# Time bounds are scaled for slow runs (valgrind, a loaded machine).
SLOW = float(os.environ.get("SKC_SYS_SLOW") or "1")
ETCD = shutil.which("etcd") or (
    "/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None)
SYSNODE = skctest.binary("skc_sysnode")
MISSING = (None if ETCD else "no etcd binary (Debian package etcd-server)") \
    or skctest.lua_missing() \
    or (None if SYSNODE else "skc_sysnode was not built")


def start_etcd(tmp, client=None, peer=None):
    """Starts etcd (on these URLs and tmp's data dir: a restart)."""
    client = client or "http://127.0.0.1:%d" % skctest.free_port()
    peer = peer or "http://127.0.0.1:%d" % skctest.free_port()
    p = Proc([ETCD, "--name", "t", "--data-dir", tmp.join("etcd.data"),
              "--listen-client-urls", client,
              "--advertise-client-urls", client,
              "--listen-peer-urls", peer,
              "--initial-advertise-peer-urls", peer,
              "--initial-cluster", "t=" + peer], name="etcd")
    try:
        p.wait_for("ready to serve client requests", 30)
    except BaseException:
        p.kill()
        raise
    return p, client, peer


def etcdctl(endpoint, *args):
    subprocess.run(["etcdctl", "--endpoints=" + endpoint] + list(args),
                   check=True, timeout=30, stdout=subprocess.DEVNULL)


def c_node(endpoint, name):
    p = Proc([SYSNODE, "--name", name, "--etcd", endpoint,
              "--etcd-prefix", PREFIX, "--etcd-ttl", str(TTL), name],
             name=name)
    p.wait_for(r"^LISTENING ", 20)
    return p


@unittest.skipIf(MISSING, MISSING)
class EtcdCluster(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        cls.procs = []
        cls.etcd, cls.ep, cls.peer = start_etcd(cls.tmp)
        cls.procs.append(cls.etcd)
        try:
            cls.c1 = c_node(cls.ep, "c1")
            cls.procs.append(cls.c1)
            cls.py = skc.Node("py1", etcd=cls.ep, etcd_prefix=PREFIX,
                              etcd_ttl=TTL, call_timeout=5)
            cls.py.register("echo", lambda *a: a)
            cls.py_addr = cls.py.open("py1")
            cls.srv = Server(cls.py)
            conf = skctest.lua_config(
                cls.tmp, "config_lua", "etcdnode",
                "etcd://%s%s" % (cls.ep[len("http://"):], PREFIX),
                self_node="lua1", c_node="c1", py_node="py1",
                cluster_etcd_ttl=str(TTL))
            cls.lua = Proc([skctest.binary("skc"), "run", conf],
                           cwd=skctest.LUA_EXAMPLE, name="lua1")
            cls.procs.append(cls.lua)
            cls.lua.wait_for("ETCDNODE READY", 20)
            cls.cli_log = []
            cls.cli = skc.Node("pycli", etcd=cls.ep, etcd_prefix=PREFIX,
                               call_timeout=5, log_level="info",
                               log=lambda lvl, node, text:
                               cls.cli_log.append("%.3f %s" % (
                                   time.monotonic(), text)))
            cls.downs = []
            cls.cli.monitor(lambda node, state, reason:
                            cls.downs.append((node, state, reason)))
        except BaseException:
            cls.tearDownClass()
            raise

    def tearDown(self):
        # On a failure: what the nodes and etcd said.
        if any(e for _, e in (self._outcome.result.errors +
                              self._outcome.result.failures)):
            print("--- pycli log:\n" + "\n".join(self.cli_log))
            for p in self.procs:
                print("--- %s:\n%s" % (p.name, p.output()[-6000:]))

    @classmethod
    def tearDownClass(cls):
        for name in ("cli", "py"):
            n = getattr(cls, name, None)
            if name == "py" and getattr(cls, "srv", None) is not None:
                cls.srv.stop()
            if n is not None:
                n.close()
        for p in reversed(cls.procs):
            p.kill()
        cls.tmp.cleanup()

    def wait_map(self, name, want, timeout):
        """Waits until map_get(name) is want (None = down); the time."""
        t0 = time.monotonic()

        def ok():
            try:
                v = self.cli.map_get(name)
            except skc.UnknownNode:
                return False
            return v is None if want is None else v == want or \
                (want is True and v is not None)
        skctest.wait_until(ok, timeout, interval=0.01,
                           what="%s %s in the map" % (name, want))
        return time.monotonic() - t0

    def test_1_find_each_other(self):
        # Lua called C and Python through etcd; Python calls both.
        self.lua.wait_for(r"C ECHO\s+from lua", 10)
        self.lua.wait_for(r"PY ECHO\s+from lua", 10)
        self.lua.wait_for(r"SOURCE\s+etcd %s prefix %s$" % (self.ep, PREFIX),
                          10)
        names = self.lua.wait_for(r"NAMES\s+(\S+)", 10).group(1)
        for name in ("c1", "lua1", "py1"):
            self.assertIn(name, names.split(","))
        self.assertEqual(self.cli.call("c1", "@echo", "x"), "x")
        self.assertEqual(self.cli.call("py1", "@echo", "y"), "y")
        self.assertIsNone(self.cli.call("lua1", "@sdb", "SET", "k", "v"))
        self.assertEqual(self.cli.call("lua1", "@sdb", "GET", "k"), "v")
        self.assertEqual(self.cli.map_source(),
                         "etcd %s prefix %s" % (self.ep, PREFIX))
        for name in ("c1", "lua1", "py1"):
            self.assertIn(name, self.cli.map_names())

    def test_1_cli_map(self):
        # `skc map` names the map's source and lists etcd's entries.
        url = "etcd://%s%s" % (self.ep[len("http://"):], PREFIX)
        for args in (["-e", url], ["-m", url],
                     ["--etcd", self.ep + "/"]):
            if args[0] == "--etcd":
                env = dict(os.environ, SKC_MAP=url)
                p = subprocess.run([skctest.binary("skc"), "map"] + args,
                                   capture_output=True, timeout=30, env=env)
                # http:// with no prefix: /skc, where nothing is
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout.decode().splitlines(),
                                 ["-- source: etcd %s prefix /skc" % self.ep])
                continue
            p = subprocess.run([skctest.binary("skc"), "map"] + args,
                               capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            lines = p.stdout.decode().splitlines()
            self.assertEqual(lines[0], "-- source: etcd %s prefix %s"
                             % (self.ep, PREFIX))
            self.assertIn('py1 = "tcp://127.0.0.1:%s"'
                          % self.py_addr.rsplit(":", 1)[1], lines)
            self.assertTrue(any(x.startswith("c1 = ") for x in lines),
                            lines)

    def test_2_join_kill_failover(self):
        c2 = c_node(self.ep, "c2")
        self.procs.append(c2)
        t0 = time.monotonic()
        self.assertEqual(self.cli.call("c2", "@echo", "z",
                                       timeout=1.0 * SLOW), "z")
        self.assertLess(time.monotonic() - t0, 1.0 * SLOW)
        etcdctl(self.ep, "put", PREFIX + "/groups/cg",
                '{"members":["c1","c2"],"policy":"failover"}')
        skctest.wait_until(lambda: self.cli.map_get("cg"), 2,
                           what="group cg")
        self.assertEqual(self.cli.call_raw("cg", "@whoami", b"?"), b"c1")
        self.c1.kill()
        took = self.wait_map("c1", None, (TTL + 1) * SLOW)
        print("c1 down in the map %.2f s after kill -9" % took)
        skctest.wait_until(
            lambda: (self.cli.poll(0) or True) and
            any(d[0] == "c1" and d[1] == "down" for d in self.downs),
            1 * SLOW, what="monitor: c1 down")
        # The group goes to c2.
        self.assertEqual(
            self.cli.call_raw("cg", "@whoami", b"?", timeout=2), b"c2")

    def test_3_duplicate_refused(self):
        dup = skc.Node("py1", etcd=self.ep, etcd_prefix=PREFIX)
        try:
            with self.assertRaises(skc.Exists) as cm:
                dup.open("py1")
            self.assertIn("already announced", str(cm.exception))
        finally:
            dup.close()
        self.assertEqual(self.cli.call("py1", "@echo", "still"), "still")

    def test_3b_etcd_restart(self):
        # etcd killed: calls go on with the map the nodes have; restarted
        # on the same data: the watches resume (a new node is seen).
        type(self).etcd.kill()
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            self.assertEqual(self.cli.call("py1", "@echo", 1), 1)
            self.assertEqual(self.cli.call("lua1", "@sdb", "GET", "k"), "v")
            self.assertEqual(self.cli.call("c2", "@echo", 2), 2)
            time.sleep(0.05)
        etcd, _, _ = start_etcd(self.tmp, self.ep, self.peer)
        self.procs.append(etcd)
        type(self).etcd = etcd
        c3 = c_node(self.ep, "c3")
        self.procs.append(c3)
        self.assertEqual(self.cli.call("c3", "@echo", 3, timeout=5 * SLOW),
                         3)
        self.assertEqual(self.cli.call("lua1", "@sdb", "GET", "k"), "v")

    def test_4_clean_stop_is_seen_at_once(self):
        # (On a machine so loaded that etcd stalls past the TTL a lease may
        # expire and come back: the stop is measured from a live lua1.)
        self.wait_map("lua1", True, 5 * SLOW)
        self.assertTrue(self.cli.call("lua1", "@ctl", "quit"))
        self.lua.wait_for("ETCDNODE QUIT", 5)
        took = self.wait_map("lua1", None, 1.5 * SLOW)
        print("lua1 down in the map %.2f s after its clean stop" % took)
        # The Python node stops cleanly too.
        type(self).srv.stop()
        type(self).srv = None
        self.py.close()
        type(self).py = None
        took = self.wait_map("py1", None, 1.5 * SLOW)
        print("py1 down in the map %.2f s after close()" % took)


if __name__ == "__main__":
    skctest.main()
