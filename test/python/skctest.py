"""Helpers shared by the Python tests (not a test itself).

- main(): runs a test file's unittest cases; exits 1 on failure, 77 (ctest
  SKIP_RETURN_CODE) when nothing failed but a test was skipped, else 0.
- free_port(), wait_until(), Proc (a child process killed by PID),
  Server (a Node served by a thread), paths of the build tree.
"""

import faulthandler
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import skc

SOURCE_DIR = os.environ.get("SKC_SOURCE_DIR") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD_DIR = os.environ.get("SKC_BUILD_DIR") or os.path.join(SOURCE_DIR,
                                                            "build")
BIN_DIR = os.path.join(BUILD_DIR, "bin")
HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    # A hang shows every thread's stack before ctest's TIMEOUT (180 s)
    # kills the process without a word.
    hang = float(os.environ.get("SKC_TEST_HANG_S", "150"))
    faulthandler.dump_traceback_later(hang, exit=True)
    if shutil.which("gdb"):
        threading.Thread(target=_gdb_watchdog, args=(hang - 5,),
                         daemon=True).start()
    prog = unittest.main(exit=False, verbosity=2,
                         testRunner=unittest.TextTestRunner(
                             verbosity=2, resultclass=_EagerResult))
    r = prog.result
    if not r.wasSuccessful():
        sys.exit(1)
    if r.skipped:
        print("\nSKIPPED %d test(s):" % len(r.skipped))
        for test, reason in r.skipped:
            print("  %s: %s" % (test.id(), reason))
        sys.exit(77)
    sys.exit(0)


class _EagerResult(unittest.TextTestResult):
    """Prints a failure's traceback at once, not after the cleanups (which
    may be what hangs)."""

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.stream.writeln(self._exc_info_to_string(err, test))
        self.stream.flush()

    def addError(self, test, err):
        super().addError(test, err)
        self.stream.writeln(self._exc_info_to_string(err, test))
        self.stream.flush()


def _gdb_watchdog(after):
    # Before faulthandler's Python stacks: the C stacks of every thread, to
    # see where libskc is stuck.
    time.sleep(max(1.0, after))
    sys.stderr.write("\n=== hang: C stacks (gdb) ===\n")
    sys.stderr.flush()
    subprocess.run(["gdb", "-p", str(os.getpid()), "-batch", "-nx",
                    "-ex", "thread apply all bt"],
                   stdin=subprocess.DEVNULL, stdout=sys.stderr,
                   stderr=subprocess.STDOUT, timeout=60)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Calls pred() until it returns a true value (returned) or timeout
    seconds pass (AssertionError naming what and the last exception)."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as exc:       # retried: the last one is reported
            last = exc
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s%s"
                                 % (timeout, what,
                                    "" if last is None else
                                    " (last error: %r)" % (last,)))
        time.sleep(interval)


def binary(name):
    """Path of build/bin/<name>, or None if it was not built."""
    p = os.path.join(BIN_DIR, name)
    return p if os.access(p, os.X_OK) else None


class Proc(object):
    """A child process whose output (stdout+stderr) is collected by a
    thread; kill() ends it by PID.  Use as a context manager or call kill()
    in tearDown/finally."""

    def __init__(self, args, cwd=None, env=None, name=None):
        self.args = list(args)
        self.name = name or os.path.basename(self.args[0])
        e = dict(os.environ)
        if env:
            e.update(env)
        self.lines = []
        self._cv = threading.Condition()
        self.p = subprocess.Popen(self.args, cwd=cwd, env=e,
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT,
                                  start_new_session=True)
        self.pid = self.p.pid
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw in iter(self.p.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cv:
                self.lines.append(line)
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def output(self):
        with self._cv:
            return "\n".join(self.lines)

    def wait_for(self, pattern, timeout, start=0):
        """Waits for a line matching regex pattern (from line index start);
        returns the match.  AssertionError with the output on timeout or
        if the process exits first."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        i = start
        with self._cv:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                left = end - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and
                                 not self._t.is_alive()):
                    raise AssertionError(
                        "%s: no line matching %r within %.1fs (exit %r); "
                        "output:\n%s" % (self.name, pattern, timeout,
                                         self.p.poll(),
                                         "\n".join(self.lines)))
                self._cv.wait(min(left, 0.2))

    def count(self, pattern):
        rx = re.compile(pattern)
        with self._cv:
            return sum(1 for line in self.lines if rx.search(line))

    def alive(self):
        return self.p.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Ends the process by PID and reaps it (idempotent)."""
        if self.p.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.p.wait(timeout=10)
        self._t.join(timeout=5)
        try:
            self.p.stdout.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False


class Server(object):
    """Serves a Node on a background thread (its handlers run there), so
    the test thread can call it through another node.  stop() joins."""

    def __init__(self, node):
        self.node = node
        self.error = None
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            self.node.run()
        except BaseException as exc:
            self.error = exc

    def stop(self):
        self.node.stop()
        self._t.join(timeout=10)
        if self._t.is_alive():
            raise AssertionError("server thread did not stop")


class TempDir(object):
    def __init__(self, prefix="skc-py-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    def write(self, name, text):
        p = self.join(name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        return p

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def write_map(path, entries, style="table"):
    """Writes a skynet-format cluster map: entries name -> "host:port"
    (or False for down)."""
    def val(v):
        return "false" if v is False else '"%s"' % v
    if style == "table":
        body = "".join("  %s = %s,\n" % (k, val(v)) for k, v in
                       entries.items())
        text = "-- written by the skc Python tests\nreturn {\n%s}\n" % body
    else:
        text = "".join("%s = %s\n" % (k, val(v)) for k, v in
                       entries.items())
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


LUA_EXAMPLE = os.path.join(SOURCE_DIR, "examples", "lua", "skynet_cluster")
LUA_TESTS = os.path.join(HERE, "lua")


def lua_missing():
    """None if the Lua launcher and the seed example are there, else why
    not (the reason a test prints when it skips)."""
    if not binary("skc"):
        return ("%s was not built (the Lua launcher, tools/skc.c; "
                "SKC_BUILD_LUA=ON)" % os.path.join(BIN_DIR, "skc"))
    for f in ("db.lua", "gates.lua", "simpledb.lua", "config_db",
              "config_gate"):
        if not os.path.isfile(os.path.join(LUA_EXAMPLE, f)):
            return "%s is missing" % os.path.join(LUA_EXAMPLE, f)
    return None


def example_copy(tmp, entries):
    """Copies the seed's Lua example into tmp with a cluster map of
    entries (name -> "host:port"); returns the directory, to be the cwd of
    `skc run config_db` / `config_gate` (their paths are relative)."""
    d = tmp.join("skynet_cluster")
    shutil.copytree(LUA_EXAMPLE, d)
    write_map(os.path.join(d, "clustermap.lua"), entries)
    return d


def lua_config(tmp, name, start, mapfile, **keys):
    """Writes a skynet-style config starting service `start` (looked up in
    test/python/lua, then the seed example) with cluster map mapfile;
    extra keys become config strings (skynet.getenv)."""
    lines = [
        'thread = 2',
        'harbor = 0',
        'start = "%s"' % start,
        'luaservice = "%s/?.lua;%s/?.lua;"' % (LUA_TESTS, LUA_EXAMPLE),
        'cluster = "%s"' % mapfile,
    ]
    lines += ['%s = "%s"' % (k, v) for k, v in keys.items()]
    return tmp.write(name, "\n".join(lines) + "\n")


def start_lua(config, cwd, name):
    """Starts `skc run config` in cwd."""
    return Proc([binary("skc"), "run", config], cwd=cwd, name=name)


def simpledb(log=None, set_one_value=True):
    """The seed's simpledb.lua as a Python handler; the calls go to log and
    the data is handler.db.  SET answers the old value: as exactly one
    value, as simpledb.lua does (set_one_value), or as the handler's plain
    return value (None = no value at all)."""
    db = {}

    def handler(cmd, *args):
        if log is not None:
            log.append((cmd,) + args)
        cmd = cmd.upper()
        if cmd == "PING":
            return None
        if cmd == "GET":
            return db.get(args[0])
        if cmd == "SET":
            last = db.get(args[0])
            db[args[0]] = args[1]
            return (last,) if set_one_value else last
        raise KeyError("Unknown command %s" % cmd)

    handler.db = db
    return handler


__all__ = ["lua_missing", "example_copy", "lua_config", "start_lua",
           "LUA_EXAMPLE", "LUA_TESTS", "skc", "main", "free_port",
           "wait_until", "binary", "Proc", "Server", "TempDir", "write_map",
           "SOURCE_DIR", "BUILD_DIR", "BIN_DIR", "HERE", "simpledb"]
