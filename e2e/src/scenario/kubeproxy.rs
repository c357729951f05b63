//! kube-proxy's job on a lab node, done with nftables: DNAT from a Service's
//! load-balancer address and port to a random ready backend, masquerading so the
//! reply comes back through the node. FerroLB only makes the address reach a node;
//! this is what carries the traffic from there, as on a real cluster.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::config::{BACKEND_PORT, LabService, SERVICE_PORT, pod_v4, pod_v6};

/// The nft table the lab owns in every node namespace.
pub const TABLE: &str = "ferrolb_lab_kubeproxy";

/// The ruleset for node `node`: every address of every Service, each to its
/// backends (only this node's for `externalTrafficPolicy: Local`, as kube-proxy
/// drops the rest).
pub fn ruleset(node: usize, services: &[(LabService, Vec<IpAddr>)]) -> String {
    let mut chains = String::new();
    let mut jumps = String::new();
    for (s, addrs) in services {
        let backends: Vec<usize> = s
            .backends
            .iter()
            .copied()
            .filter(|&b| !s.local || b == node)
            .collect();
        for addr in addrs {
            let (family, tag) = match addr {
                IpAddr::V4(_) => ("ip", "v4"),
                IpAddr::V6(_) => ("ip6", "v6"),
            };
            let chain = format!("svc_{}_{tag}", s.name);
            let _ = writeln!(
                jumps,
                "    {family} daddr {addr} tcp dport {SERVICE_PORT} jump {chain}"
            );
            if backends.is_empty() {
                // kube-proxy drops traffic for a Local Service without a local endpoint.
                let _ = writeln!(chains, "  chain {chain} {{\n    drop\n  }}");
                continue;
            }
            let mut map = Vec::new();
            for (k, &b) in backends.iter().enumerate() {
                let ep = format!("{chain}_ep{k}");
                let target = match addr {
                    IpAddr::V4(_) => format!("{}:{BACKEND_PORT}", pod_v4(b)),
                    IpAddr::V6(_) => format!("[{}]:{BACKEND_PORT}", pod_v6(b)),
                };
                let _ = writeln!(
                    chains,
                    "  chain {ep} {{\n    meta l4proto tcp dnat {family} to {target}\n  }}"
                );
                map.push(format!("{k} : jump {ep}"));
            }
            let _ = writeln!(
                chains,
                "  chain {chain} {{\n    numgen random mod {} vmap {{ {} }}\n  }}",
                backends.len(),
                map.join(", ")
            );
        }
    }
    format!(
        "table inet {TABLE} {{\n{chains}  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{jumps}  }}\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ct status dnat masquerade\n  }}\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::config::services;

    fn with_addresses() -> Vec<(LabService, Vec<IpAddr>)> {
        let s = services(3);
        vec![
            (
                s[0].clone(),
                vec!["10.77.0.200".parse().unwrap(), "fd77::200".parse().unwrap()],
            ),
            (s[2].clone(), vec!["198.51.100.1".parse().unwrap()]),
        ]
    }

    #[test]
    fn cluster_services_spread_over_every_backend_in_both_families() {
        let r = ruleset(1, &with_addresses());
        assert!(
            r.contains("ip daddr 10.77.0.200 tcp dport 80 jump svc_web_v4"),
            "{r}"
        );
        assert!(
            r.contains("ip6 daddr fd77::200 tcp dport 80 jump svc_web_v6"),
            "{r}"
        );
        assert!(r.contains("numgen random mod 3 vmap { 0 : jump svc_web_v4_ep0, 1 : jump svc_web_v4_ep1, 2 : jump svc_web_v4_ep2 }"), "{r}");
        assert!(r.contains("dnat ip to 10.244.3.2:8080"), "{r}");
        assert!(r.contains("dnat ip6 to [fd44:0:0:2::2]:8080"), "{r}");
        assert!(r.contains("ct status dnat masquerade"), "{r}");
    }

    #[test]
    fn local_services_use_only_this_nodes_backend_or_drop() {
        let on_2 = ruleset(2, &with_addresses());
        assert!(
            on_2.contains(
                "chain svc_api_v4 {\n    numgen random mod 1 vmap { 0 : jump svc_api_v4_ep0 }"
            ),
            "{on_2}"
        );
        assert!(
            on_2.contains(
                "chain svc_api_v4_ep0 {\n    meta l4proto tcp dnat ip to 10.244.2.2:8080"
            ),
            "{on_2}"
        );
        let on_1 = ruleset(1, &with_addresses());
        assert!(on_1.contains("chain svc_api_v4 {\n    drop\n  }"), "{on_1}");
    }
}
