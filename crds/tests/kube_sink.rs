//! The speaker's ServiceL2Status objects against a mocked API server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ferrolb_crds::source::kube::{KubeSink, l2_status_name};
use ferrolb_crds::source::status::SpeakerStatusFile;
use ferrolb_crds::v1beta1::{InterfaceStatus, ServiceL2StatusStatus};
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::Handle;

type Mock = Handle<Request<Body>, Response<Body>>;

async fn expect(h: &mut Mock, method: &str, path: &str, reply: Value) -> (String, Value) {
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
            .status(StatusCode::OK)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    (q, body)
}

fn obj(name: &str) -> Value {
    json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "ServiceL2Status", "metadata": {"name": name, "namespace": "ferrolb-system"}, "spec": {}})
}

#[tokio::test]
async fn applies_one_object_per_service_and_deletes_the_stale_ones() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let sink = KubeSink::new(
        Client::new(svc, "default"),
        "ferrolb-system",
        "ferrolb-speaker",
        Some("node-1".into()),
    );
    let status = SpeakerStatusFile {
        node: "node-1".into(),
        l2: vec![ServiceL2StatusStatus {
            node: Some("node-1".into()),
            service_name: Some("web".into()),
            service_namespace: Some("default".into()),
            interfaces: vec![InterfaceStatus {
                name: "eth0".into(),
            }],
        }],
        ..Default::default()
    };
    let task = tokio::spawn(async move {
        ferrolb_crds::source::StatusSink::write_speaker(&sink, &status).await
    });
    let name = l2_status_name("node-1", "default", "web");
    let base = "/apis/ferrolb.io/v1beta1/namespaces/ferrolb-system/servicel2statuses";
    let (q, body) = expect(&mut h, "PATCH", &format!("{base}/{name}"), obj(&name)).await;
    assert!(q.contains("fieldManager=ferrolb-speaker"), "{q}");
    assert_eq!(
        body["metadata"]["labels"],
        json!({"ferrolb.io/node": "node-1", "ferrolb.io/service-namespace": "default", "ferrolb.io/service-name": "web"})
    );
    let (_, body) = expect(
        &mut h,
        "PATCH",
        &format!("{base}/{name}/status"),
        obj(&name),
    )
    .await;
    assert_eq!(
        body["status"],
        json!({"node": "node-1", "serviceName": "web", "serviceNamespace": "default", "interfaces": [{"name": "eth0"}]})
    );
    let list = json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "ServiceL2StatusList", "metadata": {}, "items": [obj(&name), obj("l2-stale")]});
    let (q, _) = expect(&mut h, "GET", base, list).await;
    assert!(
        q.contains("labelSelector=ferrolb.io%2Fnode%3Dnode-1"),
        "{q}"
    );
    expect(
        &mut h,
        "DELETE",
        &format!("{base}/l2-stale"),
        obj("l2-stale"),
    )
    .await;
    // No BGP announcements on this node: only the lookup for stale ServiceBGPStatus.
    let bgp = "/apis/ferrolb.io/v1beta1/namespaces/ferrolb-system/servicebgpstatuses";
    let empty = json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "ServiceBGPStatusList", "metadata": {}, "items": []});
    let (q, _) = expect(&mut h, "GET", bgp, empty).await;
    assert!(
        q.contains("labelSelector=ferrolb.io%2Fnode%3Dnode-1"),
        "{q}"
    );
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
