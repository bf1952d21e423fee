"""skc.Node: a cluster node driven from one Python thread.

The node is created in caller-driven mode (workers = SKC_CALLER_DRIVEN):
skc starts no worker threads, and every handler and call completion runs
inside skc_node_poll() on the Python thread that polls -- poll(), run(), or
call() while it waits.  Python code never runs on skc's or NNG's threads;
the only exception is the few lines of the log trampoline, which only
queue a record (see Node(log=...)).
"""

import atexit
import collections
import ctypes
import json
import itertools
import logging
import math
import threading
import time
import weakref

from . import _lib
from . import errors
from .payload import pack, unpack, to_values, from_values

__all__ = ["Node", "Message", "Deferred", "Call", "Proxy"]

_L = _lib.lib
_logger = logging.getLogger("skc")

# Longest single wait inside skc_node_poll(), so that signals (Ctrl-C) are
# seen between waits; it does not delay work, poll returns when work is
# ready.
_SLICE_MS = 200
# call() waits this long past a call's deadline for libskc's completion
# before ending the call itself (libskc promises to end every call by its
# deadline; this only guards against a lost completion).
_SLACK_S = 5.0
_DEFAULT_CALL_TIMEOUT_S = 10.0

_LOG_LEVELS = {
    "error": _lib.LOG_ERROR, "warn": _lib.LOG_WARN,
    "warning": _lib.LOG_WARN, "info": _lib.LOG_INFO,
    "debug": _lib.LOG_DEBUG,
}
_TO_LOGGING = {
    _lib.LOG_ERROR: logging.ERROR, _lib.LOG_WARN: logging.WARNING,
    _lib.LOG_INFO: logging.INFO, _lib.LOG_DEBUG: logging.DEBUG,
}

_live = weakref.WeakSet()


@atexit.register
def _close_all():
    # Destroy nodes before the interpreter goes away, so no skc thread can
    # enter a ctypes trampoline during finalisation.
    for node in list(_live):
        try:
            node.close()
        except Exception:
            pass


_event_lock = threading.Lock()  # creates Call._event once per call


def _bytes(s, what="argument"):
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    if isinstance(s, str):
        return s.encode("utf-8")
    if hasattr(s, "__fspath__"):
        import os
        return os.fsencode(s)
    raise TypeError("%s must be str or bytes, not %s"
                    % (what, type(s).__name__))


def _target(t):
    """A call target: "@name", ".name", ":hex", a bare name (= "@name")
    or an int service handle (= ":%08x")."""
    if isinstance(t, bool):
        raise TypeError("target must be str or int, not bool")
    if isinstance(t, int):
        if not 0 < t <= 0xFFFFFFFF:
            raise ValueError("service handle out of range: %r" % t)
        return b":%08x" % t
    b = _bytes(t, "target")
    if b and b[:1] not in (b"@", b".", b":"):
        b = b"@" + b
    return b


def _name_key(name):
    b = _target(name)
    return b.decode("utf-8", "replace")


class _DefaultTimeout(object):
    """The type of DEFAULT_TIMEOUT."""
    __slots__ = ()

    def __repr__(self):
        return "skc.DEFAULT_TIMEOUT"


# The default of every call's and query's timeout=: the node's
# call_timeout.  timeout=None means no deadline, as for sockets and
# concurrent.futures (the standard library's socket.create_connection uses
# a sentinel default the same way).
DEFAULT_TIMEOUT = _DefaultTimeout()

# "No deadline" for libskc: 2e9 ms (about 23 days), the longest a call can
# be given (libskc adds a grace period in an int32, so values near
# INT32_MAX overflow).
_NO_DEADLINE_MS = 2000000000


def _ms(timeout, what="timeout"):
    """Seconds (int/float) -> milliseconds for skc; DEFAULT_TIMEOUT -> 0
    (the node's default); None -> no deadline."""
    if timeout is DEFAULT_TIMEOUT:
        return 0
    if timeout is None:
        return _NO_DEADLINE_MS
    t = float(timeout)
    if not t > 0 or math.isinf(t):
        raise ValueError("%s must be a positive number of seconds or None, "
                         "not %r" % (what, timeout))
    return min(_NO_DEADLINE_MS, max(1, int(math.ceil(t * 1000))))


_PEER_STATES = {
    _lib.PEER_UNKNOWN: "unknown", _lib.PEER_CONNECTING: "connecting",
    _lib.PEER_UP: "up", _lib.PEER_DOWN: "down",
}


def _quote(b):
    """bytes -> a quoted string of the map format: backslash, double
    quote and control bytes escaped (control bytes as decimal escapes,
    which the map parser reads as Lua does)."""
    out = bytearray(b'"')
    for c in b:
        if c in (0x22, 0x5C):
            out += b"\\" + bytes((c,))
        elif c < 0x20 or c == 0x7F:
            out += b"\\%03d" % c
        else:
            out.append(c)
    out += b'"'
    return bytes(out)


def _map_text(items):
    """reload()'s entries as map text, one entry a line."""
    lines = [b"return {"]
    for k, v in items:
        key = b"[" + _quote(_bytes(k, "map name")) + b"] = "
        if isinstance(v, dict):
            unknown = set(v) - {"members", "policy"}
            if unknown or "members" not in v:
                raise ValueError("map group %r: expected {'members': [...], "
                                 "'policy': ...}, got keys %s"
                                 % (k, sorted(map(str, v))))
            members, policy = v["members"], v.get("policy")
        elif isinstance(v, (list, tuple)):
            members, policy = v, None
        else:
            members = None
        if members is not None:
            if isinstance(members, (str, bytes)):
                raise TypeError("map group %r: members must be a list of "
                                "names" % (k,))
            parts = [_quote(_bytes(m, "member")) for m in members]
            if policy is not None:
                parts.append(b"policy = " + _quote(_bytes(policy, "policy")))
            lines.append(key + b"{" + b", ".join(parts) + b"},")
        elif v is None or v is False:
            lines.append(key + b"false,")
        elif v is True:
            lines.append(key + b"true,")
        else:
            lines.append(key + _quote(_bytes(v, "map address")) + b",")
    lines.append(b"}")
    return b"\n".join(lines) + b"\n"


def _exc_text(exc):
    """How a Python exception travels to a remote caller."""
    name = type(exc).__name__
    text = str(exc)
    return "%s: %s" % (name, text) if text else name


def _text(b):
    return b.decode("utf-8", "replace") if b else ""


class _Service(object):
    __slots__ = ("handler", "raw", "names", "owned")

    def __init__(self, handler, raw, owned):
        self.handler = handler
        self.raw = raw
        self.names = set()
        self.owned = owned      # created by register(): destroyed with its
                                # last name


class Message(object):
    """The message a handler is running for (Node.message), valid only
    until the handler returns.

    kind       "call" or "send"
    target     the name it was addressed to ("@sdb", ".db", ":0000000a")
    service    the handle of the service that received it
    remaining  seconds left before the caller gives up, or None (sends)
    """

    __slots__ = ("_node", "_p", "_answered", "kind", "target", "service",
                 "remaining", "__weakref__")

    def __init__(self, node, ptr, service):
        self._node = node
        self._p = ptr
        self._answered = False
        k = _L.skc_msg_kind(ptr)
        self.kind = "call" if k == _lib.MSG_CALL else "send"
        self.target = _text(_L.skc_msg_target(ptr))
        self.service = service
        ms = _L.skc_msg_remaining_ms(ptr)
        self.remaining = None if ms < 0 else ms / 1000.0

    @property
    def is_call(self):
        return self.kind == "call"

    def defer(self):
        """Takes the reply out of the handler, to answer later (from any
        thread) with the returned Deferred; the handler's return value is
        then ignored.  Raises skc.StateError for a send, after the handler
        returned, or when already deferred."""
        if self._p is None:
            raise _lib.error(errors.StateError.CODE,
                             "the message's handler has returned")
        out = ctypes.c_void_p()
        _L.skc_msg_defer(self._p, ctypes.byref(out))
        self._answered = True
        return Deferred(out.value)

    def _reply(self, data):
        self._answered = True
        _L.skc_msg_reply(self._p, data, len(data))

    def _fail(self, text):
        self._answered = True
        _L.skc_msg_fail(self._p, _bytes(text))

    def __repr__(self):
        return "<skc.Message %s %s>" % (self.kind, self.target)


class Deferred(object):
    """A reply taken out of a handler with Message.defer().  Answer it once
    with reply(), reply_raw() or fail(); abandon() or garbage collection
    without an answer gives the caller skc.NoReply."""

    __slots__ = ("_p", "_lock")

    def __init__(self, ptr):
        self._p = ptr
        self._lock = threading.Lock()

    def _take(self):
        with self._lock:
            p, self._p = self._p, None
        if p is None:
            raise _lib.error(errors.StateError.CODE,
                             "deferred reply already answered")
        return p

    @property
    def done(self):
        return self._p is None

    def reply(self, *values):
        """Answers with values (packed as the payload convention)."""
        self.reply_raw(pack(*values))

    def reply_raw(self, data):
        """Answers with a raw payload (bytes)."""
        data = bytes(data)
        _L.skc_reply_send(self._take(), data, len(data))

    def fail(self, error):
        """Answers with an error: the caller gets skc.HandlerError whose
        detail is `error` (a str, or an exception as "Type: text")."""
        text = error if isinstance(error, (str, bytes)) else _exc_text(error)
        _L.skc_reply_fail(self._take(), _bytes(text))

    def abandon(self):
        """Gives up without answering: the caller gets skc.NoReply."""
        with self._lock:
            p, self._p = self._p, None
        _L.skc_reply_free(p)

    def __del__(self):
        try:
            self.abandon()
        except Exception:
            pass


class Call(object):
    """An asynchronous call started by Node.call_async()."""

    def __init__(self, node, raw, callback):
        self._node = node
        self._raw = raw
        self._callback = callback
        self._done = False
        self._value = None
        self._error = None
        # Made only when a thread that cannot poll waits for this call
        # (Node._wait): most calls end on the polling thread, and an Event
        # per call was a large part of call_async's cost.
        self._event = None

    def done(self):
        """True once the call has ended (result or error)."""
        return self._done

    @property
    def error(self):
        """The skc.Error the call ended with, or None."""
        return self._error

    def result(self, timeout=None):
        """The reply, as Node.call() returns it; raises the call's
        skc.Error.  If the call has not ended yet, waits for it: by polling
        the node when this thread may (then handlers run meanwhile), else
        by waiting for the polling thread to complete it.  With timeout
        (seconds), raises skc.Timeout if it has not ended by then (the call
        itself goes on)."""
        if not self._done:
            self._node._wait(self, timeout)
        if self._error is not None:
            raise self._error
        return self._value

    def _finish(self, status, payload, detail):
        if self._done:
            return
        if status == 0:
            if self._raw:
                self._value = payload
            else:
                try:
                    self._value = from_values(unpack(payload))
                except errors.Error as exc:
                    self._error = exc
        else:
            self._error = _lib.error(status, detail)
        self._done = True
        ev = self._event  # read after _done is set: see Node._wait
        if ev is not None:
            ev.set()
        cb, self._callback = self._callback, None
        if cb is not None:
            try:
                cb(self._error, self._value)
            except Exception as exc:
                self._node._report(exc, "in call_async callback")

    def __repr__(self):
        state = "done" if self._done else "pending"
        return "<skc.Call %s>" % state


def _channel_flags(channel):
    """SKC_CALL_CHANNEL(channel) for the call flags; 0 = none."""
    if isinstance(channel, bool) or not isinstance(channel, int) or \
            not 0 <= channel <= 255:
        raise ValueError("channel must be 0..255, not %r" % (channel,))
    return channel << 8


class Proxy(object):
    """A (node, target) pair, like skynet's cluster.proxy()."""

    __slots__ = ("node", "peer", "target")

    def __init__(self, node, peer, target):
        self.node = node
        self.peer = peer
        self.target = target

    def call(self, *args, timeout=DEFAULT_TIMEOUT, channel=0):
        return self.node.call(self.peer, self.target, *args, timeout=timeout,
                              channel=channel)

    def send(self, *args):
        return self.node.send(self.peer, self.target, *args)

    def call_async(self, *args, callback=None, timeout=DEFAULT_TIMEOUT,
                   channel=0):
        return self.node.call_async(self.peer, self.target, *args,
                                    callback=callback, timeout=timeout,
                                    channel=channel)

    def __repr__(self):
        return "<skc.Proxy %s %s>" % (self.peer, _name_key(self.target))


class Node(object):
    """A cluster node.  See docs/PYTHON.md.

    Node(name=None, *, call_timeout=None, max_msg_size=None,
         max_inflight=None, max_serving=None, max_conns=None,
         log=None, log_level=None)

    name          this node's name; None = taken by open(name)
    call_timeout  default deadline of call()/query() in seconds (skc: 10)
    max_msg_size  payload limit in bytes (skc: 16 MiB)
    max_inflight  outgoing calls pending at once (skc: 65536)
    max_serving   incoming calls served at once (skc: 1024)
    max_conns     inbound connections (skc: 1024)
    log           None/False: nothing; True or "stderr": skc's own stderr
                  logger (C, no Python involved); a logging.Logger; or a
                  callable(level, node_name, text).  Python sinks receive
                  records on the Python thread, during poll()/run()/call().
    log_level     highest level logged: skc.LOG_ERROR .. skc.LOG_DEBUG or
                  "error"/"warn"/"info"/"debug" (skc: info)
    heartbeat_ms  a link idle this long (milliseconds) is pinged (skc:
                  1000); -1 = no heartbeats
    heartbeat_misses  a peer silent for heartbeat_ms * this many is
                  declared down (skc: 3)
    max_mailbox, max_mailbox_bytes  messages (and their payload bytes)
                  waiting per service (skc: 100000, 64 MiB); beyond, a call
                  gets skc.LimitReached and sends wait (the node stops
                  reading them until there is room)
    max_queued_bytes  payload bytes waiting in all mailboxes (skc: 256 MiB)
    hello_timeout_ms  a connection to this node's call port that sends
                  nothing this long after connecting is closed (skc:
                  10000); -1 = never
    idle_timeout_ms  a connection that sends nothing this long is closed
                  (skc: 60000); -1 = never
    etcd          the cluster map from etcd v3: "http://127.0.0.1:2379",
                  "https://..." or "etcd://host:port/prefix"; the node
                  announces itself when it opens (docs/PYTHON.md)
    etcd_prefix   key prefix (skc: the etcd:// path, else "/skc")
    etcd_ttl      lease of this node's key in seconds (skc: 3)
    etcd_cafile, etcd_certfile, etcd_keyfile  https: files for curl
    etcd_listen   what open(name) listens on (skc: "127.0.0.1:0")
    cluster_cookie  the cluster's shared secret (str or bytes): every
                  connection, both ways, proves it (docs/SECURITY.md)
    cluster_cookie_file  read the cookie from this file's first line; it
                  must not be readable by group or others
    tls_cert, tls_key  PEM files of this node's certificate and key, for
                  tls+tcp:// addresses (listening and dialing)
    tls_ca        PEM CA file: peers must show a certificate it signed
                  (mutual TLS)
    tls_server_name  the name the servers' certificates must carry
    names_only    True: peers may not target services by raw handle
    large_msg     a call whose payload has at least this many bytes goes
                  on the peer's large-message lane, its own connection, so
                  it does not hold up small calls (skc: 65536); -1 = no
                  such lane (docs/PERFORMANCE.md, "Lanes")
    channels      lanes that calls choose with channel=k (1..255; lane
                  (k - 1) % channels) (skc: 4); -1 = none
    """

    _OPTIONS = ("call_timeout", "max_msg_size", "max_inflight", "max_serving",
                "max_conns", "log", "log_level", "heartbeat_ms",
                "heartbeat_misses", "max_mailbox", "max_mailbox_bytes",
                "max_queued_bytes", "hello_timeout_ms", "idle_timeout_ms",
                "etcd", "etcd_prefix", "etcd_ttl", "etcd_cafile",
                "etcd_certfile", "etcd_keyfile", "etcd_listen",
                "cluster_cookie", "cluster_cookie_file", "tls_cert",
                "tls_key", "tls_ca", "tls_server_name", "names_only",
                "large_msg", "channels")

    def __init__(self, name=None, **options):
        self._h = None
        self._closing = False
        unknown = sorted(set(options) - set(self._OPTIONS))
        if unknown:
            raise TypeError("unknown Node option(s): %s" % ", ".join(unknown))
        self._services = {}        # handle -> _Service
        self._names = {}           # "@name"/".name" -> handle
        self._pending = {}         # token -> Call
        self._tokens = itertools.count(1)   # next() is atomic
        self._depth = 0            # handlers/completions running now
        self._current = []         # stack of Message
        self._stopping = False
        self._raise_later = None   # BaseException from a callback
        self._poll_lock = threading.Lock()
        self._owner = None         # thread id holding _poll_lock
        self._logq = collections.deque(maxlen=10000)
        self._log_sink = None
        self._log_cb = None

        opts = _lib.NodeOpts()
        opts.size = ctypes.sizeof(_lib.NodeOpts)
        opts.name = _bytes(name, "name")
        opts.workers = _lib.CALLER_DRIVEN
        ct = options.get("call_timeout")
        opts.call_timeout_ms = _ms(DEFAULT_TIMEOUT if ct is None else ct,
                                   "call_timeout")
        self._default_timeout = (float(ct) if ct is not None
                                 else _DEFAULT_CALL_TIMEOUT_S)
        for key in ("max_msg_size", "max_inflight", "max_serving",
                    "max_conns", "max_mailbox", "max_mailbox_bytes",
                    "max_queued_bytes"):
            v = options.get(key)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int) or \
                        not 0 < v <= 0xFFFFFFFF:
                    raise ValueError("%s must be a positive int, not %r"
                                     % (key, v))
                setattr(opts, key, v)
        for key, low in (("heartbeat_ms", -1), ("heartbeat_misses", 1),
                         ("hello_timeout_ms", -1), ("idle_timeout_ms", -1),
                         ("large_msg", -1), ("channels", -1)):
            v = options.get(key)
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int) or \
                        not (v == low or 0 < v <= 0x7FFFFFFF):
                    raise ValueError("%s must be %s, not %r" % (
                        key, "-1 (off) or a positive int" if low < 0
                        else "a positive int", v))
                setattr(opts, key, v)
        for key in ("etcd", "etcd_prefix", "etcd_cafile", "etcd_certfile",
                    "etcd_keyfile", "etcd_listen"):
            if options.get(key) is not None:
                setattr(opts, key, _bytes(options[key], key))
        ttl = options.get("etcd_ttl")
        if ttl is not None:
            if isinstance(ttl, bool) or not isinstance(ttl, int) or \
                    not 0 < ttl <= 3600:
                raise ValueError("etcd_ttl must be 1..3600 seconds, not %r"
                                 % (ttl,))
            opts.etcd_ttl_s = ttl
        for key in ("cluster_cookie", "cluster_cookie_file", "tls_cert",
                    "tls_key", "tls_ca", "tls_server_name"):
            setattr(opts, key, _bytes(options.get(key), key))
        opts.names_only = 1 if options.get("names_only") else 0
        lvl = options.get("log_level")
        if lvl is not None:
            if isinstance(lvl, str):
                if lvl.lower() not in _LOG_LEVELS:
                    raise ValueError("unknown log_level %r" % lvl)
                lvl = _LOG_LEVELS[lvl.lower()]
            opts.log_level = int(lvl)
        log = options.get("log")
        if log is True or log == "stderr":
            opts.log = _lib.LOG_STDERR
        elif log is None or log is False:
            pass
        elif isinstance(log, logging.Logger):
            self._log_sink = lambda lvl, node, text: log.log(
                _TO_LOGGING.get(lvl, logging.INFO), "[%s] %s", node, text)
        elif callable(log):
            self._log_sink = log
        else:
            raise TypeError("log must be None, True, 'stderr', a "
                            "logging.Logger or a callable")
        if self._log_sink is not None:
            self._log_cb = _lib.LOG_FN(self._on_log)
            opts.log = ctypes.cast(self._log_cb, ctypes.c_void_p).value

        # Trampolines: C holds them as long as the node lives, so they are
        # attributes of the node (released only after skc_node_destroy).
        self._handler_cb = _lib.HANDLER_FN(self._on_message)
        self._call_cb = _lib.CALL_FN(self._on_complete)
        self._query_cb = _lib.QUERY_FN(self._on_query)
        self._ping_cb = _lib.PING_FN(self._on_ping)
        self._monitor_cb = None    # MONITOR_FN, set by the first monitor()
        self._monitors = []
        self._watch_cb = None      # MAP_RELOAD_FN while watch_map is on
        self._watch_fn = None

        h = ctypes.c_void_p()
        _L.skc_node_create(ctypes.byref(h), ctypes.byref(opts))
        self._h = h.value
        _live.add(self)

    # -- lifecycle -------------------------------------------------------

    def _hnd(self):
        h = self._h
        if h is None or self._closing:
            raise _lib.error(errors.Closed.CODE, "the Python node is closed")
        return h

    def close(self):
        """Destroys the node: listeners and links close, pending calls end
        with skc.Closed, services go away.  Idempotent.  Raises skc.Busy
        from inside one of this node's handlers or callbacks."""
        h = self._h
        if h is None or self._closing:
            return
        if self._depth or self._owner == threading.get_ident():
            raise _lib.error(errors.Busy.CODE,
                             "close() from inside this node's handler")
        # Another thread may be polling: make it stop and wait for it, so
        # that destroy never runs concurrently with skc_node_poll().
        self._stopping = True
        _L.skc_node_wakeup(h)
        self._poll_lock.acquire()
        try:
            self._closing = True
            try:
                _L.skc_node_destroy(h)
            except BaseException:
                self._closing = False
                raise
            self._h = None
        finally:
            self._stopping = False
            self._poll_lock.release()
        _live.discard(self)
        # Calls libskc did not complete (it cannot any more) end here, so
        # every call ends exactly once.
        pending, self._pending = self._pending, {}
        for c in pending.values():
            c._finish(errors.Closed.CODE, b"", "the node was closed")
        self._services.clear()
        self._names.clear()
        self._flush_logs()

    @property
    def closed(self):
        return self._h is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if getattr(self, "_h", None) is not None and not self._depth:
                self.close()
        except Exception:
            pass

    def __repr__(self):
        if self._h is None:
            return "<skc.Node closed>"
        return "<skc.Node %r>" % self.name

    @property
    def name(self):
        """This node's name ("" until it has one)."""
        return _text(_L.skc_node_name(self._hnd()))

    # -- listening ---------------------------------------------------------

    def open(self, where):
        """Starts listening on a cluster-map name (the node takes that name
        if it has none) or an address ("host:port", "tcp://...",
        "ipc://...", port 0 = any).  Returns the bound address as a URL."""
        out = ctypes.c_void_p()
        _L.skc_node_open(self._hnd(), ctypes.byref(out),
                         _bytes(where, "where"))
        return _lib.take_string(out.value)

    def close_listeners(self):
        """Stops every listener (skc_node_close_listeners); outgoing calls go
        on."""
        _L.skc_node_close_listeners(self._hnd())

    def fileno(self):
        """A descriptor that becomes readable when poll() has work (for
        select/selectors/asyncio add_reader).  Do not read or close it."""
        fd = ctypes.c_int()
        _L.skc_node_fd(self._hnd(), ctypes.byref(fd))
        return fd.value

    # -- cluster map -------------------------------------------------------

    def load_map(self, path):
        """Reads a cluster map file (skynet's format) and merges it;
        reload() re-reads it.  skc.MapSyntaxError / skc.FileError."""
        _L.skc_node_map_load(self._hnd(), _bytes(path, "path"))

    def reload(self, entries=None):
        """reload() re-reads the map file; reload({name: addr, ...})
        merges entries, all or nothing, like skynet's cluster.reload.
        An address False or None marks the node down; "__nowaiting" takes
        True/False.  A group is a list of node names (policy failover) or
        {"members": [...], "policy": "roundrobin" | "random" |
        "failover"}; a malformed one raises skc.MapSyntaxError and nothing
        is applied."""
        h = self._hnd()
        if entries is None:
            _L.skc_node_map_reload(h)
            return
        items = list(dict(entries).items())
        if any(isinstance(v, (list, tuple, dict)) for _, v in items):
            # A group: the whole update as map text, which
            # skc_node_map_parse checks entirely before it applies any of
            # it (all or nothing, as skc_node_map_update).
            _L.skc_node_map_parse(h, _map_text(items), b"reload")
            return
        n = len(items)
        names = (ctypes.c_char_p * max(n, 1))()
        addrs = (ctypes.c_char_p * max(n, 1))()
        for i, (k, v) in enumerate(items):
            names[i] = _bytes(k, "map name")
            addrs[i] = self._map_value(v)
        _L.skc_node_map_update(h, names, addrs, n)

    @staticmethod
    def _map_value(v):
        if v is None or v is False:
            return None
        if v is True:
            return b"true"
        return _bytes(v, "map address")

    def parse_map(self, text, origin=None):
        """Merges a map given as text in the file format."""
        _L.skc_node_map_parse(self._hnd(), _bytes(text, "text"),
                              _bytes(origin, "origin"))

    def map_set(self, name, addr):
        """Sets one entry (addr None/False = down)."""
        _L.skc_node_map_set(self._hnd(), _bytes(name, "name"),
                            self._map_value(addr))

    def map_set_group(self, name, members, policy=None):
        """Makes name a group of the node names members (policy None =
        "failover", "roundrobin" or "random").  Raises skc.Error
        (skc.InvalidArgument or skc.MapSyntaxError, with the reason) for
        no members, a repeated one, a member that is a group, an unknown
        policy."""
        members = [_bytes(m, "member") for m in members]
        arr = (ctypes.c_char_p * max(len(members), 1))(*members)
        _L.skc_node_map_set_group(self._hnd(), _bytes(name, "name"), arr,
                                  len(members), _bytes(policy, "policy"))

    def watch_map(self, on=True, callback=None):
        """While on, the node reloads the map file given to load_map()
        whenever that file changes on disk (edited in place, replaced by a
        rename, a symlink swapped): a merge, as reload().  callback(ok,
        detail), if given, is told of each reload on the polling thread:
        ok True (detail: the file) or False (detail: the error with
        file:line; a bad edit changes nothing).  skc.StateError if no
        file was loaded."""
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        if not on:
            _L.skc_node_map_watch(self._hnd(), 0, _lib.MAP_RELOAD_FN(), None)
            self._watch_fn = None
            return
        if self._watch_cb is None:
            self._watch_cb = _lib.MAP_RELOAD_FN(self._on_map_reload)
        self._watch_fn = callback
        _L.skc_node_map_watch(self._hnd(), 1, self._watch_cb, None)

    def map_get(self, name):
        """The address of a map entry as a URL, None if marked down, a
        group as its map text ('{"db_a","db_b"}'); skc.UnknownNode if
        absent."""
        out = ctypes.c_void_p()
        _L.skc_node_map_get(self._hnd(), ctypes.byref(out),
                            _bytes(name, "name"))
        return _lib.take_string(out.value)

    def map_names(self):
        """Every name the map has an entry for (nodes, nodes marked down,
        groups), sorted."""
        out = ctypes.c_void_p()
        _L.skc_node_map_names(self._hnd(), ctypes.byref(out))
        return (_lib.take_string(out.value) or "").splitlines()

    def map_source(self):
        """Where the map comes from: "etcd <endpoint> prefix <prefix>",
        "file <path>", or "" (entries set by calls only)."""
        out = ctypes.c_void_p()
        _L.skc_node_map_source(self._hnd(), ctypes.byref(out))
        return _lib.take_string(out.value) or ""

    # -- peer health -------------------------------------------------------

    def monitor(self, callback):
        """Calls callback(node, state, reason) for every change of a peer's
        state after this call: state "up" or "down", reason "connected",
        "refused", "unreachable", "reset", "heartbeat timeout", "marked
        down", "address changed", ...  It runs on the polling thread
        (inside poll(), run(), call() ...), as handlers do, one report at
        a time in the order the changes happened.  Several callbacks may
        be registered; each report goes to all, in registration order.
        Returns callback (for unmonitor)."""
        if not callable(callback):
            raise TypeError("callback must be callable")
        if self._monitor_cb is None:
            cb = _lib.MONITOR_FN(self._on_monitor)
            _L.skc_node_monitor(self._hnd(), cb, None)
            self._monitor_cb = cb      # C holds it until destroy
        self._monitors.append(callback)
        return callback

    def unmonitor(self, callback):
        """Removes a callback given to monitor(); True if it was there."""
        try:
            self._monitors.remove(callback)
            return True
        except ValueError:
            return False

    def peer_state(self, name):
        """(state, detail): state is "up", "down", "connecting" or
        "unknown" (not contacted, or not in the map); for a group "up"
        when a member is up, "down" when all are.  detail is skc's text,
        e.g. "tcp://127.0.0.1:7311 down (reset)"."""
        st = ctypes.c_int()
        out = ctypes.c_void_p()
        _L.skc_node_peer_state(self._hnd(), _bytes(name, "name"),
                               ctypes.byref(st), ctypes.byref(out))
        return _PEER_STATES.get(st.value, "unknown"), \
            _lib.take_string(out.value) or ""

    def ping(self, name, timeout=DEFAULT_TIMEOUT):
        """Pings node name (a group: the member a call would go to) and
        returns the round-trip time in seconds (a float, microsecond
        resolution).  Waits like call(): this node serves meanwhile.
        Raises as call() does (skc.Timeout, skc.NodeDown ...)."""
        ms = _ms(timeout)
        peer = _bytes(name, "name")
        if self._try_own():
            return self._await_async(ms, lambda token: _L.skc_node_ping_async(
                self._hnd(), peer, ms, self._ping_cb, token))
        rtt = ctypes.c_int64()
        try:
            _L.skc_node_ping(self._hnd(), peer, ms, ctypes.byref(rtt))
        finally:
            self._flush_logs()
        return rtt.value / 1e6

    def stats(self, name=None, timeout=DEFAULT_TIMEOUT):
        """This node's statistics, or node name's (asked over the
        network), as a dict: the JSON of docs/OPERATIONS.md
        ("Statistics").  Asking another node blocks for at most timeout
        (this node does not serve meanwhile) and raises as ping() does."""
        out = ctypes.c_void_p()
        if name is None:
            _L.skc_node_stats(self._hnd(), ctypes.byref(out))
        else:
            try:
                _L.skc_node_stats_remote(self._hnd(), _bytes(name, "name"),
                                         _ms(timeout), ctypes.byref(out))
            finally:
                self._flush_logs()
        return json.loads(_lib.take_string(out.value))

    # -- services ----------------------------------------------------------

    def create_service(self, handler, raw=False):
        """Creates an unnamed service running handler; returns its handle
        (reachable as target ":%08x" or the int itself)."""
        return self._create(handler, raw, owned=False)

    def _create(self, handler, raw, owned):
        if not callable(handler):
            raise TypeError("handler must be callable")
        out = ctypes.c_uint32()
        _L.skc_service_create(self._hnd(), ctypes.byref(out),
                              self._handler_cb, None)
        self._services[out.value] = _Service(handler, bool(raw), owned)
        return out.value

    def destroy_service(self, handle):
        """Destroys a service and its names; queued calls get
        skc.NoReply."""
        _L.skc_service_destroy(self._hnd(), handle)
        svc = self._services.pop(handle, None)
        if svc is not None:
            for n in svc.names:
                self._names.pop(n, None)

    def register(self, name, handler, raw=False):
        """Registers a name ("@name" cluster-wide, ".name" node-local, bare
        = "@name") for handler -- a callable, for which a new service is
        created, or the int handle of an existing service.  Returns the
        service handle.

        The handler is called as handler(*args) with the decoded arguments
        and returns the reply: None = no values, a tuple = several values,
        anything else = one value.  An exception becomes an error reply
        (the caller gets skc.HandlerError "ExcType: message").  With
        raw=True it gets the payload bytes and returns bytes (or None)."""
        key = _name_key(name)
        if isinstance(handler, int) and not isinstance(handler, bool):
            _L.skc_name_register(self._hnd(), _bytes(key), handler)
            svc = self._services.get(handler)
            if svc is not None:
                svc.names.add(key)
            self._names[key] = handler
            return handler
        handle = self._create(handler, raw, owned=True)
        try:
            _L.skc_name_register(self._hnd(), _bytes(key), handle)
        except BaseException:
            self.destroy_service(handle)
            raise
        self._services[handle].names.add(key)
        self._names[key] = handle
        return handle

    def unregister(self, name):
        """Removes a name; a service created by register() goes away with
        its last name.  skc.NoService if the name is not registered."""
        key = _name_key(name)
        _L.skc_name_unregister(self._hnd(), _bytes(key))
        handle = self._names.pop(key, None)
        svc = self._services.get(handle)
        if svc is not None:
            svc.names.discard(key)
            if svc.owned and not svc.names:
                self.destroy_service(handle)

    def lookup(self, name):
        """The handle registered under name on this node (skc.NoService)."""
        out = ctypes.c_uint32()
        _L.skc_name_lookup(self._hnd(), ctypes.byref(out),
                           _bytes(_name_key(name)))
        return out.value

    @property
    def message(self):
        """The Message the running handler serves (None outside
        handlers)."""
        return self._current[-1] if self._current else None

    # -- calling -----------------------------------------------------------

    def _await_async(self, ms, start):
        # Called with the node owned (_try_own): start(token) begins an
        # skc_*_async whose callback finds its Call by token; polls until
        # it ends, so this node serves meanwhile, then disowns.
        try:
            token = next(self._tokens)
            c = Call(self, True, None)
            c._limit = time.monotonic() + (ms / 1000.0 if ms
                                           else self._default_timeout)
            self._pending[token] = c
            try:
                start(token)
            except BaseException:
                self._pending.pop(token, None)
                raise
            self._wait_locked(c, None)
        finally:
            self._disown()
        return c.result()

    def query(self, node, name, timeout=DEFAULT_TIMEOUT):
        """Asks node for the handle registered under name (int)."""
        ms = _ms(timeout)
        if self._try_own():
            # As in _call: wait by polling, so this node serves meanwhile
            # (a node may query itself).
            return self._await_async(ms, lambda token: _L.skc_node_query_async(
                self._hnd(), _bytes(node, "node"), _bytes(_name_key(name)),
                ms, self._query_cb, token))
        # Inside a handler, or another thread polls: the blocking query.
        out = ctypes.c_uint32()
        try:
            _L.skc_node_query(self._hnd(), ctypes.byref(out),
                              _bytes(node, "node"), _bytes(_name_key(name)),
                              ms)
        finally:
            self._flush_logs()
        return out.value

    def call(self, node, target, *args, timeout=DEFAULT_TIMEOUT, channel=0):
        """Calls target on node with args and returns the reply: None for
        no values, the value for one, a tuple for several.  timeout in
        seconds; by default the node's call_timeout; None = no deadline
        (a long poll).  channel 1..255 sends it on that channel's lane to
        the peer (its own connection; skynet's dedicated channels), 0 =
        none.  Raises skc.Error
        subclasses (Timeout, NodeDown, HandlerError ...)."""
        return self._call(node, target, pack(*args), timeout, False,
                          channel)

    def call_raw(self, node, target, data, timeout=DEFAULT_TIMEOUT,
                 channel=0):
        """call() with a raw payload: bytes in, bytes out."""
        return self._call(node, target, bytes(data), timeout, True, channel)

    def call_async(self, node, target, *args, callback=None,
                   timeout=DEFAULT_TIMEOUT, channel=0):
        """Starts a call and returns a Call.  callback(error, result) runs
        once on the polling thread when it ends (error None on success)."""
        return self._start(node, target, pack(*args), timeout, False,
                           callback, channel)

    def call_async_raw(self, node, target, data, callback=None,
                       timeout=DEFAULT_TIMEOUT, channel=0):
        return self._start(node, target, bytes(data), timeout, True,
                           callback, channel)

    def send(self, node, target, *args):
        """Sends a one-way message (no reply, no acknowledgement)."""
        self.send_raw(node, target, pack(*args))

    def send_raw(self, node, target, data):
        data = bytes(data)
        try:
            _L.skc_node_send(self._hnd(), _bytes(node, "node"),
                             _target(target), data, len(data))
        finally:
            self._flush_logs()

    def proxy(self, node, target):
        """A Proxy with call()/send() bound to (node, target)."""
        return Proxy(self, node, target)

    def _start(self, node, target, data, timeout, raw, callback, channel=0):
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        flags = _channel_flags(channel)
        ms = _ms(timeout)
        h = self._hnd()
        token = next(self._tokens)
        c = Call(self, raw, callback)
        c._limit = time.monotonic() + (ms / 1000.0 if ms
                                       else self._default_timeout)
        self._pending[token] = c
        try:
            _L.skc_node_call_async_ex(h, _bytes(node, "node"),
                                      _target(target), data, len(data), ms,
                                      flags, self._call_cb, token)
        except BaseException:
            self._pending.pop(token, None)
            raise
        return c

    def _call(self, node, target, data, timeout, raw, channel=0):
        flags = _channel_flags(channel)
        if self._try_own():
            # This thread may poll: run the call asynchronously and serve
            # this node's handlers until it ends (so a node can call
            # itself).
            try:
                c = self._start(node, target, data, timeout, raw, None,
                                channel)
                self._wait_locked(c, None)
            finally:
                self._disown()
            return c.result()
        # Inside a handler or callback (skc_node_poll cannot nest), or
        # another thread is polling: a plain blocking call.  This node's
        # handlers do not run meanwhile.
        ms = _ms(timeout)
        out = ctypes.c_void_p()
        n = ctypes.c_size_t()
        try:
            _L.skc_node_call_ex(self._hnd(), ctypes.byref(out),
                                ctypes.byref(n), _bytes(node, "node"),
                                _target(target), data, len(data), ms, flags)
        finally:
            self._flush_logs()
        payload = _lib.take_buffer(out.value, n.value)
        return payload if raw else from_values(unpack(payload))

    def _wait(self, c, timeout):
        """Waits for Call c, polling if this thread may."""
        if self._try_own():
            try:
                self._wait_locked(c, timeout)
            finally:
                self._disown()
        else:
            # _finish sets _done before it reads _event, so either it sees
            # this Event or the check after it sees _done.
            with _event_lock:
                if c._event is None:
                    c._event = threading.Event()
            if not c._done and not c._event.wait(timeout):
                raise _lib.error(errors.Timeout.CODE,
                                 "Call.result(timeout=%r) elapsed" % timeout)

    def _wait_locked(self, c, timeout):
        limit = c._limit + _SLACK_S
        user = None if timeout is None else time.monotonic() + timeout
        while not c._done:
            now = time.monotonic()
            if user is not None and now >= user:
                raise _lib.error(errors.Timeout.CODE,
                                 "Call.result(timeout=%r) elapsed" % timeout)
            if now >= limit:
                # libskc promised an end by the deadline; do not hang.
                for tok, p in list(self._pending.items()):
                    if p is c:
                        del self._pending[tok]
                c._finish(errors.Timeout.CODE, b"",
                          "no completion from libskc %.1fs after the "
                          "call's deadline" % _SLACK_S)
                break
            end = limit if user is None else min(limit, user)
            self._poll_once(min(_SLICE_MS, max(1, int((end - now) * 1000))))

    # -- running -----------------------------------------------------------

    def poll(self, timeout=0):
        """Runs ready handlers and completions on this thread.  Waits up to
        timeout seconds (0 = do not wait, None = until something is ready)
        for the first one; returns how many ran.  If another thread is
        polling this node, waits (within timeout) for it to stop.  Raises
        skc.Busy from inside this node's handler or callback."""
        end = None if timeout is None else time.monotonic() + max(0, timeout)
        if not self._own(end):
            return 0
        try:
            while True:
                left = _SLICE_MS if end is None else \
                    min(_SLICE_MS, int((end - time.monotonic()) * 1000))
                n = self._poll_once(max(0, left))
                if n or self._stopping:
                    return n
                if end is not None and time.monotonic() >= end:
                    return 0
        finally:
            self._disown()

    def run(self, timeout=None):
        """Serves until stop() (from a handler or another thread), close(),
        or timeout seconds; returns how many handlers/completions ran.
        Raises skc.Busy from inside this node's handler or callback."""
        end = None if timeout is None else time.monotonic() + timeout
        total = 0
        if not self._own(end):
            self._stopping = False
            return 0
        try:
            while not self._stopping and self._h is not None:
                left = _SLICE_MS
                if end is not None:
                    left = int((end - time.monotonic()) * 1000)
                    if left <= 0:
                        break
                    left = min(left, _SLICE_MS)
                total += self._poll_once(left)
        finally:
            self._stopping = False
            self._disown()
        return total

    # One thread at a time polls a node; the owner's nested attempts
    # (from a handler) are errors, other threads wait or fall back.
    def _try_own(self):
        if self._poll_lock.acquire(False):
            self._owner = threading.get_ident()
            return True
        return False

    def _own(self, end):
        if self._owner == threading.get_ident():
            raise _lib.error(errors.Busy.CODE,
                             "poll()/run() from inside this node's handler "
                             "or callback")
        while True:
            if end is None:
                ok = self._poll_lock.acquire(timeout=_SLICE_MS / 1000.0)
            else:
                left = end - time.monotonic()
                if left > 0:
                    ok = self._poll_lock.acquire(
                        timeout=min(left, _SLICE_MS / 1000.0))
                else:
                    ok = self._poll_lock.acquire(False)
            if ok:
                self._owner = threading.get_ident()
                return True
            if self._stopping or self._h is None or (
                    end is not None and time.monotonic() >= end):
                return False

    def _disown(self):
        self._owner = None
        self._poll_lock.release()

    def stop(self):
        """Makes run() return soon.  Safe from any thread and handler."""
        self._stopping = True
        h = self._h
        if h is not None and not self._closing:
            _L.skc_node_wakeup(h)

    def wakeup(self):
        """Wakes a thread blocked in poll()/run() (skc_node_wakeup)."""
        _L.skc_node_wakeup(self._hnd())

    def _poll_once(self, ms):
        try:
            n = _L.skc_node_poll(self._hnd(), ms)
        finally:
            self._flush_logs()
        exc, self._raise_later = self._raise_later, None
        if exc is not None:
            raise exc
        return n

    # -- trampolines (called by C inside skc_node_poll) --------------------

    def _on_message(self, nodep, service, msgp, arg):
        try:
            self._dispatch(service, msgp)
        except BaseException as exc:      # never unwind into C
            self._keep(exc)

    def _dispatch(self, service, msgp):
        msg = Message(self, msgp, service)
        svc = self._services.get(service)
        if svc is None:
            if msg.is_call:
                msg._fail("NoService: no Python handler for :%08x" % service)
            return
        self._depth += 1
        self._current.append(msg)
        try:
            self._run_handler(svc, msg, msgp)
        finally:
            msg._p = None
            self._current.pop()
            self._depth -= 1

    def _run_handler(self, svc, msg, msgp):
        try:
            n = ctypes.c_size_t()
            p = _L.skc_msg_data(msgp, ctypes.byref(n))
            data = ctypes.string_at(p, n.value) if n.value else b""
            if svc.raw:
                result = svc.handler(data)
            else:
                result = svc.handler(*unpack(data))
            if not msg.is_call or msg._answered:
                return
            if svc.raw:
                out = b"" if result is None else bytes(result)
            else:
                out = pack(*to_values(result))
        except Exception as exc:
            if msg.is_call and not msg._answered:
                msg._fail(_exc_text(exc))
            else:
                self._report(exc, "in handler for %s %s"
                             % (msg.kind, msg.target))
            return
        except BaseException as exc:      # KeyboardInterrupt, SystemExit
            if msg.is_call and not msg._answered:
                msg._fail(_exc_text(exc))
            self._keep(exc)
            return
        try:
            msg._reply(out)
        except errors.Error as exc:
            # e.g. TooBig: the caller gets the error; note it here too.
            _logger.warning("skc node %s: reply to %s failed: %s",
                            self._safe_name(), msg.target, exc)

    def _on_complete(self, status, data, length, detail, arg):
        try:
            c = self._pending.pop(arg or 0, None)
            if c is None:
                return
            payload = b""
            if status == 0 and data and length:
                payload = ctypes.string_at(data, length)
            self._depth += 1
            try:
                c._finish(status, payload, _text(detail))
            finally:
                self._depth -= 1
        except BaseException as exc:
            self._keep(exc)

    def _on_query(self, status, handle, detail, arg):
        try:
            c = self._pending.pop(arg or 0, None)
            if c is None:
                return
            self._depth += 1
            try:
                c._finish(status, int(handle), _text(detail))
            finally:
                self._depth -= 1
        except BaseException as exc:
            self._keep(exc)

    def _on_ping(self, status, rtt_us, detail, arg):
        try:
            c = self._pending.pop(arg or 0, None)
            if c is None:
                return
            c._finish(status, rtt_us / 1e6, _text(detail))
        except BaseException as exc:
            self._keep(exc)

    def _deliver(self, fns, args, what):
        # Runs each of fns(*args) on the polling thread (inside
        # skc_node_poll, no skc lock held); an exception is reported, and
        # one that must stop the loop is kept for poll() to raise.
        try:
            self._depth += 1
            try:
                for cb in fns:
                    try:
                        cb(*args)
                    except Exception as exc:
                        self._report(exc, what)
            finally:
                self._depth -= 1
        except BaseException as exc:
            self._keep(exc)

    def _on_map_reload(self, arg, status, detail):
        fn = self._watch_fn
        if not self._closing and fn is not None:
            self._deliver([fn], (status == 0, _text(detail)),
                          "in watch_map callback")

    def _on_monitor(self, arg, peer, up, reason, addr):
        if not self._closing:
            self._deliver(list(self._monitors),
                          (_text(peer), "up" if up else "down",
                           _text(reason)), "in monitor callback")

    def _on_log(self, level, node, text, arg):
        # Any skc thread: only queue (deque.append is atomic).
        try:
            self._logq.append((level, _text(node), _text(text)))
        except BaseException:
            pass

    def _flush_logs(self):
        q = self._logq
        sink = self._log_sink
        while q:
            try:
                level, node, text = q.popleft()
            except IndexError:
                break
            if sink is not None:
                try:
                    sink(level, node, text)
                except Exception as exc:
                    self._report(exc, "in log sink")

    def _keep(self, exc):
        # KeyboardInterrupt, SystemExit...: raised by poll() once C
        # returned.
        if self._raise_later is None:
            self._raise_later = exc

    def _report(self, exc, where):
        _logger.error("skc node %s: exception %s", self._safe_name(), where,
                      exc_info=(type(exc), exc, exc.__traceback__))

    def _safe_name(self):
        try:
            return repr(self.name)
        except Exception:
            return "?"

    @property
    def in_handler(self):
        """True while a handler or completion of this node runs."""
        return self._depth > 0
