//! Session set-ups against BIRD 2 that the other BGP tests do not cover: eBGP
//! multihop through a router (TTL 1 does not get there, `ebgpMultiHop` does), and
//! a 2-byte ASN session with a peer that does not do 4-byte AS numbers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, controller_once, eventually, skipped};

const ROUTE: &str = "198.51.100.0/32";

fn config(dir: &Path, peer: &str) {
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: routed}}\nspec: {{addresses: [198.51.100.0/28]}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: routed}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: bird}}\nspec: {peer}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n"
        ),
    )
    .unwrap();
}

fn dump(lan: &Lan, ns: &str, dir: &Path, sock: &Path) -> String {
    format!(
        "--- bird\n{}\n{}\n--- bird log\n{}\n--- speaker\n{}",
        lan.birdc(ns, sock, &["show", "protocols", "all", "n1"])
            .unwrap(),
        lan.birdc(ns, sock, &["show", "route", "all", "protocol", "n1"])
            .unwrap(),
        std::fs::read_to_string(dir.join("bird.log")).unwrap_or_default(),
        std::fs::read_to_string(dir.join("speaker.log")).unwrap_or_default()
    )
}

#[test]
fn ebgp_multihop_reaches_a_peer_behind_a_router_that_ttl_1_does_not() {
    if skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let peer = "{myASN: 4200000001, peerASN: 64500, peerAddress: 192.0.2.2, holdTime: 9s, connectTime: 1s, routerID: 10.77.0.11";
    config(d, &format!("{peer}}}"));
    controller_once(d).unwrap();
    // n1 -- LAN -- client (forwards) -- veth -- far (BIRD), 192.0.2.0/24.
    let mut lan = Lan::new(1).unwrap();
    let far = lan.add_ns("far").unwrap();
    let client = lan.client.clone();
    let n1 = lan.nodes[0].clone();
    lan.veth(&client, "far0", &far, "eth0").unwrap();
    lan.ip(&client, &["addr", "add", "192.0.2.1/24", "dev", "far0"])
        .unwrap();
    lan.ip(&client, &["link", "set", "far0", "up"]).unwrap();
    lan.sysctl(&client, "net.ipv4.ip_forward", "1").unwrap();
    lan.ip(&far, &["link", "set", "lo", "up"]).unwrap();
    lan.ip(&far, &["addr", "add", "192.0.2.2/24", "dev", "eth0"])
        .unwrap();
    lan.ip(&far, &["link", "set", "eth0", "up"]).unwrap();
    lan.ip(&far, &["route", "add", "default", "via", "192.0.2.1"])
        .unwrap();
    lan.ip(&n1, &["route", "add", "192.0.2.0/24", "via", &Lan::v4(0)])
        .unwrap();
    let conf = format!(
        "log stderr all;\nrouter id 192.0.2.2;\nprotocol device {{}}\nprotocol static {{ ipv4; route {lan}/24 via 192.0.2.1; }}\nprotocol bgp n1 {{\n  debug {{ events }};\n  local 192.0.2.2 as 64500;\n  neighbor {n} as 4200000001;\n  multihop;\n  passive on;\n  hold time 9;\n  ipv4 {{ import all; export none; }};\n}}\n",
        lan = "10.77.0.0",
        n = Lan::v4(1)
    );
    let (sock, _) = lan.spawn_bird(&far, d, &conf).unwrap();
    lan.spawn_speaker(&n1, "n1", d, "speaker.log", &[]).unwrap();

    // TTL 1 (the eBGP default): the router drops our SYNs, nothing comes up.
    std::thread::sleep(Duration::from_secs(4));
    let proto = lan
        .birdc(&far, &sock, &["show", "protocols", "n1"])
        .unwrap();
    assert!(
        !proto.contains("Established"),
        "{}",
        dump(&lan, &far, d, &sock)
    );
    let bird_log = std::fs::read_to_string(d.join("bird.log")).unwrap_or_default();
    assert!(
        bird_log.contains("n1: Started"),
        "BIRD logs events: {bird_log}"
    );
    assert!(!bird_log.contains("Incoming connection"), "{bird_log}");

    // With ebgpMultiHop (TTL 255) the session comes up and carries our route.
    config(d, &format!("{peer}, ebgpMultiHop: true}}"));
    let route = eventually(Duration::from_secs(30), "BIRD to learn our route", || {
        Some(
            lan.birdc(&far, &sock, &["show", "route", "all", "protocol", "n1"])
                .unwrap(),
        )
        .filter(|r| r.contains(ROUTE))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", dump(&lan, &far, d, &sock)));
    assert!(
        route.contains(&format!("BGP.next_hop: {}", Lan::v4(1))),
        "{route}"
    );
    assert!(route.contains("BGP.as_path: 4200000001"), "{route}");
}

#[test]
fn a_two_byte_asn_session_with_a_peer_without_4_byte_as_support() {
    if skipped() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(
        d,
        &format!(
            "{{myASN: 64512, peerASN: 64500, peerAddress: {}, holdTime: 9s, connectTime: 1s, routerID: 10.77.0.11}}",
            Lan::v4(0)
        ),
    );
    controller_once(d).unwrap();
    let mut lan = Lan::new(1).unwrap();
    let client = lan.client.clone();
    let n1 = lan.nodes[0].clone();
    // BIRD without the 4-octet AS capability: the session and our UPDATEs use
    // 2-byte AS numbers (RFC 4271 encoding). (BIRD cannot stand in for an old
    // speaker facing a 4-byte AS: it reads our capability and refuses AS_TRANS;
    // AS_TRANS + AS4_PATH are checked byte by byte in update.rs.)
    let conf = format!(
        "router id {r};\nprotocol device {{}}\nprotocol bgp n1 {{\n  local {r} as 64500;\n  neighbor {n} as 64512;\n  enable as4 off;\n  passive on;\n  hold time 9;\n  ipv4 {{ import all; export none; }};\n}}\n",
        r = Lan::v4(0),
        n = Lan::v4(1)
    );
    let (sock, _) = lan.spawn_bird(&client, d, &conf).unwrap();
    lan.spawn_speaker(&n1, "n1", d, "speaker.log", &[]).unwrap();
    let route = eventually(Duration::from_secs(30), "BIRD to learn our route", || {
        Some(
            lan.birdc(&client, &sock, &["show", "route", "all", "protocol", "n1"])
                .unwrap(),
        )
        .filter(|r| r.contains(ROUTE))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", dump(&lan, &client, d, &sock)));
    let proto = lan
        .birdc(&client, &sock, &["show", "protocols", "all", "n1"])
        .unwrap();
    assert!(
        proto.contains("Session:          external\n"),
        "not AS4: {proto}"
    );
    assert!(route.contains("BGP.as_path: 64512\n"), "{route}");
    assert!(
        route.contains(&format!("BGP.next_hop: {}", Lan::v4(1))),
        "{route}"
    );
}
