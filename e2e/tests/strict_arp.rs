//! kube-proxy in ipvs mode, emulated: every node namespace holds the Service
//! address on a `kube-ipvs0` dummy. Without strictARP (arp_ignore=0) every node's
//! kernel answers ARP for it, which the client sees as several MACs, and the
//! speakers say so (condition, Node Event, metric). With arp_ignore=1 and
//! arp_announce=2 only the owner's speaker answers and the finding goes away.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, binary, controller_once, eventually, unavailable};

const VIP: &str = "10.77.0.200";

fn read(d: &Path, f: &str) -> String {
    std::fs::read_to_string(d.join(f)).unwrap_or_default()
}

/// Both nodes' ARP sysctls, `all` and `eth0`.
fn set_arp(lan: &Lan, ignore: &str, announce: &str) {
    for ns in &lan.nodes {
        for conf in ["all", "eth0"] {
            lan.sysctl(ns, &format!("net.ipv4.conf.{conf}.arp_ignore"), ignore)
                .unwrap();
            lan.sysctl(ns, &format!("net.ipv4.conf.{conf}.arp_announce"), announce)
                .unwrap();
        }
    }
}

fn metrics(lan: &Lan, ns: &str) -> String {
    let out = lan
        .exec(ns, &["curl", "-s", "http://127.0.0.1:7473/metrics"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ipvs_without_strict_arp_answers_from_every_node_and_is_reported() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan}}\nspec: {{addresses: ['{VIP}/32']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: lan}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n2}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n",
            Lan::v4(1),
            Lan::v4(2)
        ),
    )
    .unwrap();
    controller_once(d).unwrap();
    let mut lan = Lan::new(2).unwrap();
    let nodes = lan.nodes.clone();
    // kube-proxy's ipvs mode: the address on a `kube-ipvs0` that stays down, on
    // every node. kube-proxy makes it a dummy; this kernel may lack the dummy
    // driver, and a port-less bridge is the same to ARP: a local address on an
    // interface other than the one the request arrives on.
    for ns in &nodes {
        lan.ip(ns, &["link", "add", "kube-ipvs0", "type", "bridge"])
            .unwrap();
        lan.ip(
            ns,
            &["addr", "add", &format!("{VIP}/32"), "dev", "kube-ipvs0"],
        )
        .unwrap();
    }
    set_arp(&lan, "0", "0");
    let macs: Vec<String> = nodes.iter().map(|ns| lan.mac(ns).unwrap()).collect();
    for (i, ns) in nodes.iter().enumerate() {
        let node = format!("n{}", i + 1);
        let log = format!("speaker-{node}.log");
        let mut extra = vec!["--interface-rescan-seconds", "1"];
        if i == 0 {
            extra.extend(["--metrics-address", "127.0.0.1:7473"]);
        }
        lan.spawn_speaker(ns, &node, d, &log, &extra).unwrap();
    }
    let logs = || {
        (1..=2)
            .map(|i| format!("--- n{i}\n{}", read(d, &format!("speaker-n{i}.log"))))
            .collect::<String>()
    };

    // Both speakers report it: the owner and the other node alike.
    for node in ["n1", "n2"] {
        let status = eventually(
            Duration::from_secs(10),
            &format!("the StrictARPDisabled condition of {node}"),
            || {
                Some(read(d, &format!("status/speaker-{node}.yaml")))
                    .filter(|s| s.contains("StrictARPDisabled"))
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
        assert!(
            status.contains(&format!("kube-ipvs0 exists on node {node}")),
            "{status}"
        );
        assert!(
            status.contains("eth0 has arp_ignore 0 (all 0, eth0 0; needs 1) and arp_announce 0 (all 0, eth0 0; needs 2)"),
            "{status}"
        );
        assert!(
            status.contains("set ipvs.strictARP: true in ConfigMap kube-system/kube-proxy"),
            "{status}"
        );
    }
    let events = eventually(
        Duration::from_secs(10),
        "two StrictARPDisabled Events",
        || {
            Some(read(d, "status/events.jsonl"))
                .filter(|e| e.matches("\"reason\":\"StrictARPDisabled\"").count() >= 2)
        },
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", read(d, "status/events.jsonl")));
    let on_nodes: BTreeSet<String> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|ev| ev["reason"] == "StrictARPDisabled")
        .map(|ev| {
            assert_eq!(ev["type"], "Warning", "{ev}");
            assert_eq!(ev["involvedObject"]["kind"], "Node", "{ev}");
            assert!(ev["involvedObject"].get("namespace").is_none(), "{ev}");
            assert!(
                ev["message"]
                    .as_str()
                    .unwrap()
                    .contains("eth0 has arp_ignore 0"),
                "{ev}"
            );
            ev["involvedObject"]["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(on_nodes, BTreeSet::from(["n1".into(), "n2".into()]));
    assert!(
        metrics(&lan, &nodes[0])
            .contains("ferrolb_speaker_finding{finding=\"StrictARPDisabled\"} 1"),
        "{}",
        metrics(&lan, &nodes[0])
    );

    // diagnose names it, with the fix.
    let out = std::process::Command::new(binary("ferrolb-controller").unwrap())
        .args(["diagnose", "default/web", "--source", "file", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("✗ owner (L2)") && l.contains("kube-ipvs0 exists on node")),
        "{text}"
    );
    assert!(
        text.contains("set ipvs.strictARP: true in ConfigMap kube-system/kube-proxy"),
        "{text}"
    );

    // On the wire: both kernels answer, so the client sees both MACs.
    let seen = lan
        .arping(VIP, 3)
        .unwrap()
        .into_iter()
        .collect::<BTreeSet<_>>();
    let all: BTreeSet<String> = macs.iter().cloned().collect();
    assert_eq!(
        seen,
        all,
        "every node's kernel answers without strictARP\n{}",
        logs()
    );

    // strictARP, as kube-proxy sets it: only FerroLB answers, and the finding goes.
    set_arp(&lan, "1", "2");
    for node in ["n1", "n2"] {
        eventually(
            Duration::from_secs(10),
            &format!("the condition of {node} to go"),
            || {
                Some(read(d, &format!("status/speaker-{node}.yaml"))).filter(|s| {
                    s.contains(&format!("node: {node}")) && !s.contains("StrictARPDisabled")
                })
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", logs()));
    }
    let owner = (1..=2)
        .find(|i| read(d, &format!("status/speaker-n{i}.yaml")).contains("serviceName: web"))
        .unwrap_or_else(|| panic!("no speaker announces web\n{}", logs()));
    let _ = lan.exec(&lan.client, &["ip", "neigh", "flush", "all"]);
    assert_eq!(
        lan.arping(VIP, 3)
            .unwrap()
            .into_iter()
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([macs[owner - 1].clone()]),
        "only the owner (n{owner}) answers with strictARP"
    );
    assert!(
        metrics(&lan, &nodes[0])
            .contains("ferrolb_speaker_finding{finding=\"StrictARPDisabled\"} 0"),
        "{}",
        metrics(&lan, &nodes[0])
    );
    // One Event per node: the finding appeared once.
    let events = read(d, "status/events.jsonl");
    assert_eq!(
        events
            .lines()
            .filter(|l| l.contains("\"reason\":\"StrictARPDisabled\""))
            .count(),
        2,
        "{events}"
    );
}
