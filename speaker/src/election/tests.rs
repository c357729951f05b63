use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::Snapshot;
use ferrolb_crds::source::yaml::parse_file_as;
use proptest::prelude::*;

use super::*;

fn v4(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32.wrapping_add(i)))
}

#[test]
fn spreads_1000_addresses_within_ten_percent_of_even_on_three_nodes() {
    for (name, ips) in [
        ("IPv4", (0..1000).map(v4).collect::<Vec<_>>()),
        (
            "IPv6",
            (0..1000u128)
                .map(|i| IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | i)))
                .collect(),
        ),
    ] {
        let mut counts = BTreeMap::new();
        for ip in &ips {
            let o = owner([("node-a", 0), ("node-b", 0), ("node-c", 0)], ip).unwrap();
            *counts.entry(o).or_insert(0) += 1;
        }
        for (n, c) in &counts {
            assert!(
                (300..=367).contains(c),
                "{name}: {n} owns {c} of 1000: {counts:?}"
            );
        }
    }
}

#[test]
fn preference_weight_beats_the_hash() {
    let ip = v4(7);
    let by_hash = owner([("a", 0), ("b", 0)], &ip).unwrap();
    let other = if by_hash == "a" { "b" } else { "a" };
    assert_eq!(owner([(by_hash, 0), (other, 10)], &ip), Some(other));
    assert_eq!(owner(std::iter::empty(), &ip), None);
}

proptest! {
    #[test]
    fn the_owner_does_not_depend_on_candidate_order(n in 1usize..8, ip in any::<u32>(), rot in 0usize..8) {
        let names: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();
        let mut a: Vec<(&str, u32)> = names.iter().map(|s| (s.as_str(), 0)).collect();
        let first = owner(a.clone(), &v4(ip));
        a.rotate_left(rot % n);
        a.reverse();
        prop_assert_eq!(owner(a, &v4(ip)), first);
    }

    #[test]
    fn a_leaving_node_moves_only_its_own_addresses(n in 2usize..8, gone in 0usize..8, base in any::<u32>()) {
        let names: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();
        let gone = &names[gone % n];
        for i in 0..200u32 {
            let ip = v4(base.wrapping_add(i));
            let before = owner(names.iter().map(|s| (s.as_str(), 0)), &ip).unwrap();
            let after = owner(names.iter().filter(|s| *s != gone).map(|s| (s.as_str(), 0)), &ip).unwrap();
            if before != gone {
                prop_assert_eq!(before, after);
            } else {
                prop_assert_ne!(after, gone.as_str());
            }
        }
    }

    #[test]
    fn the_successor_is_who_owns_the_address_once_the_owner_is_gone(
        n in 2usize..8, weights in proptest::collection::vec(0u32..3, 8), base in any::<u32>()
    ) {
        let names: Vec<String> = (0..n).map(|i| format!("node-{i}")).collect();
        let cands = || names.iter().zip(&weights).map(|(s, w)| (s.as_str(), *w));
        for i in 0..100u32 {
            let ip = v4(base.wrapping_add(i));
            let order = ranked(cands(), &ip);
            prop_assert_eq!(order.len(), n);
            prop_assert_eq!(Some(order[0]), owner(cands(), &ip));
            let without_owner = owner(cands().filter(|(s, _)| *s != order[0]), &ip);
            prop_assert_eq!(Some(order[1]), without_owner);
        }
    }
}

fn snapshot(yaml: &str) -> Snapshot {
    let (objs, errs) = parse_file_as(Path::new("t.yaml"), yaml);
    assert!(errs.is_empty(), "{errs:?}");
    let mut s = Snapshot::default();
    for (_, o) in objs {
        s.add(o);
    }
    s
}

const BASE: &str = "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan}
spec: {addresses: [10.0.0.0/24]}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: dark}
spec: {addresses: [10.9.0.0/24]}
---
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {name: lan}
spec:
  ipAddressPools: [lan]
  interfaces: [eth1]
  nodeSelectors: [{matchLabels: {l2: 'yes'}}]
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {l2: 'yes'}}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {l2: 'yes', node.kubernetes.io/exclude-from-external-load-balancers: ''}}
---
apiVersion: v1
kind: Node
metadata: {name: n3, labels: {l2: 'yes'}}
status:
  conditions: [{type: Ready, status: 'False'}]
---
apiVersion: v1
kind: Node
metadata: {name: n4, labels: {l2: 'no'}}
---
apiVersion: v1
kind: Node
metadata: {name: n5, labels: {l2: 'yes'}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 10.0.0.1}, {ip: 10.0.0.2}, {ip: 10.0.0.3}]}}
---
apiVersion: v1
kind: Service
metadata: {name: dark}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 10.9.0.1}]}}
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec: {type: LoadBalancer, externalTrafficPolicy: Local}
status: {loadBalancer: {ingress: [{ip: 10.0.0.7}]}}
---
apiVersion: v1
kind: Service
metadata: {name: local-none}
spec: {type: LoadBalancer, externalTrafficPolicy: Local}
status: {loadBalancer: {ingress: [{ip: 10.0.0.8}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: local-1, labels: {kubernetes.io/service-name: local}}
addressType: IPv4
endpoints:
- {addresses: [10.244.0.1], nodeName: n1, conditions: {ready: false}}
- {addresses: [10.244.0.2], nodeName: n5, conditions: {ready: true}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: local-none-1, labels: {kubernetes.io/service-name: local-none}}
addressType: IPv4
endpoints:
- {addresses: [10.244.0.3], nodeName: n1, conditions: {ready: false}}
";

#[test]
fn only_healthy_selected_unexcluded_nodes_announce() {
    let snap = snapshot(BASE);
    let (config, errors) = snap.config();
    assert!(errors.is_empty(), "{errors:?}");
    let (got, none) = l2_assignments(&snap, &config, "ferrolb.io/ferrolb", None);
    let owners: BTreeSet<&str> = got
        .iter()
        .filter(|a| a.service.1 == "web")
        .map(|a| a.node.as_str())
        .collect();
    assert!(
        owners.iter().all(|o| ["n1", "n5"].contains(o)),
        "{owners:?}: n2 excluded, n3 not ready, n4 not selected"
    );
    assert!(
        got.iter()
            .all(|a| a.interfaces == BTreeSet::from(["eth1".to_string()]))
    );
    let local: Vec<_> = got.iter().filter(|a| a.service.1 == "local").collect();
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].node, "n5", "the only node with a ready endpoint");
    let why: BTreeMap<&str, &NoOwner> = none.iter().map(|(k, _, w)| (k.1.as_str(), w)).collect();
    assert_eq!(why["dark"], &NoOwner::NotAdvertised);
    assert_eq!(why["local-none"], &NoOwner::NoReadyEndpoint);
    // Membership says n5 is gone: its addresses move to n1, and the Local Service,
    // whose only ready endpoint is on n5, is announced by nobody.
    let alive = BTreeSet::from([
        "n1".to_string(),
        "n2".to_string(),
        "n3".to_string(),
        "n4".to_string(),
    ]);
    let (got, none) = l2_assignments(&snap, &config, "ferrolb.io/ferrolb", Some(&alive));
    assert!(got.iter().all(|a| a.node == "n1"));
    assert!(
        none.iter()
            .any(|(k, _, w)| k.1 == "local" && *w == NoOwner::NoEligibleNode)
    );
}
