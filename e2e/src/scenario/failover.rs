//! The failover test bed: three nodes on a namespace LAN, each with the
//! load-balancer address on `lo` (as kube-proxy's strictARP set-up has it) and a
//! UDP echo, and either FerroLB speakers or keepalived (VRRP) moving the address.
//! Used by the `failover` benchmark and `tests/membership.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::http::Attempt;
use super::{netns, udp};
use crate::lab::{Lan, controller_once, eventually};

pub const VIP: &str = "10.77.0.200";
pub const PORT: u16 = 7007;
pub const INTERVAL: Duration = Duration::from_millis(2);

#[derive(Clone, Copy, PartialEq)]
pub enum Mode {
    /// FerroLB speakers with default settings.
    FerroLb,
    /// keepalived; `fast`: VRRPv3 with advert_int 0.01.
    Keepalived {
        /// VRRPv3, advert_int 0.01 s.
        fast: bool,
    },
}

/// A running bed; dropping it removes everything.
pub struct Bed {
    /// The LAN.
    pub lan: Lan,
    /// Configuration and logs.
    pub dir: tempfile::TempDir,
    /// Speaker handles (node i at i - 1).
    pub speakers: Vec<usize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub fn target() -> SocketAddr {
    SocketAddr::new(VIP.parse().unwrap_or([10, 77, 0, 200].into()), PORT)
}

pub fn ferrolb_config(dir: &Path) -> anyhow::Result<()> {
    let mut y = format!(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: vip}}\nspec: {{addresses: ['{VIP}/32']}}\n---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: vip}}\n---\napiVersion: v1\nkind: Service\nmetadata: {{name: echo}}\nspec: {{type: LoadBalancer, ports: [{{port: {PORT}, protocol: UDP}}]}}\n"
    );
    for i in 1..=3 {
        y.push_str(&format!(
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: n{i}}}\nstatus: {{addresses: [{{type: InternalIP, address: {}}}]}}\n",
            Lan::v4(i)
        ));
    }
    std::fs::write(dir.join("config.yaml"), y)?;
    controller_once(dir)
}

pub fn keepalived_conf(i: usize, fast: bool) -> String {
    let (version, advert) = if fast {
        ("vrrp_version 3\n", "0.01")
    } else {
        ("", "1")
    };
    format!(
        "global_defs {{\n  router_id n{i}\n  {version}}}\nvrrp_instance VI {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {}\n  advert_int {advert}\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n",
        200 - 50 * i
    )
}

/// Builds and starts a bed.
pub fn bed(mode: Mode) -> anyhow::Result<Bed> {
    bed_with(mode, &|_| Vec::new())
}

/// Builds and starts a bed; `extra(i)` are more flags for node i's speaker.
pub fn bed_with(mode: Mode, extra: &dyn Fn(usize) -> Vec<String>) -> anyhow::Result<Bed> {
    let mut lan = Lan::named("fo", 3)?;
    let dir = tempfile::tempdir()?;
    let stop = Arc::new(AtomicBool::new(false));
    for i in 1..=3 {
        let ns = lan.nodes[i - 1].clone();
        // kube-proxy's strictARP: the address is local (on lo) but only the
        // announcer answers ARP for it.
        lan.sysctl(&ns, "net.ipv4.conf.all.arp_ignore", "1")?;
        lan.sysctl(&ns, "net.ipv4.conf.all.arp_announce", "2")?;
        if mode == Mode::FerroLb {
            lan.ip(&ns, &["addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
        }
        let s = stop.clone();
        netns::spawn_in(&ns, move || udp::echo(PORT, format!("n{i}"), s))?;
    }
    let mut speakers = Vec::new();
    match mode {
        Mode::FerroLb => {
            ferrolb_config(dir.path())?;
            for i in 1..=3 {
                let ns = lan.nodes[i - 1].clone();
                let more = extra(i);
                let more: Vec<&str> = more.iter().map(String::as_str).collect();
                speakers.push(lan.spawn_speaker(
                    &ns,
                    &format!("n{i}"),
                    dir.path(),
                    &format!("speaker-n{i}.log"),
                    &more,
                )?);
            }
        }
        Mode::Keepalived { fast } => {
            for i in 1..=3 {
                let ns = lan.nodes[i - 1].clone();
                let conf = dir.path().join(format!("keepalived-n{i}.conf"));
                std::fs::write(&conf, keepalived_conf(i, fast))?;
                let p = |n: &str| {
                    dir.path()
                        .join(format!("{n}-n{i}.pid"))
                        .to_string_lossy()
                        .into_owned()
                };
                let c = conf.to_string_lossy().into_owned();
                let args = [
                    "-n",
                    "-l",
                    "-P",
                    "-f",
                    &c,
                    "-p",
                    &p("k"),
                    "-r",
                    &p("v"),
                    "-c",
                    &p("c"),
                ];
                lan.spawn(
                    &ns,
                    Path::new("keepalived"),
                    &args,
                    &dir.path().join(format!("keepalived-n{i}.log")),
                )?;
            }
        }
    }
    Ok(Bed {
        lan,
        dir,
        speakers,
        stop,
    })
}

/// The node that answers for the address now (from the echo), waiting for one.
pub fn owner(bed: &Bed) -> anyhow::Result<usize> {
    let client = bed.lan.client.clone();
    eventually(Duration::from_secs(20), "an owner to answer", || {
        let r = netns::run_in(&client, || -> anyhow::Result<String> {
            let s = std::net::UdpSocket::bind(("0.0.0.0", 0))?;
            s.set_read_timeout(Some(Duration::from_millis(200)))?;
            s.send_to(&0u64.to_be_bytes(), target())?;
            let mut buf = [0u8; 64];
            let (n, _) = s.recv_from(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf[8..n]).into_owned())
        });
        r.ok()?.ok()?.strip_prefix('n')?.parse().ok()
    })
    .with_context(|| format!("logs in {}", bed.dir.path().display()))
}

/// A running probe.
pub type Probe = (
    Arc<AtomicBool>,
    std::thread::JoinHandle<
        anyhow::Result<anyhow::Result<(Vec<Attempt>, std::collections::BTreeSet<String>)>>,
    >,
);

pub fn start_probe(bed: &Bed) -> anyhow::Result<Probe> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = netns::spawn_in(&bed.lan.client, move || udp::probe(target(), INTERVAL, s))?;
    Ok((stop, h))
}

pub fn finish(p: Probe) -> anyhow::Result<(Vec<Attempt>, std::collections::BTreeSet<String>)> {
    p.0.store(true, Ordering::Relaxed);
    p.1.join()
        .map_err(|_| anyhow::anyhow!("probe panicked"))??
}

pub fn kill_node(bed: &mut Bed, i: usize) -> anyhow::Result<Instant> {
    let ns = bed.lan.nodes[i - 1].clone();
    bed.lan.ip(&ns, &["link", "set", "eth0", "down"])?;
    let at = Instant::now();
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", &ns])
        .output()?;
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid])
            .status();
    }
    Ok(at)
}
