#!/usr/bin/env python3
"""Hostile layer 2 input for FerroLB's tests, from a client namespace.

Sends malformed ARP/NDP, requests for addresses nobody owns, and a flood, over an
AF_PACKET socket on IFACE, while a second socket counts the replies (ARP is-at and
solicited Neighbor Advertisements) that come back. Prints one JSON object.

Usage: l2_hostile.py IFACE VIP4 VIP6 FOREIGN4 FOREIGN6 FLOOD_COUNT
"""
import json
import socket
import struct
import sys
import threading
import time

ETH_P_ALL = 3


def mac_of(iface):
    with open(f"/sys/class/net/{iface}/address") as f:
        return bytes.fromhex(f.read().strip().replace(":", ""))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def arp(me, my_ip, target, op=1, htype=1, ptype=0x0800, hlen=6, plen=4, cut=None, sender_ip=None):
    body = struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + me + socket.inet_aton(sender_ip or my_ip) + bytes(6) + socket.inet_aton(target)
    frame = b"\xff" * 6 + me + b"\x08\x06" + body
    if cut is not None:
        return frame[:cut]
    return frame + bytes(max(0, 60 - len(frame)))


def solicited_node(ip6):
    b = socket.inet_pton(socket.AF_INET6, ip6)
    return bytes.fromhex("ff0200000000000000000001ff") + b[13:]


def ns(me, src6, target6, hop=255, code=0, opts=None, bad_sum=False, src_unspec=False, icmp_cut=None):
    target = socket.inet_pton(socket.AF_INET6, target6)
    src = bytes(16) if src_unspec else socket.inet_pton(socket.AF_INET6, src6)
    dst = solicited_node(target6)
    if opts is None:
        opts = bytes([1, 1]) + me
    icmp = bytes([135, code, 0, 0, 0, 0, 0, 0]) + target + opts
    if icmp_cut is not None:
        icmp = icmp[:icmp_cut]
    pseudo = src + dst + struct.pack("!I", len(icmp)) + bytes([0, 0, 0, 58])
    c = csum(pseudo + icmp) ^ (0x1234 if bad_sum else 0)
    icmp = icmp[:2] + struct.pack("!H", c) + icmp[4:]
    ip = bytes([0x60, 0, 0, 0]) + struct.pack("!H", len(icmp)) + bytes([58, hop]) + src + dst
    return b"\x33\x33" + dst[12:] + me + b"\x86\xdd" + ip + icmp


class Counter(threading.Thread):
    """Counts replies addressed to us: ARP is-at, and NAs with the Solicited flag."""

    def __init__(self, iface, me):
        super().__init__(daemon=True)
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.bind((iface, 0))
        self.s.settimeout(0.2)
        self.me = me
        self.arp = 0
        self.na = 0
        self.stop = False
        self.lock = threading.Lock()

    def run(self):
        while not self.stop:
            try:
                f, addr = self.s.recvfrom(2048)
            except socket.timeout:
                continue
            if addr[2] == socket.PACKET_OUTGOING or f[6:12] == self.me:
                continue
            et = f[12:14]
            with self.lock:
                if et == b"\x08\x06" and len(f) >= 22 and f[20:22] == b"\x00\x02":
                    self.arp += 1
                elif et == b"\x86\xdd" and len(f) >= 59 and f[20] == 58 and f[54] == 136 and f[58] & 0x40:
                    self.na += 1

    def take(self):
        with self.lock:
            r = (self.arp, self.na)
            self.arp = self.na = 0
        return r


def main():
    iface, vip4, vip6, foreign4, foreign6, flood = sys.argv[1:7]
    flood = int(flood)
    me = mac_of(iface)
    my_ip = "10.77.0.100"
    my_ip6 = "fd77::100"
    out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    out.bind((iface, 0))
    counter = Counter(iface, me)
    counter.start()
    time.sleep(0.3)
    result = {}

    malformed = {
        "arp-truncated": arp(me, my_ip, vip4, cut=30),
        "arp-hlen-8": arp(me, my_ip, vip4, hlen=8),
        "arp-plen-16": arp(me, my_ip, vip4, plen=16),
        "arp-op-0": arp(me, my_ip, vip4, op=0),
        "arp-op-3": arp(me, my_ip, vip4, op=3),
        "arp-htype-6": arp(me, my_ip, vip4, htype=6),
        "arp-ptype-ipv6": arp(me, my_ip, vip4, ptype=0x86DD),
        "arp-reply-for-vip": arp(me, my_ip, vip4, op=2),
        "arp-gratuitous-claiming-vip": arp(me, vip4, vip4, sender_ip=vip4),
        "arp-foreign": arp(me, my_ip, foreign4),
        "ns-hop-64": ns(me, my_ip6, vip6, hop=64),
        "ns-code-1": ns(me, my_ip6, vip6, code=1),
        "ns-bad-checksum": ns(me, my_ip6, vip6, bad_sum=True),
        "ns-option-length-0": ns(me, my_ip6, vip6, opts=bytes([1, 0]) + me),
        "ns-option-overrun": ns(me, my_ip6, vip6, opts=bytes([1, 3]) + me),
        "ns-truncated": ns(me, my_ip6, vip6, icmp_cut=20),
        "ns-multicast-target": ns(me, my_ip6, "ff02::1"),
        "ns-dad-with-slla": ns(me, my_ip6, vip6, src_unspec=True),
        "ns-foreign": ns(me, my_ip6, foreign6),
    }
    result["malformed"] = {}
    for name, frame in malformed.items():
        for _ in range(3):
            out.send(frame)
        time.sleep(0.3)
        a, n = counter.take()
        result["malformed"][name] = a + n

    def control():
        out.send(arp(me, my_ip, vip4))
        out.send(ns(me, my_ip6, vip6))
        time.sleep(0.5)
        return list(counter.take())

    result["control-before"] = control()

    frames = [arp(me, my_ip, foreign4), ns(me, my_ip6, foreign6)]
    t = time.monotonic()
    for i in range(flood):
        out.send(frames[i & 1])
    result["flood-seconds"] = round(time.monotonic() - t, 3)
    result["flood-sent"] = flood
    time.sleep(0.5)
    result["flood-replies"] = sum(counter.take())
    result["control-after"] = control()
    counter.stop = True
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
