//! The speaker's status objects (SpeakerStatus, BGPSessionState, ServiceL2Status,
//! ServiceBGPStatus) against a mocked API server: the exact requests, and none when
//! nothing changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ferrolb_crds::source::kube::{KubeSink, l2_status_name, session_state_name};
use ferrolb_crds::source::status::SpeakerStatusFile;
use ferrolb_crds::v1beta1::{BGPSessionStateStatus, InterfaceStatus, ServiceL2StatusStatus};
use http::{Request, Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::Handle;

type Mock = Handle<Request<Body>, Response<Body>>;

async fn expect(h: &mut Mock, method: &str, path: &str, reply: Value) -> (String, Value) {
    expect_status(h, method, path, StatusCode::OK, reply).await
}

async fn expect_status(
    h: &mut Mock,
    method: &str,
    path: &str,
    status: StatusCode,
    reply: Value,
) -> (String, Value) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(10), h.next_request())
        .await
        .expect("no request")
        .expect("client gone");
    assert_eq!(req.method().as_str(), method, "{}", req.uri());
    assert_eq!(req.uri().path(), path);
    let q = req.uri().query().unwrap_or_default().to_string();
    let b = req.into_body().collect_bytes().await.unwrap();
    let body = if b.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&b).unwrap()
    };
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    (q, body)
}

fn obj(name: &str) -> Value {
    json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "ServiceL2Status", "metadata": {"name": name, "namespace": "ferrolb-system"}, "spec": {}})
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "ferrolb.io/v1beta1", "kind": format!("{kind}List"), "metadata": {}, "items": items})
}

const BASE: &str = "/apis/ferrolb.io/v1beta1/namespaces/ferrolb-system";

/// The sweep of a kind on the first write: a list by node label, answered `items`.
async fn expect_sweep(h: &mut Mock, plural: &str, kind: &str, items: Vec<Value>) {
    let (q, _) = expect(h, "GET", &format!("{BASE}/{plural}"), list(kind, items)).await;
    assert!(
        q.contains("labelSelector=ferrolb.io%2Fnode%3Dnode-1"),
        "{q}"
    );
}

fn web_on_eth0() -> SpeakerStatusFile {
    SpeakerStatusFile {
        node: "node-1".into(),
        l2: vec![ServiceL2StatusStatus {
            node: Some("node-1".into()),
            service_name: Some("web".into()),
            service_namespace: Some("default".into()),
            interfaces: vec![InterfaceStatus {
                name: "eth0".into(),
            }],
        }],
        sessions: vec![BGPSessionStateStatus {
            node: Some("node-1".into()),
            peer: Some("tor".into()),
            peer_address: Some("192.0.2.1".into()),
            bgp_status: Some("Active".into()),
            bfd_status: Some("N/A".into()),
            last_error: Some("connection refused".into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn applies_speaker_session_and_service_objects_then_only_changes() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let sink = KubeSink::new(
        Client::new(svc, "default"),
        "ferrolb-system",
        "ferrolb-speaker",
        Some("node-1".into()),
    )
    .owned_by_pod(
        "ferrolb-speaker-x7k2p",
        "0b7c6f2e-1111-4222-8333-944445555666",
    );
    let writer = sink.clone();
    let task = tokio::spawn(async move {
        ferrolb_crds::source::StatusSink::write_speaker(&writer, &web_on_eth0()).await
    });
    let owner = json!([{"apiVersion": "v1", "kind": "Pod", "name": "ferrolb-speaker-x7k2p", "uid": "0b7c6f2e-1111-4222-8333-944445555666"}]);

    // SpeakerStatus, named after the node, with no finding.
    let (q, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/speakerstatuses/node-1"),
        obj("node-1"),
    )
    .await;
    assert!(q.contains("fieldManager=ferrolb-speaker"), "{q}");
    assert_eq!(
        body["metadata"]["labels"],
        json!({"ferrolb.io/node": "node-1"})
    );
    assert_eq!(body["metadata"]["ownerReferences"], owner);
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/speakerstatuses/node-1/status"),
        obj("node-1"),
    )
    .await;
    assert_eq!(body["status"], json!({"node": "node-1"}));
    expect_sweep(
        &mut h,
        "speakerstatuses",
        "SpeakerStatus",
        vec![obj("node-1")],
    )
    .await;

    // BGPSessionState of the one peer.
    let session = session_state_name("node-1", "tor");
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/bgpsessionstates/{session}"),
        obj(&session),
    )
    .await;
    assert_eq!(
        body["metadata"]["labels"],
        json!({"ferrolb.io/node": "node-1", "ferrolb.io/peer": "tor"})
    );
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/bgpsessionstates/{session}/status"),
        obj(&session),
    )
    .await;
    assert_eq!(
        body["status"],
        json!({"node": "node-1", "peer": "tor", "peerAddress": "192.0.2.1", "bgpStatus": "Active", "bfdStatus": "N/A", "advertisedPrefixes": 0, "lastError": "connection refused"})
    );
    expect_sweep(&mut h, "bgpsessionstates", "BGPSessionState", vec![]).await;

    // ServiceL2Status of web; a leftover of an earlier process is deleted.
    let name = l2_status_name("node-1", "default", "web");
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/servicel2statuses/{name}"),
        obj(&name),
    )
    .await;
    assert_eq!(
        body["metadata"]["labels"],
        json!({"ferrolb.io/node": "node-1", "ferrolb.io/service-namespace": "default", "ferrolb.io/service-name": "web"})
    );
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/servicel2statuses/{name}/status"),
        obj(&name),
    )
    .await;
    assert_eq!(
        body["status"],
        json!({"node": "node-1", "serviceName": "web", "serviceNamespace": "default", "interfaces": [{"name": "eth0"}]})
    );
    expect_sweep(
        &mut h,
        "servicel2statuses",
        "ServiceL2Status",
        vec![obj(&name), obj("l2-stale")],
    )
    .await;
    expect(
        &mut h,
        "DELETE",
        &format!("{BASE}/servicel2statuses/l2-stale"),
        obj("l2-stale"),
    )
    .await;
    // No BGP announcements on this node: only the sweep.
    expect_sweep(&mut h, "servicebgpstatuses", "ServiceBGPStatus", vec![]).await;
    task.await.unwrap().unwrap();

    // The same status again: not one request (an unanswered one would hang).
    tokio::time::timeout(
        Duration::from_secs(2),
        ferrolb_crds::source::StatusSink::write_speaker(&sink, &web_on_eth0()),
    )
    .await
    .expect("an unchanged status made a request")
    .unwrap();

    // The session comes up and web is no longer announced: the session's status
    // alone is applied, and web's object deleted without another listing.
    let mut next = web_on_eth0();
    next.l2.clear();
    next.sessions[0].bgp_status = Some("Established".into());
    next.sessions[0].advertised_prefixes = 3;
    let (writer, first) = (sink.clone(), next.clone());
    let task = tokio::spawn(async move {
        ferrolb_crds::source::StatusSink::write_speaker(&writer, &first).await
    });
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/bgpsessionstates/{session}/status"),
        obj(&session),
    )
    .await;
    assert_eq!(body["status"]["bgpStatus"], "Established");
    assert_eq!(body["status"]["advertisedPrefixes"], 3);
    expect(
        &mut h,
        "DELETE",
        &format!("{BASE}/servicel2statuses/{name}"),
        obj(&name),
    )
    .await;
    task.await.unwrap().unwrap();

    // From here the speaker says what it wrote last: a new BGP Service is one
    // object (metadata, then status), with nothing listed or compared by JSON;
    // its removal one DELETE.
    let mut with_api = next.clone();
    with_api.bgp.push(
        ferrolb_crds::v1beta1::ServiceBGPStatusStatus {
            node: Some("node-1".into()),
            service_name: Some("api".into()),
            service_namespace: Some("shop".into()),
            peers: vec!["tor".into()],
        }
        .into(),
    );
    let (writer, before, now) = (sink.clone(), next.clone(), with_api.clone());
    let task = tokio::spawn(async move {
        ferrolb_crds::source::StatusSink::update_speaker(&writer, &before, &now).await
    });
    let api = ferrolb_crds::source::kube::bgp_status_name("node-1", "shop", "api");
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/servicebgpstatuses/{api}"),
        obj(&api),
    )
    .await;
    assert_eq!(
        body["metadata"]["labels"],
        json!({"ferrolb.io/node": "node-1", "ferrolb.io/service-namespace": "shop", "ferrolb.io/service-name": "api"})
    );
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/servicebgpstatuses/{api}/status"),
        obj(&api),
    )
    .await;
    assert_eq!(
        body["status"],
        json!({"node": "node-1", "serviceName": "api", "serviceNamespace": "shop", "peers": ["tor"]})
    );
    task.await.unwrap().unwrap();
    tokio::time::timeout(
        Duration::from_secs(2),
        ferrolb_crds::source::StatusSink::update_speaker(&sink, &with_api, &with_api),
    )
    .await
    .expect("an unchanged status made a request")
    .unwrap();
    let writer = sink.clone();
    let task = tokio::spawn(async move {
        ferrolb_crds::source::StatusSink::update_speaker(&writer, &with_api, &next).await
    });
    expect(
        &mut h,
        "DELETE",
        &format!("{BASE}/servicebgpstatuses/{api}"),
        obj(&api),
    )
    .await;
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_object_deleted_behind_our_back_is_created_again() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let sink = KubeSink::new(
        Client::new(svc, "default"),
        "ferrolb-system",
        "ferrolb-speaker",
        None,
    );
    let mut status = SpeakerStatusFile {
        node: "node-1".into(),
        ..Default::default()
    };
    let writer = sink.clone();
    let first = status.clone();
    let task = tokio::spawn(async move {
        ferrolb_crds::source::StatusSink::write_speaker(&writer, &first).await
    });
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/speakerstatuses/node-1"),
        obj("node-1"),
    )
    .await;
    assert!(
        body["metadata"].get("ownerReferences").is_none(),
        "no pod given: no owner"
    );
    expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/speakerstatuses/node-1/status"),
        obj("node-1"),
    )
    .await;
    for (plural, kind) in [
        ("speakerstatuses", "SpeakerStatus"),
        ("bgpsessionstates", "BGPSessionState"),
        ("servicel2statuses", "ServiceL2Status"),
        ("servicebgpstatuses", "ServiceBGPStatus"),
    ] {
        expect_sweep(&mut h, plural, kind, vec![]).await;
    }
    task.await.unwrap().unwrap();

    status.conditions.push(Condition {
        type_: "AddressConflict".into(),
        status: "True".into(),
        reason: "AnotherHostAnswers".into(),
        message: "192.0.2.7 is also claimed by 02:00:00:00:00:99".into(),
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
        observed_generation: None,
    });
    let task = tokio::spawn(async move {
        ferrolb_crds::source::StatusSink::write_speaker(&sink, &status).await
    });
    let gone = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "speakerstatuses.ferrolb.io \"node-1\" not found"});
    expect_status(
        &mut h,
        "PATCH",
        &format!("{BASE}/speakerstatuses/node-1/status"),
        StatusCode::NOT_FOUND,
        gone,
    )
    .await;
    expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/speakerstatuses/node-1"),
        obj("node-1"),
    )
    .await;
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{BASE}/speakerstatuses/node-1/status"),
        obj("node-1"),
    )
    .await;
    assert_eq!(body["status"]["conditions"][0]["type"], "AddressConflict");
    task.await.unwrap().unwrap();
}

#[test]
fn names_are_stable_and_distinct() {
    assert_eq!(
        l2_status_name("n1", "default", "web"),
        l2_status_name("n1", "default", "web")
    );
    assert_ne!(
        l2_status_name("n1", "default", "web"),
        l2_status_name("n2", "default", "web")
    );
    assert_ne!(
        l2_status_name("n1", "default", "web"),
        l2_status_name("n1", "defaul", "tweb")
    );
    assert_eq!(ferrolb_crds::source::kube::label_value("node-1"), "node-1");
    assert!(ferrolb_crds::source::kube::label_value(&"x".repeat(80)).starts_with('h'));
}
