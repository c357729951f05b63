//! BGP messages on the wire: framing (RFC 4271 section 4.1) and the messages the
//! session needs. Every error is the NOTIFICATION to send.
//!
//! OPEN is encoded and decoded by zettabgp, behind our own structural checks and a
//! panic guard (its decoder trusts lengths inside the message); NOTIFICATION and
//! KEEPALIVE are ours (zettabgp keeps at most two bytes of NOTIFICATION data).

use std::net::Ipv4Addr;
use std::panic::{AssertUnwindSafe, catch_unwind};

use zettabgp::BgpMessage;
use zettabgp::message::open::BgpOpenMessage;
use zettabgp::{BgpCapability, BgpSessionParams, BgpTransportMode};

use super::fsm::PeerOpen;
use super::notification::{Notification, code};

/// Length of the fixed header (RFC 4271 section 4.1).
pub const HEADER_LEN: usize = 19;
/// Largest message without RFC 8654 extended messages.
pub const MAX_LEN: usize = 4096;
/// AS_TRANS (RFC 6793): the 2-byte AS field when the real AS needs 4 bytes.
pub const AS_TRANS: u16 = 23456;

/// Message types (RFC 4271 section 4.1, RFC 2918).
pub mod kind {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH.
    pub const ROUTE_REFRESH: u8 = 5;
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(PeerOpen),
    /// UPDATE (the body; FerroLB only announces, received routes are ignored).
    Update(Vec<u8>),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH for (AFI, SAFI).
    RouteRefresh(u16, u8),
}

fn bad_length(len: usize) -> Notification {
    Notification::with_data(
        code::HEADER,
        code::HEADER_BAD_LENGTH,
        (len.min(u16::MAX as usize) as u16).to_be_bytes(),
    )
}

/// Whether `buf` starts with a whole message. `Ok(None)`: read more. `Ok(Some(n))`:
/// the first `n` bytes are one message whose header is valid.
pub fn frame(buf: &[u8]) -> Result<Option<usize>, Notification> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16].iter().any(|b| *b != 0xff) {
        return Err(Notification::new(
            code::HEADER,
            code::HEADER_NOT_SYNCHRONIZED,
        ));
    }
    let len = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
    let ty = buf[18];
    let min = match ty {
        kind::OPEN => 29,
        kind::UPDATE => 23,
        kind::NOTIFICATION => 21,
        kind::KEEPALIVE => 19,
        kind::ROUTE_REFRESH => 23,
        _ => {
            return Err(Notification::with_data(
                code::HEADER,
                code::HEADER_BAD_TYPE,
                vec![ty],
            ));
        }
    };
    let exact = matches!(ty, kind::KEEPALIVE | kind::ROUTE_REFRESH);
    if len < min || len > MAX_LEN || (exact && len != min) {
        return Err(bad_length(len));
    }
    Ok((buf.len() >= len).then_some(len))
}

fn with_header(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    // Callers keep bodies within MAX_LEN - HEADER_LEN, so this fits in u16.
    m.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

/// A KEEPALIVE.
pub fn keepalive() -> Vec<u8> {
    with_header(kind::KEEPALIVE, &[])
}

/// A NOTIFICATION (data cut to fit one message).
pub fn notification(n: &Notification) -> Vec<u8> {
    let mut body = n.encode_body();
    body.truncate(MAX_LEN - HEADER_LEN);
    with_header(kind::NOTIFICATION, &body)
}

/// What we put in our OPEN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalOpen {
    /// Our AS (4 bytes; AS_TRANS goes in the 2-byte field when needed).
    pub asn: u32,
    /// Proposed hold time in seconds.
    pub hold_time: u16,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Announce IPv4 unicast (MP capability).
    pub ipv4: bool,
    /// Announce IPv6 unicast (MP capability).
    pub ipv6: bool,
}

/// Our OPEN: capabilities MP-BGP (per family), route refresh and 4-octet AS.
pub fn open(o: &LocalOpen) -> Result<Vec<u8>, Notification> {
    let mut caps = Vec::new();
    if o.ipv4 {
        caps.push(BgpCapability::SafiIPv4u);
    }
    if o.ipv6 {
        caps.push(BgpCapability::SafiIPv6u);
    }
    caps.push(BgpCapability::CapRR);
    caps.push(BgpCapability::CapASN32(o.asn));
    let msg = BgpOpenMessage {
        as_num: o.asn,
        hold_time: o.hold_time,
        router_id: o.router_id,
        caps,
    };
    let params = BgpSessionParams::new(
        o.asn,
        o.hold_time,
        BgpTransportMode::IPv4,
        o.router_id,
        vec![],
    );
    let mut buf = vec![0u8; MAX_LEN - HEADER_LEN];
    let n = catch_unwind(AssertUnwindSafe(|| msg.encode_to(&params, &mut buf)))
        .map_err(|_| Notification::new(code::CEASE, 0))?
        .map_err(|_| Notification::new(code::CEASE, 0))?;
    Ok(with_header(kind::OPEN, &buf[..n]))
}

/// Structural checks of an OPEN body before any decoder sees it (RFC 4271 section
/// 6.2, RFC 5492): every optional parameter and capability inside its bounds.
fn check_open_body(body: &[u8]) -> Result<(), Notification> {
    let bad = || Notification::new(code::OPEN, 0);
    let Some(&version) = body.first() else {
        return Err(bad());
    };
    if version != 4 {
        return Err(Notification::with_data(
            code::OPEN,
            code::OPEN_UNSUPPORTED_VERSION,
            vec![0, 4],
        ));
    }
    let opt_len = usize::from(*body.get(9).ok_or_else(bad)?);
    let params = body.get(10..).ok_or_else(bad)?;
    if params.len() != opt_len {
        return Err(bad_length(HEADER_LEN + body.len()));
    }
    let mut p = params;
    while !p.is_empty() {
        let (&ty, &len) = (p.first().ok_or_else(bad)?, p.get(1).ok_or_else(bad)?);
        let value = p.get(2..2 + usize::from(len)).ok_or_else(bad)?;
        if ty != 2 {
            return Err(Notification::with_data(
                code::OPEN,
                code::OPEN_UNSUPPORTED_OPTIONAL_PARAMETER,
                vec![ty],
            ));
        }
        let mut c = value;
        while !c.is_empty() {
            let clen = usize::from(*c.get(1).ok_or_else(bad)?);
            if c.len() < 2 + clen {
                return Err(bad());
            }
            c = &c[2 + clen..];
        }
        p = &p[2 + usize::from(len)..];
    }
    Ok(())
}

/// Decodes an OPEN body.
pub fn decode_open(body: &[u8]) -> Result<PeerOpen, Notification> {
    check_open_body(body)?;
    let params = BgpSessionParams::new(0, 0, BgpTransportMode::IPv4, Ipv4Addr::UNSPECIFIED, vec![]);
    let mut m = BgpOpenMessage::new();
    let decoded = catch_unwind(AssertUnwindSafe(|| m.decode_from(&params, body)));
    match decoded {
        Ok(Ok(())) => {}
        Ok(Err(_)) | Err(_) => return Err(Notification::new(code::OPEN, 0)),
    }
    let mut four_byte = None;
    let mut route_refresh = false;
    let mut families = Vec::new();
    for c in &m.caps {
        match c {
            BgpCapability::CapASN32(a) => four_byte = Some(*a),
            BgpCapability::CapRR => route_refresh = true,
            BgpCapability::SafiIPv4u => families.push((1, 1)),
            BgpCapability::SafiIPv6u => families.push((2, 1)),
            _ => {}
        }
    }
    Ok(PeerOpen {
        version: 4,
        asn: four_byte.unwrap_or(m.as_num),
        hold_time: m.hold_time,
        router_id: m.router_id,
        four_byte_asn: four_byte.is_some(),
        route_refresh,
        families,
    })
}

/// Decodes one whole message (as delimited by [`frame`]).
pub fn decode(msg: &[u8]) -> Result<Message, Notification> {
    let body = msg.get(HEADER_LEN..).ok_or_else(|| bad_length(msg.len()))?;
    match msg.get(18) {
        Some(&kind::OPEN) => decode_open(body).map(Message::Open),
        Some(&kind::UPDATE) => Ok(Message::Update(body.to_vec())),
        Some(&kind::NOTIFICATION) => Notification::decode_body(body).map(Message::Notification),
        Some(&kind::KEEPALIVE) => Ok(Message::Keepalive),
        Some(&kind::ROUTE_REFRESH) => match body {
            [a, b, _, safi] => Ok(Message::RouteRefresh(u16::from_be_bytes([*a, *b]), *safi)),
            _ => Err(bad_length(msg.len())),
        },
        Some(t) => Err(Notification::with_data(
            code::HEADER,
            code::HEADER_BAD_TYPE,
            vec![*t],
        )),
        None => Err(bad_length(msg.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn local() -> LocalOpen {
        LocalOpen {
            asn: 4_200_000_001,
            hold_time: 90,
            router_id: Ipv4Addr::new(10, 0, 0, 1),
            ipv4: true,
            ipv6: true,
        }
    }

    #[test]
    fn our_open_is_byte_exact() {
        let m = open(&local()).unwrap();
        let expect: Vec<u8> = [
            vec![0xff; 16],
            vec![0, 57, 1],                            // length 57, OPEN
            vec![4, 0x5b, 0xa0, 0, 90, 10, 0, 0, 1],   // version, AS_TRANS, hold 90, id
            vec![28],                                  // optional parameters length
            vec![2, 6, 1, 4, 0, 1, 0, 1],              // MP IPv4 unicast
            vec![2, 6, 1, 4, 0, 2, 0, 1],              // MP IPv6 unicast
            vec![2, 2, 2, 0],                          // route refresh
            vec![2, 6, 65, 4, 0xfa, 0x56, 0xea, 0x01], // 4-octet AS 4200000001
        ]
        .concat();
        assert_eq!(m, expect);
        assert_eq!(frame(&m), Ok(Some(57)));
        let Message::Open(o) = decode(&m).unwrap() else {
            panic!()
        };
        assert_eq!(
            (o.asn, o.hold_time, o.four_byte_asn, o.route_refresh),
            (4_200_000_001, 90, true, true)
        );
        assert_eq!(o.families, vec![(1, 1), (2, 1)]);
    }

    #[test]
    fn framing_errors_are_header_notifications() {
        let ka = keepalive();
        assert_eq!(frame(&ka), Ok(Some(19)));
        assert_eq!(frame(&ka[..18]), Ok(None), "read more");
        let mut bad = ka.clone();
        bad[3] = 0;
        assert_eq!(frame(&bad), Err(Notification::new(1, 1)));
        let mut bad = ka.clone();
        bad[17] = 20;
        assert_eq!(
            frame(&bad),
            Err(Notification::with_data(1, 2, vec![0, 20])),
            "a KEEPALIVE is exactly 19 bytes"
        );
        let mut bad = ka.clone();
        bad[16] = 0x10;
        bad[17] = 0x01;
        assert_eq!(
            frame(&bad),
            Err(Notification::with_data(1, 2, vec![0x10, 0x01])),
            "over 4096"
        );
        let mut bad = ka;
        bad[18] = 9;
        assert_eq!(frame(&bad), Err(Notification::with_data(1, 3, vec![9])));
    }

    #[test]
    fn malformed_opens_are_refused_before_zettabgp_sees_them() {
        let good = open(&local()).unwrap();
        let body = &good[19..];
        let mut b = body.to_vec();
        b[9] = 200; // optional parameters length past the end
        let e = decode_open(&b).unwrap_err();
        assert_eq!((e.code, e.subcode), (code::HEADER, code::HEADER_BAD_LENGTH));
        let mut b = body.to_vec();
        b[11] = 60; // parameter length past the end
        assert!(decode_open(&b).is_err());
        let mut b = body.to_vec();
        b[13] = 250; // capability length past the end
        assert!(decode_open(&b).is_err());
        let mut b = body.to_vec();
        b[10] = 1; // optional parameter type 1 (deprecated authentication)
        assert_eq!(
            decode_open(&b).unwrap_err(),
            Notification::with_data(2, 4, vec![1])
        );
        let mut b = body.to_vec();
        b[0] = 3;
        assert_eq!(decode_open(&b).unwrap_err().subcode, 1);
    }

    #[test]
    fn notification_and_route_refresh_round_trip() {
        let n = Notification::with_data(3, 11, vec![1, 2, 3, 4, 5]);
        let m = notification(&n);
        assert_eq!(frame(&m), Ok(Some(26)));
        assert_eq!(decode(&m), Ok(Message::Notification(n)));
        let rr = with_header(kind::ROUTE_REFRESH, &[0, 2, 0, 1]);
        assert_eq!(decode(&rr), Ok(Message::RouteRefresh(2, 1)));
    }

    proptest! {
        #[test]
        fn framing_and_decoding_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = frame(&bytes);
            let _ = decode(&bytes);
            let _ = decode_open(&bytes);
        }

        #[test]
        fn mangled_opens_never_panic(i in 19usize..57, b in any::<u8>()) {
            let mut m = open(&local()).unwrap();
            m[i] = b;
            if let Ok(Some(n)) = frame(&m) {
                let _ = decode(&m[..n]);
            }
        }
    }
}
