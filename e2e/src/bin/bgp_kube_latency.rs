//! A new Service's route at the router with the speaker in kube mode, the way it
//! runs in a cluster: it lists and watches a stand-in API server (on the node
//! namespace's loopback), N Services are already announced over eBGP to a BIRD
//! receiver, then new Services arrive one by one as watch events that carry
//! their address in status (as the controller's write makes the API server send
//! them). Time from the event leaving the API server to BIRD's own timestamp of
//! the route (millisecond resolution, same clock); five Services.
//!
//! `cargo build --workspace --release && sudo target/release/bgp_kube_latency [N]`
//! (`FERROLB_LOG_LEVEL=debug FERROLB_BENCH_LOG=speaker.log` keeps the speaker's timings)

use std::time::Duration;

use anyhow::Context;
use ferrolb_e2e::bird::{ipv4_route_count, newest_route};
use ferrolb_e2e::fake_api::FakeApi;
use ferrolb_e2e::lab::{
    Lan, bench_command, binary, eventually, peak_rss_mib, rss_mib, rss_split_mib, unavailable,
};
use serde_json::{Value, json};

const NS: &str = "ferrolb-system";
const NEW: usize = 5;

fn ferrolb(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "ferrolb.io/v1beta1", "kind": kind, "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

/// Service `name` with `ip` in status, as the controller leaves it.
fn service(name: &str, ip: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": "2026-12-02T00:00:00Z",
            "annotations": {"ferrolb.io/ip-allocated-from-pool": "p"}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}})
}

/// The i-th address of 10.200.0.0/16.
fn ip(i: usize) -> String {
    format!("10.200.{}.{}", i / 256, i % 256)
}

/// The speaker's pid: the child of `ip netns exec`, found by its name.
fn speaker_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        let cmdline = std::fs::read_to_string(e.path().join("cmdline")).ok()?;
        (comm.trim() == "ferrolb-speaker" && cmdline.contains("kube")).then_some(pid)
    })
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
    anyhow::ensure!(n + NEW <= 1 << 16, "at most {} Services", (1 << 16) - NEW);
    let dir = tempfile::tempdir()?;
    let mut lan = Lan::named("kl", 1)?;
    let node = lan.nodes[0].clone();
    let client = lan.client.clone();
    let mut objects = vec![
        ferrolb(
            "IPAddressPool",
            "p",
            json!({"addresses": ["10.200.0.0/16"]}),
        ),
        ferrolb("BGPAdvertisement", "p", json!({})),
        ferrolb(
            "BGPPeer",
            "bird",
            json!({"myASN": 64512, "peerASN": 64500, "peerAddress": Lan::v4(0), "connectTime": "1s"}),
        ),
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "status": {"addresses": [{"type": "InternalIP", "address": Lan::v4(1)}],
                "conditions": [{"type": "Ready", "status": "True"}]}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
    ];
    objects.extend((0..n).map(|i| service(&format!("s{i}"), &ip(i))));
    let api = FakeApi::start_in(&node, objects)?;
    let (sock, _) = lan.spawn_bird(
        &client,
        dir.path(),
        &format!(
            "router id {r};\ntimeformat route iso long ms;\ntimeformat protocol iso long ms;\nprotocol device {{}}\nprotocol bgp n1 {{\n  local {r} as 64500;\n  neighbor {nd} as 64512;\n  passive on;\n  graceful restart off;\n  ipv4 {{ import all; export none; }};\n}}\n",
            r = Lan::v4(0),
            nd = Lan::v4(1)
        ),
    )?;
    let kubeconfig = api.kubeconfig(dir.path())?;
    let speaker = binary("ferrolb-speaker")?;
    let env_kubeconfig = format!("KUBECONFIG={}", kubeconfig.display());
    let (program, args) = bench_command(
        &speaker,
        &[
            "--source",
            "kube",
            "--node",
            "n1",
            "--namespace",
            NS,
            "--metrics-address",
            "",
            "--memberlist-port",
            "0",
        ],
    )?;
    let mut env_args = vec![
        "-u",
        "KUBERNETES_SERVICE_HOST",
        &env_kubeconfig,
        "POD_NAME=ferrolb-speaker-bench",
        "POD_UID=5a3c1f00-0000-4000-8000-00000000beef",
        program.to_str().context("path is not UTF-8")?,
    ];
    env_args.extend(args.iter().map(String::as_str));
    lan.spawn(
        &node,
        std::path::Path::new("env"),
        &env_args,
        &dir.path().join("speaker.log"),
    )?;
    let routes = |lan: &Lan| {
        lan.birdc(&client, &sock, &["show", "route", "count"])
            .ok()
            .and_then(|o| ipv4_route_count(&o))
    };
    let log = || std::fs::read_to_string(dir.path().join("speaker.log")).unwrap_or_default();
    eventually(Duration::from_secs(120), "all routes at BIRD", || {
        (routes(&lan) == Some(n)).then_some(())
    })
    .with_context(|| format!("speaker log:\n{}", log()))?;
    // The speaker writes a ServiceBGPStatus per Service after announcing: let that
    // finish so that it does not share the CPU with the measurement.
    let mut last = api.request_count();
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = api.request_count();
        if now == last {
            break;
        }
        last = now;
    }
    let mut latency = Vec::new();
    for k in 0..NEW {
        let svc = service(&format!("new{k}"), &ip(n + k));
        let (watches, sent) = api.push_at(svc)?;
        anyhow::ensure!(watches > 0, "no watch on Services");
        // BIRD's timestamp is the measurement; polling it at once would start a
        // birdc (fork, exec, setns) on the 2 cores the speaker needs right then.
        std::thread::sleep(Duration::from_millis(100));
        eventually(Duration::from_secs(30), "the new route at BIRD", || {
            (routes(&lan) == Some(n + k + 1)).then_some(())
        })
        .with_context(|| format!("speaker log:\n{}", log()))?;
        let out = lan.birdc(&client, &sock, &["show", "route"])?;
        let newest = newest_route(&out).context("no route timestamps")?;
        latency.push((newest.as_millisecond() - sent.as_millisecond()) as f64);
        eprintln!("new{k}: event sent {sent}, route at BIRD {newest}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let rss = speaker_pid().map(rss_mib).unwrap_or(0.0);
    let peak = speaker_pid().map(peak_rss_mib).unwrap_or(0.0);
    let (anon, file) = speaker_pid().map(rss_split_mib).unwrap_or_default();
    // `FERROLB_BENCH_LOG=<file>` keeps the speaker's log (with FERROLB_LOG_LEVEL=debug
    // for its per-step timings).
    if let Some(keep) = std::env::var_os("FERROLB_BENCH_LOG") {
        std::fs::write(keep, log())?;
    }
    println!(
        "\nkube mode, {n} Services announced: a new Service's watch event -> its route at BIRD, ms: {latency:?}; speaker RSS {rss:.1} MiB (anon {anon:.1}, file {file:.1}; peak {peak:.1} MiB)"
    );
    Ok(())
}
