//! Restart safety. The controller is restarted 100 times (file source, `--once`,
//! and now and then a watching controller killed with SIGKILL at a random moment)
//! while Services come and go; after every restart no address is held by two
//! Services that may not share it and no surviving Service has changed address.
//! The speaker is restarted 10 times while a client asks for its address; the
//! address is answered again after each restart (longest gap printed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrolb_crds::source::FileSource;
use ferrolb_e2e::lab::{Lan, binary, controller_once, eventually, unavailable};

/// xorshift64*: a seeded, dependency-free generator (reproducible runs).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Debug)]
struct Svc {
    share: Option<&'static str>,
    port: u16,
    requested: Option<String>,
    local: bool,
}

fn write_services(dir: &Path, services: &BTreeMap<String, Svc>) {
    let mut y = String::from(
        "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: small}\nspec: {addresses: ['10.90.0.1-10.90.0.12']}\n",
    );
    for (name, s) in services {
        let mut ann = Vec::new();
        if let Some(k) = s.share {
            ann.push(format!("ferrolb.io/allow-shared-ip: {k}"));
        }
        if let Some(ip) = &s.requested {
            ann.push(format!("ferrolb.io/loadBalancerIPs: '{ip}'"));
        }
        let etp = if s.local { "Local" } else { "Cluster" };
        y.push_str(&format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, annotations: {{{}}}}}\nspec: {{type: LoadBalancer, externalTrafficPolicy: {etp}, selector: {{app: {name}}}, ports: [{{port: {}, protocol: TCP}}]}}\n",
            ann.join(", "),
            s.port
        ));
    }
    // Atomic, as an editor or a config-management tool would write it.
    let tmp = dir.join(".config.yaml.tmp");
    std::fs::write(&tmp, y).unwrap();
    std::fs::rename(&tmp, dir.join("config.yaml")).unwrap();
}

/// Service name -> address, from `status/services.yaml`.
fn addresses(dir: &Path) -> BTreeMap<String, String> {
    FileSource::new(dir)
        .read_services()
        .unwrap()
        .services
        .into_iter()
        .filter_map(|r| {
            let ip = r
                .load_balancer
                .ingress
                .unwrap_or_default()
                .into_iter()
                .find_map(|i| i.ip)?;
            Some((r.name, ip))
        })
        .collect()
}

/// May `a` and `b` hold the same address? (Sharing key equal, no port overlap,
/// and both Cluster: these Services select different pods, so Local never shares.)
fn may_share(a: &Svc, b: &Svc) -> bool {
    a.share.is_some() && a.share == b.share && a.port != b.port && !a.local && !b.local
}

#[test]
fn a_hundred_controller_restarts_never_double_assign_or_move_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::env::var("FERROLB_RESTART_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f10b_u64);
    let mut rng = Rng(seed);
    let mut services: BTreeMap<String, Svc> = BTreeMap::new();
    let mut before: BTreeMap<String, String> = BTreeMap::new();
    let mut next = 0;
    let (mut kills, mut changes, mut max_held) = (0, 0, 0);
    let controller = binary("ferrolb-controller").unwrap();
    for round in 0..100 {
        // Create or delete one to three Services.
        for _ in 0..=rng.below(3) {
            if services.len() > 6 && rng.below(2) == 0 {
                let victim = services
                    .keys()
                    .nth(rng.below(services.len() as u64) as usize)
                    .cloned()
                    .unwrap();
                services.remove(&victim);
            } else {
                let share = [None, Some("k1"), Some("k2")][rng.below(3) as usize];
                let requested =
                    (rng.below(5) == 0).then(|| format!("10.90.0.{}", 1 + rng.below(14)));
                services.insert(
                    format!("s{next}"),
                    Svc {
                        share,
                        port: [80, 443, 8080][rng.below(3) as usize],
                        requested,
                        local: rng.below(6) == 0,
                    },
                );
                next += 1;
            }
            changes += 1;
        }
        write_services(dir.path(), &services);
        if round % 10 == 9 {
            // A watching controller, killed at a random moment after a change.
            let mut c = Command::new(&controller)
                .args([
                    "--source",
                    "file",
                    "--log-level",
                    "error",
                    "--metrics-address",
                    "",
                    "--dir",
                ])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(50 + rng.below(250)));
            services.insert(
                format!("s{next}"),
                Svc {
                    share: None,
                    port: 80,
                    requested: None,
                    local: false,
                },
            );
            next += 1;
            write_services(dir.path(), &services);
            std::thread::sleep(Duration::from_millis(rng.below(100)));
            c.kill().unwrap();
            c.wait().unwrap();
            kills += 1;
        }
        controller_once(dir.path()).unwrap();
        let now = addresses(dir.path());
        // Deleted Services keep no address.
        for name in now.keys() {
            assert!(
                services.contains_key(name),
                "round {round}: deleted {name} still has an address"
            );
        }
        // No surviving Service changed address.
        for (name, ip) in &before {
            if let Some(now_ip) = now.get(name) {
                assert_eq!(now_ip, ip, "round {round} (seed {seed}): {name} moved");
            } else {
                assert!(
                    !services.contains_key(name),
                    "round {round}: {name} lost its address {ip}"
                );
            }
        }
        // No address held by two Services that may not share it.
        let mut by_ip: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, ip) in &now {
            by_ip.entry(ip.as_str()).or_default().push(name.as_str());
        }
        for (ip, holders) in &by_ip {
            for (i, a) in holders.iter().enumerate() {
                for b in &holders[i + 1..] {
                    assert!(
                        may_share(&services[*a], &services[*b]),
                        "round {round} (seed {seed}): {ip} held by {a} {:?} and {b} {:?}",
                        services[*a],
                        services[*b]
                    );
                }
            }
        }
        // A requested address is the one granted, or none.
        for (name, s) in &services {
            if let (Some(req), Some(ip)) = (&s.requested, now.get(name)) {
                assert_eq!(
                    req, ip,
                    "round {round}: {name} got another address than it asked for"
                );
            }
        }
        max_held = max_held.max(by_ip.len());
        before = now;
    }
    let held: BTreeSet<_> = before.values().collect();
    println!(
        "controller restarts: 100 (--once) + {kills} SIGKILLed watchers, {changes} Service changes, \
         {} Services at the end, {} addresses in use (max {max_held} of 12), seed {seed:#x}",
        services.len(),
        held.len()
    );
    assert!(
        max_held >= 10,
        "the pool was never close to full: the test exercised too little"
    );
}

#[test]
fn a_restarted_speaker_answers_for_its_address_again() {
    if let Some(why) = unavailable() {
        println!("SKIPPED: {why}");
        return;
    }
    const VIP: &str = "10.77.0.200";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "apiVersion: ferrolb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: lan}}\nspec: {{addresses: ['{VIP}/32']}}\n\
---\napiVersion: ferrolb.io/v1beta1\nkind: L2Advertisement\nmetadata: {{name: lan}}\n\
---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n\
---\napiVersion: v1\nkind: Node\nmetadata: {{name: n1}}\n"
        ),
    )
    .unwrap();
    controller_once(dir.path()).unwrap();
    let mut lan = Lan::new(1).unwrap();
    let node = lan.nodes[0].clone();
    let mac = lan.mac(&node).unwrap();
    let answered = |lan: &Lan| {
        let out = lan
            .exec(
                &lan.client,
                &["arping", "-c", "1", "-W", "0.1", "-i", "eth0", VIP],
            )
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .to_lowercase()
            .contains(&mac)
    };
    let mut h = lan
        .spawn_speaker(&node, "n1", dir.path(), "speaker-0.log", &[])
        .unwrap();
    eventually(Duration::from_secs(20), "the first answer", || {
        Some(()).filter(|_| answered(&lan))
    })
    .unwrap();
    let mut gaps = Vec::new();
    for i in 1..=10 {
        let signal = if i % 2 == 0 { "TERM" } else { "KILL" };
        let t = Instant::now();
        lan.stop(h, signal).unwrap();
        h = lan
            .spawn_speaker(&node, "n1", dir.path(), &format!("speaker-{i}.log"), &[])
            .unwrap();
        let back = eventually(
            Duration::from_secs(10),
            "the restarted speaker to answer",
            || Some(()).filter(|_| answered(&lan)),
        );
        assert!(
            back.is_ok(),
            "restart {i} (SIG{signal}):\n{}",
            std::fs::read_to_string(dir.path().join(format!("speaker-{i}.log")))
                .unwrap_or_default()
        );
        gaps.push((t.elapsed(), signal));
    }
    let worst = gaps.iter().max().unwrap();
    println!(
        "speaker restarts: 10; gap from stop to the first ARP answer of the new process: longest {:?} (SIG{}), \
         all {:?}",
        worst.0,
        worst.1,
        gaps.iter().map(|(d, _)| d.as_millis()).collect::<Vec<_>>()
    );
}
