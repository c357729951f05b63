//! One pass of the controller over a snapshot: validate the configuration, give
//! every Service of ours its addresses, and say what to write (Service status,
//! pool status, Events). No I/O: the runners for each source do the writing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::annotations::IP_ALLOCATED_FROM_POOL;
use ferrolb_crds::config::{Config, ConfigError, Pool};
use ferrolb_crds::source::status::{
    EventRecord, ObjectRef, PoolStatusRecord, ServiceStatusRecord, SpeakerStatusFile,
};
use ferrolb_crds::v1beta1::IPAddressPoolStatus;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::allocator::{Allocator, Assignment, ServiceKey};
use crate::conditions::condition;
use crate::service;
use crate::speakers::{SpeakerTracker, Verdicts};

/// Condition type on Services: whether FerroLB gave the Service its addresses.
pub const ADDRESS_ASSIGNED: &str = "ferrolb.io/AddressAssigned";
/// Condition type on Services: whether an L2Advertisement or BGPAdvertisement
/// selects the pool of the Service's address (without one the address is
/// assigned yet never announced).
pub const ANNOUNCED: &str = "ferrolb.io/Announced";
/// Component name in Events.
pub const COMPONENT: &str = "ferrolb-controller";

/// What one pass decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Status of every Service FerroLB serves, sorted by namespace and name.
    pub services: Vec<ServiceStatusRecord>,
    /// Services that held an address and are no longer ours (type or class changed):
    /// their load-balancer status must be cleared.
    pub released: Vec<ServiceKey>,
    /// Status of every pool object.
    pub pools: Vec<PoolStatusRecord>,
    /// Events to record.
    pub events: Vec<EventRecord>,
    /// Configuration problems (also in `events` the first time they are seen).
    pub config_errors: Vec<ConfigError>,
    /// Number of Services without an address because of an error.
    pub failures: usize,
    /// When to pass again though nothing changed: a speaker missing or a BGP
    /// session down is reported only once it has lasted the grace period.
    pub recheck_at: Option<Timestamp>,
}

/// Warning Events about one reason for not announcing, per pass: a router down
/// or a DaemonSet not scheduled concerns every Service at once, and thousands of
/// Events would bury the rest (the condition is on every Service regardless).
const ANNOUNCE_EVENTS_PER_REASON: usize = 20;

/// The controller's state between passes.
#[derive(Debug)]
pub struct Reconciler {
    allocator: Allocator,
    class: String,
    adopted: bool,
    pools: Option<BTreeMap<String, Pool>>,
    reported: BTreeSet<String>,
    pool_conditions: BTreeMap<String, Vec<Condition>>,
    speakers: SpeakerTracker,
}

fn event(
    type_: &str,
    reason: &str,
    message: String,
    kind: &str,
    namespace: &str,
    name: &str,
    now: Timestamp,
) -> EventRecord {
    EventRecord {
        type_: type_.into(),
        reason: reason.into(),
        message,
        involved_object: ObjectRef {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        },
        reporting_component: COMPONENT.into(),
        event_time: now.to_string(),
    }
}

fn ingress(ips: &[IpAddr]) -> LoadBalancerStatus {
    LoadBalancerStatus {
        ingress: (!ips.is_empty()).then(|| {
            ips.iter()
                .map(|ip| LoadBalancerIngress {
                    ip: Some(ip.to_string()),
                    ip_mode: Some("VIP".into()),
                    ..Default::default()
                })
                .collect()
        }),
    }
}

fn service_conditions(svc: &Service) -> Vec<Condition> {
    svc.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
}

impl Reconciler {
    /// A controller serving `class` (Services with no class are served too).
    pub fn new(class: impl Into<String>) -> Self {
        Reconciler {
            allocator: Allocator::default(),
            class: class.into(),
            adopted: false,
            pools: None,
            reported: BTreeSet::new(),
            pool_conditions: BTreeMap::new(),
            speakers: SpeakerTracker::default(),
        }
    }

    /// Waits `grace` before a missing speaker or a down BGP session makes a
    /// Service's Announced condition false (default [`crate::speakers::DEFAULT_GRACE`]).
    pub fn with_speaker_grace(mut self, grace: SignedDuration) -> Self {
        self.speakers = SpeakerTracker::new(grace);
        self
    }

    /// The allocator (for metrics).
    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    /// One pass over the snapshot, knowing nothing of the speakers.
    pub fn reconcile(&mut self, snap: &ClusterSnapshot, now: Timestamp) -> Outcome {
        self.reconcile_with(snap, None, now)
    }

    /// One pass over the snapshot and what the speakers report of themselves
    /// (`None`: unknown; see `Loaded::speakers`).
    pub fn reconcile_with(
        &mut self,
        snap: &ClusterSnapshot,
        speakers: Option<&[SpeakerStatusFile]>,
        now: Timestamp,
    ) -> Outcome {
        let mut out = Outcome::default();
        let (config, errors) = snap.config();
        let verdicts = self.speakers.judge(&snap.nodes, &config, speakers, now);
        out.recheck_at = verdicts.recheck_at;
        let mut announce_events: BTreeMap<String, usize> = BTreeMap::new();
        self.report_config_errors(&errors, now, &mut out);
        let evicted = self.update_pools(&config);

        let ns_labels: BTreeMap<&str, BTreeMap<String, String>> = snap
            .namespaces
            .iter()
            .filter_map(|n| {
                Some((
                    n.metadata.name.as_deref()?,
                    n.metadata.labels.clone().unwrap_or_default(),
                ))
            })
            .collect();
        let mut ours: Vec<&Service> = snap
            .services
            .iter()
            .filter(|s| service::is_ours(s, &self.class))
            .map(|s| &**s)
            .collect();
        ours.sort_by(|a, b| {
            let k = |s: &Service| {
                (
                    s.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    service::key(s),
                )
            };
            k(a).cmp(&k(b))
        });
        let requests: Vec<_> = ours
            .iter()
            .map(|s| {
                let ns = s.metadata.namespace.as_deref().unwrap_or("default");
                (
                    *s,
                    service::request(s, ns_labels.get(ns).unwrap_or(&BTreeMap::new())),
                )
            })
            .collect();

        // Restart safety: every address already in status is taken back before any
        // Service gets a new one.
        if !self.adopted {
            for (svc, req) in &requests {
                if let Ok(req) = req {
                    self.allocator.adopt(req, &service::status_ips(svc));
                }
            }
            self.adopted = true;
        }

        // Release what is gone or no longer ours.
        let live: BTreeSet<ServiceKey> = requests.iter().map(|(s, _)| service::key(s)).collect();
        let held: Vec<ServiceKey> = self
            .allocator
            .assignments()
            .map(|(k, _)| k.clone())
            .collect();
        for k in held {
            if !live.contains(&k) {
                self.allocator.release(&k);
                if snap.services.iter().any(|s| service::key(s) == k) {
                    out.released.push(k);
                }
            }
        }

        for (svc, req) in &requests {
            let key = service::key(svc);
            let before = service::status_ips(svc);
            let existing = service_conditions(svc);
            let generation = svc.metadata.generation;
            let ns = key.namespace.to_string();
            let name = key.name.to_string();
            let result = match req {
                Ok(req) => self.allocator.allocate(req, &before).map_err(|f| {
                    let reason = f.error.reason();
                    // Name the Service field the failure is about.
                    let message = match service::field_of(svc, reason) {
                        Some(field) => format!("{field}: {}", f.error),
                        None => f.error.to_string(),
                    };
                    (reason, message, f.kept)
                }),
                Err(e) => Err((
                    "InvalidAnnotation",
                    e.to_string(),
                    self.allocator.assignment(&key).cloned(),
                )),
            };
            if evicted.contains(&key) {
                out.events.push(event(
                    "Warning",
                    "PoolChanged",
                    format!("address(es) {} left their IPAddressPool (deleted, shrunk or now avoiding .0/.255); re-allocating", join(&before)),
                    "Service",
                    &ns,
                    &name,
                    now,
                ));
            }
            let (assignment, cond) = match result {
                Ok(a) => {
                    if a.ips != before {
                        out.events.push(event(
                            "Normal",
                            "IPAllocated",
                            format!("Assigned IP {}", quoted(&a.ips)),
                            "Service",
                            &ns,
                            &name,
                            now,
                        ));
                    }
                    let msg = format!("{} from IPAddressPool {}", join(&a.ips), a.pool);
                    let c = condition(
                        &existing,
                        ADDRESS_ASSIGNED,
                        true,
                        "Assigned",
                        msg,
                        now,
                        generation,
                    );
                    (Some(a), c)
                }
                Err((reason, message, kept)) => {
                    out.failures += 1;
                    let repeated = existing.iter().any(|c| {
                        c.type_ == ADDRESS_ASSIGNED && c.status == "False" && c.message == message
                    });
                    if !repeated {
                        out.events.push(event(
                            "Warning",
                            "AllocationFailed",
                            message.clone(),
                            "Service",
                            &ns,
                            &name,
                            now,
                        ));
                    }
                    let c = condition(
                        &existing,
                        ADDRESS_ASSIGNED,
                        false,
                        reason,
                        message,
                        now,
                        generation,
                    );
                    (kept, c)
                }
            };
            let mut conditions = vec![cond];
            if let Some(a) = &assignment {
                let (c, ev) = announced(snap, &config, &verdicts, svc, a, &existing, now);
                conditions.push(c);
                if let Some(ev) = ev {
                    let n = announce_events.entry(ev.reason.clone()).or_default();
                    *n += 1;
                    if *n <= ANNOUNCE_EVENTS_PER_REASON {
                        out.events.push(ev);
                    }
                }
            }
            out.services
                .push(record(&key, assignment.as_ref(), conditions));
        }
        out.services
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        for (reason, n) in announce_events {
            if n > ANNOUNCE_EVENTS_PER_REASON {
                tracing::warn!(
                    reason = %reason,
                    services = n,
                    events = ANNOUNCE_EVENTS_PER_REASON,
                    "many Services are not announced for the same reason; Events recorded for the first ones only, every Service has the condition"
                );
            }
        }
        out.pools = self.pool_status(snap, &errors, now);
        out.config_errors = errors;
        out
    }

    fn report_config_errors(&mut self, errors: &[ConfigError], now: Timestamp, out: &mut Outcome) {
        let current: BTreeSet<String> = errors.iter().map(ToString::to_string).collect();
        for e in errors {
            if !self.reported.contains(&e.to_string()) {
                tracing::warn!(kind = e.kind, namespace = %e.namespace, name = %e.name, field = %e.field, "{}", e.message);
                out.events.push(event(
                    "Warning",
                    "InvalidConfiguration",
                    format!("{}: {}", e.field, e.message),
                    e.kind,
                    &e.namespace,
                    &e.name,
                    now,
                ));
            }
        }
        self.reported = current;
    }

    /// Applies the pools of a new configuration; returns the Services that lost
    /// their addresses because of it.
    fn update_pools(&mut self, config: &Config) -> BTreeSet<ServiceKey> {
        if self.pools.as_ref() == Some(&config.pools) {
            return BTreeSet::new();
        }
        self.pools = Some(config.pools.clone());
        self.allocator
            .set_pools(config.pools.clone())
            .into_iter()
            .collect()
    }

    fn pool_status(
        &mut self,
        snap: &ClusterSnapshot,
        errors: &[ConfigError],
        now: Timestamp,
    ) -> Vec<PoolStatusRecord> {
        let mut out = Vec::new();
        for p in &snap.pools {
            let name = p.metadata.name.clone().unwrap_or_default();
            let namespace = p.metadata.namespace.clone().unwrap_or_default();
            let generation = p.metadata.generation;
            let existing = self
                .pool_conditions
                .get(&name)
                .cloned()
                .or_else(|| p.status.as_ref().map(|s| s.conditions.clone()))
                .unwrap_or_default();
            let mut status = IPAddressPoolStatus {
                observed_generation: generation,
                ..Default::default()
            };
            match self.allocator.pool_stats(&name) {
                Some(st) => {
                    status.assigned_ipv4 = Some(st.assigned[0].to_string());
                    status.available_ipv4 = Some(st.available[0].to_string());
                    status.assigned_ipv6 = Some(st.assigned[1].to_string());
                    status.available_ipv6 = Some(st.available[1].to_string());
                    let exhausted = st.available == [0, 0];
                    status.conditions = vec![
                        condition(
                            &existing,
                            "Ready",
                            true,
                            "Valid",
                            "addresses are being assigned from this pool".into(),
                            now,
                            generation,
                        ),
                        condition(
                            &existing,
                            "Exhausted",
                            exhausted,
                            if exhausted {
                                "NoFreeAddress"
                            } else {
                                "FreeAddresses"
                            },
                            if exhausted {
                                "every address is in use".into()
                            } else {
                                "free addresses remain".into()
                            },
                            now,
                            generation,
                        ),
                    ];
                }
                None => {
                    let msg: Vec<String> = errors
                        .iter()
                        .filter(|e| {
                            e.kind == "IPAddressPool" && e.name == name && e.namespace == namespace
                        })
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect();
                    status.conditions = vec![condition(
                        &existing,
                        "Ready",
                        false,
                        "InvalidConfiguration",
                        msg.join("; "),
                        now,
                        generation,
                    )];
                }
            }
            self.pool_conditions
                .insert(name.clone(), status.conditions.clone());
            out.push(PoolStatusRecord {
                namespace,
                name,
                status,
            });
        }
        out
    }
}

/// The Announced condition of a Service holding `a`, and a Warning Event when it
/// becomes (or changes while) false: `NotAdvertised` when no advertisement selects
/// the pool, else the reason no node may announce it (`NoEligibleNode`,
/// `NoReadyEndpoint`, `NoSpeaker`) or no BGP session carries it (`NoPeer`,
/// `PeersDown`).
fn announced(
    snap: &ClusterSnapshot,
    config: &Config,
    speakers: &Verdicts,
    svc: &Service,
    a: &Assignment,
    existing: &[Condition],
    now: Timestamp,
) -> (Condition, Option<EventRecord>) {
    let generation = svc.metadata.generation;
    let key = service::key(svc);
    let pool = a.pool.to_string();
    let l2: Vec<String> = config
        .l2_advertisements
        .values()
        .filter(|x| x.pools.contains(&pool))
        .map(|x| x.name.clone())
        .collect();
    let bgp: Vec<String> = config
        .bgp_advertisements
        .values()
        .filter(|x| x.pools.contains(&pool))
        .map(|x| x.name.clone())
        .collect();
    let problem = crate::diagnose::node_problem(snap, config, svc, &pool, (&l2, &bgp), speakers);
    let (reason, event_reason, msg) = if l2.is_empty() && bgp.is_empty() {
        (
            "NoAdvertisement".to_string(),
            "NotAdvertised".to_string(),
            format!(
                "{} assigned but never announced: no L2Advertisement or BGPAdvertisement selects IPAddressPool {pool}; create one with spec.ipAddressPools: [{pool}]",
                join(&a.ips)
            ),
        )
    } else if let Some(link) = problem {
        (
            link.reason.clone(),
            link.reason,
            format!(
                "{} assigned but not announced: {}; {}",
                join(&a.ips),
                link.summary,
                link.fix.unwrap_or_default()
            ),
        )
    } else {
        let by: Vec<String> = l2
            .iter()
            .map(|x| format!("L2Advertisement {x}"))
            .chain(bgp.iter().map(|x| format!("BGPAdvertisement {x}")))
            .collect();
        let msg = format!("IPAddressPool {pool} is selected by {}", by.join(", "));
        let c = condition(
            existing,
            ANNOUNCED,
            true,
            "Advertised",
            msg,
            now,
            generation,
        );
        return (c, None);
    };
    let repeated = existing
        .iter()
        .any(|c| c.type_ == ANNOUNCED && c.status == "False" && c.message == msg);
    let ev = (!repeated).then(|| {
        event(
            "Warning",
            &event_reason,
            msg.clone(),
            "Service",
            &key.namespace,
            &key.name,
            now,
        )
    });
    (
        condition(existing, ANNOUNCED, false, &reason, msg, now, generation),
        ev,
    )
}

fn record(
    key: &ServiceKey,
    a: Option<&Assignment>,
    conditions: Vec<Condition>,
) -> ServiceStatusRecord {
    ServiceStatusRecord {
        namespace: key.namespace.to_string(),
        name: key.name.to_string(),
        annotations: a
            .map(|a| BTreeMap::from([(IP_ALLOCATED_FROM_POOL.to_string(), a.pool.to_string())]))
            .unwrap_or_default(),
        load_balancer: ingress(a.map(|a| a.ips.as_slice()).unwrap_or_default()),
        conditions,
    }
}

fn join(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// MetalLB's Event text format: `Assigned IP ["10.0.0.1"]`.
fn quoted(ips: &[IpAddr]) -> String {
    format!(
        "[{}]",
        ips.iter()
            .map(|i| format!("{:?}", i.to_string()))
            .collect::<Vec<_>>()
            .join(",")
    )
}
