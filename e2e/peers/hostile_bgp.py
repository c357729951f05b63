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


def open_body(asn=64500, hold=9, version=4, router_id=b"\x0a\x4d\x00\x64", extra=b""):
    caps = bytes([2, 6, 1, 4, 0, 1, 0, 1, 2, 6, 65, 4]) + struct.pack("!I", asn) + extra
    two = asn if asn < 65536 else 23456
    return bytes([version]) + struct.pack("!HH", two, hold) + router_id + bytes([len(caps)]) + caps


def update(withdrawn=b"", attrs=b"", nlri=b""):
    return struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs + nlri


# ORIGIN IGP, AS_PATH [64500], NEXT_HOP 10.77.0.100: a well-formed attribute set.
GOOD_ATTRS = bytes([0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xFB, 0xF4, 0x40, 3, 4, 10, 77, 0, 100])


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


def established(conn):
    """Reads until the speaker's KEEPALIVE (it is Established). False on anything else."""
    while True:
        m = read_msg(conn)
        if m is None or m[0] == 3:
            return False
        if m[0] == 4:
            return True


def still_up(conn):
    """After our last message: the session is kept if the speaker's next KEEPALIVE
    comes without a NOTIFICATION first (hold 9 s: one every 3 s)."""
    conn.settimeout(15)
    while True:
        m = read_msg(conn)
        if m is None:
            return "closed"
        if m[0] == 3:
            return [m[1][0], m[1][1], m[1][2:].hex()]
        if m[0] == 4:
            conn.sendall(msg(3, bytes([6, 2])))  # Cease: administrative shutdown
            return "kept"


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
    if scenario == "bad-optional-param":
        body = open_body()
        # Optional parameter type 1 (deprecated authentication) instead of 2.
        conn.sendall(msg(1, body[:10] + bytes([1]) + body[11:]))
        return until_notification(conn)
    if scenario == "unknown-capability":
        # RFC 5492: a capability we do not know is ignored, not an error.
        conn.sendall(msg(1, open_body(extra=bytes([2, 4, 200, 2, 1, 2]))) + msg(4))
        return still_up(conn) if established(conn) else None
    if scenario == "silent":
        # TCP up, then never a byte: no NOTIFICATION within 5 s (the OpenSent hold
        # timer is 4 minutes, RFC 4271 8.2.2); we hang up and it must reconnect.
        conn.settimeout(5)
        try:
            m = read_msg(conn)
        except OSError:
            return "silent"
        return "silent" if m is None else [m[0]]
    if scenario == "hold-expires":
        # Established with hold time 3 s, then silence: 4/0 after 3 s.
        conn.sendall(msg(1, open_body(hold=3)) + msg(4))
        return until_notification(conn)
    conn.sendall(msg(1, open_body()) + msg(4))
    if scenario == "update-bad-attribute":
        if not established(conn):
            return None
        bad_origin = bytes([0x40, 1, 1, 7]) + GOOD_ATTRS[4:]
        conn.sendall(msg(2, update(attrs=bad_origin, nlri=bytes([32, 192, 0, 2, 1]))))
        return still_up(conn)
    if scenario == "flood":
        if not established(conn):
            return None
        # 20 000 KEEPALIVEs and 5 000 valid UPDATEs (with routes and withdrawals)
        # as fast as TCP takes them.
        ups = b"".join(msg(2, update(attrs=GOOD_ATTRS, nlri=bytes([32, 192, 0, i >> 8, i & 255]))) for i in range(2500))
        wds = b"".join(msg(2, update(withdrawn=bytes([32, 192, 0, i >> 8, i & 255]))) for i in range(2500))
        conn.sendall(msg(4) * 20000 + ups + wds)
        return still_up(conn)
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
    elif scenario == "update-bad-lengths":
        # Withdrawn Routes Length past the end of the message.
        conn.sendall(msg(2, struct.pack("!H", 40) + bytes([32, 1, 2, 3, 4, 0, 0])))
    elif scenario == "update-bad-nlri":
        conn.sendall(msg(2, update(attrs=GOOD_ATTRS, nlri=bytes([33, 192, 0, 2, 1, 0]))))
    elif scenario == "update-bad-mp":
        # MP_REACH_NLRI whose next-hop length runs past the attribute.
        mp = bytes([0x80, 14, 5, 0, 2, 1, 16, 0])
        conn.sendall(msg(2, update(attrs=GOOD_ATTRS[:13] + mp)))
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
