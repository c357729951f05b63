//! `ferrolb-controller diagnose` on a file-source directory: exact text, JSON and
//! exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-controller");

const BASE: &str = "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: lan, namespace: ferrolb-system}
spec:
  addresses: [10.0.0.0/29]
  serviceAllocation: {namespaces: [default]}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
";

const L2: &str = "
apiVersion: ferrolb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: ferrolb-system}
";

fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    d
}

/// Runs the controller once so that `status/services.yaml` holds the addresses.
fn reconcile(d: &Path) {
    let out = Command::new(BIN)
        .args([
            "--source",
            "file",
            "--metrics-address",
            "",
            "--once",
            "--dir",
        ])
        .arg(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn diagnose(d: &Path, target: &str, format: &str) -> (i32, String) {
    let out = Command::new(BIN)
        .args([
            "diagnose", target, "-o", format, "--source", "file", "--dir",
        ])
        .arg(d)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn healthy_layer2_service() {
    let d = dir(&[
        ("base.yaml", BASE),
        ("l2.yaml", L2),
        (
            "status/speaker-n1.yaml",
            "node: n1\nl2:\n- node: n1\n  serviceName: web\n  serviceNamespace: default\n  interfaces: [{name: eth0}]\n",
        ),
    ]);
    reconcile(d.path());
    let (code, text) = diagnose(d.path(), "default/web", "text");
    assert_eq!(
        text,
        "Service default/web
✓ Service               LoadBalancer, no class (served)
✓ address               10.0.0.0 in status.loadBalancer.ingress
✓ pool                  IPAddressPool lan (10.0.0.0/29)
✓ advertisement         L2Advertisement l2
✓ eligible nodes (L2)   n1 may announce
    n1: eligible
✓ owner (L2)            n1 answers for 10.0.0.0 on eth0
    10.0.0.0: elected n1
✓ state                 reachable (layer 2: n1 answers for 10.0.0.0 on eth0)
"
    );
    assert_eq!(code, 0);
    let (code, json) = diagnose(d.path(), "default/web", "json");
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "service": "default/web",
            "reachable": true,
            "brokenLink": null,
            "links": [
                {"link": "service", "status": "ok", "reason": "Served", "summary": "LoadBalancer, no class (served)"},
                {"link": "address", "status": "ok", "reason": "Assigned", "summary": "10.0.0.0 in status.loadBalancer.ingress"},
                {"link": "pool", "status": "ok", "reason": "ValidPool", "summary": "IPAddressPool lan (10.0.0.0/29)"},
                {"link": "advertisement", "status": "ok", "reason": "Advertised", "summary": "L2Advertisement l2"},
                {"link": "l2Nodes", "status": "ok", "reason": "EligibleNodes", "summary": "n1 may announce", "details": ["n1: eligible"]},
                {"link": "l2Owner", "status": "ok", "reason": "Announced", "summary": "n1 answers for 10.0.0.0 on eth0", "details": ["10.0.0.0: elected n1"]},
                {"link": "state", "status": "ok", "reason": "Reachable", "summary": "reachable (layer 2: n1 answers for 10.0.0.0 on eth0)"}
            ]
        })
    );
}

#[test]
fn pending_because_no_pool_serves_the_namespace() {
    let base = BASE.replace(
        "namespace: default}\nspec: {type",
        "namespace: shop}\nspec: {type",
    );
    let d = dir(&[("base.yaml", &base), ("l2.yaml", L2)]);
    let (code, text) = diagnose(d.path(), "shop/web", "text");
    assert_eq!(code, 1);
    assert_eq!(
        text,
        "Service shop/web
✓ Service               LoadBalancer, no class (served)
✗ address               pending, no address: no IPAddressPool may serve this Service: pool \"lan\": namespace shop is neither in spec.serviceAllocation.namespaces nor selected by spec.serviceAllocation.namespaceSelectors
    IPAddressPool lan: namespace shop is neither in spec.serviceAllocation.namespaces nor selected by spec.serviceAllocation.namespaceSelectors (fix: add shop to spec.serviceAllocation.namespaces of IPAddressPool lan (or label Namespace shop to match its spec.serviceAllocation.namespaceSelectors))
  fix: add shop to spec.serviceAllocation.namespaces of IPAddressPool lan (or label Namespace shop to match its spec.serviceAllocation.namespaceSelectors)
- pool                  not checked: an earlier link is broken
- advertisement         not checked: an earlier link is broken
- eligible nodes        not checked: an earlier link is broken
- owner / peers         not checked: an earlier link is broken
✗ state                 not reachable: the address link is broken
"
    );
    let (code, json) = diagnose(d.path(), "shop/web", "json");
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["brokenLink"], "address");
    assert_eq!(v["reachable"], false);
    assert_eq!(v["links"][1]["reason"], "NoPoolAvailable");
    assert_eq!(
        v["links"][1]["fix"],
        "add shop to spec.serviceAllocation.namespaces of IPAddressPool lan (or label Namespace shop to match its spec.serviceAllocation.namespaceSelectors)"
    );
    assert_eq!(v["links"][2]["status"], "skipped");
}

#[test]
fn assigned_but_not_advertised() {
    let d = dir(&[("base.yaml", BASE)]);
    reconcile(d.path());
    let (code, json) = diagnose(d.path(), "default/web", "json");
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["links"][3],
        serde_json::json!({
            "link": "advertisement",
            "status": "broken",
            "reason": "NotAdvertised",
            "summary": "10.0.0.0 assigned but never announced: no L2Advertisement or BGPAdvertisement selects IPAddressPool lan",
            "fix": "create an L2Advertisement with spec.ipAddressPools: [lan] (an empty spec selects every pool), or a BGPAdvertisement selecting it"
        })
    );
    assert_eq!(v["brokenLink"], "advertisement");
}

#[test]
fn local_traffic_policy_without_endpoint() {
    let base = BASE.replace(
        "spec: {type: LoadBalancer,",
        "spec: {type: LoadBalancer, externalTrafficPolicy: Local,",
    );
    let d = dir(&[("base.yaml", &base), ("l2.yaml", L2)]);
    reconcile(d.path());
    let (code, text) = diagnose(d.path(), "default/web", "text");
    assert_eq!(code, 1);
    let tail: Vec<&str> = text.lines().skip(5).collect();
    assert_eq!(
        tail,
        [
            "✗ eligible nodes (L2)   no node may announce: no ready endpoint of the Service (externalTrafficPolicy: Local)",
            "    n1: no ready endpoint of the Service (externalTrafficPolicy: Local)",
            "  fix: make a pod of Service default/web ready (kubectl get endpointslices -l kubernetes.io/service-name=...), or set spec.externalTrafficPolicy: Cluster on it",
            "- owner / peers         not checked: an earlier link is broken",
            "✗ state                 not reachable: the l2Nodes link is broken",
        ]
    );
}

#[test]
fn usage_errors_exit_two() {
    let d = dir(&[("base.yaml", BASE)]);
    let (code, _) = diagnose(d.path(), "a/b/c", "text");
    assert_eq!(code, 2);
    let out = Command::new(BIN)
        .args(["diagnose", "default/web", "--source", "file"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args([
            "diagnose",
            "default/web",
            "-o",
            "yaml",
            "--source",
            "file",
            "--dir",
        ])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
