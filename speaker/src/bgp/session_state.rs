//! What the node's sessions look like from outside (pure): one `BGPSessionState`
//! status per peer, and an Event when a session comes up or goes down.
//!
//! Only Established <-> not Established makes an Event: a session that cannot
//! connect cycles Connect/Active every retry, and an Event per retry would bury the
//! one that matters (the status object shows the current state and last error).

use std::collections::BTreeMap;

use ferrolb_crds::config::Peer;
use ferrolb_crds::source::status::{EventRecord, ObjectRef};
use ferrolb_crds::v1beta1::{BGPSessionStateStatus, WithheldPrefixes};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::fsm::State;
use super::session::SessionStatus;

/// Condition type on a `BGPSessionState`.
pub const ESTABLISHED: &str = "Established";

/// Remembers, per peer, whether the session was up and since when.
#[derive(Debug, Default)]
pub struct SessionStates {
    since: BTreeMap<String, (bool, Timestamp)>,
}

impl SessionStates {
    /// The status of every session of `node` (sorted by peer) and the Events for
    /// sessions that came up or went down since the last call.
    pub fn update(
        &mut self,
        node: &str,
        statuses: &BTreeMap<String, SessionStatus>,
        peers: &BTreeMap<String, Peer>,
        now: Timestamp,
    ) -> (Vec<BGPSessionStateStatus>, Vec<EventRecord>) {
        self.since.retain(|p, _| statuses.contains_key(p));
        let mut out = Vec::new();
        let mut events = Vec::new();
        for (name, st) in statuses {
            let up = st.state == State::Established;
            let peer = peers.get(name);
            let address = peer.map(|p| p.address.to_string());
            let since = match self.since.get(name) {
                Some((was_up, t)) if *was_up == up => *t,
                previous => {
                    // A new session that is not up yet is no news; one that was up
                    // and is not, or comes up, is.
                    if previous.is_some() || up {
                        events.push(transition_event(node, name, address.as_deref(), st));
                    }
                    self.since.insert(name.clone(), (up, now));
                    now
                }
            };
            let state = format!("{:?}", st.state);
            out.push(BGPSessionStateStatus {
                node: Some(node.to_string()),
                peer: Some(name.clone()),
                peer_address: address,
                vrf: peer.and_then(|p| p.vrf.clone()),
                bgp_status: Some(state.clone()),
                bfd_status: Some(
                    if peer.is_some_and(|p| p.bfd_profile.is_some()) {
                        "Unsupported"
                    } else {
                        "N/A"
                    }
                    .into(),
                ),
                advertised_prefixes: u32::try_from(st.advertised).unwrap_or(u32::MAX),
                withheld: st
                    .withheld
                    .iter()
                    .map(|w| WithheldPrefixes {
                        family: w.family.to_string(),
                        prefixes: u32::try_from(w.prefixes).unwrap_or(u32::MAX),
                        reason: w.reason.clone(),
                    })
                    .collect(),
                graceful_restart: st.graceful_restart,
                last_error: st.last_error.clone(),
                conditions: vec![Condition {
                    type_: ESTABLISHED.into(),
                    status: if up { "True" } else { "False" }.into(),
                    reason: state,
                    message: if up {
                        format!("{} prefixes advertised", st.advertised)
                    } else {
                        st.last_error
                            .clone()
                            .unwrap_or_else(|| "not established yet".into())
                    },
                    last_transition_time: Time(since),
                    observed_generation: None,
                }],
            });
        }
        (out, events)
    }
}

fn transition_event(
    node: &str,
    peer: &str,
    address: Option<&str>,
    st: &SessionStatus,
) -> EventRecord {
    let with = address.map_or_else(|| peer.to_string(), |a| format!("{peer} ({a})"));
    let (type_, reason, message) = if st.state == State::Established {
        (
            "Normal",
            "SessionEstablished",
            format!("node {node:?}: BGP session with {with} established"),
        )
    } else {
        (
            "Warning",
            "SessionDown",
            format!(
                "node {node:?}: BGP session with {with} is down ({:?}): {}",
                st.state,
                st.last_error.as_deref().unwrap_or("no reason recorded")
            ),
        )
    };
    EventRecord {
        type_: type_.into(),
        reason: reason.into(),
        message,
        // The sink puts FerroLB's namespace on its own kinds.
        involved_object: ObjectRef {
            kind: "BGPPeer".into(),
            namespace: String::new(),
            name: peer.to_string(),
        },
        reporting_component: "ferrolb-speaker".into(),
        event_time: Timestamp::now().to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn status(state: State, advertised: usize, err: Option<&str>) -> SessionStatus {
        SessionStatus {
            state,
            advertised,
            last_error: err.map(Into::into),
            withheld: vec![],
            graceful_restart: false,
        }
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn one(st: SessionStatus) -> BTreeMap<String, SessionStatus> {
        BTreeMap::from([("tor".to_string(), st)])
    }

    #[test]
    fn a_session_coming_up_and_going_down_gives_one_event_each_and_keeps_its_since() {
        let mut s = SessionStates::default();
        let peers = BTreeMap::new();
        let (st, ev) = s.update("n1", &one(status(State::Connect, 0, None)), &peers, t(10));
        assert!(ev.is_empty(), "a session still connecting is no news");
        assert_eq!(st[0].bgp_status.as_deref(), Some("Connect"));
        assert_eq!(st[0].conditions[0].status, "False");
        assert_eq!(st[0].conditions[0].message, "not established yet");
        assert_eq!(st[0].bfd_status.as_deref(), Some("N/A"));

        let (_, ev) = s.update("n1", &one(status(State::Active, 0, None)), &peers, t(11));
        assert!(
            ev.is_empty(),
            "Connect -> Active is not a transition worth an Event"
        );

        let (st, ev) = s.update(
            "n1",
            &one(status(State::Established, 4, None)),
            &peers,
            t(12),
        );
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].reason, "SessionEstablished");
        assert_eq!(ev[0].type_, "Normal");
        assert_eq!(ev[0].involved_object.kind, "BGPPeer");
        assert_eq!(ev[0].involved_object.name, "tor");
        assert_eq!(st[0].advertised_prefixes, 4);
        assert_eq!(st[0].conditions[0].status, "True");
        assert_eq!(st[0].conditions[0].last_transition_time, Time(t(12)));

        let (st, ev) = s.update(
            "n1",
            &one(status(State::Established, 5, None)),
            &peers,
            t(13),
        );
        assert!(ev.is_empty());
        assert_eq!(
            st[0].conditions[0].last_transition_time,
            Time(t(12)),
            "more prefixes is not a transition"
        );

        let down = status(State::Idle, 0, Some("hold timer expired"));
        let (st, ev) = s.update("n1", &one(down), &peers, t(20));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].reason, "SessionDown");
        assert_eq!(ev[0].type_, "Warning");
        assert!(
            ev[0].message.contains("hold timer expired") && ev[0].message.contains("\"n1\""),
            "{}",
            ev[0].message
        );
        assert_eq!(st[0].conditions[0].reason, "Idle");
        assert_eq!(st[0].conditions[0].message, "hold timer expired");
        assert_eq!(st[0].last_error.as_deref(), Some("hold timer expired"));
        assert_eq!(st[0].conditions[0].last_transition_time, Time(t(20)));
    }

    #[test]
    fn a_removed_peer_is_forgotten() {
        let mut s = SessionStates::default();
        let peers = BTreeMap::new();
        s.update(
            "n1",
            &one(status(State::Established, 1, None)),
            &peers,
            t(1),
        );
        let (st, ev) = s.update("n1", &BTreeMap::new(), &peers, t(2));
        assert!(st.is_empty() && ev.is_empty());
        let (_, ev) = s.update(
            "n1",
            &one(status(State::Established, 1, None)),
            &peers,
            t(3),
        );
        assert_eq!(
            ev.len(),
            1,
            "the peer is new again: its session coming up is news"
        );
    }
}
