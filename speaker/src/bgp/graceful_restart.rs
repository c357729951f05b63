//! The Graceful Restart capability (RFC 4724 section 3), pure.
//!
//! We are the *restarting* speaker: when the speaker process dies, the node's
//! kube-proxy rules keep forwarding the Services' traffic, so a peer that
//! negotiated GR keeps our routes (marked stale) for the restart time instead of
//! dropping them, and replaces them with what we send after we reconnect, up to
//! our End-of-RIB. Routes the peer sends us are never used, so the receiving
//! side of the procedure (keeping the peer's routes) has nothing to do here.
//!
//! ```text
//! code 64, length 2 + 4n
//! +--------+------------------------+
//! | R N 0 0|  Restart Time (12 bits) |   R: restarted, N: RFC 8538 (not sent)
//! +--------+------------------------+
//! | AFI (2) | SAFI (1) | F 0000000 |   x n; F: forwarding state preserved
//! +---------------------------------+
//! ```

use std::time::Duration;

/// Capability code (RFC 4724 section 3).
pub const CAPABILITY: u8 = 64;
/// Restart State bit in the restart flags (RFC 4724 section 3).
pub const RESTART_STATE: u16 = 0x8000;
/// Forwarding State bit in the per-family flags (RFC 4724 section 3).
pub const FORWARDING_STATE: u8 = 0x80;
/// The restart time field is 12 bits.
pub const MAX_RESTART_TIME: u16 = 0x0fff;
/// Our restart time: FRR's and GoBGP's default (120 s). It covers a speaker pod
/// restarted by the kubelet (the first crash-loop back-offs are 10-40 s) without
/// keeping routes to a node that is really gone for longer than a couple of minutes.
pub const DEFAULT_RESTART_TIME: Duration = Duration::from_secs(120);

/// Our restart time for a session with `hold` as proposed hold time: 120 s, but
/// not more than the hold time (RFC 4724 section 3: "SHOULD NOT be greater than
/// the HOLDTIME carried in the OPEN"), so a dead node attracts traffic for at most
/// twice the hold time (hold timer, then restart time). A zero hold time (no
/// keepalives) gets the default.
pub fn restart_time_for(hold: Duration) -> u16 {
    let t = if hold.is_zero() {
        DEFAULT_RESTART_TIME
    } else {
        DEFAULT_RESTART_TIME.min(hold)
    };
    u16::try_from(t.as_secs())
        .unwrap_or(MAX_RESTART_TIME)
        .min(MAX_RESTART_TIME)
}

/// The capability as we send it or as the peer sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// Restart State (R): this speaker has just restarted; the peer must not wait
    /// for our End-of-RIB before sending its own routes.
    pub restarted: bool,
    /// Restart Time in seconds (12 bits).
    pub restart_time: u16,
    /// (AFI, SAFI, forwarding state preserved) per family.
    pub families: Vec<(u16, u8, bool)>,
}

impl GracefulRestart {
    /// The capability value (without code and length).
    pub fn encode_value(&self) -> Vec<u8> {
        let mut head = self.restart_time.min(MAX_RESTART_TIME);
        if self.restarted {
            head |= RESTART_STATE;
        }
        let mut v = head.to_be_bytes().to_vec();
        for (afi, safi, fwd) in &self.families {
            v.extend_from_slice(&afi.to_be_bytes());
            v.push(*safi);
            v.push(if *fwd { FORWARDING_STATE } else { 0 });
        }
        v
    }

    /// Parses the capability value. Lenient, as RFC 5492 asks of capabilities
    /// (a speaker that cannot use one ignores it): a value shorter than the two
    /// flag bytes is `None` (the peer is treated as not GR-capable); trailing bytes
    /// that do not make a whole 4-byte family entry are ignored. The reserved flag
    /// bits are ignored.
    pub fn parse_value(v: &[u8]) -> Option<GracefulRestart> {
        let head = u16::from_be_bytes([*v.first()?, *v.get(1)?]);
        let families = v[2..]
            .chunks_exact(4)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    c[2],
                    c[3] & FORWARDING_STATE != 0,
                )
            })
            .collect();
        Some(GracefulRestart {
            restarted: head & RESTART_STATE != 0,
            restart_time: head & MAX_RESTART_TIME,
            families,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_capability_value_is_byte_exact() {
        // Layout from RFC 4724 section 3; the same bytes GoBGP and FRR send for
        // "restart time 120, R set, IPv4 and IPv6 unicast with F set".
        let gr = GracefulRestart {
            restarted: true,
            restart_time: 120,
            families: vec![(1, 1, true), (2, 1, true)],
        };
        assert_eq!(
            gr.encode_value(),
            [0x80, 0x78, 0, 1, 1, 0x80, 0, 2, 1, 0x80]
        );
        assert_eq!(GracefulRestart::parse_value(&gr.encode_value()), Some(gr));
        let quiet = GracefulRestart {
            restarted: false,
            restart_time: 90,
            families: vec![(1, 1, false)],
        };
        assert_eq!(quiet.encode_value(), [0x00, 0x5a, 0, 1, 1, 0]);
    }

    #[test]
    fn odd_values_from_peers_do_not_fail() {
        assert_eq!(GracefulRestart::parse_value(&[]), None);
        assert_eq!(GracefulRestart::parse_value(&[0x80]), None);
        // Flags only (a "helper" that preserves nothing), with the N bit and a
        // reserved bit set: R and the time still read right.
        assert_eq!(
            GracefulRestart::parse_value(&[0xd0, 0x78]),
            Some(GracefulRestart {
                restarted: true,
                restart_time: 120,
                families: vec![]
            })
        );
        // Three stray bytes after one whole family entry are ignored.
        assert_eq!(
            GracefulRestart::parse_value(&[0x00, 0x3c, 0, 2, 1, 0xff, 9, 9, 9]).map(|g| g.families),
            Some(vec![(2, 1, true)])
        );
    }

    #[test]
    fn restart_time_follows_the_hold_time() {
        assert_eq!(restart_time_for(Duration::from_secs(90)), 90);
        assert_eq!(restart_time_for(Duration::from_secs(180)), 120);
        assert_eq!(restart_time_for(Duration::ZERO), 120);
        assert_eq!(restart_time_for(Duration::from_secs(9)), 9);
    }
}
