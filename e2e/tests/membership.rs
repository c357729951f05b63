//! Speaker membership on a namespace LAN: a dead owner is replaced without its
//! Node turning NotReady, SIGTERM hands over without a lost probe, and a speaker
//! with another key is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ferrolb_e2e::lab::{eventually, unavailable};
use ferrolb_e2e::scenario::failover::{Mode, bed_with, finish, kill_node, owner, start_probe};
use ferrolb_e2e::scenario::http::outage;

fn keyed(_node: usize) -> Vec<String> {
    [
        "--memberlist-key",
        "lab-secret",
        "--metrics-address",
        "0.0.0.0:7473",
    ]
    .map(String::from)
    .to_vec()
}

fn logs(b: &ferrolb_e2e::scenario::failover::Bed) -> String {
    (1..=3)
        .map(|i| {
            format!(
                "--- n{i}\n{}",
                std::fs::read_to_string(b.dir.path().join(format!("speaker-n{i}.log")))
                    .unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn a_dead_owner_is_replaced_while_its_node_still_says_ready() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let mut b = bed_with(Mode::FerroLb, &keyed).unwrap();
    owner(&b).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let victim = owner(&b).unwrap();
    let p = start_probe(&b).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let at = kill_node(&mut b, victim).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (attempts, names) = finish(p).unwrap();
    let o = outage(&attempts, at).unwrap_or_else(|| panic!("no echo after the kill\n{}", logs(&b)));
    println!(
        "outage {:?}, {} of {} probes failed",
        o.duration, o.failed, o.sent
    );
    // The echo came from the dead node before and from another one after.
    assert_eq!(names.len(), 2, "{names:?}");
    let new = owner(&b).unwrap();
    assert_ne!(new, victim);
    // The Node objects were never touched: membership found the death.
    let nodes = std::fs::read_to_string(b.dir.path().join("config.yaml")).unwrap();
    assert!(!nodes.contains("Ready"), "{nodes}");
    let all = logs(&b);
    assert!(all.contains("member declared dead"), "{all}");
    assert!(
        all.contains(&format!("member=n{victim} state=Dead")),
        "{all}"
    );
}

#[test]
fn sigterm_hands_over_without_a_lost_probe() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let mut b = bed_with(Mode::FerroLb, &keyed).unwrap();
    owner(&b).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let victim = owner(&b).unwrap();
    let p = start_probe(&b).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let h = b.speakers[victim - 1];
    b.lan.stop(h, "TERM").unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let (attempts, _) = finish(p).unwrap();
    let failed = attempts.iter().filter(|a| !a.ok).count();
    assert_eq!(
        failed,
        0,
        "{failed} of {} probes failed\n{}",
        attempts.len(),
        logs(&b)
    );
    let new = owner(&b).unwrap();
    assert_ne!(new, victim, "{}", logs(&b));
    let left =
        std::fs::read_to_string(b.dir.path().join(format!("speaker-n{victim}.log"))).unwrap();
    assert!(left.contains("handover done"), "{left}");
}

#[test]
fn a_speaker_with_another_key_is_refused() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let b = bed_with(Mode::FerroLb, &|i| {
        let mut a = keyed(i);
        if i == 3 {
            a[1] = "another-secret".into();
        }
        a
    })
    .unwrap();
    let ns = b.lan.nodes[0].clone();
    let refused = eventually(
        Duration::from_secs(10),
        "n1 to refuse n3's messages",
        || {
            let out = b
                .lan
                .exec(&ns, &["curl", "-s", "localhost:7473/metrics"])
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .find(|l| {
                    l.starts_with(
                        "ferrolb_membership_messages_refused_total{reason=\"authentication\"}",
                    )
                })
                .map(String::from)
        },
    );
    assert!(refused.is_ok(), "{}", logs(&b));
    let n1 = std::fs::read_to_string(b.dir.path().join("speaker-n1.log")).unwrap();
    assert!(n1.contains("authentication failed"), "{n1}");
}
