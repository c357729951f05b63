//! Building, running and observing the lab (see the module diagram in `mod.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferrolb_crds::source::FileSource;

use super::config::{self, BACKEND_PORT, LabService, ROUTER_V4, ROUTER_V6, SERVICE_PORT};
use super::{http, kubeproxy, netns, router};
use crate::lab::{Lan, binary, eventually};

const NODES: usize = 3;
const REMOTE_V4: &str = "10.78.0.100";
const REMOTE_V6: &str = "fd78::100";

/// One line of the lab's table: a Service address and what each client got.
#[derive(Clone, Debug)]
pub struct Row {
    /// `default/<name>`.
    pub service: String,
    /// The load-balancer address.
    pub address: IpAddr,
    /// `L2` or `BGP` (with `ETP=Local` when so).
    pub mode: String,
    /// Who the network sends the address to: the LAN client's ARP/NDP entry, or
    /// the router's next hops.
    pub announced_by: String,
    /// What the LAN client got (the backend's name or the error).
    pub lan: Result<String, String>,
    /// What the remote client behind the router got.
    pub remote: Result<String, String>,
}

/// What happened when the L2 owner died.
#[derive(Clone, Debug)]
pub struct Failover {
    /// The node that was killed (1-based).
    pub victim: usize,
    /// The address probed.
    pub address: IpAddr,
    /// The probe's view.
    pub outage: Option<http::Outage>,
    /// Who the LAN client's neighbor entry points to afterwards.
    pub new_owner: Option<usize>,
    /// When the router stopped sending to the dead node (its hold timer).
    pub router_converged: Option<Duration>,
}

/// The running lab.
pub struct Lab {
    lan: Lan,
    dir: PathBuf,
    keep: bool,
    router: String,
    remote: String,
    speakers: Vec<usize>,
    services: Vec<LabService>,
    addresses: Vec<(LabService, Vec<IpAddr>)>,
    dead: Vec<usize>,
}

impl Lab {
    /// Creates the namespaces, links, addresses and routes; `say` gets progress.
    pub fn build(say: &mut dyn FnMut(&str)) -> anyhow::Result<Lab> {
        say("creating namespaces: 3 nodes, LAN client, router, remote client, 3 pods");
        let mut lan = Lan::named("lab", NODES).context("creating the LAN (are you root?)")?;
        let dir = std::env::temp_dir().join(lan.tag());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let router = lan.attach("r", ROUTER_V4, ROUTER_V6)?;
        let remote = lan.add_ns("rc")?;
        lan.veth(&router, "eth1", &remote, "eth0")?;
        lan.configure(&router, "eth1", "10.78.0.1", 24, "fd78::1", 64)?;
        lan.configure(&remote, "eth0", REMOTE_V4, 24, REMOTE_V6, 64)?;
        forwarding(&lan, &router)?;
        // Hash flows on ports too, so one client's connections spread over the paths.
        lan.sysctl(&router, "net.ipv4.fib_multipath_hash_policy", "1")?;
        lan.sysctl(&router, "net.ipv6.fib_multipath_hash_policy", "1")?;
        default_routes(&lan, &remote, "10.78.0.1", "fd78::1")?;
        let client = lan.client.clone();
        default_routes(&lan, &client, ROUTER_V4, ROUTER_V6)?;
        for i in 1..=NODES {
            let node = lan.nodes[i - 1].clone();
            forwarding(&lan, &node)?;
            default_routes(&lan, &node, ROUTER_V4, ROUTER_V6)?;
            let pod = lan.add_ns(&format!("p{i}"))?;
            lan.veth(&node, "pod0", &pod, "eth0")?;
            lan.configure(
                &node,
                "pod0",
                &format!("10.244.{i}.1"),
                24,
                &format!("fd44:0:0:{i}::1"),
                64,
            )?;
            lan.configure(&pod, "eth0", &config::pod_v4(i), 24, &config::pod_v6(i), 64)?;
            default_routes(
                &lan,
                &pod,
                &format!("10.244.{i}.1"),
                &format!("fd44:0:0:{i}::1"),
            )?;
            // Pods on other nodes are reached through those nodes (a flat pod network).
            for j in (1..=NODES).filter(|&j| j != i) {
                lan.ip(
                    &node,
                    &[
                        "route",
                        "add",
                        &format!("10.244.{j}.0/24"),
                        "via",
                        &Lan::v4(j),
                    ],
                )?;
                lan.ip(
                    &node,
                    &[
                        "-6",
                        "route",
                        "add",
                        &format!("fd44:0:0:{j}::/64"),
                        "via",
                        &Lan::v6(j),
                    ],
                )?;
            }
        }
        Ok(Lab {
            lan,
            dir,
            keep: false,
            router,
            remote,
            speakers: Vec::new(),
            services: config::services(NODES),
            addresses: Vec::new(),
            dead: Vec::new(),
        })
    }

    /// The FerroLB directory (configuration, status, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts backends, BIRD, the controller and the speakers, then waits until
    /// every Service has its addresses and kube-proxy rules, and the router has
    /// the BGP routes.
    pub fn start(&mut self, say: &mut dyn FnMut(&str)) -> anyhow::Result<()> {
        self.write_config()?;
        say("starting HTTP backends in the pods");
        let me = std::env::current_exe()?;
        for i in 1..=NODES {
            let pod = format!("{}-p{i}", self.lan.tag());
            let name = format!("p{i} on n{i}");
            let port = BACKEND_PORT.to_string();
            let log = self.dir.join(format!("backend-p{i}.log"));
            self.lan.spawn(
                &pod,
                &me,
                &["backend", "--name", &name, "--port", &port],
                &log,
            )?;
        }
        say("starting BIRD on the router");
        let nodes: Vec<(String, String)> = (1..=NODES).map(|i| (Lan::v4(i), Lan::v6(i))).collect();
        let router = self.router.clone();
        let dir = self.dir.clone();
        self.lan
            .spawn_bird(&router, &dir, &router::bird_conf(&nodes))?;
        say("starting ferrolb-controller and 3 ferrolb-speakers (file source)");
        let d = path_str(&self.dir)?.to_string();
        self.lan.spawn(
            &router,
            &binary("ferrolb-controller")?,
            &[
                "--source",
                "file",
                "--dir",
                &d,
                "--metrics-address",
                "0.0.0.0:7472",
            ],
            &self.dir.join("controller.log"),
        )?;
        for i in 1..=NODES {
            let ns = self.lan.nodes[i - 1].clone();
            let h = self.lan.spawn_speaker(
                &ns,
                &format!("n{i}"),
                &self.dir.clone(),
                &format!("speaker-n{i}.log"),
                &["--metrics-address", "0.0.0.0:7473"],
            )?;
            self.speakers.push(h);
        }
        say("waiting for the controller to assign addresses");
        self.addresses = eventually(
            Duration::from_secs(20),
            "addresses for every Service",
            || {
                self.read_addresses().ok().filter(|a| {
                    a.iter()
                        .all(|(s, ips)| ips.len() == if s.dual_stack { 2 } else { 1 })
                })
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}; see {}", self.dir.join("controller.log").display()))?;
        say("programming kube-proxy's rules (nftables DNAT) on every node");
        self.program_nodes()?;
        say("waiting for the router to learn the BGP routes");
        self.wait_for_routes(Duration::from_secs(30))?;
        Ok(())
    }

    fn write_config(&self) -> anyhow::Result<()> {
        std::fs::write(self.dir.join("ferrolb.yaml"), config::ferrolb_objects())?;
        std::fs::write(
            self.dir.join("nodes.yaml"),
            // Nodes stay Ready: the speakers find a dead node by themselves
            // (membership), as they must before the node controller notices (40 s).
            config::nodes(NODES, Lan::v4, &[]),
        )?;
        std::fs::write(
            self.dir.join("services.yaml"),
            config::service_objects(&self.live_services()),
        )?;
        Ok(())
    }

    /// The Services with the dead nodes' endpoints gone.
    fn live_services(&self) -> Vec<LabService> {
        self.services
            .iter()
            .map(|s| LabService {
                backends: s
                    .backends
                    .iter()
                    .copied()
                    .filter(|b| !self.dead.contains(b))
                    .collect(),
                ..s.clone()
            })
            .collect()
    }

    fn read_addresses(&self) -> anyhow::Result<Vec<(LabService, Vec<IpAddr>)>> {
        let status = FileSource::new(&self.dir).read_services()?;
        Ok(self
            .services
            .iter()
            .map(|s| {
                let ips = status
                    .services
                    .iter()
                    .find(|r| r.name == s.name)
                    .and_then(|r| r.load_balancer.ingress.as_ref())
                    .map(|ing| {
                        ing.iter()
                            .filter_map(|i| i.ip.as_deref()?.parse().ok())
                            .collect()
                    })
                    .unwrap_or_default();
                (s.clone(), ips)
            })
            .collect())
    }

    fn program_nodes(&self) -> anyhow::Result<()> {
        let live = self.live_services();
        let with_addrs: Vec<(LabService, Vec<IpAddr>)> = live
            .into_iter()
            .zip(&self.addresses)
            .map(|(s, (_, ips))| (s, ips.clone()))
            .collect();
        for i in (1..=NODES).filter(|i| !self.dead.contains(i)) {
            let rules = self.dir.join(format!("kube-proxy-n{i}.nft"));
            // Replace the table whole: delete (if there) and create in one transaction.
            let text = format!(
                "table inet {t}\ndelete table inet {t}\n{}",
                kubeproxy::ruleset(i, &with_addrs),
                t = kubeproxy::TABLE
            );
            std::fs::write(&rules, text)?;
            let out = self
                .lan
                .exec(&self.lan.nodes[i - 1], &["nft", "-f", path_str(&rules)?])?;
            if !out.status.success() {
                bail!(
                    "nft -f {} on n{i}: {}",
                    rules.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(())
    }

    /// Nodes the router should send `s`'s addresses to.
    fn expected_next_hops(&self, s: &LabService) -> BTreeSet<usize> {
        (1..=NODES)
            .filter(|n| !self.dead.contains(n))
            .filter(|n| !s.local || s.backends.contains(n))
            .collect()
    }

    fn wait_for_routes(&self, limit: Duration) -> anyhow::Result<()> {
        for (s, ips) in self.addresses.iter().filter(|(s, _)| s.pool == "routed") {
            let want = self.expected_next_hops(s);
            for ip in ips {
                eventually(
                    limit,
                    &format!("the router's route to {ip} via {want:?}"),
                    || Some(()).filter(|_| self.router_next_hops(*ip) == want),
                )
                .map_err(|e| anyhow::anyhow!("{e}; see {}", self.dir.display()))?;
            }
        }
        Ok(())
    }

    /// The nodes the router's kernel table sends `ip` to.
    pub fn router_next_hops(&self, ip: IpAddr) -> BTreeSet<usize> {
        let (fam, len) = if ip.is_ipv4() {
            ("-4", 32)
        } else {
            ("-6", 128)
        };
        let prefix = format!("{ip}/{len}");
        let out = self.lan.exec(
            &self.router,
            &["ip", "-j", fam, "route", "show", "exact", &prefix],
        );
        let Ok(out) = out else { return BTreeSet::new() };
        let routes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let mut gateways = Vec::new();
        for r in routes.as_array().into_iter().flatten() {
            gateways.extend(r.get("gateway").and_then(|g| g.as_str()).map(String::from));
            for nh in r
                .get("nexthops")
                .and_then(|n| n.as_array())
                .into_iter()
                .flatten()
            {
                gateways.extend(nh.get("gateway").and_then(|g| g.as_str()).map(String::from));
            }
        }
        gateways
            .iter()
            .filter_map(|g| (1..=NODES).find(|&i| *g == Lan::v4(i) || *g == Lan::v6(i)))
            .collect()
    }

    /// The node whose MAC the LAN client has for `ip`.
    pub fn l2_owner(&self, ip: IpAddr) -> Option<usize> {
        let out = self
            .lan
            .exec(
                &self.lan.client,
                &["ip", "-j", "neigh", "show", &ip.to_string()],
            )
            .ok()?;
        let entries: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let mac = entries
            .as_array()?
            .iter()
            .find_map(|e| e.get("lladdr")?.as_str())?
            .to_string();
        (1..=NODES).find(|&i| self.lan.mac(&self.lan.nodes[i - 1]).ok().as_deref() == Some(&mac))
    }

    /// Requests every Service address from both clients.
    pub fn rows(&self, patience: Duration) -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        for (s, ips) in &self.addresses {
            for &ip in ips {
                let addr = SocketAddr::new(ip, SERVICE_PORT);
                let lan = request(&self.lan.client, addr, patience)?.map(|b| describe(&b));
                let remote = request(&self.remote, addr, patience)?.map(|b| describe(&b));
                let (mode, announced_by) = if s.pool == "lan" {
                    let owner = self.l2_owner(ip).map_or("?".into(), |n| format!("n{n}"));
                    ("L2".to_string(), format!("{owner} (ARP/NDP)"))
                } else {
                    let hops: Vec<String> = self
                        .router_next_hops(ip)
                        .iter()
                        .map(|n| format!("n{n}"))
                        .collect();
                    let mode = if s.local { "BGP, ETP=Local" } else { "BGP" };
                    (
                        mode.to_string(),
                        format!("{} (router ECMP)", hops.join("+")),
                    )
                };
                rows.push(Row {
                    service: format!("default/{}", s.name),
                    address: ip,
                    mode,
                    announced_by,
                    lan,
                    remote,
                });
            }
        }
        Ok(rows)
    }

    /// Sends `count` requests (new connections, so new source ports) from the
    /// remote client to the first BGP address of a Cluster Service and counts the
    /// node each entered through: the router hashes flows over its ECMP next hops.
    pub fn ecmp_spread(&self, count: usize) -> anyhow::Result<(IpAddr, BTreeMap<usize, usize>)> {
        let ip = self
            .addresses
            .iter()
            .find(|(s, _)| s.pool == "routed" && !s.local)
            .and_then(|(_, ips)| ips.iter().copied().find(IpAddr::is_ipv4))
            .context("no routed IPv4 address")?;
        let addr = SocketAddr::new(ip, SERVICE_PORT);
        let peers = netns::run_in(&self.remote, move || {
            (0..count)
                .filter_map(|_| http::get(addr, Duration::from_secs(1)).ok())
                .map(|b| http::split_reply(&b).1.to_string())
                .collect::<Vec<String>>()
        })?;
        let mut spread = BTreeMap::new();
        for p in peers {
            if let Some(n) = ingress_of(&p) {
                *spread.entry(n).or_insert(0) += 1;
            }
        }
        Ok((ip, spread))
    }

    /// Kills the node that owns the L2 Service's IPv4 address while the LAN client
    /// probes it every 5 ms, and reports the outage.
    pub fn fail_l2_owner(&mut self, say: &mut dyn FnMut(&str)) -> anyhow::Result<Failover> {
        let ip = self
            .addresses
            .iter()
            .find(|(s, _)| s.pool == "lan")
            .and_then(|(_, ips)| ips.iter().copied().find(IpAddr::is_ipv4))
            .context("the L2 Service has no IPv4 address")?;
        let addr = SocketAddr::new(ip, SERVICE_PORT);
        let victim = eventually(
            Duration::from_secs(5),
            "the LAN client to learn the owner",
            || {
                let _ = request(&self.lan.client, addr, Duration::from_millis(500));
                self.l2_owner(ip)
            },
        )?;
        say(&format!(
            "probing {addr} from the LAN client every 5 ms (200/s)"
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let probe = {
            let stop = stop.clone();
            netns::spawn_in(&self.lan.client, move || {
                http::probe(
                    addr,
                    Duration::from_millis(5),
                    Duration::from_millis(300),
                    stop,
                )
            })?
        };
        std::thread::sleep(Duration::from_secs(1));
        say(&format!(
            "killing n{victim}: its link goes down and its speaker gets SIGKILL"
        ));
        self.lan.ip(
            &self.lan.nodes[victim - 1],
            &["link", "set", "eth0", "down"],
        )?;
        // The node is unreachable from here on; requests started before may still
        // have made it.
        let killed_at = Instant::now();
        let handle = *self.speakers.get(victim - 1).context("no such speaker")?;
        self.lan.stop(handle, "KILL")?;
        // The endpoints' part (readiness, kube-proxy): the dead node's backends
        // go from the other nodes' rules. Its Node object stays Ready.
        self.dead.push(victim);
        self.write_config()?;
        self.program_nodes()?;
        std::thread::sleep(Duration::from_secs(4));
        stop.store(true, Ordering::Relaxed);
        let attempts = probe
            .join()
            .map_err(|_| anyhow::anyhow!("the probe panicked"))??;
        let outage = http::outage(&attempts, killed_at);
        let new_owner = self.l2_owner(ip);
        say("waiting for the router to drop the dead node's routes (BGP hold timer)");
        let router_converged = self
            .wait_for_routes(Duration::from_secs(15))
            .ok()
            .map(|()| killed_at.elapsed());
        Ok(Failover {
            victim,
            address: ip,
            outage,
            new_owner,
            router_converged,
        })
    }

    /// Leaves everything running and returns how to use and remove it.
    pub fn keep(&mut self) -> String {
        self.keep = true;
        self.lan.keep();
        let t = self.lan.tag().to_string();
        let d = self.dir.display();
        let first = self
            .addresses
            .iter()
            .flat_map(|(_, ips)| ips)
            .next()
            .map_or("10.77.0.200".into(), |i| i.to_string());
        format!(
            "The lab is still running (namespaces {t}-*; files in {d}).
Try:
  ip netns exec {t}-c curl -s http://{first}/          # from the LAN client
  ip netns exec {t}-rc curl -s http://198.51.100.0/     # from the remote client (BGP)
  ip netns exec {t}-c arping -c 2 -I eth0 {first}
  birdc -s {d}/bird.ctl show route all                 # the router's view
  ip netns exec {t}-n1 nft list table inet {table}
  ip netns exec {t}-n1 curl -s localhost:7473/metrics | grep ferrolb_
  cat {d}/status/services.yaml {d}/status/speaker-n1.yaml
  $EDITOR {d}/services.yaml                            # add a Service; FerroLB picks it up
Remove it: ./e2e/lab --down
",
            table = kubeproxy::TABLE
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.keep {
            // Stop the writers first, or a speaker's status file outlives the removal.
            self.lan.kill_all();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The node a request entered through, from the address the backend saw (the
/// node's pod-side or LAN address, as kube-proxy masquerades).
pub fn ingress_of(peer: &str) -> Option<usize> {
    (1..=NODES).find(|&i| {
        [
            format!("10.244.{i}.1"),
            format!("fd44:0:0:{i}::1"),
            Lan::v4(i),
            Lan::v6(i),
        ]
        .iter()
        .any(|a| a == peer)
    })
}

/// `p3 on n3 via n1`: the backend and the node the request entered through.
fn describe(body: &str) -> String {
    let (backend, peer) = http::split_reply(body);
    match ingress_of(peer) {
        Some(n) => format!("{backend} via n{n}"),
        None => backend.to_string(),
    }
}

/// A GET from namespace `ns`, retried until `patience` runs out.
fn request(
    ns: &str,
    addr: SocketAddr,
    patience: Duration,
) -> anyhow::Result<Result<String, String>> {
    netns::run_in(ns, move || {
        let start = Instant::now();
        loop {
            match http::get(addr, Duration::from_millis(500)) {
                Ok(body) => return Ok(body),
                Err(e) if start.elapsed() >= patience => return Err(format!("{e:#}")),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    })
}

fn forwarding(lan: &Lan, ns: &str) -> anyhow::Result<()> {
    lan.sysctl(ns, "net.ipv4.ip_forward", "1")?;
    lan.sysctl(ns, "net.ipv6.conf.all.forwarding", "1")
}

fn default_routes(lan: &Lan, ns: &str, v4: &str, v6: &str) -> anyhow::Result<()> {
    lan.ip(ns, &["route", "add", "default", "via", v4])?;
    lan.ip(ns, &["-6", "route", "add", "default", "via", v6])?;
    Ok(())
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))
}

/// Removes what earlier `--keep` runs left: namespaces and directories named
/// `flb<pid>lab<n>-*`, and the processes inside them. Returns what it removed.
pub fn down() -> anyhow::Result<Vec<String>> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()?;
    let mut removed = Vec::new();
    let mut tags = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(ns) = line.split_whitespace().next() else {
            continue;
        };
        let Some((tag, _)) = ns.split_once('-') else {
            continue;
        };
        if !is_lab_tag(tag) {
            continue;
        }
        tags.insert(tag.to_string());
        let pids = std::process::Command::new("ip")
            .args(["netns", "pids", ns])
            .output()?;
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid])
                .status();
        }
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", ns])
            .status();
        removed.push(ns.to_string());
    }
    // Directories too, including those of runs whose namespaces are gone.
    for entry in std::fs::read_dir(std::env::temp_dir())?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if (is_lab_tag(&name) || tags.contains(&name))
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed.push(entry.path().display().to_string());
        }
    }
    Ok(removed)
}

/// `flb<digits>lab<digits>`.
fn is_lab_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("flb") else {
        return false;
    };
    let Some((pid, n)) = rest.split_once("lab") else {
        return false;
    };
    !pid.is_empty()
        && !n.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && n.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_removes_only_lab_names() {
        assert!(is_lab_tag("flb123lab0"));
        assert!(!is_lab_tag("flb123x0"));
        assert!(!is_lab_tag("flblab0"));
        assert!(!is_lab_tag("flb12lab"));
        assert!(!is_lab_tag("other123lab0"));
    }
}
