//! BGP mode against a real BIRD 2 in a network namespace: the session comes up,
//! BIRD's RIB holds exactly our prefix with the right attributes, and a withdrawn
//! Service disappears from it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, binary, eventually, unavailable};

fn write_config(dir: &Path, with_service: bool) {
    let service = if with_service {
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n"
    } else {
        ""
    };
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: routed}}\nspec: {{addresses: [198.51.100.0/28]}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: routed}}\nspec:\n  communities: [65535:65281, large:64512:7:9]\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: bird}}\nspec: {{myASN: 4200000001, peerASN: 64500, peerAddress: {router}, holdTime: 9s, connectTime: 1s}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nstatus: {{addresses: [{{type: InternalIP, address: {node}}}]}}\n{service}",
            router = Lan::v4(0),
            node = Lan::v4(1),
        ),
    )
    .unwrap();
}

fn birdc(lan: &Lan, sock: &Path, args: &[&str]) -> String {
    let mut a = vec!["birdc", "-s", sock.to_str().unwrap()];
    a.extend_from_slice(args);
    let out = lan.exec(&lan.client, &a).unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn bird_learns_our_route_with_its_attributes_and_loses_it_on_withdraw() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    if Command::new("bird").arg("--version").output().is_err() {
        panic!("BIRD 2 is not installed (./scripts/test installs bird2)");
    }
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), true);
    let ctl = binary("ferrolb-controller").unwrap();
    let out = Command::new(&ctl)
        .args(["--source", "file", "--once", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut lan = Lan::new(1).unwrap();
    let sock = dir.path().join("bird.ctl");
    let conf = dir.path().join("bird.conf");
    std::fs::write(
        &conf,
        format!(
            "router id {r};\nprotocol device {{}}\nprotocol bgp n1 {{\n  local {r} as 64500;\n  neighbor {n} as 4200000001;\n  passive on;\n  hold time 9;\n  ipv4 {{ import all; export none; }};\n}}\n",
            r = Lan::v4(0),
            n = Lan::v4(1)
        ),
    )
    .unwrap();
    let client = lan.client.clone();
    lan.spawn(
        &client,
        Path::new("bird"),
        &[
            "-f",
            "-c",
            conf.to_str().unwrap(),
            "-s",
            sock.to_str().unwrap(),
            "-P",
            dir.path().join("bird.pid").to_str().unwrap(),
        ],
        &dir.path().join("bird.log"),
    )
    .unwrap();
    let node = lan.nodes[0].clone();
    let args = [
        "--source",
        "file",
        "--node",
        "n1",
        "--metrics-address",
        "",
        "--dir",
        dir.path().to_str().unwrap(),
    ];
    lan.spawn(
        &node,
        &binary("ferrolb-speaker").unwrap(),
        &args,
        &dir.path().join("speaker.log"),
    )
    .unwrap();

    let dump = || {
        format!(
            "--- bird\n{}\n--- speaker\n{}",
            birdc(&lan, &sock, &["show", "protocols", "all", "n1"]),
            std::fs::read_to_string(dir.path().join("speaker.log")).unwrap_or_default()
        )
    };
    let up = eventually(
        Duration::from_secs(30),
        "the session to be Established",
        || {
            Some(()).filter(|_| {
                birdc(&lan, &sock, &["show", "protocols", "n1"]).contains("Established")
            })
        },
    );
    assert!(up.is_ok(), "{}", dump());
    let route = eventually(
        Duration::from_secs(10),
        "BIRD to learn 198.51.100.0/32",
        || {
            Some(birdc(
                &lan,
                &sock,
                &["show", "route", "all", "protocol", "n1"],
            ))
            .filter(|r| r.contains("198.51.100.0/32"))
        },
    );
    let route = route.unwrap_or_else(|e| panic!("{e}\n{}", dump()));
    // Exactly our prefix, next hop our node, AS path our (4-byte) AS, communities.
    assert_eq!(route.matches("/32").count(), 1, "{route}");
    assert!(route.contains(&format!("via {}", Lan::v4(1))), "{route}");
    assert!(route.contains("BGP.as_path: 4200000001"), "{route}");
    assert!(route.contains("BGP.origin: IGP"), "{route}");
    assert!(route.contains("(65535,65281)"), "{route}");
    assert!(route.contains("(64512, 7, 9)"), "{route}");
    // (BIRD shows BGP.local_pref 100 on eBGP routes: its own default on import; the
    // absence of LOCAL_PREF in what we send is checked byte by byte in unit tests.)

    // The Service is deleted: its route is withdrawn.
    write_config(dir.path(), false);
    let out = Command::new(&ctl)
        .args(["--source", "file", "--once", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let gone = eventually(Duration::from_secs(10), "the route to be withdrawn", || {
        Some(()).filter(|_| {
            !birdc(&lan, &sock, &["show", "route", "protocol", "n1"]).contains("198.51.100.0/32")
        })
    });
    assert!(gone.is_ok(), "{}", dump());
    assert!(
        birdc(&lan, &sock, &["show", "protocols", "n1"]).contains("Established"),
        "withdrawing keeps the session"
    );
}
