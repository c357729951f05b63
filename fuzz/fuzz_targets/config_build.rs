//! CRD objects as the API server could hand them over (the schema's CEL rules may
//! be missing on an old cluster, so anything type-correct can arrive) into
//! `Config::build`. Structured: names and references come from a small set so that
//! cross-object checks (overlaps, dangling references, secrets) are reached.
//! Never a panic; every rejected object is named in an error.
#![no_main]

use arbitrary::Arbitrary;
use ferrolb_crds::config::{Config, ConfigInput};
use ferrolb_crds::v1beta1;
use k8s_openapi::api::core::v1::Secret;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const NAMES: [&str; 4] = ["a", "b", "c", ""];
const ADDRS: [&str; 12] = [
    "10.0.0.0/24",
    "10.0.0.128/25",
    "10.0.0.1-10.0.0.9",
    "10.0.0.9-10.0.0.1",
    "fd00::/120",
    "fd00::/64",
    "fd00::1-fd00::ff",
    "0.0.0.0/0",
    "10.0.0.1/33",
    "10.0.0.1",
    "::/0",
    "192.168.1.255/32",
];
const COMMUNITIES: [&str; 7] = [
    "65535:65282",
    "no-advertise",
    "large:64512:1:2",
    "65536:1",
    "large:1:2",
    "a",
    "",
];

#[derive(Arbitrary, Debug)]
enum Text {
    Known(u8),
    Raw(String),
}

impl Text {
    fn get(&self, table: &[&str]) -> String {
        match self {
            Text::Known(i) => table[usize::from(*i) % table.len()].to_string(),
            Text::Raw(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Selector {
    key: Text,
    value: Text,
    op: u8,
}

impl Selector {
    fn json(&self) -> Value {
        let ops = ["In", "NotIn", "Exists", "DoesNotExist", "Bogus"];
        let key = self.key.get(&["announce", "rack", "bad key!", ""]);
        if self.op % 2 == 0 {
            json!({"matchLabels": {key: self.value.get(&["l2", "bgp", ""])}})
        } else {
            json!({"matchExpressions": [{"key": key, "operator": ops[usize::from(self.op) % ops.len()], "values": [self.value.get(&["l2", "bgp"])]}]})
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Pool {
    name: Text,
    addresses: Vec<Text>,
    auto_assign: Option<bool>,
    avoid_buggy: Option<bool>,
    priority: Option<i32>,
    selectors: Vec<Selector>,
    age: u8,
}

#[derive(Arbitrary, Debug)]
struct Adv {
    bgp: bool,
    name: Text,
    pools: Vec<Text>,
    pool_selectors: Vec<Selector>,
    node_selectors: Vec<Selector>,
    aggregation: Option<i32>,
    aggregation_v6: Option<i32>,
    local_pref: Option<i64>,
    communities: Vec<Text>,
    peers: Vec<Text>,
    interfaces: Vec<Text>,
}

#[derive(Arbitrary, Debug)]
struct Peer {
    name: Text,
    my_asn: i64,
    peer_asn: Option<i64>,
    dynamic: Option<bool>,
    address: Text,
    source: Option<Text>,
    port: Option<i32>,
    hold: Option<u16>,
    keepalive: Option<u16>,
    router_id: Option<Text>,
    password: Option<Text>,
    secret: Option<(Text, Text)>,
    bfd: Option<Text>,
    multihop: Option<bool>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    pools: Vec<Pool>,
    advs: Vec<Adv>,
    peers: Vec<Peer>,
    communities: Vec<(Text, Text, Text)>,
    secrets: Vec<(Text, Option<Text>, Option<Text>)>,
    bfd: Vec<(Text, Option<i64>, Option<i64>)>,
}

fn meta(name: &Text, age: u8) -> Value {
    json!({"name": name.get(&NAMES), "namespace": "ferrolb-system", "uid": name.get(&NAMES),
           "creationTimestamp": format!("2024-01-01T00:00:{:02}Z", age % 60)})
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> Option<T> {
    serde_json::from_value(v).ok()
}

fn secs(s: Option<u16>) -> Option<String> {
    s.map(|s| format!("{s}s"))
}

fuzz_target!(|input: Input| {
    let pools: Vec<v1beta1::IPAddressPool> = input
        .pools
        .iter()
        .filter_map(|p| {
            typed(json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
                "metadata": meta(&p.name, p.age),
                "spec": {"addresses": p.addresses.iter().map(|a| a.get(&ADDRS)).collect::<Vec<_>>(),
                         "autoAssign": p.auto_assign, "avoidBuggyIPs": p.avoid_buggy,
                         "serviceAllocation": {"priority": p.priority, "namespaces": ["team-a"],
                            "serviceSelectors": p.selectors.iter().map(Selector::json).collect::<Vec<_>>()}}}))
        })
        .collect();
    let mut l2 = Vec::new();
    let mut bgp = Vec::new();
    for a in &input.advs {
        let pools: Vec<String> = a.pools.iter().map(|p| p.get(&NAMES)).collect();
        let sel: Vec<Value> = a.pool_selectors.iter().map(Selector::json).collect();
        let nodes: Vec<Value> = a.node_selectors.iter().map(Selector::json).collect();
        if a.bgp {
            bgp.extend(typed::<v1beta1::BGPAdvertisement>(json!({"apiVersion": "ferrolb.io/v1beta1",
                "kind": "BGPAdvertisement", "metadata": meta(&a.name, 0),
                "spec": {"ipAddressPools": pools, "ipAddressPoolSelectors": sel, "nodeSelectors": nodes,
                    "aggregationLength": a.aggregation, "aggregationLengthV6": a.aggregation_v6,
                    "localPref": a.local_pref,
                    "communities": a.communities.iter().map(|c| c.get(&COMMUNITIES)).collect::<Vec<_>>(),
                    "peers": a.peers.iter().map(|p| p.get(&NAMES)).collect::<Vec<_>>()}})));
        } else {
            l2.extend(typed::<v1beta1::L2Advertisement>(json!({"apiVersion": "ferrolb.io/v1beta1",
                "kind": "L2Advertisement", "metadata": meta(&a.name, 0),
                "spec": {"ipAddressPools": pools, "ipAddressPoolSelectors": sel, "nodeSelectors": nodes,
                    "interfaces": a.interfaces.iter().map(|i| i.get(&["eth0", "", "a/b"])).collect::<Vec<_>>()}})));
        }
    }
    let ips = ["10.0.0.1", "fd00::1", "10.0.0.256", "", "fe80::1%eth0"];
    let peers: Vec<v1beta1::BGPPeer> = input
        .peers
        .iter()
        .filter_map(|p| {
            typed(json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPPeer", "metadata": meta(&p.name, 0),
                "spec": {"myASN": p.my_asn, "peerASN": p.peer_asn,
                    "dynamicASN": p.dynamic.map(|d| if d { "internal" } else { "external" }),
                    "peerAddress": p.address.get(&ips), "sourceAddress": p.source.as_ref().map(|s| s.get(&ips)),
                    "peerPort": p.port, "holdTime": secs(p.hold), "keepaliveTime": secs(p.keepalive),
                    "routerID": p.router_id.as_ref().map(|r| r.get(&ips)),
                    "password": p.password.as_ref().map(|s| s.get(&["s3cret", ""])),
                    "passwordSecret": p.secret.as_ref().map(|(n, ns)| json!({"name": n.get(&NAMES), "namespace": ns.get(&["ferrolb-system", "other", ""])})),
                    "bfdProfile": p.bfd.as_ref().map(|b| b.get(&NAMES)), "ebgpMultiHop": p.multihop}}))
        })
        .collect();
    let communities: Vec<v1beta1::Community> = input
        .communities
        .iter()
        .filter_map(|(n, alias, value)| {
            typed(json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "Community", "metadata": meta(n, 0),
                "spec": {"communities": [{"name": alias.get(&NAMES), "value": value.get(&COMMUNITIES)}]}}))
        })
        .collect();
    let secrets: Vec<Secret> = input
        .secrets
        .iter()
        .filter_map(|(n, ty, pw)| {
            typed(json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta(n, 0),
                "type": ty.as_ref().map(|t| t.get(&["kubernetes.io/basic-auth", "Opaque"])),
                "stringData": pw.as_ref().map(|p| json!({"password": p.get(&["pw", ""])}))}))
        })
        .collect();
    let bfd_profiles: Vec<v1beta1::BFDProfile> = input
        .bfd
        .iter()
        .filter_map(|(n, rx, tx)| {
            typed(json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BFDProfile", "metadata": meta(n, 0),
                "spec": {"receiveInterval": rx, "transmitInterval": tx}}))
        })
        .collect();
    let input = ConfigInput {
        pools: &pools,
        l2_advertisements: &l2,
        bgp_advertisements: &bgp,
        peers: &peers,
        communities: &communities,
        bfd_profiles: &bfd_profiles,
        secrets: &secrets,
    };
    let (config, errors) = Config::build(&input);
    // Every object is either in the configuration or named by an error.
    for p in &pools {
        let name = p.metadata.name.clone().unwrap_or_default();
        let kept = config.pools.contains_key(&name);
        let blamed = errors.iter().any(|e| e.name == name);
        assert!(kept || blamed, "pool {name:?} vanished without an error: {errors:?}");
    }
    // Building is deterministic.
    let again = Config::build(&input);
    assert_eq!(again.1.len(), errors.len());
});
