//! The lab's FerroLB directory: pools, advertisements, peers, nodes, Services and
//! their endpoints, as the YAML a user would write.

use std::fmt::Write as _;

/// The router's AS; every node speaks as [`NODE_ASN`].
pub const ROUTER_ASN: u32 = 64501;
/// The nodes' AS.
pub const NODE_ASN: u32 = 64500;
/// The router on the LAN.
pub const ROUTER_V4: &str = "10.77.0.1";
/// The router on the LAN, IPv6.
pub const ROUTER_V6: &str = "fd77::1";
/// Hold time of the lab's sessions: short, so the router drops a dead node quickly.
pub const HOLD_SECONDS: u32 = 3;
/// The port every Service listens on, and the backends' port.
pub const SERVICE_PORT: u16 = 80;
/// The port the backend "pods" listen on.
pub const BACKEND_PORT: u16 = 8080;

/// A Service of the lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabService {
    /// Name (namespace `default`).
    pub name: &'static str,
    /// Pool it asks for.
    pub pool: &'static str,
    /// PreferDualStack when true, else IPv4 only.
    pub dual_stack: bool,
    /// externalTrafficPolicy Local.
    pub local: bool,
    /// Nodes (1-based) with a ready backend.
    pub backends: Vec<usize>,
}

/// The lab's Services: one L2, one BGP, one BGP with `externalTrafficPolicy: Local`
/// and backends on every node but the first (so that node must not announce it).
pub fn services(nodes: usize) -> Vec<LabService> {
    let all: Vec<usize> = (1..=nodes).collect();
    vec![
        LabService {
            name: "web",
            pool: "lan",
            dual_stack: true,
            local: false,
            backends: all.clone(),
        },
        LabService {
            name: "shop",
            pool: "routed",
            dual_stack: true,
            local: false,
            backends: all,
        },
        LabService {
            name: "api",
            pool: "routed",
            dual_stack: false,
            local: true,
            backends: (2..=nodes).collect(),
        },
    ]
}

/// A backend pod's IPv4 address on node `i`.
pub fn pod_v4(i: usize) -> String {
    format!("10.244.{i}.2")
}

/// A backend pod's IPv6 address on node `i`.
pub fn pod_v6(i: usize) -> String {
    format!("fd44:0:0:{i}::2")
}

/// Pools, advertisements and peers.
pub fn ferrolb_objects() -> String {
    format!(
        "# L2 pool: addresses on the LAN itself, answered by ARP/NDP from one node.
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: lan}}
spec:
  addresses: [10.77.0.200-10.77.0.219, fd77::200-fd77::219]
  autoAssign: false
---
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {{name: lan}}
spec:
  ipAddressPools: [lan]
---
# BGP pool: addresses off the LAN, routed to the nodes by the router.
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: routed}}
spec:
  addresses: [198.51.100.0/28, 2001:db8:77::/124]
  autoAssign: false
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: routed}}
spec:
  ipAddressPools: [routed]
  communities: [64500:100]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {{name: router-v4}}
spec: {{myASN: {NODE_ASN}, peerASN: {ROUTER_ASN}, peerAddress: {ROUTER_V4}, holdTime: {HOLD_SECONDS}s, connectTime: 1s, disableMP: true}}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {{name: router-v6}}
spec: {{myASN: {NODE_ASN}, peerASN: {ROUTER_ASN}, peerAddress: '{ROUTER_V6}', holdTime: {HOLD_SECONDS}s, connectTime: 1s, disableMP: true}}
"
    )
}

/// The Node objects; `not_ready` are marked `Ready: False` (what the node
/// controller does to a node that stopped reporting).
pub fn nodes(count: usize, node_v4: impl Fn(usize) -> String, not_ready: &[usize]) -> String {
    let mut out = String::new();
    for i in 1..=count {
        let ready = if not_ready.contains(&i) {
            "False"
        } else {
            "True"
        };
        let _ = write!(
            out,
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: n{i}}}\nstatus:\n  addresses: [{{type: InternalIP, address: {}}}]\n  conditions: [{{type: Ready, status: '{ready}'}}]\n",
            node_v4(i)
        );
    }
    out
}

/// The Services and one EndpointSlice per family for each.
pub fn service_objects(services: &[LabService]) -> String {
    let mut out = String::new();
    for (n, s) in services.iter().enumerate() {
        let families = if s.dual_stack {
            "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4, IPv6]\n"
        } else {
            "  ipFamilyPolicy: SingleStack\n  ipFamilies: [IPv4]\n"
        };
        let etp = if s.local { "Local" } else { "Cluster" };
        let _ = write!(
            out,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  creationTimestamp: '2026-01-0{day}T00:00:00Z'\n  annotations: {{ferrolb.io/address-pool: {pool}}}\nspec:\n  type: LoadBalancer\n{families}  externalTrafficPolicy: {etp}\n  selector: {{app: {name}}}\n  ports: [{{port: {SERVICE_PORT}, targetPort: {BACKEND_PORT}}}]\n",
            name = s.name,
            day = n + 1,
            pool = s.pool,
        );
        let mut slices = vec![("IPv4", pod_v4 as fn(usize) -> String)];
        if s.dual_stack {
            slices.push(("IPv6", pod_v6));
        }
        for (family, addr) in slices {
            let _ = write!(
                out,
                "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-{lower}\n  labels: {{kubernetes.io/service-name: {name}}}\naddressType: {family}\nendpoints:\n",
                name = s.name,
                lower = family.to_lowercase(),
            );
            for &i in &s.backends {
                let _ = writeln!(
                    out,
                    "- {{addresses: ['{}'], nodeName: n{i}, conditions: {{ready: true}}}}",
                    addr(i)
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::ClusterSnapshot;
    use ferrolb_crds::source::yaml::parse_file;

    #[test]
    fn every_document_loads_and_builds_a_config_without_error() {
        let text = format!(
            "{}{}{}",
            ferrolb_objects(),
            nodes(3, |i| format!("10.77.0.1{i}"), &[2]),
            service_objects(&services(3))
        );
        let (objects, errors) = parse_file(std::path::Path::new("lab.yaml"), &text);
        assert!(errors.is_empty(), "{errors:?}");
        // 6 FerroLB objects, 3 nodes, 3 Services, 2 + 2 + 1 EndpointSlices.
        assert_eq!(objects.len(), 6 + 3 + 3 + 5);
        let mut snapshot = ClusterSnapshot::default();
        for (_, o) in objects {
            snapshot.add(o);
        }
        let (config, errors) = snapshot.config();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(config.pools.len(), 2);
    }

    #[test]
    fn the_local_service_has_no_backend_on_node_1() {
        let text = service_objects(&services(3));
        let api = &text[text.find("name: api\n").unwrap()..];
        assert!(api.contains("nodeName: n2"), "{api}");
        assert!(api.contains("nodeName: n3"), "{api}");
        assert!(!api.contains("nodeName: n1"), "{api}");
        assert!(api.contains("externalTrafficPolicy: Local"), "{api}");
    }

    #[test]
    fn not_ready_nodes_say_so() {
        let text = nodes(2, |i| format!("10.0.0.{i}"), &[2]);
        assert!(text.contains("name: n1}\nstatus:\n  addresses: [{type: InternalIP, address: 10.0.0.1}]\n  conditions: [{type: Ready, status: 'True'}]"));
        assert!(
            text.contains("address: 10.0.0.2}]\n  conditions: [{type: Ready, status: 'False'}]")
        );
    }
}
