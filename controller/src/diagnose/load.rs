//! Fetches what [`super::diagnose`] needs, from a directory or the API server.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::source::FileSource;
use ferrolb_crds::source::SnapshotSource;
use ferrolb_crds::source::kube::{KubeWatchOptions, watch_cluster};
use ferrolb_crds::source::status::SpeakerStatusFile;
use ferrolb_crds::v1beta1::{ServiceBGPStatus, ServiceL2Status};
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
/// speakers watch, the speakers' `SpeakerStatus` and `BGPSessionState` objects
/// (as the controller watches them) and their `ServiceL2Status` and
/// `ServiceBGPStatus` objects. Every running speaker keeps a `SpeakerStatus`
/// (owned by its pod), so a node without one runs no speaker.
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
            speakers: true,
        },
    )
    .await;
    let loaded = watch.snapshots().borrow().clone();
    drop(watch);
    let mut speakers: BTreeMap<String, SpeakerStatusFile> = loaded
        .speakers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.node.clone(), s))
        .collect();
    // Per-Service entries of a node without a SpeakerStatus are a gone speaker's.
    for st in statuses::<ServiceL2Status>(&client, namespace).await? {
        if let Some(e) = st.node.as_ref().and_then(|n| speakers.get_mut(n)) {
            e.l2.push(st);
        }
    }
    for st in statuses::<ServiceBGPStatus>(&client, namespace).await? {
        if let Some(e) = st.node.as_ref().and_then(|n| speakers.get_mut(n)) {
            e.bgp.push(st.into());
        }
    }
    Ok(Loaded {
        snapshot: loaded.snapshot.clone(),
        speakers: speakers.into_values().collect(),
        speakers_complete: true,
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
