//! The Announced condition from what the speakers report: no speaker on the
//! eligible nodes, every BGP session of the announcing nodes down, each only after
//! the grace period, with Events capped per reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ferrolb_controller::reconcile::{ANNOUNCED, Outcome, Reconciler};
use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::source::FileSource;
use ferrolb_crds::source::status::SpeakerStatusFile;
use ferrolb_crds::v1beta1::BGPSessionStateStatus;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

const CLASS: &str = "ferrolb.io/ferrolb";
const GRACE: SignedDuration = SignedDuration::from_secs(30);

fn t(secs: i64) -> Timestamp {
    let t0: Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
    t0.checked_add(SignedDuration::from_secs(secs)).unwrap()
}

const POOL: &str = "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lan, namespace: ferrolb-system}\nspec: {addresses: [10.0.0.0/24]}\n";

fn node(name: &str, labels: &str) -> String {
    format!("---\napiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n")
}

fn services(n: usize) -> String {
    (0..n)
        .map(|i| format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: web{i}, namespace: default}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"))
        .collect()
}

fn snapshot(files: &[(&str, String)]) -> ClusterSnapshot {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    let l = FileSource::new(d.path()).load().unwrap();
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    l.snapshot
}

fn speaker(node: &str, sessions: &[(&str, &str)]) -> SpeakerStatusFile {
    SpeakerStatusFile {
        node: node.into(),
        sessions: sessions
            .iter()
            .map(|(peer, state)| BGPSessionStateStatus {
                node: Some(node.into()),
                peer: Some((*peer).into()),
                bgp_status: Some((*state).into()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// (status, reason, message) of web0's Announced condition.
fn announced(out: &Outcome) -> (String, String, String) {
    let r = out.services.iter().find(|s| s.name == "web0").unwrap();
    let c = r.conditions.iter().find(|c| c.type_ == ANNOUNCED).unwrap();
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn warnings<'a>(out: &'a Outcome, reason: &str) -> Vec<&'a str> {
    out.events
        .iter()
        .filter(|e| e.type_ == "Warning" && e.reason == reason)
        .map(|e| e.involved_object.name.as_str())
        .collect()
}

#[test]
fn eligible_nodes_without_a_speaker_are_reported_after_the_grace_period() {
    // Only n2 may announce (node selector); its speaker is not running.
    let l2 = "apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, namespace: ferrolb-system}\nspec: {nodeSelectors: [{matchLabels: {edge: 'true'}}]}\n";
    let snap = snapshot(&[
        ("pool.yaml", POOL.into()),
        ("l2.yaml", l2.into()),
        ("nodes.yaml", node("n1", "") + &node("n2", "edge: 'true'")),
        ("svc.yaml", services(1)),
    ]);
    let only_n1 = [speaker("n1", &[])];
    let mut rec = Reconciler::new(CLASS).with_speaker_grace(GRACE);
    let first = rec.reconcile_with(&snap, Some(&only_n1), t(0));
    assert_eq!(announced(&first).0, "True", "within the grace period");
    assert_eq!(first.recheck_at, Some(t(30)), "asks to pass again then");
    let still = rec.reconcile_with(&snap, Some(&only_n1), t(29));
    assert_eq!(announced(&still).0, "True");
    let late = rec.reconcile_with(&snap, Some(&only_n1), t(30));
    let (status, reason, message) = announced(&late);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NoSpeaker"));
    assert_eq!(
        message,
        "10.0.0.0 assigned but not announced: no node may announce: no ferrolb-speaker runs there; run ferrolb-speaker on the nodes (DaemonSet nodeSelector and tolerations; with the file source, ferrolb-speaker --source file --node NODE)"
    );
    assert_eq!(warnings(&late, "NoSpeaker"), ["web0"]);
    assert_eq!(late.recheck_at, None, "nothing left pending");

    // The speaker starts on n2: announced again.
    let both = [speaker("n1", &[]), speaker("n2", &[])];
    assert_eq!(
        announced(&rec.reconcile_with(&snap, Some(&both), t(31))).0,
        "True"
    );
    // Gone again: a new grace period starts, counted from now.
    let again = rec.reconcile_with(&snap, Some(&only_n1), t(40));
    assert_eq!(announced(&again).0, "True");
    assert_eq!(again.recheck_at, Some(t(70)));

    // Nothing known of the speakers (no status at all): never reported.
    let mut blind = Reconciler::new(CLASS).with_speaker_grace(GRACE);
    blind.reconcile_with(&snap, None, t(0));
    let out = blind.reconcile_with(&snap, None, t(3600));
    assert_eq!(announced(&out).0, "True");
    assert_eq!(out.recheck_at, None);
}

#[test]
fn every_session_of_the_announcing_nodes_down_is_reported_after_the_grace_period() {
    let config = "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgp, namespace: ferrolb-system}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: tor, namespace: ferrolb-system}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 10.1.0.1}\n";
    let snap = snapshot(&[
        ("pool.yaml", POOL.into()),
        ("bgp.yaml", config.into()),
        ("nodes.yaml", node("n1", "") + &node("n2", "")),
        ("svc.yaml", services(30)),
    ]);
    let mut rec = Reconciler::new(CLASS).with_speaker_grace(GRACE);
    let one_up = [
        speaker("n1", &[("tor", "Active")]),
        speaker("n2", &[("tor", "Established")]),
    ];
    assert_eq!(
        announced(&rec.reconcile_with(&snap, Some(&one_up), t(0))).0,
        "True"
    );
    // n1's session has been down 30 s, but n2 still carries the routes.
    assert_eq!(
        announced(&rec.reconcile_with(&snap, Some(&one_up), t(30))).0,
        "True"
    );
    // n2's goes down at 40 s (n2 reports no session object at all for it).
    let none_up = [speaker("n1", &[("tor", "Connect")]), speaker("n2", &[])];
    let pending = rec.reconcile_with(&snap, Some(&none_up), t(40));
    assert_eq!(announced(&pending).0, "True");
    assert_eq!(pending.recheck_at, Some(t(70)));
    let down = rec.reconcile_with(&snap, Some(&none_up), t(70));
    let (status, reason, message) = announced(&down);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "PeersDown"));
    assert_eq!(
        message,
        "10.0.0.0 assigned but not announced: every BGP session of the announcing nodes is down (n1 to tor, n2 to tor); check spec.peerAddress, spec.peerASN, spec.myASN and the password of BGPPeer tor against the router, and that the router accepts TCP 179 from the nodes"
    );
    // Thirty Services, one cause: the condition on all, Events for the first 20.
    let false_count = down
        .services
        .iter()
        .filter(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == ANNOUNCED && c.status == "False" && c.reason == "PeersDown")
        })
        .count();
    assert_eq!(false_count, 30);
    assert_eq!(warnings(&down, "PeersDown").len(), 20);
    // A session comes back: announced.
    let back = [speaker("n1", &[("tor", "Established")]), speaker("n2", &[])];
    assert_eq!(
        announced(&rec.reconcile_with(&snap, Some(&back), t(71))).0,
        "True"
    );
}

#[test]
fn a_bgp_advertisement_without_a_peer_for_the_announcing_nodes_is_reported_at_once() {
    // The only BGPPeer selects nodes labelled rack=b; the nodes are rack=a.
    let config = "apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgp, namespace: ferrolb-system}\n---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: tor, namespace: ferrolb-system}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 10.1.0.1, nodeSelectors: [{matchLabels: {rack: b}}]}\n";
    let snap = snapshot(&[
        ("pool.yaml", POOL.into()),
        ("bgp.yaml", config.into()),
        ("nodes.yaml", node("n1", "rack: a")),
        ("svc.yaml", services(1)),
    ]);
    let mut rec = Reconciler::new(CLASS).with_speaker_grace(GRACE);
    // Configuration alone says so: no speaker status needed, no grace period.
    let out = rec.reconcile_with(&snap, None, t(0));
    let (status, reason, message) = announced(&out);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "NoPeer"));
    assert_eq!(
        message,
        "10.0.0.0 assigned but not announced: no BGPPeer applies to n1; create a BGPPeer, or fix spec.nodeSelectors of the BGPPeers or spec.peers of the BGPAdvertisements"
    );
    assert_eq!(warnings(&out, "NoPeer"), ["web0"]);
}
