//! Fetches what [`super::diagnose`] needs, from a directory or the API server.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::source::FileSource;
use ferrolb_crds::source::SnapshotSource;
use ferrolb_crds::source::kube::{KubeWatchOptions, watch_cluster};
use ferrolb_crds::source::status::SpeakerStatusFile;
use ferrolb_crds::v1beta1::{BGPSessionState, ServiceBGPStatus, ServiceL2Status, SpeakerStatus};
use kube::api::ListParams;
use kube::{Api, Client};

/// The snapshot and the speakers' status.
pub struct Loaded {
    /// Cluster state with Service status.
    pub snapshot: ClusterSnapshot,
    /// One entry per node with a speaker status.
    pub speakers: Vec<SpeakerStatusFile>,
    /// Whether a node without an entry runs no speaker.
    pub speakers_complete: bool,
}

/// From a file-source directory: its objects, `status/services.yaml` and every
/// `status/speaker-<node>.yaml`. With no speaker file at all nothing is known
/// about the speakers (none has run yet, or they write elsewhere).
pub fn from_dir(dir: &Path) -> anyhow::Result<Loaded> {
    let source = FileSource::new(dir);
    let loaded = source.load()?;
    for e in &loaded.errors {
        tracing::warn!(error = %e, "source");
    }
    let speakers = source.read_speakers()?;
    Ok(Loaded {
        snapshot: loaded.snapshot,
        speakers_complete: !speakers.is_empty(),
        speakers,
    })
}

/// From the API server: one complete listing of what the controller and the
/// speakers watch, and the speakers' `SpeakerStatus`, `BGPSessionState`,
/// `ServiceL2Status` and `ServiceBGPStatus` objects. Every running speaker keeps a
/// `SpeakerStatus` (owned by its pod), so a node without one runs no speaker; with
/// none at all (an older speaker, or none yet) nothing is known about the speakers.
pub async fn from_cluster(namespace: &str) -> anyhow::Result<Loaded> {
    let client = Client::try_default()
        .await
        .context("cannot reach the API server (in-cluster config or kubeconfig)")?;
    let watch = watch_cluster(
        client.clone(),
        KubeWatchOptions {
            namespace: namespace.to_string(),
            nodes: true,
            endpoint_slices: true,
        },
    )
    .await;
    let snapshot = watch.snapshots().borrow().snapshot.clone();
    drop(watch);
    let mut speakers: BTreeMap<String, SpeakerStatusFile> = BTreeMap::new();
    let mut running = 0;
    for st in statuses::<SpeakerStatus>(&client, namespace).await? {
        if let Some(node) = st.node.clone() {
            running += 1;
            entry(&mut speakers, node).conditions = st.conditions;
        }
    }
    for st in statuses::<BGPSessionState>(&client, namespace).await? {
        if let Some(node) = st.node.clone() {
            entry(&mut speakers, node).sessions.push(st);
        }
    }
    for st in statuses::<ServiceL2Status>(&client, namespace).await? {
        if let Some(node) = st.node.clone() {
            entry(&mut speakers, node).l2.push(st);
        }
    }
    for st in statuses::<ServiceBGPStatus>(&client, namespace).await? {
        if let Some(node) = st.node.clone() {
            entry(&mut speakers, node).bgp.push(st);
        }
    }
    Ok(Loaded {
        snapshot,
        speakers: speakers.into_values().collect(),
        speakers_complete: running > 0,
    })
}

fn entry(
    speakers: &mut BTreeMap<String, SpeakerStatusFile>,
    node: String,
) -> &mut SpeakerStatusFile {
    speakers
        .entry(node.clone())
        .or_insert_with(|| SpeakerStatusFile {
            node,
            ..Default::default()
        })
}

/// The status of every object of kind `K` in `namespace`.
async fn statuses<K>(client: &Client, namespace: &str) -> anyhow::Result<Vec<K::Status>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + kube::core::object::HasStatus
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::Status: Clone,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing {} in {namespace}", K::kind(&())))?;
    Ok(list
        .into_iter()
        .filter_map(|o| o.status().cloned())
        .collect())
}
