//! Address conflict: another host on the segment uses an address a speaker
//! announces. The speaker reports it with the other host's MAC, as a Warning Event
//! on the Service and a condition on its status, and `diagnose` shows it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, binary, controller_once, eventually, unavailable};

const VIP: &str = "10.77.0.200";

/// n1 runs a speaker announcing VIP for Service web; n2 is another host on the
/// LAN without one. Returns once n1 announces.
fn announced(d: &Path) -> (Lan, String) {
    std::fs::write(
        d.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan}}\nspec: {{addresses: ['{VIP}/32']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: lan}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n",
            Lan::v4(1)
        ),
    )
    .unwrap();
    controller_once(d).unwrap();
    let mut lan = Lan::new(2).unwrap();
    let n1 = lan.nodes[0].clone();
    let other = lan.nodes[1].clone();
    lan.spawn_speaker(&n1, "n1", d, "speaker.log", &[]).unwrap();
    let log = || std::fs::read_to_string(d.join("speaker.log")).unwrap_or_default();
    eventually(
        Duration::from_secs(10),
        "n1 to announce the address",
        || Some(()).filter(|_| log().contains("taking over: announcing")),
    )
    .unwrap();
    (lan, other)
}

#[test]
fn a_second_host_using_our_address_is_reported_with_its_mac() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (lan, imposter) = announced(d);
    let log = || std::fs::read_to_string(d.join("speaker.log")).unwrap_or_default();

    // The other host takes the address and talks from it: its ARP requests carry it
    // as the sender.
    let other_mac = lan.mac(&imposter).unwrap();
    lan.ip(
        &imposter,
        &["addr", "add", &format!("{VIP}/32"), "dev", "eth0"],
    )
    .unwrap();
    let _ = lan.exec(
        &imposter,
        &["ping", "-c", "2", "-W", "1", "-I", VIP, &Lan::v4(0)],
    );

    let events = eventually(Duration::from_secs(10), "an AddressConflict Event", || {
        std::fs::read_to_string(d.join("status/events.jsonl"))
            .ok()
            .filter(|e| e.contains("AddressConflict"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));
    let line = events
        .lines()
        .find(|l| l.contains("AddressConflict"))
        .unwrap();
    let ev: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(ev["type"], "Warning", "{line}");
    assert_eq!(ev["involvedObject"]["name"], "web", "{line}");
    assert_eq!(
        ev["message"],
        format!("another host (MAC {other_mac}) answers ARP for {VIP} which node n1 announces"),
        "{line}"
    );
    // One Event however many frames (rate-limited).
    let _ = lan.exec(
        &imposter,
        &["ping", "-c", "3", "-i", "0.2", "-I", VIP, &Lan::v4(0)],
    );
    let status = eventually(Duration::from_secs(10), "the speaker's condition", || {
        std::fs::read_to_string(d.join("status/speaker-n1.yaml"))
            .ok()
            .filter(|s| s.contains("AddressConflict"))
    })
    .unwrap();
    assert!(status.contains(&other_mac), "{status}");
    let events = std::fs::read_to_string(d.join("status/events.jsonl")).unwrap();
    assert_eq!(events.matches("AddressConflict").count(), 1, "{events}");

    // diagnose names the conflict.
    let out = Command::new(binary("ferrolb-controller").unwrap())
        .args(["diagnose", "default/web", "--source", "file", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&other_mac), "{text}");
}

#[test]
fn a_gratuitous_arp_reply_for_our_address_is_a_conflict_too() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (lan, other) = announced(d);
    let log = || std::fs::read_to_string(d.join("speaker.log")).unwrap_or_default();
    // Habets arping: -U -P sends unsolicited ARP replies (operation 2, broadcast).
    let other_mac = lan.mac(&other).unwrap();
    let _ = lan.exec(
        &other,
        &[
            "arping", "-U", "-P", "-c", "2", "-w", "1", "-i", "eth0", "-S", VIP, VIP,
        ],
    );
    let status = eventually(Duration::from_secs(10), "the speaker's condition", || {
        std::fs::read_to_string(d.join("status/speaker-n1.yaml"))
            .ok()
            .filter(|s| s.contains("AddressConflict"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));
    assert!(status.contains(&other_mac), "{status}");
}
