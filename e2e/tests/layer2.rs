//! Layer 2 mode on a LAN of network namespaces: real ARP/NDP from arping and
//! ndisc6, exactly one responder, takeover by gratuitous ARP/unsolicited NA, and
//! `externalTrafficPolicy: Local`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use ferrolb_e2e::lab::{Lan, binary, controller_once, eventually, unavailable};

const VIP4: &str = "10.77.0.200";
const VIP6: &str = "fd77::200";
const LOCAL4: &str = "10.77.0.201";
const ORPHAN4: &str = "10.77.0.202";

fn config(dir: &Path, not_ready: Option<&str>) {
    let mut nodes = String::new();
    for n in ["n1", "n2", "n3"] {
        let cond = if Some(n) == not_ready {
            "status:\n  conditions: [{type: Ready, status: 'False'}]\n"
        } else {
            ""
        };
        nodes.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: {n}}}\n{cond}"
        ));
    }
    std::fs::write(dir.join("nodes.yaml"), nodes).unwrap();
}

fn setup(dir: &Path) {
    config(dir, None);
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan}}\nspec:\n  addresses: ['{VIP4}-10.77.0.210', '{VIP6}-fd77::210']\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: lan}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, creationTimestamp: '2026-01-01T00:00:00Z'}}\nspec:\n  type: LoadBalancer\n  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv4, IPv6]\n  ports: [{{port: 80}}]\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: local, creationTimestamp: '2026-01-02T00:00:00Z'}}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {{app: local}}\n  ports: [{{port: 80}}]\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: orphan, creationTimestamp: '2026-01-03T00:00:00Z'}}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {{app: orphan}}\n  ports: [{{port: 80}}]\n\
---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: local-1, labels: {{kubernetes.io/service-name: local}}}}\naddressType: IPv4\nendpoints:\n- {{addresses: [10.244.2.5], nodeName: n2, conditions: {{ready: true}}}}\n- {{addresses: [10.244.1.5], nodeName: n1, conditions: {{ready: false}}}}\n\
---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: orphan-1, labels: {{kubernetes.io/service-name: orphan}}}}\naddressType: IPv4\nendpoints:\n- {{addresses: [10.244.3.5], nodeName: n3, conditions: {{ready: false}}}}\n"
        ),
    )
    .unwrap();
}

/// MACs in neighbour advertisements `ndisc6` received for `ip`.
fn ndisc6(lan: &Lan, ip: &str) -> Vec<String> {
    let out = lan
        .exec(
            &lan.client,
            &["ndisc6", "-m", "-n", "-r", "2", "-w", "600", ip, "eth0"],
        )
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("Target link-layer address:")
                .map(|m| m.trim().to_lowercase())
        })
        .collect()
}

fn neigh(lan: &Lan, ip: &str) -> Option<String> {
    let out = lan
        .exec(&lan.client, &["ip", "neigh", "show", ip, "dev", "eth0"])
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_lowercase)
}

#[test]
fn one_owner_answers_and_a_takeover_moves_the_clients_entry() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    controller_once(dir.path()).unwrap();
    let services = std::fs::read_to_string(dir.path().join("status/services.yaml")).unwrap();
    for ip in [VIP4, VIP6, LOCAL4, ORPHAN4] {
        assert!(services.contains(ip), "{ip} not allocated: {services}");
    }

    let mut lan = Lan::new(3).unwrap();
    let speaker = binary("ferrolb-speaker").unwrap();
    let macs: Vec<String> = lan.nodes.iter().map(|ns| lan.mac(ns).unwrap()).collect();
    let mut handles = Vec::new();
    for (i, ns) in lan.nodes.clone().iter().enumerate() {
        let node = format!("n{}", i + 1);
        let log = dir.path().join(format!("speaker-{node}.log"));
        let args = [
            "--source",
            "file",
            "--node",
            &node,
            "--metrics-address",
            "",
            "--announce-interval-ms",
            "200",
            "--dir",
            dir.path().to_str().unwrap(),
        ];
        handles.push(lan.spawn(ns, &speaker, &args, &log).unwrap());
    }
    // The speakers publish which Services they announce.
    let announces = |node: usize, svc: &str| {
        std::fs::read_to_string(dir.path().join(format!("status/speaker-n{node}.yaml")))
            .is_ok_and(|t| t.contains(&format!("serviceName: {svc}")))
    };
    eventually(Duration::from_secs(20), "a node announcing web", || {
        (1..=3).find(|n| announces(*n, "web"))
    })
    .unwrap();
    let local = eventually(Duration::from_secs(20), "a node announcing local", || {
        (1..=3).find(|n| announces(*n, "local"))
    })
    .unwrap();
    assert_eq!(
        local, 2,
        "only n2 has a ready endpoint of the Local Service"
    );
    assert!(
        (1..=3).all(|n| !announces(n, "orphan")),
        "no ready endpoint: nobody announces"
    );
    let node_of = |mac: &str| macs.iter().position(|m| m == mac).map(|i| i + 1);

    // Each address has exactly one responder, a node that reports the Service.
    // (Owners are elected per address, so IPv4 and IPv6 may sit on different nodes.)
    let replies = eventually(Duration::from_secs(10), "ARP replies for web", || {
        Some(lan.arping(VIP4, 3).unwrap()).filter(|r| !r.is_empty())
    })
    .unwrap();
    let v4_owners: BTreeSet<_> = replies.iter().collect();
    assert_eq!(v4_owners.len(), 1, "{replies:?}");
    assert!(
        replies.len() >= 2,
        "every request answered once: {replies:?}"
    );
    let owner4 = node_of(&replies[0]).expect("a node's MAC");
    assert!(announces(owner4, "web"));
    let nas = eventually(Duration::from_secs(10), "NAs for web", || {
        Some(ndisc6(&lan, VIP6)).filter(|r| !r.is_empty())
    })
    .unwrap();
    assert_eq!(nas.iter().collect::<BTreeSet<_>>().len(), 1, "{nas:?}");
    let owner6 = node_of(&nas[0]).expect("a node's MAC");
    assert!(announces(owner6, "web"));
    let local_replies = lan.arping(LOCAL4, 3).unwrap();
    assert_eq!(
        local_replies.iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([&macs[1]])
    );
    assert!(
        lan.arping(ORPHAN4, 3).unwrap().is_empty(),
        "nobody answers for a Service without ready endpoints"
    );
    assert!(
        lan.arping("10.77.0.209", 3).unwrap().is_empty(),
        "nobody answers for an unassigned address"
    );

    // The client learns the owners through its kernel (pings nobody answers).
    let _ = lan.exec(&lan.client, &["ping", "-c", "1", "-W", "1", VIP4]);
    let _ = lan.exec(&lan.client, &["ping", "-6", "-c", "1", "-W", "1", VIP6]);
    assert_eq!(
        neigh(&lan, VIP4).as_deref(),
        Some(macs[owner4 - 1].as_str())
    );
    assert_eq!(
        neigh(&lan, VIP6).as_deref(),
        Some(macs[owner6 - 1].as_str())
    );

    // The IPv4 owner's node fails: marked NotReady and its speaker killed. The new
    // owner's gratuitous ARP moves the client's entry without the client asking.
    config(dir.path(), Some(&format!("n{owner4}")));
    lan.stop(handles[owner4 - 1], "KILL").unwrap();
    let moved = eventually(
        Duration::from_secs(10),
        "the client's IPv4 entry to move",
        || {
            neigh(&lan, VIP4)
                .filter(|m| *m != macs[owner4 - 1])
                .and_then(|m| node_of(&m))
        },
    );
    let moved6 = if owner6 == owner4 {
        eventually(
            Duration::from_secs(10),
            "the client's IPv6 entry to move",
            || neigh(&lan, VIP6).filter(|m| *m != macs[owner6 - 1]),
        )
        .map(|_| ())
    } else {
        // Only the failed node's addresses move.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            neigh(&lan, VIP6).as_deref(),
            Some(macs[owner6 - 1].as_str()),
            "the IPv6 owner did not fail"
        );
        Ok(())
    };
    if moved.is_err() || moved6.is_err() {
        for i in 1..=3 {
            eprintln!(
                "--- speaker n{i}\n{}",
                std::fs::read_to_string(dir.path().join(format!("speaker-n{i}.log")))
                    .unwrap_or_default()
            );
        }
    }
    let new = moved.unwrap();
    moved6.unwrap();
    assert_ne!(new, owner4);
    assert!(announces(new, "web"));
    assert_eq!(
        lan.arping(VIP4, 3).unwrap().iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([&macs[new - 1]])
    );
}
