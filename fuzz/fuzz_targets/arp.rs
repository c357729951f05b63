//! Frames from the LAN into the ARP parser and the responder: never a panic, and a
//! reply only for a request for an address we own, sent back to the asker.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use ferrolb_speaker::layer2::arp;
use ferrolb_speaker::layer2::responder::{Owned, respond_arp};
use libfuzzer_sys::fuzz_target;
use pnet_base::MacAddr;

const ME: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);

fuzz_target!(|data: &[u8]| {
    let parsed = arp::parse(data);
    let mut owned = Owned::default();
    owned.insert(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)));
    // Also own whatever the frame asks for, so the reply path runs too.
    if let Ok(a) = parsed {
        owned.insert(IpAddr::V4(a.target_ip));
    }
    if let Ok(reply) = respond_arp(data, &owned, ME) {
        let Ok(req) = parsed else {
            panic!("replied to a frame that does not parse");
        };
        assert!(req.is_request && !req.is_gratuitous());
        let r = arp::parse(&reply).ok();
        assert!(r.is_some_and(|r| !r.is_request
            && r.sender_mac == ME
            && r.sender_ip == req.target_ip
            && r.target_ip == req.sender_ip));
        // Unicast to the asker's ARP sender address (RFC 826), not the Ethernet source.
        assert_eq!(&reply[..6], &req.sender_mac.octets(), "unicast to the asker");
    }
    let mut none = Owned::default();
    none.insert(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)));
    if let Ok(a) = parsed {
        if a.target_ip != Ipv4Addr::new(192, 168, 1, 10) {
            assert!(respond_arp(data, &none, ME).is_err(), "answered for an address not ours");
        }
    }
});
