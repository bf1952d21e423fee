"""skc.Error and one subclass per SKC_E* code of skc.h.

Every failure of the library raises the subclass for its code, so callers
can catch exactly what they handle:

    try:
        node.call("db", "@sdb", "GET", "k", timeout=0.5)
    except skc.Timeout:
        ...
    except skc.Error as e:
        print(e.code, e.name, e.detail)

This module has no dependency on the loaded library.
"""

__all__ = [
    "Error", "InvalidArgument", "NoMemory", "UnknownNode", "NodeDown",
    "Unreachable", "NoService", "HandlerError", "Timeout", "TooBig",
    "ConnectionLost", "Closed", "ProtocolError", "Busy", "Exists",
    "TransportError", "MapSyntaxError", "FileError", "NoReply",
    "LimitReached", "StateError", "from_code", "CLASSES",
]


class Error(Exception):
    """A failure reported by skc.

    Attributes:
      code     the negative SKC_E* value (e.g. -8)
      name     its name without prefix (e.g. "ETIMEDOUT")
      strerror the library's static text for the code
      detail   what happened and where (skc_last_error(), or the remote
               handler's text for HandlerError); may be ""
    """

    #: The SKC_E* code a subclass stands for (None for the base class).
    CODE = None
    #: Its name, as skc_errname() returns it.
    NAME = None

    def __init__(self, code, strerror="", detail="", name=None):
        super().__init__(code, strerror, detail)
        self.code = code
        self.strerror = strerror or ""
        self.detail = detail or ""
        self.name = name or self.NAME or "EUNKNOWN"

    def __str__(self):
        text = self.detail or self.strerror
        if self.detail and self.strerror and self.strerror not in self.detail:
            text = "%s: %s" % (self.strerror, self.detail)
        return "%s: %s" % (self.name, text)

    def __repr__(self):
        return "%s(%d, %r, %r)" % (type(self).__name__, self.code,
                                   self.strerror, self.detail)


def _kind(cls_name, code, name, doc, bases=(Error,)):
    cls = type(cls_name, bases, {"CODE": code, "NAME": name, "__doc__": doc,
                                 "__module__": "skc"})
    return cls


InvalidArgument = _kind("InvalidArgument", -1, "EINVAL",
                        "SKC_EINVAL: bad argument.", (Error, ValueError))
NoMemory = _kind("NoMemory", -2, "ENOMEM", "SKC_ENOMEM: out of memory.")
UnknownNode = _kind("UnknownNode", -3, "ENONODE",
                    "SKC_ENONODE: node name not in the cluster map.")
NodeDown = _kind("NodeDown", -4, "ENODEDOWN",
                 "SKC_ENODEDOWN: node marked down (false) in the map.")
Unreachable = _kind("Unreachable", -5, "EUNREACHABLE",
                    "SKC_EUNREACHABLE: could not connect to the node.")
NoService = _kind("NoService", -6, "ENOSERVICE",
                  "SKC_ENOSERVICE: no such service or name on that node.")
HandlerError = _kind("HandlerError", -7, "EHANDLER",
                     "SKC_EHANDLER: the remote handler failed; detail is "
                     "its text.")
Timeout = _kind("Timeout", -8, "ETIMEDOUT",
                "SKC_ETIMEDOUT: the deadline passed.")
TooBig = _kind("TooBig", -9, "ETOOBIG",
               "SKC_ETOOBIG: message larger than the sender's or peer's "
               "limit.")
ConnectionLost = _kind("ConnectionLost", -10, "ECONNLOST",
                       "SKC_ECONNLOST: connection lost after sending; the "
                       "outcome is unknown.")
Closed = _kind("Closed", -11, "ECLOSED",
               "SKC_ECLOSED: the node is closed or being destroyed.")
ProtocolError = _kind("ProtocolError", -12, "EPROTO",
                      "SKC_EPROTO: malformed frame or payload, or protocol "
                      "mismatch.")
Busy = _kind("Busy", -13, "EBUSY",
             "SKC_EBUSY: not now (e.g. destroying a node from its own "
             "handler, polling from inside a handler).")
Exists = _kind("Exists", -14, "EEXIST",
               "SKC_EEXIST: already exists (name registered, address in "
               "use).")
TransportError = _kind("TransportError", -15, "ETRANSPORT",
                       "SKC_ETRANSPORT: other transport failure; detail has "
                       "the cause.")
MapSyntaxError = _kind("MapSyntaxError", -16, "ESYNTAX",
                       "SKC_ESYNTAX: cluster map syntax error (file:line in "
                       "detail).")
FileError = _kind("FileError", -17, "EIO",
                  "SKC_EIO: a file (e.g. the cluster map) could not be "
                  "read.")
NoReply = _kind("NoReply", -18, "ENOREPLY",
                "SKC_ENOREPLY: the service ended or returned without "
                "replying.")
LimitReached = _kind("LimitReached", -19, "ELIMIT",
                     "SKC_ELIMIT: a configured limit was reached.")
StateError = _kind("StateError", -20, "ESTATE",
                   "SKC_ESTATE: not valid in this state (e.g. replied "
                   "twice).")
AuthError = _kind("AuthError", -21, "EAUTH",
                  "SKC_EAUTH: refused: wrong or missing cluster cookie, a "
                  "TLS failure, or a peer that is not the node the map "
                  "names.")

#: code -> class, for every code skc.h defines.
CLASSES = {cls.CODE: cls for cls in (
    InvalidArgument, NoMemory, UnknownNode, NodeDown, Unreachable, NoService,
    HandlerError, Timeout, TooBig, ConnectionLost, Closed, ProtocolError,
    Busy, Exists, TransportError, MapSyntaxError, FileError, NoReply,
    LimitReached, StateError, AuthError)}


def from_code(code, strerror="", detail="", name=None):
    """The Error instance for a code: its subclass, or Error itself for a
    code this binding does not know (a newer library: codes only grow)."""
    cls = CLASSES.get(code, Error)
    return cls(code, strerror, detail, name)
