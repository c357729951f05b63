//! Least privilege: the speaker runs as an unprivileged user (uid 65534) with
//! CAP_NET_RAW as its only capability and still answers ARP, establishes an
//! MD5-protected BGP session (TCP_MD5SIG needs no capability) and writes its
//! status. CAP_NET_BIND_SERVICE is not needed: the speaker only connects out to
//! its peers and never listens on port 179. Without CAP_NET_RAW it cannot answer
//! ARP, which shows the capability is needed and that the test can tell.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, binary, controller_once, eventually, unavailable};

const VIP4: &str = "10.77.0.200";
const CAP_NET_RAW: u64 = 1 << 13;

fn setup(dir: &Path) {
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan}}\nspec: {{addresses: ['{VIP4}/32']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: lan}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: routed}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: bird}}\nspec: {{myASN: 64512, peerASN: 64500, peerAddress: {r}, holdTime: 9s, connectTime: 1s, password: s3cret-md5}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, loadBalancerIP: {VIP4}, ports: [{{port: 80}}]}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nstatus: {{addresses: [{{type: InternalIP, address: {n}}}]}}\n",
            r = Lan::v4(0),
            n = Lan::v4(1),
        ),
    )
    .unwrap();
    controller_once(dir).unwrap();
    // The unprivileged speaker writes its status and events here.
    let status = dir.join("status");
    let files = std::fs::read_dir(&status)
        .unwrap()
        .map(|e| e.unwrap().path());
    for p in [dir.to_path_buf(), status.clone()].into_iter().chain(files) {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
}

/// Effective capabilities and real uid of a process.
fn caps_and_uid(pid: u32) -> (u64, String) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .to_string()
    };
    let eff = u64::from_str_radix(&field("CapEff:"), 16).unwrap();
    (
        eff,
        field("Uid:").split_whitespace().next().unwrap().to_string(),
    )
}

/// Starts the speaker in `ns` as uid/gid 65534 with exactly `caps` (setpriv).
fn spawn_unprivileged(lan: &mut Lan, ns: &str, dir: &Path, caps: &str, log: &str) -> usize {
    let speaker = binary("ferrolb-speaker").unwrap();
    let set = if caps.is_empty() {
        "-all".to_string()
    } else {
        format!("-all,{caps}")
    };
    let args = [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        &format!("--inh-caps={set}"),
        &format!("--ambient-caps={set}"),
        &format!("--bounding-set={set}"),
        speaker.to_str().unwrap(),
        "--source",
        "file",
        "--node",
        "n1",
        "--metrics-address",
        "",
        "--dir",
        dir.to_str().unwrap(),
    ];
    lan.spawn(ns, Path::new("setpriv"), &args, &dir.join(log))
        .unwrap()
}

fn arp_answered(lan: &Lan) -> bool {
    lan.exec(
        &lan.client,
        &["arping", "-c", "1", "-W", "0.3", "-i", "eth0", VIP4],
    )
    .is_ok_and(|o| o.status.success())
}

#[test]
fn the_speaker_needs_only_net_raw() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        panic!("setpriv (util-linux) is not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let mut lan = Lan::new(1).unwrap();
    let node = lan.nodes[0].clone();

    // BIRD as an MD5-protected peer.
    let client = lan.client.clone();
    let (sock, _) = lan
        .spawn_bird(
            &client,
            dir.path(),
            &format!(
            "router id {r};\nprotocol device {{}}\nprotocol bgp n1 {{\n  local {r} as 64500;\n  neighbor {n} as 64512;\n  password \"s3cret-md5\";\n  passive on;\n  hold time 9;\n  ipv4 {{ import all; export none; }};\n}}\n",
            r = Lan::v4(0),
            n = Lan::v4(1)
            ),
        )
        .unwrap();
    let birdc = |lan: &Lan, args: &[&str]| lan.birdc(&lan.client, &sock, args).unwrap();

    // 1. No capability at all: it runs, but cannot open its raw sockets.
    let h = spawn_unprivileged(&mut lan, &node, dir.path(), "", "none.log");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !arp_answered(&lan),
        "answered ARP without CAP_NET_RAW: the capability check is not testing anything"
    );
    lan.stop(h, "KILL").unwrap();

    // 2. CAP_NET_RAW alone: ARP and MD5 BGP work.
    let h = spawn_unprivileged(&mut lan, &node, dir.path(), "+net_raw", "speaker.log");
    let log = || std::fs::read_to_string(dir.path().join("speaker.log")).unwrap_or_default();
    let pid = lan.pid(h).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (eff, uid) = caps_and_uid(pid);
    assert_eq!(uid, "65534");
    assert_eq!(eff, CAP_NET_RAW, "effective capabilities {eff:#x}");
    let arp = eventually(Duration::from_secs(20), "an ARP answer", || {
        Some(()).filter(|_| arp_answered(&lan))
    });
    assert!(arp.is_ok(), "{}", log());
    let route = eventually(Duration::from_secs(30), "BIRD to learn the route", || {
        Some(()).filter(|_| {
            birdc(&lan, &["show", "route", "protocol", "n1"]).contains(&format!("{VIP4}/32"))
        })
    });
    assert!(
        route.is_ok(),
        "{}\n{}",
        birdc(&lan, &["show", "route", "all"]),
        log()
    );
    // The status file was written by the unprivileged process.
    assert!(
        dir.path().join("status/speaker-n1.yaml").exists(),
        "{}",
        log()
    );
}
