//! The binaries' kube mode against a stand-in API server on loopback (no
//! kube-apiserver exists here): `ferrolb-controller diagnose --source kube` reads
//! the speakers' status objects, and `ferrolb-speaker --source kube` writes them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferrolb_e2e::fake_api::{FakeApi, Recorded};
use ferrolb_e2e::lab::{binary, eventually};
use serde_json::{Value, json};

const NS: &str = "ferrolb-system";

fn ferrolb(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ferrolb.io/v1beta1", "kind": kind, "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

fn node(name: &str, ip: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}], "conditions": [{"type": "Ready", "status": "True"}]}})
}

fn web(ip: &str, pool: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"ferrolb.io/ip-allocated-from-pool": pool}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip}]}}})
}

fn speaker_status(node: &str, conditions: Value) -> Value {
    json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "SpeakerStatus", "metadata": {"name": node, "namespace": NS},
        "spec": {}, "status": {"node": node, "conditions": conditions}})
}

fn diagnose(api: &FakeApi, dir: &std::path::Path) -> (i32, Value) {
    let out = Command::new(binary("ferrolb-controller").unwrap())
        .args(["diagnose", "default/web", "--source", "kube", "-o", "json"])
        .env("KUBECONFIG", api.kubeconfig(dir).unwrap())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{e}: {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn link<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["link"] == id)
        .unwrap_or_else(|| panic!("no link {id} in {v:#}"))
}

/// n1 and n2; n2 is excluded from load balancers, so n1 owns the address.
fn layer2_cluster() -> Vec<Value> {
    vec![
        ferrolb(
            "IPAddressPool",
            "lan",
            json!({"addresses": ["192.0.2.0/29"]}),
        ),
        ferrolb("L2Advertisement", "l2", json!({})),
        node("n1", "198.51.100.1", json!({})),
        node(
            "n2",
            "198.51.100.2",
            json!({"node.kubernetes.io/exclude-from-external-load-balancers": ""}),
        ),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
        web("192.0.2.1", "lan"),
    ]
}

#[test]
fn diagnose_reads_speaker_findings_and_presence_from_the_api_server() {
    let dir = tempfile::tempdir().unwrap();

    // n1 owns the address, its speaker says another host answers for it.
    let mut objects = layer2_cluster();
    objects.push(speaker_status(
        "n1",
        json!([{"type": "AddressConflict", "status": "True", "reason": "AnotherHostAnswers",
            "message": "node \"n1\": 192.0.2.1 is also claimed by 02:00:00:00:00:99", "lastTransitionTime": "2026-12-01T00:00:00Z"}]),
    ));
    objects.push(json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "ServiceL2Status", "metadata": {"name": "l2-x", "namespace": NS},
        "spec": {}, "status": {"node": "n1", "serviceName": "web", "serviceNamespace": "default", "interfaces": [{"name": "eth0"}]}}));
    let api = FakeApi::start(objects).unwrap();
    let (code, v) = diagnose(&api, dir.path());
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["brokenLink"], "l2Owner", "{v:#}");
    let owner = link(&v, "l2Owner");
    assert!(
        owner["summary"]
            .as_str()
            .unwrap()
            .contains("02:00:00:00:00:99"),
        "{owner:#}"
    );
    let listed: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && !r.query.contains("watch"))
        .map(|r| r.path)
        .collect();
    for kind in [
        "speakerstatuses",
        "bgpsessionstates",
        "servicel2statuses",
        "servicebgpstatuses",
    ] {
        let path = format!("/apis/ferrolb.io/v1beta1/namespaces/{NS}/{kind}");
        assert!(listed.contains(&path), "{path} not listed: {listed:?}");
    }
    drop(api);

    // Only n2 runs a speaker: the owner link cannot be n1's, and the node link says so.
    let mut objects = layer2_cluster();
    objects.push(speaker_status("n2", json!([])));
    let api = FakeApi::start(objects).unwrap();
    let (code, v) = diagnose(&api, dir.path());
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["brokenLink"], "l2Nodes", "{v:#}");
    let nodes = link(&v, "l2Nodes");
    let details: Vec<&str> = nodes["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.starts_with("n1:") && d.contains("no ferrolb-speaker runs there")),
        "{details:?}"
    );
}

fn status_patches<'a>(reqs: &'a [Recorded], plural: &str) -> Vec<&'a Recorded> {
    reqs.iter()
        .filter(|r| {
            r.method == "PATCH"
                && r.path.starts_with(&format!(
                    "/apis/ferrolb.io/v1beta1/namespaces/{NS}/{plural}/"
                ))
                && r.path.ends_with("/status")
        })
        .collect()
}

/// Starts the controller in kube mode against `api`, with `extra` flags.
fn spawn_controller(api: &FakeApi, dir: &std::path::Path, extra: &[&str]) -> std::process::Child {
    Command::new(binary("ferrolb-controller").unwrap())
        .args([
            "--source",
            "kube",
            "--namespace",
            NS,
            "--metrics-address",
            "",
        ])
        .args(extra)
        .env("KUBECONFIG", api.kubeconfig(dir).unwrap())
        .env("POD_NAME", "ferrolb-controller-abcde")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Stops the binary; on a failed wait, panics with the requests it made and its
/// stderr. Returns what was waited for and every request.
fn stop<T>(
    api: &FakeApi,
    mut child: std::process::Child,
    result: anyhow::Result<T>,
) -> (T, Vec<Recorded>) {
    let reqs = api.requests();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let value = result.unwrap_or_else(|e| {
        panic!(
            "{e}\nrequests: {:#?}\nstderr: {}",
            reqs.iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (value, reqs)
}

#[test]
fn speaker_in_kube_mode_applies_its_speaker_status_and_session_state() {
    let dir = tempfile::tempdir().unwrap();
    // A port on loopback where nothing listens: the session cannot connect.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let api = FakeApi::start(vec![
        ferrolb(
            "IPAddressPool",
            "routed",
            json!({"addresses": ["192.0.2.8/29"]}),
        ),
        ferrolb("BGPAdvertisement", "routed", json!({})),
        ferrolb(
            "BGPPeer",
            "tor",
            json!({"myASN": 64512, "peerASN": 64513, "peerAddress": "127.0.0.1", "peerPort": port, "connectTime": "1s"}),
        ),
        node("n1", "127.0.0.1", json!({})),
        web("192.0.2.9", "routed"),
    ])
    .unwrap();
    let child = Command::new(binary("ferrolb-speaker").unwrap())
        .args([
            "--source",
            "kube",
            "--node",
            "n1",
            "--namespace",
            NS,
            "--metrics-address",
            "",
            "--memberlist-port",
            "0",
        ])
        .env("KUBECONFIG", api.kubeconfig(dir.path()).unwrap())
        .env("POD_NAME", "ferrolb-speaker-abcde")
        .env("POD_UID", "5a3c1f00-0000-4000-8000-00000000beef")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let result = eventually(
        Duration::from_secs(20),
        "the BGPSessionState status with the connection error",
        || {
            let reqs = api.requests();
            status_patches(&reqs, "bgpsessionstates")
                .into_iter()
                .find(|r| r.body["status"]["lastError"].is_string())
                .cloned()
        },
    );
    let (session, reqs) = stop(&api, child, result);
    let st = &session.body["status"];
    assert_eq!(st["node"], "n1");
    assert_eq!(st["peer"], "tor");
    assert_eq!(st["peerAddress"], "127.0.0.1");
    assert_eq!(st["bfdStatus"], "N/A");
    assert_ne!(st["bgpStatus"], "Established");
    assert_eq!(st["conditions"][0]["type"], "Established");
    assert_eq!(st["conditions"][0]["status"], "False");

    // The node's SpeakerStatus, owned by the pod, with no finding.
    let speaker = status_patches(&reqs, "speakerstatuses");
    assert_eq!(
        speaker.first().map(|r| r.path.as_str()),
        Some(
            format!("/apis/ferrolb.io/v1beta1/namespaces/{NS}/speakerstatuses/n1/status").as_str()
        )
    );
    assert_eq!(speaker[0].body["status"], json!({"node": "n1"}));
    let meta = reqs
        .iter()
        .find(|r| {
            r.method == "PATCH"
                && r.path == format!("/apis/ferrolb.io/v1beta1/namespaces/{NS}/speakerstatuses/n1")
        })
        .expect("the SpeakerStatus object itself was applied");
    assert!(
        meta.query.contains("fieldManager=ferrolb-speaker"),
        "{}",
        meta.query
    );
    assert_eq!(
        meta.body["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Pod", "name": "ferrolb-speaker-abcde", "uid": "5a3c1f00-0000-4000-8000-00000000beef"}])
    );
}

fn session_state(node: &str, peer: &str, state: &str) -> Value {
    json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "BGPSessionState", "metadata": {"name": format!("{node}-{peer}"), "namespace": NS},
        "spec": {}, "status": {"node": node, "peer": peer, "peerAddress": "192.0.2.254", "bgpStatus": state}})
}

/// The controller in kube mode on a BGP cluster of n1 and n2 where only n1 runs a
/// speaker, its session to `tor` in `state`: the Announced condition it applies
/// to Service web, and the reasons of the Events it records (once `events` are).
fn controller_announced(state: &str, events: usize) -> (Value, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut service = web("192.0.2.9", "routed");
    service["status"] = json!({});
    let api = FakeApi::start(vec![
        ferrolb(
            "IPAddressPool",
            "routed",
            json!({"addresses": ["192.0.2.8/29"]}),
        ),
        ferrolb("BGPAdvertisement", "routed", json!({})),
        ferrolb(
            "BGPPeer",
            "tor",
            json!({"myASN": 64512, "peerASN": 64513, "peerAddress": "192.0.2.254"}),
        ),
        node("n1", "198.51.100.1", json!({})),
        node("n2", "198.51.100.2", json!({})),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
        service,
        speaker_status("n1", json!([])),
        session_state("n1", "tor", state),
        // A gone speaker's session: no SpeakerStatus for n2, so it does not count.
        session_state("n2", "tor", "Established"),
    ])
    .unwrap();
    let child = spawn_controller(&api, dir.path(), &["--speaker-grace-seconds", "0"]);
    let status_path = "/api/v1/namespaces/default/services/web/status";
    let result = eventually(
        Duration::from_secs(20),
        "the Service status with its Announced condition",
        || {
            let reqs = api.requests();
            let posted = reqs.iter().filter(|r| r.path.ends_with("/events")).count();
            if posted < events {
                return None;
            }
            reqs.into_iter()
                .filter(|r| r.method == "PATCH" && r.path == status_path)
                .find_map(|r| {
                    r.body["status"]["conditions"]
                        .as_array()?
                        .iter()
                        .find(|c| c["type"] == "ferrolb.io/Announced")
                        .cloned()
                })
        },
    );
    let (announced, reqs) = stop(&api, child, result);
    for kind in ["speakerstatuses", "bgpsessionstates"] {
        let path = format!("/apis/ferrolb.io/v1beta1/namespaces/{NS}/{kind}");
        assert!(
            reqs.iter()
                .any(|r| r.method == "GET" && r.path == path && r.query.contains("watch")),
            "the controller watches {kind}"
        );
    }
    let warnings = reqs
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/events"))
        .filter_map(|r| r.body["reason"].as_str().map(String::from))
        .collect();
    (announced, warnings)
}

#[test]
fn controller_in_kube_mode_says_when_every_session_of_the_announcing_nodes_is_down() {
    // IPAllocated, then PeersDown.
    let (down, events) = controller_announced("Active", 2);
    assert_eq!(down["status"], "False", "{down:#}");
    assert_eq!(down["reason"], "PeersDown", "{down:#}");
    let message = down["message"].as_str().unwrap();
    assert!(
        message.contains("every BGP session of the announcing nodes is down (n1 to tor)"),
        "{message}"
    );
    assert!(message.contains("BGPPeer tor"), "{message}");
    assert_eq!(events, ["IPAllocated", "PeersDown"]);

    let (up, events) = controller_announced("Established", 1);
    assert_eq!(up["status"], "True", "{up:#}");
    assert_eq!(up["reason"], "Advertised", "{up:#}");
    assert_eq!(events, ["IPAllocated"]);
}

#[test]
fn a_service_created_after_start_reaches_the_controller_as_a_watch_event() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApi::start(vec![
        ferrolb(
            "IPAddressPool",
            "lan",
            json!({"addresses": ["192.0.2.0/29"]}),
        ),
        ferrolb("L2Advertisement", "l2", json!({})),
        node("n1", "198.51.100.1", json!({})),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
    ])
    .unwrap();
    let child = spawn_controller(&api, dir.path(), &[]);
    // Once the controller watches Services, a new one is pushed to it.
    let watching = eventually(Duration::from_secs(20), "a watch on Services", || {
        let mut svc = web("192.0.2.1", "lan");
        svc["status"] = json!({});
        svc["metadata"]["annotations"] = json!({});
        api.push(svc).ok().filter(|n| *n > 0)
    });
    let result = watching.and_then(|_| {
        eventually(Duration::from_secs(20), "web's address in status", || {
            api.requests()
                .into_iter()
                .filter(|r| {
                    r.method == "PATCH"
                        && r.path == "/api/v1/namespaces/default/services/web/status"
                })
                .find_map(|r| {
                    r.body["status"]["loadBalancer"]["ingress"][0]["ip"]
                        .as_str()
                        .map(String::from)
                })
        })
    });
    let (ip, _) = stop(&api, child, result);
    assert_eq!(ip, "192.0.2.0");
}
