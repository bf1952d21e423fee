"""skc: join an skc cluster from Python (ctypes over libskc.so).

    import skc

    with skc.Node("py") as node:
        node.load_map("clustermap.lua")
        node.open("py")
        node.register("echo", lambda *args: args)
        print(node.call("db", "@sdb", "GET", "a"))
        node.run()

See docs/PYTHON.md.  libskc.so is found through $SKC_LIBRARY, then the
build tree (../../../build/lib/libskc.so.0 from this package), then the
system's library path.
"""

from . import _lib
from .errors import (                                   # noqa: F401
    Error, InvalidArgument, NoMemory, UnknownNode, NodeDown, Unreachable,
    NoService, HandlerError, Timeout, TooBig, ConnectionLost, Closed,
    ProtocolError, Busy, Exists, TransportError, MapSyntaxError, FileError,
    NoReply, LimitReached, StateError, AuthError)
from .node import Node, Message, Deferred, Call, Proxy  # noqa: F401
from .node import DEFAULT_TIMEOUT                       # noqa: F401
from .payload import pack, unpack                       # noqa: F401

#: The skc.h version this binding was written for, (major, minor, patch).
HEADER_VERSION = _lib.HEADER_VERSION
#: The path the library was loaded from.
LIBRARY = _lib.path

LOG_ERROR = _lib.LOG_ERROR
LOG_WARN = _lib.LOG_WARN
LOG_INFO = _lib.LOG_INFO
LOG_DEBUG = _lib.LOG_DEBUG

Error.__module__ = "skc"


def version():
    """The loaded library's version as (major, minor, patch)."""
    v = _lib.lib.skc_version()
    return (v // 1000000, v // 1000 % 1000, v % 1000)


def version_string():
    """The loaded library's version string, e.g. "0.2.0"."""
    return _lib.lib.skc_version_string().decode()


#: The loaded library's version string.
__version__ = version_string()


def strerror(code):
    """Static text for an SKC_E* code."""
    return _lib.strerror(code)


def errname(code):
    """The code's name without prefix, e.g. "ETIMEDOUT"."""
    return _lib.errname(code)


__all__ = [
    "Node", "Message", "Deferred", "Call", "Proxy", "pack", "unpack",
    "DEFAULT_TIMEOUT",
    "version", "version_string", "strerror", "errname", "HEADER_VERSION",
    "LIBRARY", "LOG_ERROR", "LOG_WARN", "LOG_INFO", "LOG_DEBUG",
    "Error", "InvalidArgument", "NoMemory", "UnknownNode", "NodeDown",
    "Unreachable", "NoService", "HandlerError", "Timeout", "TooBig",
    "ConnectionLost", "Closed", "ProtocolError", "Busy", "Exists",
    "TransportError", "MapSyntaxError", "FileError", "NoReply",
    "LimitReached", "StateError", "AuthError",
]
