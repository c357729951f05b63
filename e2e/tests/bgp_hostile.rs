//! A misbehaving BGP peer (a Python script in a namespace): every malformed or
//! unexpected message ends the session with the NOTIFICATION RFC 4271 asks for (or,
//! for an error inside one attribute, RFC 7606's treat-as-withdraw keeps it), the
//! speaker logs it and reconnects by itself; meanwhile a well-behaved peer (BIRD)
//! keeps its session and routes, and layer 2 answering goes on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, controller_once, eventually, unavailable};

const VIP4: &str = "10.77.0.200";

fn birdc(lan: &Lan, sock: &Path, args: &[&str]) -> String {
    lan.birdc(&lan.client, sock, args).unwrap()
}

#[test]
fn each_bad_message_gets_the_right_notification_and_the_speaker_reconnects() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    if Command::new("bird").arg("--version").output().is_err() {
        panic!("BIRD 2 is not installed (./scripts/test installs bird2)");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: hostile}}\nspec: {{myASN: 64512, peerASN: 64500, peerAddress: {r}, holdTime: 9s, connectTime: 1s}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: bird}}\nspec: {{myASN: 64512, peerASN: 64501, peerAddress: {r}, peerPort: 1179, holdTime: 9s, connectTime: 1s}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: routed}}\nspec: {{addresses: [198.51.100.0/28]}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan}}\nspec: {{addresses: ['{VIP4}-10.77.0.205']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: routed}}\nspec: {{ipAddressPools: [routed]}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: lan}}\nspec: {{ipAddressPools: [lan]}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: routed, annotations: {{ferrolb.io/address-pool: routed}}}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: lan, annotations: {{ferrolb.io/address-pool: lan}}}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nstatus: {{addresses: [{{type: InternalIP, address: {n}}}]}}\n",
            r = Lan::v4(0),
            n = Lan::v4(1),
        ),
    )
    .unwrap();
    controller_once(dir.path()).unwrap();
    let mut lan = Lan::new(1).unwrap();

    // The good peer: BIRD on port 1179 of the same address.
    let client = lan.client.clone();
    let (sock, _) = lan
        .spawn_bird(
            &client,
            dir.path(),
            &format!(
            "router id {r};\nprotocol device {{}}\nprotocol bgp n1 {{\n  local {r} port 1179 as 64501;\n  neighbor {n} as 64512;\n  passive on;\n  hold time 9;\n  ipv4 {{ import all; export none; }};\n}}\n",
            r = Lan::v4(0),
            n = Lan::v4(1)
            ),
        )
        .unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/hostile_bgp.py");
    let expect: Vec<(&str, serde_json::Value)> = vec![
        ("bad-marker", serde_json::json!([1, 1, ""])),
        ("bad-length", serde_json::json!([1, 2, "0014"])),
        ("bad-type", serde_json::json!([1, 3, "09"])),
        ("bad-version", serde_json::json!([2, 1, "0004"])),
        ("bad-hold", serde_json::json!([2, 6, ""])),
        ("wrong-as", serde_json::json!([2, 2, ""])),
        ("bad-optional-param", serde_json::json!([2, 4, "01"])),
        ("unknown-capability", serde_json::json!("kept")),
        ("unexpected-open", serde_json::json!([5, 3, ""])),
        ("truncated-update", serde_json::json!([1, 2, "0015"])),
        ("update-bad-lengths", serde_json::json!([3, 1, ""])),
        ("update-bad-nlri", serde_json::json!([3, 10, ""])),
        ("update-bad-mp", serde_json::json!([3, 9, ""])),
        ("update-bad-attribute", serde_json::json!("kept")),
        ("silent", serde_json::json!("silent")),
        ("hold-expires", serde_json::json!([4, 0, ""])),
        ("flood", serde_json::json!("kept")),
    ];
    let peer = Command::new("ip")
        .args(["netns", "exec", &lan.client, "python3"])
        .arg(&script)
        .arg(Lan::v4(0))
        .args(expect.iter().map(|(s, _)| *s))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let node = lan.nodes[0].clone();
    // One speaker for the whole run: after each failure it must come back by itself.
    let speaker = lan
        .spawn_speaker(&node, "n1", dir.path(), "speaker.log", &[])
        .unwrap();
    let _ = speaker;
    let log = || std::fs::read_to_string(dir.path().join("speaker.log")).unwrap_or_default();

    // The good session comes up while the hostile one is being played.
    let bird_up = eventually(Duration::from_secs(30), "BIRD to learn our route", || {
        Some(()).filter(|_| {
            birdc(&lan, &sock, &["show", "route", "protocol", "n1"]).contains("198.51.100.0/32")
        })
    });
    assert!(bird_up.is_ok(), "{}", log());
    let owner = lan.mac(&node).unwrap();

    let out = peer.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        expect.len(),
        "the speaker did not reconnect after every failure:\n{}",
        log()
    );
    for (l, (name, n)) in lines.iter().zip(&expect) {
        assert_eq!(l["scenario"], *name);
        assert_eq!(l["notification"], *n, "{name}:\n{}", log());
    }
    let log = log();
    // Logged, each with its RFC name and codes.
    for what in [
        "(1/1)",
        "(1/2)",
        "(1/3)",
        "(2/1)",
        "(2/2)",
        "(2/4)",
        "(2/6)",
        "(3/1)",
        "(3/9)",
        "(3/10)",
        "(4/0)",
        "(5/3)",
        "treat-as-withdraw",
    ] {
        assert!(log.contains(what), "{what} not logged:\n{log}");
    }

    // The good peer never noticed: no session error on it, its route is still
    // there, and layer 2 still answers from the node.
    assert!(
        !log.lines()
            .any(|l| l.contains("session error") && l.contains("bird")),
        "{log}"
    );
    let protocols = birdc(&lan, &sock, &["show", "protocols", "all", "n1"]);
    assert!(protocols.contains("Established"), "{protocols}");
    assert!(birdc(&lan, &sock, &["show", "route", "protocol", "n1"]).contains("198.51.100.0/32"));
    let macs = lan.arping(VIP4, 2).unwrap();
    assert!(
        !macs.is_empty() && macs.iter().all(|m| *m == owner),
        "{macs:?} (owner {owner})"
    );
}
