//! FRR's bgpd as the peer, in its own namespace: eBGP over IPv4 with a 4-byte ASN,
//! TCP MD5, communities and a large community; iBGP over IPv6 with LOCAL_PREF; and
//! a withdrawn Service disappears from FRR's RIB. Routes are read from FRR's JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, controller_once, eventually, skipped};
use serde_json::Value;

const BGPD: &str = "/usr/lib/frr/bgpd";

fn start_frr(lan: &mut Lan, dir: &Path, router: &str) {
    let conf = dir.join("bgpd.conf");
    std::fs::write(
        &conf,
        format!(
            "frr defaults traditional\nhostname flbfrr\nlog file {}/frr.log\n{router}",
            dir.display()
        ),
    )
    .unwrap();
    let client = lan.client.clone();
    let d = dir.to_str().unwrap();
    // -Z: no zebra (nothing to install in a kernel), -S: no user switch, -P 0: no
    // vty TCP port; vtysh talks to the socket in `dir`.
    lan.spawn(
        &client,
        Path::new(BGPD),
        &[
            "-Z",
            "-S",
            "-n",
            "-P",
            "0",
            "-f",
            conf.to_str().unwrap(),
            "-i",
            &format!("{d}/bgpd.pid"),
            "--vty_socket",
            d,
        ],
        &dir.join("bgpd.stderr"),
    )
    .unwrap();
}

fn vtysh(lan: &Lan, dir: &Path, cmd: &str) -> Value {
    let out = lan
        .exec(
            &lan.client,
            &[
                "vtysh",
                "--vty_socket",
                dir.to_str().unwrap(),
                "-d",
                "bgpd",
                "-c",
                cmd,
            ],
        )
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn dump(lan: &Lan, dir: &Path) -> String {
    format!(
        "--- frr\n{}\n--- frr log\n{}\n--- speaker\n{}",
        vtysh(lan, dir, "show bgp neighbors json"),
        std::fs::read_to_string(dir.join("frr.log")).unwrap_or_default(),
        std::fs::read_to_string(dir.join("speaker.log")).unwrap_or_default()
    )
}

fn skip() -> bool {
    if skipped() {
        return true;
    }
    assert!(
        Path::new(BGPD).exists(),
        "FRR is not installed (./scripts/test installs frr)"
    );
    false
}

fn config(dir: &Path, peer: &str, advert: &str, pool: &str, family: &str, with_service: bool) {
    let service = if with_service {
        format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, ipFamilies: [{family}], ports: [{{port: 80}}]}}\n"
        )
    } else {
        String::new()
    };
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: routed}}\nspec: {{addresses: ['{pool}']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: routed}}\nspec: {advert}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: frr}}\nspec: {peer}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n{service}"
        ),
    )
    .unwrap();
    controller_once(dir).unwrap();
}

#[test]
fn frr_learns_our_ipv4_route_over_ebgp_with_md5_and_loses_it_on_withdraw() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let peer = format!(
        "{{myASN: 4200000001, peerASN: 64501, peerAddress: {}, password: s3cret, holdTime: 9s, connectTime: 1s}}",
        Lan::v4(0)
    );
    let advert = "{communities: ['65535:65281', 'large:64512:7:9']}";
    config(d, &peer, advert, "198.51.100.0/28", "IPv4", true);
    let mut lan = Lan::new(1).unwrap();
    start_frr(
        &mut lan,
        d,
        &format!(
            "router bgp 64501\n bgp router-id {c}\n no bgp ebgp-requires-policy\n neighbor {n} remote-as 4200000001\n neighbor {n} password s3cret\n neighbor {n} timers 3 9\n address-family ipv4 unicast\n  neighbor {n} activate\n exit-address-family\n",
            c = Lan::v4(0),
            n = Lan::v4(1)
        ),
    );
    let node = lan.nodes[0].clone();
    lan.spawn_speaker(&node, "n1", d, "speaker.log", &[])
        .unwrap();

    let route = eventually(
        Duration::from_secs(30),
        "FRR to learn 198.51.100.0/32",
        || {
            let v = vtysh(&lan, d, "show bgp ipv4 unicast 198.51.100.0/32 json");
            v.get("paths").is_some().then_some(v)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", dump(&lan, d)));
    let path = &route["paths"][0];
    assert_eq!(path["aspath"]["string"], "4200000001", "{route}");
    assert_eq!(path["origin"], "IGP", "{route}");
    assert_eq!(path["nexthops"][0]["ip"], Lan::v4(1), "{route}");
    assert_eq!(path["community"]["list"][0], "noExport", "{route}");
    // One AS_SEQUENCE segment (not the AS_SET zettabgp would write).
    assert_eq!(
        path["aspath"]["segments"][0]["type"], "as-sequence",
        "{route}"
    );
    assert_eq!(
        path["aspath"]["segments"].as_array().unwrap().len(),
        1,
        "{route}"
    );
    assert_eq!(path["largeCommunity"]["string"], "64512:7:9", "{route}");
    // Exactly our one prefix.
    let table = vtysh(&lan, d, "show bgp ipv4 unicast json");
    let prefixes: Vec<&String> = table["routes"].as_object().unwrap().keys().collect();
    assert_eq!(prefixes, ["198.51.100.0/32"], "{table}");
    // MD5 is really on: FRR reports the session with a password.
    let nb = vtysh(&lan, d, "show bgp neighbors json");
    assert_eq!(nb[Lan::v4(1)]["bgpState"], "Established", "{nb}");

    config(d, &peer, advert, "198.51.100.0/28", "IPv4", false);
    let gone = eventually(Duration::from_secs(10), "the route to be withdrawn", || {
        let t = vtysh(&lan, d, "show bgp ipv4 unicast json");
        t["routes"]
            .as_object()
            .is_some_and(|r| r.is_empty())
            .then_some(())
    });
    assert!(gone.is_ok(), "{}", dump(&lan, d));
    let nb = vtysh(&lan, d, "show bgp neighbors json");
    assert_eq!(
        nb[Lan::v4(1)]["bgpState"],
        "Established",
        "withdrawing keeps the session: {nb}"
    );
}

#[test]
fn frr_learns_our_ipv6_route_over_ibgp_with_local_pref() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let peer = format!(
        "{{myASN: 64500, peerASN: 64500, peerAddress: '{}', holdTime: 9s, connectTime: 1s, routerID: 10.77.0.11}}",
        Lan::v6(0)
    );
    config(
        d,
        &peer,
        "{localPref: 250}",
        "2001:db8:77::/120",
        "IPv6",
        true,
    );
    let mut lan = Lan::new(1).unwrap();
    start_frr(
        &mut lan,
        d,
        &format!(
            "router bgp 64500\n bgp router-id {c}\n no bgp default ipv4-unicast\n neighbor {n} remote-as 64500\n neighbor {n} timers 3 9\n address-family ipv6 unicast\n  neighbor {n} activate\n exit-address-family\n",
            c = Lan::v4(0),
            n = Lan::v6(1)
        ),
    );
    let node = lan.nodes[0].clone();
    lan.spawn_speaker(&node, "n1", d, "speaker.log", &[])
        .unwrap();
    let route = eventually(
        Duration::from_secs(30),
        "FRR to learn 2001:db8:77::/128",
        || {
            let v = vtysh(&lan, d, "show bgp ipv6 unicast 2001:db8:77::/128 json");
            v.get("paths").is_some().then_some(v)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", dump(&lan, d)));
    let path = &route["paths"][0];
    assert_eq!(path["locPrf"], 250, "{route}");
    assert_eq!(
        path["aspath"]["string"], "Local",
        "iBGP: empty AS_PATH: {route}"
    );
    let hops: Vec<&str> = path["nexthops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["ip"].as_str())
        .collect();
    assert!(hops.contains(&Lan::v6(1).as_str()), "{route}");
}

#[test]
fn frr_learns_our_ipv6_route_over_an_ipv4_session_with_the_nodes_ipv6_next_hop() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A dual-stack Service, one IPv4 session with both families (MP-BGP).
    std::fs::write(
        d.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: routed}}\nspec: {{addresses: [198.51.100.0/28, '2001:db8:77::/120']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: routed}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: frr}}\nspec: {{myASN: 4200000001, peerASN: 64501, peerAddress: {}, holdTime: 9s, connectTime: 1s, routerID: 10.77.0.11}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6], ports: [{{port: 80}}]}}\n",
            Lan::v4(0)
        ),
    )
    .unwrap();
    controller_once(d).unwrap();
    let mut lan = Lan::new(1).unwrap();
    start_frr(
        &mut lan,
        d,
        &format!(
            "router bgp 64501\n bgp router-id {c}\n no bgp ebgp-requires-policy\n neighbor {n} remote-as 4200000001\n neighbor {n} timers 3 9\n address-family ipv4 unicast\n  neighbor {n} activate\n exit-address-family\n address-family ipv6 unicast\n  neighbor {n} activate\n exit-address-family\n",
            c = Lan::v4(0),
            n = Lan::v4(1)
        ),
    );
    let node = lan.nodes[0].clone();
    lan.spawn_speaker(&node, "n1", d, "speaker.log", &[])
        .unwrap();
    let learned = |cmd: &str| {
        eventually(Duration::from_secs(30), cmd, || {
            let v = vtysh(&lan, d, cmd);
            v.get("paths").is_some().then_some(v)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", dump(&lan, d)))
    };
    let v6 = learned("show bgp ipv6 unicast 2001:db8:77::/128 json");
    let hops: Vec<&str> = v6["paths"][0]["nexthops"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["ip"].as_str())
        .collect();
    assert_eq!(hops, vec![Lan::v6(1).as_str()], "{v6}");
    assert_eq!(v6["paths"][0]["aspath"]["string"], "4200000001", "{v6}");
    let v4 = learned("show bgp ipv4 unicast 198.51.100.0/32 json");
    assert_eq!(v4["paths"][0]["nexthops"][0]["ip"], Lan::v4(1), "{v4}");
}
