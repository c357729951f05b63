//! The kube source: reflectors on the API server feed the same `ClusterSnapshot`
//! as the file source; the sink ([`sink`]) writes status with server-side apply
//! and records Events.

mod ordered;
mod sink;
mod speaker_objects;

pub use sink::KubeSink;
pub use speaker_objects::{
    NODE_LABEL, PEER_LABEL, bgp_status_name, l2_status_name, label_value, session_state_name,
};

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

use self::ordered::{Ordered, reflect_ordered};
use super::status::SpeakerStatusFile;
use super::{Loaded, SnapshotSource};
use crate::services::ServiceView;
use crate::snapshot::ClusterSnapshot;
use crate::v1beta1::{
    BFDProfile, BGPAdvertisement, BGPPeer, BGPSessionState, Community, IPAddressPool,
    L2Advertisement, SpeakerStatus,
};

/// After a snapshot, how long further watch events are gathered before the next.
const SETTLE: Duration = Duration::from_millis(20);

/// What to watch.
#[derive(Clone, Debug)]
pub struct KubeWatchOptions {
    /// FerroLB's namespace: configuration objects and Secrets are read there only.
    pub namespace: String,
    /// Watch Nodes (the speaker needs them).
    pub nodes: bool,
    /// Watch EndpointSlices (the speaker needs them for `externalTrafficPolicy: Local`).
    pub endpoint_slices: bool,
    /// Watch the speakers' `SpeakerStatus` and `BGPSessionState` objects into
    /// [`Loaded::speakers`] (the controller's view of the speakers).
    pub speakers: bool,
}

/// A running set of reflectors.
pub struct KubeWatch<S = Service> {
    rx: watch::Receiver<Arc<Loaded<S>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<S> Drop for KubeWatch<S> {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl<S: ServiceView> SnapshotSource<S> for KubeWatch<S> {
    fn snapshots(&self) -> watch::Receiver<Arc<Loaded<S>>> {
        self.rx.clone()
    }
}

fn reflect<K>(
    api: Api<K>,
    notify: mpsc::UnboundedSender<()>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    // managedFields are most of a Service's bytes as the API server sends it, and
    // nothing here reads them: dropped before the store keeps the object.
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o| o.meta_mut().managed_fields = None)
        .reflect(writer);
    tasks.push(tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => {
                    let _ = notify.send(());
                }
                // The watcher retries with backoff; the error is worth a line.
                Err(e) => tracing::warn!(kind = %K::kind(&K::DynamicType::default()), error = %e, "watch failed; retrying"),
            }
        }
    }));
    reader
}

fn items<K>(s: &Store<K>) -> Vec<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    s.state().iter().map(|o| (**o).clone()).collect()
}

struct Stores<S> {
    pools: Store<IPAddressPool>,
    l2: Store<L2Advertisement>,
    bgp: Store<BGPAdvertisement>,
    peers: Store<BGPPeer>,
    communities: Store<Community>,
    bfd: Store<BFDProfile>,
    secrets: Store<Secret>,
    services: Ordered<Service, S>,
    namespaces: Store<Namespace>,
    nodes: Option<Store<Node>>,
    slices: Option<Ordered<EndpointSlice>>,
    speakers: Option<(Store<SpeakerStatus>, Store<BGPSessionState>)>,
}

impl<S: ServiceView> Stores<S> {
    async fn ready(&self) {
        let _ = futures::join!(
            self.pools.wait_until_ready(),
            self.l2.wait_until_ready(),
            self.bgp.wait_until_ready(),
            self.peers.wait_until_ready(),
            self.communities.wait_until_ready(),
            self.bfd.wait_until_ready(),
            self.secrets.wait_until_ready(),
            self.services.wait_until_ready(),
            self.namespaces.wait_until_ready(),
        );
        if let Some(n) = &self.nodes {
            let _ = n.wait_until_ready().await;
        }
        if let Some(s) = &self.slices {
            let _ = s.wait_until_ready().await;
        }
        if let Some((st, sessions)) = &self.speakers {
            let _ = futures::join!(st.wait_until_ready(), sessions.wait_until_ready());
        }
    }

    fn loaded(&self) -> Loaded<S> {
        Loaded {
            snapshot: self.snapshot(),
            errors: vec![],
            speakers: self
                .speakers
                .as_ref()
                .map(|(st, sessions)| speaker_heads(&items(st), &items(sessions))),
        }
    }

    fn snapshot(&self) -> ClusterSnapshot<S> {
        let mut s = ClusterSnapshot {
            pools: items(&self.pools),
            l2_advertisements: items(&self.l2),
            bgp_advertisements: items(&self.bgp),
            peers: items(&self.peers),
            communities: items(&self.communities),
            bfd_profiles: items(&self.bfd),
            secrets: items(&self.secrets),
            // The stores' own objects, in order: an unchanged one keeps its `Arc`
            // from one snapshot to the next, and sorting them is one pass.
            services: self.services.state(),
            namespaces: items(&self.namespaces),
            nodes: self.nodes.as_ref().map(items).unwrap_or_default(),
            endpoint_slices: self.slices.as_ref().map(Ordered::state).unwrap_or_default(),
        };
        s.normalize_owned();
        s
    }
}

/// Starts the reflectors. The first snapshot is published once every store has
/// listed its objects, so consumers never act on a half-filled view (which
/// would look like deleted Services). Each Service is kept as `S` (see
/// [`ServiceView`]).
pub async fn watch_cluster<S: ServiceView>(client: Client, opts: KubeWatchOptions) -> KubeWatch<S> {
    let (ntx, mut nrx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    let ns = opts.namespace.as_str();
    let stores = Stores {
        pools: reflect(Api::namespaced(client.clone(), ns), ntx.clone(), &mut tasks),
        l2: reflect(Api::namespaced(client.clone(), ns), ntx.clone(), &mut tasks),
        bgp: reflect(Api::namespaced(client.clone(), ns), ntx.clone(), &mut tasks),
        peers: reflect(Api::namespaced(client.clone(), ns), ntx.clone(), &mut tasks),
        communities: reflect(Api::namespaced(client.clone(), ns), ntx.clone(), &mut tasks),
        bfd: reflect(Api::namespaced(client.clone(), ns), ntx.clone(), &mut tasks),
        secrets: reflect(Api::namespaced(client.clone(), ns), ntx.clone(), &mut tasks),
        services: reflect_ordered(
            Api::all(client.clone()),
            |s| S::project(Arc::new(s)),
            ntx.clone(),
            &mut tasks,
        ),
        namespaces: reflect(Api::all(client.clone()), ntx.clone(), &mut tasks),
        nodes: opts
            .nodes
            .then(|| reflect(Api::all(client.clone()), ntx.clone(), &mut tasks)),
        slices: opts
            .endpoint_slices
            .then(|| reflect_ordered(Api::all(client.clone()), Arc::new, ntx.clone(), &mut tasks)),
        speakers: opts.speakers.then(|| {
            (
                reflect(Api::namespaced(client.clone(), ns), ntx.clone(), &mut tasks),
                reflect(Api::namespaced(client.clone(), ns), ntx.clone(), &mut tasks),
            )
        }),
    };
    stores.ready().await;
    let (tx, rx) = watch::channel(Arc::new(stores.loaded()));
    tasks.push(tokio::spawn(async move {
        let publish = || {
            let t0 = std::time::Instant::now();
            let loaded = stores.loaded();
            let t1 = std::time::Instant::now();
            let changed = **tx.borrow() != loaded;
            if changed {
                tx.send_replace(Arc::new(loaded));
            }
            tracing::debug!(
                build_us = (t1 - t0).as_micros() as u64,
                compare_us = t1.elapsed().as_micros() as u64,
                changed,
                "kube snapshot"
            );
        };
        // The first change after a quiet spell goes out at once: a Service's new
        // status must reach the routers in milliseconds, and waiting SETTLE first
        // was most of that. Changes during the SETTLE that follows are gathered
        // into one more snapshot at its end, so a burst (a resync, a rollout)
        // builds a few snapshots, not one per event.
        while nrx.recv().await.is_some() {
            while nrx.try_recv().is_ok() {}
            publish();
            loop {
                tokio::time::sleep(SETTLE).await;
                let mut more = false;
                while nrx.try_recv().is_ok() {
                    more = true;
                }
                if !more {
                    break;
                }
                publish();
            }
        }
    }));
    KubeWatch { rx, tasks }
}

/// One entry per node with a `SpeakerStatus` (every running speaker keeps one),
/// with the node's `BGPSessionState`s; sessions of a node without a
/// `SpeakerStatus` are left out (its speaker is gone; the objects follow its pod).
pub fn speaker_heads(
    statuses: &[SpeakerStatus],
    sessions: &[BGPSessionState],
) -> Vec<SpeakerStatusFile> {
    let mut out: std::collections::BTreeMap<String, SpeakerStatusFile> = statuses
        .iter()
        .filter_map(|s| {
            let st = s.status.as_ref()?;
            let node = st.node.clone()?;
            Some((
                node.clone(),
                SpeakerStatusFile {
                    node,
                    conditions: st.conditions.clone(),
                    ..Default::default()
                },
            ))
        })
        .collect();
    for s in sessions.iter().filter_map(|s| s.status.as_ref()) {
        if let Some(e) = s.node.as_ref().and_then(|n| out.get_mut(n)) {
            e.sessions.push(s.clone());
        }
    }
    for e in out.values_mut() {
        e.sessions.sort_by(|a, b| a.peer.cmp(&b.peer));
    }
    out.into_values().collect()
}
