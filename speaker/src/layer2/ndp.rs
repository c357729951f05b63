//! IPv6 Neighbor Discovery (RFC 4861): Neighbor Solicitations in, Neighbor
//! Advertisements out. Pure. The ICMPv6 body is parsed here rather than with
//! pnet's NDP views, whose option walk overflows on a length byte of 32 or more.

use std::net::Ipv6Addr;

use pnet_base::MacAddr;
use pnet_packet::Packet;
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};

/// ICMPv6 type of a Neighbor Solicitation (RFC 4861 section 4.3).
pub const NEIGHBOR_SOLICITATION: u8 = 135;
/// ICMPv6 type of a Neighbor Advertisement (RFC 4861 section 4.4).
pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Option type: source link-layer address (RFC 4861 section 4.6.1).
const OPT_SOURCE_LL: u8 = 1;
/// Option type: target link-layer address.
const OPT_TARGET_LL: u8 = 2;
/// NA flags (RFC 4861 section 4.4).
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// A Neighbor Solicitation or Advertisement, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ndp {
    /// Solicitation (true) or advertisement.
    pub is_solicitation: bool,
    /// Ethernet source.
    pub eth_src: MacAddr,
    /// IPv6 source (`::` for duplicate address detection).
    pub src: Ipv6Addr,
    /// IPv6 destination.
    pub dst: Ipv6Addr,
    /// The address asked about or announced.
    pub target: Ipv6Addr,
    /// Link-layer address option (source for NS, target for NA), if any.
    pub link_addr: Option<MacAddr>,
}

/// Why a frame is not NDP we handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NdpError {
    /// Too short.
    #[error("truncated frame")]
    Truncated,
    /// Not ICMPv6 directly in IPv6 over Ethernet.
    #[error("not ICMPv6")]
    NotIcmpv6,
    /// ICMPv6 but not NS/NA.
    #[error("not a neighbour solicitation or advertisement")]
    NotNdp,
    /// Fails RFC 4861 section 7.1 validation (hop limit, code, options).
    #[error("invalid per RFC 4861: {0}")]
    Invalid(&'static str),
}

/// Parses an Ethernet frame holding an NS or NA and validates it as RFC 4861
/// section 7.1 asks (valid ICMPv6 checksum, hop limit 255, code 0, no
/// zero-length option, no link-layer option on a DAD probe). The checksum is
/// ours to check: a packet socket sees frames before the IPv6 stack does.
pub fn parse(frame: &[u8]) -> Result<Ndp, NdpError> {
    let eth = EthernetPacket::new(frame).ok_or(NdpError::Truncated)?;
    if eth.get_ethertype() != EtherTypes::Ipv6 {
        return Err(NdpError::NotIcmpv6);
    }
    let ip = Ipv6Packet::new(eth.payload()).ok_or(NdpError::Truncated)?;
    if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 {
        return Err(NdpError::NotIcmpv6);
    }
    let declared = usize::from(ip.get_payload_length());
    let body = eth
        .payload()
        .get(40..40 + declared)
        .ok_or(NdpError::Truncated)?;
    let kind = *body.first().ok_or(NdpError::Truncated)?;
    let is_solicitation = match kind {
        NEIGHBOR_SOLICITATION => true,
        NEIGHBOR_ADVERTISEMENT => false,
        _ => return Err(NdpError::NotNdp),
    };
    if body.len() < 24 {
        return Err(NdpError::Truncated);
    }
    if ip.get_hop_limit() != 255 {
        return Err(NdpError::Invalid("hop limit is not 255"));
    }
    if body[1] != 0 {
        return Err(NdpError::Invalid("ICMPv6 code is not 0"));
    }
    // Summed with the checksum field included, a valid message gives 0.
    if checksum(&ip.get_source(), &ip.get_destination(), body) != 0 {
        return Err(NdpError::Invalid("bad ICMPv6 checksum"));
    }
    let mut t = [0u8; 16];
    t.copy_from_slice(&body[8..24]);
    let target = Ipv6Addr::from(t);
    if target.is_multicast() {
        return Err(NdpError::Invalid("target is multicast"));
    }
    let wanted = if is_solicitation {
        OPT_SOURCE_LL
    } else {
        OPT_TARGET_LL
    };
    let mut link_addr = None;
    let mut opts = &body[24..];
    while !opts.is_empty() {
        let (Some(&ty), Some(&len)) = (opts.first(), opts.get(1)) else {
            return Err(NdpError::Invalid("truncated option"));
        };
        let bytes = usize::from(len) * 8;
        if bytes == 0 {
            return Err(NdpError::Invalid("option of length 0"));
        }
        let opt = opts
            .get(..bytes)
            .ok_or(NdpError::Invalid("option past the end"))?;
        if ty == wanted && bytes >= 8 {
            link_addr = Some(MacAddr::new(opt[2], opt[3], opt[4], opt[5], opt[6], opt[7]));
        }
        opts = &opts[bytes..];
    }
    let src = ip.get_source();
    if is_solicitation && src.is_unspecified() && link_addr.is_some() {
        return Err(NdpError::Invalid(
            "DAD probe with a source link-layer option",
        ));
    }
    Ok(Ndp {
        is_solicitation,
        eth_src: eth.get_source(),
        src,
        dst: ip.get_destination(),
        target,
        link_addr,
    })
}

/// The solicited-node multicast address of `ip` (RFC 4291 section 2.7.1).
pub fn solicited_node(ip: &Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet address of an IPv6 multicast group (RFC 2464 section 7).
pub fn multicast_mac(group: &Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr::new(0x33, 0x33, o[12], o[13], o[14], o[15])
}

/// ICMPv6 checksum over the IPv6 pseudo-header (RFC 4443 section 2.3).
fn checksum(src: &Ipv6Addr, dst: &Ipv6Addr, body: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
            sum += u32::from(w);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    // Bodies come from a u16 payload length: the cast cannot truncate.
    add(&(body.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(body);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn advertisement(
    eth_dst: MacAddr,
    mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u8,
) -> Vec<u8> {
    let mut body = vec![0u8; 32];
    body[0] = NEIGHBOR_ADVERTISEMENT;
    body[4] = flags;
    body[8..24].copy_from_slice(&target.octets());
    body[24] = OPT_TARGET_LL;
    body[25] = 1;
    body[26..32].copy_from_slice(&[mac.0, mac.1, mac.2, mac.3, mac.4, mac.5]);
    let c = checksum(&src, &dst, &body);
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let mut buf = vec![0u8; 14 + 40 + body.len()];
    if let Some(mut eth) = MutableEthernetPacket::new(&mut buf) {
        eth.set_destination(eth_dst);
        eth.set_source(mac);
        eth.set_ethertype(EtherTypes::Ipv6);
    }
    if let Some(mut ip) = MutableIpv6Packet::new(&mut buf[14..]) {
        ip.set_version(6);
        ip.set_payload_length(32);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(255);
        ip.set_source(src);
        ip.set_destination(dst);
    }
    buf[54..].copy_from_slice(&body);
    buf
}

/// The solicited NA answering `ns` for `ns.target` at `mac` (S and O set). A DAD
/// probe (source `::`) is answered to all nodes, unsolicited, as RFC 4861
/// section 7.2.4 asks.
pub fn reply(ns: &Ndp, mac: MacAddr) -> Vec<u8> {
    if ns.src.is_unspecified() {
        return unsolicited(ns.target, mac);
    }
    let eth_dst = ns.link_addr.unwrap_or(ns.eth_src);
    advertisement(
        eth_dst,
        mac,
        ns.target,
        ns.src,
        ns.target,
        FLAG_SOLICITED | FLAG_OVERRIDE,
    )
}

/// An unsolicited NA to all nodes (`ff02::1`) with the Override flag, which
/// updates existing neighbour entries (RFC 4861 section 7.2.6).
pub fn unsolicited(ip: Ipv6Addr, mac: MacAddr) -> Vec<u8> {
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    advertisement(
        multicast_mac(&all_nodes),
        mac,
        ip,
        all_nodes,
        ip,
        FLAG_OVERRIDE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(src: Ipv6Addr, target: Ipv6Addr, hop: u8, opts: &[u8]) -> Vec<u8> {
        let mut body = vec![NEIGHBOR_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&target.octets());
        body.extend_from_slice(opts);
        let dst = solicited_node(&target);
        let c = checksum(&src, &dst, &body);
        body[2..4].copy_from_slice(&c.to_be_bytes());
        let mut f = vec![
            0x33, 0x33, 0xff, 0, 0, 0x0a, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x86, 0xdd,
        ];
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&(body.len() as u16).to_be_bytes());
        ip.extend_from_slice(&[58, hop]);
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&body);
        f
    }

    const SLL: [u8; 8] = [1, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_a_solicitation_with_its_source_link_layer_address() {
        let n = parse(&ns(a("fd00::2"), a("fd00::a"), 255, &SLL)).unwrap();
        assert!(n.is_solicitation);
        assert_eq!(n.target, a("fd00::a"));
        assert_eq!(n.dst, a("ff02::1:ff00:a"));
        assert_eq!(
            n.link_addr,
            Some(MacAddr::new(0x52, 0x54, 0, 0x12, 0x34, 0x56))
        );
    }

    #[test]
    fn solicited_advertisement_bytes() {
        let mac = MacAddr::new(2, 0, 0, 0, 0, 1);
        let n = parse(&ns(a("fd00::2"), a("fd00::a"), 255, &SLL)).unwrap();
        let r = reply(&n, mac);
        assert_eq!(
            &r[..6],
            &[0x52, 0x54, 0, 0x12, 0x34, 0x56],
            "unicast to the asker"
        );
        assert_eq!(&r[12..14], &[0x86, 0xdd]);
        assert_eq!(r[14 + 7], 255, "hop limit");
        assert_eq!(
            &r[14 + 8..14 + 24],
            &a("fd00::a").octets(),
            "source is the target address"
        );
        assert_eq!(&r[14 + 24..14 + 40], &a("fd00::2").octets());
        let body = &r[54..];
        assert_eq!(body[0], 136);
        assert_eq!(body[4], 0x60, "Solicited and Override, not Router");
        assert_eq!(
            &body[24..32],
            &[2, 1, 2, 0, 0, 0, 0, 1],
            "target link-layer option"
        );
        // The checksum verifies: summing with it included gives 0.
        assert_eq!(checksum(&a("fd00::a"), &a("fd00::2"), body), 0);
        let back = parse(&r).unwrap();
        assert!(!back.is_solicitation);
        assert_eq!(back.link_addr, Some(mac));
    }

    #[test]
    fn unsolicited_goes_to_all_nodes_with_override_only() {
        let u = unsolicited(a("fd00::a"), MacAddr::new(2, 0, 0, 0, 0, 1));
        assert_eq!(&u[..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(u[54 + 4], 0x20);
        assert_eq!(checksum(&a("fd00::a"), &a("ff02::1"), &u[54..]), 0);
    }

    #[test]
    fn dad_probes_are_answered_to_all_nodes() {
        let n = parse(&ns(Ipv6Addr::UNSPECIFIED, a("fd00::a"), 255, &[])).unwrap();
        let r = reply(&n, MacAddr::new(2, 0, 0, 0, 0, 1));
        assert_eq!(&r[14 + 24..14 + 40], &a("ff02::1").octets());
    }

    #[test]
    fn a_bad_checksum_is_invalid() {
        // Found by e2e/tests/layer2_hostile.rs: the speaker answered these.
        let good = ns(a("fd00::2"), a("fd00::a"), 255, &SLL);
        assert!(parse(&good).is_ok());
        for i in [14 + 40 + 2, 14 + 40 + 3, 14 + 40 + 23, 14 + 8] {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert_eq!(
                parse(&bad),
                Err(NdpError::Invalid("bad ICMPv6 checksum")),
                "byte {i} changed"
            );
        }
    }

    #[test]
    fn rfc_4861_validation() {
        assert_eq!(
            parse(&ns(a("fd00::2"), a("fd00::a"), 64, &SLL)),
            Err(NdpError::Invalid("hop limit is not 255"))
        );
        assert_eq!(
            parse(&ns(
                a("fd00::2"),
                a("fd00::a"),
                255,
                &[1, 0, 0, 0, 0, 0, 0, 0]
            )),
            Err(NdpError::Invalid("option of length 0"))
        );
        assert_eq!(
            parse(&ns(a("fd00::2"), a("fd00::a"), 255, &[1, 200])),
            Err(NdpError::Invalid("option past the end"))
        );
        assert_eq!(
            parse(&ns(a("fd00::2"), a("ff02::1"), 255, &[])),
            Err(NdpError::Invalid("target is multicast"))
        );
        assert!(matches!(
            parse(&ns(Ipv6Addr::UNSPECIFIED, a("fd00::a"), 255, &SLL)),
            Err(NdpError::Invalid(_))
        ));
        let f = ns(a("fd00::2"), a("fd00::a"), 255, &SLL);
        assert_eq!(parse(&f[..60]), Err(NdpError::Truncated));
    }

    #[test]
    fn multicast_addresses() {
        assert_eq!(
            solicited_node(&a("2001:db8::1:2:3:4567")),
            a("ff02::1:ff03:4567"),
            "low 24 bits"
        );
        assert_eq!(
            multicast_mac(&a("ff02::1:ff67:4567")),
            MacAddr::new(0x33, 0x33, 0xff, 0x67, 0x45, 0x67)
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_mangled_solicitations(i in 0usize..80, b in proptest::prelude::any::<u8>()) {
            let mut f = ns("fd00::2".parse().unwrap(), "fd00::a".parse().unwrap(), 255, &SLL);
            if i < f.len() { f[i] = b; }
            let _ = parse(&f);
        }
    }
}
