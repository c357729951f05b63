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
use zettabgp::{BgpCapGR, BgpCapability, BgpSessionParams, BgpTransportMode};

use super::fsm::PeerOpen;
use super::graceful_restart::{self, GracefulRestart};
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
    /// UPDATE (FerroLB only announces: received routes are not used, but the
    /// message is checked as RFC 4271/7606 ask).
    Update(Update),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH for (AFI, SAFI).
    RouteRefresh(u16, u8),
}

/// A received UPDATE that passed the checks that end a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The body (after the header).
    pub body: Vec<u8>,
    /// An attribute error for which RFC 7606 asks "treat-as-withdraw" (keep the
    /// session, drop the routes of this message): what was wrong.
    pub treat_as_withdraw: Option<&'static str>,
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
    /// The Graceful Restart capability (RFC 4724), when enabled.
    pub graceful_restart: Option<GracefulRestart>,
}

/// Our OPEN: capabilities MP-BGP (per family), route refresh, 4-octet AS and,
/// when enabled, graceful restart.
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
    if let Some(gr) = &o.graceful_restart {
        caps.push(BgpCapability::CapGR {
            restart_time: gr.restart_time.min(graceful_restart::MAX_RESTART_TIME),
            restart_state: gr.restarted,
            afis: gr
                .families
                .iter()
                .map(|(afi, safi, fwd)| BgpCapGR {
                    afi: *afi,
                    safi: *safi,
                    forwarding_state: *fwd,
                })
                .collect(),
        });
    }
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

/// What [`check_open_body`] found: the body for zettabgp (without the
/// capabilities we parse ourselves) and those capabilities.
struct CheckedOpen {
    body: Vec<u8>,
    graceful_restart: Option<GracefulRestart>,
}

/// Structural checks of an OPEN body before any decoder sees it (RFC 4271 section
/// 6.2, RFC 5492): every optional parameter and capability inside its bounds.
/// Graceful Restart capabilities are taken out and parsed here (zettabgp refuses
/// the whole OPEN when one has an odd length; RFC 5492 only asks to ignore what
/// cannot be used).
fn check_open_body(body: &[u8]) -> Result<CheckedOpen, Notification> {
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
    let mut kept = Vec::new();
    let mut graceful_restart = None;
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
        let mut caps = Vec::new();
        let mut c = value;
        while !c.is_empty() {
            let ccode = *c.first().ok_or_else(bad)?;
            let clen = usize::from(*c.get(1).ok_or_else(bad)?);
            let whole = c.get(..2 + clen).ok_or_else(bad)?;
            if ccode == graceful_restart::CAPABILITY {
                // A repeated capability: the first one counts.
                if graceful_restart.is_none() {
                    graceful_restart = GracefulRestart::parse_value(&whole[2..]);
                }
            } else {
                caps.extend_from_slice(whole);
            }
            c = &c[2 + clen..];
        }
        if !caps.is_empty() || value.is_empty() {
            kept.push(2);
            // At most the original parameter's length, so it fits in a byte.
            kept.push(caps.len() as u8);
            kept.extend_from_slice(&caps);
        }
        p = &p[2 + usize::from(len)..];
    }
    let mut out = body[..9].to_vec();
    // At most the original optional parameters length.
    out.push(kept.len() as u8);
    out.extend_from_slice(&kept);
    Ok(CheckedOpen {
        body: out,
        graceful_restart,
    })
}

/// Decodes an OPEN body.
pub fn decode_open(body: &[u8]) -> Result<PeerOpen, Notification> {
    let checked = check_open_body(body)?;
    let body = &checked.body[..];
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
        graceful_restart: checked.graceful_restart,
    })
}

/// Checks a prefix list (withdrawn routes or NLRI): each length at most `max`
/// bits and every prefix inside the field.
fn check_prefixes(mut b: &[u8], max: u8) -> Result<(), ()> {
    while let Some(&len) = b.first() {
        if len > max {
            return Err(());
        }
        let n = usize::from(len).div_ceil(8);
        b = b.get(1 + n..).ok_or(())?;
    }
    Ok(())
}

/// MP_REACH_NLRI (14) / MP_UNREACH_NLRI (15), RFC 4760: the fields inside the
/// attribute and the prefixes of the families we know.
fn check_mp(ty: u8, v: &[u8]) -> Result<(), ()> {
    let afi = u16::from_be_bytes([*v.first().ok_or(())?, *v.get(1).ok_or(())?]);
    v.get(2).ok_or(())?;
    let nlri = if ty == 14 {
        let nh = usize::from(*v.get(3).ok_or(())?);
        // Next hop, then one reserved byte.
        v.get(4 + nh + 1..).ok_or(())?
    } else {
        &v[3..]
    };
    match afi {
        1 => check_prefixes(nlri, 32),
        2 => check_prefixes(nlri, 128),
        // A family we did not negotiate: nothing of it is used.
        _ => Ok(()),
    }
}

/// Checks an UPDATE body (RFC 4271 section 6.3 as revised by RFC 7606). Errors
/// that make the rest of the message unreadable (lengths that do not add up,
/// broken prefixes, a malformed or repeated MP_REACH/MP_UNREACH) end the session
/// with the NOTIFICATION returned; an error inside one attribute only means
/// "treat-as-withdraw", returned as `Ok(Some(why))`.
pub fn check_update(body: &[u8]) -> Result<Option<&'static str>, Notification> {
    let malformed = || Notification::new(code::UPDATE, code::UPDATE_MALFORMED_ATTRIBUTE_LIST);
    let u16_at = |i: usize| -> Result<usize, Notification> {
        match body.get(i..i + 2) {
            Some(&[a, b]) => Ok(usize::from(u16::from_be_bytes([a, b]))),
            _ => Err(malformed()),
        }
    };
    let wlen = u16_at(0)?;
    let withdrawn = body.get(2..2 + wlen).ok_or_else(malformed)?;
    let alen = u16_at(2 + wlen)?;
    let attrs = body.get(4 + wlen..4 + wlen + alen).ok_or_else(malformed)?;
    let nlri = &body[4 + wlen + alen..];
    check_prefixes(withdrawn, 32).map_err(|()| malformed())?;
    check_prefixes(nlri, 32)
        .map_err(|()| Notification::new(code::UPDATE, code::UPDATE_INVALID_NETWORK_FIELD))?;
    let mut seen = [false; 256];
    let mut problem = None;
    let mut a = attrs;
    while !a.is_empty() {
        let (flags, ty) = match a {
            [f, t, ..] => (*f, *t),
            _ => {
                problem.get_or_insert("attribute header truncated");
                break;
            }
        };
        let (len, hdr) = if flags & 0x10 != 0 {
            match a.get(2..4) {
                Some(&[x, y]) => (usize::from(u16::from_be_bytes([x, y])), 4),
                _ => {
                    problem.get_or_insert("attribute header truncated");
                    break;
                }
            }
        } else {
            match a.get(2) {
                Some(&x) => (usize::from(x), 3),
                None => {
                    problem.get_or_insert("attribute header truncated");
                    break;
                }
            }
        };
        let Some(value) = a.get(hdr..hdr + len) else {
            problem.get_or_insert("attribute length overruns the attribute list");
            break;
        };
        let repeated = std::mem::replace(&mut seen[usize::from(ty)], true);
        match ty {
            14 | 15 if repeated => return Err(malformed()),
            14 | 15 => check_mp(ty, value)
                .map_err(|()| Notification::new(code::UPDATE, code::UPDATE_OPTIONAL_ATTRIBUTE))?,
            // RFC 7606 section 3 (g): later copies of other attributes are discarded.
            _ if repeated => {}
            1 if len != 1 || value[0] > 2 => {
                problem.get_or_insert("malformed ORIGIN");
            }
            3..=5 if len != 4 => {
                problem.get_or_insert("NEXT_HOP, MED or LOCAL_PREF of the wrong length");
            }
            6 if len != 0 => {
                problem.get_or_insert("ATOMIC_AGGREGATE with a value");
            }
            _ => {}
        }
        a = &a[hdr + len..];
    }
    let carries_routes = !nlri.is_empty() || seen[14];
    if problem.is_none() && carries_routes && !(seen[1] && seen[2]) {
        problem = Some("well-known mandatory attribute missing");
    }
    if problem.is_none() && !nlri.is_empty() && !seen[3] {
        problem = Some("NEXT_HOP missing");
    }
    Ok(problem)
}

/// Decodes one whole message (as delimited by [`frame`]).
pub fn decode(msg: &[u8]) -> Result<Message, Notification> {
    let body = msg.get(HEADER_LEN..).ok_or_else(|| bad_length(msg.len()))?;
    match msg.get(18) {
        Some(&kind::OPEN) => decode_open(body).map(Message::Open),
        Some(&kind::UPDATE) => check_update(body).map(|treat_as_withdraw| {
            Message::Update(Update {
                body: body.to_vec(),
                treat_as_withdraw,
            })
        }),
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
            graceful_restart: None,
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
    fn our_open_with_graceful_restart_is_byte_exact() {
        let o = LocalOpen {
            graceful_restart: Some(GracefulRestart {
                restarted: true,
                restart_time: 120,
                families: vec![(1, 1, true), (2, 1, true)],
            }),
            ..local()
        };
        let m = open(&o).unwrap();
        // The capability after the others, laid out as RFC 4724 section 3 says
        // (and as BIRD sends it, see `birds_open_with_graceful_restart_decodes`).
        let expect: Vec<u8> = [
            vec![0xff; 16],
            vec![0, 71, 1],
            vec![4, 0x5b, 0xa0, 0, 90, 10, 0, 0, 1],
            vec![42],
            vec![2, 6, 1, 4, 0, 1, 0, 1],
            vec![2, 6, 1, 4, 0, 2, 0, 1],
            vec![2, 2, 2, 0],
            vec![2, 6, 65, 4, 0xfa, 0x56, 0xea, 0x01],
            // GR: R set, 120 s; IPv4 and IPv6 unicast with F set.
            vec![2, 12, 64, 10, 0x80, 0x78, 0, 1, 1, 0x80, 0, 2, 1, 0x80],
        ]
        .concat();
        assert_eq!(m, expect);
        let Message::Open(back) = decode(&m).unwrap() else {
            panic!()
        };
        assert_eq!(back.graceful_restart, o.graceful_restart);
        assert_eq!(back.families, vec![(1, 1), (2, 1)]);
    }

    #[test]
    fn birds_open_with_graceful_restart_decodes() {
        // Captured from BIRD 2.0.12 (`graceful restart on;`, ipv4 and ipv6
        // channels, AS 64500, router id 10.77.0.100): every capability in one
        // optional parameter, GR among them with F clear (BIRD keeps no
        // forwarding state), then enhanced route refresh (70) and LLGR (71).
        let hex = concat!(
            "ffffffffffffffffffffffffffffffff00430104fbf400f00a4d0064",
            "2602240104000100010104000200010200400a0078000101000002010041040000fbf446004700"
        );
        let m: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(frame(&m), Ok(Some(67)));
        let Message::Open(o) = decode(&m).unwrap() else {
            panic!()
        };
        assert_eq!((o.asn, o.hold_time, o.route_refresh), (64500, 240, true));
        assert_eq!(o.router_id, Ipv4Addr::new(10, 77, 0, 100));
        assert_eq!(o.families, vec![(1, 1), (2, 1)]);
        assert_eq!(
            o.graceful_restart,
            Some(GracefulRestart {
                restarted: false,
                restart_time: 120,
                families: vec![(1, 1, false), (2, 1, false)],
            })
        );
    }

    #[test]
    fn a_graceful_restart_capability_of_odd_length_is_ignored_not_fatal() {
        let good = open(&local()).unwrap();
        let mut body = good[19..].to_vec();
        // Append a GR capability of 3 bytes (one flag byte too few for a family,
        // two too many for flags only) and one of 1 byte (no room for flags).
        for cap in [&[2u8, 5, 64, 3, 0x80, 0x78, 0][..], &[2, 3, 64, 1, 0x80]] {
            let mut b = body.clone();
            b.extend_from_slice(cap);
            b[9] += cap.len() as u8;
            let o = decode_open(&b).unwrap();
            assert_eq!(o.asn, 4_200_000_001, "the rest of the OPEN still reads");
            if cap[3] == 3 {
                assert_eq!(
                    o.graceful_restart
                        .map(|g| (g.restarted, g.restart_time, g.families)),
                    Some((true, 120, vec![]))
                );
            } else {
                assert_eq!(o.graceful_restart, None);
            }
        }
        // A GR capability whose length runs past its parameter is structural.
        body.extend_from_slice(&[2, 3, 64, 9, 0x80]);
        body[9] += 5;
        assert!(decode_open(&body).is_err());
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

    fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(withdrawn);
        b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        b.extend_from_slice(attrs);
        b.extend_from_slice(nlri);
        b
    }

    const ORIGIN: [u8; 4] = [0x40, 1, 1, 0];
    const AS_PATH: [u8; 9] = [0x40, 2, 6, 2, 1, 0, 0, 0xfc, 0];
    const NEXT_HOP: [u8; 7] = [0x40, 3, 4, 10, 0, 0, 1];
    const NLRI: [u8; 5] = [32, 198, 51, 100, 1];

    #[test]
    fn updates_that_cannot_be_read_end_the_session() {
        let attrs = [&ORIGIN[..], &AS_PATH, &NEXT_HOP].concat();
        assert_eq!(check_update(&update(&[], &attrs, &NLRI)), Ok(None));
        assert_eq!(check_update(&update(&NLRI, &[], &[])), Ok(None), "withdraw");
        assert_eq!(check_update(&[0, 0, 0, 0]), Ok(None), "End-of-RIB");
        let malformed = Notification::new(3, 1);
        // Withdrawn Routes Length past the end (RFC 4271 6.3, RFC 7606 section 4).
        assert_eq!(
            check_update(&[0, 9, 32, 1, 2, 3, 4, 0, 0]),
            Err(malformed.clone())
        );
        // Total Path Attribute Length past the end.
        let mut b = update(&[], &attrs, &NLRI);
        b[3] = 200;
        assert_eq!(check_update(&b), Err(malformed.clone()));
        // A prefix longer than 32 bits, or cut short (RFC 7606 section 5.3).
        assert_eq!(
            check_update(&update(&[], &attrs, &[33, 1, 2, 3, 4, 5])),
            Err(Notification::new(3, 10))
        );
        assert_eq!(
            check_update(&update(&[], &attrs, &[24, 1, 2])),
            Err(Notification::new(3, 10))
        );
        assert_eq!(
            check_update(&update(&[40], &[], &[])),
            Err(malformed.clone())
        );
        // MP_REACH_NLRI with a next-hop length past the attribute (RFC 4760 section 7).
        let mp = [0x80, 14, 5, 0, 2, 1, 16, 0];
        assert_eq!(
            check_update(&update(&[], &[&ORIGIN[..], &AS_PATH, &mp].concat(), &[])),
            Err(Notification::new(3, 9))
        );
        // Two MP_UNREACH_NLRI (RFC 7606 section 3 (g)).
        let unreach = [0x80, 15, 3, 0, 2, 1];
        assert_eq!(
            check_update(&update(&[], &[&unreach[..], &unreach].concat(), &[])),
            Err(malformed)
        );
    }

    #[test]
    fn attribute_errors_are_treat_as_withdraw() {
        let bad_origin = [0x40, 1, 1, 7];
        let b = update(&[], &[&bad_origin[..], &AS_PATH, &NEXT_HOP].concat(), &NLRI);
        assert_eq!(check_update(&b), Ok(Some("malformed ORIGIN")));
        let short_nh = [0x40, 3, 3, 10, 0, 0];
        let b = update(&[], &[&ORIGIN[..], &AS_PATH, &short_nh].concat(), &NLRI);
        assert!(check_update(&b).unwrap().is_some());
        let overrun = [0x40, 2, 60, 2, 1];
        let b = update(&[], &[&ORIGIN[..], &overrun].concat(), &NLRI);
        assert_eq!(
            check_update(&b),
            Ok(Some("attribute length overruns the attribute list"))
        );
        let b = update(&[], &[&ORIGIN[..], &NEXT_HOP].concat(), &NLRI);
        assert_eq!(
            check_update(&b),
            Ok(Some("well-known mandatory attribute missing"))
        );
        // A repeated ordinary attribute: later copies are discarded, no error.
        let b = update(
            &[],
            &[&ORIGIN[..], &ORIGIN, &AS_PATH, &NEXT_HOP].concat(),
            &NLRI,
        );
        assert_eq!(check_update(&b), Ok(None));
        // Through decode: the session stays up (an Update, not an error).
        let mut m = vec![0xff; 16];
        let body = update(&[], &[&bad_origin[..], &AS_PATH, &NEXT_HOP].concat(), &NLRI);
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(kind::UPDATE);
        m.extend_from_slice(&body);
        let Ok(Message::Update(u)) = decode(&m) else {
            panic!("{:?}", decode(&m))
        };
        assert_eq!(u.treat_as_withdraw, Some("malformed ORIGIN"));
    }

    proptest! {
        #[test]
        fn framing_and_decoding_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = frame(&bytes);
            let _ = decode(&bytes);
            let _ = decode_open(&bytes);
        }

        #[test]
        fn mangled_opens_with_graceful_restart_never_panic(i in 19usize..71, b in any::<u8>(), j in 57usize..71, c in any::<u8>()) {
            let mut m = open(&LocalOpen {
                graceful_restart: Some(GracefulRestart {
                    restarted: true,
                    restart_time: 120,
                    families: vec![(1, 1, true), (2, 1, true)],
                }),
                ..local()
            })
            .unwrap();
            m[i] = b;
            m[j] = c;
            if let Ok(Some(n)) = frame(&m) {
                let _ = decode(&m[..n]);
            }
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
