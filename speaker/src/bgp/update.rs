//! UPDATE messages we send (RFC 4271 section 4.3, RFC 4760 for IPv6, RFC 6793 for
//! 4-byte AS numbers). Encoded here rather than by zettabgp, which writes AS_PATH
//! as an AS_SET: every byte is under test below.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;

use super::packet::{HEADER_LEN, MAX_LEN, kind};

/// Path attributes shared by a group of prefixes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attrs {
    /// AS_PATH: empty for iBGP, our AS for eBGP.
    pub as_path: Vec<u32>,
    /// Next hop (our address on the session); IPv6 prefixes need an IPv6 one.
    pub next_hop: IpAddr,
    /// The link-local IPv6 next hop sent after the global one (RFC 2545 section
    /// 3: when the peer is on-link); IPv6 prefixes only.
    pub link_local: Option<Ipv6Addr>,
    /// LOCAL_PREF (iBGP only).
    pub local_pref: Option<u32>,
    /// COMMUNITIES (RFC 1997), sorted.
    pub communities: Vec<u32>,
    /// LARGE_COMMUNITIES (RFC 8092), sorted.
    pub large_communities: Vec<(u32, u32, u32)>,
}

/// What the peer can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding {
    /// The peer negotiated 4-byte AS numbers (else AS_TRANS + AS4_PATH).
    pub four_byte_asn: bool,
}

// Attribute type codes and flags (RFC 4271 section 5, RFC 4760, RFC 6793, RFC 8092).
const ORIGIN: u8 = 1;
const AS_PATH: u8 = 2;
const NEXT_HOP: u8 = 3;
const LOCAL_PREF: u8 = 5;
const COMMUNITIES: u8 = 8;
const MP_REACH_NLRI: u8 = 14;
const MP_UNREACH_NLRI: u8 = 15;
const AS4_PATH: u8 = 17;
const LARGE_COMMUNITIES: u8 = 32;
const WELL_KNOWN: u8 = 0x40; // transitive
const OPTIONAL_TRANSITIVE: u8 = 0xc0;
const OPTIONAL: u8 = 0x80;
const EXTENDED_LENGTH: u8 = 0x10;
const AS_SEQUENCE: u8 = 2;
const ORIGIN_IGP: u8 = 0;

fn attr(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.push(flags | EXTENDED_LENGTH);
        out.push(code);
        // Values are bounded by the 4096-byte message.
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        out.push(flags);
        out.push(code);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
}

fn as_path_value(path: &[u32], four: bool) -> Vec<u8> {
    if path.is_empty() {
        return Vec::new();
    }
    let mut v = Vec::new();
    // A segment holds at most 255 ASes; our paths hold one.
    for chunk in path.chunks(255) {
        v.push(AS_SEQUENCE);
        v.push(chunk.len() as u8);
        for a in chunk {
            if four {
                v.extend_from_slice(&a.to_be_bytes());
            } else {
                let two = u16::try_from(*a).unwrap_or(super::packet::AS_TRANS);
                v.extend_from_slice(&two.to_be_bytes());
            }
        }
    }
    v
}

/// The encoded prefix: length byte and the significant octets (RFC 4271 section 4.3).
pub fn prefix_bytes(p: &IpNet) -> Vec<u8> {
    let len = p.prefix_len();
    let octets: Vec<u8> = match p.network() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let n = usize::from(len).div_ceil(8);
    let mut out = vec![len];
    out.extend_from_slice(&octets[..n]);
    out
}

/// Path attributes for `attrs`, with the IPv6 `nlri` inside MP_REACH_NLRI when
/// `v6` (and a NEXT_HOP attribute otherwise).
fn attributes(a: &Attrs, enc: Encoding, v6_nlri: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    attr(&mut out, WELL_KNOWN, ORIGIN, &[ORIGIN_IGP]);
    attr(
        &mut out,
        WELL_KNOWN,
        AS_PATH,
        &as_path_value(&a.as_path, enc.four_byte_asn),
    );
    if !enc.four_byte_asn && a.as_path.iter().any(|x| *x > u32::from(u16::MAX)) {
        attr(
            &mut out,
            OPTIONAL_TRANSITIVE,
            AS4_PATH,
            &as_path_value(&a.as_path, true),
        );
    }
    match (v6_nlri, a.next_hop) {
        (None, IpAddr::V4(nh)) => attr(&mut out, WELL_KNOWN, NEXT_HOP, &nh.octets()),
        (Some(nlri), nh) => {
            let nh6: Ipv6Addr = match nh {
                IpAddr::V6(x) => x,
                IpAddr::V4(x) => x.to_ipv6_mapped(),
            };
            // RFC 4760 section 3: AFI 2, SAFI 1, next-hop length, next hop(s);
            // RFC 2545 section 3: 16 bytes global, or 32 with the link-local.
            let mut v = vec![0, 2, 1, if a.link_local.is_some() { 32 } else { 16 }];
            v.extend_from_slice(&nh6.octets());
            if let Some(ll) = a.link_local {
                v.extend_from_slice(&ll.octets());
            }
            v.push(0); // reserved
            v.extend_from_slice(nlri);
            attr(&mut out, OPTIONAL, MP_REACH_NLRI, &v);
        }
        (None, IpAddr::V6(_)) => {}
    }
    if let Some(lp) = a.local_pref {
        attr(&mut out, WELL_KNOWN, LOCAL_PREF, &lp.to_be_bytes());
    }
    if !a.communities.is_empty() {
        let v: Vec<u8> = a.communities.iter().flat_map(|c| c.to_be_bytes()).collect();
        attr(&mut out, OPTIONAL_TRANSITIVE, COMMUNITIES, &v);
    }
    if !a.large_communities.is_empty() {
        let v: Vec<u8> = a
            .large_communities
            .iter()
            .flat_map(|(g, l1, l2)| [g.to_be_bytes(), l1.to_be_bytes(), l2.to_be_bytes()].concat())
            .collect();
        attr(&mut out, OPTIONAL_TRANSITIVE, LARGE_COMMUNITIES, &v);
    }
    out
}

fn message(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let body_len = 2 + withdrawn.len() + 2 + attrs.len() + nlri.len();
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((HEADER_LEN + body_len) as u16).to_be_bytes());
    m.push(kind::UPDATE);
    m.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    m.extend_from_slice(withdrawn);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(attrs);
    m.extend_from_slice(nlri);
    m
}

/// Splits encoded prefixes into chunks whose total stays within `room` bytes.
fn chunks(prefixes: &[IpNet], room: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for p in prefixes {
        let b = prefix_bytes(p);
        if !cur.is_empty() && cur.len() + b.len() > room {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend_from_slice(&b);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// UPDATEs announcing `prefixes` (all of one family) with `attrs`: as many
/// prefixes per message as fit in 4096 bytes.
pub fn announce(prefixes: &[IpNet], attrs: &Attrs, enc: Encoding) -> Vec<Vec<u8>> {
    let v6 = prefixes.first().is_some_and(|p| matches!(p, IpNet::V6(_)));
    // Room left for NLRI once the header, the two length fields and the
    // attributes (with an empty MP_REACH for IPv6, which may need the extended
    // length form: 2 more bytes) are counted.
    let fixed = HEADER_LEN
        + 4
        + attributes(attrs, enc, v6.then_some(&[][..])).len()
        + if v6 { 2 } else { 0 };
    let room = MAX_LEN - fixed;
    chunks(prefixes, room)
        .into_iter()
        .map(|nlri| {
            if v6 {
                message(&[], &attributes(attrs, enc, Some(&nlri)), &[])
            } else {
                message(&[], &attributes(attrs, enc, None), &nlri)
            }
        })
        .collect()
}

/// UPDATEs withdrawing `prefixes` (all of one family).
pub fn withdraw(prefixes: &[IpNet]) -> Vec<Vec<u8>> {
    let v6 = prefixes.first().is_some_and(|p| matches!(p, IpNet::V6(_)));
    if !v6 {
        return chunks(prefixes, MAX_LEN - HEADER_LEN - 4)
            .into_iter()
            .map(|w| message(&w, &[], &[]))
            .collect();
    }
    // MP_UNREACH_NLRI: AFI, SAFI, withdrawn routes; extended length form.
    chunks(prefixes, MAX_LEN - HEADER_LEN - 4 - 4 - 3)
        .into_iter()
        .map(|w| {
            let mut v = vec![0, 2, 1];
            v.extend_from_slice(&w);
            let mut a = Vec::new();
            attr(&mut a, OPTIONAL, MP_UNREACH_NLRI, &v);
            message(&[], &a, &[])
        })
        .collect()
}

/// End-of-RIB markers (RFC 4724): an empty UPDATE for IPv4, an empty
/// MP_UNREACH_NLRI for IPv6.
pub fn end_of_rib(v6: bool) -> Vec<u8> {
    if v6 {
        let mut a = Vec::new();
        attr(&mut a, OPTIONAL, MP_UNREACH_NLRI, &[0, 2, 1]);
        message(&[], &a, &[])
    } else {
        message(&[], &[], &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::packet::frame;
    use std::net::Ipv4Addr;

    fn nets(v: &[&str]) -> Vec<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ebgp() -> Attrs {
        Attrs {
            as_path: vec![64512],
            next_hop: "10.0.0.11".parse().unwrap(),
            link_local: None,
            local_pref: None,
            communities: vec![(65535 << 16) | 65282],
            large_communities: vec![(64512, 1, 2)],
        }
    }

    #[test]
    fn ipv4_announcement_bytes_with_as_sequence() {
        let m = &announce(
            &nets(&["198.51.100.7/32"]),
            &ebgp(),
            Encoding {
                four_byte_asn: true,
            },
        )[0];
        let expect: Vec<u8> = [
            vec![0xff; 16],
            vec![0, 70, 2],                           // length, UPDATE
            vec![0, 0],                               // no withdrawn routes
            vec![0, 42],                              // attributes length
            vec![0x40, 1, 1, 0],                      // ORIGIN IGP
            vec![0x40, 2, 6, 2, 1, 0, 0, 0xfc, 0], // AS_PATH: AS_SEQUENCE(2) of one 4-byte AS 64512
            vec![0x40, 3, 4, 10, 0, 0, 11],        // NEXT_HOP
            vec![0xc0, 8, 4, 0xff, 0xff, 0xff, 0x02], // COMMUNITIES 65535:65282 (NO_ADVERTISE)
            vec![0xc0, 32, 12, 0, 0, 0xfc, 0, 0, 0, 0, 1, 0, 0, 0, 2], // LARGE_COMMUNITIES
            vec![32, 198, 51, 100, 7],             // NLRI
        ]
        .concat();
        assert_eq!(m, &expect);
        assert_eq!(frame(m).unwrap(), Some(70));
    }

    #[test]
    fn everything_we_send_passes_our_own_update_checks() {
        let v6 = Attrs {
            next_hop: "fd00::11".parse().unwrap(),
            ..ebgp()
        };
        let ibgp = Attrs {
            as_path: vec![],
            local_pref: Some(100),
            ..ebgp()
        };
        let many: Vec<String> = (0..600)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut msgs = Vec::new();
        for four_byte_asn in [true, false] {
            let enc = Encoding { four_byte_asn };
            msgs.extend(announce(&nets(&many), &ebgp(), enc));
            msgs.extend(announce(&nets(&["10.1.0.0/24"]), &ibgp, enc));
            msgs.extend(announce(
                &nets(&["2001:db8::1/128", "2001:db8:1::/48"]),
                &v6,
                enc,
            ));
        }
        msgs.extend(withdraw(&nets(&many)));
        msgs.extend(withdraw(&nets(&["2001:db8::1/128"])));
        msgs.push(end_of_rib(false));
        msgs.push(end_of_rib(true));
        assert!(msgs.len() > 6);
        for m in &msgs {
            let n = frame(m).unwrap().unwrap();
            assert_eq!(n, m.len());
            assert_eq!(crate::bgp::packet::check_update(&m[19..]), Ok(None));
        }
    }

    #[test]
    fn ibgp_has_an_empty_as_path_and_local_pref() {
        let a = Attrs {
            as_path: vec![],
            local_pref: Some(100),
            communities: vec![],
            large_communities: vec![],
            ..ebgp()
        };
        let m = &announce(
            &nets(&["10.1.0.0/24"]),
            &a,
            Encoding {
                four_byte_asn: true,
            },
        )[0];
        let attrs = &m[23..23 + usize::from(u16::from_be_bytes([m[21], m[22]]))];
        assert_eq!(
            attrs,
            &[
                0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 10, 0, 0, 11, 0x40, 5, 4, 0, 0, 0, 100
            ]
        );
    }

    #[test]
    fn two_byte_peers_get_as_trans_and_as4_path() {
        let a = Attrs {
            as_path: vec![4_200_000_001],
            communities: vec![],
            large_communities: vec![],
            ..ebgp()
        };
        let m = &announce(
            &nets(&["10.1.0.1/32"]),
            &a,
            Encoding {
                four_byte_asn: false,
            },
        )[0];
        let attrs = &m[23..23 + usize::from(u16::from_be_bytes([m[21], m[22]]))];
        assert_eq!(
            &attrs[4..11],
            &[0x40, 2, 4, 2, 1, 0x5b, 0xa0],
            "AS_TRANS in AS_PATH"
        );
        assert_eq!(
            &attrs[11..20],
            &[0xc0, 17, 6, 2, 1, 0xfa, 0x56, 0xea, 0x01],
            "the real AS in AS4_PATH"
        );
    }

    #[test]
    fn ipv6_goes_in_mp_reach_with_a_16_byte_next_hop() {
        let a = Attrs {
            next_hop: "fd00::11".parse().unwrap(),
            communities: vec![],
            large_communities: vec![],
            ..ebgp()
        };
        let m = &announce(
            &nets(&["2001:db8::7/128"]),
            &a,
            Encoding {
                four_byte_asn: true,
            },
        )[0];
        let attrs = &m[23..];
        let mp = attrs
            .windows(2)
            .position(|w| w == [0x80, 14])
            .expect("MP_REACH_NLRI");
        let v = &attrs[mp + 3..];
        assert_eq!(&v[..4], &[0, 2, 1, 16], "AFI 2, SAFI 1, next hop length 16");
        assert_eq!(&v[4..20], &"fd00::11".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(v[20], 0);
        assert_eq!(v[21], 128);
        assert_eq!(
            &v[22..38],
            &"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(m.len(), usize::from(u16::from_be_bytes([m[16], m[17]])));
    }

    #[test]
    fn ipv6_over_an_ipv4_session_carries_global_and_link_local_next_hops() {
        // Layout: RFC 4760 section 3 (MP_REACH_NLRI) and RFC 2545 section 3 (a
        // 32-byte next hop: global, then link-local); BIRD's decoding of these
        // bytes is checked by e2e/tests/bgp_mp.rs.
        let a = Attrs {
            as_path: vec![4_200_000_001],
            next_hop: "fd77::11".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
            local_pref: None,
            communities: vec![],
            large_communities: vec![],
        };
        let m = &announce(
            &nets(&["2001:db8:77::/128"]),
            &a,
            Encoding {
                four_byte_asn: true,
            },
        )[0];
        let mut nh = vec![0xfd, 0x77];
        nh.extend([0; 13]);
        nh.push(0x11);
        nh.extend([0xfe, 0x80]);
        nh.extend([0; 13]);
        nh.push(1);
        let expect: Vec<u8> = [
            vec![0xff; 16],
            vec![0, 93, 2],                                 // length, UPDATE
            vec![0, 0],                                     // no withdrawn routes
            vec![0, 70],                                    // attributes length
            vec![0x40, 1, 1, 0],                            // ORIGIN IGP
            vec![0x40, 2, 6, 2, 1, 0xfa, 0x56, 0xea, 0x01], // AS_PATH 4200000001
            vec![0x80, 14, 54, 0, 2, 1, 32], // MP_REACH_NLRI, AFI 2, SAFI 1, 32-byte next hop
            nh,                              // fd77::11, fe80::1
            vec![0],                         // reserved
            vec![
                128, 0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ], // NLRI
                                             // and no IPv4 NLRI after the attributes
        ]
        .concat();
        assert_eq!(m, &expect);
        assert_eq!(crate::bgp::packet::check_update(&m[19..]), Ok(None));
        // Without a link-local (multihop peer): the 16-byte form.
        let a = Attrs {
            link_local: None,
            ..a
        };
        let m = &announce(
            &nets(&["2001:db8:77::/128"]),
            &a,
            Encoding {
                four_byte_asn: true,
            },
        )[0];
        assert_eq!(&m[36..43], &[0x80, 14, 38, 0, 2, 1, 16]);
        assert_eq!(m.len(), 93 - 16);
    }

    #[test]
    fn ten_thousand_prefixes_pack_into_few_messages_under_4096_bytes() {
        let v4: Vec<IpNet> = (0..10_000u32)
            .map(|i| IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 32).unwrap())
            .collect();
        let msgs = announce(
            &v4,
            &ebgp(),
            Encoding {
                four_byte_asn: true,
            },
        );
        assert!(
            msgs.iter()
                .all(|m| m.len() <= 4096 && frame(m).unwrap() == Some(m.len()))
        );
        assert_eq!(
            msgs.len(),
            10_000usize.div_ceil((4096 - 19 - 4 - 42) / 5),
            "as many /32s per UPDATE as fit"
        );
        let v6: Vec<IpNet> = (0..10_000u128)
            .map(|i| IpNet::new(IpAddr::V6(Ipv6Addr::from((0xfd00u128 << 112) | i)), 128).unwrap())
            .collect();
        let msgs6 = announce(
            &v6,
            &ebgp(),
            Encoding {
                four_byte_asn: true,
            },
        );
        assert!(
            msgs6
                .iter()
                .all(|m| m.len() <= 4096 && frame(m).unwrap() == Some(m.len()))
        );
        assert!(msgs6.len() <= 10_000usize.div_ceil(4000 / 17) + 1);
        let w = withdraw(&v4);
        assert!(w.iter().all(|m| m.len() <= 4096));
        assert_eq!(w.len(), 10_000usize.div_ceil((4096 - 23) / 5));
        assert!(withdraw(&v6).iter().all(|m| m.len() <= 4096));
    }

    #[test]
    fn withdrawals_and_end_of_rib() {
        let w = &withdraw(&nets(&["198.51.100.7/32", "10.0.0.0/8"]))[0];
        assert_eq!(&w[19..], &[0, 7, 32, 198, 51, 100, 7, 8, 10, 0, 0]);
        let w6 = &withdraw(&nets(&["2001:db8::/32"]))[0];
        assert_eq!(
            &w6[19..],
            &[
                0, 0, 0, 11, 0x80, 15, 8, 0, 2, 1, 32, 0x20, 0x01, 0x0d, 0xb8
            ]
        );
        assert_eq!(&end_of_rib(false)[16..], &[0, 23, 2, 0, 0, 0, 0]);
        assert_eq!(&end_of_rib(true)[19..], &[0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
    }
}
