//! What this node announces (pure): from the election's layer 2 assignments and
//! the interfaces, the owned set of each interface and the speaker status.

use std::collections::{BTreeMap, BTreeSet};

use ferrolb_crds::source::status::SpeakerStatusFile;
use ferrolb_crds::v1beta1::{InterfaceStatus, ServiceL2StatusStatus};

use crate::election::L2Assignment;
use crate::layer2::interfaces::{Interface, for_address};
use crate::layer2::responder::Owned;

/// The layer 2 plan of one node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct L2Plan {
    /// Owned addresses per interface.
    pub per_interface: BTreeMap<String, Owned>,
    /// Status to publish.
    pub status: SpeakerStatusFile,
}

/// For each address this node owns whose advertisement names interfaces, none of
/// which exists and is up here: its Service (namespace, name) and a sentence
/// naming the address and each named interface's state (the address is not
/// announced at all).
pub fn unusable_named_interfaces(
    node: &str,
    assignments: &[L2Assignment],
    ifaces: &BTreeMap<String, Interface>,
) -> Vec<((String, String), String)> {
    assignments
        .iter()
        .filter(|a| a.node == node && !a.interfaces.is_empty())
        .filter(|a| for_address(ifaces, &a.ip, &a.interfaces).is_empty())
        .map(|a| {
            let states: Vec<String> = a
                .interfaces
                .iter()
                .map(|n| match ifaces.get(n) {
                    None => format!("{n}: not found"),
                    Some(i) if !i.up => format!("{n}: down"),
                    Some(_) => format!("{n}: no usable hardware address"),
                })
                .collect();
            let why = format!(
                "{} is not announced: the L2Advertisement names interfaces none of which is usable on node {node} ({})",
                a.ip,
                states.join(", ")
            );
            (a.service.clone(), why)
        })
        .collect()
}

/// Interfaces any layer 2 address would be announced on, whoever owns it: the
/// speaker keeps them open so that taking an address over costs no socket set-up.
pub fn standby_interfaces(
    assignments: &[L2Assignment],
    ifaces: &BTreeMap<String, Interface>,
) -> BTreeSet<String> {
    assignments
        .iter()
        .flat_map(|a| for_address(ifaces, &a.ip, &a.interfaces))
        .collect()
}

/// Plans what `node` answers for.
pub fn plan(
    node: &str,
    assignments: &[L2Assignment],
    ifaces: &BTreeMap<String, Interface>,
) -> L2Plan {
    let mut per_interface: BTreeMap<String, Owned> = BTreeMap::new();
    let mut by_service: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for a in assignments.iter().filter(|a| a.node == node) {
        let names = for_address(ifaces, &a.ip, &a.interfaces);
        if names.is_empty() {
            tracing::warn!(ip = %a.ip, "no usable interface to announce on");
        }
        for n in names {
            per_interface.entry(n.clone()).or_default().insert(a.ip);
            by_service.entry(a.service.clone()).or_default().insert(n);
        }
    }
    let l2 = by_service
        .into_iter()
        .map(|((ns, name), ifs)| ServiceL2StatusStatus {
            node: Some(node.to_string()),
            service_name: Some(name),
            service_namespace: Some(ns),
            interfaces: ifs
                .into_iter()
                .map(|name| InterfaceStatus { name })
                .collect(),
        })
        .collect();
    L2Plan {
        per_interface,
        status: SpeakerStatusFile {
            node: node.to_string(),
            l2,
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pnet_base::MacAddr;

    #[test]
    fn only_this_nodes_addresses_on_the_right_interfaces() {
        let ifaces: BTreeMap<String, Interface> = [("eth0", "10.0.0.0/24"), ("eth1", "fd00::/64")]
            .into_iter()
            .map(|(n, net)| {
                (
                    n.to_string(),
                    Interface {
                        name: n.into(),
                        index: 2,
                        mac: MacAddr::new(2, 0, 0, 0, 0, 1),
                        up: true,
                        virtual_: false,
                        subnets: vec![net.parse().unwrap()],
                    },
                )
            })
            .collect();
        let a = |svc: &str, ip: &str, node: &str| L2Assignment {
            service: ("default".into(), svc.into()),
            ip: ip.parse().unwrap(),
            node: node.into(),
            interfaces: BTreeSet::new(),
            successor: None,
        };
        let p = plan(
            "me",
            &[
                a("web", "10.0.0.5", "me"),
                a("web", "fd00::5", "me"),
                a("db", "10.0.0.6", "other"),
            ],
            &ifaces,
        );
        assert_eq!(p.per_interface["eth0"].v4.len(), 1);
        assert_eq!(p.per_interface["eth1"].v6.len(), 1);
        assert_eq!(p.status.l2.len(), 1);
        let names: Vec<_> = p.status.l2[0]
            .interfaces
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(names, ["eth0", "eth1"]);
        // An advertisement naming interfaces this node lacks or has down.
        let mut named = a("web", "10.0.0.5", "me");
        named.interfaces = ["eth9".to_string(), "eth0".to_string()].into();
        let mut down = ifaces.clone();
        if let Some(i) = down.get_mut("eth0") {
            i.up = false;
        }
        assert_eq!(
            unusable_named_interfaces("me", std::slice::from_ref(&named), &down),
            [(
                ("default".to_string(), "web".to_string()),
                "10.0.0.5 is not announced: the L2Advertisement names interfaces none of which is usable on node me (eth0: down, eth9: not found)".to_string()
            )]
        );
        assert!(unusable_named_interfaces("me", std::slice::from_ref(&named), &ifaces).is_empty());
        assert!(unusable_named_interfaces("other", &[named], &down).is_empty());
        // Only another node's address on eth0: eth0 stays open, idle; eth1 too
        // while an IPv6 address exists anywhere.
        let standby = standby_interfaces(&[a("db", "10.0.0.6", "other")], &ifaces);
        assert_eq!(standby, ["eth0".to_string()].into());
    }
}
