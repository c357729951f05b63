use std::path::Path;

use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::source::status::SpeakerStatusFile;
use ferrolb_crds::source::yaml::parse_file;
use ferrolb_crds::v1beta1::{
    BGPSessionStateStatus, InterfaceStatus, ServiceBGPStatusStatus, ServiceL2StatusStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::*;

const POOL: &str = "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan}
spec: {addresses: [10.0.0.0/29]}
";
const L2: &str = "
---
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2}
";
const NODES: &str = "
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {rack: r1}}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {rack: r2}}
";
/// A Service holding 10.0.0.5.
const WEB: &str = "
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 10.0.0.5}]}}
";
/// A Service without an address.
const PENDING: &str = "
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
";

fn snapshot(yaml: &str) -> ClusterSnapshot {
    let (objs, errs) = parse_file(Path::new("t.yaml"), yaml);
    assert!(errs.is_empty(), "{errs:?}");
    let mut s = ClusterSnapshot::default();
    for (_, o) in objs {
        s.add(o);
    }
    s.normalize();
    s
}

fn run(yaml: &str, speakers: &[SpeakerStatusFile], complete: bool) -> Diagnosis {
    let snap = snapshot(yaml);
    diagnose(
        &Input {
            snapshot: &snap,
            class: "ferrolb.io/ferrolb",
            speakers,
            speakers_complete: complete,
        },
        "default",
        "web",
    )
}

fn link<'a>(d: &'a Diagnosis, id: &str) -> &'a Link {
    d.links
        .iter()
        .find(|l| l.link == id)
        .unwrap_or_else(|| panic!("no link {id} in {d:#?}"))
}

/// The first broken link's (id, reason, fix).
fn broken(d: &Diagnosis) -> (&str, &str, &str) {
    let l = d
        .links
        .iter()
        .find(|l| l.status == Mark::Broken)
        .unwrap_or_else(|| panic!("nothing broken: {d:#?}"));
    assert_eq!(d.broken_link, Some(l.link));
    assert!(!d.reachable);
    (
        l.link,
        l.reason.as_str(),
        l.fix.as_deref().unwrap_or_default(),
    )
}

fn announcing(node: &str) -> SpeakerStatusFile {
    SpeakerStatusFile {
        node: node.into(),
        l2: vec![ServiceL2StatusStatus {
            node: Some(node.into()),
            service_name: Some("web".into()),
            service_namespace: Some("default".into()),
            interfaces: vec![InterfaceStatus {
                name: "eth0".into(),
            }],
        }],
        ..Default::default()
    }
}

fn idle(node: &str) -> SpeakerStatusFile {
    SpeakerStatusFile {
        node: node.into(),
        ..Default::default()
    }
}

fn owner_of(d: &Diagnosis) -> String {
    let l = link(d, "l2Owner");
    l.details[0]
        .split("elected ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap()
        .to_string()
}

#[test]
fn healthy_layer2_service_is_reachable_through_its_owner() {
    let yaml = format!("{POOL}{L2}{NODES}{WEB}");
    let first = run(&yaml, &[], false);
    let owner = owner_of(&first);
    let other = if owner == "n1" { "n2" } else { "n1" };
    let d = run(&yaml, &[announcing(&owner), idle(other)], true);
    assert!(d.reachable, "{d:#?}");
    assert_eq!(d.broken_link, None);
    let ids: Vec<_> = d.links.iter().map(|l| l.link).collect();
    assert_eq!(
        ids,
        [
            "service",
            "address",
            "pool",
            "advertisement",
            "l2Nodes",
            "l2Owner",
            "state"
        ]
    );
    assert!(d.links.iter().all(|l| l.status == Mark::Ok));
    assert_eq!(
        link(&d, "l2Owner").summary,
        format!("{owner} answers for 10.0.0.5 on eth0")
    );
    assert_eq!(link(&d, "pool").summary, "IPAddressPool lan (10.0.0.0/29)");
    assert_eq!(link(&d, "l2Nodes").summary, "n1, n2 may announce");
}

#[test]
fn pending_because_the_namespace_is_not_allowed_names_the_pool_field() {
    let yaml = format!(
        "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: team}}
spec:
  addresses: [10.0.0.0/29]
  serviceAllocation: {{namespaces: [team-a]}}
{L2}{NODES}{PENDING}"
    );
    let d = run(&yaml, &[], false);
    assert_eq!(
        broken(&d),
        (
            "address",
            "NoPoolAvailable",
            "add default to spec.serviceAllocation.namespaces of IPAddressPool team (or label Namespace default to match its spec.serviceAllocation.namespaceSelectors)"
        )
    );
    assert_eq!(
        link(&d, "address").details,
        [
            "IPAddressPool team: namespace default is neither in spec.serviceAllocation.namespaces nor selected by spec.serviceAllocation.namespaceSelectors (fix: add default to spec.serviceAllocation.namespaces of IPAddressPool team (or label Namespace default to match its spec.serviceAllocation.namespaceSelectors))"
        ]
    );
    let rest: Vec<_> = d.links.iter().skip(2).map(|l| (l.link, l.status)).collect();
    assert_eq!(
        rest,
        [
            ("pool", Mark::Skipped),
            ("advertisement", Mark::Skipped),
            ("nodes", Mark::Skipped),
            ("announcement", Mark::Skipped),
            ("state", Mark::Broken)
        ]
    );
}

#[test]
fn pending_lists_every_pool_with_its_own_reason() {
    let yaml = format!(
        "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: a-manual}}
spec: {{addresses: [10.0.0.0/29], autoAssign: false}}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: b-v6}}
spec: {{addresses: ['fd00::/120']}}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: c-labelled}}
spec:
  addresses: [10.0.1.0/29]
  serviceAllocation: {{serviceSelectors: [{{matchLabels: {{expose: yes}}}}]}}
{L2}{NODES}{PENDING}"
    );
    let d = run(&yaml, &[], false);
    let (id, reason, fix) = broken(&d);
    assert_eq!((id, reason), ("address", "NoPoolAvailable"));
    assert_eq!(
        fix,
        "annotate Service default/web with ferrolb.io/address-pool: a-manual, or set spec.autoAssign: true on IPAddressPool a-manual"
    );
    let details = &link(&d, "address").details;
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(details[0].starts_with("IPAddressPool a-manual: autoAssign is false"));
    assert!(details[1].starts_with("IPAddressPool b-v6: it has no IPv4 addresses (fix: add IPv4 addresses to spec.addresses of IPAddressPool b-v6"));
    assert!(details[2].starts_with("IPAddressPool c-labelled: the Service's labels do not match spec.serviceAllocation.serviceSelectors (fix: label Service default/web"));
}

#[test]
fn exhausted_pool() {
    let yaml = format!(
        "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: one}}
spec: {{addresses: [10.0.0.5/32]}}
{L2}{NODES}{PENDING}
---
apiVersion: v1
kind: Service
metadata: {{name: first, namespace: other, creationTimestamp: '2020-01-01T00:00:00Z'}}
spec: {{type: LoadBalancer, ports: [{{port: 81}}]}}
status: {{loadBalancer: {{ingress: [{{ip: 10.0.0.5}}]}}}}
"
    );
    let d = run(&yaml, &[], false);
    let (id, reason, _) = broken(&d);
    assert_eq!((id, reason), ("address", "PoolExhausted"));
    assert_eq!(
        link(&d, "address").details,
        ["IPAddressPool one: no free IPv4 address"]
    );
}

#[test]
fn requested_address_outside_every_pool_or_in_use() {
    let outside = format!(
        "{POOL}{L2}{NODES}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default, annotations: {{ferrolb.io/loadBalancerIPs: 192.0.2.1}}}}
spec: {{type: LoadBalancer, ports: [{{port: 80}}]}}
"
    );
    let d = run(&outside, &[], false);
    let (id, reason, fix) = broken(&d);
    assert_eq!((id, reason), ("address", "InvalidRequestedIP"));
    assert_eq!(
        link(&d, "address").summary,
        "pending, no address: metadata.annotations[ferrolb.io/loadBalancerIPs]: requested address 192.0.2.1 is in no IPAddressPool"
    );
    assert!(fix.starts_with("request an address inside an IPAddressPool"));

    let in_use = format!(
        "{POOL}{L2}{NODES}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default, annotations: {{ferrolb.io/loadBalancerIPs: 10.0.0.5}}}}
spec: {{type: LoadBalancer, ports: [{{port: 80}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: holder, namespace: default, creationTimestamp: '2020-01-01T00:00:00Z'}}
spec: {{type: LoadBalancer, ports: [{{port: 80}}]}}
status: {{loadBalancer: {{ingress: [{{ip: 10.0.0.5}}]}}}}
"
    );
    let d = run(&in_use, &[], false);
    let (id, reason, fix) = broken(&d);
    assert_eq!((id, reason), ("address", "RequestedIPInUse"));
    assert!(fix.contains("ferrolb.io/allow-shared-ip"), "{fix}");
}

#[test]
fn assigned_but_no_advertisement_selects_the_pool() {
    let yaml = format!(
        "{POOL}
---
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {{name: other}}
spec: {{addresses: [10.0.1.0/29]}}
---
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {{name: l2-other}}
spec: {{ipAddressPools: [other]}}
{NODES}{WEB}"
    );
    let d = run(&yaml, &[], false);
    assert_eq!(
        broken(&d),
        (
            "advertisement",
            "NotAdvertised",
            "create an L2Advertisement with spec.ipAddressPools: [lan] (an empty spec selects every pool), or a BGPAdvertisement selecting it"
        )
    );
    let l = link(&d, "advertisement");
    assert_eq!(
        l.summary,
        "10.0.0.5 assigned but never announced: no L2Advertisement or BGPAdvertisement selects IPAddressPool lan"
    );
    assert_eq!(l.details, ["L2Advertisement l2-other selects other only"]);
}

#[test]
fn node_selectors_that_match_nothing_name_the_advertisement() {
    let yaml = format!(
        "{POOL}
---
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {{name: l2}}
spec: {{nodeSelectors: [{{matchLabels: {{rack: r9}}}}]}}
{NODES}{WEB}"
    );
    let d = run(&yaml, &[], false);
    assert_eq!(
        broken(&d),
        (
            "l2Nodes",
            "NoEligibleNode",
            "change spec.nodeSelectors of L2Advertisement l2 to match a node (or label a node to match)"
        )
    );
    assert_eq!(
        link(&d, "l2Nodes").details,
        [
            "n1: spec.nodeSelectors of L2Advertisement l2 match none of its labels",
            "n2: spec.nodeSelectors of L2Advertisement l2 match none of its labels"
        ]
    );
}

#[test]
fn excluded_and_not_ready_nodes() {
    let yaml = format!(
        "{POOL}{L2}{WEB}
---
apiVersion: v1
kind: Node
metadata: {{name: n1, labels: {{node.kubernetes.io/exclude-from-external-load-balancers: ''}}}}
---
apiVersion: v1
kind: Node
metadata: {{name: n2}}
status: {{conditions: [{{type: Ready, status: 'False'}}]}}
---
apiVersion: v1
kind: Node
metadata: {{name: n3}}
status: {{conditions: [{{type: NetworkUnavailable, status: 'True'}}]}}
"
    );
    let d = run(&yaml, &[], false);
    assert_eq!(
        broken(&d),
        (
            "l2Nodes",
            "NoEligibleNode",
            "remove the label node.kubernetes.io/exclude-from-external-load-balancers from a node"
        )
    );
    assert_eq!(
        link(&d, "l2Nodes").details,
        [
            "n1: labelled node.kubernetes.io/exclude-from-external-load-balancers",
            "n2: NotReady",
            "n3: NetworkUnavailable"
        ]
    );
}

#[test]
fn local_traffic_policy_without_a_ready_endpoint() {
    let yaml = format!(
        "{POOL}{L2}{NODES}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{type: LoadBalancer, externalTrafficPolicy: Local, ports: [{{port: 80}}]}}
status: {{loadBalancer: {{ingress: [{{ip: 10.0.0.5}}]}}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: web-1, namespace: default, labels: {{kubernetes.io/service-name: web}}}}
addressType: IPv4
endpoints: [{{addresses: [10.244.0.7], nodeName: n1, conditions: {{ready: false}}}}]
"
    );
    let d = run(&yaml, &[], false);
    let (id, reason, fix) = broken(&d);
    assert_eq!((id, reason), ("l2Nodes", "NoReadyEndpoint"));
    assert!(
        fix.starts_with("make a pod of Service default/web ready"),
        "{fix}"
    );
    assert!(fix.ends_with("or set spec.externalTrafficPolicy: Cluster on it"));
    // With the pod ready, n1 (and only n1) announces.
    let ready = yaml.replace("ready: false", "ready: true");
    let d = run(&ready, &[], false);
    assert!(d.reachable, "{d:#?}");
    assert_eq!(link(&d, "l2Nodes").summary, "n1 may announce");
}

#[test]
fn no_speaker_on_any_eligible_node() {
    let yaml = format!("{POOL}{L2}{NODES}{WEB}");
    // A speaker runs on n3 only (e.g. the DaemonSet's nodeSelector is wrong).
    let d = run(&yaml, &[idle("n3")], true);
    let (id, reason, _) = broken(&d);
    assert_eq!((id, reason), ("l2Nodes", "NoSpeaker"));
    assert_eq!(
        link(&d, "l2Nodes").details[0],
        "n1: no ferrolb-speaker runs there"
    );
}

#[test]
fn elected_owner_that_does_not_announce() {
    let yaml = format!("{POOL}{L2}{NODES}{WEB}");
    let d = run(&yaml, &[idle("n1"), idle("n2")], true);
    let (id, reason, fix) = broken(&d);
    assert_eq!((id, reason), ("l2Owner", "NotAnnounced"));
    let owner = owner_of(&d);
    assert_eq!(
        fix,
        format!(
            "check ferrolb-speaker on node {owner}: its log names the cause (interface missing, no CAP_NET_RAW)"
        )
    );
}

#[test]
fn address_conflict_reported_by_the_owner() {
    let yaml = format!("{POOL}{L2}{NODES}{WEB}");
    let owner = owner_of(&run(&yaml, &[], false));
    let mut s = announcing(&owner);
    let msg = format!(
        "another host (MAC 02:00:00:00:00:09) answers ARP for 10.0.0.5 which node {owner} announces"
    );
    s.conditions = vec![Condition {
        type_: ferrolb_speaker::conflict::ADDRESS_CONFLICT.into(),
        status: "True".into(),
        reason: "ForeignReply".into(),
        message: msg.clone(),
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        observed_generation: None,
    }];
    let d = run(&yaml, &[s], false);
    let (id, reason, fix) = broken(&d);
    assert_eq!((id, reason), ("l2Owner", "AddressConflict"));
    assert_eq!(link(&d, "l2Owner").summary, msg);
    assert_eq!(
        fix,
        "find the host with that MAC and remove 10.0.0.5 from it, or take 10.0.0.5 out of the IPAddressPool"
    );
}

fn condition(type_: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: "True".into(),
        reason: "Because".into(),
        message: message.into(),
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        observed_generation: None,
    }
}

#[test]
fn strict_arp_disabled_on_the_owner_or_another_node_breaks_the_owner_link() {
    let yaml = format!("{POOL}{L2}{NODES}{WEB}");
    let owner = owner_of(&run(&yaml, &[], false));
    let other = if owner == "n1" { "n2" } else { "n1" };
    let what = |n: &str| {
        format!(
            "kube-ipvs0 exists on node {n} (kube-proxy in ipvs mode puts every LoadBalancer address on it) and the kernel of every such node answers ARP for them too, so clients see several MACs: eth0 has arp_ignore 0 (all 0, eth0 0; needs 1) and arp_announce 0 (all 0, eth0 0; needs 2)"
        )
    };
    let finding = |n: &str| {
        condition(
            ferrolb_speaker::findings::STRICT_ARP_DISABLED,
            &format!(
                "{}; fix: {}",
                what(n),
                ferrolb_speaker::findings::strict_arp::FIX
            ),
        )
    };
    let mut s = announcing(&owner);
    s.conditions = vec![finding(&owner)];
    let d = run(&yaml, &[s, idle(other)], true);
    let (id, reason, fix) = broken(&d);
    assert_eq!((id, reason), ("l2Owner", "StrictARPDisabled"));
    assert_eq!(link(&d, "l2Owner").summary, what(&owner));
    assert_eq!(
        fix,
        "set ipvs.strictARP: true in ConfigMap kube-system/kube-proxy and restart kube-proxy, or sysctl net.ipv4.conf.all.arp_ignore=1 and net.ipv4.conf.all.arp_announce=2 on every node"
    );
    // The other node's kernel answers just as well.
    let mut o = idle(other);
    o.conditions = vec![finding(other)];
    let d = run(&yaml, &[announcing(&owner), o], true);
    assert_eq!(broken(&d).1, "StrictARPDisabled");
    assert_eq!(link(&d, "l2Owner").summary, what(other));
    // Other findings of a node do not break an announced address.
    let mut s = announcing(&owner);
    s.conditions = vec![condition(
        ferrolb_speaker::findings::INTERFACE_UNAVAILABLE,
        "10.0.0.6 is not announced: the L2Advertisement names interfaces none of which is usable on node n1 (bond9: not found)",
    )];
    assert!(run(&yaml, &[s, idle(other)], true).reachable);
}

#[test]
fn an_owner_without_its_named_interface_says_which_and_why() {
    let yaml = format!("{POOL}{L2}{NODES}{WEB}");
    let owner = owner_of(&run(&yaml, &[], false));
    let mut s = idle(&owner);
    let mine = format!(
        "10.0.0.5 is not announced: the L2Advertisement names interfaces none of which is usable on node {owner} (bond9: not found, eth1: down)"
    );
    s.conditions = vec![condition(
        ferrolb_speaker::findings::INTERFACE_UNAVAILABLE,
        &format!(
            "10.0.0.4 is not announced: the L2Advertisement names interfaces none of which is usable on node {owner} (bond9: not found); {mine}"
        ),
    )];
    let d = run(&yaml, &[s], false);
    let (id, reason, fix) = broken(&d);
    assert_eq!((id, reason), ("l2Owner", "InterfaceUnavailable"));
    assert_eq!(link(&d, "l2Owner").summary, mine);
    assert_eq!(
        fix,
        format!(
            "bring the interface up on node {owner}, or change spec.interfaces of the L2Advertisement to interfaces node {owner} has (empty: the interface of the address's subnet)"
        )
    );
}

const BGP: &str = "
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: tor}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 10.1.0.1}
";

fn carrying(node: &str, peers: &[&str]) -> SpeakerStatusFile {
    SpeakerStatusFile {
        node: node.into(),
        bgp: vec![
            ServiceBGPStatusStatus {
                node: Some(node.into()),
                service_name: Some("web".into()),
                service_namespace: Some("default".into()),
                peers: peers.iter().map(|p| p.to_string()).collect(),
            }
            .into(),
        ]
        .into(),
        ..Default::default()
    }
}

#[test]
fn bgp_sessions_down_on_every_announcing_node() {
    let yaml = format!("{POOL}{BGP}{NODES}{WEB}");
    let d = run(&yaml, &[idle("n1"), idle("n2")], true);
    assert_eq!(
        broken(&d),
        (
            "bgpPeers",
            "PeersDown",
            "check spec.peerAddress, spec.peerASN, spec.myASN and the password of BGPPeer tor against the router, and that the router accepts TCP 179 from the nodes"
        )
    );
    assert_eq!(
        link(&d, "bgpPeers").details,
        ["n1: tor down", "n2: tor down"]
    );
    let d = run(&yaml, &[carrying("n1", &["tor"]), idle("n2")], true);
    assert!(d.reachable, "{d:#?}");
    assert_eq!(
        link(&d, "bgpPeers").details,
        ["n1: tor Established", "n2: tor down"]
    );
}

fn session(node: &str, state: &str, err: Option<&str>) -> SpeakerStatusFile {
    SpeakerStatusFile {
        node: node.into(),
        sessions: vec![BGPSessionStateStatus {
            node: Some(node.into()),
            peer: Some("tor".into()),
            bgp_status: Some(state.into()),
            last_error: err.map(Into::into),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn bgp_session_states_say_why_a_peer_is_down() {
    let yaml = format!("{POOL}{BGP}{NODES}{WEB}");
    let d = run(
        &yaml,
        &[
            session("n1", "Active", Some("sent NOTIFICATION 2/2 (bad peer AS)")),
            session("n2", "Established", None),
        ],
        true,
    );
    assert_eq!(broken(&d).1, "PeersDown");
    assert_eq!(
        link(&d, "bgpPeers").details,
        [
            "n1: tor Active (last error: sent NOTIFICATION 2/2 (bad peer AS))",
            "n2: tor Established but not carrying this Service's prefix"
        ]
    );
    let mut v6 = session("n2", "Established", None);
    v6.sessions[0].withheld = vec![ferrolb_crds::v1beta1::WithheldPrefixes {
        family: "IPv6".into(),
        prefixes: 1,
        reason: "no IPv6 address on eth0 for the next hop".into(),
    }];
    let d = run(&yaml, &[session("n1", "Idle", None), v6], true);
    assert_eq!(
        link(&d, "bgpPeers").details[1],
        "n2: tor Established but not carrying this Service's prefix (IPv6 withheld: no IPv6 address on eth0 for the next hop)"
    );
}

#[test]
fn bgp_without_a_peer_for_the_nodes() {
    let yaml = format!(
        "{POOL}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: bgp}}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {{name: tor}}
spec: {{myASN: 64512, peerASN: 64513, peerAddress: 10.1.0.1, nodeSelectors: [{{matchLabels: {{rack: r9}}}}]}}
{NODES}{WEB}"
    );
    let d = run(&yaml, &[], false);
    let (id, reason, _) = broken(&d);
    assert_eq!((id, reason), ("bgpPeers", "NoPeer"));
}

#[test]
fn service_of_another_type_or_class() {
    let yaml = format!(
        "{POOL}{L2}{NODES}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: default}}
spec: {{type: LoadBalancer, loadBalancerClass: other.io/lb, ports: [{{port: 80}}]}}
"
    );
    let d = run(&yaml, &[], false);
    let (id, reason, _) = broken(&d);
    assert_eq!((id, reason), ("service", "OtherClass"));
    let yaml = yaml.replace(
        "type: LoadBalancer, loadBalancerClass: other.io/lb",
        "type: NodePort",
    );
    assert_eq!(
        broken(&run(&yaml, &[], false)),
        (
            "service",
            "NotLoadBalancer",
            "set spec.type: LoadBalancer on Service default/web"
        )
    );
}

#[test]
fn text_marks_the_first_broken_link_and_prints_its_fix_once() {
    let yaml = format!("{POOL}{NODES}{WEB}");
    let d = run(&yaml, &[], false);
    assert_eq!(
        render::text(&d),
        "Service default/web
✓ Service               LoadBalancer, no class (served)
✓ address               10.0.0.5 in status.loadBalancer.ingress
✓ pool                  IPAddressPool lan (10.0.0.0/29)
✗ advertisement         10.0.0.5 assigned but never announced: no L2Advertisement or BGPAdvertisement selects IPAddressPool lan
  fix: create an L2Advertisement with spec.ipAddressPools: [lan] (an empty spec selects every pool), or a BGPAdvertisement selecting it
- eligible nodes        not checked: an earlier link is broken
- owner / peers         not checked: an earlier link is broken
✗ state                 not reachable: the advertisement link is broken
"
    );
}
