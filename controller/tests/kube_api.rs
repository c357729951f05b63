//! The controller against a mocked API server: the exact requests it makes for
//! Service status, pool status, Events and the leader Lease.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use ferrolb_controller::lease::{Elector, LeaseTimings};
use ferrolb_controller::reconcile::{ADDRESS_ASSIGNED, Reconciler};
use ferrolb_controller::run_kube::changes;
use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::source::kube::KubeSink;
use ferrolb_crds::source::status::{EventRecord, ObjectRef, PoolStatusRecord, ServiceStatusRecord};
use ferrolb_crds::v1beta1::IPAddressPoolStatus;
use http::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus, Service};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::Handle;

type Mock = Handle<Request<Body>, Response<Body>>;

fn mock() -> (Client, Mock) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(svc, "default"), handle)
}

/// The next request, checked for method and path, with its query and JSON body;
/// answered with `status` and `reply`.
async fn expect(
    h: &mut Mock,
    method: &str,
    path: &str,
    status: StatusCode,
    reply: Value,
) -> (String, Option<String>, Value) {
    let (req, send) = tokio::time::timeout(Duration::from_secs(10), h.next_request())
        .await
        .expect("no request within 10 s")
        .expect("client gone");
    assert_eq!(req.method().as_str(), method, "{}", req.uri());
    assert_eq!(req.uri().path(), path);
    let query = req.uri().query().unwrap_or_default().to_string();
    let ctype = req
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = req.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    (query, ctype, body)
}

fn record() -> ServiceStatusRecord {
    ServiceStatusRecord {
        namespace: "default".into(),
        name: "web".into(),
        annotations: BTreeMap::from([("ferrolb.io/ip-allocated-from-pool".into(), "lan".into())]),
        load_balancer: LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                ip: Some("192.168.9.1".into()),
                ip_mode: Some("VIP".into()),
                ..Default::default()
            }]),
        },
        conditions: vec![],
    }
}

fn service_json() -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"}, "spec": {"type": "LoadBalancer"}})
}

#[tokio::test]
async fn service_status_and_annotation_are_server_side_applied() {
    let (client, mut h) = mock();
    let sink = KubeSink::new(client, "ferrolb-system", "ferrolb-controller", None);
    let task = tokio::spawn(async move { sink.write_service(&record()).await });
    let (q, ct, body) = expect(
        &mut h,
        "PATCH",
        "/api/v1/namespaces/default/services/web/status",
        StatusCode::OK,
        service_json(),
    )
    .await;
    assert!(
        q.contains("fieldManager=ferrolb-controller") && q.contains("force=true"),
        "{q}"
    );
    assert_eq!(ct.as_deref(), Some("application/apply-patch+yaml"));
    assert_eq!(body["kind"], "Service");
    assert_eq!(
        body["status"]["loadBalancer"]["ingress"],
        json!([{"ip": "192.168.9.1", "ipMode": "VIP"}])
    );
    let (q, ct, body) = expect(
        &mut h,
        "PATCH",
        "/api/v1/namespaces/default/services/web",
        StatusCode::OK,
        service_json(),
    )
    .await;
    assert!(q.contains("fieldManager=ferrolb-controller"), "{q}");
    assert_eq!(ct.as_deref(), Some("application/apply-patch+yaml"));
    assert_eq!(
        body["metadata"]["annotations"],
        json!({"ferrolb.io/ip-allocated-from-pool": "lan"})
    );
    assert!(
        body.get("spec").is_none(),
        "only what FerroLB owns is applied: {body}"
    );
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_rejected_patch_is_an_error_naming_the_service() {
    let (client, mut h) = mock();
    let sink = KubeSink::new(client, "ferrolb-system", "ferrolb-controller", None);
    let task = tokio::spawn(async move { sink.write_service(&record()).await });
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "services \"web\" is forbidden", "reason": "Forbidden", "code": 403});
    expect(
        &mut h,
        "PATCH",
        "/api/v1/namespaces/default/services/web/status",
        StatusCode::FORBIDDEN,
        status,
    )
    .await;
    let err = task.await.unwrap().unwrap_err();
    assert!(
        err.to_string().contains("Service default/web status"),
        "{err}"
    );
}

#[tokio::test]
async fn pool_status_is_applied_to_the_status_subresource() {
    let (client, mut h) = mock();
    let sink = KubeSink::new(client, "ferrolb-system", "ferrolb-controller", None);
    let rec = PoolStatusRecord {
        namespace: "ferrolb-system".into(),
        name: "lan".into(),
        status: IPAddressPoolStatus {
            assigned_ipv6: Some("1".into()),
            available_ipv6: Some("18446744073709551615".into()),
            ..Default::default()
        },
    };
    let task = tokio::spawn(async move { sink.write_pool(&rec).await });
    let reply = json!({"apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool", "metadata": {"name": "lan", "namespace": "ferrolb-system"}, "spec": {"addresses": ["fd00::/64"]}});
    let (q, _, body) = expect(
        &mut h,
        "PATCH",
        "/apis/ferrolb.io/v1beta1/namespaces/ferrolb-system/ipaddresspools/lan/status",
        StatusCode::OK,
        reply,
    )
    .await;
    assert!(q.contains("fieldManager=ferrolb-controller"));
    assert_eq!(body["status"]["availableIPv6"], "18446744073709551615");
    assert_eq!(body["apiVersion"], "ferrolb.io/v1beta1");
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn allocation_failure_becomes_a_warning_event_on_the_service() {
    let (client, mut h) = mock();
    let sink = KubeSink::new(
        client,
        "ferrolb-system",
        "ferrolb-controller",
        Some("ferrolb-controller-abc".into()),
    );
    let ev = EventRecord {
        type_: "Warning".into(),
        reason: "AllocationFailed".into(),
        message: "no free IPv4 address in IPAddressPool lan: add addresses or free some".into(),
        involved_object: ObjectRef {
            kind: "Service".into(),
            namespace: "default".into(),
            name: "web".into(),
        },
        reporting_component: "ferrolb-controller".into(),
        event_time: "2026-11-24T12:00:00Z".into(),
    };
    let task = tokio::spawn(async move { sink.emit(&ev).await });
    let (_, _, body) = expect(
        &mut h,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        StatusCode::CREATED,
        json!({}),
    )
    .await;
    assert_eq!(body["type"], "Warning");
    assert_eq!(body["reason"], "AllocationFailed");
    assert_eq!(
        body["note"],
        "no free IPv4 address in IPAddressPool lan: add addresses or free some"
    );
    assert_eq!(body["regarding"]["kind"], "Service");
    assert_eq!(body["regarding"]["name"], "web");
    assert_eq!(body["reportingController"], "ferrolb-controller");
    assert_eq!(body["reportingInstance"], "ferrolb-controller-abc");
    task.await.unwrap().unwrap();
}

const LEASE_PATH: &str =
    "/apis/coordination.k8s.io/v1/namespaces/ferrolb-system/leases/ferrolb-controller";

fn lease(holder: &str, renew: &str, rv: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "ferrolb-controller", "namespace": "ferrolb-system", "resourceVersion": rv},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renew, "leaseTransitions": 2}})
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"})
}

#[tokio::test]
async fn lease_is_created_when_missing_then_renewed_with_its_resource_version() {
    let (client, mut h) = mock();
    let el = Elector::new(
        client,
        "ferrolb-system",
        "ferrolb-controller",
        "pod-a",
        LeaseTimings::default(),
    );
    let el = std::sync::Arc::new(el);
    let e1 = el.clone();
    let task = tokio::spawn(async move { e1.round().await });
    expect(
        &mut h,
        "GET",
        LEASE_PATH,
        StatusCode::NOT_FOUND,
        not_found(),
    )
    .await;
    let (_, _, body) = expect(
        &mut h,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/ferrolb-system/leases",
        StatusCode::CREATED,
        lease("pod-a", "2026-11-24T12:00:00.000000Z", "1"),
    )
    .await;
    assert_eq!(body["spec"]["holderIdentity"], "pod-a");
    assert_eq!(body["spec"]["leaseTransitions"], 0);
    assert!(task.await.unwrap().unwrap(), "creator leads");

    let e2 = el.clone();
    let task = tokio::spawn(async move { e2.round().await });
    expect(
        &mut h,
        "GET",
        LEASE_PATH,
        StatusCode::OK,
        lease("pod-a", "2026-11-24T12:00:00.000000Z", "7"),
    )
    .await;
    let (_, _, body) = expect(
        &mut h,
        "PUT",
        LEASE_PATH,
        StatusCode::OK,
        lease("pod-a", "2026-11-24T12:00:02.000000Z", "8"),
    )
    .await;
    assert_eq!(
        body["metadata"]["resourceVersion"], "7",
        "optimistic concurrency"
    );
    assert_eq!(
        body["spec"]["leaseTransitions"], 2,
        "renewal is not a transition"
    );
    assert_ne!(body["spec"]["renewTime"], "2026-11-24T12:00:00.000000Z");
    assert!(task.await.unwrap().unwrap());
}

#[tokio::test]
async fn a_valid_foreign_lease_is_followed_and_a_lost_race_is_not_leadership() {
    let (client, mut h) = mock();
    let el = std::sync::Arc::new(Elector::new(
        client,
        "ferrolb-system",
        "ferrolb-controller",
        "pod-b",
        LeaseTimings::default(),
    ));
    let fresh = k8s_openapi::jiff::Timestamp::now().to_string();
    let e1 = el.clone();
    let task = tokio::spawn(async move { e1.round().await });
    expect(
        &mut h,
        "GET",
        LEASE_PATH,
        StatusCode::OK,
        lease("pod-a", &fresh, "7"),
    )
    .await;
    assert!(
        !task.await.unwrap().unwrap(),
        "another replica holds a fresh lease"
    );

    let e2 = el.clone();
    let task = tokio::spawn(async move { e2.round().await });
    expect(
        &mut h,
        "GET",
        LEASE_PATH,
        StatusCode::OK,
        lease("pod-a", "2020-01-01T00:00:00.000000Z", "7"),
    )
    .await;
    let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict"});
    let (_, _, body) = expect(&mut h, "PUT", LEASE_PATH, StatusCode::CONFLICT, conflict).await;
    assert_eq!(body["spec"]["holderIdentity"], "pod-b");
    assert_eq!(body["spec"]["leaseTransitions"], 3);
    assert!(
        !task.await.unwrap().unwrap(),
        "the other replica won the race"
    );
}

#[test]
fn nothing_is_written_when_the_api_server_already_has_it() {
    let mut snap = ClusterSnapshot::default();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "LoadBalancer"}
    }))
    .unwrap();
    snap.services.push(svc.into());
    snap.pools.push(serde_json::from_value(json!({
        "apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "lan", "namespace": "ferrolb-system"}, "spec": {"addresses": ["10.0.0.0/30"]}
    })).unwrap());
    let now = "2026-11-24T12:00:00Z".parse().unwrap();
    let mut rec = Reconciler::new("ferrolb.io/ferrolb");
    let out = rec.reconcile(&snap, now);
    let (services, pools) = changes(&snap, &out);
    assert_eq!(services.len(), 1);
    assert_eq!(pools.len(), 1);
    // The API server now holds what was written.
    let r = &services[0];
    let s = std::sync::Arc::make_mut(&mut snap.services[0]);
    s.metadata.annotations = Some(r.annotations.clone());
    let st = s.status.get_or_insert_with(Default::default);
    st.load_balancer = Some(r.load_balancer.clone());
    st.conditions = Some(r.conditions.clone());
    assert_eq!(r.conditions[0].type_, ADDRESS_ASSIGNED);
    snap.pools[0].status = Some(pools[0].status.clone());
    let out = rec.reconcile(&snap, now);
    let (services, pools) = changes(&snap, &out);
    assert!(
        services.is_empty() && pools.is_empty(),
        "{services:?} {pools:?}"
    );
}

#[tokio::test]
async fn releasing_applies_an_empty_status_so_owned_fields_are_removed() {
    let mut snap = ClusterSnapshot::default();
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"ferrolb.io/ip-allocated-from-pool": "lan"}},
        "spec": {"type": "LoadBalancer"},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.0", "ipMode": "VIP"}]}}
    }))
    .unwrap();
    snap.services.push(svc.into());
    snap.pools.push(serde_json::from_value(json!({
        "apiVersion": "ferrolb.io/v1beta1", "kind": "IPAddressPool",
        "metadata": {"name": "lan", "namespace": "ferrolb-system"}, "spec": {"addresses": ["10.0.0.0/30"]}
    })).unwrap());
    let now = "2026-11-24T12:00:00Z".parse().unwrap();
    let mut rec = Reconciler::new("ferrolb.io/ferrolb");
    rec.reconcile(&snap, now);
    // The Service becomes a NodePort: its address is released and its status cleared.
    std::sync::Arc::make_mut(&mut snap.services[0])
        .spec
        .as_mut()
        .unwrap()
        .type_ = Some("NodePort".into());
    let out = rec.reconcile(&snap, now);
    let (services, _) = changes(&snap, &out);
    assert_eq!(services.len(), 1);
    let (client, mut h) = mock();
    let sink = KubeSink::new(client, "ferrolb-system", "ferrolb-controller", None);
    let r = services[0].clone();
    let task = tokio::spawn(async move { sink.write_service(&r).await });
    let (_, _, body) = expect(
        &mut h,
        "PATCH",
        "/api/v1/namespaces/default/services/web/status",
        StatusCode::OK,
        service_json(),
    )
    .await;
    assert_eq!(
        body["status"],
        json!({"loadBalancer": {}, "conditions": []})
    );
    let (_, _, body) = expect(
        &mut h,
        "PATCH",
        "/api/v1/namespaces/default/services/web",
        StatusCode::OK,
        service_json(),
    )
    .await;
    assert_eq!(body["metadata"]["annotations"], json!({}));
    task.await.unwrap().unwrap();
}
