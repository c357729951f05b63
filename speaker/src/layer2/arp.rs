//! ARP (RFC 826) requests in, replies and gratuitous announcements out. Pure:
//! bytes to values and back, over pnet_packet's checked views.

use std::net::Ipv4Addr;

use pnet_base::MacAddr;
use pnet_packet::Packet;
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};

/// Ethernet header plus ARP for IPv4 over Ethernet.
pub const FRAME_LEN: usize = 14 + 28;
/// Frames are padded to the Ethernet minimum (without FCS).
pub const MIN_FRAME: usize = 60;

/// An ARP packet of interest, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Request (`who-has`) or reply (`is-at`).
    pub is_request: bool,
    /// Ethernet source.
    pub eth_src: MacAddr,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// A gratuitous ARP: the sender announces its own address.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip
    }
}

/// Why a frame is not an ARP packet we handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArpError {
    /// Too short for Ethernet + ARP.
    #[error("truncated frame")]
    Truncated,
    /// Not ARP.
    #[error("not an ARP frame")]
    NotArp,
    /// ARP for something other than IPv4 over Ethernet.
    #[error("ARP for another hardware or protocol")]
    Unsupported,
    /// Neither request nor reply.
    #[error("unknown ARP operation")]
    Operation,
}

/// Parses an Ethernet frame holding ARP.
pub fn parse(frame: &[u8]) -> Result<Arp, ArpError> {
    if frame.len() < FRAME_LEN {
        return Err(ArpError::Truncated);
    }
    let eth = EthernetPacket::new(frame).ok_or(ArpError::Truncated)?;
    if eth.get_ethertype() != EtherTypes::Arp {
        return Err(ArpError::NotArp);
    }
    let arp = ArpPacket::new(eth.payload()).ok_or(ArpError::Truncated)?;
    if arp.get_hardware_type() != ArpHardwareTypes::Ethernet
        || arp.get_protocol_type() != EtherTypes::Ipv4
        || arp.get_hw_addr_len() != 6
        || arp.get_proto_addr_len() != 4
    {
        return Err(ArpError::Unsupported);
    }
    let is_request = match arp.get_operation() {
        ArpOperations::Request => true,
        ArpOperations::Reply => false,
        _ => return Err(ArpError::Operation),
    };
    Ok(Arp {
        is_request,
        eth_src: eth.get_source(),
        sender_mac: arp.get_sender_hw_addr(),
        sender_ip: arp.get_sender_proto_addr(),
        target_ip: arp.get_target_proto_addr(),
    })
}

fn build(
    eth_dst: MacAddr,
    eth_src: MacAddr,
    op_request: bool,
    sha: MacAddr,
    spa: Ipv4Addr,
    tha: MacAddr,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut buf = vec![0u8; MIN_FRAME];
    if let Some(mut eth) = MutableEthernetPacket::new(&mut buf) {
        eth.set_destination(eth_dst);
        eth.set_source(eth_src);
        eth.set_ethertype(EtherTypes::Arp);
    }
    if let Some(mut arp) = MutableArpPacket::new(&mut buf[14..FRAME_LEN]) {
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(if op_request {
            ArpOperations::Request
        } else {
            ArpOperations::Reply
        });
        arp.set_sender_hw_addr(sha);
        arp.set_sender_proto_addr(spa);
        arp.set_target_hw_addr(tha);
        arp.set_target_proto_addr(tpa);
    }
    buf
}

/// The reply to `req`, saying `req.target_ip` is at `mac`. Sent unicast to the
/// asker (RFC 826).
pub fn reply(req: &Arp, mac: MacAddr) -> Vec<u8> {
    build(
        req.sender_mac,
        mac,
        false,
        mac,
        req.target_ip,
        req.sender_mac,
        req.sender_ip,
    )
}

/// A gratuitous ARP announcing `ip` at `mac`: a broadcast request whose sender
/// and target address are both `ip` (RFC 5227 section 3's announcement), which
/// updates existing neighbour entries on every host of the segment.
pub fn gratuitous(ip: Ipv4Addr, mac: MacAddr) -> Vec<u8> {
    build(
        MacAddr::broadcast(),
        mac,
        true,
        mac,
        ip,
        MacAddr::zero(),
        ip,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `arping 192.168.1.10` sends from 52:54:00:12:34:56 (192.168.1.2),
    /// laid out by hand from RFC 826 (the netns tests check against real arping).
    const REQUEST: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08,
        0x06, // ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen op=request
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 192, 168, 1, 2, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 168, 1, 10, // target
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn parses_a_captured_request() {
        let a = parse(&REQUEST).unwrap();
        assert!(a.is_request && !a.is_gratuitous());
        assert_eq!(a.sender_mac, MacAddr::new(0x52, 0x54, 0, 0x12, 0x34, 0x56));
        assert_eq!(a.sender_ip, Ipv4Addr::new(192, 168, 1, 2));
        assert_eq!(a.target_ip, Ipv4Addr::new(192, 168, 1, 10));
    }

    #[test]
    fn reply_bytes_are_exactly_rfc_826() {
        let mac = MacAddr::new(0x02, 0, 0, 0, 0, 0x01);
        let r = reply(&parse(&REQUEST).unwrap(), mac);
        let expect: [u8; 42] = [
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, //
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, //
            0x02, 0, 0, 0, 0, 0x01, 192, 168, 1, 10, //
            0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 192, 168, 1, 2,
        ];
        assert_eq!(&r[..42], &expect);
        assert_eq!(r.len(), 60);
        assert!(r[42..].iter().all(|b| *b == 0));
        // It parses back as a reply.
        let back = parse(&r).unwrap();
        assert!(!back.is_request);
        assert_eq!(
            (back.sender_ip, back.sender_mac),
            (Ipv4Addr::new(192, 168, 1, 10), mac)
        );
    }

    #[test]
    fn gratuitous_announcement_is_a_broadcast_request_for_itself() {
        let g = gratuitous(Ipv4Addr::new(10, 0, 0, 5), MacAddr::new(2, 0, 0, 0, 0, 9));
        assert_eq!(&g[..6], &[0xff; 6]);
        let p = parse(&g).unwrap();
        assert!(p.is_request && p.is_gratuitous());
        assert_eq!(&g[32..38], &[0; 6], "target hardware address is zero");
    }

    #[test]
    fn rejects_what_is_not_ipv4_over_ethernet_arp() {
        assert_eq!(parse(&REQUEST[..41]), Err(ArpError::Truncated));
        let mut f = REQUEST;
        f[12] = 0x86;
        f[13] = 0xdd;
        assert_eq!(parse(&f), Err(ArpError::NotArp));
        let mut f = REQUEST;
        f[19] = 16;
        assert_eq!(parse(&f), Err(ArpError::Unsupported));
        let mut f = REQUEST;
        f[21] = 9;
        assert_eq!(parse(&f), Err(ArpError::Operation));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128)) {
            let _ = parse(&bytes);
        }
    }
}
