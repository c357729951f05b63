//! The kube-proxy ConfigMap poll against a mocked API server: the exact request,
//! and what a ConfigMap, a 403 and a 404 make of the view.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ferrolb_speaker::findings::kube_proxy::{KubeProxyConfig, KubeProxyView};
use ferrolb_speaker::findings::probe::poll_kube_proxy;
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower_test::mock::Handle;

type Mock = Handle<Request<Body>, Response<Body>>;

/// Answers the next request, which must be the GET of the ConfigMap.
async fn answer(h: &mut Mock, status: StatusCode, reply: Value) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(10), h.next_request())
        .await
        .expect("no request within 10 s")
        .expect("client gone");
    assert_eq!(req.method().as_str(), "GET");
    assert_eq!(
        req.uri().path(),
        "/api/v1/namespaces/kube-system/configmaps/kube-proxy"
    );
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": reason, "reason": reason, "code": code})
}

fn config_map(conf: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
           "data": {"config.conf": conf, "kubeconfig.conf": "apiVersion: v1\n"}})
}

async fn next(rx: &mut watch::Receiver<KubeProxyView>) -> KubeProxyView {
    tokio::time::timeout(Duration::from_secs(10), rx.changed())
        .await
        .expect("no change within 10 s")
        .unwrap();
    rx.borrow_and_update().clone()
}

#[tokio::test]
async fn forbidden_then_readable_then_unreadable_then_gone() {
    let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    let (tx, mut rx) = watch::channel(KubeProxyView::Unknown);
    let poll = tokio::spawn(poll_kube_proxy(client, tx, Duration::from_millis(10)));

    // 403 (no Role): unknown, nothing changes.
    answer(&mut h, StatusCode::FORBIDDEN, status(403, "Forbidden")).await;
    answer(
        &mut h,
        StatusCode::OK,
        config_map(
            "kind: KubeProxyConfiguration\nmode: ipvs\nipvs: {strictARP: false, scheduler: rr}\n",
        ),
    )
    .await;
    // The first change seen is the ConfigMap: the 403 left the view Unknown.
    assert_eq!(
        next(&mut rx).await,
        KubeProxyView::Config(KubeProxyConfig {
            mode: "ipvs".into(),
            strict_arp: false
        })
    );
    // A bad document: a finding's words, not a crash of the poll.
    answer(&mut h, StatusCode::OK, config_map("mode: [ipvs\n")).await;
    let KubeProxyView::Unreadable(why) = next(&mut rx).await else {
        panic!("a bad document must be Unreadable");
    };
    assert!(
        why.starts_with("ConfigMap kube-system/kube-proxy key config.conf at line "),
        "{why}"
    );
    // Deleted: unknown again.
    answer(&mut h, StatusCode::NOT_FOUND, status(404, "NotFound")).await;
    assert_eq!(next(&mut rx).await, KubeProxyView::Unknown);
    // The poll ends with its last receiver (and the API gone, should it be
    // asking again already).
    drop(rx);
    drop(h);
    tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .expect("the poll stops once nobody listens")
        .unwrap();
}
