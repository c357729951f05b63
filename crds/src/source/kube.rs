//! The kube source: reflectors on the API server feed the same `ClusterSnapshot`
//! as the file source; the sink writes status with server-side apply and records
//! Events.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, ObjectReference, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::status::{EventRecord, PoolStatusRecord, ServiceStatusRecord, SpeakerStatusFile};
use super::{Loaded, SnapshotSource, SourceError, StatusSink};
use crate::snapshot::ClusterSnapshot;
use crate::v1beta1::{
    API_VERSION, BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
    ServiceBGPStatus, ServiceL2Status,
};

/// Time to let a burst of watch events settle before building a snapshot.
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
}

/// A running set of reflectors.
pub struct KubeWatch {
    rx: watch::Receiver<Arc<Loaded>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for KubeWatch {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl SnapshotSource for KubeWatch {
    fn snapshots(&self) -> watch::Receiver<Arc<Loaded>> {
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
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
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

struct Stores {
    pools: Store<IPAddressPool>,
    l2: Store<L2Advertisement>,
    bgp: Store<BGPAdvertisement>,
    peers: Store<BGPPeer>,
    communities: Store<Community>,
    bfd: Store<BFDProfile>,
    secrets: Store<Secret>,
    services: Store<Service>,
    namespaces: Store<Namespace>,
    nodes: Option<Store<Node>>,
    slices: Option<Store<EndpointSlice>>,
}

impl Stores {
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
    }

    fn snapshot(&self) -> ClusterSnapshot {
        let mut s = ClusterSnapshot {
            pools: items(&self.pools),
            l2_advertisements: items(&self.l2),
            bgp_advertisements: items(&self.bgp),
            peers: items(&self.peers),
            communities: items(&self.communities),
            bfd_profiles: items(&self.bfd),
            secrets: items(&self.secrets),
            services: items(&self.services),
            namespaces: items(&self.namespaces),
            nodes: self.nodes.as_ref().map(items).unwrap_or_default(),
            endpoint_slices: self.slices.as_ref().map(items).unwrap_or_default(),
        };
        s.normalize();
        s
    }
}

/// Starts the reflectors. The first snapshot is published once every store has
/// listed its objects, so consumers never act on a half-filled view (which
/// would look like deleted Services).
pub async fn watch_cluster(client: Client, opts: KubeWatchOptions) -> KubeWatch {
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
        services: reflect(Api::all(client.clone()), ntx.clone(), &mut tasks),
        namespaces: reflect(Api::all(client.clone()), ntx.clone(), &mut tasks),
        nodes: opts
            .nodes
            .then(|| reflect(Api::all(client.clone()), ntx.clone(), &mut tasks)),
        slices: opts
            .endpoint_slices
            .then(|| reflect(Api::all(client.clone()), ntx.clone(), &mut tasks)),
    };
    stores.ready().await;
    let (tx, rx) = watch::channel(Arc::new(Loaded {
        snapshot: stores.snapshot(),
        errors: vec![],
    }));
    tasks.push(tokio::spawn(async move {
        while nrx.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while nrx.try_recv().is_ok() {}
            let snapshot = stores.snapshot();
            if tx.borrow().snapshot != snapshot {
                tx.send_replace(Arc::new(Loaded {
                    snapshot,
                    errors: vec![],
                }));
            }
        }
    }));
    KubeWatch { rx, tasks }
}

/// Label of a speaker's status objects naming its node.
pub const NODE_LABEL: &str = "ferrolb.io/node";

/// A label value for `s`: itself when valid (63 characters at most, alphanumeric
/// at both ends, `-_.` inside), else a stable hash of it.
pub fn label_value(s: &str) -> String {
    let ok = s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_none_or(|c| c.is_ascii_alphanumeric());
    if ok {
        s.to_string()
    } else {
        format!("h{:016x}", fnv64(s.as_bytes()))
    }
}

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The name of the `ServiceL2Status` of one Service on one node.
pub fn l2_status_name(node: &str, namespace: &str, service: &str) -> String {
    status_object_name("l2", node, namespace, service)
}

/// `<prefix>-<hash of node, namespace, Service>`.
fn status_object_name(prefix: &str, node: &str, namespace: &str, service: &str) -> String {
    format!(
        "{prefix}-{:016x}",
        fnv64(format!("{node}\0{namespace}\0{service}").as_bytes())
    )
}

/// Writes status to the API server with server-side apply under one field manager,
/// and Events through the events.k8s.io API.
#[derive(Clone)]
pub struct KubeSink {
    client: Client,
    namespace: String,
    field_manager: String,
    recorder: Recorder,
}

fn api_err(what: String, e: kube::Error) -> SourceError {
    SourceError::Io {
        path: what.into(),
        message: e.to_string(),
    }
}

impl KubeSink {
    /// A sink writing as `field_manager` (also the Events' reporting controller);
    /// `namespace` holds FerroLB's configuration objects; `instance` tells replicas
    /// apart in Events (the pod name).
    pub fn new(
        client: Client,
        namespace: impl Into<String>,
        field_manager: impl Into<String>,
        instance: Option<String>,
    ) -> Self {
        let field_manager = field_manager.into();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: field_manager.clone(),
                instance,
            },
        );
        KubeSink {
            client,
            namespace: namespace.into(),
            field_manager,
            recorder,
        }
    }

    fn apply(&self) -> PatchParams {
        PatchParams::apply(&self.field_manager).force()
    }

    /// Applies one Service's status and the annotations FerroLB owns.
    pub async fn write_service(&self, r: &ServiceStatusRecord) -> Result<(), SourceError> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &r.namespace);
        let what = format!("Service {}/{}", r.namespace, r.name);
        let status = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "status": { "loadBalancer": r.load_balancer, "conditions": r.conditions },
        });
        api.patch_status(&r.name, &self.apply(), &Patch::Apply(status))
            .await
            .map_err(|e| api_err(format!("{what} status"), e))?;
        let meta = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "annotations": r.annotations },
        });
        api.patch(&r.name, &self.apply(), &Patch::Apply(meta))
            .await
            .map_err(|e| api_err(what, e))?;
        Ok(())
    }

    /// Applies one pool's status.
    pub async fn write_pool(&self, r: &PoolStatusRecord) -> Result<(), SourceError> {
        let api: Api<IPAddressPool> = Api::namespaced(self.client.clone(), &r.namespace);
        let body =
            json!({ "apiVersion": API_VERSION, "kind": "IPAddressPool", "status": r.status });
        api.patch_status(&r.name, &self.apply(), &Patch::Apply(body))
            .await
            .map_err(|e| {
                api_err(
                    format!("IPAddressPool {}/{} status", r.namespace, r.name),
                    e,
                )
            })?;
        Ok(())
    }

    /// Records one Event.
    pub async fn emit(&self, e: &EventRecord) -> Result<(), SourceError> {
        let api_version = match e.involved_object.kind.as_str() {
            "Service" | "Node" | "Namespace" | "Secret" => "v1",
            _ => API_VERSION,
        };
        let reference = ObjectReference {
            api_version: Some(api_version.into()),
            kind: Some(e.involved_object.kind.clone()),
            namespace: (!e.involved_object.namespace.is_empty())
                .then(|| e.involved_object.namespace.clone()),
            name: Some(e.involved_object.name.clone()),
            ..Default::default()
        };
        let ev = Event {
            type_: if e.type_ == "Warning" {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.clone(),
            note: Some(e.message.clone()),
            action: e.reason.clone(),
            secondary: None,
        };
        self.recorder.publish(&ev, &reference).await.map_err(|err| {
            api_err(
                format!(
                    "Event {} on {}/{}",
                    e.reason, e.involved_object.namespace, e.involved_object.name
                ),
                err,
            )
        })
    }

    /// Makes the `ServiceL2Status` and `ServiceBGPStatus` objects of `status.node`
    /// exactly `status.l2` and `status.bgp`: one object per (node, Service), named
    /// from a hash of both so that every speaker applies its own objects without a
    /// lookup, labelled with the node and Service; objects of Services the node no
    /// longer announces are deleted.
    pub async fn write_service_statuses(
        &self,
        status: &SpeakerStatusFile,
    ) -> Result<(), SourceError> {
        fn entry(
            ns: &Option<String>,
            name: &Option<String>,
            st: serde_json::Value,
        ) -> (String, String, serde_json::Value) {
            (
                ns.clone().unwrap_or_default(),
                name.clone().unwrap_or_default(),
                st,
            )
        }
        let l2: Vec<_> = status
            .l2
            .iter()
            .map(|s| entry(&s.service_namespace, &s.service_name, json!(s)))
            .collect();
        self.write_status_objects::<ServiceL2Status>("ServiceL2Status", "l2", &status.node, &l2)
            .await?;
        let bgp: Vec<_> = status
            .bgp
            .iter()
            .map(|s| entry(&s.service_namespace, &s.service_name, json!(s)))
            .collect();
        self.write_status_objects::<ServiceBGPStatus>("ServiceBGPStatus", "bgp", &status.node, &bgp)
            .await
    }

    async fn write_status_objects<K>(
        &self,
        kind: &str,
        prefix: &str,
        node: &str,
        entries: &[(String, String, serde_json::Value)],
    ) -> Result<(), SourceError>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let node_label = label_value(node);
        let mut keep = std::collections::BTreeSet::new();
        for (ns, svc, st) in entries {
            let name = status_object_name(prefix, node, ns, svc);
            let what = format!("{kind} {}/{name}", self.namespace);
            let labels = json!({
                NODE_LABEL: node_label,
                "ferrolb.io/service-namespace": label_value(ns),
                "ferrolb.io/service-name": label_value(svc),
            });
            let obj = json!({ "apiVersion": API_VERSION, "kind": kind, "metadata": { "name": name, "labels": labels }, "spec": {} });
            api.patch(&name, &self.apply(), &Patch::Apply(obj))
                .await
                .map_err(|e| api_err(what.clone(), e))?;
            let body = json!({ "apiVersion": API_VERSION, "kind": kind, "status": st });
            api.patch_status(&name, &self.apply(), &Patch::Apply(body))
                .await
                .map_err(|e| api_err(format!("{what} status"), e))?;
            keep.insert(name);
        }
        let lp = kube::api::ListParams::default().labels(&format!("{NODE_LABEL}={node_label}"));
        let existing = api
            .list(&lp)
            .await
            .map_err(|e| api_err(format!("{kind} of node {node}"), e))?;
        for o in existing {
            let Some(name) = o.meta().name.clone() else {
                continue;
            };
            if !keep.contains(&name) {
                match api.delete(&name, &Default::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(api_err(format!("{kind} {}/{name}", self.namespace), e)),
                }
            }
        }
        Ok(())
    }

    /// FerroLB's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

impl StatusSink for KubeSink {
    async fn write_services(&self, records: &[ServiceStatusRecord]) -> Result<(), SourceError> {
        // One failure must not stop the other Services' updates; the first error is
        // returned after all were tried.
        let mut first = None;
        for r in records {
            if let Err(e) = self.write_service(r).await {
                tracing::warn!(error = %e, "cannot write Service status");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn write_pools(&self, records: &[PoolStatusRecord]) -> Result<(), SourceError> {
        let mut first = None;
        for r in records {
            if let Err(e) = self.write_pool(r).await {
                tracing::warn!(error = %e, "cannot write pool status");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn write_speaker(&self, status: &SpeakerStatusFile) -> Result<(), SourceError> {
        self.write_service_statuses(status).await
    }

    async fn emit_events(&self, events: &[EventRecord]) -> Result<(), SourceError> {
        for e in events {
            if let Err(err) = self.emit(e).await {
                tracing::warn!(error = %err, "cannot record Event");
            }
        }
        Ok(())
    }
}
