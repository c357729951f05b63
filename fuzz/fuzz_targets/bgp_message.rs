//! BGP bytes from a peer: the framing loop the session runs over its read buffer,
//! then our decoder (our OPEN checks in front of zettabgp, NOTIFICATION,
//! ROUTE-REFRESH, UPDATE). Must never panic; every error is a NOTIFICATION that
//! fits in one message.
#![no_main]

use ferrolb_speaker::bgp::packet::{self, HEADER_LEN, MAX_LEN, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The stream as the session sees it: frame, decode, drop, repeat.
    let mut buf = data;
    loop {
        match packet::frame(buf) {
            Ok(Some(n)) => {
                assert!((HEADER_LEN..=MAX_LEN).contains(&n) && n <= buf.len());
                match packet::decode(&buf[..n]) {
                    Ok(Message::Notification(note)) => {
                        // What we decode we can send back unchanged.
                        let again = packet::notification(&note);
                        assert_eq!(packet::decode(&again), Ok(Message::Notification(note)));
                    }
                    Ok(_) => {}
                    Err(note) => assert!(packet::notification(&note).len() <= MAX_LEN),
                }
                buf = &buf[n..];
            }
            Ok(None) => break,
            Err(note) => {
                assert!(packet::notification(&note).len() <= MAX_LEN);
                break;
            }
        }
    }
    // Bodies straight into the decoders, without the framing's length checks.
    let _ = packet::decode_open(data);
    let _ = packet::decode(data);
});
