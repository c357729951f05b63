//! Who announces what (pure). For each address of a Service of ours: the eligible
//! nodes, and for layer 2 the one owner among them.
//!
//! The owner is the eligible node with the highest preference weight, then the
//! highest rendezvous score of (node, address). Rendezvous hashing moves only the
//! addresses of a node that leaves, and spreads addresses evenly.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_crds::annotations::EXCLUDE_FROM_EXTERNAL_LB;
use ferrolb_crds::config::{Config, any_matches};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::Snapshot;

/// A node as the election sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Usable for announcing: Ready, network available, not excluded.
    pub usable: bool,
}

impl NodeView {
    /// From a Node object.
    pub fn from_node(n: &Node) -> Self {
        let labels = n.metadata.labels.clone().unwrap_or_default();
        let conds = n.status.as_ref().and_then(|s| s.conditions.as_ref());
        let cond = |t: &str| {
            conds
                .and_then(|c| c.iter().find(|c| c.type_ == t))
                .map(|c| c.status.as_str())
        };
        // A node with no Ready condition yet (file source) counts as ready.
        let ready = cond("Ready") != Some("False") && cond("Ready") != Some("Unknown");
        let network = cond("NetworkUnavailable") != Some("True");
        let excluded = labels.contains_key(EXCLUDE_FROM_EXTERNAL_LB);
        NodeView {
            name: n.metadata.name.clone().unwrap_or_default(),
            usable: ready && network && !excluded,
            labels,
        }
    }
}

/// Stable 64-bit score of (node, address): FNV-1a over both, then a SplitMix64
/// finaliser for avalanche. Fixed, so every speaker (and every version) agrees.
pub fn score(node: &str, ip: &IpAddr) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(node.as_bytes());
    feed(&[0]);
    match ip {
        IpAddr::V4(a) => feed(&a.octets()),
        IpAddr::V6(a) => feed(&a.octets()),
    }
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The owner among `candidates` (name, preference weight): highest weight, then
/// highest score, then name (a tie of 64-bit scores is only theoretical).
pub fn owner<'a>(
    candidates: impl IntoIterator<Item = (&'a str, u32)>,
    ip: &IpAddr,
) -> Option<&'a str> {
    ranked(candidates, ip).first().copied()
}

/// `candidates` best first, by the order of [`owner`]: the second is who takes
/// over when the owner goes.
pub fn ranked<'a>(
    candidates: impl IntoIterator<Item = (&'a str, u32)>,
    ip: &IpAddr,
) -> Vec<&'a str> {
    let mut c: Vec<(&str, u32, u64)> = candidates
        .into_iter()
        .map(|(n, w)| (n, w, score(n, ip)))
        .collect();
    c.sort_by(|(a, wa, sa), (b, wb, sb)| wb.cmp(wa).then(sb.cmp(sa)).then(a.cmp(b)));
    c.into_iter().map(|(n, _, _)| n).collect()
}

/// Layer 2 decision for one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L2Assignment {
    /// The Service.
    pub service: (String, String),
    /// The address.
    pub ip: IpAddr,
    /// The announcing node.
    pub node: String,
    /// Interfaces from the advertisements (empty: automatic).
    pub interfaces: BTreeSet<String>,
    /// Who takes over when the owner goes (it watches the owner closely).
    pub successor: Option<String>,
}

/// An address nobody announces in layer 2 mode: (namespace, name), address, why.
pub type Unannounced = ((String, String), IpAddr, NoOwner);

/// Why an address has no layer 2 owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoOwner {
    /// No L2Advertisement selects the address's pool.
    NotAdvertised,
    /// No node passes the advertisements' node selectors and health checks.
    NoEligibleNode,
    /// `externalTrafficPolicy: Local` and no node has a ready endpoint.
    NoReadyEndpoint,
}

/// Nodes with a ready endpoint of Service `ns/name` (from its EndpointSlices).
pub fn nodes_with_ready_endpoints(
    slices: &[Arc<EndpointSlice>],
    ns: &str,
    name: &str,
) -> BTreeSet<String> {
    slices
        .iter()
        .filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns)
                && s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name"))
                    .map(String::as_str)
                    == Some(name)
        })
        .flat_map(|s| s.endpoints.iter())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .filter_map(|e| e.node_name.clone())
        .collect()
}

/// The layer 2 owner of every address of every Service of ours with an address,
/// and the addresses nobody announces (those of a pool only BGP announces are
/// not among them).
/// `alive` are the nodes whose speaker runs (membership); `None` trusts the Node
/// objects alone.
pub fn l2_assignments(
    snap: &Snapshot,
    config: &Config,
    class: &str,
    alive: Option<&BTreeSet<String>>,
) -> (Vec<L2Assignment>, Vec<Unannounced>) {
    let nodes: Vec<NodeView> = snap
        .nodes
        .iter()
        .map(NodeView::from_node)
        .filter(|n| n.usable && alive.is_none_or(|a| a.contains(&n.name)))
        .collect();
    let mut out = Vec::new();
    let mut none = Vec::new();
    // Pools a BGPAdvertisement announces: their addresses are announced, just
    // not in layer 2 mode, so they are not reported as unannounced.
    let bgp_pools: BTreeSet<&String> = config
        .bgp_advertisements
        .values()
        .flat_map(|a| a.pools.iter())
        .collect();
    for svc in snap.services.iter().filter(|s| s.is_ours(class)) {
        // Built only for the addresses reported: with 10,000 Services in BGP
        // mode, nothing here is, and two copied strings per Service were most
        // of the pass.
        let key = || svc.key();
        let local = svc.local;
        let mut with_endpoints: Option<BTreeSet<String>> = None;
        for &ip in &svc.ips {
            let Some(pool) = config.pools.values().find(|p| p.contains(&ip)) else {
                none.push((key(), ip, NoOwner::NotAdvertised));
                continue;
            };
            let ads: Vec<_> = config
                .l2_advertisements
                .values()
                .filter(|a| a.pools.contains(&pool.name))
                .collect();
            if ads.is_empty() {
                if !bgp_pools.contains(&pool.name) {
                    none.push((key(), ip, NoOwner::NotAdvertised));
                }
                continue;
            }
            if local && with_endpoints.is_none() {
                with_endpoints = Some(nodes_with_ready_endpoints(
                    &snap.endpoint_slices,
                    &svc.namespace,
                    &svc.name,
                ));
            }
            let mut candidates: Vec<(&str, u32)> = Vec::new();
            for n in &nodes {
                let allowing: Vec<_> = ads
                    .iter()
                    .filter(|a| any_matches(&a.node_selectors, &n.labels))
                    .collect();
                if allowing.is_empty() {
                    continue;
                }
                if with_endpoints
                    .as_ref()
                    .is_some_and(|e| !e.contains(&n.name))
                {
                    continue;
                }
                let weight = allowing
                    .iter()
                    .flat_map(|a| a.preferred_nodes.iter())
                    .filter(|(_, sel)| sel.matches(&n.labels))
                    .map(|(w, _)| *w)
                    .sum();
                candidates.push((n.name.as_str(), weight));
            }
            let order = ranked(candidates, &ip);
            match order.first().copied() {
                Some(node) => {
                    let labels = &nodes
                        .iter()
                        .find(|n| n.name == node)
                        .map(|n| n.labels.clone())
                        .unwrap_or_default();
                    let interfaces = ads
                        .iter()
                        .filter(|a| any_matches(&a.node_selectors, labels))
                        .flat_map(|a| a.interfaces.iter().cloned())
                        .collect();
                    out.push(L2Assignment {
                        service: key(),
                        ip,
                        node: node.to_string(),
                        interfaces,
                        successor: order.get(1).map(|s| s.to_string()),
                    });
                }
                None if with_endpoints.as_ref().is_some_and(BTreeSet::is_empty) => {
                    none.push((key(), ip, NoOwner::NoReadyEndpoint))
                }
                None => none.push((key(), ip, NoOwner::NoEligibleNode)),
            }
        }
    }
    (out, none)
}

#[cfg(test)]
mod tests;
