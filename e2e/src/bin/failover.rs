//! Failover figures (issue 7): FerroLB against keepalived (VRRP) moving the same
//! address on the same namespace LAN, a UDP probe from the client every 2 ms.
//!
//! - unplanned: the owner node dies (link down, every process in it SIGKILLed);
//!   outage = from then to the first probe sent afterwards that was echoed;
//! - planned: SIGTERM to the owner's speaker, and a rolling restart of all three:
//!   failed probes must be 0;
//! - no spurious failover while both cores are busy.
//!
//! `failover [--trials 20] [--hog-seconds 60] [--no-keepalived]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::bail;
use clap::Parser;
use ferrolb_e2e::lab::unavailable;
use ferrolb_e2e::scenario::failover::{Mode, VIP, bed, finish, kill_node, owner, start_probe};
use ferrolb_e2e::scenario::http::outage;
use ferrolb_e2e::scenario::udp;

#[derive(Parser)]
struct Args {
    /// Trials per unplanned-failover row.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Length of the no-failure check under CPU load (0 skips it).
    #[arg(long, default_value_t = 60)]
    hog_seconds: u64,
    /// Skip the keepalived rows.
    #[arg(long)]
    no_keepalived: bool,
}

fn unplanned(
    mode: Mode,
    trials: usize,
    wait: Duration,
) -> anyhow::Result<(Vec<Duration>, Vec<usize>)> {
    let mut outages = Vec::new();
    let mut failed = Vec::new();
    for t in 0..trials {
        let mut b = bed(mode)?;
        owner(&b)?;
        // Let the group settle (watchers subscribed, VRRP preemption done) as in a
        // running cluster, then ask again who answers: that is the node to kill.
        std::thread::sleep(Duration::from_secs(1));
        let victim = owner(&b)?;
        let p = start_probe(&b)?;
        std::thread::sleep(Duration::from_millis(300));
        let at = kill_node(&mut b, victim)?;
        if std::env::var_os("FAILOVER_DEBUG").is_some() {
            eprintln!("killed at {:?}", std::time::SystemTime::now());
        }
        std::thread::sleep(wait);
        let (attempts, _) = finish(p)?;
        if std::env::var_os("FAILOVER_DEBUG").is_some() {
            for i in 1..=3 {
                let log = std::fs::read_to_string(b.dir.path().join(format!("speaker-n{i}.log")))?;
                eprintln!("--- n{i}\n{log}");
            }
        }
        match outage(&attempts, at) {
            Some(o) => {
                eprintln!(
                    "  trial {}: n{victim} killed, outage {:.1} ms",
                    t + 1,
                    o.duration.as_secs_f64() * 1e3
                );
                outages.push(o.duration);
                failed.push(o.failed);
            }
            None => {
                let logs: String = (1..=3)
                    .map(|i| {
                        std::fs::read_to_string(b.dir.path().join(format!("speaker-n{i}.log")))
                            .unwrap_or_default()
                    })
                    .collect();
                let neigh = b.lan.exec(&b.lan.client, &["ip", "neigh"])?;
                let arping = b.lan.exec(
                    &b.lan.client,
                    &["arping", "-c", "2", "-W", "0.2", "-i", "eth0", VIP],
                )?;
                let macs: Vec<String> = (1..=3)
                    .map(|i| b.lan.mac(&b.lan.nodes[i - 1]).unwrap_or_default())
                    .collect();
                bail!(
                    "trial {}: no echo within {wait:?} after killing n{victim}\n{logs}\nneigh: {}\narping: {}\nmacs: {macs:?}",
                    t + 1,
                    String::from_utf8_lossy(&neigh.stdout),
                    String::from_utf8_lossy(&arping.stdout)
                )
            }
        }
    }
    outages.sort();
    Ok((outages, failed))
}

fn planned() -> anyhow::Result<(usize, usize, usize, usize)> {
    let mut b = bed(Mode::FerroLb)?;
    owner(&b)?;
    std::thread::sleep(Duration::from_secs(1));
    let victim = owner(&b)?;
    let p = start_probe(&b)?;
    std::thread::sleep(Duration::from_millis(300));
    let h = b.speakers[victim - 1];
    b.lan.stop(h, "TERM")?;
    std::thread::sleep(Duration::from_secs(1));
    let (sigterm, _) = finish(p)?;
    let sigterm_failed = sigterm.iter().filter(|a| !a.ok).count();

    // Rolling restart: each speaker in turn gets SIGTERM, then comes back.
    let mut b = bed(Mode::FerroLb)?;
    owner(&b)?;
    std::thread::sleep(Duration::from_millis(700));
    let p = start_probe(&b)?;
    for i in 1..=3 {
        let h = b.speakers[i - 1];
        b.lan.stop(h, "TERM")?;
        let ns = b.lan.nodes[i - 1].clone();
        let dir = b.dir.path().to_path_buf();
        b.speakers[i - 1] = b.lan.spawn_speaker(
            &ns,
            &format!("n{i}"),
            &dir,
            &format!("speaker-n{i}-again.log"),
            &[],
        )?;
        std::thread::sleep(Duration::from_millis(1500));
    }
    let (rolling, _) = finish(p)?;
    let rolling_failed = rolling.iter().filter(|a| !a.ok).count();
    Ok((sigterm_failed, sigterm.len(), rolling_failed, rolling.len()))
}

fn hog(seconds: u64) -> anyhow::Result<(usize, usize, usize)> {
    let b = bed(Mode::FerroLb)?;
    owner(&b)?;
    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hogs: Vec<_> = (0..cores)
        .map(|_| {
            let s = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !s.load(Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();
    let p = start_probe(&b)?;
    std::thread::sleep(Duration::from_secs(seconds));
    let (attempts, names) = finish(p)?;
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }
    let failed = attempts.iter().filter(|a| !a.ok).count();
    Ok((failed, attempts.len(), names.len()))
}

fn row(name: &str, v: &[Duration], failed: &[usize]) -> String {
    let ms =
        |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3));
    let mut f = failed.to_vec();
    f.sort();
    format!(
        "| {name} | {} | {} | {} | {} | {} |",
        v.len(),
        ms(udp::percentile(v, 50)),
        ms(udp::percentile(v, 99)),
        ms(v.last().copied()),
        f.get(f.len() / 2).copied().unwrap_or(0)
    )
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(why) = unavailable() {
        bail!("needs network namespaces: {why}");
    }
    let mut rows = Vec::new();
    eprintln!("FerroLB, default settings: {} trials", args.trials);
    let (v, f) = unplanned(Mode::FerroLb, args.trials, Duration::from_secs(2))?;
    rows.push(row(
        "FerroLB (defaults: heartbeat 10 ms, suspect 30 ms, relay 15 ms)",
        &v,
        &f,
    ));
    if !args.no_keepalived {
        if std::process::Command::new("keepalived")
            .arg("--version")
            .output()
            .is_err()
        {
            bail!(
                "keepalived is not installed (apt-get install keepalived), or pass --no-keepalived"
            );
        }
        eprintln!(
            "keepalived, defaults (VRRPv2, advert_int 1): {} trials",
            args.trials
        );
        let (v, f) = unplanned(
            Mode::Keepalived { fast: false },
            args.trials,
            Duration::from_secs(6),
        )?;
        rows.push(row("keepalived defaults (VRRPv2, advert_int 1 s)", &v, &f));
        eprintln!(
            "keepalived, fastest (VRRPv3, advert_int 0.01): {} trials",
            args.trials
        );
        let (v, f) = unplanned(
            Mode::Keepalived { fast: true },
            args.trials,
            Duration::from_secs(2),
        )?;
        rows.push(row("keepalived VRRPv3, advert_int 0.01 s", &v, &f));
    }
    eprintln!("planned handover: SIGTERM, then a rolling restart");
    let (sf, sn, rf, rn) = planned()?;
    println!("\nUnplanned failover (owner node dies; UDP probe every 2 ms; outage in ms)\n");
    println!(
        "| mode | trials | p50 | p99 | max | failed probes (median) |\n|---|---|---|---|---|---|"
    );
    for r in rows {
        println!("{r}");
    }
    println!("\nPlanned: SIGTERM to the owner's speaker: {sf} of {sn} probes failed");
    println!("Planned: rolling restart of all 3 speakers: {rf} of {rn} probes failed");
    if args.hog_seconds > 0 {
        eprintln!(
            "no-failure check: {} s with every core busy",
            args.hog_seconds
        );
        let (failed, sent, responders) = hog(args.hog_seconds)?;
        println!(
            "CPU hog ({} s, every core busy): {failed} of {sent} probes failed, {} responder(s) (1 = no failover)",
            args.hog_seconds, responders
        );
    }
    Ok(())
}
