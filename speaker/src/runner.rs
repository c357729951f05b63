//! The speaker's loop, the same on either source: elect, answer, publish status
//! (`status/speaker-<node>.yaml`, or `SpeakerStatus`, `BGPSessionState`,
//! `ServiceL2Status` and `ServiceBGPStatus` objects) and Events.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_crds::source::status::{EventRecord, ObjectRef, SpeakerStatusFile};
use ferrolb_crds::source::{SnapshotSource, StatusSink};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;

use crate::announce::{plan, standby_interfaces, unusable_named_interfaces};
use crate::bgp::manager::BgpSpeaker;
use crate::bgp::session_state::SessionStates;
use crate::conflict::{self, ConflictLog};
use crate::election::{NodeView, l2_assignments};
use crate::findings::{self, FindingLog};
use crate::layer2::announcer::AnnouncePolicy;
use crate::layer2::interfaces;
use crate::layer2::task::Conflicts;
use crate::layer2::task::IfaceTask;
use crate::metrics::{BgpMetrics, L2Metrics};

/// One AddressConflict Event per (address, other MAC) per this period.
const CONFLICT_EVENT_EVERY: Duration = Duration::from_secs(300);
/// A conflict not seen again for this long leaves the speaker's condition.
const CONFLICT_FORGET: Duration = Duration::from_secs(600);
/// How long after a new snapshot's plan the freed heap is handed back, unless
/// another snapshot comes first: the status write and the drop of the last
/// snapshot free much of what a reload built after the plan, and a trim in the
/// middle of a burst of changes would only be undone by the next.
const TRIM_AFTER: Duration = Duration::from_millis(500);

/// Settings of a speaker.
#[derive(Clone, Debug)]
pub struct SpeakerOptions {
    /// This node's name.
    pub node: String,
    /// loadBalancerClass served.
    pub class: String,
    /// Takeover announcements.
    pub announce: AnnouncePolicy,
    /// How often interfaces are rescanned (they may appear or go away).
    pub rescan: Duration,
    /// kube-proxy's configuration, when it is read from the API.
    pub kube_proxy: Option<watch::Receiver<findings::kube_proxy::KubeProxyView>>,
}

/// Keeps one task per interface in step with the plan.
struct Tasks {
    running: BTreeMap<String, IfaceTask>,
    conflicts: Conflicts,
}

impl Tasks {
    /// Runs a task on every interface of `plan` (answering for its addresses) and,
    /// idle, on every `standby` one: opening the sockets and joining groups costs
    /// ~20 ms, which a takeover must not wait for.
    fn apply(
        &mut self,
        plan: &BTreeMap<String, crate::layer2::responder::Owned>,
        standby: &BTreeSet<String>,
        ifaces: &BTreeMap<String, interfaces::Interface>,
        opts: &SpeakerOptions,
        metrics: &Arc<L2Metrics>,
    ) {
        let wanted: BTreeSet<&String> = plan.keys().chain(standby).collect();
        // Stop where nothing may be owned any more, or the interface changed; a task
        // that loses its addresses goes silent at once through `set`.
        self.running
            .retain(|name, t| wanted.contains(name) && ifaces.get(name) == Some(&t.iface));
        for name in wanted {
            let owned = plan.get(name).cloned().unwrap_or_default();
            if let Some(t) = self.running.get(name) {
                t.set(owned);
                continue;
            }
            let Some(iface) = ifaces.get(name) else {
                continue;
            };
            match IfaceTask::start(
                iface.clone(),
                owned,
                opts.announce,
                metrics.clone(),
                self.conflicts.clone(),
            ) {
                Ok(t) => {
                    self.running.insert(name.clone(), t);
                }
                Err(e) => {
                    tracing::error!(iface = %name, error = %e, "cannot answer on this interface (needs CAP_NET_RAW)")
                }
            }
        }
    }
}

/// The members to seed membership with: every Node's first internal address
/// (external when it has none) and the membership port.
fn member_addresses(snap: &crate::Snapshot, port: u16) -> Vec<(String, SocketAddr)> {
    snap.nodes
        .iter()
        .filter_map(|n| {
            let addrs = n.status.as_ref()?.addresses.as_ref()?;
            let pick = |t: &str| {
                addrs
                    .iter()
                    .filter(|a| a.type_ == t)
                    .find_map(|a| a.address.parse::<IpAddr>().ok())
            };
            let ip = pick("InternalIP").or_else(|| pick("ExternalIP"))?;
            Some((n.metadata.name.clone()?, SocketAddr::new(ip, port)))
        })
        .collect()
}

/// Waits for a membership change, or forever without membership.
async fn view_changed(m: &mut Option<Membership>) {
    match m {
        Some(m) => {
            if m.handle.view.changed().await.is_err() {
                std::future::pending::<()>().await
            }
        }
        None => std::future::pending().await,
    }
}

/// Membership as the runner uses it.
pub struct Membership {
    /// The thread's handle.
    pub handle: crate::membership::task::Handle,
    /// The UDP port (the same on every node).
    pub port: u16,
}

/// Runs until `shutdown` fires.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    source: &impl SnapshotSource<ferrolb_crds::services::LbService>,
    sink: &impl StatusSink,
    opts: SpeakerOptions,
    metrics: Arc<L2Metrics>,
    bgp_metrics: Arc<BgpMetrics>,
    mut membership: Option<Membership>,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut seeded = Vec::new();
    let mut watching = BTreeSet::new();
    let mut rx = source.snapshots();
    let (conflict_tx, mut conflict_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Tasks {
        running: BTreeMap::new(),
        conflicts: conflict_tx,
    };
    let mut conflict_log = ConflictLog::default();
    let mut finding_log = FindingLog::default();
    let mut service_of: BTreeMap<IpAddr, (String, String)>;
    let mut last_status: Option<SpeakerStatusFile> = None;
    let mut last_unannounced = Vec::new();
    let mut bgp = BgpSpeaker::new(bgp_metrics);
    let mut session_states = SessionStates::default();
    let mut planned_from: Option<Arc<crate::Loaded>> = None;
    let mut config = ferrolb_crds::config::Config::default();
    let mut me = NodeView {
        name: opts.node.clone(),
        labels: Default::default(),
        usable: false,
    };
    let mut assignments = Vec::new();
    let mut unannounced_all = Vec::new();
    let mut elected_with: Option<BTreeSet<String>> = None;
    let mut rescan = tokio::time::interval(opts.rescan);
    rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trim_due: Option<tokio::time::Instant> = None;
    loop {
        let t0 = std::time::Instant::now();
        let loaded = rx.borrow_and_update().clone();
        // A wake-up without a new snapshot (a session changed state, a rescan)
        // reuses the configuration, routes and election made from it: with
        // 10,000 Services each pass over them costs milliseconds.
        let fresh = planned_from
            .as_ref()
            .is_none_or(|l| !Arc::ptr_eq(l, &loaded));
        if fresh {
            let same_config = planned_from
                .as_ref()
                .is_some_and(|p| p.snapshot.config_input() == loaded.snapshot.config_input());
            if !same_config {
                config = loaded.snapshot.config().0;
            }
            me = loaded
                .snapshot
                .nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(opts.node.as_str()))
                .map(NodeView::from_node)
                .unwrap_or(NodeView {
                    name: opts.node.clone(),
                    labels: Default::default(),
                    usable: false,
                });
        }
        let t_config = t0.elapsed();
        if fresh {
            bgp.apply(&loaded, &config, &opts.class, &me).await;
            // The sessions just woken sit in this worker's LIFO slot, which no
            // other worker steals: without a yield they wait for the whole
            // layer-2 and status pass below (10-15 ms with 10,000 Services).
            tokio::task::yield_now().await;
        }
        let ifaces = match interfaces::scan() {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(error = %e, "cannot list interfaces");
                BTreeMap::new()
            }
        };
        let t_bgp = t0.elapsed();
        // Membership says who is alive without waiting for the API server, but only
        // while this node reaches a majority; otherwise the Node objects alone decide
        // (and, when the API server is unreachable too, their last state: nothing new
        // is taken over).
        let view = membership.as_mut().map(|m| {
            let members = member_addresses(&loaded.snapshot, m.port);
            if members != seeded {
                m.handle.seed(members.clone());
                seeded = members;
            }
            m.handle.view.borrow_and_update().clone()
        });
        let alive = view.as_ref().filter(|v| v.quorum).map(|v| &v.alive);
        if fresh || elected_with.as_ref() != alive {
            (assignments, unannounced_all) =
                l2_assignments(&loaded.snapshot, &config, &opts.class, alive);
            elected_with = alive.cloned();
        }
        planned_from = Some(loaded.clone());
        let t_l2 = t0.elapsed();
        if let Some(m) = &membership {
            let watch: BTreeSet<String> = assignments
                .iter()
                .filter(|a| a.successor.as_deref() == Some(opts.node.as_str()))
                .map(|a| a.node.clone())
                .collect();
            if watch != watching {
                m.handle.watch(watch.clone());
                watching = watch;
            }
        }
        let unannounced = &unannounced_all;
        if *unannounced != last_unannounced {
            for ((ns, name), ip, why) in
                unannounced.iter().filter(|u| !last_unannounced.contains(u))
            {
                tracing::info!(service = %format!("{ns}/{name}"), %ip, reason = ?why, "not announced in layer 2 mode");
            }
            last_unannounced = unannounced.clone();
        }
        service_of = assignments
            .iter()
            .map(|a| (a.ip, a.service.clone()))
            .collect();
        let mut p = plan(&opts.node, &assignments, &ifaces);
        let standby = standby_interfaces(&assignments, &ifaces);
        let unusable = unusable_named_interfaces(&opts.node, &assignments, &ifaces);
        let mut found = findings::of_plan(unusable, conflict_log.condition_message(&opts.node));
        // Every interface a layer 2 address faces here, owned or not: with ipvs
        // every node's kernel answers for every address.
        let in_use = p.per_interface.keys().chain(&standby).cloned().collect();
        let kube_proxy = opts
            .kube_proxy
            .as_ref()
            .map(|r| r.borrow().clone())
            .unwrap_or_default();
        found.extend(findings::probe::strict_arp_findings(
            &opts.node,
            &ifaces,
            &in_use,
            &kube_proxy,
        ));
        let report = finding_log.report(&opts.node, &found, &metrics);
        p.status.conditions.extend(report.conditions);
        if !report.events.is_empty()
            && let Err(e) = sink.emit_events(&report.events).await
        {
            tracing::warn!(error = %e, "cannot emit the finding Events");
        }
        p.status.bgp = bgp.service_statuses(&opts.node);
        let (sessions, session_events) =
            session_states.update(&opts.node, &bgp.statuses(), &config.peers, Timestamp::now());
        p.status.sessions = sessions;
        if !session_events.is_empty()
            && let Err(e) = sink.emit_events(&session_events).await
        {
            tracing::warn!(error = %e, "cannot emit BGP session Events");
        }
        tasks.apply(&p.per_interface, &standby, &ifaces, &opts, &metrics);
        if let (Some(m), Some(v)) = (&membership, &view) {
            m.handle.applied(v.generation);
        }
        let t_plan = t0.elapsed();
        if last_status.as_ref() != Some(&p.status) {
            let before: BTreeSet<(String, String)> = last_status
                .iter()
                .flat_map(|s| s.l2.iter())
                .map(|s| {
                    (
                        s.service_namespace.clone().unwrap_or_default(),
                        s.service_name.clone().unwrap_or_default(),
                    )
                })
                .collect();
            let events: Vec<EventRecord> = p
                .status
                .l2
                .iter()
                .filter(|s| {
                    !before.contains(&(
                        s.service_namespace.clone().unwrap_or_default(),
                        s.service_name.clone().unwrap_or_default(),
                    ))
                })
                .map(|s| EventRecord {
                    type_: "Normal".into(),
                    reason: "nodeAssigned".into(),
                    message: format!(
                        "announcing from node {:?} with protocol \"layer2\"",
                        opts.node
                    ),
                    involved_object: ObjectRef {
                        kind: "Service".into(),
                        namespace: s.service_namespace.clone().unwrap_or_default(),
                        name: s.service_name.clone().unwrap_or_default(),
                    },
                    reporting_component: "ferrolb-speaker".into(),
                    event_time: Timestamp::now().to_string(),
                })
                .collect();
            let write = match &last_status {
                Some(before) => sink.update_speaker(before, &p.status).await,
                None => sink.write_speaker(&p.status).await,
            };
            let written = match write {
                Ok(()) => sink.emit_events(&events).await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                tracing::warn!(error = %e, "cannot write speaker status");
            } else {
                last_status = Some(p.status);
            }
        }
        tracing::debug!(
            config_us = t_config.as_micros() as u64,
            bgp_us = (t_bgp - t_config).as_micros() as u64,
            l2_us = (t_l2 - t_bgp).as_micros() as u64,
            plan_us = (t_plan - t_l2).as_micros() as u64,
            status_us = (t0.elapsed() - t_plan).as_micros() as u64,
            "planned"
        );
        ready.send_replace(true);
        if fresh {
            // After the routes and status are out: a new Service waits for neither.
            trim_due = Some(tokio::time::Instant::now() + TRIM_AFTER);
        }
        let woke = tokio::select! {
            c = rx.changed() => if c.is_err() { break } else { "snapshot" },
            _ = tokio::time::sleep_until(trim_due.unwrap_or_else(tokio::time::Instant::now)),
                if trim_due.is_some() => {
                trim_due = None;
                crate::memory::release_free_heap();
                "heap trim"
            }
            _ = rescan.tick() => {
                conflict_log.expire(std::time::Instant::now(), CONFLICT_FORGET);
                "interface rescan"
            }
            Some((ip, mac)) = conflict_rx.recv() => {
                if conflict_log.record(ip, &mac, std::time::Instant::now(), CONFLICT_EVENT_EVERY) {
                    let text = conflict::message(&ip, &mac, &opts.node);
                    tracing::warn!(%ip, other_mac = %mac, "address conflict: {text}");
                    if let Some((ns, name)) = service_of.get(&ip) {
                        let ev = EventRecord {
                            type_: "Warning".into(),
                            reason: "AddressConflict".into(),
                            message: text,
                            involved_object: ObjectRef {
                                kind: "Service".into(),
                                namespace: ns.clone(),
                                name: name.clone(),
                            },
                            reporting_component: "ferrolb-speaker".into(),
                            event_time: Timestamp::now().to_string(),
                        };
                        if let Err(e) = sink.emit_events(&[ev]).await {
                            tracing::warn!(error = %e, "cannot emit the AddressConflict Event");
                        }
                    }
                }
                "address conflict"
            }
            _ = bgp.changed() => "bgp session",
            _ = view_changed(&mut membership) => "membership",
            _ = shutdown.changed() => break,
        };
        tracing::trace!(woke, "re-planning");
    }
    // A planned departure: the others take over (and announce) first, then this
    // node stops answering.
    if let Some(m) = &membership {
        m.handle.leave().await;
        tracing::info!("handover done");
    }
    // Stop answering and close sessions (with a Cease NOTIFICATION) before exiting.
    drop(tasks);
    bgp.stop_all().await;
    Ok(())
}
