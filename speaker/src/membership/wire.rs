//! The membership protocol on the wire: one UDP datagram per message.
//!
//! ```text
//! "FLBM" | version 1 | kind u8 | seq u32 | incarnation u64 | from: len u8, bytes
//!        | about: len u8, bytes | updates: count u8, (state u8, incarnation u64, len u8, name)*
//!        | HMAC-SHA256(key, everything before), first 16 bytes   (only with a key)
//! ```
//!
//! Names are Node names (at most 253 bytes by Kubernetes' rules, so a u8 length
//! is enough only up to 255: longer names are refused when encoding).

use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAGIC: &[u8; 4] = b"FLBM";
const VERSION: u8 = 1;
/// Bytes of the truncated HMAC.
pub const MAC_LEN: usize = 16;
/// Most gossip updates carried by one message (keeps datagrams well under 1500 bytes
/// for normal node names).
pub const MAX_UPDATES: usize = 4;

/// What a message asks or tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// "I am alive" (to subscribers, fast; to everyone, slow).
    Heartbeat,
    /// "Send me your fast heartbeats for a while": I take over from you.
    Watch,
    /// Direct probe; answered with `Ack` of the same seq.
    Ping,
    /// Answer to `Ping`, or relayed: `about` is the member that answered.
    Ack,
    /// "Ping `about` for me": SWIM's indirect probe.
    PingReq,
    /// A relay could not reach `about` in time.
    Nack,
    /// "I am leaving": planned handover.
    Leave,
    /// "I have applied your leave" (sent by every member to the leaver).
    LeaveAck,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Heartbeat => 1,
            Kind::Watch => 2,
            Kind::Ping => 3,
            Kind::Ack => 4,
            Kind::PingReq => 5,
            Kind::Nack => 6,
            Kind::Leave => 7,
            Kind::LeaveAck => 8,
        }
    }

    fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            1 => Kind::Heartbeat,
            2 => Kind::Watch,
            3 => Kind::Ping,
            4 => Kind::Ack,
            5 => Kind::PingReq,
            6 => Kind::Nack,
            7 => Kind::Leave,
            8 => Kind::LeaveAck,
            _ => return None,
        })
    }
}

/// A member's state as gossiped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Answering.
    Alive,
    /// Declared dead after failed direct and indirect probes.
    Dead,
    /// Left on purpose.
    Left,
}

/// One gossiped fact: `name` is in `state` at `incarnation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The member.
    pub name: String,
    /// Its incarnation the fact is about.
    pub incarnation: u64,
    /// Its state.
    pub state: State,
}

/// A message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// What it is.
    pub kind: Kind,
    /// Matches answers to probes.
    pub seq: u32,
    /// The sender's incarnation.
    pub incarnation: u64,
    /// The sender's Node name.
    pub from: String,
    /// The member a `PingReq`/`Ack`/`Nack` is about (empty otherwise).
    pub about: String,
    /// Piggybacked gossip.
    pub updates: Vec<Update>,
}

/// Why a datagram was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// Not ours, or another version.
    #[error("not a FerroLB membership message (magic or version)")]
    Foreign,
    /// Cut short or with trailing bytes.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// The HMAC did not match: wrong key, or forged.
    #[error("authentication failed (check that every speaker has the same memberlist key)")]
    BadMac,
    /// Too long a name to encode.
    #[error("node name longer than 255 bytes")]
    NameTooLong,
}

fn put_name(out: &mut Vec<u8>, name: &str) -> Result<(), WireError> {
    let len = u8::try_from(name.len()).map_err(|_| WireError::NameTooLong)?;
    out.push(len);
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

fn mac(key: &[u8], data: &[u8]) -> [u8; MAC_LEN] {
    // Any key length is valid for HMAC, so this never fails; fall back to an
    // all-zero tag only to avoid a panic path.
    let mut out = [0u8; MAC_LEN];
    if let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) {
        m.update(data);
        let tag = m.finalize().into_bytes();
        out.copy_from_slice(&tag[..MAC_LEN]);
    }
    out
}

/// Encodes `m`, authenticated with `key` when there is one.
pub fn encode(m: &Message, key: Option<&[u8]>) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(m.kind.code());
    out.extend_from_slice(&m.seq.to_be_bytes());
    out.extend_from_slice(&m.incarnation.to_be_bytes());
    put_name(&mut out, &m.from)?;
    put_name(&mut out, &m.about)?;
    let updates = &m.updates[..m.updates.len().min(MAX_UPDATES)];
    out.push(updates.len() as u8);
    for u in updates {
        out.push(match u.state {
            State::Alive => 0,
            State::Dead => 1,
            State::Left => 2,
        });
        out.extend_from_slice(&u.incarnation.to_be_bytes());
        put_name(&mut out, &u.name)?;
    }
    if let Some(key) = key {
        let tag = mac(key, &out);
        out.extend_from_slice(&tag);
    }
    Ok(out)
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Malformed(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_be_bytes(a))
    }

    fn name(&mut self, what: &'static str) -> Result<String, WireError> {
        let len = usize::from(self.u8(what)?);
        let b = self.take(len, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| WireError::Malformed("name is not UTF-8"))
    }
}

/// Decodes a datagram; with a key, refuses it unless the HMAC matches.
pub fn decode(buf: &[u8], key: Option<&[u8]>) -> Result<Message, WireError> {
    if buf.len() < 6 || &buf[..4] != MAGIC || buf[4] != VERSION {
        return Err(WireError::Foreign);
    }
    let body = match key {
        Some(key) => {
            let split = buf
                .len()
                .checked_sub(MAC_LEN)
                .ok_or(WireError::Malformed("no HMAC"))?;
            let (body, tag) = buf.split_at(split);
            // Constant-time comparison through the hmac crate.
            let mut m = Hmac::<Sha256>::new_from_slice(key).map_err(|_| WireError::BadMac)?;
            m.update(body);
            m.verify_truncated_left(tag)
                .map_err(|_| WireError::BadMac)?;
            body
        }
        None => buf,
    };
    let mut r = Reader { buf: &body[5..] };
    let kind = Kind::from_code(r.u8("kind")?).ok_or(WireError::Malformed("unknown kind"))?;
    let seq = r.u32("seq")?;
    let incarnation = r.u64("incarnation")?;
    let from = r.name("from")?;
    let about = r.name("about")?;
    let count = usize::from(r.u8("update count")?);
    if count > MAX_UPDATES {
        return Err(WireError::Malformed("too many updates"));
    }
    let mut updates = Vec::with_capacity(count);
    for _ in 0..count {
        let state = match r.u8("update state")? {
            0 => State::Alive,
            1 => State::Dead,
            2 => State::Left,
            _ => return Err(WireError::Malformed("unknown state")),
        };
        let incarnation = r.u64("update incarnation")?;
        let name = r.name("update name")?;
        updates.push(Update {
            name,
            incarnation,
            state,
        });
    }
    if !r.buf.is_empty() {
        return Err(WireError::Malformed("trailing bytes"));
    }
    Ok(Message {
        kind,
        seq,
        incarnation,
        from,
        about,
        updates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Message {
        Message {
            kind: Kind::PingReq,
            seq: 7,
            incarnation: 1_700_000_000_123,
            from: "n1".into(),
            about: "n2".into(),
            updates: vec![Update {
                name: "n3".into(),
                incarnation: 5,
                state: State::Dead,
            }],
        }
    }

    #[test]
    fn golden_bytes() {
        let b = encode(&sample(), None).unwrap();
        let want: Vec<u8> = [
            &b"FLBM"[..],
            &[1, 5],
            &7u32.to_be_bytes(),
            &1_700_000_000_123u64.to_be_bytes(),
            &[2, b'n', b'1', 2, b'n', b'2', 1, 1],
            &5u64.to_be_bytes(),
            &[2, b'n', b'3'],
        ]
        .concat();
        assert_eq!(b, want);
        assert_eq!(decode(&b, None).unwrap(), sample());
    }

    #[test]
    fn a_key_authenticates_and_a_wrong_key_or_a_flipped_bit_is_refused() {
        let b = encode(&sample(), Some(b"secret")).unwrap();
        assert_eq!(b.len(), encode(&sample(), None).unwrap().len() + MAC_LEN);
        assert_eq!(decode(&b, Some(b"secret")).unwrap(), sample());
        assert_eq!(decode(&b, Some(b"other")), Err(WireError::BadMac));
        let mut flipped = b.clone();
        flipped[10] ^= 1;
        assert_eq!(decode(&flipped, Some(b"secret")), Err(WireError::BadMac));
        // Unauthenticated messages are refused when a key is set.
        let plain = encode(&sample(), None).unwrap();
        assert_eq!(decode(&plain, Some(b"secret")), Err(WireError::BadMac));
    }

    #[test]
    fn foreign_and_truncated_datagrams_are_refused() {
        assert_eq!(decode(b"GET / HTTP/1.1", None), Err(WireError::Foreign));
        let b = encode(&sample(), None).unwrap();
        for n in 6..b.len() {
            assert!(
                matches!(decode(&b[..n], None), Err(WireError::Malformed(_))),
                "{n}"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(
            decode(&long, None),
            Err(WireError::Malformed("trailing bytes"))
        );
    }

    #[test]
    fn names_over_255_bytes_are_refused() {
        let m = Message {
            from: "x".repeat(256),
            ..sample()
        };
        assert_eq!(encode(&m, None), Err(WireError::NameTooLong));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), keyed in any::<bool>()) {
            let mut b = b"FLBM\x01".to_vec();
            b.extend(bytes);
            let _ = decode(&b, keyed.then_some(&b"k"[..]));
        }

        #[test]
        fn round_trip(seq in any::<u32>(), inc in any::<u64>(), from in "[a-z0-9.-]{1,40}", n in 0usize..4) {
            let m = Message {
                kind: Kind::Heartbeat, seq, incarnation: inc, from: from.clone(), about: String::new(),
                updates: (0..n).map(|i| Update { name: format!("{from}{i}"), incarnation: inc ^ i as u64, state: State::Left }).collect(),
            };
            prop_assert_eq!(decode(&encode(&m, Some(b"k")).unwrap(), Some(b"k")).unwrap(), m);
        }
    }
}
