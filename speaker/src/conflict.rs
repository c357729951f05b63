//! Address conflicts: another host answering ARP/NDP for an address this node
//! announces. How they are reported on the speaker's status.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Condition type on a speaker's status: another host claims an address this
/// node announces. Its message names the address between spaces and the other
/// host's MAC: `another host (MAC 02:00:00:00:00:09) answers ARP for 10.0.0.5 which node n1 announces`.
pub const ADDRESS_CONFLICT: &str = "AddressConflict";

/// The words of a conflict, shared by the Event, the condition and `diagnose`
/// (which finds the address between spaces).
pub fn message(ip: &IpAddr, mac: &str, node: &str) -> String {
    let proto = if ip.is_ipv4() { "ARP" } else { "NDP" };
    format!("another host (MAC {mac}) answers {proto} for {ip} which node {node} announces")
}

/// Conflicts seen on this node, rate-limited: a storm of foreign replies makes
/// one Event per (address, MAC) per `every`, and a conflict not seen for
/// `forget` leaves the condition.
#[derive(Debug, Default)]
pub struct ConflictLog {
    /// (address, other MAC) -> last seen, last Event.
    seen: BTreeMap<(IpAddr, String), (Instant, Instant)>,
}

impl ConflictLog {
    /// Records a foreign claim; returns whether an Event is due.
    pub fn record(&mut self, ip: IpAddr, mac: &str, now: Instant, every: Duration) -> bool {
        match self.seen.get_mut(&(ip, mac.to_string())) {
            Some((seen, evented)) => {
                *seen = now;
                if now.duration_since(*evented) >= every {
                    *evented = now;
                    return true;
                }
                false
            }
            None => {
                self.seen.insert((ip, mac.to_string()), (now, now));
                true
            }
        }
    }

    /// Forgets conflicts not seen for `forget`; returns whether any went.
    pub fn expire(&mut self, now: Instant, forget: Duration) -> bool {
        let before = self.seen.len();
        self.seen
            .retain(|_, (seen, _)| now.duration_since(*seen) < forget);
        self.seen.len() != before
    }

    /// The condition message for the speaker's status: every current conflict,
    /// or `None` when there is none.
    pub fn condition_message(&self, node: &str) -> Option<String> {
        let parts: Vec<String> = self
            .seen
            .keys()
            .map(|(ip, mac)| message(ip, mac, node))
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_address_and_mac_per_period_and_conflicts_expire() {
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let every = Duration::from_secs(300);
        let mut log = ConflictLog::default();
        assert!(log.record(ip, "02:00:00:00:00:09", t0, every));
        assert!(!log.record(ip, "02:00:00:00:00:09", t0 + Duration::from_secs(10), every));
        assert!(log.record(ip, "02:00:00:00:00:0a", t0 + Duration::from_secs(10), every));
        assert!(log.record(ip, "02:00:00:00:00:09", t0 + every, every));
        assert_eq!(
            log.condition_message("n1").unwrap(),
            "another host (MAC 02:00:00:00:00:09) answers ARP for 10.0.0.5 which node n1 announces; another host (MAC 02:00:00:00:00:0a) answers ARP for 10.0.0.5 which node n1 announces"
        );
        assert!(!log.expire(t0 + every, Duration::from_secs(600)));
        assert!(log.expire(t0 + Duration::from_secs(700), Duration::from_secs(600)));
        assert_eq!(
            log.condition_message("n1").unwrap(),
            "another host (MAC 02:00:00:00:00:09) answers ARP for 10.0.0.5 which node n1 announces"
        );
        assert!(log.expire(
            t0 + every + Duration::from_secs(600),
            Duration::from_secs(600)
        ));
        assert_eq!(log.condition_message("n1"), None);
    }
}
