"""Loads libskc.so and declares every function of skc.h for ctypes.

Rules kept here (docs/ABI.md, STYLE.md section 7):
  - every function gets argtypes and restype;
  - handles are c_void_p;
  - memory that skc hands out is received as c_void_p and released with
    skc_free (a c_char_p restype would copy the bytes and leak the buffer);
  - every int-returning fallible function has an errcheck that raises the
    skc.Error subclass for its code, with the thread's detail text.

Nothing here is public API: use the names exported by the skc package.
"""

import ctypes
import ctypes.util
import os

from . import errors

# The binding is written against this header version.  The loaded library
# must have the same major version (SOVERSION) and at least this version.
HEADER_VERSION = (0, 4, 0)
HEADER_VERSION_NUMBER = (HEADER_VERSION[0] * 1000000 + HEADER_VERSION[1] * 1000
                         + HEADER_VERSION[2])
SONAME = "libskc.so.%d" % HEADER_VERSION[0]

# Constants from skc.h (test/python/test_abi.py checks them against the
# header through a compiled C program).
CALLER_DRIVEN = -1
MSG_CALL = 1
MSG_SEND = 2
LOG_ERROR = 1
LOG_WARN = 2
LOG_INFO = 3
LOG_DEBUG = 4
PEER_UNKNOWN = 0
PEER_CONNECTING = 1
PEER_UP = 2
PEER_DOWN = 3
T_NIL, T_BOOL, T_INT, T_UINT, T_FLOAT, T_STR, T_BIN, T_ARRAY, T_MAP, T_EXT = \
    range(10)

c_int = ctypes.c_int
c_int32 = ctypes.c_int32
c_uint32 = ctypes.c_uint32
c_size_t = ctypes.c_size_t
c_void_p = ctypes.c_void_p
c_char_p = ctypes.c_char_p
P = ctypes.POINTER


class NodeOpts(ctypes.Structure):
    """skc_node_opts.  Fields are only ever appended (docs/ABI.md)."""
    _fields_ = [
        ("size", c_uint32),
        ("name", c_char_p),
        ("call_timeout_ms", c_int32),
        ("max_msg_size", c_uint32),
        ("workers", c_int32),
        ("max_inflight", c_uint32),
        ("max_serving", c_uint32),
        ("max_conns", c_uint32),
        ("log", c_void_p),          # skc_log_fn
        ("log_arg", c_void_p),
        ("log_level", c_int32),
        ("heartbeat_ms", c_int32),      # since 0.3.0
        ("heartbeat_misses", c_int32),
        ("send_port", c_int32),
        ("log_burst", c_int32),
        ("max_deadline_ms", c_int32),
        ("max_mailbox", c_uint32),      # since 0.4.0
        ("max_mailbox_bytes", c_uint32),
        ("max_queued_bytes", c_uint32),
        ("hello_timeout_ms", c_int32),
        ("idle_timeout_ms", c_int32),
        ("etcd", c_char_p),
        ("etcd_prefix", c_char_p),
        ("etcd_ttl_s", c_int32),
        ("etcd_cafile", c_char_p),
        ("etcd_certfile", c_char_p),
        ("etcd_keyfile", c_char_p),
        ("etcd_listen", c_char_p),
        ("cluster_cookie", c_char_p),   # since 0.4.0
        ("cluster_cookie_file", c_char_p),
        ("tls_cert", c_char_p),
        ("tls_key", c_char_p),
        ("tls_ca", c_char_p),
        ("tls_server_name", c_char_p),
        ("names_only", c_int32),
        ("large_msg", c_int32),         # since 0.4.0 (lanes)
        ("channels", c_int32),
    ]


class Item(ctypes.Structure):
    """skc_item."""
    _fields_ = [
        ("size", c_uint32),
        ("type", c_int32),
        ("i", ctypes.c_int64),
        ("u", ctypes.c_uint64),
        ("d", ctypes.c_double),
        ("ptr", c_void_p),
        ("len", c_size_t),
        ("count", c_uint32),
        ("ext_type", c_int32),
    ]


# Callback types.  Keep every instance referenced while C may call it.
LOG_FN = ctypes.CFUNCTYPE(None, c_int, c_char_p, c_char_p, c_void_p)
HANDLER_FN = ctypes.CFUNCTYPE(None, c_void_p, c_uint32, c_void_p, c_void_p)
CALL_FN = ctypes.CFUNCTYPE(None, c_int, c_void_p, c_size_t, c_char_p,
                           c_void_p)
QUERY_FN = ctypes.CFUNCTYPE(None, c_int, c_uint32, c_char_p, c_void_p)
MONITOR_FN = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_int, c_char_p,
                              c_char_p)
PING_FN = ctypes.CFUNCTYPE(None, c_int, ctypes.c_int64, c_char_p, c_void_p)
MAP_RELOAD_FN = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)


def _candidates():
    """Where to look for the library, in order (docs/PYTHON.md)."""
    env = os.environ.get("SKC_LIBRARY")
    if env:
        # Explicit choice: use it or fail, never fall back silently.
        return [env], True
    out = []
    here = os.path.dirname(os.path.abspath(__file__))
    # Build tree: <src>/bindings/python/skc -> <src>/build/lib/libskc.so.0
    out.append(os.path.normpath(
        os.path.join(here, "..", "..", "..", "build", "lib", SONAME)))
    # An install may write skc/_install.py with LIBRARY = "/prefix/lib/...".
    try:
        from . import _install  # noqa: F401  (optional, generated)
        lib = getattr(_install, "LIBRARY", None)
        if lib:
            out.append(lib)
    except ImportError:
        pass
    found = ctypes.util.find_library("skc")
    if found:
        out.append(found)
    out.append(SONAME)
    return out, False


def _load():
    names, explicit = _candidates()
    tried = []
    for name in names:
        if os.path.sep in name and not os.path.exists(name):
            tried.append("%s (absent)" % name)
            continue
        try:
            return ctypes.CDLL(name), name
        except OSError as exc:
            tried.append("%s (%s)" % (name, exc))
            if explicit:
                break
    raise ImportError("skc: cannot load libskc (set SKC_LIBRARY to its "
                      "path); tried: " + "; ".join(tried))


lib, path = _load()


def _text(b):
    if b is None:
        return ""
    return b.decode("utf-8", "replace")


def strerror(code):
    return _text(lib.skc_strerror(code))


def errname(code):
    return _text(lib.skc_errname(code))


def last_error():
    return _text(lib.skc_last_error())


def error(code, detail=None):
    """Builds the skc.Error subclass for code (Python-side failures)."""
    if detail is None:
        detail = ""
    return errors.from_code(code, strerror(code), detail, errname(code))


def _check(rc, func, args):
    # Runs right after the call on the same thread, so skc_last_error()
    # still belongs to it.
    if rc < 0:
        raise errors.from_code(rc, strerror(rc), last_error(), errname(rc))
    return rc


def _decl(name, restype, argtypes, check=False):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = argtypes
    if check:
        f.errcheck = _check
    return f


# The declarations below follow skc.h in order.  Inputs that C copies
# (strings, payloads) are c_char_p: ctypes passes a pointer to the bytes
# object's buffer, no copy, embedded NULs allowed when a length travels.
_decl("skc_version", c_uint32, [])
_decl("skc_version_string", c_char_p, [])            # static string
_decl("skc_strerror", c_char_p, [c_int])              # static string
_decl("skc_errname", c_char_p, [c_int])               # static string
_decl("skc_last_error", c_char_p, [])                 # thread-local, borrowed
_decl("skc_free", None, [c_void_p])
_decl("skc_log_stderr", None, [c_int, c_char_p, c_char_p, c_void_p])

_decl("skc_node_create", c_int, [P(c_void_p), P(NodeOpts)], True)
_decl("skc_node_destroy", c_int, [c_void_p], True)
_decl("skc_node_name", c_char_p, [c_void_p])          # borrowed
_decl("skc_node_open", c_int, [c_void_p, P(c_void_p), c_char_p], True)
_decl("skc_node_close", c_int, [c_void_p], True)
_decl("skc_node_close_listeners", c_int, [c_void_p], True)

_decl("skc_node_map_load", c_int, [c_void_p, c_char_p], True)
_decl("skc_node_map_reload", c_int, [c_void_p], True)
_decl("skc_node_map_parse", c_int, [c_void_p, c_char_p, c_char_p], True)
_decl("skc_node_map_set", c_int, [c_void_p, c_char_p, c_char_p], True)
_decl("skc_node_map_update", c_int,
      [c_void_p, P(c_char_p), P(c_char_p), c_size_t], True)
_decl("skc_node_map_get", c_int, [c_void_p, P(c_void_p), c_char_p], True)
_decl("skc_node_map_names", c_int, [c_void_p, P(c_void_p)], True)  # 0.4.0
_decl("skc_node_map_source", c_int, [c_void_p, P(c_void_p)], True)
_decl("skc_node_map_watch", c_int, [c_void_p, c_int, MAP_RELOAD_FN, c_void_p],
      True)
_decl("skc_node_map_set_group", c_int,
      [c_void_p, c_char_p, P(c_char_p), c_size_t, c_char_p], True)

_decl("skc_node_monitor", c_int, [c_void_p, MONITOR_FN, c_void_p], True)
_decl("skc_node_peer_state", c_int,
      [c_void_p, c_char_p, P(c_int), P(c_void_p)], True)
_decl("skc_node_ping", c_int,
      [c_void_p, c_char_p, c_int32, P(ctypes.c_int64)], True)
_decl("skc_node_ping_async", c_int,
      [c_void_p, c_char_p, c_int32, PING_FN, c_void_p], True)
_decl("skc_node_stats", c_int, [c_void_p, P(c_void_p)], True)
_decl("skc_node_stats_remote", c_int,
      [c_void_p, c_char_p, c_int32, P(c_void_p)], True)

_decl("skc_service_create", c_int,
      [c_void_p, P(c_uint32), HANDLER_FN, c_void_p], True)
# The Python Node is caller-driven, so the INLINE flags have no effect
# there; declared so that the whole ABI is described.
_decl("skc_service_create_ex", c_int,
      [c_void_p, P(c_uint32), HANDLER_FN, c_void_p, c_uint32], True)
_decl("skc_service_destroy", c_int, [c_void_p, c_uint32], True)
_decl("skc_name_register", c_int, [c_void_p, c_char_p, c_uint32], True)
_decl("skc_name_unregister", c_int, [c_void_p, c_char_p], True)
_decl("skc_name_lookup", c_int, [c_void_p, P(c_uint32), c_char_p], True)

_decl("skc_msg_data", c_void_p, [c_void_p, P(c_size_t)])  # borrowed
_decl("skc_msg_kind", c_int, [c_void_p])
_decl("skc_msg_remaining_ms", c_int32, [c_void_p])
_decl("skc_msg_target", c_char_p, [c_void_p])         # borrowed
_decl("skc_msg_reply", c_int, [c_void_p, c_char_p, c_size_t], True)
_decl("skc_msg_fail", c_int, [c_void_p, c_char_p], True)
_decl("skc_msg_defer", c_int, [c_void_p, P(c_void_p)], True)
_decl("skc_reply_send", c_int, [c_void_p, c_char_p, c_size_t], True)
_decl("skc_reply_fail", c_int, [c_void_p, c_char_p], True)
_decl("skc_reply_free", None, [c_void_p])

_decl("skc_node_call", c_int,
      [c_void_p, P(c_void_p), P(c_size_t), c_char_p, c_char_p, c_char_p,
       c_size_t, c_int32], True)
_decl("skc_node_call_ex", c_int,
      [c_void_p, P(c_void_p), P(c_size_t), c_char_p, c_char_p, c_char_p,
       c_size_t, c_int32, c_uint32], True)
_decl("skc_node_call_async", c_int,
      [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t, c_int32, CALL_FN,
       c_void_p], True)
_decl("skc_node_call_async_ex", c_int,
      [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t, c_int32, c_uint32,
       CALL_FN, c_void_p], True)
_decl("skc_node_send", c_int,
      [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t], True)
_decl("skc_node_query", c_int,
      [c_void_p, P(c_uint32), c_char_p, c_char_p, c_int32], True)
_decl("skc_node_query_async", c_int,
      [c_void_p, c_char_p, c_char_p, c_int32, QUERY_FN, c_void_p], True)

_decl("skc_node_fd", c_int, [c_void_p, P(c_int)], True)
_decl("skc_node_poll", c_int, [c_void_p, c_int32], True)
_decl("skc_node_wakeup", c_int, [c_void_p], True)

_decl("skc_pack_create", c_int, [P(c_void_p)], True)
_decl("skc_pack_destroy", None, [c_void_p])
_decl("skc_pack_reset", None, [c_void_p])
_decl("skc_pack_nil", c_int, [c_void_p], True)
_decl("skc_pack_bool", c_int, [c_void_p, c_int], True)
_decl("skc_pack_int", c_int, [c_void_p, ctypes.c_int64], True)
_decl("skc_pack_uint", c_int, [c_void_p, ctypes.c_uint64], True)
_decl("skc_pack_double", c_int, [c_void_p, ctypes.c_double], True)
_decl("skc_pack_str", c_int, [c_void_p, c_char_p, c_size_t], True)
_decl("skc_pack_bin", c_int, [c_void_p, c_char_p, c_size_t], True)
_decl("skc_pack_array", c_int, [c_void_p, c_uint32], True)
_decl("skc_pack_map", c_int, [c_void_p, c_uint32], True)
_decl("skc_pack_data", c_void_p, [c_void_p, P(c_size_t)])  # borrowed
_decl("skc_unpack_create", c_int, [P(c_void_p), c_void_p, c_size_t], True)
_decl("skc_unpack_destroy", None, [c_void_p])
_decl("skc_unpack_next", c_int, [c_void_p, P(Item)], True)

# The address of the ready-made stderr logger, for NodeOpts.log.
LOG_STDERR = ctypes.cast(lib.skc_log_stderr, c_void_p).value


def _check_version():
    v = lib.skc_version()
    major = v // 1000000
    if major != HEADER_VERSION[0] or v < HEADER_VERSION_NUMBER:
        raise ImportError(
            "skc: %s is version %s (%d); this binding needs %d.x >= %s"
            % (path, _text(lib.skc_version_string()), v, HEADER_VERSION[0],
               "%d.%d.%d" % HEADER_VERSION))


_check_version()


def take_buffer(ptr, length):
    """Copies an skc-allocated buffer into bytes and frees it."""
    try:
        if not ptr or not length:
            return b""
        return ctypes.string_at(ptr, length)
    finally:
        if ptr:
            lib.skc_free(ptr)


def take_string(ptr):
    """Copies an skc-allocated NUL-terminated string and frees it."""
    try:
        if not ptr:
            return None
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        if ptr:
            lib.skc_free(ptr)
