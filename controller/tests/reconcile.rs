//! A controller pass over whole snapshots: what it writes and which Events it
//! records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use ferrolb_controller::reconcile::{ADDRESS_ASSIGNED, ANNOUNCED, Outcome, Reconciler};
use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::source::FileSource;
use ferrolb_crds::source::status::ServiceStatusRecord;
use k8s_openapi::jiff::Timestamp;

const CLASS: &str = "ferrolb.io/ferrolb";

fn now() -> Timestamp {
    "2026-11-24T12:00:00Z".parse().unwrap()
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

fn samples() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples");
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, d.path().join(p.file_name().unwrap())).unwrap();
    }
    d
}

fn load(d: &Path) -> ClusterSnapshot {
    let l = FileSource::new(d).load().unwrap();
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l.snapshot
}

fn svc<'a>(o: &'a Outcome, name: &str) -> &'a ServiceStatusRecord {
    o.services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no status for {name}"))
}

fn ips(r: &ServiceStatusRecord) -> Vec<String> {
    r.load_balancer
        .ingress
        .iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

#[test]
fn samples_get_addresses_from_the_right_pools() {
    let d = samples();
    let mut rec = Reconciler::new(CLASS);
    let out = rec.reconcile(&load(d.path()), now());
    assert!(out.config_errors.is_empty(), "{:?}", out.config_errors);
    let web = svc(&out, "web");
    assert_eq!(
        ips(web),
        ["192.168.9.1"],
        "lowest address of the lan pool's lowest range"
    );
    assert_eq!(web.annotations["ferrolb.io/ip-allocated-from-pool"], "lan");
    assert_eq!(web.conditions[0].type_, ADDRESS_ASSIGNED);
    assert_eq!(web.conditions[0].status, "True");
    // team-a/api: team-a pool (priority, namespace) wins over dual-stack lan.
    let api = svc(&out, "api");
    assert_eq!(ips(api), ["203.0.113.16"]);
    assert_eq!(
        api.annotations["ferrolb.io/ip-allocated-from-pool"],
        "team-a"
    );
    let allocated: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.reason == "IPAllocated")
        .map(|e| e.message.clone())
        .collect();
    assert_eq!(
        allocated,
        [
            "Assigned IP [\"192.168.9.1\"]",
            "Assigned IP [\"203.0.113.16\"]"
        ]
    );
    let lan = out.pools.iter().find(|p| p.name == "lan").unwrap();
    assert_eq!(lan.status.assigned_ipv4.as_deref(), Some("1"));
    assert_eq!(
        lan.status.available_ipv4.as_deref(),
        Some("258"),
        "a /24 without .0/.255 (254) + 5 - 1 in use"
    );
    assert_eq!(lan.status.available_ipv6.as_deref(), Some("16"));
}

#[test]
fn a_second_pass_over_its_own_output_changes_nothing_and_records_no_event() {
    let d = samples();
    let src = FileSource::new(d.path());
    let mut rec = Reconciler::new(CLASS);
    let first = rec.reconcile(&load(d.path()), now());
    src.write_services_sync(&first.services).unwrap();
    let later: Timestamp = "2026-11-24T13:00:00Z".parse().unwrap();
    let second = rec.reconcile(&load(d.path()), later);
    assert_eq!(
        second.services, first.services,
        "status must be stable, or the file watch would loop"
    );
    assert!(second.events.is_empty(), "{:?}", second.events);
    // A new controller (restart) reads the same status back and keeps every address.
    let mut fresh = Reconciler::new(CLASS);
    let third = fresh.reconcile(&load(d.path()), later);
    assert_eq!(third.services, first.services);
    assert!(third.events.is_empty(), "{:?}", third.events);
}

#[test]
fn exhaustion_and_bad_annotations_become_conditions_and_one_event_each() {
    let pool = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: tiny\nspec:\n  addresses: [10.0.0.1]\n---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: l2\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n";
    let svcs = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  creationTimestamp: 2026-01-01T00:00:00Z\nspec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n\
---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\n  creationTimestamp: 2026-01-02T00:00:00Z\nspec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n\
---\napiVersion: v1\nkind: Service\nmetadata:\n  name: c\n  annotations:\n    ferrolb.io/loadBalancerIPs: not-an-ip\nspec:\n  type: LoadBalancer\n\
---\napiVersion: v1\nkind: Service\nmetadata:\n  name: other-class\nspec:\n  type: LoadBalancer\n  loadBalancerClass: example.com/other\n\
---\napiVersion: v1\nkind: Service\nmetadata:\n  name: plain\nspec:\n  type: ClusterIP\n";
    let d = dir_with(&[("pool.yaml", pool), ("svc.yaml", svcs)]);
    let src = FileSource::new(d.path());
    let mut rec = Reconciler::new(CLASS);
    let out = rec.reconcile(&load(d.path()), now());
    assert_eq!(ips(svc(&out, "a")), ["10.0.0.1"], "the older Service wins");
    let b = svc(&out, "b");
    assert!(ips(b).is_empty());
    assert_eq!(
        (
            b.conditions[0].status.as_str(),
            b.conditions[0].reason.as_str()
        ),
        ("False", "PoolExhausted")
    );
    let c = svc(&out, "c");
    assert_eq!(c.conditions[0].reason, "InvalidAnnotation");
    assert!(
        c.conditions[0]
            .message
            .contains("metadata.annotations[ferrolb.io/loadBalancerIPs]")
    );
    assert!(
        out.services
            .iter()
            .all(|s| s.name != "other-class" && s.name != "plain")
    );
    assert_eq!(out.failures, 2);
    let mut warnings: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.type_ == "Warning")
        .map(|e| (e.involved_object.name.clone(), e.reason.clone()))
        .collect();
    warnings.sort();
    assert_eq!(
        warnings,
        [
            ("b".to_string(), "AllocationFailed".to_string()),
            ("c".to_string(), "AllocationFailed".to_string())
        ]
    );
    let tiny = &out.pools[0];
    assert_eq!(tiny.status.available_ipv4.as_deref(), Some("0"));
    assert!(
        tiny.status
            .conditions
            .iter()
            .any(|c| c.type_ == "Exhausted" && c.status == "True")
    );
    // Written and read back: the same failure is not announced twice.
    src.write_services_sync(&out.services).unwrap();
    let again = rec.reconcile(&load(d.path()), now());
    assert!(again.events.is_empty(), "{:?}", again.events);
}

#[test]
fn an_invalid_pool_is_reported_and_the_valid_ones_keep_serving() {
    // Overlapping pools: the older one keeps serving, whatever the names.
    let pools = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: good\n  creationTimestamp: 2026-01-01T00:00:00Z\nspec:\n  addresses: [10.0.0.0/30]\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: bad\n  creationTimestamp: 2026-02-01T00:00:00Z\nspec:\n  addresses: [10.0.0.2-10.0.0.9]\n";
    let svcs = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  type: LoadBalancer\n";
    let d = dir_with(&[("pool.yaml", pools), ("svc.yaml", svcs)]);
    let mut rec = Reconciler::new(CLASS);
    let out = rec.reconcile(&load(d.path()), now());
    assert_eq!(ips(svc(&out, "a")), ["10.0.0.0"]);
    let bad = out.pools.iter().find(|p| p.name == "bad").unwrap();
    assert_eq!(bad.status.conditions[0].status, "False");
    assert!(
        bad.status.conditions[0]
            .message
            .contains("spec.addresses[0]"),
        "{:?}",
        bad.status.conditions
    );
    let ev: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.reason == "InvalidConfiguration")
        .collect();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].involved_object.kind, "IPAddressPool");
    assert_eq!(ev[0].involved_object.name, "bad");
    // Reported once, not on every pass.
    let again = rec.reconcile(&load(d.path()), now());
    assert!(
        again
            .events
            .iter()
            .all(|e| e.reason != "InvalidConfiguration")
    );
}

#[test]
fn shrinking_a_pool_moves_the_service_and_says_why() {
    let wide = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\nspec:\n  addresses: [10.0.0.5, 10.0.0.9]\n";
    let svcs = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  type: LoadBalancer\n  loadBalancerIP: 10.0.0.9\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\nspec:\n  type: LoadBalancer\n";
    let d = dir_with(&[("pool.yaml", wide), ("svc.yaml", svcs)]);
    let src = FileSource::new(d.path());
    let mut rec = Reconciler::new(CLASS);
    let out = rec.reconcile(&load(d.path()), now());
    src.write_services_sync(&out.services).unwrap();
    assert_eq!(ips(svc(&out, "b")), ["10.0.0.5"]);
    std::fs::write(d.path().join("pool.yaml"), wide.replace("10.0.0.5, ", "")).unwrap();
    let out = rec.reconcile(&load(d.path()), now());
    assert_eq!(ips(svc(&out, "a")), ["10.0.0.9"], "untouched");
    assert!(ips(svc(&out, "b")).is_empty());
    let reasons: Vec<_> = out
        .events
        .iter()
        .map(|e| (e.involved_object.name.as_str(), e.reason.as_str()))
        .collect();
    assert!(reasons.contains(&("b", "PoolChanged")), "{reasons:?}");
    assert!(reasons.contains(&("b", "AllocationFailed")), "{reasons:?}");
}

#[test]
fn unknown_references_bad_secrets_and_impossible_requests_are_named_and_nothing_else_stops() {
    let config = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [10.0.0.0/30]}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2-ghost}\nspec: {ipAddressPools: [ghost]}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2-good}\nspec: {ipAddressPools: [p]}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgp-ghost}\nspec: {peers: [nobody], communities: [no-such-alias]}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: missing-secret}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 10.1.0.1, passwordSecret: {name: nope, namespace: default}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: wrong-type}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 10.1.0.2, passwordSecret: {name: opaque, namespace: default}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: no-password}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 10.1.0.3, passwordSecret: {name: empty, namespace: default}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: bfd-ghost}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 10.1.0.4, bfdProfile: ghost}\n\
---\napiVersion: v1\nkind: Secret\nmetadata: {name: opaque}\ntype: Opaque\nstringData: {password: x}\n\
---\napiVersion: v1\nkind: Secret\nmetadata: {name: empty}\ntype: kubernetes.io/basic-auth\nstringData: {username: u}\n";
    let svcs = "apiVersion: v1\nkind: Service\nmetadata: {name: outside}\nspec: {type: LoadBalancer, loadBalancerIP: 192.0.2.7}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {name: outside-annotation, annotations: {ferrolb.io/loadBalancerIPs: 192.0.2.8}}\nspec: {type: LoadBalancer}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {name: ghost-pool, annotations: {ferrolb.io/address-pool: ghost}}\nspec: {type: LoadBalancer}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {name: fine}\nspec: {type: LoadBalancer}\n";
    let d = dir_with(&[("config.yaml", config), ("svc.yaml", svcs)]);
    let mut rec = Reconciler::new(CLASS);
    let out = rec.reconcile(&load(d.path()), now());

    // Nothing else stops: the good Service gets its address.
    assert_eq!(ips(svc(&out, "fine")), ["10.0.0.0"]);

    // Impossible requests: a condition on the Service naming the field, an Event.
    for (name, field) in [
        ("outside", "spec.loadBalancerIP"),
        (
            "outside-annotation",
            "metadata.annotations[ferrolb.io/loadBalancerIPs]",
        ),
        (
            "ghost-pool",
            "metadata.annotations[ferrolb.io/address-pool]",
        ),
    ] {
        let s = svc(&out, name);
        assert!(ips(s).is_empty(), "{name}");
        let c = &s.conditions[0];
        assert_eq!(c.status, "False", "{name}: {c:?}");
        assert!(
            c.message.contains(field),
            "{name}: the condition names {field}: {c:?}"
        );
        assert!(
            out.events
                .iter()
                .any(|e| e.involved_object.kind == "Service"
                    && e.involved_object.name == name
                    && e.type_ == "Warning"
                    && e.message.contains(field)),
            "{name}: {:?}",
            out.events
        );
    }

    // Unknown references and bad Secrets: one InvalidConfiguration Event per
    // object, naming the object and the field.
    let invalid: Vec<(&str, &str, &str)> = out
        .events
        .iter()
        .filter(|e| e.reason == "InvalidConfiguration")
        .map(|e| {
            (
                e.involved_object.kind.as_str(),
                e.involved_object.name.as_str(),
                e.message.as_str(),
            )
        })
        .collect();
    for (kind, name, field) in [
        ("L2Advertisement", "l2-ghost", "spec.ipAddressPools"),
        ("BGPAdvertisement", "bgp-ghost", "spec.peers"),
        ("BGPAdvertisement", "bgp-ghost", "spec.communities"),
        ("BGPPeer", "missing-secret", "spec.passwordSecret"),
        ("BGPPeer", "wrong-type", "spec.passwordSecret"),
        ("BGPPeer", "no-password", "spec.passwordSecret"),
        ("BGPPeer", "bfd-ghost", "spec.bfdProfile"),
    ] {
        assert!(
            invalid
                .iter()
                .any(|(k, n, m)| *k == kind && *n == name && m.contains(field)),
            "no InvalidConfiguration Event for {kind} {name} {field}: {invalid:#?}"
        );
    }
    assert!(
        !invalid.iter().any(|(_, n, _)| *n == "l2-good" || *n == "p"),
        "{invalid:#?}"
    );
    // Reported once, not on every pass.
    let again = rec.reconcile(&load(d.path()), now());
    assert!(
        again
            .events
            .iter()
            .all(|e| e.reason != "InvalidConfiguration"),
        "{:?}",
        again.events
    );
}

#[test]
fn an_address_no_advertisement_selects_is_reported_once_as_not_advertised() {
    let pool = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lan, namespace: ferrolb-system}\nspec: {addresses: [10.0.0.8/29]}\n";
    let svc_yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n";
    let d = dir_with(&[("pool.yaml", pool), ("svc.yaml", svc_yaml)]);
    let mut rec = Reconciler::new(CLASS);
    let out = rec.reconcile(&load(d.path()), now());
    let web = svc(&out, "web");
    let announced = &web.conditions[1];
    assert_eq!(
        (
            announced.type_.as_str(),
            announced.status.as_str(),
            announced.reason.as_str()
        ),
        (ANNOUNCED, "False", "NoAdvertisement")
    );
    let msg = "10.0.0.8 assigned but never announced: no L2Advertisement or BGPAdvertisement selects IPAddressPool lan; create one with spec.ipAddressPools: [lan]";
    assert_eq!(announced.message, msg);
    let warnings: Vec<_> = out
        .events
        .iter()
        .filter(|e| e.reason == "NotAdvertised")
        .map(|e| {
            (
                e.type_.as_str(),
                e.message.as_str(),
                e.involved_object.name.as_str(),
            )
        })
        .collect();
    assert_eq!(warnings, [("Warning", msg, "web")]);

    // Written back (file source) and reconciled again: no second Event.
    FileSource::new(d.path())
        .write_services_sync(&out.services)
        .unwrap();
    let again = rec.reconcile(&load(d.path()), now());
    assert!(!again.events.iter().any(|e| e.reason == "NotAdvertised"));

    // An L2Advertisement for the pool turns it true.
    std::fs::write(
        d.path().join("l2.yaml"),
        "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, namespace: ferrolb-system}\n",
    )
    .unwrap();
    // Advertised, but no node may announce it: the condition and one Event say why.
    let nobody = rec.reconcile(&load(d.path()), now());
    let c = &svc(&nobody, "web").conditions[1];
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        (
            "False",
            "NoNodes",
            "10.0.0.8 assigned but not announced: no Node objects; register nodes (with the file source: add Node objects to the directory)"
        )
    );
    assert_eq!(
        nobody
            .events
            .iter()
            .filter(|e| e.reason == "NoNodes" && e.type_ == "Warning")
            .count(),
        1
    );
    let node = |labels: &str| {
        std::fs::write(
            d.path().join("node.yaml"),
            format!("apiVersion: v1\nkind: Node\nmetadata: {{name: n1, labels: {{{labels}}}}}\n"),
        )
        .unwrap();
    };
    node("node.kubernetes.io/exclude-from-external-load-balancers: ''");
    let excluded = rec.reconcile(&load(d.path()), now());
    let c = &svc(&excluded, "web").conditions[1];
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "NoEligibleNode")
    );
    assert!(
        c.message.contains("exclude-from-external-load-balancers"),
        "{}",
        c.message
    );
    node("");
    let fixed = rec.reconcile(&load(d.path()), now());
    let c = &svc(&fixed, "web").conditions[1];
    assert_eq!(
        (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
        (
            "True",
            "Advertised",
            "IPAddressPool lan is selected by L2Advertisement l2"
        )
    );
}
