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
/// speakers watch, and the speakers' `ServiceL2Status`/`ServiceBGPStatus` objects.
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
    let entry = |node: String| SpeakerStatusFile {
        node,
        ..Default::default()
    };
    let l2: Api<ServiceL2Status> = Api::namespaced(client.clone(), namespace);
    for o in l2
        .list(&ListParams::default())
        .await
        .context("listing ServiceL2Status")?
    {
        if let Some(st) = o.status
            && let Some(node) = st.node.clone()
        {
            speakers
                .entry(node.clone())
                .or_insert_with(|| entry(node))
                .l2
                .push(st);
        }
    }
    let bgp: Api<ServiceBGPStatus> = Api::namespaced(client, namespace);
    for o in bgp
        .list(&ListParams::default())
        .await
        .context("listing ServiceBGPStatus")?
    {
        if let Some(st) = o.status
            && let Some(node) = st.node.clone()
        {
            speakers
                .entry(node.clone())
                .or_insert_with(|| entry(node))
                .bgp
                .push(st);
        }
    }
    Ok(Loaded {
        snapshot,
        speakers: speakers.into_values().collect(),
        speakers_complete: false,
    })
}
