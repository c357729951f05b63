//! Datagrams from the membership port into the wire decoder and the detector:
//! never a panic, a keyed decoder accepts nothing it cannot authenticate, and what
//! decodes encodes back to the same bytes.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferrolb_speaker::membership::detector::{Membership, Timing};
use ferrolb_speaker::membership::wire::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data, None) {
        assert_eq!(encode(&m, None).ok().as_deref(), Some(data));
        // Whatever a member claims, the state machine takes it without panicking.
        let now = Instant::now();
        let src: SocketAddr = ([10, 0, 0, 2], 7946).into();
        let mut mem = Membership::new("n1", 1, Timing::default(), now);
        mem.seed(&[("n1".into(), ([10, 0, 0, 1], 7946).into()), (m.from.clone(), src)], now);
        let _ = mem.receive(src, &m, now);
        let _ = mem.tick(now + Duration::from_millis(50));
        let _ = mem.has_quorum();
    }
    assert!(decode(data, Some(b"fuzz-key")).is_err() || data.len() > 16);
});
