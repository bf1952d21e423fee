"""The payload convention (DESIGN.md, decision 3).

A payload is zero or more MessagePack values back to back, like
skynet.pack(...).  Lua's skc binding and the C helpers (skc_pack_*,
skc_unpack_*) read and write the same bytes.

Python -> MessagePack: None nil, bool, int, float, str (UTF-8 str type),
bytes/bytearray (bin type), list/tuple (array), dict (map).
MessagePack -> Python: str values are decoded as UTF-8; bytes that are not
valid UTF-8 (Lua strings are byte strings) come back with surrogate escapes,
so pack(unpack(x)) == x.  bin values come back as bytes, arrays as lists,
maps as dicts (array or map keys become tuples).
"""

import msgpack

from . import _lib

__all__ = ["pack", "unpack"]


def _default(obj):
    raise TypeError("cannot encode %s object as MessagePack"
                    % type(obj).__name__)


def pack(*values):
    """Encodes values (zero or more) as one payload (bytes)."""
    if not values:
        return b""
    packer = msgpack.Packer(use_bin_type=True,
                            unicode_errors="surrogateescape",
                            default=_default)
    return b"".join(packer.pack(v) for v in values)


def _hashable(k):
    if isinstance(k, list):
        return tuple(_hashable(x) for x in k)
    if isinstance(k, dict):
        return tuple((_hashable(a), _hashable(b)) for a, b in k.items())
    return k


def _pairs(pairs):
    return {_hashable(k): v for k, v in pairs}


def _unpack(data, hook):
    up = msgpack.Unpacker(raw=False, strict_map_key=False,
                          unicode_errors="surrogateescape",
                          max_buffer_size=len(data),
                          object_pairs_hook=hook)
    up.feed(data)
    values = []
    end = 0             # offset after the last whole value
    try:
        for v in up:
            values.append(v)
            end = up.tell()
    except (ValueError, msgpack.UnpackException) as exc:
        raise _lib.error(_lib.errors.ProtocolError.CODE,
                         "payload is not MessagePack (at byte %d of %d): %s"
                         % (end, len(data), exc)) from None
    if end != len(data):
        raise _lib.error(_lib.errors.ProtocolError.CODE,
                         "payload truncated: a value starting at byte %d "
                         "of %d is incomplete" % (end, len(data)))
    return values


def unpack(data):
    """Decodes a payload into a list of values.

    Raises skc.ProtocolError if the bytes are not a whole sequence of
    MessagePack values (malformed or truncated)."""
    if not data:
        return []
    data = bytes(data)
    try:
        return _unpack(data, None)
    except TypeError:
        # A map key that is an array or a map (unhashable as list/dict):
        # decode again turning such keys into tuples.
        return _unpack(data, _pairs)


def to_values(result):
    """A handler's return value -> the tuple of values to reply with:
    None -> (), a tuple -> its items, anything else -> (result,)."""
    if result is None:
        return ()
    if isinstance(result, tuple):
        return result
    return (result,)


def from_values(values):
    """Reply values -> what call() returns: [] -> None, [v] -> v,
    several -> a tuple.  The inverse of to_values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return tuple(values)
