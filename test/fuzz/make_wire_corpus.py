#!/usr/bin/python3
"""Writes the seed corpus of fuzz_wire.c into corpus/wire/.

Each seed is one byte choosing the decoder (0 request, 1 reply, 2 hello
body, 3 target string) followed by its input; the frames follow the layout
table at the top of lib/wire.c.  Run from anywhere; it rewrites the seeds.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus", "wire")


def req(kind, ttype=2, name=b"sdb", handle=0, payload=b"", version=1,
        timeout=10000, max_reply=16 << 20, rid=1, claimed=None, flags=0,
        order=None):
    """order=(stream, seq): the order block (flags bit 0 is set for it)."""
    if claimed is None:
        claimed = len(payload)
    block = b""
    if order is not None:
        flags |= 1
        block = struct.pack("<QQ", order[0], order[1])
    return (b"SK" + bytes([version, kind]) +
            struct.pack("<IIIQ", flags, timeout, max_reply, rid) +
            bytes([ttype, len(name)]) + struct.pack("<I", handle) + name +
            struct.pack("<I", claimed) + block + payload)


def rep(status, rid, body, claimed=None):
    if claimed is None:
        claimed = len(body)
    return (b"SK\x01\x81" + struct.pack("<IQI", status, rid, claimed) + body)


def hello(max_msg, name, url, features=None):
    return (struct.pack("<IH", max_msg, len(name)) + name +
            struct.pack("<H", len(url)) + url +
            (struct.pack("<I", features) if features is not None else b""))


SEEDS = {
    # requests
    "req_call_name": b"\0" + req(1, 2, b"sdb", payload=b"\xa3GET\xa3key"),
    "req_call_local": b"\0" + req(1, 3, b"SIMPLEDB", payload=b"\xc0"),
    "req_call_handle": b"\0" + req(1, 1, b"", handle=10, payload=b"x" * 40),
    "req_send": b"\0" + req(2, 2, b"sink", payload=b"\xa4PING"),
    "req_hello": b"\0" + req(3, 0, b"", payload=b"gate"),
    "req_query": b"\0" + req(4, 2, b"sdb"),
    "req_ping": b"\0" + req(5, 0, b""),
    "req_long_name": b"\0" + req(1, 2, b"n" * 255, payload=b"p"),
    "req_bad_version": b"\0" + req(1, version=2, payload=b"x"),
    "req_truncated": b"\0" + req(1, payload=b"abc")[:20],
    "req_len_lies": b"\0" + req(1, payload=b"0123456789", claimed=1000),
    "req_name_lies": b"\0" + req(1, 2, b"sdb")[:25] + b"\xc8" +
    req(1, 2, b"sdb")[26:],
    "req_bad_kind": b"\0" + req(9),
    # the order block (flags bit 0) on a send and on a call
    "req_send_ordered": b"\0" + req(2, 2, b"kv", payload=b"\xa3SET",
                                    order=(0x1122334455667788, 7)),
    "req_call_ordered": b"\0" + req(1, 2, b"kv", payload=b"\xa3GET",
                                    order=(0x1122334455667788, 7)),
    "req_call_ordered_short": b"\0" + req(1, 2, b"kv", flags=1),
    "req_ping_flag0": b"\0" + req(5, 0, b"", flags=1),
    "req_hello_features": b"\0" + req(3, 0, b"", payload=b"gate", flags=2),
    "req_empty": b"\0",
    # replies
    "rep_ok": b"\1" + rep(0, 1, b"\xa5hello"),
    "rep_empty": b"\1" + rep(0, 7, b""),
    "rep_error": b"\1" + rep(7, 3, b"Unknown command FOO"),
    "rep_len_lies": b"\1" + rep(0, 1, b"abc", claimed=99),
    "rep_not_reply": b"\1" + req(1)[:20],
    # hello bodies
    "hello_ok": b"\2" + hello(16 << 20, b"db", b"tcp://127.0.0.1:40001"),
    "hello_empty_names": b"\2" + hello(0, b"", b""),
    "hello_features": b"\2" + hello(16 << 20, b"db", b"tcp://127.0.0.1:1",
                                     features=1),
    "hello_features_short": b"\2" + hello(1, b"db", b"")[:] + b"\1\0",
    "hello_name_lies": b"\2" + struct.pack("<IH", 1, 300) + b"db\0\0",
    "hello_url_lies": b"\2" + hello(5, b"db", b"ipc:///tmp/x")[:-3],
    # target strings
    "target_cluster": b"\3@sdb",
    "target_local": b"\3.SIMPLEDB",
    "target_handle": b"\3:0000000a",
    "target_bare": b"\3sdb",
    "target_handle_bad": b"\3:xyz",
    "target_handle_zero": b"\3:0",
    "target_long": b"\3@" + b"t" * 256,
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(SEEDS), OUT))


if __name__ == "__main__":
    main()
