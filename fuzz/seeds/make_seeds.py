#!/usr/bin/env python3
"""Writes the seed corpora (real message layouts, as in the crates' golden tests).
Run from this directory: python3 make_seeds.py. The outputs are committed."""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def bgp(kind, body=b""):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), kind) + body


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


# BGP: our own OPEN (speaker/src/bgp/packet.rs our_open_is_byte_exact), others.
caps = bytes([2, 6, 1, 4, 0, 1, 0, 1, 2, 6, 1, 4, 0, 2, 0, 1, 2, 2, 2, 0, 2, 6, 65, 4, 0xFA, 0x56, 0xEA, 0x01])
open_ = bgp(1, bytes([4, 0x5B, 0xA0, 0, 90, 10, 0, 0, 1, len(caps)]) + caps)
ka = bgp(4)
note = bgp(3, bytes([6, 2]) + b"shutdown")
rr = bgp(5, bytes([0, 1, 0, 1]))
attrs = bytes([0x40, 1, 1, 0])  # ORIGIN IGP
attrs += bytes([0x40, 2, 6, 2, 1]) + struct.pack("!I", 64512)  # AS_PATH
attrs += bytes([0x40, 3, 4, 10, 0, 0, 1])  # NEXT_HOP
attrs += bytes([0xC0, 8, 4, 0xFF, 0xFF, 0xFF, 0x01])  # COMMUNITIES NO_EXPORT
upd4 = bgp(2, struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + bytes([32, 198, 51, 100, 1, 24, 203, 0, 113]))
mp = struct.pack("!HB", 2, 1) + bytes([16]) + bytes.fromhex("fd000000000000000000000000000001") + b"\0" + bytes([128]) + bytes.fromhex("20010db8000000000000000000000001")
attrs6 = bytes([0x40, 1, 1, 0, 0x50, 2, 0, 0, 0x80, 14, len(mp)]) + mp
upd6 = bgp(2, struct.pack("!HH", 0, len(attrs6)) + attrs6)
wd = bgp(2, struct.pack("!H", 5) + bytes([32, 198, 51, 100, 1]) + struct.pack("!H", 0))
eor = bgp(2, bytes(4))
for name, m in [("open", open_), ("keepalive", ka), ("notification", note), ("route-refresh", rr),
                ("update-v4", upd4), ("update-v6", upd6), ("withdraw", wd), ("end-of-rib", eor),
                ("session", open_ + ka + upd4 + upd6 + ka + note)]:
    put("bgp_message", name, m)

# ARP: what arping sends (speaker/src/layer2/arp.rs REQUEST), a reply, a gratuitous one.
mac = bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56])
req = b"\xff" * 6 + mac + b"\x08\x06" + bytes([0, 1, 8, 0, 6, 4, 0, 1]) + mac + bytes([192, 168, 1, 2]) + bytes(6) + bytes([192, 168, 1, 10]) + bytes(18)
put("arp", "request", req)
put("arp", "reply", mac + bytes([2, 0, 0, 0, 0, 1]) + b"\x08\x06" + bytes([0, 1, 8, 0, 6, 4, 0, 2]) + bytes([2, 0, 0, 0, 0, 1, 192, 168, 1, 10]) + mac + bytes([192, 168, 1, 2]) + bytes(18))
put("arp", "gratuitous", b"\xff" * 6 + mac + b"\x08\x06" + bytes([0, 1, 8, 0, 6, 4, 0, 1]) + mac + bytes([192, 168, 1, 2]) + bytes(6) + bytes([192, 168, 1, 2]) + bytes(18))


# NDP: a solicitation with its source link-layer option, a DAD probe, an advertisement.
def ndp(src, dst, icmp, dst_mac, hop=255):
    pseudo = src + dst + struct.pack("!I", len(icmp)) + bytes([0, 0, 0, 58])
    c = csum(pseudo + icmp)
    icmp = icmp[:2] + struct.pack("!H", c) + icmp[4:]
    ip = bytes([0x60, 0, 0, 0]) + struct.pack("!H", len(icmp)) + bytes([58, hop]) + src + dst
    return dst_mac + mac + b"\x86\xdd" + ip + icmp


target = bytes.fromhex("fd00000000000000000000000000000a")
snm = bytes.fromhex("ff0200000000000000000001ff00000a")
src = bytes.fromhex("fd000000000000000000000000000002")
ns = bytes([135, 0, 0, 0, 0, 0, 0, 0]) + target + bytes([1, 1]) + mac
put("ndp", "solicitation", ndp(src, snm, ns, bytes([0x33, 0x33, 0xFF, 0, 0, 0x0A])))
put("ndp", "dad", ndp(bytes(16), snm, bytes([135, 0, 0, 0, 0, 0, 0, 0]) + target, bytes([0x33, 0x33, 0xFF, 0, 0, 0x0A])))
na = bytes([136, 0, 0, 0, 0x20, 0, 0, 0]) + target + bytes([2, 1]) + mac
put("ndp", "advertisement", ndp(target, bytes.fromhex("ff020000000000000000000000000001"), na, bytes([0x33, 0x33, 0, 0, 0, 1])))

# YAML: the sample configuration directory.
samples = os.path.join(HERE, "..", "..", "config", "samples")
for f in sorted(os.listdir(samples)):
    if f.endswith(".yaml"):
        os.makedirs(os.path.join(HERE, "yaml_source"), exist_ok=True)
        shutil.copy(os.path.join(samples, f), os.path.join(HERE, "yaml_source", "seed-" + f))

# kube-proxy's KubeProxyConfiguration as kubeadm writes it (v1.33, shortened), in
# ipvs mode with strictARP, and a minimal iptables one.
KUBE_PROXY = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
clientConnection:
  acceptContentTypes: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
clusterCIDR: 10.244.0.0/16
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: true
  syncPeriod: 0s
kind: KubeProxyConfiguration
mode: ipvs
nodePortAddresses: null
"""
put("kube_proxy_config", "kubeadm-ipvs.yaml", KUBE_PROXY.encode())
put("kube_proxy_config", "iptables.yaml", b"kind: KubeProxyConfiguration\nmode: \"\"\n")
