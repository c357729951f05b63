//! Network-namespace topologies that clean up after themselves. Every name starts
//! with `flb`, the PID and a counter, so parallel runs and parallel tests never
//! collide. Traffic stays inside the namespaces created here.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Why a lab test cannot run here.
pub fn unavailable() -> Option<String> {
    // SAFETY-free check of the effective user: root can create namespaces.
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .map(String::from)
        });
    if uid.as_deref() != Some("0") {
        return Some("not root: network namespaces need CAP_SYS_ADMIN".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 (ip) is not installed".into());
    }
    None
}

/// Whether `bin` is on `PATH`.
pub fn installed(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// Fails naming the program and its Debian package when `bin` is not on `PATH`:
/// a peer that is not there otherwise shows only as a timeout much later.
pub fn require(bin: &str, package: &str) -> anyhow::Result<()> {
    if installed(bin) {
        return Ok(());
    }
    bail!(
        "{bin} is not installed (Debian package {package}): ./scripts/test installs the peers, \
or apt-get install -y {package}"
    )
}

/// Whether a network test must skip here (not root): says so loudly (`SKIPPED:`) first.
pub fn skipped() -> bool {
    match unavailable() {
        Some(why) => {
            println!("SKIPPED: {why}");
            true
        }
        None => false,
    }
}

/// The workspace's built binaries (`cargo test --workspace` builds them all):
/// beside this executable, or one level up for test binaries in `deps/`.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let here = exe.parent().context("executable has no directory")?;
    let candidates = [Some(here.join(name)), here.parent().map(|p| p.join(name))];
    match candidates.iter().flatten().find(|p| p.exists()) {
        Some(p) => Ok(p.clone()),
        None => bail!(
            "{name} not built next to {}: run `cargo build --workspace` (or ./scripts/test) first",
            here.display()
        ),
    }
}

/// Runs `ferrolb-controller --once` on the file source in `dir`.
pub fn controller_once(dir: &Path) -> anyhow::Result<()> {
    controller_once_logged(dir, "warn").map(drop)
}

/// [`controller_once`] at log level `level`; its log.
pub fn controller_once_logged(dir: &Path, level: &str) -> anyhow::Result<String> {
    let out = Command::new(binary("ferrolb-controller")?)
        .args(["--source", "file", "--once", "--log-level", level, "--dir"])
        .arg(dir)
        .output()?;
    if !out.status.success() {
        bail!(
            "ferrolb-controller --once failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A LAN: one bridge, `nodes` node namespaces and a client, each with `eth0` on
/// 10.77.0.0/24 and fd77::/64.
pub struct Lan {
    tag: String,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
    /// Node namespace names, in order (`n1`, `n2`, ...).
    pub nodes: Vec<String>,
    /// The client namespace.
    pub client: String,
    keep: bool,
}

fn run(args: &[&str]) -> anyhow::Result<Output> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!(
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

impl Lan {
    /// The IPv4 address of node `i` (1-based), of the client (0).
    pub fn v4(i: usize) -> String {
        if i == 0 {
            "10.77.0.100".into()
        } else {
            format!("10.77.0.{}", 10 + i)
        }
    }

    /// The IPv6 address of node `i` (1-based), of the client (0).
    pub fn v6(i: usize) -> String {
        if i == 0 {
            "fd77::100".into()
        } else {
            format!("fd77::{}", 10 + i)
        }
    }

    /// Builds the LAN.
    pub fn new(nodes: usize) -> anyhow::Result<Lan> {
        Self::named("x", nodes)
    }

    /// Builds the LAN with `kind` in every name (`flb<pid><kind><n>-...`), so that
    /// `kind` finds what one program left behind.
    pub fn named(kind: &str, nodes: usize) -> anyhow::Result<Lan> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!("flb{}{kind}{n}", std::process::id());
        let mut lan = Lan {
            namespaces: Vec::new(),
            children: Vec::new(),
            nodes: Vec::new(),
            client: String::new(),
            tag,
            keep: false,
        };
        let br = lan.add_ns("br")?;
        run(&["ip", "-n", &br, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &br, "link", "set", "br0", "up"])?;
        for i in 1..=nodes {
            let ns = lan.attach(&format!("n{i}"), &Self::v4(i), &Self::v6(i))?;
            lan.nodes.push(ns);
        }
        lan.client = lan.attach("c", &Self::v4(0), &Self::v6(0))?;
        Ok(lan)
    }

    /// The prefix of every name this LAN creates.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Adds a namespace `<tag>-<suffix>` with `eth0` on the LAN bridge at `v4`/24
    /// and `v6`/64, and returns its name.
    pub fn attach(&mut self, suffix: &str, v4: &str, v6: &str) -> anyhow::Result<String> {
        let ns = self.add_ns(suffix)?;
        let br = format!("{}-br", self.tag);
        let port = format!("p{}", self.namespaces.len());
        run(&[
            "ip", "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
            &ns,
        ])?;
        run(&["ip", "-n", &br, "link", "set", &port, "master", "br0", "up"])?;
        self.configure(&ns, "eth0", v4, 24, v6, 64)?;
        Ok(ns)
    }

    /// Connects namespaces `a` and `b` with a veth pair named `a_if` / `b_if`.
    pub fn veth(&self, a: &str, a_if: &str, b: &str, b_if: &str) -> anyhow::Result<()> {
        run(&[
            "ip", "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
        ])?;
        Ok(())
    }

    /// Brings `lo` and `dev` up in `ns` with the given addresses (no DAD: the tests
    /// and the lab must not wait a second for it).
    pub fn configure(
        &self,
        ns: &str,
        dev: &str,
        v4: &str,
        v4_len: u8,
        v6: &str,
        v6_len: u8,
    ) -> anyhow::Result<()> {
        self.sysctl(ns, &format!("net.ipv6.conf.{dev}.accept_dad"), "0")?;
        run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        let v4 = format!("{v4}/{v4_len}");
        run(&["ip", "-n", ns, "addr", "add", &v4, "dev", dev])?;
        let v6 = format!("{v6}/{v6_len}");
        run(&["ip", "-n", ns, "addr", "add", &v6, "dev", dev, "nodad"])?;
        run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
        Ok(())
    }

    /// Sets a sysctl inside `ns`.
    pub fn sysctl(&self, ns: &str, key: &str, value: &str) -> anyhow::Result<()> {
        run(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sysctl",
            "-qw",
            &format!("{key}={value}"),
        ])?;
        Ok(())
    }

    /// Runs `ip -n ns ARGS...`, failing on a non-zero exit.
    pub fn ip(&self, ns: &str, args: &[&str]) -> anyhow::Result<Output> {
        let mut a = vec!["ip", "-n", ns];
        a.extend_from_slice(args);
        run(&a)
    }

    /// Adds a namespace `<tag>-<suffix>` (removed on drop) and returns its name.
    pub fn add_ns(&mut self, suffix: &str) -> anyhow::Result<String> {
        let ns = format!("{}-{suffix}", self.tag);
        run(&["ip", "netns", "add", &ns])?;
        self.namespaces.push(ns.clone());
        Ok(ns)
    }

    /// Kills every program started with [`Lan::spawn`] and waits for it.
    pub fn kill_all(&mut self) {
        // A program run under FERROLB_BENCH_WRAP (callgrind, heaptrack) writes
        // its profile when it exits, not when it is killed.
        let wrapped = std::env::var_os("FERROLB_BENCH_WRAP").is_some();
        for (_, c) in &mut self.children {
            if wrapped && matches!(c.try_wait(), Ok(None)) {
                let _ = Command::new("kill")
                    .args(["-TERM", &c.id().to_string()])
                    .status();
                let _ = eventually(Duration::from_secs(60), "a wrapped program to exit", || {
                    c.try_wait().ok().flatten()
                });
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Leaves everything running when the LAN is dropped (the lab's `--keep`).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// The MACs that answered `count` ARP requests for `ip` from the client, one
    /// entry per reply (lower case).
    pub fn arping(&self, ip: &str, count: u32) -> anyhow::Result<Vec<String>> {
        let count = count.to_string();
        let out = self.exec(
            &self.client,
            &["arping", "-c", &count, "-W", "0.2", "-i", "eth0", ip],
        )?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_once(" from ")
                    .and_then(|(_, r)| r.split_whitespace().next())
                    .map(str::to_lowercase)
            })
            .collect())
    }

    /// Runs a command in a namespace and returns its output (any exit status).
    pub fn exec(&self, ns: &str, args: &[&str]) -> anyhow::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .with_context(|| format!("running {args:?} in {ns}"))
    }

    /// Starts a long-running program in a namespace; it is killed when the LAN is
    /// dropped. Returns a handle for [`Lan::stop`].
    pub fn spawn(
        &mut self,
        ns: &str,
        program: &Path,
        args: &[&str],
        log: &Path,
    ) -> anyhow::Result<usize> {
        let log = std::fs::File::create(log)?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.children.push((ns.to_string(), child));
        Ok(self.children.len() - 1)
    }

    /// As [`Lan::spawn`], under `FERROLB_BENCH_WRAP` when it is set (see
    /// [`bench_command`]).
    pub fn spawn_wrapped(
        &mut self,
        ns: &str,
        program: &Path,
        args: &[&str],
        log: &Path,
    ) -> anyhow::Result<usize> {
        let (program, args) = bench_command(program, args)?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.spawn(ns, &program, &args, log)
    }

    /// Starts `ferrolb-speaker` for `node` in namespace `ns` on the file source in
    /// `dir`, logging to `dir/<log>`; `extra` are more flags.
    pub fn spawn_speaker(
        &mut self,
        ns: &str,
        node: &str,
        dir: &Path,
        log: &str,
        extra: &[&str],
    ) -> anyhow::Result<usize> {
        let d = dir.to_str().context("directory is not UTF-8")?;
        let mut args = vec!["--source", "file", "--node", node, "--dir", d];
        if !extra.contains(&"--metrics-address") {
            args.extend(["--metrics-address", ""]);
        }
        args.extend_from_slice(extra);
        self.spawn_wrapped(ns, &binary("ferrolb-speaker")?, &args, &dir.join(log))
    }

    /// Starts BIRD 2 in `ns` with the configuration `conf`, its files (`bird.conf`,
    /// `bird.ctl`, `bird.pid`, `bird.log`) in `dir`. Returns the control socket and
    /// the handle for [`Lan::stop`].
    pub fn spawn_bird(
        &mut self,
        ns: &str,
        dir: &Path,
        conf: &str,
    ) -> anyhow::Result<(PathBuf, usize)> {
        require("bird", "bird2")?;
        let path = dir.join("bird.conf");
        std::fs::write(&path, conf)?;
        let sock = dir.join("bird.ctl");
        let pid = dir.join("bird.pid");
        let utf8 = |p: &Path| p.to_str().map(String::from).context("path is not UTF-8");
        let (c, s, p) = (utf8(&path)?, utf8(&sock)?, utf8(&pid)?);
        let h = self.spawn(
            ns,
            Path::new("bird"),
            &["-f", "-c", &c, "-s", &s, "-P", &p],
            &dir.join("bird.log"),
        )?;
        Ok((sock, h))
    }

    /// What `birdc ARGS...` prints, against the BIRD in `ns` with control socket
    /// `sock`.
    pub fn birdc(&self, ns: &str, sock: &Path, args: &[&str]) -> anyhow::Result<String> {
        let mut a = vec!["birdc", "-s", sock.to_str().context("path is not UTF-8")?];
        a.extend_from_slice(args);
        Ok(String::from_utf8_lossy(&self.exec(ns, &a)?.stdout).into_owned())
    }

    /// Sends `signal` (e.g. `TERM`, `KILL`) to a spawned program and waits for it.
    pub fn stop(&mut self, handle: usize, signal: &str) -> anyhow::Result<()> {
        let (_, child) = self.children.get_mut(handle).context("no such child")?;
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        child.wait()?;
        Ok(())
    }

    /// The process id of a spawned program (`ip netns exec` execs it in place).
    pub fn pid(&self, handle: usize) -> Option<u32> {
        self.children.get(handle).map(|(_, c)| c.id())
    }

    /// The MAC of `eth0` in a namespace.
    pub fn mac(&self, ns: &str) -> anyhow::Result<String> {
        let out = self.exec(ns, &["cat", "/sys/class/net/eth0/address"])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        self.kill_all();
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The command line that runs `program` with `args`, under the command in
/// `FERROLB_BENCH_WRAP` when it is set (say `valgrind --tool=callgrind`, for
/// `scripts/hot-code.sh`, or `heaptrack -o FILE`): benchmarks start the speaker
/// through this so that its memory and code can be looked into as they measure it.
pub fn bench_command(program: &Path, args: &[&str]) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let wrap = std::env::var("FERROLB_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace().map(str::to_string);
    let program = program.to_str().context("path is not UTF-8")?.to_string();
    let rest = args.iter().map(|a| a.to_string());
    Ok(match words.next() {
        Some(wrapper) => (
            PathBuf::from(wrapper),
            words.chain([program]).chain(rest).collect(),
        ),
        None => (PathBuf::from(program), rest.collect()),
    })
}

/// How many of `speaker/hot-code.txt`'s names the executable at `binary` has,
/// and how many it lists; `None` when `nm` cannot read it. The list names
/// functions as one build configuration does (see `speaker/build.rs`): few
/// found means the speaker's code is not laid out as measured, and its RSS is
/// several MiB higher.
pub fn hot_code_found(binary: &Path) -> Option<(usize, usize)> {
    let list = Path::new(env!("CARGO_MANIFEST_DIR")).join("../speaker/hot-code.txt");
    let list = std::fs::read_to_string(list).ok()?;
    let out = Command::new("nm")
        .arg("--defined-only")
        .arg(binary)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let symbols: std::collections::HashSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    let names: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    let found = names.iter().filter(|n| symbols.contains(*n)).count();
    Some((found, names.len()))
}

/// A process's resident set (VmRSS) in MiB, 0 when it cannot be read.
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// The most a process has ever had resident (VmHWM) in MiB, 0 when unreadable.
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A process's resident set split into anonymous memory (heap, stacks) and
/// file pages (its executable and libraries, shared and reclaimable), in MiB.
pub fn rss_split_mib(pid: u32) -> (f64, f64) {
    (status_mib(pid, "RssAnon:"), status_mib(pid, "RssFile:"))
}

fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU time (user + system) a process has used so far, from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).context("no utime")?.parse::<u64>()?
        + f.get(12).context("no stime")?.parse::<u64>()?;
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or(100);
    Ok(Duration::from_millis(ticks * 1000 / hz))
}

/// Polls `f` until it returns `Some`, or fails after `limit` (a guard against
/// hanging, not a measurement).
pub fn eventually<T>(
    limit: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if t.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_peer_is_named_with_its_package() {
        assert!(installed("sh"));
        let e = require("flb-no-such-program", "flb-package")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("flb-no-such-program") && e.contains("apt-get install -y flb-package"),
            "{e}"
        );
        assert!(require("sh", "dash").is_ok());
    }
}
