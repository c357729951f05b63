//! A misbehaving BGP peer (a Python script in a namespace): every malformed or
//! unexpected message ends the session with the NOTIFICATION RFC 4271 asks for,
//! and the speaker reconnects by itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};

use ferrolb_e2e::lab::{Lan, unavailable};

#[test]
fn each_bad_message_gets_the_right_notification_and_the_speaker_reconnects() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: hostile}}\nspec: {{myASN: 64512, peerASN: 64500, peerAddress: {r}, holdTime: 9s, connectTime: 1s}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n",
            r = Lan::v4(0)
        ),
    )
    .unwrap();
    let mut lan = Lan::new(1).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/hostile_bgp.py");
    let scenarios = [
        "bad-marker",
        "bad-length",
        "bad-type",
        "bad-version",
        "bad-hold",
        "wrong-as",
        "unexpected-open",
        "truncated-update",
    ];
    let peer = Command::new("ip")
        .args(["netns", "exec", &lan.client, "python3"])
        .arg(&script)
        .arg(Lan::v4(0))
        .args(scenarios)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let node = lan.nodes[0].clone();
    // One speaker for the whole run: after each failure it must come back by itself.
    lan.spawn_speaker(&node, "n1", dir.path(), "speaker.log", &[])
        .unwrap();
    let out = peer.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let log = std::fs::read_to_string(dir.path().join("speaker.log")).unwrap_or_default();
    assert_eq!(
        lines.len(),
        scenarios.len(),
        "the speaker did not reconnect after every failure:\n{log}"
    );
    let expect: [(&str, serde_json::Value); 8] = [
        ("bad-marker", serde_json::json!([1, 1, ""])),
        ("bad-length", serde_json::json!([1, 2, "0014"])),
        ("bad-type", serde_json::json!([1, 3, "09"])),
        ("bad-version", serde_json::json!([2, 1, "0004"])),
        ("bad-hold", serde_json::json!([2, 6, ""])),
        ("wrong-as", serde_json::json!([2, 2, ""])),
        ("unexpected-open", serde_json::json!([5, 3, ""])),
        ("truncated-update", serde_json::json!([1, 2, "0015"])),
    ];
    for (l, (name, n)) in lines.iter().zip(expect) {
        assert_eq!(l["scenario"], name);
        assert_eq!(l["notification"], n, "{name}:\n{log}");
    }
    let _ = lan;
}
