//! BGP mode against real peers (BIRD 2, GoBGP) in network namespaces: the session comes up,
//! the peer's RIB holds exactly our prefix with the right attributes, and a withdrawn
//! Service disappears from it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, binary, controller_once, eventually, unavailable};

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

/// [`write_config`] with a Service and one substitution, then the controller.
fn write_config_with(dir: &Path, from: &str, to: &str) {
    write_config(dir, true);
    let cfg = std::fs::read_to_string(dir.join("config.yaml"))
        .unwrap()
        .replace(from, to);
    std::fs::write(dir.join("config.yaml"), cfg).unwrap();
    controller_once(dir).unwrap();
}

fn birdc(lan: &Lan, sock: &Path, args: &[&str]) -> String {
    lan.birdc(&lan.client, sock, args).unwrap()
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
    controller_once(dir.path()).unwrap();

    let mut lan = Lan::new(1).unwrap();
    let (sock, _) = start_bird(
        &mut lan,
        dir.path(),
        &format!(
            "protocol bgp n1 {{\n  local {r} as 64500;\n  neighbor {n} as 4200000001;\n  passive on;\n  hold time 9;\n  ipv4 {{ import all; export none; }};\n}}\n",
            r = Lan::v4(0),
            n = Lan::v4(1)
        ),
    );
    let node = lan.nodes[0].clone();
    let args = [
        "--source",
        "file",
        "--node",
        "n1",
        "--metrics-address",
        "127.0.0.1:7473",
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

    // The speaker reports which peers carry the Service.
    let status = eventually(Duration::from_secs(10), "the BGP status of web", || {
        std::fs::read_to_string(dir.path().join("status/speaker-n1.yaml"))
            .ok()
            .filter(|t| t.contains("bgp:"))
    })
    .unwrap();
    assert!(
        status.contains("serviceName: web") && status.contains("- bird"),
        "{status}"
    );

    // Metrics, from the node namespace's own loopback.
    let metrics = lan
        .exec(&node, &["python3", "-c", "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:7473/metrics').read().decode())"])
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout).to_string();
    assert!(
        metrics.contains("ferrolb_bgp_session_up{peer=\"bird\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferrolb_bgp_announced_prefixes{peer=\"bird\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferrolb_bgp_updates_sent_total{peer=\"bird\"} 2"),
        "one UPDATE and the End-of-RIB: {metrics}"
    );

    // The Service is deleted: its route is withdrawn.
    write_config(dir.path(), false);
    controller_once(dir.path()).unwrap();
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

/// Starts BIRD in the client namespace with `protocols` and returns its socket.
fn start_bird(lan: &mut Lan, dir: &Path, protocols: &str) -> (std::path::PathBuf, usize) {
    let client = lan.client.clone();
    let conf = format!(
        "router id {};\nprotocol device {{}}\n{protocols}",
        Lan::v4(0)
    );
    lan.spawn_bird(&client, dir, &conf).unwrap()
}

#[test]
fn ibgp_over_ipv6_with_md5_carries_local_pref_and_survives_a_peer_restart() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: v6}}\nspec: {{addresses: ['2001:db8:77::/120']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: v6}}\nspec: {{localPref: 250}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: rr}}\nspec: {{myASN: 64500, peerASN: 64500, peerAddress: '{router}', passwordSecret: {{name: md5}}, holdTime: 9s, connectTime: 1s, routerID: 10.77.0.11}}\n\
---\napiVersion: v1\nkind: Secret\nmetadata: {{name: md5}}\ntype: kubernetes.io/basic-auth\nstringData: {{password: s3cret-key}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web6}}\nspec: {{type: LoadBalancer, ipFamilies: [IPv6], ports: [{{port: 80}}]}}\n",
            router = Lan::v6(0),
        ),
    )
    .unwrap();
    controller_once(dir.path()).unwrap();
    let mut lan = Lan::new(1).unwrap();
    let protocols = format!(
        "protocol bgp n1 {{\n  local {r} as 64500;\n  neighbor {n} as 64500;\n  passive on;\n  password \"s3cret-key\";\n  hold time 9;\n  direct;\n  ipv6 {{ import all; export none; }};\n}}\n",
        r = Lan::v6(0),
        n = Lan::v6(1)
    );
    let (sock, bird) = start_bird(&mut lan, dir.path(), &protocols);
    let node = lan.nodes[0].clone();
    lan.spawn_speaker(&node, "n1", dir.path(), "speaker.log", &[])
        .unwrap();
    let dump = |lan: &Lan| {
        format!(
            "--- bird\n{}\n--- bird log\n{}\n--- speaker\n{}\n--- controller\n{}",
            birdc(lan, &sock, &["show", "protocols", "all", "n1"]),
            std::fs::read_to_string(dir.path().join("bird.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("speaker.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("controller.log")).unwrap_or_default()
        )
    };
    let route = eventually(
        Duration::from_secs(30),
        "BIRD to learn 2001:db8:77::/128",
        || {
            Some(birdc(
                &lan,
                &sock,
                &["show", "route", "all", "protocol", "n1"],
            ))
            .filter(|r| r.contains("2001:db8:77::/128"))
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", dump(&lan)));
    assert!(
        route.contains(&format!("BGP.next_hop: {}", Lan::v6(1))),
        "{route}"
    );
    assert!(route.contains("BGP.local_pref: 250"), "{route}");
    assert!(
        route.contains("BGP.as_path: \n")
            || route.contains("BGP.as_path:\n")
            || route.contains("[i]"),
        "empty AS path on iBGP: {route}"
    );
    assert!(
        birdc(&lan, &sock, &["show", "protocols", "all", "n1"]).contains("Neighbor AS:      64500")
    );

    // From here on the controller runs on, reading the speaker's session state.
    let client = lan.client.clone();
    let d = dir.path().to_str().unwrap();
    lan.spawn(
        &client,
        &binary("ferrolb-controller").unwrap(),
        &[
            "--source",
            "file",
            "--dir",
            d,
            "--metrics-address",
            "",
            "--speaker-grace-seconds",
            "1",
        ],
        &dir.path().join("controller.log"),
    )
    .unwrap();
    let reason = |lan: &Lan, want: &str| {
        eventually(
            Duration::from_secs(30),
            &format!("web6's Announced condition to be {want}"),
            || announced(dir.path(), "web6").filter(|(r, _)| r == want),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", dump(lan)))
    };
    reason(&lan, "Advertised");

    // The router goes away: once the session has been down for the grace period,
    // the Service says so, naming the node and the peer.
    lan.stop(bird, "KILL").unwrap();
    let _ = std::fs::remove_file(&sock);
    let (_, message) = reason(&lan, "PeersDown");
    assert!(
        message.contains("every BGP session of the announcing nodes is down (n1 to rr)"),
        "{message}"
    );

    // The router restarts: the speaker reconnects, the route comes back, and so
    // does the condition.
    let (sock2, _) = start_bird(&mut lan, dir.path(), &protocols);
    assert_eq!(sock2, sock);
    eventually(
        Duration::from_secs(30),
        "the route after BIRD restarted",
        || {
            Some(()).filter(|_| {
                birdc(&lan, &sock, &["show", "route", "protocol", "n1"])
                    .contains("2001:db8:77::/128")
            })
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", dump(&lan)));
    reason(&lan, "Advertised");
}

/// (reason, message) of a Service's Announced condition in `status/services.yaml`.
fn announced(dir: &Path, name: &str) -> Option<(String, String)> {
    let file = ferrolb_crds::source::FileSource::new(dir)
        .read_services()
        .ok()?;
    let svc = file.services.into_iter().find(|s| s.name == name)?;
    let c = svc
        .conditions
        .into_iter()
        .find(|c| c.type_ == "ferrolb.io/Announced")?;
    Some((c.reason, c.message))
}

#[test]
fn gobgp_learns_our_route_with_as_sequence_and_communities() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Same configuration, the peer is GoBGP this time.
    write_config_with(dir.path(), "name: bird", "name: gobgp");
    let mut lan = Lan::new(1).unwrap();
    let conf = dir.path().join("gobgpd.toml");
    std::fs::write(
        &conf,
        format!(
            "[global.config]\n  as = 64500\n  router-id = \"{r}\"\n  local-address-list = [\"{r}\"]\n\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{n}\"\n    peer-as = 4200000001\n  [neighbors.transport.config]\n    passive-mode = true\n",
            r = Lan::v4(0),
            n = Lan::v4(1)
        ),
    )
    .unwrap();
    let client = lan.client.clone();
    lan.spawn(
        &client,
        Path::new("gobgpd"),
        &[
            "-f",
            conf.to_str().unwrap(),
            "--api-hosts",
            "127.0.0.1:50051",
        ],
        &dir.path().join("gobgpd.log"),
    )
    .unwrap();
    let node = lan.nodes[0].clone();
    lan.spawn_speaker(&node, "n1", dir.path(), "speaker.log", &[])
        .unwrap();
    let gobgp = |args: &[&str]| {
        let mut a = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
        a.extend_from_slice(args);
        String::from_utf8_lossy(&lan.exec(&lan.client, &a).unwrap().stdout).to_string()
    };
    let rib = eventually(
        Duration::from_secs(30),
        "GoBGP to learn 198.51.100.0/32",
        || Some(gobgp(&["global", "rib", "-a", "ipv4"])).filter(|r| r.contains("198.51.100.0/32")),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n--- gobgp\n{}\n{}\n--- speaker\n{}",
            gobgp(&["neighbor"]),
            std::fs::read_to_string(dir.path().join("gobgpd.log")).unwrap_or_default(),
            std::fs::read_to_string(dir.path().join("speaker.log")).unwrap_or_default()
        )
    });
    // GoBGP prints an AS_SET in braces; ours must be a plain sequence.
    assert!(
        rib.contains("4200000001") && !rib.contains("{4200000001}"),
        "{rib}"
    );
    assert!(rib.contains(&Lan::v4(1)), "next hop: {rib}");
    assert!(
        rib.contains("no-export"),
        "65535:65281 is NO_EXPORT (RFC 1997): {rib}"
    );
    assert!(
        rib.contains("[64512:7:9]") || rib.contains("64512:7:9"),
        "{rib}"
    );
    assert_eq!(rib.matches("/32").count(), 1, "{rib}");
}

#[test]
fn a_silent_peer_expires_our_hold_timer_and_the_session_comes_back() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A 3 s hold time, the shortest RFC 4271 allows.
    write_config_with(dir.path(), "holdTime: 9s", "holdTime: 3s");
    let mut lan = Lan::new(1).unwrap();
    let protocols = format!(
        "protocol bgp n1 {{\n  local {r} as 64500;\n  neighbor {n} as 4200000001;\n  passive on;\n  hold time 3;\n  error wait time 1, 2;\n  ipv4 {{ import all; export none; }};\n}}\n",
        r = Lan::v4(0),
        n = Lan::v4(1)
    );
    let (sock, bird) = start_bird(&mut lan, dir.path(), &protocols);
    let node = lan.nodes[0].clone();
    lan.spawn_speaker(&node, "n1", dir.path(), "speaker.log", &[])
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("speaker.log")).unwrap_or_default();
    let learned = |lan: &Lan| {
        birdc(lan, &sock, &["show", "route", "protocol", "n1"]).contains("198.51.100.0/32")
    };
    eventually(Duration::from_secs(30), "BIRD to learn the route", || {
        Some(()).filter(|_| learned(&lan))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", log()));

    // BIRD freezes: it neither sends KEEPALIVEs nor reads. Our hold timer expires.
    let pid = std::fs::read_to_string(dir.path().join("bird.pid")).unwrap();
    let pid = pid.trim();
    Command::new("kill").args(["-STOP", pid]).status().unwrap();
    let expired = eventually(Duration::from_secs(10), "our hold timer to expire", || {
        Some(()).filter(|_| log().contains("hold timer expired (4/0)"))
    });
    Command::new("kill").args(["-CONT", pid]).status().unwrap();
    assert!(expired.is_ok(), "{}", log());
    // BIRD wakes to our NOTIFICATION; the session and the route come back.
    let back = eventually(Duration::from_secs(30), "the route to come back", || {
        Some(()).filter(|_| {
            birdc(&lan, &sock, &["show", "protocols", "n1"]).contains("Established")
                && learned(&lan)
        })
    });
    assert!(back.is_ok(), "{}", log());
    let _ = bird;
}
