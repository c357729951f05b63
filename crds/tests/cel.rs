//! The CEL rules of the CRD schemas, run client-side against good and bad objects,
//! and checked for what the API server would refuse (compile errors, cost).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::config::Config;
use ferrolb_crds::source::yaml::{Object, parse_file};
use kube::CustomResourceExt;
use kube::core::cel::validate_cel;

/// Runs the CEL rules of the object's CRD; returns the messages of failed rules.
fn cel_errors(o: &Object) -> Vec<String> {
    let r = match o {
        Object::IPAddressPool(x) => validate_cel(&**x),
        Object::L2Advertisement(x) => validate_cel(&**x),
        Object::BGPAdvertisement(x) => validate_cel(&**x),
        Object::BGPPeer(x) => validate_cel(&**x),
        Object::Community(x) => validate_cel(&**x),
        Object::BFDProfile(x) => validate_cel(&**x),
        _ => Ok(()),
    };
    match r {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
    }
}

fn one(yaml: &str) -> Object {
    let (mut objs, errs) = parse_file(Path::new("case.yaml"), yaml);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(objs.len(), 1);
    objs.remove(0).1
}

fn samples() -> Vec<Object> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let (objs, errs) = parse_file(&p, &std::fs::read_to_string(&p).unwrap());
            assert!(errs.is_empty(), "{errs:?}");
            out.extend(objs.into_iter().map(|(_, o)| o));
        }
    }
    out
}

#[test]
fn every_sample_passes_every_rule() {
    let objs = samples();
    let ferrolb = objs
        .iter()
        .filter(|o| o.meta().namespace.as_deref() == Some("ferrolb-system"))
        .count();
    assert!(
        ferrolb >= 10,
        "samples should cover every kind, found {ferrolb}"
    );
    for o in &objs {
        assert_eq!(
            cel_errors(o),
            Vec::<String>::new(),
            "{} {:?}",
            o.kind(),
            o.meta().name
        );
    }
}

const POOL: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\n";
const PEER: &str = "apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: peer\n";
const BGPADV: &str =
    "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: a\n";
const L2ADV: &str = "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: a\n";
const COMMUNITY: &str = "apiVersion: ferrolb.io/v1beta1\nkind: Community\nmetadata:\n  name: c\n";
const BFD: &str = "apiVersion: ferrolb.io/v1beta1\nkind: BFDProfile\nmetadata:\n  name: b\n";

/// (what is wrong, object, text the rejection must contain)
fn bad_cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "pool address that is not an address",
            format!("{POOL}spec:\n  addresses: [banana]\n"),
            "spec.addresses",
        ),
        (
            "pool range mixing families",
            format!("{POOL}spec:\n  addresses: [10.0.0.1-fd00::1]\n"),
            "spec.addresses",
        ),
        (
            "pool CIDR with a bad prefix",
            format!("{POOL}spec:\n  addresses: [10.0.0.0/33]\n"),
            "spec.addresses",
        ),
        (
            "negative pool priority",
            format!(
                "{POOL}spec:\n  addresses: [10.0.0.0/24]\n  serviceAllocation:\n    priority: -1\n"
            ),
            "priority",
        ),
        (
            "myASN zero",
            format!("{PEER}spec:\n  myASN: 0\n  peerASN: 64512\n  peerAddress: 10.0.0.1\n"),
            "spec.myASN",
        ),
        (
            "peerASN beyond 32 bits",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 4294967296\n  peerAddress: 10.0.0.1\n"
            ),
            "spec.peerASN",
        ),
        (
            "neither peerASN nor dynamicASN",
            format!("{PEER}spec:\n  myASN: 64512\n  peerAddress: 10.0.0.1\n"),
            "exactly one of spec.peerASN",
        ),
        (
            "both peerASN and dynamicASN",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 1\n  dynamicASN: external\n  peerAddress: 10.0.0.1\n"
            ),
            "exactly one of spec.peerASN",
        ),
        (
            "peerAddress not an IP",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: router.example\n"
            ),
            "spec.peerAddress",
        ),
        (
            "holdTime below 3s",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.1\n  holdTime: 2s\n"
            ),
            "spec.holdTime",
        ),
        (
            "keepalive not below hold",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.1\n  holdTime: 30s\n  keepaliveTime: 30s\n"
            ),
            "spec.keepaliveTime must be shorter",
        ),
        (
            "password and passwordSecret",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.1\n  password: x\n  passwordSecret:\n    name: s\n"
            ),
            "mutually exclusive",
        ),
        (
            "source address of the other family",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.1\n  sourceAddress: fd00::1\n"
            ),
            "spec.sourceAddress",
        ),
        (
            "ebgpMultiHop on iBGP",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 64512\n  peerAddress: 10.0.0.1\n  ebgpMultiHop: true\n"
            ),
            "spec.ebgpMultiHop",
        ),
        (
            "routerID that is IPv6",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.1\n  routerID: fd00::1\n"
            ),
            "spec.routerID",
        ),
        (
            "peerPort zero",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.1\n  peerPort: 0\n"
            ),
            "spec.peerPort",
        ),
        (
            "connectTime below 1s",
            format!(
                "{PEER}spec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.0.0.1\n  connectTime: 500ms\n"
            ),
            "spec.connectTime",
        ),
        (
            "aggregationLength over 32",
            format!("{BGPADV}spec:\n  aggregationLength: 33\n"),
            "spec.aggregationLength",
        ),
        (
            "aggregationLengthV6 over 128",
            format!("{BGPADV}spec:\n  aggregationLengthV6: 129\n"),
            "spec.aggregationLengthV6",
        ),
        (
            "negative localPref",
            format!("{BGPADV}spec:\n  localPref: -5\n"),
            "spec.localPref",
        ),
        (
            "preferred node weight 0",
            format!(
                "{L2ADV}spec:\n  preferredNodeSelectors:\n    - weight: 0\n      preference: {{}}\n"
            ),
            "weight",
        ),
        (
            "community value out of 16 bits",
            format!("{COMMUNITY}spec:\n  communities:\n    - name: x\n      value: 65536:1\n"),
            "value must be",
        ),
        (
            "community value garbage",
            format!("{COMMUNITY}spec:\n  communities:\n    - name: x\n      value: large:1:2\n"),
            "value must be",
        ),
        (
            "BFD multiplier 1",
            format!("{BFD}spec:\n  detectMultiplier: 1\n"),
            "spec.detectMultiplier",
        ),
        (
            "BFD interval 5 ms",
            format!("{BFD}spec:\n  receiveInterval: 5\n"),
            "spec.receiveInterval",
        ),
    ]
}

#[test]
fn cel_rejects_each_bad_object_with_a_message_naming_the_field() {
    let cases = bad_cases();
    assert!(cases.len() >= 10);
    for (what, yaml, needle) in cases {
        let errs = cel_errors(&one(&yaml));
        assert!(!errs.is_empty(), "CEL accepted: {what}");
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "{what}: {errs:?} lacks {needle:?}"
        );
    }
}

/// The same rules are enforced without an API server (file source, or an API
/// server that skipped a rule): every object CEL rejects, the config model rejects.
#[test]
fn config_model_rejects_what_cel_rejects() {
    for (what, yaml, _) in bad_cases() {
        let mut snap = ClusterSnapshot::default();
        snap.add(one(&yaml));
        let (config, errors) = Config::build(&snap.config_input());
        assert!(!errors.is_empty(), "config model accepted: {what}");
        let total = config.pools.len()
            + config.peers.len()
            + config.bgp_advertisements.len()
            + config.l2_advertisements.len()
            + config.bfd_profiles.len()
            + config.communities.len();
        let partial_kinds = ["community value out of 16 bits", "community value garbage"];
        if !partial_kinds.contains(&what) {
            assert_eq!(total, 0, "config model kept the object: {what}");
        }
    }
}

#[test]
fn every_rule_compiles_and_fits_the_api_server_cost_budget() {
    use kube::core::cel::{ScopeContext, WarningKind, analyze_rule, compile_schema};
    for crd in ferrolb_crds::crdgen::all() {
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        let compiled = compile_schema(&schema);
        assert!(
            !compiled.has_errors(),
            "{}: {:?}",
            crd.spec.names.kind,
            compiled.compilation_errors()
        );
        let mut rules = Vec::new();
        collect_rules(&schema, &mut rules);
        for rule in rules {
            // Scope warnings are skipped: the analyser flags comprehension variables
            // (`self.all(a, ...)`) as unknown, which the API server accepts.
            let warnings = analyze_rule(&rule, &compiled, ScopeContext::CrdValidation);
            let bad: Vec<_> = warnings
                .iter()
                .filter(|w| matches!(w.kind, WarningKind::CostExceeded))
                .collect();
            assert!(bad.is_empty(), "{}: {rule}: {bad:?}", crd.spec.names.kind);
        }
    }
    // Sanity: the walk found the rules at all.
    let s = serde_json::to_string(&ferrolb_crds::v1beta1::BGPPeer::crd()).unwrap();
    assert!(s.matches("x-kubernetes-validations").count() >= 8);
}

fn collect_rules(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Array(rules)) = m.get("x-kubernetes-validations") {
                out.extend(
                    rules
                        .iter()
                        .filter_map(|r| r.get("rule")?.as_str().map(String::from)),
                );
            }
            m.values().for_each(|x| collect_rules(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_rules(x, out)),
        _ => {}
    }
}
