#!/usr/bin/python3
"""test_cli -- the `skc` command's cluster verbs (docs/OPERATIONS.md, "The
command line") against two live nodes: a Lua node started with
`skc run CONFIG` (svc/cli_stock.lua: @stock and @probe) on an ipc://
address, and a C node (test/system's skc_sysnode: @echo, @whoami, @hold,
@sink, ...) on 127.0.0.1.

Every verb: success, remote error, unknown node, node marked down,
unreachable node, timeout, JSON arguments of every kind reaching the Lua
service intact (echoed back), non-JSON arguments as strings, usage
errors, --raw, --help, and the exit codes.

Usage: test_cli.py SKC SKC_SYSNODE.  Waits scale with SKC_SYS_SLOW (as the
system tests'); every process started is killed by its PID at the end.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SKC, SYSNODE = (os.path.abspath(a) for a in sys.argv[1:3])
SLOW = float(os.environ.get("SKC_SYS_SLOW") or "1")
HERE = os.path.dirname(os.path.abspath(__file__))

failures = 0
checks = 0
children = []


def check(cond, what, detail=""):
    global failures, checks
    checks += 1
    if cond:
        print("ok   %s" % what)
    else:
        failures += 1
        print("FAIL %s%s" % (what, ("\n     " + detail) if detail else ""))


def skc(*args, env=None, timeout=30):
    """Runs skc with args; returns (exit code, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("SKC_MAP", None)
    if env:
        e.update(env)
    p = subprocess.Popen([SKC] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e, cwd=WORK)
    try:
        o, err = p.communicate(timeout=timeout * SLOW)
    except subprocess.TimeoutExpired:
        # A hang: print every thread's stack (when gdb is there) so the
        # log says where, then kill it by its PID.
        if shutil.which("gdb"):
            subprocess.run(["gdb", "-p", str(p.pid), "-batch", "-ex",
                            "thread apply all bt"], timeout=60)
        p.kill()
        o, err = p.communicate()
        sys.stdout.flush()
        print("FAIL skc %s: still running after %.0f s (killed); stderr: %r"
              % (" ".join(args), timeout * SLOW, err))
        return -1, o.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    return p.returncode, o.decode("utf-8", "replace"), \
        err.decode("utf-8", "replace")


def expect(args, code, what, out=None, err=None, env=None):
    """Runs skc and checks its exit code, and stdout lines / stderr text."""
    rc, o, e = skc(*args, env=env)
    detail = "skc %s -> %d\n     stdout: %r\n     stderr: %r" % (
        " ".join(args), rc, o, e)
    ok = rc == code
    if out is not None:
        ok = ok and o.splitlines() == out
    if err is not None:
        for part in ([err] if isinstance(err, str) else err):
            ok = ok and part in e
    check(ok, what, detail)
    return rc, o, e


def spawn(argv, log):
    f = open(log, "wb")
    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                         stdin=subprocess.PIPE, cwd=WORK)
    f.close()
    children.append(p)
    return p


def wait_for(cond, seconds):
    end = time.monotonic() + seconds * SLOW
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    return cond()


def read(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


WORK = tempfile.mkdtemp(prefix="skc-cli-")
MAP = os.path.join(WORK, "clustermap.lua")
M = ["-m", MAP]


def start_nodes():
    """Starts the C node, then writes the map, then the Lua node."""
    clog = os.path.join(WORK, "cnode.log")
    spawn([SYSNODE, "--name", "cnode", "--id", "cnode-id", "127.0.0.1:0"],
          clog)
    line = wait_for(lambda: [l for l in read(clog).splitlines()
                             if l.startswith("LISTENING ")], 10)
    if not line:
        print("C node did not start:\n" + read(clog))
        return None
    caddr = line[0].split()[1]
    with open(MAP, "w") as f:
        f.write("-- the map of test_cli\n"
                "lnode = \"ipc://%s/lnode.ipc\"\n"
                "cnode = \"%s\"\n"
                "gone = false\n"
                "closed = \"127.0.0.1:1\"   -- nothing listens on port 1\n"
                "both = { \"closed\", \"lnode\" }\n"
                "[\"odd name\"] = \"127.0.0.1:2\"\n"
                % (WORK, caddr))
    ready = os.path.join(WORK, "ready")
    config = os.path.join(WORK, "config_lnode")
    with open(config, "w") as f:
        f.write('thread = 2\n'
                'start = "cli_stock"\n'
                'luaservice = "%s/svc/?.lua"\n'
                'cluster = "%s"\n'
                'readyfile = "%s"\n'
                'node_name = "lnode"\n' % (HERE, MAP, ready))
    llog = os.path.join(WORK, "lnode.log")
    spawn([SKC, "run", config], llog)
    if not wait_for(lambda: os.path.exists(ready), 10):
        print("Lua node did not start:\n" + read(llog))
        return None
    return caddr


def test_ping(caddr):
    rc, o, e = expect(["ping"] + M + ["lnode"], 0, "ping the Lua node")
    check("name: lnode" in o and "address: ipc://" in o and "rtt_ms: " in o,
          "ping prints name, address and rtt", o)
    check(re.search(r"^version: \d+\.\d+\.\d+$", o, re.M) is not None,
          "ping prints the node's version", o)
    rc, o, e = expect(["ping"] + M + ["cnode"], 0, "ping the C node")
    check("address: %s" % caddr in o, "ping prints the C node's address", o)
    rc, o, e = expect(["ping", caddr], 0, "ping an address, no map")
    check("name: %s" % caddr in o, "ping by address names it", o)
    check("node: cnode" in o, "ping by address prints the node's name", o)
    rc, o, e = expect(["ping"] + M + ["both"], 0, "ping a group")
    check('group: {"closed","lnode"}' in o and "state: group" in o,
          "ping a group prints its members and state", o)
    expect(["ping"] + M + ["nowhere"], 3, "ping an unknown node: 3",
           err=["unknown node", "nowhere"])
    expect(["ping"] + M + ["gone"], 3, "ping a node marked down: 3",
           err="ENODEDOWN")
    expect(["ping"] + M + ["closed"], 3, "ping an unreachable node: 3",
           err=["EUNREACHABLE", "127.0.0.1:1"])
    expect(["ping", "lnode"], 0, "the map from $SKC_MAP",
           env={"SKC_MAP": MAP})
    # ./clustermap.lua (WORK is the working directory)
    expect(["ping", "cnode"], 0, "the map from ./clustermap.lua")


def test_call_lua():
    expect(["call"] + M + ["lnode", "@stock", "ADD", "apple", "5"], 0,
           "call ADD apple 5", out=["5"])
    expect(["call"] + M + ["lnode", "@stock", "ADD", "apple", "2"], 0,
           "5 arrived as a number", out=["7"])
    expect(["call"] + M + ["lnode", "@stock", "GET", "plum"], 1,
           "remote error: 1, with its text",
           err=["remote handler failed", "no such item plum"])
    expect(["call"] + M + ["lnode", "@nothing", "x"], 1,
           "no such service: 1", err="ENOSERVICE")
    # every JSON kind, echoed back intact by a Lua service
    args = ["5", "-7", "0", '"5"', "1.5", "-0.25", "1e3", "2.5E-3", "true",
            "false", "null", "[1,2]", "[]", '{"a":1}',
            '{"k":[1,{"x":"y"}],"n":null}', '[[["deep"]]]',
            '"a\\"b\\\\c\\n\\t\\u00e9\\ud83d\\ude00/"',
            "9223372036854775807", "-9223372036854775808"]
    want = ["5", "-7", "0", '"5"', "1.5", "-0.25", "1000.0", "0.0025",
            "true", "false", "null", "[1,2]", "[]", '{"a":1}',
            '{"k":[1,{"x":"y"}]}', '[[["deep"]]]', '"a\\"b\\\\c\\n\\t\u00e9\U0001F600/"',
            "9223372036854775807", "-9223372036854775808"]
    rc, o, e = expect(["call"] + M + ["lnode", "@probe", "echo"] + args, 0,
                      "JSON arguments of every kind")
    # (a Lua table cannot hold nil: "n":null is gone, docs/OPERATIONS.md)
    lines = o.splitlines()
    check(len(lines) == len(want), "one line per value", o)
    for a, w, got in zip(args, want, lines):
        check(got == w, "echo %s" % a, "got %r, want %r" % (got, w))
    rc, o, e = expect(["call"] + M + ["lnode", "@probe", "types", "5", '"5"',
                       "apple", "1.5", "[1]", "{bad", "tru", "01", "1.",
                       "'x'", "", "nul"], 0, "types as the service sees them")
    check(o.splitlines() == ['"integer"', '"string"', '"string"', '"float"',
                             '"table"', '"string"', '"string"', '"string"',
                             '"string"', '"string"', '"string"', '"string"'],
          "non-JSON arguments arrive as strings", o)
    expect(["call"] + M + ["lnode", "@probe", "echo", "{bad", "01", "",
                           "caf\u00e9"], 0,
           "non-JSON arguments come back byte for byte",
           out=['"{bad"', '"01"', '""', '"caf\u00e9"'])
    expect(["call"] + M + ["lnode", "@probe", "count", "null", "null"], 0,
           "null arguments are counted", out=["2"])
    expect(["call"] + M + ["lnode", "@probe", "echo"], 0,
           "no arguments, no reply values", out=[])
    expect(["call", "--raw"] + M + ["lnode", "@probe", "echo", "1", "x"], 0,
           "--raw prints MessagePack in hex", out=["01a178"])
    expect(["call"] + M + ["lnode", "@probe", "echo", "-5"], 0,
           "an argument starting with - is an argument", out=["-5"])
    expect(["call"] + M + ["--", "lnode", "@probe", "echo", "x"], 0,
           "-- ends the options", out=['"x"'])
    # the deadline leaves a loaded machine time to connect (a shorter one
    # could end as EUNREACHABLE before the call is even sent)
    expect(["call", "-t", str(int(1500 * SLOW))] + M +
           ["lnode", "@probe", "sleep", str(int(300 * SLOW))], 3,
           "timeout: 3", err="ETIMEDOUT")
    expect(["call"] + M + ["nowhere", "@probe"], 3, "call unknown node: 3",
           err="ENONODE")
    expect(["call"] + M + ["gone", "@probe"], 3, "call node down: 3")
    expect(["call"] + M + ["closed", "@probe"], 3, "call unreachable: 3",
           err="EUNREACHABLE")
    expect(["call"] + M + ["both", "@stock", "GET", "apple"], 0,
           "call a group: its member that is up", out=["7"])


def test_call_c():
    expect(["call"] + M + ["cnode", "@echo", "ADD", "apple", "5", '{"a":[1]}'],
           0, "call the C node", out=['"ADD"', '"apple"', "5", '{"a":[1]}'])
    # C keeps what Lua cannot: null in an object, uint64, empty object
    args = ['{"n":null,"k":[null]}', "18446744073709551615", "{}",
            "-1.5e-300", '"\\u0000"']
    expect(["call"] + M + ["cnode", "@echo"] + args, 0,
           "JSON kinds through the C node",
           out=['{"n":null,"k":[null]}', "18446744073709551615", "{}",
                "-1.5e-300", '"\\u0000"'])
    # not JSON, so sent as typed: a lone surrogate, a raw control byte
    expect(["call"] + M + ["cnode", "@echo", '"\\ud800"', '"a\tb"'], 0,
           "invalid JSON strings are strings",
           out=['"\\"\\\\ud800\\""', '"\\"a\\tb\\""'])
    # @whoami answers raw bytes, not MessagePack: "cnode-id" happens to be
    # positive fixints; --raw shows the bytes
    expect(["call", "--raw"] + M + ["cnode", "@whoami"], 0,
           "--raw on a C reply", out=["cnode-id".encode().hex()])
    # a reply that is not MessagePack at all: \xc1 is never used
    rc, o, e = expect(["call"] + M + ["cnode", "@echo", "x"], 0,
                      "C echo of a string", out=['"x"'])
    expect(["call"] + M + ["cnode", "@block", "10"], 1,
           "C service that does not reply: 1", err="ENOREPLY")
    expect(["call"] + M + ["cnode", "@nope"], 1, "C: no such service: 1",
           err="ENOSERVICE")
    expect(["call", "-t", str(int(1500 * SLOW))] + M + ["cnode", "@hold"], 3,
           "C: a held call times out: 3", err="ETIMEDOUT")


def test_send():
    expect(["send"] + M + ["lnode", "@probe", "note", "a", "1", "[true]"], 0,
           "send to the Lua node", out=[])
    got = wait_for(lambda: skc("call", "-m", MAP, "lnode", "@probe",
                               "notes")[1].strip() == '[["a",1,[true]]]', 5)
    check(got, "the send arrived with its arguments",
          skc("call", "-m", MAP, "lnode", "@probe", "notes")[1])
    expect(["send"] + M + ["cnode", "@sink", "x"], 0, "send to the C node")
    got = wait_for(lambda: "sends=1 " in bytes(
        int(v) for v in skc("call", "-m", MAP, "cnode", "@sink")[1].split()
        if v.isdigit()).decode("latin-1"), 5)
    check(got, "the C node counted the send")
    expect(["send"] + M + ["nowhere", "@probe"], 3, "send unknown node: 3",
           err="ENONODE")
    expect(["send"] + M + ["gone", "@probe"], 3, "send node down: 3",
           err="ENODEDOWN")
    expect(["send"] + M + ["closed", "@probe"], 3, "send unreachable: 3",
           err="EUNREACHABLE")


def start_sysnode(name, what, *opts):
    """Starts a C node named name with opts on 127.0.0.1:0 (log
    WORK/name.log); (process, its URL), or (None, None) after a failed
    check `what`."""
    log = os.path.join(WORK, name + ".log")
    proc = spawn([SYSNODE, "--name", name] + list(opts) + ["127.0.0.1:0"],
                 log)
    line = wait_for(lambda: [l for l in read(log).splitlines()
                             if l.startswith("LISTENING ")], 10)
    if not line:
        check(False, what, read(log))
        return None, None
    return proc, line[0].split()[1]


def listening_ports(pid):
    """The TCP ports process pid listens on (its socket inodes matched in
    /proc/PID/net/tcp)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = []
    with open("/proc/%d/net/tcp" % pid) as f:
        for line in f.readlines()[1:]:
            col = line.split()
            if col[3] == "0A" and col[9] in inodes:  # 0A: LISTEN
                ports.append(int(col[1].split(":")[1], 16))
    return ports


def test_send_refused():
    """A node whose send port's only slot is taken: the message cannot
    leave, and skc send says so (exit 3) instead of exiting 0."""
    proc, url = start_sysnode("full", "the full node started",
                              "--max-conns", "1")
    if proc is None:
        return
    ports = [p for p in listening_ports(proc.pid)
             if p != int(url.rsplit(":", 1)[1])]
    if len(ports) != 1:
        check(False, "the full node has one send port", repr(ports))
        return
    # A PUSH peer on the send port: the SP header of PUSH (0x50), then
    # the node's own header back; it holds the port's only slot.
    holder = socket.create_connection(("127.0.0.1", ports[0]), 5 * SLOW)
    try:
        holder.sendall(b"\x00SP\x00\x00\x50\x00\x00")
        holder.settimeout(5 * SLOW)
        got = b""
        while len(got) < 8:
            part = holder.recv(8 - len(got))
            if not part:
                break
            got += part
        check(len(got) == 8, "the send port answered the SP header", got)
        expect(["send", "-t", str(int(1500 * SLOW)), url, "@sink", "x"], 3,
               "send to a full send port: 3",
               err=["did not leave", "node '%s'" % url, "EUNREACHABLE"])
    finally:
        holder.close()
    expect(["send", "-t", str(int(5000 * SLOW)), url, "@sink", "x"], 0,
           "send once the slot is free")


def test_query():
    rc, o, e = expect(["query"] + M + ["lnode", "stock"], 0, "query @stock")
    h = o.strip()
    check(len(h) == 9 and h[0] == ":", "query prints :handle", o)
    expect(["call"] + M + ["lnode", h, "GET", "apple"], 0,
           "call by the queried handle", out=["7"])
    expect(["query"] + M + ["lnode", "@nothing"], 1, "query unknown name: 1",
           err="ENOSERVICE")
    expect(["query"] + M + ["cnode", "@echo"], 0, "query the C node")
    expect(["query"] + M + ["nowhere", "x"], 3, "query unknown node: 3")
    expect(["query"] + M + ["closed", "x"], 3, "query unreachable: 3")


def test_map(caddr):
    expect(["map"] + M, 0, "map prints every entry", out=[
        "-- source: file %s" % MAP,
        'lnode = "ipc://%s/lnode.ipc"' % WORK,
        'cnode = "%s"' % caddr,
        "gone = false",
        'closed = "tcp://127.0.0.1:1"',
        'both = {"closed","lnode"}',
        '["odd name"] = "tcp://127.0.0.1:2"'])
    other = os.path.join(WORK, "return_form.lua")
    with open(other, "w") as f:
        f.write("--[[ a long\n comment = 1 ]]\n"
                "return {\n"
                "  a = 'x:1',  -- a = comment\n"
                "  b = \"ipc:///tmp/b\",\n"
                "  g = { \"a\", \"b\", policy = \"random\" },\n"
                "  __nowaiting = true,\n"
                "}\n")
    rc, o, e = expect(["map", "-m", other], 0, "map in the return form",
                      out=["-- source: file %s" % other,
                           'a = "tcp://x:1"', 'b = "ipc:///tmp/b"',
                           'g = {"a","b",policy="random"}',
                           "__nowaiting = true"])
    # what map prints loads again to the same map
    again = os.path.join(WORK, "again.lua")
    with open(again, "w") as f:
        f.write(o)
    expect(["map", "-m", again], 0, "map's output is a map",
           out=["-- source: file %s" % again] + o.splitlines()[1:])
    bad = os.path.join(WORK, "bad.lua")
    with open(bad, "w") as f:
        f.write('a = "x:1"\nb = = 2\n')
    expect(["map", "-m", bad], 2, "a malformed map: 2 with file:line",
           err="bad.lua:2")
    expect(["map", "-m", os.path.join(WORK, "absent.lua")], 2,
           "a missing map: 2")
    expect(["call", "-m", bad, "lnode", "@probe"], 2,
           "a malformed map stops a call: 2", err="bad.lua:2")
    expect(["map"], 0, "map from ./clustermap.lua")
    emptydir = os.path.join(WORK, "empty")
    os.mkdir(emptydir)
    p = subprocess.run([SKC, "ping", "lnode"], capture_output=True,
                       cwd=emptydir, env={k: v for k, v in os.environ.items()
                                          if k != "SKC_MAP"})
    check(p.returncode == 2 and b"no cluster map" in p.stderr,
          "no map anywhere: 2", repr(p))


PROM_LINE = re.compile(
    r'^(# TYPE skc_[a-z_]+ (counter|gauge)'
    r'|skc_[a-z_]+\{node="lnode"(,[a-z]+="[^"]*")*\} [0-9.]+)$')


def test_stats():
    """skc stats: the documented JSON schema; --prometheus; errors."""
    expect(["call"] + M + ["lnode", "@stock", "GET", "apple"], 0,
           "a call before the stats", out=["7"])
    rc, o, e = expect(["stats"] + M + ["lnode"], 0, "stats of the Lua node")
    try:
        st = json.loads(o)
    except ValueError as x:
        check(False, "stats prints JSON", "%s: %r" % (x, o))
        return
    check(st.get("node") == "lnode" and st.get("version"),
          "stats names the node and its version", o)
    for section, keys in (
            ("counters", ("calls_ok", "calls_failed", "sends_ok",
                          "sends_failed", "requests_in", "calls_in",
                          "calls_refused", "replies_ok", "replies_failed",
                          "sends_in", "sends_dropped", "bad_frames",
                          "bytes_out", "bytes_in")),
            ("gauges", ("calls_in_flight", "calls_serving", "connections_in",
                        "connections_in_send", "links_up", "workers",
                        "workers_busy", "tasks_ready", "services",
                        "mailbox_messages", "mailbox_bytes"))):
        got = st.get(section, {})
        missing = [k for k in keys if k not in got]
        check(not missing, "stats has every %s key" % section,
              "missing %s in %r" % (missing, got))
    check(st["counters"]["calls_in"] >= 1 and st["counters"]["replies_ok"] >= 1,
          "the call was counted", o)
    check(isinstance(st.get("mailboxes"), list) and
          isinstance(st.get("peers"), dict), "stats has mailboxes and peers", o)
    rc, o, e = expect(["stats", "--prometheus"] + M + ["lnode"], 0,
                      "stats --prometheus")
    bad = [l for l in o.splitlines() if not PROM_LINE.match(l)]
    check(not bad and "skc_calls_in_total{node=\"lnode\"}" in o,
          "--prometheus prints the text format", "bad lines: %r" % bad[:5])
    rc, o, e = expect(["stats"] + M + ["cnode"], 0, "stats of the C node")
    check('"node":"cnode"' in o, "the C node's stats", o)
    expect(["stats"] + M + ["nowhere"], 3, "stats unknown node: 3")
    expect(["stats"] + M + ["closed"], 3, "stats unreachable: 3")


def test_cookie():
    """A node that requires a cluster cookie: --cookie-file and
    $SKC_COOKIE_FILE give it; without it, or with a wrong one, exit 3
    (EAUTH); a cookie file others can read is refused (2)."""
    proc, addr = start_sysnode("secure", "the secure node starts",
                               "--cookie", "s3cret-cookie")
    if proc is None:
        return
    good = os.path.join(WORK, "cookie")
    bad = os.path.join(WORK, "wrong_cookie")
    loose = os.path.join(WORK, "loose_cookie")
    for path, text, mode in ((good, "s3cret-cookie\n", 0o600),
                             (bad, "guess\n", 0o600),
                             (loose, "s3cret-cookie\n", 0o644)):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
    expect(["call", "--cookie-file", good, addr, "@echo", "hi"], 0,
           "--cookie-file: the call goes through", out=['"hi"'])
    expect(["ping", addr], 3, "no cookie: 3", err="EAUTH",
           env={"SKC_COOKIE_FILE": ""})
    expect(["ping", "--cookie-file=" + bad, addr], 3, "a wrong cookie: 3",
           err="EAUTH")
    expect(["stats", addr], 0, "$SKC_COOKIE_FILE gives the cookie",
           env={"SKC_COOKIE_FILE": good})
    expect(["ping", "--cookie-file", loose, addr], 2,
           "a cookie file others can read: 2")
    expect(["ping", "--tls-ca"], 2, "--tls-ca without a value: 2")


def test_usage():
    rc, o, e = expect(["--help"], 0, "skc --help")
    for v in ("ping", "call", "send", "query", "stats", "map", "run"):
        check("skc %s" % v in o, "skc --help lists %s" % v, o)
    for v in ("ping", "call", "send", "query", "stats", "map"):
        rc, o, e = expect([v, "--help"], 0, "skc %s --help" % v)
        check(o.startswith("usage: skc %s" % v) and "Exit codes" in o,
              "skc %s --help explains it" % v, o)
    expect(["call"], 2, "call without arguments: 2", err="usage: skc call")
    expect(["call"] + M + ["lnode"], 2, "call without a target: 2")
    expect(["ping"] + M, 2, "ping without a node: 2")
    expect(["ping"] + M + ["a", "b"], 2, "ping with two nodes: 2")
    expect(["query"] + M + ["lnode"], 2, "query without a name: 2")
    expect(["map"] + M + ["extra"], 2, "map with an argument: 2")
    expect(["call", "-q"] + M + ["lnode", "@probe"], 2, "unknown option: 2",
           err="unknown option '-q'")
    expect(["ping", "--raw"] + M + ["lnode"], 2, "--raw is call's only: 2")
    expect(["ping", "--prometheus"] + M + ["lnode"], 2,
           "--prometheus is stats' only: 2")
    expect(["stats"] + M, 2, "stats without a node: 2")
    expect(["call", "-t", "abc"] + M + ["lnode", "@probe"], 2,
           "a bad deadline: 2", err="-t needs a deadline")
    expect(["call", "-t", "0"] + M + ["lnode", "@probe"], 2,
           "a zero deadline: 2")
    expect(["call", "-m"], 2, "-m without a file: 2")
    expect(["call"] + M + ["lnode", "probe"], 2, "a target without @: 2",
           err="EINVAL")
    expect(["call"] + M + ["lnode", "@probe", "echo", "[" * 65 + "]" * 65],
           2, "JSON nested too deep: 2", err="deeper than 64")
    expect(["call"] + M + ["lnode", "@probe", "echo", "[" * 30 + "]" * 30],
           0, "JSON nested 30 deep is fine", out=["[" * 30 + "]" * 30])
    expect(["call", "--timeout=2000", "--map=" + MAP, "lnode", "@probe",
            "echo", "1"], 0, "long options with =", out=["1"])
    expect(["call", "-t2000", "-m" + MAP, "lnode", "@probe", "echo", "1"], 0,
           "short options attached", out=["1"])


def main():
    caddr = None
    try:
        caddr = start_nodes()
        if caddr is None:
            return 1
        test_usage()
        test_ping(caddr)
        test_call_lua()
        test_call_c()
        test_send()
        test_send_refused()
        test_query()
        test_stats()
        test_cookie()
        test_map(caddr)
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()
        for p in children:
            try:
                p.wait(timeout=10 * SLOW)
            except subprocess.TimeoutExpired:
                print("FAIL process %d did not end" % p.pid)
        if failures == 0:
            shutil.rmtree(WORK, ignore_errors=True)
        else:
            print("logs kept in " + WORK)
    print("%d checks, %d failed" % (checks, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
