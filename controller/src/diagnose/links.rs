//! The links after the address: the Service itself, the pool, the
//! advertisements, and who announces (layer 2 owner, BGP peers).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::config::{Config, Pool};
use ferrolb_crds::source::status::SpeakerStatusFile;
use ferrolb_crds::v1beta1::BGPSessionStateStatus;
use ferrolb_speaker::bgp::routes::peers_for;
use ferrolb_speaker::election::{L2Assignment, NodeView};
use k8s_openapi::api::core::v1::{Node, Service};

use super::Link;

/// Condition type on a speaker's status for an address another host claims.
pub use ferrolb_speaker::conflict::ADDRESS_CONFLICT;
use ferrolb_speaker::findings::{INTERFACE_UNAVAILABLE, STRICT_ARP_DISABLED, strict_arp};

/// The Service link: it exists, is a LoadBalancer, and has our class.
pub fn service_link(svc: Option<&Service>, key: &str, class: &str) -> Link {
    let Some(svc) = svc else {
        return Link::broken(
            "service",
            "NotFound",
            format!("no Service {key}"),
            "check the namespace and name (kubectl get services -A)",
        );
    };
    let spec = svc.spec.clone().unwrap_or_default();
    let type_ = spec.type_.unwrap_or_else(|| "ClusterIP".into());
    if type_ != "LoadBalancer" {
        return Link::broken(
            "service",
            "NotLoadBalancer",
            format!("spec.type is {type_}"),
            format!("set spec.type: LoadBalancer on Service {key}"),
        );
    }
    match spec.load_balancer_class {
        Some(c) if c != class => Link::broken(
            "service",
            "OtherClass",
            format!("spec.loadBalancerClass is {c}; this FerroLB serves {class}"),
            format!(
                "recreate Service {key} without spec.loadBalancerClass or with {class} (the field is immutable), or run FerroLB with --load-balancer-class {c}"
            ),
        ),
        Some(c) => Link::ok("service", "Served", format!("LoadBalancer, class {c}")),
        None => Link::ok("service", "Served", "LoadBalancer, no class (served)"),
    }
}

/// The pool link: the valid pool holding the addresses.
pub fn pool_link<'a>(config: &'a Config, ips: &[IpAddr]) -> (Link, Option<&'a Pool>) {
    let pool = ips
        .first()
        .and_then(|ip| config.pools.values().find(|p| p.contains(ip)));
    match pool {
        Some(p) => {
            let ranges: Vec<String> = p
                .ranges
                .iter()
                .map(|r| match r.to_cidrs().as_slice() {
                    [one] => one.to_string(),
                    _ => format!("{}-{}", r.start(), r.end()),
                })
                .collect();
            (
                Link::ok(
                    "pool",
                    "ValidPool",
                    format!("IPAddressPool {} ({})", p.name, ranges.join(", ")),
                ),
                Some(p),
            )
        }
        None => (
            Link::broken(
                "pool",
                "NoPool",
                "the address is in no valid IPAddressPool (deleted, shrunk or invalid)",
                "restore the IPAddressPool, or see its Ready condition for what is invalid; the controller re-allocates once pools change",
            ),
            None,
        ),
    }
}

/// The advertisement link: which L2Advertisements and BGPAdvertisements select
/// the pool. Returns their names per mode.
pub fn advertisement_link(
    config: &Config,
    pool: &Pool,
    ips: &[IpAddr],
) -> (Link, Vec<String>, Vec<String>) {
    let l2: Vec<String> = config
        .l2_advertisements
        .values()
        .filter(|a| a.pools.contains(&pool.name))
        .map(|a| a.name.clone())
        .collect();
    let bgp: Vec<String> = config
        .bgp_advertisements
        .values()
        .filter(|a| a.pools.contains(&pool.name))
        .map(|a| a.name.clone())
        .collect();
    let mut details = Vec::new();
    for a in config.l2_advertisements.values() {
        if !l2.contains(&a.name) {
            details.push(format!(
                "L2Advertisement {} selects {} only",
                a.name,
                names(&a.pools)
            ));
        }
    }
    for a in config.bgp_advertisements.values() {
        if !bgp.contains(&a.name) {
            details.push(format!(
                "BGPAdvertisement {} selects {} only",
                a.name,
                names(&a.pools)
            ));
        }
    }
    let link = if l2.is_empty() && bgp.is_empty() {
        let addrs: Vec<String> = ips.iter().map(ToString::to_string).collect();
        Link::broken(
            "advertisement",
            "NotAdvertised",
            format!(
                "{} assigned but never announced: no L2Advertisement or BGPAdvertisement selects IPAddressPool {}",
                addrs.join(", "),
                pool.name
            ),
            format!(
                "create an L2Advertisement with spec.ipAddressPools: [{}] (an empty spec selects every pool), or a BGPAdvertisement selecting it",
                pool.name
            ),
        )
    } else {
        let mut parts = Vec::new();
        if !l2.is_empty() {
            parts.push(format!("L2Advertisement {}", l2.join(", ")));
        }
        if !bgp.is_empty() {
            parts.push(format!("BGPAdvertisement {}", bgp.join(", ")));
        }
        Link::ok("advertisement", "Advertised", parts.join("; "))
    };
    (link.with_details(details), l2, bgp)
}

fn names(s: &BTreeSet<String>) -> String {
    if s.is_empty() {
        "no pool".into()
    } else {
        s.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn speaker<'a>(speakers: &'a [SpeakerStatusFile], node: &str) -> Option<&'a SpeakerStatusFile> {
    speakers.iter().find(|s| s.node == node)
}

/// A conflict a speaker reports for `ip`: the condition's message.
fn conflict(s: &SpeakerStatusFile, ip: &IpAddr) -> Option<String> {
    let needle = format!(" {ip} ");
    s.conditions
        .iter()
        .find(|c| c.type_ == ADDRESS_CONFLICT && c.status == "True" && c.message.contains(&needle))
        .map(|c| c.message.clone())
}

/// The message of a condition that holds on a speaker.
fn finding<'a>(s: &'a SpeakerStatusFile, type_: &str) -> Option<&'a str> {
    s.conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| c.message.as_str())
}

/// The part of an InterfaceUnavailable message about `ip` (the speaker writes
/// one sentence per address, starting with it, joined by "; ").
fn unusable_interfaces(s: &SpeakerStatusFile, ip: &IpAddr) -> Option<String> {
    let start = format!("{ip} is not announced");
    finding(s, INTERFACE_UNAVAILABLE)?
        .split("; ")
        .find(|p| p.starts_with(&start))
        .map(String::from)
}

/// The layer 2 owner link: the elected node per address, confirmed by its
/// speaker's status when there is one, and no foreign host answering.
pub fn l2_owner_link(
    ns: &str,
    name: &str,
    ips: &[IpAddr],
    assignments: &[L2Assignment],
    speakers: &[SpeakerStatusFile],
) -> Link {
    let mut details = Vec::new();
    let mut owners = Vec::new();
    for ip in ips {
        let Some(a) = assignments
            .iter()
            .find(|a| a.ip == *ip && a.service.0 == ns && a.service.1 == name)
        else {
            return Link::broken(
                "l2Owner",
                "NoOwner",
                format!("no node is elected for {ip}"),
                "see the eligible nodes above",
            );
        };
        let successor = a
            .successor
            .as_deref()
            .map(|s| format!(", successor {s}"))
            .unwrap_or_default();
        details.push(format!("{ip}: elected {}{successor}", a.node));
        owners.push((ip, a.node.clone()));
    }
    if speakers.is_empty() {
        let list: Vec<String> = owners
            .iter()
            .map(|(ip, n)| format!("{ip} on {n}"))
            .collect();
        return Link::ok(
            "l2Owner",
            "Elected",
            format!(
                "{} (elected; no speaker status to confirm)",
                list.join(", ")
            ),
        )
        .with_details(details);
    }
    for (ip, node) in &owners {
        let st = speaker(speakers, node);
        if let Some(msg) = st.and_then(|s| conflict(s, ip)) {
            return Link::broken(
                "l2Owner",
                "AddressConflict",
                msg,
                format!(
                    "find the host with that MAC and remove {ip} from it, or take {ip} out of the IPAddressPool"
                ),
            )
            .with_details(details);
        }
        let announced = st.is_some_and(|s| {
            s.l2.iter().any(|e| {
                e.service_namespace.as_deref() == Some(ns)
                    && e.service_name.as_deref() == Some(name)
            })
        });
        if !announced {
            if let Some(why) = st.and_then(|s| unusable_interfaces(s, ip)) {
                return Link::broken(
                    "l2Owner",
                    "InterfaceUnavailable",
                    why,
                    format!(
                        "bring the interface up on node {node}, or change spec.interfaces of the L2Advertisement to interfaces node {node} has (empty: the interface of the address's subnet)"
                    ),
                )
                .with_details(details);
            }
            return Link::broken(
                "l2Owner",
                "NotAnnounced",
                format!("node {node} is elected for {ip} but its speaker does not report announcing it"),
                format!(
                    "check ferrolb-speaker on node {node}: its log names the cause (interface missing, no CAP_NET_RAW)"
                ),
            )
            .with_details(details);
        }
    }
    // Announced, but with kube-proxy in ipvs mode and no strictARP every node's
    // kernel answers too: the owners' reports first, then any other speaker's.
    let reporters = owners
        .iter()
        .filter_map(|(_, n)| speaker(speakers, n))
        .chain(speakers.iter());
    for s in reporters {
        if let Some(msg) = finding(s, STRICT_ARP_DISABLED) {
            let summary = msg.split_once("; fix: ").map_or(msg, |(what, _)| what);
            return Link::broken("l2Owner", "StrictARPDisabled", summary, strict_arp::FIX)
                .with_details(details);
        }
    }
    let list: Vec<String> = owners
        .iter()
        .map(|(ip, n)| {
            let ifaces: Vec<String> = speaker(speakers, n)
                .into_iter()
                .flat_map(|s| s.l2.iter())
                .filter(|e| {
                    e.service_namespace.as_deref() == Some(ns)
                        && e.service_name.as_deref() == Some(name)
                })
                .flat_map(|e| e.interfaces.iter().map(|i| i.name.clone()))
                .collect();
            if ifaces.is_empty() {
                format!("{n} answers for {ip}")
            } else {
                format!("{n} answers for {ip} on {}", ifaces.join(", "))
            }
        })
        .collect();
    Link::ok("l2Owner", "Announced", list.join("; ")).with_details(details)
}

/// The BGP link: the peers of the announcing nodes that the advertisements
/// allow, and which of them carry the Service over an established session.
/// The BGPPeers that carry `pool`'s routes from `node`: the peers selecting the
/// node, narrowed by `spec.peers` of the pool's BGPAdvertisements that select it
/// (the speaker's choice, `bgp::routes`).
pub fn pool_peers(config: &Config, pool: &str, node: &NodeView) -> Vec<String> {
    let ads: Vec<_> = config
        .bgp_advertisements
        .values()
        .filter(|a| {
            a.pools.contains(pool)
                && ferrolb_crds::config::any_matches(&a.node_selectors, &node.labels)
        })
        .collect();
    peers_for(config, node)
        .into_iter()
        .filter(|p| {
            ads.iter()
                .any(|a| a.peers.is_empty() || a.peers.contains(&p.name))
        })
        .map(|p| p.name.clone())
        .collect()
}

/// The broken peers link when no BGPPeer carries the routes of the announcing nodes.
pub fn no_peer_link(announcing: &[String]) -> Link {
    Link::broken(
        "bgpPeers",
        "NoPeer",
        format!("no BGPPeer applies to {}", announcing.join(", ")),
        "create a BGPPeer, or fix spec.nodeSelectors of the BGPPeers or spec.peers of the BGPAdvertisements",
    )
}

/// The fix for sessions that are down, naming the peers.
pub fn peers_down_fix(peers: &[String]) -> String {
    format!(
        "check spec.peerAddress, spec.peerASN, spec.myASN and the password of BGPPeer {} against the router, and that the router accepts TCP 179 from the nodes",
        peers.join(", ")
    )
}

pub fn bgp_peers_link(
    config: &Config,
    pool: &Pool,
    ns: &str,
    name: &str,
    nodes: &[Node],
    announcing: &[String],
    speakers: &[SpeakerStatusFile],
) -> Link {
    let mut details = Vec::new();
    let mut configured = 0;
    let mut established = 0;
    let mut down = Vec::new();
    for n in nodes {
        let view = NodeView::from_node(n);
        if !announcing.contains(&view.name) {
            continue;
        }
        let peers = pool_peers(config, &pool.name, &view);
        let sessions: BTreeMap<&str, &BGPSessionStateStatus> = speaker(speakers, &view.name)
            .into_iter()
            .flat_map(|s| s.sessions.iter())
            .filter_map(|s| Some((s.peer.as_deref()?, s)))
            .collect();
        let up: Vec<String> = speaker(speakers, &view.name)
            .into_iter()
            .flat_map(|s| s.bgp.iter())
            .filter(|e| e.namespace() == ns && e.name() == name)
            .flat_map(|e| e.to.peers.iter().map(|p| p.to_string()))
            .collect();
        configured += peers.len();
        let states: Vec<String> = peers
            .iter()
            .map(|p| {
                if speakers.is_empty() {
                    format!("{p} (state unknown)")
                } else if up.contains(p) {
                    established += 1;
                    format!("{p} Established")
                } else {
                    down.push(p.clone());
                    match sessions.get(p.as_str()) {
                        Some(st) if st.bgp_status.as_deref() == Some("Established") => {
                            let why: Vec<String> = st
                                .withheld
                                .iter()
                                .map(|w| format!("{} withheld: {}", w.family, w.reason))
                                .collect();
                            if why.is_empty() {
                                format!("{p} Established but not carrying this Service's prefix")
                            } else {
                                format!(
                                    "{p} Established but not carrying this Service's prefix ({})",
                                    why.join("; ")
                                )
                            }
                        }
                        Some(st) => format!(
                            "{p} {}{}",
                            st.bgp_status.as_deref().unwrap_or("down"),
                            st.last_error
                                .as_deref()
                                .map(|e| format!(" (last error: {e})"))
                                .unwrap_or_default()
                        ),
                        None => format!("{p} down"),
                    }
                }
            })
            .collect();
        details.push(if states.is_empty() {
            format!("{}: no BGPPeer", view.name)
        } else {
            format!("{}: {}", view.name, states.join(", "))
        });
    }
    if configured == 0 {
        return no_peer_link(announcing).with_details(details);
    }
    if speakers.is_empty() {
        return Link::ok(
            "bgpPeers",
            "PeersConfigured",
            "peers configured (session state unknown: no speaker status)",
        )
        .with_details(details);
    }
    if established == 0 {
        down.sort();
        down.dedup();
        return Link::broken(
            "bgpPeers",
            "PeersDown",
            "every BGP session of the announcing nodes is down",
            peers_down_fix(&down),
        )
        .with_details(details);
    }
    Link::ok(
        "bgpPeers",
        "Established",
        format!("{established} established session(s) carry the routes"),
    )
    .with_details(details)
}
