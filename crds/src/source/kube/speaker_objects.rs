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
    API_VERSION, BGPSessionState, ServiceBGPStatus, ServiceL2Status, ServiceL2StatusStatus,
    SpeakerStatus, SpeakerStatusStatus,
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

/// The name of the `ServiceBGPStatus` of one Service on one node.
pub fn bgp_status_name(node: &str, namespace: &str, service: &str) -> String {
    status_object_name("bgp", node, namespace, service)
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

/// A kind of status object a speaker owns (namespaced, in FerroLB's namespace).
trait StatusObject:
    Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Debug
{
}

impl<K> StatusObject for K where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
{
}

/// One object to apply: its name, labels and status.
struct Entry {
    name: String,
    labels: Value,
    status: Value,
}

/// What this process applied, per kind: object name -> digest of the status
/// body ([`digest`]). Kinds listed in `swept` had their leftovers from an earlier
/// process removed already. Digests, not the bodies: with 10,000 Services the
/// bodies were 10 MB of a speaker's heap.
#[derive(Debug, Default)]
pub(super) struct Applied {
    objects: BTreeMap<&'static str, BTreeMap<String, u64>>,
    swept: BTreeSet<&'static str>,
}

/// A 64-bit digest of a status body's JSON (SipHash with fixed keys: the same
/// body gives the same digest for the life of the process, which is all
/// [`Applied`] compares across). A different body with the same digest would
/// not be applied; at 2^-64 per change that is not worth a copy of every body.
fn digest(v: &Value) -> u64 {
    use std::hash::Hasher;
    struct Feed(std::hash::DefaultHasher);
    impl std::io::Write for Feed {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.write(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut f = Feed(std::hash::DefaultHasher::new());
    // Writing JSON into a hasher cannot fail; a failure would only make the
    // object look changed.
    let _ = serde_json::to_writer(&mut f, v);
    f.0.finish()
}

/// One entry per item, built as the caller takes them: a full write of 10,000
/// Services holds one object's JSON at a time, not 10,000.
fn service_entries<'a, S: serde::Serialize + 'a>(
    prefix: &'a str,
    node: &'a str,
    items: impl Iterator<Item = (&'a str, &'a str, &'a S)> + 'a,
) -> impl Iterator<Item = Entry> + 'a {
    items.map(move |(ns, svc, st)| Entry {
        name: status_object_name(prefix, node, ns, svc),
        labels: json!({
            NODE_LABEL: label_value(node),
            "ferrolb.io/service-namespace": label_value(ns),
            "ferrolb.io/service-name": label_value(svc),
        }),
        status: json!(st),
    })
}

/// The Service key of a status object: (namespace, name).
type ServiceKey<'a> = (&'a str, &'a str);

/// An L2 status entry's key.
fn l2_key(s: &ServiceL2StatusStatus) -> ServiceKey<'_> {
    (
        s.service_namespace.as_deref().unwrap_or_default(),
        s.service_name.as_deref().unwrap_or_default(),
    )
}

/// The items of `now` that are new or differ from `before`, and the keys only
/// `before` has. Both lists come sorted by key from the speaker (a merge, no
/// map); unsorted ones are matched through a map.
fn service_changes<'a, S: PartialEq>(
    before: &'a [S],
    now: &'a [S],
    key: impl Fn(&'a S) -> ServiceKey<'a>,
) -> (Vec<(ServiceKey<'a>, &'a S)>, Vec<ServiceKey<'a>>) {
    let sorted = |v: &'a [S]| v.windows(2).all(|w| key(&w[0]) < key(&w[1]));
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    if sorted(before) && sorted(now) {
        let (mut b, mut n) = (before.iter().peekable(), now.iter().peekable());
        loop {
            match (b.peek(), n.peek()) {
                (None, None) => break,
                (Some(o), None) => {
                    removed.push(key(o));
                    b.next();
                }
                (None, Some(x)) => {
                    changed.push((key(x), *x));
                    n.next();
                }
                (Some(o), Some(x)) => match key(o).cmp(&key(x)) {
                    std::cmp::Ordering::Less => {
                        removed.push(key(o));
                        b.next();
                    }
                    std::cmp::Ordering::Greater => {
                        changed.push((key(x), *x));
                        n.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if o != x {
                            changed.push((key(x), *x));
                        }
                        b.next();
                        n.next();
                    }
                },
            }
        }
        return (changed, removed);
    }
    let old: std::collections::HashMap<ServiceKey<'a>, &'a S> =
        before.iter().map(|s| (key(s), s)).collect();
    let new_keys: std::collections::HashSet<ServiceKey<'a>> = now.iter().map(&key).collect();
    changed.extend(
        now.iter()
            .filter(|s| old.get(&key(s)).is_none_or(|o| *o != *s))
            .map(|s| (key(s), s)),
    );
    removed.extend(before.iter().map(&key).filter(|k| !new_keys.contains(k)));
    (changed, removed)
}

impl KubeSink {
    /// As [`KubeSink::write_service_statuses`], when `before` is what the last
    /// successful write made: per-Service objects are compared as typed
    /// statuses and only the changed ones are built and applied. With 10,000
    /// Services, building every object's JSON to find the one that changed took
    /// 150 ms per change.
    pub async fn update_service_statuses(
        &self,
        before: &SpeakerStatusFile,
        status: &SpeakerStatusFile,
    ) -> Result<(), SourceError> {
        let swept = {
            let a = self.applied();
            a.swept.contains("ServiceL2Status") && a.swept.contains("ServiceBGPStatus")
        };
        if !swept || before.node != status.node {
            return self.write_service_statuses(status).await;
        }
        let node = status.node.as_str();
        let head = SpeakerStatusFile {
            node: status.node.clone(),
            conditions: status.conditions.clone(),
            sessions: status.sessions.clone(),
            ..Default::default()
        };
        let (l2, l2_gone) = service_changes(&before.l2, &status.l2, l2_key);
        // The speaker hands over the same list until it changes.
        let (bgp, bgp_gone) = if before.bgp.same(&status.bgp) {
            (Vec::new(), Vec::new())
        } else {
            service_changes(&before.bgp, &status.bgp, |s| (s.namespace(), s.name()))
        };
        let gone = |prefix: &str, keys: Vec<ServiceKey<'_>>| -> Vec<String> {
            keys.into_iter()
                .map(|(ns, n)| status_object_name(prefix, node, ns, n))
                .collect()
        };
        let l2 =
            service_entries("l2", node, l2.into_iter().map(|((ns, n), s)| (ns, n, s))).collect();
        let bgp =
            service_entries("bgp", node, bgp.into_iter().map(|((ns, n), s)| (ns, n, s))).collect();
        let results = [
            self.sync_head(&head).await,
            self.sync_delta::<ServiceL2Status>("ServiceL2Status", l2, gone("l2", l2_gone))
                .await,
            self.sync_delta::<ServiceBGPStatus>("ServiceBGPStatus", bgp, gone("bgp", bgp_gone))
                .await,
        ];
        results.into_iter().collect()
    }

    /// Applies `entries` where they differ from what was applied and deletes
    /// `removed`, leaving the kind's other objects alone.
    async fn sync_delta<K: StatusObject>(
        &self,
        kind: &'static str,
        entries: Vec<Entry>,
        removed: Vec<String>,
    ) -> Result<(), SourceError> {
        let api: Api<K> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut first_err = None;
        for e in entries {
            let known = {
                let a = self.applied();
                let last = a.objects.get(kind).and_then(|m| m.get(&e.name));
                if last == Some(&digest(&e.status)) {
                    continue;
                }
                last.is_some()
            };
            match self.apply_object(&api, kind, &e, known).await {
                Ok(()) => {
                    self.applied()
                        .objects
                        .entry(kind)
                        .or_default()
                        .insert(e.name, digest(&e.status));
                }
                Err(err) => {
                    first_err.get_or_insert(err);
                }
            }
        }
        for name in removed {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    first_err
                        .get_or_insert(api_err(format!("{kind} {}/{name}", self.namespace), e));
                    continue;
                }
            }
            if let Some(m) = self.applied().objects.get_mut(kind) {
                m.remove(&name);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

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
        let l2 = service_entries(
            "l2",
            node,
            status.l2.iter().map(|s| {
                let (ns, n) = l2_key(s);
                (ns, n, s)
            }),
        );
        let bgp = service_entries(
            "bgp",
            node,
            status.bgp.iter().map(|s| (s.namespace(), s.name(), s)),
        );
        let results = [
            self.sync_head(status).await,
            self.sync::<ServiceL2Status>("ServiceL2Status", node, l2)
                .await,
            self.sync::<ServiceBGPStatus>("ServiceBGPStatus", node, bgp)
                .await,
        ];
        results.into_iter().collect()
    }

    /// The node's `SpeakerStatus` and its `BGPSessionState`s (few objects: always
    /// compared whole).
    async fn sync_head(&self, status: &SpeakerStatusFile) -> Result<(), SourceError> {
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
        let results = [
            self.sync::<SpeakerStatus>("SpeakerStatus", node, me).await,
            self.sync::<BGPSessionState>("BGPSessionState", node, sessions)
                .await,
        ];
        results.into_iter().collect()
    }

    /// Applies the entries of `kind` whose status changed and deletes the objects
    /// of `node` that are no longer wanted.
    async fn sync<K: StatusObject>(
        &self,
        kind: &'static str,
        node: &str,
        entries: impl IntoIterator<Item = Entry> + Send,
    ) -> Result<(), SourceError> {
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
            let d = digest(&e.status);
            if before.get(&e.name) == Some(&d) {
                now.insert(e.name, d);
                continue;
            }
            match self
                .apply_object(&api, kind, &e, before.contains_key(&e.name))
                .await
            {
                Ok(()) => {
                    now.insert(e.name, d);
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
                        now.insert(name.clone(), *v);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_by_service_sorted_or_not() {
        let s = |ns: &str, n: &str, v: u32| (ns.to_string(), n.to_string(), v);
        let before = vec![s("a", "x", 1), s("a", "y", 1), s("b", "z", 1)];
        let now = vec![s("a", "w", 1), s("a", "y", 2), s("b", "z", 1)];
        fn key(t: &(String, String, u32)) -> ServiceKey<'_> {
            (&t.0, &t.1)
        }
        type Rec = (String, String, u32);
        type Changes<'a> = (Vec<(ServiceKey<'a>, &'a Rec)>, Vec<ServiceKey<'a>>);
        let show = |(c, r): Changes<'_>| {
            let c: Vec<String> = c.iter().map(|((_, n), v)| format!("{n}={}", v.2)).collect();
            let r: Vec<String> = r.iter().map(|(_, n)| n.to_string()).collect();
            (c, r)
        };
        let want = (
            vec!["w=1".to_string(), "y=2".to_string()],
            vec!["x".to_string()],
        );
        assert_eq!(show(service_changes(&before, &now, key)), want);
        let mut shuffled = now.clone();
        shuffled.reverse();
        let (mut c, r) = show(service_changes(&before, &shuffled, key));
        c.sort();
        assert_eq!((c, r), want, "an unsorted list gives the same changes");
    }
}
