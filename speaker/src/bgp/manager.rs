//! The sessions of one node: one per BGPPeer that selects the node, restarted when
//! the peer's configuration changes, fed the routes computed for it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ferrolb_crds::config::{Config, Peer};
use ferrolb_crds::services::LbService;
use ferrolb_crds::source::status::{BgpCarried, CarriedTo, Shared};

use super::routes::{PeerRoutes, peers_for};
use super::session::{Session, SessionStatus};
use crate::election::NodeView;
use crate::metrics::BgpMetrics;
use crate::{Loaded, Snapshot};

/// What [`BgpSpeaker::service_statuses`] depends on.
#[derive(Debug, PartialEq, Eq)]
struct CarryKey {
    services_gen: u64,
    node: String,
    /// Per session: peer, Established, the families it withholds.
    sessions: Vec<(String, bool, Vec<&'static str>)>,
}

/// Per Service (namespace, name): the Service and the peers it goes to.
type PeersOf<'a> = BTreeMap<(&'a str, &'a str), (&'a Arc<LbService>, Vec<&'a str>)>;

/// All BGP sessions of this node.
pub struct BgpSpeaker {
    sessions: BTreeMap<String, (Peer, Session)>,
    routes: BTreeMap<String, PeerRoutes>,
    /// The snapshot of the last apply: the next one looks at what changed since.
    last: Option<Arc<Loaded>>,
    /// Bumped when the Services behind any peer's routes may have changed.
    services_gen: u64,
    /// The last [`BgpSpeaker::service_statuses`], with what it was built from.
    statuses: Option<(CarryKey, Shared<BgpCarried>)>,
    metrics: Arc<BgpMetrics>,
    changed: Arc<tokio::sync::Notify>,
}

/// The node's IPv4 InternalIP (its default BGP identifier).
pub fn node_router_id(snap: &Snapshot, node: &str) -> Option<Ipv4Addr> {
    snap.nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))?
        .status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
}

impl BgpSpeaker {
    /// No sessions yet.
    pub fn new(metrics: Arc<BgpMetrics>) -> Self {
        BgpSpeaker {
            sessions: BTreeMap::new(),
            routes: BTreeMap::new(),
            last: None,
            services_gen: 0,
            statuses: None,
            metrics,
            changed: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Brings the sessions in line with the configuration and the routes.
    pub async fn apply(
        &mut self,
        loaded: &Arc<Loaded>,
        config: &Config,
        class: &str,
        node: &NodeView,
    ) {
        let snap = &loaded.snapshot;
        let prev = self.last.replace(loaded.clone());
        let prev = prev.as_ref().map(|l| &l.snapshot);
        let router_id = node_router_id(snap, &node.name);
        let wanted: BTreeMap<&str, &Peer> = peers_for(config, node)
            .into_iter()
            .map(|p| (p.name.as_str(), p))
            .collect();
        let stale: Vec<String> = self
            .sessions
            .iter()
            .filter(|(name, (peer, _))| wanted.get(name.as_str()).is_none_or(|w| *w != peer))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            self.services_gen += 1;
            self.routes.remove(&name);
            if let Some((_, s)) = self.sessions.remove(&name) {
                tracing::info!(peer = %name, "stopping session (peer removed or changed)");
                s.stop().await;
            }
        }
        for (name, peer) in wanted {
            let routes = self.routes.entry(name.to_string()).or_default();
            let changed = routes.update(prev, snap, config, class, node, peer);
            if routes.take_services_changed() {
                self.services_gen += 1;
            }
            match self.sessions.get(name) {
                Some((_, s)) => {
                    if changed {
                        s.set_routes(routes.table().clone());
                    }
                }
                None => {
                    tracing::info!(peer = %name, address = %peer.address, "starting session");
                    let s = Session::start(
                        peer.clone(),
                        router_id,
                        routes.table().clone(),
                        self.metrics.clone(),
                    );
                    let mut st = s.watch_status();
                    let changed = self.changed.clone();
                    tokio::spawn(async move {
                        while st.changed().await.is_ok() {
                            changed.notify_one();
                        }
                    });
                    self.sessions.insert(name.to_string(), (peer.clone(), s));
                }
            }
        }
    }

    /// Wakes when a session's state changes.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Per Service, the peers with an Established session that carry one of its
    /// prefixes (for ServiceBGPStatus), sorted; a prefix of a withheld family is
    /// not carried.
    fn service_peers(&self) -> PeersOf<'_> {
        // Borrowed: 10,000 Services with owned keys were 40,000 string copies
        // per rebuild, most of its 12-38 ms.
        let mut out = PeersOf::new();
        for (peer, (_, s)) in &self.sessions {
            let st = s.status();
            if st.state != super::fsm::State::Established {
                continue;
            }
            // A prefix of a family the session withholds does not reach the peer.
            let carried = |p: &ipnet::IpNet| {
                let family = if p.addr().is_ipv4() { "IPv4" } else { "IPv6" };
                !st.withheld.iter().any(|w| w.family == family)
            };
            let Some(routes) = self.routes.get(peer) else {
                continue;
            };
            for (svc, prefix) in routes.carried() {
                if carried(prefix) {
                    let (_, peers) = out
                        .entry((&svc.namespace, &svc.name))
                        .or_insert((svc, Vec::new()));
                    // Once per peer: a Service may have several prefixes.
                    if peers.last() != Some(&peer.as_str()) {
                        peers.push(peer.as_str());
                    }
                }
            }
        }
        out
    }

    /// One `ServiceBGPStatus` status per Service carried to an Established peer,
    /// sorted by Service. Rebuilt only when the Services behind the routes or a
    /// session's state or withheld families changed: a session reporting one
    /// more advertised prefix does not rebuild 10,000 of them.
    pub fn service_statuses(&mut self, node: &str) -> Shared<BgpCarried> {
        let key = CarryKey {
            services_gen: self.services_gen,
            node: node.to_string(),
            sessions: self
                .sessions
                .iter()
                .map(|(n, (_, s))| {
                    let st = s.status();
                    let mut withheld: Vec<&'static str> =
                        st.withheld.iter().map(|w| w.family).collect();
                    withheld.sort_unstable();
                    (
                        n.clone(),
                        st.state == super::fsm::State::Established,
                        withheld,
                    )
                })
                .collect(),
        };
        if self.statuses.as_ref().is_none_or(|(k, _)| *k != key) {
            let node: Arc<str> = node.into();
            // Few distinct lists of peers (one per set of sessions a Service's
            // routes go to): each is one allocation shared by its Services.
            let mut lists: BTreeMap<Vec<&str>, Arc<CarriedTo>> = BTreeMap::new();
            let built: Vec<BgpCarried> = self
                .service_peers()
                .into_values()
                .map(|(svc, peers)| {
                    let to = match lists.get(peers.as_slice()) {
                        Some(l) => l.clone(),
                        None => {
                            let l = Arc::new(CarriedTo {
                                node: node.clone(),
                                peers: peers.iter().map(|p| Arc::from(*p)).collect(),
                            });
                            lists.insert(peers, l.clone());
                            l
                        }
                    };
                    BgpCarried {
                        service: svc.clone(),
                        to,
                    }
                })
                .collect();
            self.statuses = Some((key, built.into()));
        }
        self.statuses
            .as_ref()
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Every session's status, by peer name.
    pub fn statuses(&self) -> BTreeMap<String, SessionStatus> {
        self.sessions
            .iter()
            .map(|(n, (_, s))| (n.clone(), s.status()))
            .collect()
    }

    /// Ends every session with a Cease NOTIFICATION.
    pub async fn stop_all(&mut self) {
        for (_, (_, s)) in std::mem::take(&mut self.sessions) {
            s.stop().await;
        }
    }
}
