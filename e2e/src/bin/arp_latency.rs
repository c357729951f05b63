//! ARP reply latency seen by a client: FerroLB's responder (user space, raw
//! socket) next to the kernel answering for an address configured on the node's
//! interface, in the same run on the same LAN of network namespaces.
//!
//! `cargo build --workspace && cargo run -p ferrolb-e2e --bin arp_latency [-- N]` (root).

use std::time::Duration;

use anyhow::{Context, bail};
use ferrolb_e2e::lab::{Lan, binary, eventually, unavailable};

const VIP: &str = "10.77.0.200";

fn times(lan: &Lan, ip: &str, count: usize) -> anyhow::Result<Vec<f64>> {
    let out = lan.exec(
        &lan.client,
        &[
            "arping",
            "-c",
            &count.to_string(),
            "-W",
            "0.002",
            "-i",
            "eth0",
            ip,
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut t: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            let rest = l.split("time=").nth(1)?;
            let mut it = rest.split_whitespace();
            let v: f64 = it.next()?.parse().ok()?;
            Some(match it.next() {
                Some("msec") => v * 1000.0,
                Some("sec") => v * 1e6,
                _ => v,
            })
        })
        .collect();
    if t.len() < count * 9 / 10 {
        bail!("only {} of {count} requests to {ip} were answered", t.len());
    }
    t.sort_by(f64::total_cmp);
    Ok(t)
}

fn pct(t: &[f64], p: f64) -> f64 {
    let i = ((t.len() as f64 - 1.0) * p).round() as usize;
    t[i.min(t.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let count: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan}}\nspec: {{addresses: ['{VIP}/32']}}\n---\n\
apiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: lan}}\n---\n\
apiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n---\n\
apiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer}}\n"
        ),
    )?;
    let ok = std::process::Command::new(binary("ferrolb-controller")?)
        .args(["--source", "file", "--once", "--dir"])
        .arg(dir.path())
        .status()?;
    if !ok.success() {
        bail!("controller failed");
    }
    let mut lan = Lan::new(1)?;
    let node = lan.nodes[0].clone();
    let args = [
        "--source",
        "file",
        "--node",
        "n1",
        "--metrics-address",
        "",
        "--dir",
        dir.path().to_str().context("path")?,
    ];
    lan.spawn_wrapped(
        &node,
        &binary("ferrolb-speaker")?,
        &args,
        &dir.path().join("speaker.log"),
    )?;
    eventually(Duration::from_secs(20), "the speaker to answer", || {
        times(&lan, VIP, 3).ok()
    })?;
    let kernel = times(&lan, &Lan::v4(1), count)?;
    let ours = times(&lan, VIP, count)?;
    let kernel2 = times(&lan, &Lan::v4(1), count)?;
    println!("\nARP reply latency at the client, {count} requests each (arping, microseconds):\n");
    println!("| responder | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for (name, t) in [
        ("kernel (address on eth0), before", &kernel),
        ("FerroLB speaker (raw socket + BPF)", &ours),
        ("kernel (address on eth0), after", &kernel2),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            pct(t, 0.5),
            pct(t, 0.99),
            t[t.len() - 1]
        );
    }
    Ok(())
}
