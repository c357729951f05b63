//! The routes one node announces to one peer (pure): every address of a Service
//! of ours whose pool a BGPAdvertisement selects for this node and this peer.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::config::{CommunityValue, Config, Peer, any_matches};
use ferrolb_crds::services::{ingress_ips, is_ours};
use ipnet::IpNet;

use crate::election::{NodeView, nodes_with_ready_endpoints};

/// Attributes of a route that do not depend on the session.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteSpec {
    /// LOCAL_PREF (sent on iBGP sessions only).
    pub local_pref: Option<u32>,
    /// Standard communities, sorted and unique.
    pub communities: Vec<u32>,
    /// Large communities, sorted and unique.
    pub large_communities: Vec<(u32, u32, u32)>,
}

/// The peers this node opens sessions to.
pub fn peers_for<'a>(config: &'a Config, node: &NodeView) -> Vec<&'a Peer> {
    config
        .peers
        .values()
        .filter(|p| any_matches(&p.node_selectors, &node.labels))
        .collect()
}

/// The Services behind each announced prefix, as (namespace, name).
pub type ServicesOf = BTreeMap<(String, String), BTreeSet<IpNet>>;

/// Desired routes of `node` toward `peer`.
pub fn routes(
    snap: &ClusterSnapshot,
    config: &Config,
    class: &str,
    node: &NodeView,
    peer: &Peer,
) -> BTreeMap<IpNet, RouteSpec> {
    routes_with_services(snap, config, class, node, peer).0
}

/// Desired routes of `node` toward `peer`, with the Services each one carries.
pub fn routes_with_services(
    snap: &ClusterSnapshot,
    config: &Config,
    class: &str,
    node: &NodeView,
    peer: &Peer,
) -> (BTreeMap<IpNet, RouteSpec>, ServicesOf) {
    let mut out: BTreeMap<IpNet, RouteSpec> = BTreeMap::new();
    let mut services = ServicesOf::new();
    if !node.usable {
        return (out, services);
    }
    for svc in snap.services.iter().filter(|s| is_ours(s, class)) {
        let Some(spec) = &svc.spec else { continue };
        if spec.external_traffic_policy.as_deref() == Some("Local")
            && !nodes_with_ready_endpoints(snap, svc).contains(&node.name)
        {
            continue;
        }
        let ips = ingress_ips(svc);
        for ip in ips {
            let Some(pool) = config.pools.values().find(|p| p.contains(&ip)) else {
                continue;
            };
            for ad in config.bgp_advertisements.values() {
                if !ad.pools.contains(&pool.name)
                    || !any_matches(&ad.node_selectors, &node.labels)
                    || !(ad.peers.is_empty() || ad.peers.contains(&peer.name))
                {
                    continue;
                }
                let len = match ip {
                    IpAddr::V4(_) => ad.aggregation_length,
                    IpAddr::V6(_) => ad.aggregation_length_v6,
                };
                let Ok(prefix) = IpNet::new(ip, len).map(|n| n.trunc()) else {
                    continue;
                };
                services
                    .entry((
                        svc.metadata
                            .namespace
                            .clone()
                            .unwrap_or_else(|| "default".into()),
                        svc.metadata.name.clone().unwrap_or_default(),
                    ))
                    .or_default()
                    .insert(prefix);
                let r = out.entry(prefix).or_default();
                r.local_pref = r.local_pref.max(ad.local_pref);
                for c in &ad.communities {
                    match *c {
                        CommunityValue::Standard(v) => r.communities.push(v),
                        CommunityValue::Large(a, b, c) => r.large_communities.push((a, b, c)),
                    }
                }
                r.communities.sort_unstable();
                r.communities.dedup();
                r.large_communities.sort_unstable();
                r.large_communities.dedup();
            }
        }
    }
    (out, services)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::source::yaml::parse_file;
    use std::path::Path;

    const YAML: &str = "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: routed}
spec: {addresses: [198.51.100.0/24, '2001:db8:100::/64']}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: a}
spec:
  communities: [65535:65282, large:64512:1:2]
  localPref: 50
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: aggregate-to-tor-b}
spec:
  aggregationLength: 24
  peers: [tor-b]
  nodeSelectors: [{matchLabels: {rack: r1}}]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: tor-a}
spec: {myASN: 64512, peerASN: 64512, peerAddress: 10.0.0.1}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: tor-b}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 10.0.0.2, nodeSelectors: [{matchLabels: {rack: r1}}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 198.51.100.7}, {ip: '2001:db8:100::7'}]}}
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec: {type: LoadBalancer, externalTrafficPolicy: Local}
status: {loadBalancer: {ingress: [{ip: 198.51.100.8}]}}
";

    fn setup() -> (ClusterSnapshot, Config) {
        let (objs, errs) = parse_file(Path::new("t.yaml"), YAML);
        assert!(errs.is_empty(), "{errs:?}");
        let mut s = ClusterSnapshot::default();
        for (_, o) in objs {
            s.add(o);
        }
        let (c, e) = s.config();
        assert!(e.is_empty(), "{e:?}");
        (s, c)
    }

    fn node(labels: &[(&str, &str)]) -> NodeView {
        NodeView {
            name: "n1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            usable: true,
        }
    }

    #[test]
    fn selection_by_peer_node_and_aggregation() {
        let (s, c) = setup();
        let plain = node(&[]);
        assert_eq!(
            peers_for(&c, &plain)
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["tor-a"]
        );
        let r = routes(&s, &c, "ferrolb.io/ferrolb", &plain, &c.peers["tor-a"]);
        let keys: Vec<String> = r.keys().map(ToString::to_string).collect();
        assert_eq!(
            keys,
            ["198.51.100.7/32", "2001:db8:100::7/128"],
            "no ready endpoint: the Local Service is not announced"
        );
        let v = &r[&"198.51.100.7/32".parse().unwrap()];
        assert_eq!(v.communities, vec![(65535 << 16) | 65282]);
        assert_eq!(v.large_communities, vec![(64512, 1, 2)]);
        assert_eq!(v.local_pref, Some(50));
        let rack = node(&[("rack", "r1")]);
        assert_eq!(peers_for(&c, &rack).len(), 2);
        let r = routes(&s, &c, "ferrolb.io/ferrolb", &rack, &c.peers["tor-b"]);
        let keys: Vec<String> = r.keys().map(ToString::to_string).collect();
        assert_eq!(
            keys,
            ["198.51.100.0/24", "198.51.100.7/32", "2001:db8:100::7/128"],
            "the aggregate only tor-b gets, and the host routes of the ad for every peer"
        );
        let down = NodeView {
            usable: false,
            ..rack
        };
        assert!(routes(&s, &c, "ferrolb.io/ferrolb", &down, &c.peers["tor-b"]).is_empty());
    }
}
