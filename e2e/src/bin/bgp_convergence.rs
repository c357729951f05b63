//! Time from session Established until BIRD holds all N routes of N Services,
//! using BIRD's own per-route timestamps and the speaker's log of Established, and
//! the speaker's RSS. Five runs (the speaker restarts between them).
//!
//! `cargo build --workspace --release && sudo target/release/bgp_convergence [N]`

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use ferrolb_e2e::lab::{Lan, binary, controller_once, eventually, unavailable};
use k8s_openapi::jiff::Timestamp;

fn birdc(lan: &Lan, sock: &Path, args: &[&str]) -> anyhow::Result<String> {
    lan.birdc(&lan.client, sock, args)
}

fn main() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let mut yaml = format!(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: p}}\nspec: {{addresses: [10.200.0.0/16]}}\n---\n\
apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: p}}\n---\n\
apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: bird}}\nspec: {{myASN: 64512, peerASN: 64500, peerAddress: {r}, connectTime: 1s}}\n---\n\
apiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n",
        r = Lan::v4(0)
    );
    for i in 0..n {
        yaml.push_str(&format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\nspec: {{type: LoadBalancer}}\n"));
    }
    std::fs::write(dir.path().join("cluster.yaml"), yaml)?;
    let ok = std::process::Command::new(binary("ferrolb-controller")?)
        .args(["--source", "file", "--once", "--log-level", "warn", "--dir"])
        .arg(dir.path())
        .status()?;
    if !ok.success() {
        bail!("controller failed");
    }
    let mut lan = Lan::new(1)?;
    let client = lan.client.clone();
    let (sock, _) = lan.spawn_bird(
        &client,
        dir.path(),
        &format!(
            "router id {r};\ntimeformat route iso long ms;\ntimeformat protocol iso long ms;\nprotocol device {{}}\nprotocol bgp n1 {{\n  local {r} as 64500;\n  neighbor {nd} as 64512;\n  passive on;\n  ipv4 {{ import all; export none; }};\n}}\n",
            r = Lan::v4(0),
            nd = Lan::v4(1)
        ),
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let node = lan.nodes[0].clone();
    let speaker = binary("ferrolb-speaker")?;
    println!(
        "\n{n} routes from FerroLB to BIRD {} (5 runs):\n",
        birdc(&lan, &sock, &["show", "status"])?
            .lines()
            .next()
            .unwrap_or_default()
    );
    println!("| run | Established -> last route at BIRD | speaker RSS |");
    println!("|---|---|---|");
    let mut results = Vec::new();
    for run in 1..=5 {
        let log = dir.path().join(format!("speaker-{run}.log"));
        let args = [
            "--source",
            "file",
            "--node",
            "n1",
            "--metrics-address",
            "",
            "--log-format",
            "json",
            "--dir",
            dir.path().to_str().context("path")?,
        ];
        let h = lan.spawn(&node, &speaker, &args, &log)?;
        let want = format!("{n} of {n} routes");
        if let Err(e) = eventually(Duration::from_secs(60), "all routes at BIRD", || {
            birdc(&lan, &sock, &["show", "route", "count"])
                .ok()
                .filter(|c| c.contains(&want))
                .map(|_| ())
        }) {
            bail!(
                "{e}\n--- bird\n{}{}\n--- speaker\n{}",
                birdc(&lan, &sock, &["show", "protocols", "all"])?,
                birdc(&lan, &sock, &["show", "route", "count"])?,
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        // Established, as the speaker logged it.
        let text = std::fs::read_to_string(&log)?;
        let est: Timestamp = text
            .lines()
            .filter(|l| l.contains("session established"))
            .find_map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()?
                    .get("timestamp")?
                    .as_str()?
                    .parse()
                    .ok()
            })
            .context("no Established in the speaker log")?;
        // The newest route, by BIRD's own clock ("[n1 2026-11-24 18:00:00.123]").
        let routes = birdc(&lan, &sock, &["show", "route"])?;
        let last = routes
            .lines()
            .filter_map(|l| {
                let t = l.split('[').nth(1)?.split(']').next()?;
                let t = t.split_once(' ').map(|x| x.1)?;
                let iso = t.replacen(' ', "T", 1);
                // BIRD prints local time; the lab runs with TZ unset, i.e. UTC.
                format!("{iso}Z").parse::<Timestamp>().ok()
            })
            .max()
            .context("no route timestamps")?;
        let ms = (last.as_millisecond() - est.as_millisecond()) as f64;
        let pid = {
            let out = lan.exec(&node, &["pgrep", "-n", "ferrolb-speaker"])?;
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
            })
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0;
        println!("| {run} | {ms:.0} ms | {rss:.1} MiB |");
        results.push(ms);
        lan.stop(h, "TERM")?;
        eventually(Duration::from_secs(30), "BIRD to drop the routes", || {
            birdc(&lan, &sock, &["show", "route", "count"])
                .ok()
                .filter(|c| c.contains("0 of 0 routes"))
                .map(|_| ())
        })?;
    }
    // A new Service while the table is in: from the controller's status write to
    // the route at BIRD (BIRD's timestamp of the newest route).
    let log = dir.path().join("speaker-new.log");
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
    let h = lan.spawn(&node, &speaker, &args, &log)?;
    let want = format!("{n} of {n} routes");
    eventually(Duration::from_secs(60), "all routes at BIRD", || {
        birdc(&lan, &sock, &["show", "route", "count"])
            .ok()
            .filter(|c| c.contains(&want))
            .map(|_| ())
    })?;
    std::thread::sleep(Duration::from_millis(500));
    let mut new_latency = Vec::new();
    for k in 0..5 {
        let name = format!("new{k}");
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{type: LoadBalancer}}\n"
            ),
        )?;
        controller_once(dir.path())?;
        let status = std::fs::metadata(dir.path().join("status/services.yaml"))?.modified()?;
        let written = Timestamp::try_from(status).context("mtime")?;
        let want = format!("{} of {} routes", n + k + 1, n + k + 1);
        eventually(Duration::from_secs(30), "the new route at BIRD", || {
            birdc(&lan, &sock, &["show", "route", "count"])
                .ok()
                .filter(|c| c.contains(&want))
                .map(|_| ())
        })?;
        let routes = birdc(&lan, &sock, &["show", "route"])?;
        let newest = routes
            .lines()
            .filter_map(|l| {
                let t = l.split('[').nth(1)?.split(']').next()?;
                let t = t.split_once(' ').map(|x| x.1)?;
                format!("{}Z", t.replacen(' ', "T", 1))
                    .parse::<Timestamp>()
                    .ok()
            })
            .max()
            .context("no route timestamps")?;
        new_latency.push((newest.as_millisecond() - written.as_millisecond()) as f64);
    }
    lan.stop(h, "TERM")?;
    println!(
        "\nA new Service with {n} routes in: status written -> route at BIRD: {:?} ms \
(file source: a change is read after a 5 ms settle; changed files are parsed again, status/services.yaml always)",
        new_latency
    );
    results.sort_by(f64::total_cmp);
    println!(
        "\nmedian {:.0} ms, max {:.0} ms (BIRD timestamps have millisecond resolution)",
        results[2], results[4]
    );
    Ok(())
}
