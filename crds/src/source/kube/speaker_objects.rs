//! The objects a speaker owns on the API server: `SpeakerStatus` (its node's
//! findings), `BGPSessionState` (one per peer), `ServiceL2Status` and
//! `ServiceBGPStatus` (one per Service it announces). Each is applied only when
//! its status differs from what this process last applied, so that a change to one
//! Service costs one request, not one per Service.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use kube::api::{DeleteParams, ListParams, Patch};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::sink::{KubeSink, api_err};
use crate::source::SourceError;
use crate::source::status::SpeakerStatusFile;
use crate::v1beta1::{
    API_VERSION, BGPSessionState, ServiceBGPStatus, ServiceL2Status, SpeakerStatus,
    SpeakerStatusStatus,
};

/// Label of a speaker's status objects naming its node.
pub const NODE_LABEL: &str = "ferrolb.io/node";
/// Label of a `BGPSessionState` naming its `BGPPeer`.
pub const PEER_LABEL: &str = "ferrolb.io/peer";

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

/// The name of the `BGPSessionState` of one node's session with one peer.
pub fn session_state_name(node: &str, peer: &str) -> String {
    status_object_name("session", node, "", peer)
}

/// `<prefix>-<hash of node, namespace, name>`.
fn status_object_name(prefix: &str, node: &str, namespace: &str, name: &str) -> String {
    format!(
        "{prefix}-{:016x}",
        fnv64(format!("{node}\0{namespace}\0{name}").as_bytes())
    )
}

/// One object to apply: its name, labels and status.
struct Entry {
    name: String,
    labels: Value,
    status: Value,
}

/// What this process applied, per kind: object name -> status body. Kinds listed
/// in `swept` had their leftovers from an earlier process removed already.
#[derive(Debug, Default)]
pub(super) struct Applied {
    objects: BTreeMap<&'static str, BTreeMap<String, Value>>,
    swept: BTreeSet<&'static str>,
}

fn service_entries<'a, S: serde::Serialize + 'a>(
    prefix: &str,
    node: &str,
    items: impl Iterator<Item = (&'a Option<String>, &'a Option<String>, &'a S)>,
) -> Vec<Entry> {
    items
        .map(|(ns, svc, st)| {
            let (ns, svc) = (
                ns.as_deref().unwrap_or_default(),
                svc.as_deref().unwrap_or_default(),
            );
            Entry {
                name: status_object_name(prefix, node, ns, svc),
                labels: json!({
                    NODE_LABEL: label_value(node),
                    "ferrolb.io/service-namespace": label_value(ns),
                    "ferrolb.io/service-name": label_value(svc),
                }),
                status: json!(st),
            }
        })
        .collect()
}

impl KubeSink {
    /// Makes the speaker objects of `status.node` exactly what `status` says:
    /// `SpeakerStatus` (named after the node), one `BGPSessionState` per peer, one
    /// `ServiceL2Status`/`ServiceBGPStatus` per announced Service (named from a hash
    /// of node and Service so that every speaker applies its own objects without a
    /// lookup, labelled with the node and Service). Objects the node no longer has
    /// are deleted. The first error is returned after every kind was tried, so that
    /// one rejected object does not hold back the others.
    pub async fn write_service_statuses(
        &self,
        status: &SpeakerStatusFile,
    ) -> Result<(), SourceError> {
        let node = status.node.as_str();
        let me = vec![Entry {
            name: node.to_string(),
            labels: json!({ NODE_LABEL: label_value(node) }),
            status: json!(SpeakerStatusStatus {
                node: Some(node.to_string()),
                conditions: status.conditions.clone(),
            }),
        }];
        let sessions: Vec<Entry> = status
            .sessions
            .iter()
            .map(|s| {
                let peer = s.peer.as_deref().unwrap_or_default();
                Entry {
                    name: session_state_name(node, peer),
                    labels: json!({ NODE_LABEL: label_value(node), PEER_LABEL: label_value(peer) }),
                    status: json!(s),
                }
            })
            .collect();
        let l2 = service_entries(
            "l2",
            node,
            status
                .l2
                .iter()
                .map(|s| (&s.service_namespace, &s.service_name, s)),
        );
        let bgp = service_entries(
            "bgp",
            node,
            status
                .bgp
                .iter()
                .map(|s| (&s.service_namespace, &s.service_name, s)),
        );
        let results = [
            self.sync::<SpeakerStatus>("SpeakerStatus", node, me).await,
            self.sync::<BGPSessionState>("BGPSessionState", node, sessions)
                .await,
            self.sync::<ServiceL2Status>("ServiceL2Status", node, l2)
                .await,
            self.sync::<ServiceBGPStatus>("ServiceBGPStatus", node, bgp)
                .await,
        ];
        results.into_iter().collect()
    }

    /// Applies the entries of `kind` whose status changed and deletes the objects
    /// of `node` that are no longer wanted.
    async fn sync<K>(
        &self,
        kind: &'static str,
        node: &str,
        entries: Vec<Entry>,
    ) -> Result<(), SourceError>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let (before, swept) = {
            let applied = self.applied();
            (
                applied.objects.get(kind).cloned().unwrap_or_default(),
                applied.swept.contains(kind),
            )
        };
        let mut now = BTreeMap::new();
        let mut first_err = None;
        for e in entries {
            if before.get(&e.name) == Some(&e.status) {
                now.insert(e.name, e.status);
                continue;
            }
            match self
                .apply_object(&api, kind, &e, before.contains_key(&e.name))
                .await
            {
                Ok(()) => {
                    now.insert(e.name, e.status);
                }
                Err(err) => {
                    first_err.get_or_insert(err);
                }
            }
        }
        let stale: Vec<String> = if swept {
            before
                .keys()
                .filter(|n| !now.contains_key(*n))
                .cloned()
                .collect()
        } else {
            // A restarted speaker does not know what its predecessor left.
            let lp = ListParams::default().labels(&format!("{NODE_LABEL}={}", label_value(node)));
            match api.list(&lp).await {
                Ok(list) => list
                    .into_iter()
                    .filter_map(|o| o.meta().name.clone())
                    .filter(|n| !now.contains_key(n))
                    .collect(),
                Err(e) => {
                    first_err.get_or_insert(api_err(format!("{kind} of node {node}"), e));
                    Vec::new()
                }
            }
        };
        let mut swept_now = swept || first_err.is_none();
        for name in stale {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    // Kept, so that the next write deletes it again.
                    if let Some(v) = before.get(&name) {
                        now.insert(name.clone(), v.clone());
                    }
                    swept_now = false;
                    first_err
                        .get_or_insert(api_err(format!("{kind} {}/{name}", self.namespace), e));
                }
            }
        }
        {
            let mut applied = self.applied();
            applied.objects.insert(kind, now);
            if swept_now {
                applied.swept.insert(kind);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Applies one object's metadata (when it may not exist yet) and its status.
    async fn apply_object<K>(
        &self,
        api: &Api<K>,
        kind: &str,
        e: &Entry,
        known: bool,
    ) -> Result<(), SourceError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let what = format!("{kind} {}/{}", self.namespace, e.name);
        let body = json!({ "apiVersion": API_VERSION, "kind": kind, "status": e.status });
        if known {
            match api
                .patch_status(&e.name, &self.apply_params(), &Patch::Apply(&body))
                .await
            {
                Ok(_) => return Ok(()),
                // Deleted behind our back (by a person, or by garbage collection
                // after a pod restart): create it again below.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(err) => return Err(api_err(format!("{what} status"), err)),
            }
        }
        let mut metadata = json!({ "name": e.name, "labels": e.labels });
        if let Some(owner) = &self.owner {
            metadata["ownerReferences"] = json!([owner]);
        }
        let obj =
            json!({ "apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": {} });
        api.patch(&e.name, &self.apply_params(), &Patch::Apply(obj))
            .await
            .map_err(|err| api_err(what.clone(), err))?;
        api.patch_status(&e.name, &self.apply_params(), &Patch::Apply(&body))
            .await
            .map_err(|err| api_err(format!("{what} status"), err))?;
        Ok(())
    }
}
