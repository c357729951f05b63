//! MP-BGP (RFC 4760) against BIRD 2 (and FRR for IPv6 over IPv4): one session carries both families, each with
//! the node's next hop of that family (IPv6 over an IPv4 session, IPv4 over an
//! IPv6 session); `disableMP` keeps a session to its own family; a family the
//! node has no address of on the session's interface is withheld and logged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, controller_once, eventually, skipped};

const V4: &str = "198.51.100.0/32";
const V6: &str = "2001:db8:77::/128";

/// A dual-stack Service and one BGPPeer to `peer` with `extra` in its spec.
fn config(dir: &Path, peer: &str, extra: &str) {
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: routed}}\nspec: {{addresses: [198.51.100.0/28, '2001:db8:77::/120']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: routed}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: bird}}\nspec: {{myASN: 4200000001, peerASN: 64500, peerAddress: '{peer}', holdTime: 9s, connectTime: 1s, routerID: 10.77.0.11{extra}}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6], ports: [{{port: 80}}]}}\n"
        ),
    )
    .unwrap();
    controller_once(dir).unwrap();
}

struct Run {
    lan: Lan,
    dir: tempfile::TempDir,
    sock: std::path::PathBuf,
}

impl Run {
    fn birdc(&self, args: &[&str]) -> String {
        self.lan.birdc(&self.lan.client, &self.sock, args).unwrap()
    }

    fn routes(&self) -> String {
        self.birdc(&["show", "route", "all", "protocol", "n1"])
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("speaker.log")).unwrap_or_default()
    }

    /// The speaker's metrics, from the node namespace's own loopback.
    fn metrics(&self) -> String {
        let out = self
            .lan
            .exec(
                &self.lan.nodes[0],
                &["python3", "-c", "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:7473/metrics').read().decode())"],
            )
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn dump(&self) -> String {
        format!(
            "--- bird\n{}\n{}\n--- bird log\n{}\n--- speaker\n{}",
            self.birdc(&["show", "protocols", "all", "n1"]),
            self.routes(),
            std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default(),
            self.log()
        )
    }

    /// Waits for `prefix` in BIRD's table and returns what BIRD shows.
    fn learned(&self, prefix: &str) -> String {
        eventually(Duration::from_secs(30), prefix, || {
            Some(self.routes()).filter(|r| r.contains(prefix))
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.dump()))
    }
}

/// BIRD with both channels on one session over `family` ("v4" or "v6"), and the
/// speaker; `before` runs on the LAN before the speaker starts.
fn start(family: &str, extra: &str, before: impl FnOnce(&Lan)) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (router, node) = if family == "v4" {
        (Lan::v4(0), Lan::v4(1))
    } else {
        (Lan::v6(0), Lan::v6(1))
    };
    config(dir.path(), &router, extra);
    let mut lan = Lan::new(1).unwrap();
    let client = lan.client.clone();
    let conf = format!(
        "log stderr all;\nrouter id {};\nprotocol device {{}}\nprotocol bgp n1 {{\n  debug {{ packets }};\n  local {router} as 64500;\n  neighbor {node} as 4200000001;\n  passive on;\n  hold time 9;\n  ipv4 {{ import all; export none; }};\n  ipv6 {{ import all; export none; }};\n}}\n",
        Lan::v4(0)
    );
    let (sock, _) = lan.spawn_bird(&client, dir.path(), &conf).unwrap();
    before(&lan);
    let n = lan.nodes[0].clone();
    lan.spawn_speaker(
        &n,
        "n1",
        dir.path(),
        "speaker.log",
        &["--metrics-address", "127.0.0.1:7473"],
    )
    .unwrap();
    Run { lan, dir, sock }
}

#[test]
fn an_ipv4_session_carries_our_ipv6_route_with_the_nodes_ipv6_next_hop() {
    if skipped() {
        return;
    }
    let run = start("v4", "", |_| {});
    let v6 = run.learned(V6);
    let v4 = run.learned(V4);
    // IPv6 next hop: the node's global address on the interface of the session
    // (and no link-local one: see `Driver::desired`).
    let nh6 = v6
        .split(V6)
        .nth(1)
        .and_then(|r| r.lines().find(|l| l.contains("BGP.next_hop")))
        .unwrap_or_else(|| panic!("{v6}"));
    assert_eq!(nh6.trim(), format!("BGP.next_hop: {}", Lan::v6(1)), "{v6}");
    assert!(v6.contains(&format!("via {} on eth0", Lan::v6(1))), "{v6}");
    assert!(
        v4.contains(&format!("BGP.next_hop: {}", Lan::v4(1))),
        "{v4}"
    );
    assert_eq!(run.routes().matches("/32").count(), 1, "{}", run.dump());
    assert_eq!(run.routes().matches("/128").count(), 1, "{}", run.dump());
    // One End-of-RIB per negotiated family: IPv4, then IPv6 (MP_UNREACH_NLRI).
    let bird_log = std::fs::read_to_string(run.dir.path().join("bird.log")).unwrap();
    assert_eq!(bird_log.matches("Got END-OF-RIB").count(), 2, "{bird_log}");
    let proto = run.birdc(&["show", "protocols", "all", "n1"]);
    assert!(
        proto.contains("Established") && !run.log().contains("not announced"),
        "{}",
        run.dump()
    );
    // The Service goes: both routes are withdrawn (IPv6 in MP_UNREACH_NLRI).
    let cfg = std::fs::read_to_string(run.dir.path().join("config.yaml")).unwrap();
    let without = &cfg[..cfg.find("---\napiVersion: v1\nkind: Service").unwrap()];
    std::fs::write(run.dir.path().join("config.yaml"), without).unwrap();
    controller_once(run.dir.path()).unwrap();
    eventually(Duration::from_secs(10), "both withdrawals", || {
        let r = run.routes();
        Some(()).filter(|_| !r.contains(V4) && !r.contains(V6))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    assert!(
        run.birdc(&["show", "protocols", "n1"])
            .contains("Established")
    );
}

#[test]
fn an_ipv6_session_carries_our_ipv4_route_with_the_nodes_ipv4_next_hop() {
    if skipped() {
        return;
    }
    let run = start("v6", "", |_| {});
    let v4 = run.learned(V4);
    let v6 = run.learned(V6);
    assert!(
        v4.contains(&format!("BGP.next_hop: {}", Lan::v4(1))),
        "{v4}"
    );
    assert!(v6.contains(&Lan::v6(1)), "{v6}");
}

#[test]
fn disable_mp_keeps_the_session_to_its_own_family() {
    if skipped() {
        return;
    }
    let run = start("v4", ", disableMP: true", |_| {});
    run.learned(V4);
    // Our OPEN offers IPv4 only, so BIRD's ipv6 channel does not come up.
    let proto = run.birdc(&["show", "protocols", "all", "n1"]);
    let neighbor_caps = proto
        .split("Neighbor capabilities")
        .nth(1)
        .and_then(|s| s.split("Session:").next())
        .unwrap_or_else(|| panic!("{proto}"));
    assert!(
        neighbor_caps.contains("ipv4") && !neighbor_caps.contains("ipv6"),
        "{proto}"
    );
    // The IPv6 route never arrives (the IPv4 one came in the same initial table).
    std::thread::sleep(Duration::from_secs(1));
    assert!(!run.routes().contains(V6), "{}", run.dump());
    assert!(
        !run.log().contains("not announced"),
        "disableMP is not an error"
    );
}

#[test]
fn without_an_ipv6_address_on_the_session_interface_ipv6_is_withheld_and_logged_once() {
    if skipped() {
        return;
    }
    let run = start("v4", "", |lan| {
        lan.ip(
            &lan.nodes[0],
            &["addr", "del", &format!("{}/64", Lan::v6(1)), "dev", "eth0"],
        )
        .unwrap();
    });
    run.learned(V4);
    let logged = eventually(Duration::from_secs(10), "the withheld warning", || {
        Some(run.log()).filter(|l| l.contains("prefixes not announced to this peer"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    assert!(
        logged.contains("family=\"IPv6\"") || logged.contains("family=IPv6"),
        "{logged}"
    );
    assert!(
        logged.contains("no global IPv6 address on eth0"),
        "{logged}"
    );
    assert!(!run.routes().contains(V6), "{}", run.dump());
    let metrics = run.metrics();
    assert!(
        metrics.contains("ferrolb_bgp_withheld_prefixes{peer=\"bird\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferrolb_bgp_announced_prefixes{peer=\"bird\"} 1"),
        "{metrics}"
    );
    // A route change re-plans the table: the same reason is not logged again.
    let cfg = std::fs::read_to_string(run.dir.path().join("config.yaml")).unwrap();
    std::fs::write(
        run.dir.path().join("config.yaml"),
        cfg + "---\napiVersion: v1\nkind: Service\nmetadata: {name: web2}\nspec: {type: LoadBalancer, ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6], ports: [{port: 81}]}\n",
    )
    .unwrap();
    controller_once(run.dir.path()).unwrap();
    run.learned("198.51.100.1/32");
    assert_eq!(
        run.log()
            .matches("prefixes not announced to this peer")
            .count(),
        1,
        "{}",
        run.log()
    );
    eventually(Duration::from_secs(5), "2 withheld prefixes", || {
        Some(()).filter(|_| {
            run.metrics()
                .contains("ferrolb_bgp_withheld_prefixes{peer=\"bird\"} 2")
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", run.metrics()));
}
