//! Hostile layer 2 input (from a raw socket in the client namespace): malformed
//! ARP and NDP, requests for addresses nobody owns, and a flood. The speaker stays
//! up, sends no reply to any of them, answers valid requests before and after, and
//! does not burn a core on the flood.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferrolb_e2e::lab::{Lan, controller_once, cpu_time, eventually, unavailable};

const VIP4: &str = "10.77.0.200";
const VIP6: &str = "fd77::200";
const FLOOD: usize = 50_000;

#[test]
fn malformed_foreign_and_flooded_requests_get_no_reply_and_cost_little() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan}}\nspec: {{addresses: ['{VIP4}/32', '{VIP6}/128']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: lan}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, ipFamilyPolicy: RequireDualStack, ipFamilies: [IPv4, IPv6], ports: [{{port: 80}}]}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n"
        ),
    )
    .unwrap();
    controller_once(dir.path()).unwrap();
    let mut lan = Lan::new(1).unwrap();
    let node = lan.nodes[0].clone();
    let h = lan
        .spawn_speaker(&node, "n1", dir.path(), "speaker.log", &[])
        .unwrap();
    let pid = lan.pid(h).unwrap();
    let log = || std::fs::read_to_string(dir.path().join("speaker.log")).unwrap_or_default();
    // Ready: a real arping is answered.
    let ready = eventually(Duration::from_secs(20), "the speaker to answer ARP", || {
        let out = lan
            .exec(
                &lan.client,
                &["arping", "-c", "1", "-W", "0.3", "-i", "eth0", VIP4],
            )
            .ok()?;
        Some(()).filter(|_| out.status.success())
    });
    assert!(ready.is_ok(), "{}", log());

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/l2_hostile.py");
    let cpu_before = cpu_time(pid).unwrap();
    let t = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &lan.client, "python3"])
        .arg(&script)
        .args(["eth0", VIP4, VIP6, "10.77.0.250", "fd77::250"])
        .arg(FLOOD.to_string())
        .output()
        .unwrap();
    let wall = t.elapsed();
    let cpu = cpu_time(pid).unwrap() - cpu_before;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("hostile L2 result: {r}");

    // Alive: the process has not exited.
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the speaker died:\n{}",
        log()
    );
    let malformed = r["malformed"].as_object().unwrap();
    assert_eq!(malformed.len(), 19);
    for (name, replies) in malformed {
        assert_eq!(replies, 0, "{name} got a reply:\n{}", log());
    }
    assert_eq!(r["flood-replies"], 0, "replies to foreign requests");
    // The controls prove the counter sees replies: one ARP reply, one solicited NA.
    assert_eq!(r["control-before"], serde_json::json!([1, 1]), "{}", log());
    assert_eq!(
        r["control-after"],
        serde_json::json!([1, 1]),
        "after the flood\n{}",
        log()
    );
    let flood_s = r["flood-seconds"].as_f64().unwrap();
    println!(
        "speaker CPU during the hostile run: {:.2} s for {FLOOD} flood frames sent in {flood_s:.2} s \
         (+19 malformed kinds x3); the run took {:.2} s of wall time",
        cpu.as_secs_f64(),
        wall.as_secs_f64()
    );
    // A sanity bound, not a benchmark: the speaker did not spin a core for the
    // whole run (50 000 frames cost well under a second of CPU when it is healthy).
    assert!(
        cpu < wall,
        "speaker used {cpu:?} of CPU in {wall:?} of wall time"
    );
    // And a real client is still answered.
    let out = lan
        .exec(
            &lan.client,
            &["arping", "-c", "1", "-W", "0.5", "-i", "eth0", VIP4],
        )
        .unwrap();
    assert!(out.status.success(), "{}", log());
}
