//! Speaker findings on its status: an L2Advertisement naming interfaces the node
//! does not have (or has down) leaves the address unannounced, and says so (a
//! condition and Warning Events on the Node and the Service).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use ferrolb_e2e::lab::{Lan, controller_once, eventually, unavailable};

#[test]
fn an_advertisement_naming_a_missing_interface_is_a_condition() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("config.yaml"),
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lan}\nspec: {addresses: ['10.77.0.200/32']}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: lan}\nspec: {interfaces: [bond9]}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer, ports: [{port: 80}]}\n",
    )
    .unwrap();
    controller_once(d).unwrap();
    let mut lan = Lan::new(1).unwrap();
    let n1 = lan.nodes[0].clone();
    lan.spawn_speaker(&n1, "n1", d, "speaker.log", &[]).unwrap();
    let status = eventually(
        Duration::from_secs(10),
        "the InterfaceUnavailable condition",
        || {
            std::fs::read_to_string(d.join("status/speaker-n1.yaml"))
                .ok()
                .filter(|s| s.contains("InterfaceUnavailable"))
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            std::fs::read_to_string(d.join("speaker.log")).unwrap_or_default()
        )
    });
    assert!(
        status.contains("10.77.0.200 is not announced: the L2Advertisement names interfaces none of which is usable on node n1 (bond9: not found)"),
        "{status}"
    );
    let log = std::fs::read_to_string(d.join("speaker.log")).unwrap();
    assert!(!log.contains("taking over"), "{log}");
    // One Warning Event on the Node and one on the Service, with the same words.
    let events = eventually(
        Duration::from_secs(10),
        "the InterfaceUnavailable Events",
        || {
            std::fs::read_to_string(d.join("status/events.jsonl"))
                .ok()
                .filter(|e| e.matches("\"reason\":\"InterfaceUnavailable\"").count() >= 2)
        },
    )
    .unwrap();
    let on: Vec<(String, String, String)> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|ev| ev["reason"] == "InterfaceUnavailable")
        .map(|ev| {
            assert_eq!(ev["type"], "Warning", "{ev}");
            let o = &ev["involvedObject"];
            (
                o["kind"].as_str().unwrap().to_string(),
                o["name"].as_str().unwrap().to_string(),
                ev["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let words = "10.77.0.200 is not announced: the L2Advertisement names interfaces none of which is usable on node n1 (bond9: not found)";
    assert_eq!(
        on,
        [
            ("Node".to_string(), "n1".to_string(), words.to_string()),
            ("Service".to_string(), "web".to_string(), words.to_string())
        ],
        "{events}"
    );
}
