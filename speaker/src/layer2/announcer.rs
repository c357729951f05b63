//! When to (re)announce an address after taking it over: at once, then a few
//! more times so that a lost frame does not leave a stale neighbour entry. Pure.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// How takeovers are announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnouncePolicy {
    /// Announcements after the first.
    pub repeats: u32,
    /// Time between announcements.
    pub interval: Duration,
}

impl Default for AnnouncePolicy {
    fn default() -> Self {
        // MetalLB repeats every 1.1 s for 5 s; the first one goes out at once.
        AnnouncePolicy {
            repeats: 4,
            interval: Duration::from_millis(1100),
        }
    }
}

/// Pending announcements, by due time.
#[derive(Debug, Default)]
pub struct Schedule {
    due: BTreeMap<Instant, Vec<IpAddr>>,
}

impl Schedule {
    /// Plans the announcements of a newly owned address, the first at `now`.
    pub fn takeover(&mut self, ip: IpAddr, now: Instant, policy: &AnnouncePolicy) {
        for i in 0..=policy.repeats {
            self.due
                .entry(now + policy.interval * i)
                .or_default()
                .push(ip);
        }
    }

    /// Forgets an address that is no longer owned: nothing more goes out for it.
    pub fn cancel(&mut self, ip: &IpAddr) {
        self.due.retain(|_, ips| {
            ips.retain(|i| i != ip);
            !ips.is_empty()
        });
    }

    /// The next due time, if any.
    pub fn next(&self) -> Option<Instant> {
        self.due.keys().next().copied()
    }

    /// Removes and returns every address due at or before `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<IpAddr> {
        let later = self.due.split_off(&(now + Duration::from_nanos(1)));
        let due = std::mem::replace(&mut self.due, later);
        due.into_values().flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_at_once_then_repeats_and_cancel_stops_them() {
        let t0 = Instant::now();
        let p = AnnouncePolicy {
            repeats: 2,
            interval: Duration::from_secs(1),
        };
        let mut s = Schedule::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "fd00::1".parse().unwrap();
        s.takeover(a, t0, &p);
        s.takeover(b, t0, &p);
        assert_eq!(s.take_due(t0), vec![a, b]);
        assert_eq!(s.next(), Some(t0 + Duration::from_secs(1)));
        s.cancel(&b);
        assert_eq!(s.take_due(t0 + Duration::from_millis(1500)), vec![a]);
        assert_eq!(s.take_due(t0 + Duration::from_secs(5)), vec![a]);
        assert_eq!(s.next(), None);
    }
}
