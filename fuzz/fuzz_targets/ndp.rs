//! Frames from the LAN into the NDP parser (RFC 4861 validation) and the
//! responder: never a panic, and an advertisement only for a solicitation of an
//! address we own.
#![no_main]

use std::net::{IpAddr, Ipv6Addr};

use ferrolb_speaker::layer2::ndp;
use ferrolb_speaker::layer2::responder::{Owned, respond_ndp};
use libfuzzer_sys::fuzz_target;
use pnet_base::MacAddr;

const ME: MacAddr = MacAddr(2, 0, 0, 0, 0, 1);
const OURS: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0xa);

fuzz_target!(|data: &[u8]| {
    let parsed = ndp::parse(data);
    let mut owned = Owned::default();
    owned.insert(IpAddr::V6(OURS));
    if let Ok(n) = &parsed {
        owned.insert(IpAddr::V6(n.target));
    }
    if let Ok(reply) = respond_ndp(data, &owned, ME) {
        let Ok(req) = &parsed else {
            panic!("replied to a frame that does not parse");
        };
        assert!(req.is_solicitation);
        // Our advertisement passes our own validation (checksum, hop limit, ...).
        let na = ndp::parse(&reply);
        assert!(
            na.as_ref().is_ok_and(|na| !na.is_solicitation && na.target == req.target),
            "{na:?}"
        );
    }
    let mut only_ours = Owned::default();
    only_ours.insert(IpAddr::V6(OURS));
    if let Ok(n) = &parsed {
        if n.target != OURS {
            assert!(respond_ndp(data, &only_ours, ME).is_err(), "answered for an address not ours");
        }
    }
});
