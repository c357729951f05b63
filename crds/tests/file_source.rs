//! The file source: a directory of YAML in, `status/` out, changes watched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferrolb_crds::source::file::speaker_file;
use ferrolb_crds::source::status::{
    EventRecord, ObjectRef, ServiceStatusRecord, SpeakerStatusFile,
};
use ferrolb_crds::source::{FileSource, SnapshotSource, SourceError, StatusSink};
use ferrolb_crds::v1beta1::ServiceL2StatusStatus;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, LoadBalancerStatus};

fn samples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples")
}

#[test]
fn loads_the_sample_directory_into_a_snapshot() {
    let loaded = FileSource::new(samples()).load().unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let s = &loaded.snapshot;
    assert_eq!(s.pools.len(), 3);
    assert_eq!(s.l2_advertisements.len(), 1);
    assert_eq!(s.bgp_advertisements.len(), 1);
    assert_eq!(s.peers.len(), 3);
    assert_eq!(s.communities.len(), 1);
    assert_eq!(s.bfd_profiles.len(), 1);
    assert_eq!(s.services.len(), 2);
    assert_eq!(s.nodes.len(), 2);
    assert_eq!(s.namespaces.len(), 1);
    assert_eq!(s.secrets.len(), 1);
    assert_eq!(s.endpoint_slices.len(), 1);
    // Sorted by namespace then name, so equal directories give equal snapshots.
    let svc: Vec<_> = s
        .services
        .iter()
        .map(|x| x.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(svc, ["web", "api"]);
}

#[test]
fn a_broken_file_is_reported_with_path_and_line_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.yml"),
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n2\n---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: p\nspec:\n  addresses: 10.0.0.0/24\n  autoAssign: [oops\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
    let loaded = FileSource::new(dir.path()).load().unwrap();
    let names: Vec<_> = loaded
        .snapshot
        .nodes
        .iter()
        .map(|n| n.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["n1", "n2"]);
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    let SourceError::Yaml(e) = &loaded.errors[0] else {
        panic!("{:?}", loaded.errors[0])
    };
    assert_eq!(e.file, dir.path().join("broken.yml"));
    assert!((11..=12).contains(&e.line), "{e}");
    let text = loaded.errors[0].to_string();
    assert!(
        text.starts_with(&format!("{}:", dir.path().join("broken.yml").display())),
        "{text}"
    );
}

#[test]
fn a_type_error_points_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("peers.yaml"),
        "# peers\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata:\n  name: p\nspec:\n  myASN: 64512\n  peerASN: many\n  peerAddress: 10.0.0.1\n",
    )
    .unwrap();
    let loaded = FileSource::new(dir.path()).load().unwrap();
    assert!(loaded.snapshot.peers.is_empty());
    let SourceError::Yaml(e) = &loaded.errors[0] else {
        panic!()
    };
    assert_eq!(e.line, 9, "{e}");
}

#[test]
fn duplicate_objects_keep_the_first_and_name_both_places() {
    let dir = tempfile::tempdir().unwrap();
    let node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n";
    std::fs::write(dir.path().join("a.yaml"), node).unwrap();
    std::fs::write(dir.path().join("b.yaml"), format!("# again\n---\n{node}")).unwrap();
    let loaded = FileSource::new(dir.path()).load().unwrap();
    assert_eq!(loaded.snapshot.nodes.len(), 1);
    let msg = loaded.errors[0].to_string();
    assert!(
        msg.contains("b.yaml:3") && msg.contains("a.yaml:1"),
        "{msg}"
    );
}

#[test]
fn a_missing_directory_is_an_error_naming_it() {
    let err = FileSource::new("/nonexistent/flb-dir").load().unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/flb-dir:"),
        "{err}"
    );
}

fn record(ip: &str) -> ServiceStatusRecord {
    ServiceStatusRecord {
        namespace: "default".into(),
        name: "web".into(),
        annotations: BTreeMap::from([(
            "ferrolb.io/ip-allocated-from-pool".to_string(),
            "lan".to_string(),
        )]),
        load_balancer: LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                ip: Some(ip.into()),
                ip_mode: Some("VIP".into()),
                ..Default::default()
            }]),
        },
        conditions: vec![],
    }
}

#[tokio::test]
async fn service_status_written_is_read_back_on_the_services() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        samples().join("cluster.yaml"),
        dir.path().join("cluster.yaml"),
    )
    .unwrap();
    let src = FileSource::new(dir.path());
    src.write_services(&[record("192.168.10.1")]).await.unwrap();
    let text = std::fs::read_to_string(dir.path().join("status/services.yaml")).unwrap();
    assert!(
        text.contains("192.168.10.1") && text.contains("ip-allocated-from-pool"),
        "{text}"
    );
    let loaded = src.load().unwrap();
    let web = loaded
        .snapshot
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("web"))
        .unwrap();
    let ingress = web
        .status
        .as_ref()
        .unwrap()
        .load_balancer
        .as_ref()
        .unwrap()
        .ingress
        .as_ref()
        .unwrap();
    assert_eq!(ingress[0].ip.as_deref(), Some("192.168.10.1"));
    assert_eq!(
        web.metadata.annotations.as_ref().unwrap()["ferrolb.io/ip-allocated-from-pool"],
        "lan"
    );
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("status"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
}

#[tokio::test]
async fn speaker_status_and_events_land_in_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = FileSource::new(dir.path());
    let st = SpeakerStatusFile {
        node: "node-1".into(),
        l2: vec![ServiceL2StatusStatus {
            node: Some("node-1".into()),
            service_name: Some("web".into()),
            service_namespace: Some("default".into()),
            interfaces: vec![],
        }],
        ..Default::default()
    };
    src.write_speaker(&st).await.unwrap();
    let back: SpeakerStatusFile = serde_saphyr::from_str(
        &std::fs::read_to_string(dir.path().join("status/speaker-node-1.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(back, st);
    let ev = EventRecord {
        type_: "Normal".into(),
        reason: "IPAllocated".into(),
        message: "Assigned IP [\"192.168.10.1\"]".into(),
        involved_object: ObjectRef {
            kind: "Service".into(),
            namespace: "default".into(),
            name: "web".into(),
        },
        reporting_component: "ferrolb-controller".into(),
        event_time: "2026-11-24T17:00:00Z".into(),
    };
    src.emit_events(&[ev.clone(), ev.clone()]).await.unwrap();
    src.emit_events(std::slice::from_ref(&ev)).await.unwrap();
    let lines: Vec<EventRecord> = std::fs::read_to_string(dir.path().join("status/events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, vec![ev.clone(), ev.clone(), ev]);
}

#[test]
fn node_names_cannot_escape_the_status_directory() {
    assert_eq!(
        speaker_file("node-1.example"),
        "speaker-node-1.example.yaml"
    );
    assert_eq!(
        speaker_file("../../etc/passwd"),
        "speaker-_.._etc_passwd.yaml"
    );
}

#[tokio::test]
async fn the_watch_delivers_a_new_snapshot_after_a_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nodes.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    )
    .unwrap();
    let src = FileSource::new(dir.path());
    let w = src.watch().unwrap();
    let mut rx = w.snapshots();
    assert_eq!(rx.borrow().snapshot.nodes.len(), 1);
    std::fs::write(
        dir.path().join("more.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n2\n",
    )
    .unwrap();
    // A generous bound that only guards against hanging forever.
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            rx.changed().await.unwrap();
            if rx.borrow().snapshot.nodes.len() == 2 {
                break;
            }
        }
    })
    .await
    .expect("no snapshot with the new node");
    // Status written by the controller reaches the speakers through the same watch.
    src.write_services_sync(&[]).unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "kind: [").unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            rx.changed().await.unwrap();
            if !rx.borrow().errors.is_empty() {
                break;
            }
        }
    })
    .await
    .expect("no snapshot reporting the bad file");
    assert_eq!(
        rx.borrow().snapshot.nodes.len(),
        2,
        "a bad file must not drop the good objects"
    );
}

#[test]
fn advertisements_without_spec_load_as_in_metallb() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("l2.yaml"),
        "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: all\n  namespace: ferrolb-system\n",
    )
    .unwrap();
    let loaded = FileSource::new(dir.path()).load().unwrap();
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.snapshot.l2_advertisements.len(), 1);
    let crd = ferrolb_crds::crdgen::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "L2Advertisement")
        .unwrap();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    assert!(
        schema
            .required
            .as_ref()
            .is_none_or(|r| !r.contains(&"spec".to_string()))
    );
    assert_eq!(
        schema.properties.as_ref().unwrap()["spec"]
            .default
            .as_ref()
            .unwrap()
            .0,
        serde_json::json!({})
    );
    let pool = ferrolb_crds::crdgen::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "IPAddressPool")
        .unwrap();
    let schema = pool.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    assert!(
        schema
            .required
            .as_ref()
            .unwrap()
            .contains(&"spec".to_string()),
        "a pool needs its addresses"
    );
}

#[tokio::test]
async fn the_watch_sees_an_existing_file_rewritten_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("nodes.yaml");
    std::fs::write(&f, "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n").unwrap();
    let w = FileSource::new(dir.path()).watch().unwrap();
    let mut rx = w.snapshots();
    rx.borrow_and_update();
    std::fs::write(
        &f,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels: {a: b}\n",
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .expect("no snapshot after rewriting a file")
        .unwrap();
    assert!(rx.borrow().snapshot.nodes[0].metadata.labels.is_some());
}

#[tokio::test]
async fn the_watch_works_with_a_relative_directory() {
    let dir = tempfile::tempdir_in(".").unwrap();
    let rel = dir
        .path()
        .strip_prefix(std::env::current_dir().unwrap())
        .unwrap()
        .to_path_buf();
    assert!(rel.is_relative());
    std::fs::write(
        dir.path().join("a.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    )
    .unwrap();
    let w = FileSource::new(&rel).watch().unwrap();
    let mut rx = w.snapshots();
    rx.borrow_and_update();
    std::fs::write(
        dir.path().join("a.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n2\n",
    )
    .unwrap();
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .expect("no snapshot for a relative --dir")
        .unwrap();
    assert_eq!(
        rx.borrow().snapshot.nodes[0].metadata.name.as_deref(),
        Some("n2")
    );
}

#[test]
fn status_of_twenty_thousand_services_is_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = FileSource::new(dir.path());
    let records: Vec<ServiceStatusRecord> = (0..20_000)
        .map(|i| ServiceStatusRecord {
            name: format!("s{i}"),
            ..record("10.0.0.1")
        })
        .collect();
    src.write_services_sync(&records).unwrap();
    assert_eq!(src.read_services().unwrap().services.len(), 20_000);
}

#[tokio::test]
async fn reading_the_directory_does_not_trigger_a_reload() {
    // Several processes share one directory (controller, speakers): each one's
    // reads must not wake the others, or they reload each other forever.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nodes.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    )
    .unwrap();
    let src = FileSource::new(dir.path());
    src.write_services_sync(&[]).unwrap();
    let w = src.watch().unwrap();
    for _ in 0..20 {
        FileSource::new(dir.path()).load().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.reloads(), 0);
    // A write does.
    std::fs::write(dir.path().join("more.yaml"), "").unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        while w.reloads() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a write reloads");
}

#[test]
fn a_cached_load_equals_a_fresh_one_after_every_kind_of_change() {
    use ferrolb_crds::source::file::ParseCache;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let node = |n: &str| format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n");
    std::fs::write(d.join("a.yaml"), node("a")).unwrap();
    std::fs::write(d.join("b.yaml"), node("b")).unwrap();
    std::fs::write(d.join("bad.yaml"), "kind: [").unwrap();
    let src = FileSource::new(d);
    let mut cache = ParseCache::default();
    let first = src.load_with(&mut cache).unwrap();
    assert_eq!(first, src.load().unwrap());
    assert_eq!(first.errors.len(), 1, "the cached errors come back too");
    // Unchanged: the same result from the cache.
    assert_eq!(src.load_with(&mut cache).unwrap(), first);
    // Rewritten in place with the same length, added, removed.
    std::fs::write(d.join("a.yaml"), node("c")).unwrap();
    std::fs::write(d.join("d.yaml"), node("d")).unwrap();
    std::fs::remove_file(d.join("b.yaml")).unwrap();
    let after = src.load_with(&mut cache).unwrap();
    assert_eq!(after, src.load().unwrap());
    let names: Vec<_> = after
        .snapshot
        .nodes
        .iter()
        .map(|n| n.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["c", "d"]);
}

#[tokio::test]
async fn the_controller_view_reads_speaker_heads_and_wakes_on_their_changes() {
    use ferrolb_crds::v1beta1::{BGPSessionStateStatus, ServiceBGPStatusStatus};
    let dir = tempfile::tempdir().unwrap();
    let plain = FileSource::new(dir.path());
    let view = FileSource::new(dir.path()).with_speakers();
    // No speaker file at all: nothing is known (None), not "no speakers".
    assert_eq!(view.load().unwrap().speakers, None);
    let w = view.watch().unwrap();
    let mut rx = w.snapshots();
    rx.borrow_and_update();
    let session = |state: &str| BGPSessionStateStatus {
        node: Some("n1".into()),
        peer: Some("router".into()),
        bgp_status: Some(state.into()),
        ..Default::default()
    };
    let st = SpeakerStatusFile {
        node: "n1".into(),
        bgp: vec![
            ServiceBGPStatusStatus {
                node: Some("n1".into()),
                service_name: Some("web".into()),
                service_namespace: Some("default".into()),
                ..Default::default()
            }
            .into(),
        ]
        .into(),
        sessions: vec![session("Active")],
        ..Default::default()
    };
    plain.write_speaker_sync(&st).unwrap();
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .expect("a speaker file wakes the controller's view")
        .unwrap();
    let heads = rx.borrow_and_update().speakers.clone().unwrap();
    // The per-Service entries are not read: only node, findings and sessions.
    assert_eq!(
        heads,
        [SpeakerStatusFile {
            bgp: Default::default(),
            ..st.clone()
        }]
    );
    plain
        .write_speaker_sync(&SpeakerStatusFile {
            sessions: vec![session("Established")],
            ..st
        })
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .expect("a changed speaker file wakes it again")
        .unwrap();
    let heads = rx.borrow_and_update().speakers.clone().unwrap();
    assert_eq!(heads[0].sessions, [session("Established")]);
    // A speaker's own view (without speakers) never reads them.
    assert_eq!(plain.load().unwrap().speakers, None);
    // A bad speaker file is named, and counts as no speaker there.
    std::fs::write(dir.path().join("status/speaker-n2.yaml"), "node: [").unwrap();
    let loaded = view.load().unwrap();
    assert_eq!(loaded.speakers.unwrap().len(), 1);
    assert!(
        loaded
            .errors
            .iter()
            .any(|e| e.to_string().contains("speaker-n2.yaml")),
        "{:?}",
        loaded.errors
    );
}

#[tokio::test]
async fn unchanged_services_are_the_same_objects_in_the_next_load() {
    use ferrolb_crds::source::file::ParseCache;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let svc = |n: &str, port: u16| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {n}}}\nspec: {{type: LoadBalancer, ports: [{{port: {port}}}]}}\n---\n"
        )
    };
    std::fs::write(d.join("a.yaml"), svc("web", 80) + &svc("db", 5432)).unwrap();
    std::fs::write(d.join("b.yaml"), svc("dns", 53)).unwrap();
    let src = FileSource::new(d);
    let rec = |name: &str, ip: &str| {
        let mut r = record(ip);
        r.name = name.into();
        r
    };
    src.write_services(&[rec("web", "192.168.10.1"), rec("db", "192.168.10.2")])
        .await
        .unwrap();
    let mut cache = ParseCache::default();
    let by_name = |l: &ferrolb_crds::source::Loaded, n: &str| {
        l.snapshot
            .services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(n))
            .cloned()
            .unwrap()
    };
    let ip = |s: &Arc<k8s_openapi::api::core::v1::Service>| {
        s.status
            .as_ref()
            .unwrap()
            .load_balancer
            .as_ref()
            .unwrap()
            .ingress
            .as_ref()
            .unwrap()[0]
            .ip
            .clone()
            .unwrap()
    };
    let first = src.load_with(&mut cache).unwrap();
    // A new status for one Service, another file rewritten.
    src.write_services(&[rec("web", "192.168.10.1"), rec("db", "192.168.10.9")])
        .await
        .unwrap();
    std::fs::write(d.join("b.yaml"), svc("dns", 5353)).unwrap();
    let second = src.load_with(&mut cache).unwrap();
    assert_eq!(
        second,
        src.load().unwrap(),
        "the cached load is the fresh one"
    );
    assert!(Arc::ptr_eq(
        &by_name(&first, "web"),
        &by_name(&second, "web")
    ));
    assert!(!Arc::ptr_eq(
        &by_name(&first, "db"),
        &by_name(&second, "db")
    ));
    assert_eq!(ip(&by_name(&second, "db")), "192.168.10.9");
    let dns = by_name(&second, "dns");
    assert!(!Arc::ptr_eq(&by_name(&first, "dns"), &dns));
    assert_eq!(
        dns.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
        5353
    );
    // Nothing changed: every Service is the one of the load before.
    let third = src.load_with(&mut cache).unwrap();
    for (a, b) in second
        .snapshot
        .services
        .iter()
        .zip(&third.snapshot.services)
    {
        assert!(Arc::ptr_eq(a, b), "{:?}", a.metadata.name);
    }
    // Only the status changed: the user's objects come from the last load.
    src.write_services(&[rec("web", "192.168.10.7"), rec("db", "192.168.10.9")])
        .await
        .unwrap();
    let fourth = src.load_with(&mut cache).unwrap();
    assert_eq!(fourth, src.load().unwrap());
    assert_eq!(ip(&by_name(&fourth, "web")), "192.168.10.7");
    assert!(Arc::ptr_eq(
        &by_name(&third, "dns"),
        &by_name(&fourth, "dns")
    ));
    assert!(Arc::ptr_eq(&by_name(&third, "db"), &by_name(&fourth, "db")));
    // A Service sorting first is added: every other one moves one place down and
    // is still the one of the load before, with its status.
    std::fs::write(d.join("0.yaml"), svc("aaa", 1)).unwrap();
    let fifth = src.load_with(&mut cache).unwrap();
    assert_eq!(fifth, src.load().unwrap());
    assert_eq!(
        fifth.snapshot.services[0].metadata.name.as_deref(),
        Some("aaa")
    );
    for n in ["web", "db", "dns"] {
        assert!(
            Arc::ptr_eq(&by_name(&fourth, n), &by_name(&fifth, n)),
            "{n}"
        );
    }
    // A Service edited under an unchanged status: the edit shows, and the status
    // is still on it.
    std::fs::write(d.join("a.yaml"), svc("web", 8080) + &svc("db", 5432)).unwrap();
    let sixth = src.load_with(&mut cache).unwrap();
    assert_eq!(sixth, src.load().unwrap());
    let web = by_name(&sixth, "web");
    assert_eq!(
        web.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port,
        8080
    );
    assert_eq!(ip(&web), "192.168.10.7");
}
