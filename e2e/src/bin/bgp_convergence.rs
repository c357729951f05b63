//! Time from session Established until a BIRD receiver holds all N /32 routes, for
//! FerroLB and, in the same run against the same receiver, GoBGP, BIRD and FRR as
//! senders (five runs each, the sender restarted between runs), with each sender's
//! RSS; then, FerroLB only, how long a new Service's route takes to reach BIRD.
//!
//! `cargo build --workspace --release && sudo target/release/bgp_convergence [N] [WHAT]`
//! where WHAT is a comma-separated subset of `ferrolb,gobgp,bird,frr,frr0,new,newrun`
//! (default: all; `frr0` is FRR with `coalesce-time 0`, `new` the new-Service test
//! with `ferrolb-controller --once` per Service, `newrun` with a running controller).
//!
//! Clocks: the end of a run is the newest route in the receiver's table by BIRD's
//! own per-route timestamp (`timeformat route iso long ms`: millisecond resolution).
//! The start is the sender's own record of Established, read as precisely as the
//! sender keeps it:
//! - FerroLB: the JSON log line "session established" (microseconds);
//! - BIRD: its `show protocols` "since" time of the session (`timeformat protocol
//!   iso long ms`), i.e. when its FSM entered Established;
//! - FRR: its `%ADJCHANGE ... Up` log line (`log timestamp precision 3`);
//! - GoBGP keeps Established only to the second (log and `neighbor -j` uptime), so
//!   its start is the receiver's Established (BIRD's "since", ms).
//!
//! The receiver's Established is shown for every sender as a cross-check: both
//! ends enter Established within a millisecond of each other here (each on the
//! other's first KEEPALIVE, over a veth), so the two columns differ only by
//! rounding unless a sender's clock is coarse. All processes run in the lab's
//! namespaces on one host (same clock, local time = UTC).
//!
//! For looking into the speaker: `FERROLB_BENCH_WRAP="heaptrack -o F"` runs it
//! under that command (see `lab::bench_command`), and `FERROLB_BENCH_HOLD=S` keeps
//! each FerroLB run up S seconds after its RSS is read (its PID is printed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use ferrolb_e2e::bird::{ipv4_route_count, local_time, newest_route};
use ferrolb_e2e::lab::{
    Lan, binary, controller_once, controller_once_logged, eventually, hot_code_found, installed,
    peak_rss_mib, rss_mib, rss_split_mib, unavailable,
};
use k8s_openapi::jiff::Timestamp;

const BGPD: &str = "/usr/lib/frr/bgpd";
const RUNS: usize = 5;
/// How long after the last route a sender's RSS is read.
const SETTLED: Duration = Duration::from_secs(1);

/// A BGP implementation sending the table.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sender {
    FerroLb,
    GoBgp,
    Bird,
    /// FRR's bgpd; `true`: with `coalesce-time 0`.
    Frr(bool),
}

impl Sender {
    fn label(self) -> &'static str {
        match self {
            Sender::FerroLb => "FerroLB",
            Sender::GoBgp => "GoBGP",
            Sender::Bird => "BIRD",
            Sender::Frr(false) => "FRR",
            Sender::Frr(true) => "FRR, coalesce-time 0",
        }
    }
}

/// What the benchmark shares between senders.
struct Bench {
    lan: Lan,
    dir: PathBuf,
    /// The receiver's control socket.
    sock: PathBuf,
    n: usize,
}

/// The "since" time of protocol `name` in `birdc show protocols` output.
fn protocol_since(out: &str, name: &str) -> Option<Timestamp> {
    out.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.first() == Some(&name) && f.len() >= 6)
            .then(|| local_time(f[4], f[5]))
            .flatten()
    })
}

/// The i-th route, the same set the controller allocates from 10.200.0.0/16.
fn prefix(i: usize) -> String {
    format!("10.200.{}.{}/32", i >> 8, i & 255)
}

/// An MRT TABLE_DUMP_V2 file (RFC 6396 section 4.3) with `n` routes, for `gobgp mrt
/// inject`: the only bulk way to load GoBGP's RIB from its CLI (one `gobgp global
/// rib add` per route takes minutes). The first 2,000 routes come twice (see the
/// caller).
fn mrt(n: usize) -> Vec<u8> {
    fn record(out: &mut Vec<u8>, subtype: u16, body: &[u8]) {
        out.extend_from_slice(&1_700_000_000u32.to_be_bytes()); // timestamp
        out.extend_from_slice(&13u16.to_be_bytes()); // TABLE_DUMP_V2
        out.extend_from_slice(&subtype.to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut out = Vec::new();
    // PEER_INDEX_TABLE: collector id, empty view name, one IPv4 peer with a 4-byte
    // AS. The peer is 0.0.0.0 (id and address), AS 0: GoBGP drops injected paths
    // whose peer is itself (its router id, address or AS) and keeps these as
    // locally originated.
    let mut peers = vec![10, 77, 0, 11, 0, 0, 0, 1, 0x02];
    peers.extend_from_slice(&[0; 12]);
    record(&mut out, 1, &peers);
    // ORIGIN IGP, empty AS_PATH, NEXT_HOP 0.0.0.0 (as for `gobgp global rib add`;
    // GoBGP drops a path whose next hop is its own router id). Timestamps are
    // non-zero: with 0, GoBGP kept none of them.
    let attrs = [0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 0, 0, 0, 0];
    for (seq, i) in (0..n).chain(0..n.min(2000)).enumerate() {
        let mut rib = (seq as u32).to_be_bytes().to_vec();
        rib.extend_from_slice(&[32, 10, 200, (i >> 8) as u8, i as u8]);
        rib.extend_from_slice(&1u16.to_be_bytes()); // one entry
        rib.extend_from_slice(&0u16.to_be_bytes()); // peer index
        rib.extend_from_slice(&1_700_000_000u32.to_be_bytes()); // originated
        rib.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        rib.extend_from_slice(&attrs);
        record(&mut out, 2, &rib); // RIB_IPV4_UNICAST
    }
    out
}

impl Bench {
    fn birdc(&self, args: &[&str]) -> anyhow::Result<String> {
        self.lan.birdc(&self.lan.client, &self.sock, args)
    }

    fn node(&self) -> String {
        self.lan.nodes[0].clone()
    }

    /// Routes in the receiver's IPv4 table ("N of N routes for N networks in table
    /// master4"; the IPv6 table's "0 of 0" line must not count).
    fn routes(&self) -> Option<usize> {
        ipv4_route_count(&self.birdc(&["show", "route", "count"]).ok()?)
    }

    fn wait_routes(&self, count: usize, what: &str) -> anyhow::Result<()> {
        let limit = Duration::from_secs(if count == 0 { 30 } else { 60 });
        eventually(limit, what, || (self.routes() == Some(count)).then_some(()))
    }

    /// Starts `sender` in the node namespace with all N routes configured; returns
    /// the handle and the directory of its files.
    fn start(&mut self, sender: Sender, run: usize) -> anyhow::Result<(usize, PathBuf)> {
        let node = self.node();
        let me = Lan::v4(1);
        let router = Lan::v4(0);
        let d = self
            .dir
            .join(format!("{}-{run}", sender.label().replace([' ', ','], "")));
        std::fs::create_dir_all(&d)?;
        let ds = d.to_str().context("path is not UTF-8")?.to_string();
        match sender {
            Sender::FerroLb => {
                let dir = self.dir.clone();
                let log = d.join("speaker.log");
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
                    dir.to_str().context("path")?,
                ];
                let h = self
                    .lan
                    .spawn_wrapped(&node, &binary("ferrolb-speaker")?, &args, &log)?;
                Ok((h, d))
            }
            Sender::GoBgp => {
                let conf = d.join("gobgpd.toml");
                // port = -1: no listener, the session is the one we add below.
                std::fs::write(
                    &conf,
                    format!("[global.config]\n  as = 64512\n  router-id = \"{me}\"\n  port = -1\n"),
                )?;
                let file = d.join("routes.mrt");
                std::fs::write(&file, mrt(self.n))?;
                let h = self.lan.spawn(
                    &node,
                    Path::new("gobgpd"),
                    &[
                        "-f",
                        conf.to_str().context("path")?,
                        "--api-hosts",
                        "127.0.0.1:50051",
                    ],
                    &d.join("gobgpd.log"),
                )?;
                let gobgp = |args: &[&str]| -> anyhow::Result<bool> {
                    let mut a = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
                    a.extend_from_slice(args);
                    Ok(self.lan.exec(&node, &a)?.status.success())
                };
                eventually(Duration::from_secs(10), "gobgpd's API", || {
                    gobgp(&["global"]).ok().filter(|ok| *ok)
                })?;
                // The CLI closes its stream before the server has read the last
                // few hundred paths: the file ends with the first 2,000 routes
                // again (the same path again only replaces itself, and no session
                // exists yet), and a short count injects once more.
                let file = file.to_str().context("path")?;
                let want = format!("Destination: {},", self.n);
                eventually(Duration::from_secs(30), "GoBGP's RIB to fill", || {
                    gobgp(&["mrt", "inject", "global", file]).ok()?;
                    std::thread::sleep(Duration::from_millis(200));
                    let mut a = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
                    a.extend_from_slice(&["global", "rib", "summary", "-a", "ipv4"]);
                    let out = self.lan.exec(&node, &a).ok()?;
                    String::from_utf8_lossy(&out.stdout)
                        .contains(&want)
                        .then_some(())
                })?;
                if !gobgp(&["neighbor", "add", &router, "as", "64500"])? {
                    bail!("gobgp neighbor add failed");
                }
                Ok((h, d))
            }
            Sender::Bird => {
                let mut conf = format!(
                    "router id {me};\ntimeformat protocol iso long ms;\nprotocol device {{}}\nprotocol static prefixes {{\n  ipv4;\n"
                );
                for i in 0..self.n {
                    writeln!(conf, "  route {} blackhole;", prefix(i))?;
                }
                write!(
                    conf,
                    "}}\nprotocol bgp r {{\n  local {me} as 64512;\n  neighbor {router} as 64500;\n  ipv4 {{ import none; export all; }};\n}}\n"
                )?;
                let (_, h) = self.lan.spawn_bird(&node, &d, &conf)?;
                Ok((h, d))
            }
            Sender::Frr(zero) => {
                let mut conf = format!(
                    "frr defaults traditional\nhostname flbsender\nlog file {ds}/frr.log\nlog timestamp precision 3\n\
router bgp 64512\n bgp router-id {me}\n bgp log-neighbor-changes\n no bgp ebgp-requires-policy\n no bgp network import-check\n{}\
 neighbor {router} remote-as 64500\n address-family ipv4 unicast\n",
                    if zero { " coalesce-time 0\n" } else { "" }
                );
                for i in 0..self.n {
                    writeln!(conf, "  network {}", prefix(i))?;
                }
                conf.push_str(" exit-address-family\n");
                let path = d.join("bgpd.conf");
                std::fs::write(&path, conf)?;
                // -Z: no zebra, -S: no user switch, -P 0: no vty TCP port (as in
                // tests/bgp_frr.rs).
                let h = self.lan.spawn(
                    &node,
                    Path::new(BGPD),
                    &[
                        "-Z",
                        "-S",
                        "-n",
                        "-P",
                        "0",
                        "-f",
                        path.to_str().context("path")?,
                        "-i",
                        &format!("{ds}/bgpd.pid"),
                        "--vty_socket",
                        &ds,
                    ],
                    &d.join("bgpd.stderr"),
                )?;
                Ok((h, d))
            }
        }
    }

    /// The sender's own Established time (see the module comment).
    fn sender_established(&self, sender: Sender, d: &Path) -> anyhow::Result<Timestamp> {
        match sender {
            Sender::FerroLb => {
                let text = std::fs::read_to_string(d.join("speaker.log"))?;
                text.lines()
                    .filter(|l| l.contains("session established"))
                    .find_map(|l| {
                        serde_json::from_str::<serde_json::Value>(l)
                            .ok()?
                            .get("timestamp")?
                            .as_str()?
                            .parse()
                            .ok()
                    })
                    .context("no Established in the speaker log")
            }
            Sender::GoBgp => self.receiver_established(),
            Sender::Bird => {
                let out =
                    self.lan
                        .birdc(&self.node(), &d.join("bird.ctl"), &["show", "protocols"])?;
                protocol_since(&out, "r").context("no session in the sending BIRD")
            }
            Sender::Frr(_) => {
                let log = d.join("frr.log");
                let text = std::fs::read_to_string(&log)
                    .with_context(|| format!("reading {}", log.display()))?;
                text.lines()
                    .filter(|l| l.contains("%ADJCHANGE") && l.contains(" Up"))
                    .find_map(|l| {
                        let mut f = l.split_whitespace();
                        local_time(f.next()?, f.next()?)
                    })
                    .context("no %ADJCHANGE Up in FRR's log")
            }
        }
    }

    fn receiver_established(&self) -> anyhow::Result<Timestamp> {
        protocol_since(&self.birdc(&["show", "protocols", "n1"])?, "n1")
            .context("no session at the receiver")
    }

    /// One run: start, wait for the whole table, time it, stop, wait for the flush.
    /// Returns (ms from the sender's Established, ms from the receiver's, RSS MiB
    /// once the sender has settled, peak RSS MiB).
    fn run(&mut self, sender: Sender, run: usize) -> anyhow::Result<(f64, f64, f64, f64)> {
        let (h, d) = self.start(sender, run)?;
        if let Err(e) = self.wait_routes(self.n, "all routes at BIRD") {
            bail!(
                "{}: {e}\n--- receiver\n{}{}\n--- sender's files in {}",
                sender.label(),
                self.birdc(&["show", "protocols", "all"])?,
                self.birdc(&["show", "route", "count"])?,
                d.display()
            );
        }
        let last = newest_route(&self.birdc(&["show", "route"])?).context("no route timestamps")?;
        // FRR writes its log from a thread of its own, a little later.
        let own = eventually(Duration::from_secs(5), "the sender's Established", || {
            self.sender_established(sender, &d).ok()
        })
        .with_context(|| {
            format!(
                "{}: {:?}",
                sender.label(),
                self.sender_established(sender, &d)
            )
        })?;
        let theirs = self.receiver_established()?;
        let pid = self.lan.pid(h).context("no pid")?;
        // What the sender keeps while it holds the table, once it is done with
        // the work around the first send (status writes, freeing what it built).
        std::thread::sleep(SETTLED);
        let rss = rss_mib(pid);
        let peak = peak_rss_mib(pid);
        let (anon, file) = rss_split_mib(pid);
        eprintln!(
            "{}: RSS {rss:.1} MiB = anon {anon:.1} + file {file:.1}",
            sender.label()
        );
        let hold = std::env::var("FERROLB_BENCH_HOLD").ok();
        if let Some(s) = hold.and_then(|s| s.parse().ok())
            && sender == Sender::FerroLb
        {
            eprintln!("holding pid {pid} for {s} s");
            std::thread::sleep(Duration::from_secs(s));
        }
        self.lan.stop(h, "TERM")?;
        self.wait_routes(0, "BIRD to drop the routes")?;
        let ms = |t: Timestamp| (last.as_millisecond() - t.as_millisecond()) as f64;
        Ok((ms(own), ms(theirs), rss, peak))
    }

    /// A new Service while the table is in: from the controller's status write
    /// (its own log line, logged just after the rename of `status/services.yaml`
    /// into place, `renamed_at`, taken just before the rename: microseconds; the
    /// file's ctime is the kernel's coarse clock, 4 ms ticks) to BIRD's timestamp
    /// of the new route (milliseconds, truncated: the figure errs short by under
    /// 1 ms). `running`: a controller watching the
    /// directory, as the lab runs it; otherwise `ferrolb-controller --once` per
    /// Service, which still loads, writes and exits while the speaker reads.
    /// Also the speaker's RSS after those reloads, settled, and its peak.
    fn new_services(&mut self, running: bool) -> anyhow::Result<(Vec<f64>, f64, f64)> {
        let node = self.node();
        let dir = self.dir.clone();
        let h = self
            .lan
            .spawn_speaker(&node, "n1", &dir, "speaker-new.log", &[])?;
        let controller = if running {
            let c = self.lan.spawn(
                &node,
                &binary("ferrolb-controller")?,
                &[
                    "--source",
                    "file",
                    "--metrics-address",
                    "",
                    "--log-level",
                    WRITE_LOG,
                    "--dir",
                    dir.to_str().context("directory is not UTF-8")?,
                ],
                &dir.join("controller-new.log"),
            )?;
            Some(c)
        } else {
            None
        };
        self.wait_routes(self.n, "all routes at BIRD")?;
        std::thread::sleep(Duration::from_millis(500));
        let mut latency = Vec::new();
        for k in 0..5 {
            let name = format!("new{k}");
            let asked = Timestamp::now();
            std::fs::write(
                dir.join(format!("{name}.yaml")),
                format!(
                    "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{type: LoadBalancer}}\n"
                ),
            )?;
            let log = if running {
                None
            } else {
                Some(controller_once_logged(&dir, WRITE_LOG)?)
            };
            self.wait_routes(self.n + k + 1, "the new route at BIRD")?;
            let log = match log {
                Some(l) => l,
                None => std::fs::read_to_string(dir.join("controller-new.log"))?,
            };
            let written = services_written_after(&log, asked)
                .context("no \"status written\" line for services.yaml in the controller's log")?;
            let newest =
                newest_route(&self.birdc(&["show", "route"])?).context("no route timestamps")?;
            let ctime = {
                use std::os::unix::fs::MetadataExt;
                let m = std::fs::metadata(dir.join("status/services.yaml"))?;
                Timestamp::new(m.ctime(), m.ctime_nsec() as i32).context("ctime")?
            };
            let ms = (newest.as_microsecond() - written.as_microsecond()) as f64 / 1000.0;
            eprintln!(
                "new Service {k}: status renamed at {written}, route at BIRD {newest}: {ms:.1} ms \
(from the file's ctime {ctime}: {} ms)",
                newest.as_millisecond() - ctime.as_millisecond()
            );
            latency.push(ms);
            // Let the speaker's status write and the controller's answer to it
            // settle: the next Service is timed from a quiet start.
            std::thread::sleep(Duration::from_secs(1));
        }
        std::thread::sleep(SETTLED);
        let pid = self.lan.pid(h).context("no pid")?;
        let (rss, peak) = (rss_mib(pid), peak_rss_mib(pid));
        self.lan.stop(h, "TERM")?;
        if let Some(c) = controller {
            self.lan.stop(c, "TERM")?;
        }
        // With FERROLB_LOG_LEVEL=ferrolb_crds=debug,ferrolb_speaker=debug the
        // speaker logs where the time of each reload went.
        let log = std::fs::read_to_string(dir.join("speaker-new.log")).unwrap_or_default();
        for l in log.lines().filter(|l| {
            l.contains("file source loaded")
                || l.contains("file source compared")
                || l.contains("status records")
                || l.contains("planned")
        }) {
            eprintln!("{l}");
        }
        for k in 0..5 {
            std::fs::remove_file(dir.join(format!("new{k}.yaml")))?;
        }
        controller_once(&dir)?;
        Ok((latency, rss, peak))
    }
}

/// The controller's log level for the new-Service test: its status writes.
const WRITE_LOG: &str = "warn,ferrolb_crds::source::file=debug";

/// The time of the first write of `services.yaml` after `after` in a
/// controller's log: its `renamed_at` (taken just before the rename).
fn services_written_after(log: &str, after: Timestamp) -> Option<Timestamp> {
    log.lines()
        .filter(|l| l.contains("status written") && l.contains("services.yaml"))
        .filter_map(|l| {
            let (_, at) = l.split_once("renamed_at=")?;
            at.split_whitespace().next()?.parse::<Timestamp>().ok()
        })
        .find(|t| *t > after)
}

fn main() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return Ok(());
    }
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let what = args
        .next()
        .unwrap_or_else(|| "ferrolb,gobgp,bird,frr,frr0,new,newrun".into());
    let what: Vec<&str> = what.split(',').collect();
    if n > 1 << 16 {
        bail!("at most 65536 routes (one /16)");
    }
    // The list holds the image build's names too: about half is this build's.
    if let Some((found, listed)) = hot_code_found(&binary("ferrolb-speaker")?) {
        eprintln!("speaker/hot-code.txt: {found} of {listed} names in this ferrolb-speaker");
    }
    let dir = tempfile::tempdir()?;
    let mut yaml = format!(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: p}}\nspec: {{addresses: [10.200.0.0/16]}}\n---\n\
apiVersion: ferrolb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {{name: p}}\n---\n\
apiVersion: ferrolb.io/v1beta1\nkind: BGPPeer\nmetadata: {{name: bird}}\nspec: {{myASN: 64512, peerASN: 64500, peerAddress: {r}, connectTime: 1s}}\n---\n\
apiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n",
        r = Lan::v4(0)
    );
    for i in 0..n {
        write!(
            yaml,
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\nspec: {{type: LoadBalancer}}\n"
        )?;
    }
    std::fs::write(dir.path().join("cluster.yaml"), yaml)?;
    controller_once(dir.path())?;
    let mut lan = Lan::new(1)?;
    let client = lan.client.clone();
    let (sock, _) = lan.spawn_bird(
        &client,
        dir.path(),
        &format!(
            "router id {r};\ntimeformat route iso long ms;\ntimeformat protocol iso long ms;\nprotocol device {{}}\nprotocol bgp n1 {{\n  local {r} as 64500;\n  neighbor {nd} as 64512;\n  passive on;\n  graceful restart off;\n  long lived graceful restart off;\n  ipv4 {{ import all; export none; }};\n}}\n",
            r = Lan::v4(0),
            nd = Lan::v4(1)
        ),
    )?;
    let mut b = Bench {
        lan,
        dir: dir.path().to_path_buf(),
        sock,
        n,
    };
    eventually(Duration::from_secs(10), "the receiver", || {
        b.birdc(&["show", "status"])
            .ok()
            .filter(|s| s.contains("BIRD"))
    })?;
    println!(
        "\n{n} routes to a BIRD receiver ({}), {RUNS} runs per sender; ms from Established to the last route at the receiver:\n",
        b.birdc(&["show", "status"])?
            .lines()
            .next()
            .unwrap_or_default()
    );
    let mut senders = Vec::new();
    for (key, s) in [
        ("ferrolb", Sender::FerroLb),
        ("gobgp", Sender::GoBgp),
        ("bird", Sender::Bird),
        ("frr", Sender::Frr(false)),
        ("frr0", Sender::Frr(true)),
    ] {
        if !what.contains(&key) {
            continue;
        }
        if matches!(s, Sender::Frr(_)) && !Path::new(BGPD).exists() {
            println!("FRR not installed: skipped");
            continue;
        }
        if s == Sender::GoBgp && !(installed("gobgpd") && installed("gobgp")) {
            println!("GoBGP (gobgpd, gobgp) not installed: skipped");
            continue;
        }
        senders.push(s);
    }
    let mut rows = Vec::new();
    for s in senders {
        let mut own = Vec::new();
        let mut theirs = Vec::new();
        let (mut rss, mut peak): (f64, f64) = (0.0, 0.0);
        for run in 1..=RUNS {
            let (a, b2, r, p) = b.run(s, run)?;
            eprintln!(
                "{} run {run}: {a:.0} ms (receiver's Established: {b2:.0} ms), RSS {r:.1} MiB (peak {p:.1})",
                s.label()
            );
            own.push(a);
            theirs.push(b2);
            rss = rss.max(r);
            peak = peak.max(p);
        }
        own.sort_by(f64::total_cmp);
        theirs.sort_by(f64::total_cmp);
        rows.push((s, own, theirs, rss, peak));
    }
    if !rows.is_empty() {
        println!(
            "| sender | median | max | runs | from the receiver's Established: median / max | RSS 1 s after (max) | peak RSS (max) |"
        );
        println!("|---|---|---|---|---|---|---|");
        for (s, own, theirs, rss, peak) in &rows {
            let list: Vec<String> = own.iter().map(|x| format!("{x:.0}")).collect();
            println!(
                "| {} | {:.0} ms | {:.0} ms | {} | {:.0} / {:.0} ms | {rss:.1} MiB | {peak:.1} MiB |",
                s.label(),
                own[RUNS / 2],
                own[RUNS - 1],
                list.join(", "),
                theirs[RUNS / 2],
                theirs[RUNS - 1],
            );
        }
    }
    for (key, running, how) in [
        ("new", false, "`ferrolb-controller --once` per Service"),
        ("newrun", true, "a running controller"),
    ] {
        if !what.contains(&key) {
            continue;
        }
        let (latency, rss, peak) = b.new_services(running)?;
        let list: Vec<String> = latency.iter().map(|x| format!("{x:.1}")).collect();
        println!(
            "\nA new Service with {n} routes in (FerroLB, {how}): status written -> route at BIRD: {} ms; \
RSS after these reloads {rss:.1} MiB (peak {peak:.1} MiB)",
            list.join(", ")
        );
    }
    Ok(())
}
