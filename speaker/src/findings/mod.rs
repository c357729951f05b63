//! Node-level findings of a speaker: why an address this node should announce
//! cannot be reached. Each is a condition on the speaker's status while it holds,
//! a `ferrolb_speaker_finding{finding}` gauge, a warning in the log and (for
//! node findings) a Warning Event on the Node when it appears.
//!
//! `strict_arp` and `kube_proxy` are pure; `probe` reads sysctls and the
//! kube-proxy ConfigMap.

pub mod kube_proxy;
pub mod probe;
pub mod strict_arp;

use std::collections::{BTreeMap, BTreeSet};

use ferrolb_crds::source::status::{EventRecord, ObjectRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::metrics::L2Metrics;

pub use crate::conflict::ADDRESS_CONFLICT;
pub use strict_arp::{KUBE_PROXY_CONFIG_UNREADABLE, STRICT_ARP_DISABLED};

/// Condition type: an L2Advertisement names interfaces none of which is usable.
pub const INTERFACE_UNAVAILABLE: &str = "InterfaceUnavailable";

/// Every finding type: the gauge's label values (bounded).
pub const ALL: [&str; 4] = [
    INTERFACE_UNAVAILABLE,
    ADDRESS_CONFLICT,
    STRICT_ARP_DISABLED,
    KUBE_PROXY_CONFIG_UNREADABLE,
];

/// One finding as it holds now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Condition type, one of [`ALL`].
    pub type_: &'static str,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What is wrong and the fix, for a person.
    pub message: String,
    /// Whether its appearance is a Warning Event on the Node (and a warning in
    /// the log); findings with Events of their own elsewhere say no.
    pub event: bool,
    /// More objects concerned (the Services of the addresses), each with its
    /// own words: a Warning Event on each when it joins the finding.
    pub also_on: Vec<(ObjectRef, String)>,
}

/// The findings the plan itself shows: named interfaces unusable here (each
/// with its Service and sentence, from `announce::unusable_named_interfaces`)
/// and the current address conflicts (`ConflictLog::condition_message`, whose
/// Events go to the Service per conflict, elsewhere).
pub fn of_plan(
    unusable: Vec<((String, String), String)>,
    conflict: Option<String>,
) -> Vec<Finding> {
    let mut found = Vec::new();
    if !unusable.is_empty() {
        let sentences: Vec<&str> = unusable.iter().map(|(_, m)| m.as_str()).collect();
        found.push(Finding {
            type_: INTERFACE_UNAVAILABLE,
            reason: "NamedInterfaceMissingOrDown",
            message: sentences.join("; "),
            event: true,
            also_on: unusable
                .iter()
                .map(|((ns, name), m)| (service_ref(ns, name), m.clone()))
                .collect(),
        });
    }
    if let Some(message) = conflict {
        found.push(Finding {
            type_: ADDRESS_CONFLICT,
            reason: "AnotherHostAnswers",
            message,
            event: false,
            also_on: Vec::new(),
        });
    }
    found
}

/// A reference to a Service, for [`Finding::also_on`].
pub fn service_ref(namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        kind: "Service".into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn warning(reason: &str, message: &str, on: ObjectRef, now: Timestamp) -> EventRecord {
    EventRecord {
        type_: "Warning".into(),
        reason: reason.into(),
        message: message.into(),
        involved_object: on,
        reporting_component: "ferrolb-speaker".into(),
        event_time: now.to_string(),
    }
}

/// What to publish for the findings of one plan.
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    /// Conditions for the speaker's status, in the order of the findings.
    pub conditions: Vec<Condition>,
    /// Warning Events on the Node for findings that appeared.
    pub events: Vec<EventRecord>,
    /// Types that held before and do not any more.
    pub cleared: Vec<&'static str>,
}

/// Since when each finding holds: a condition keeps its transition time while it
/// holds, and a finding makes an Event once when it appears, not on every plan.
#[derive(Debug, Default)]
pub struct FindingLog {
    since: BTreeMap<&'static str, Timestamp>,
    /// (type, kind, namespace, name) of the objects of `also_on` evented.
    evented: BTreeSet<(&'static str, String, String, String)>,
}

impl FindingLog {
    /// The conditions and the Events due for the findings holding `now` (pure).
    pub fn update(&mut self, node: &str, current: &[Finding], now: Timestamp) -> Report {
        let mut r = Report::default();
        for f in current {
            let new = !self.since.contains_key(f.type_);
            let since = *self.since.entry(f.type_).or_insert(now);
            if new && f.event {
                let on = ObjectRef {
                    kind: "Node".into(),
                    namespace: String::new(),
                    name: node.into(),
                };
                r.events.push(warning(f.type_, &f.message, on, now));
            }
            for (on, message) in f.also_on.iter().filter(|_| f.event) {
                let key = (
                    f.type_,
                    on.kind.clone(),
                    on.namespace.clone(),
                    on.name.clone(),
                );
                if self.evented.insert(key) {
                    r.events.push(warning(f.type_, message, on.clone(), now));
                }
            }
            r.conditions.push(Condition {
                type_: f.type_.into(),
                status: "True".into(),
                reason: f.reason.into(),
                message: f.message.clone(),
                last_transition_time: Time(since),
                observed_generation: None,
            });
        }
        self.since.retain(|t, _| {
            let holds = current.iter().any(|f| f.type_ == *t);
            if !holds {
                r.cleared.push(*t);
            }
            holds
        });
        self.evented.retain(|(t, kind, ns, name)| {
            current.iter().any(|f| {
                f.type_ == *t
                    && f.also_on
                        .iter()
                        .any(|(o, _)| o.kind == *kind && o.namespace == *ns && o.name == *name)
            })
        });
        r
    }

    /// [`FindingLog::update`], plus the log lines and the gauges.
    pub fn report(&mut self, node: &str, current: &[Finding], metrics: &L2Metrics) -> Report {
        let r = self.update(node, current, Timestamp::now());
        for e in r.events.iter().filter(|e| e.involved_object.kind == "Node") {
            tracing::warn!(finding = %e.reason, "{}", e.message);
        }
        for t in &r.cleared {
            tracing::info!(finding = %t, "finding cleared");
        }
        for t in ALL {
            let on = current.iter().any(|f| f.type_ == t);
            metrics.finding(t).set(i64::from(on));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn f(type_: &'static str, event: bool, message: &str) -> Finding {
        Finding {
            type_,
            reason: "Because",
            message: message.into(),
            event,
            also_on: Vec::new(),
        }
    }

    #[test]
    fn a_finding_makes_one_event_when_it_appears_and_keeps_its_transition_time() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
        let mut log = FindingLog::default();
        let r = log.update("n1", &[f(STRICT_ARP_DISABLED, true, "eth0 answers")], t0);
        assert_eq!(r.events.len(), 1);
        let e = &r.events[0];
        assert_eq!(
            (e.type_.as_str(), e.reason.as_str(), e.message.as_str()),
            ("Warning", "StrictARPDisabled", "eth0 answers")
        );
        assert_eq!(
            e.involved_object,
            ObjectRef {
                kind: "Node".into(),
                namespace: String::new(),
                name: "n1".into()
            }
        );
        assert_eq!(r.conditions[0].type_, "StrictARPDisabled");
        assert_eq!(r.conditions[0].status, "True");
        // Still there, even with another message: no new Event, same time.
        let r = log.update("n1", &[f(STRICT_ARP_DISABLED, true, "eth1 answers")], t1);
        assert!(r.events.is_empty());
        assert_eq!(r.conditions[0].last_transition_time, Time(t0));
        assert_eq!(r.conditions[0].message, "eth1 answers");
        // Gone, then back: a new Event and a new time.
        let r = log.update("n1", &[], t1);
        assert_eq!(r.cleared, [STRICT_ARP_DISABLED]);
        assert!(r.conditions.is_empty());
        let r = log.update("n1", &[f(STRICT_ARP_DISABLED, true, "eth0 answers")], t1);
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.conditions[0].last_transition_time, Time(t1));
    }

    #[test]
    fn findings_without_node_events_are_conditions_only() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut log = FindingLog::default();
        let r = log.update(
            "n1",
            &[
                f(INTERFACE_UNAVAILABLE, true, "bond9: not found"),
                f(ADDRESS_CONFLICT, false, "another host"),
            ],
            t0,
        );
        let types: Vec<&str> = r.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["InterfaceUnavailable", "AddressConflict"]);
        let reasons: Vec<&str> = r.events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["InterfaceUnavailable"]);
    }

    #[test]
    fn the_plan_findings_join_the_sentences_and_name_the_services() {
        assert!(of_plan(Vec::new(), None).is_empty());
        let svc = |n: &str| ("default".to_string(), n.to_string());
        let f = of_plan(
            vec![
                (svc("web"), "10.0.0.5 is not announced".into()),
                (svc("db"), "10.0.0.6 is not announced".into()),
            ],
            Some("another host".into()),
        );
        assert_eq!(f[0].type_, INTERFACE_UNAVAILABLE);
        assert_eq!(
            f[0].message,
            "10.0.0.5 is not announced; 10.0.0.6 is not announced"
        );
        assert!(f[0].event);
        assert_eq!(
            f[0].also_on[1],
            (
                service_ref("default", "db"),
                "10.0.0.6 is not announced".to_string()
            )
        );
        assert_eq!((f[1].type_, f[1].event), (ADDRESS_CONFLICT, false));
    }

    #[test]
    fn each_service_joining_a_finding_gets_one_event_of_its_own() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let mut log = FindingLog::default();
        let mut iface = f(INTERFACE_UNAVAILABLE, true, "10.0.0.5 ...; 10.0.0.6 ...");
        iface.also_on = vec![(service_ref("default", "web"), "10.0.0.5 ...".into())];
        let on = |r: &Report| -> Vec<(String, String, String)> {
            r.events
                .iter()
                .map(|e| {
                    (
                        e.involved_object.kind.clone(),
                        e.involved_object.name.clone(),
                        e.message.clone(),
                    )
                })
                .collect()
        };
        let r = log.update("n1", std::slice::from_ref(&iface), t0);
        assert_eq!(
            on(&r),
            [
                (
                    "Node".into(),
                    "n1".into(),
                    "10.0.0.5 ...; 10.0.0.6 ...".into()
                ),
                ("Service".into(), "web".into(), "10.0.0.5 ...".into())
            ]
        );
        // A second Service joins while the finding holds: only its Event.
        iface
            .also_on
            .push((service_ref("default", "db"), "10.0.0.6 ...".into()));
        let r = log.update("n1", std::slice::from_ref(&iface), t0);
        assert_eq!(
            on(&r),
            [("Service".into(), "db".into(), "10.0.0.6 ...".into())]
        );
        // web leaves and comes back: a new Event for web.
        iface.also_on.remove(0);
        assert!(
            log.update("n1", std::slice::from_ref(&iface), t0)
                .events
                .is_empty()
        );
        iface
            .also_on
            .push((service_ref("default", "web"), "10.0.0.5 ...".into()));
        let r = log.update("n1", std::slice::from_ref(&iface), t0);
        assert_eq!(
            on(&r),
            [("Service".into(), "web".into(), "10.0.0.5 ...".into())]
        );
    }
}
