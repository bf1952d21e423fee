"""Lanes from Python (docs/PERFORMANCE.md, "Lanes"): the node options
large_msg and channels, and channel= on calls."""
import unittest

import skctest
from skctest import skc, Server


class Lanes(unittest.TestCase):
    def setUp(self):
        self.srv = skc.Node("srv")
        addr = self.srv.open("127.0.0.1:0")
        self.srv.register("echo", lambda *a: a)
        self.server = Server(self.srv)
        self.cli = skc.Node("cli", large_msg=1024, channels=2)
        self.cli.map_set("srv", addr)

    def tearDown(self):
        self.cli.close()
        self.server.stop()
        self.srv.close()

    def lanes(self):
        return self.cli.stats()["peers"]["srv"]["lanes"]

    def test_channel_and_large(self):
        self.assertEqual(self.cli.call("srv", "@echo", 1, 2), (1, 2))
        self.assertEqual(self.cli.call("srv", "@echo", "k", channel=3),
                         "k")
        big = "x" * 4096
        self.assertEqual(self.cli.call("srv", "@echo", big), big)
        c = self.cli.call_async("srv", "@echo", "a", channel=1)
        self.assertEqual(c.result(), "a")
        got = {ln["lane"]: ln for ln in self.lanes()}
        self.assertEqual(got["large"]["calls"], 1)
        self.assertEqual(got["channel 1"]["calls"], 2)  # 3 and 1: 2 lanes
        self.assertEqual(got["channel 1"]["link"], "up")

    def test_bad_options(self):
        with self.assertRaises(ValueError):
            self.cli.call("srv", "@echo", 1, channel=256)
        with self.assertRaises(ValueError):
            skc.Node("x", channels=-2)


if __name__ == "__main__":
    skctest.main()
