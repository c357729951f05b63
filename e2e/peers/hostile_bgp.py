#!/usr/bin/env python3
"""A scripted, misbehaving BGP peer for FerroLB's tests.

Listens on ADDRESS:179, accepts one connection per scenario, plays it, and prints
one JSON line per connection with the NOTIFICATION the speaker sent back
(code, subcode, data as hex) or null. Usage: hostile_bgp.py ADDRESS SCENARIO...
"""
import json
import socket
import struct
import sys

MARKER = b"\xff" * 16


def msg(kind, body=b"", length=None, marker=MARKER):
    n = 19 + len(body) if length is None else length
    return marker + struct.pack("!HB", n, kind) + body


def open_body(asn=64500, hold=9, version=4, router_id=b"\x0a\x4d\x00\x64"):
    caps = bytes([2, 6, 1, 4, 0, 1, 0, 1, 2, 6, 65, 4]) + struct.pack("!I", asn)
    two = asn if asn < 65536 else 23456
    return bytes([version]) + struct.pack("!HH", two, hold) + router_id + bytes([len(caps)]) + caps


def read_msg(conn):
    head = b""
    while len(head) < 19:
        chunk = conn.recv(19 - len(head))
        if not chunk:
            return None
        head += chunk
    length, kind = struct.unpack("!HB", head[16:19])
    body = b""
    while len(body) < length - 19:
        chunk = conn.recv(length - 19 - len(body))
        if not chunk:
            return None
        body += chunk
    return kind, body


def until_notification(conn):
    while True:
        m = read_msg(conn)
        if m is None:
            return None
        if m[0] == 3:
            return [m[1][0], m[1][1], m[1][2:].hex()]


def play(conn, scenario):
    m = read_msg(conn)
    if m is None or m[0] != 1:
        return None
    if scenario == "bad-version":
        conn.sendall(msg(1, open_body(version=3)))
        return until_notification(conn)
    if scenario == "bad-hold":
        conn.sendall(msg(1, open_body(hold=2)))
        return until_notification(conn)
    if scenario == "wrong-as":
        conn.sendall(msg(1, open_body(asn=65000)))
        return until_notification(conn)
    conn.sendall(msg(1, open_body()) + msg(4))
    if scenario == "bad-marker":
        conn.sendall(msg(4, marker=b"\x00" * 16))
    elif scenario == "bad-length":
        conn.sendall(msg(4, b"\x00", length=20))
    elif scenario == "bad-type":
        conn.sendall(msg(9))
    elif scenario == "unexpected-open":
        # Wait until the speaker is Established (its KEEPALIVE), then OPEN again.
        while True:
            m = read_msg(conn)
            if m is None:
                return None
            if m[0] == 4:
                break
        conn.sendall(msg(1, open_body()))
    elif scenario == "truncated-update":
        conn.sendall(msg(2, b"\x00\x05"))
    return until_notification(conn)


def main():
    address, scenarios = sys.argv[1], sys.argv[2:]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((address, 179))
    srv.listen(4)
    srv.settimeout(60)
    for s in scenarios:
        conn, _ = srv.accept()
        conn.settimeout(20)
        try:
            got = play(conn, s)
        except OSError:
            got = None
        print(json.dumps({"scenario": s, "notification": got}), flush=True)
        conn.close()


if __name__ == "__main__":
    main()
