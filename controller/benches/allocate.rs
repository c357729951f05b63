//! Allocation at scale: 100k Services from an IPv4 /8 and from an IPv6 /64, and a
//! cold start re-adopting 10k Services. Prints a table of time and peak heap, then
//! runs the same cases under criterion.
//!
//! `cargo bench -p ferrolb-controller --bench allocate`

#![allow(clippy::expect_used)] // fixed inputs written here, not outside data

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group};
use ferrolb_controller::allocator::{Allocator, Port, Protocol, ServiceKey, ServiceRequest};
use ferrolb_crds::config::{Family, IpRange, Pool};

/// Counts live and peak heap bytes, so that the figures show memory growing with
/// addresses in use, not pool size.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn pools(cidr: &str) -> BTreeMap<String, Pool> {
    let p = Pool {
        name: "p".into(),
        ranges: vec![IpRange::parse(cidr).expect("valid CIDR")],
        auto_assign: true,
        avoid_buggy_ips: false,
        allocation: None,
        labels: BTreeMap::new(),
    };
    BTreeMap::from([("p".to_string(), p)])
}

fn requests(n: usize, fam: Family) -> Vec<ServiceRequest> {
    (0..n)
        .map(|i| ServiceRequest {
            key: ServiceKey::new(format!("ns{}", i % 100), format!("svc-{i}")),
            families: vec![fam],
            ports: vec![Port {
                protocol: Protocol::Tcp,
                port: 443,
            }],
            ..Default::default()
        })
        .collect()
}

fn allocate_all(cidr: &str, reqs: &[ServiceRequest]) -> Allocator {
    let mut al = Allocator::new(pools(cidr));
    for r in reqs {
        if al.allocate(r, &[]).is_err() {
            eprintln!("allocation failed for {}", r.key);
        }
    }
    al
}

fn readopt(cidr: &str, reqs: &[ServiceRequest], status: &[Vec<IpAddr>]) -> Allocator {
    let mut al = Allocator::new(pools(cidr));
    for (r, ips) in reqs.iter().zip(status) {
        al.adopt(r, ips);
    }
    for r in reqs {
        let _ = al.allocate(r, &[]);
    }
    al
}

/// Runs `f` once, returning its time and the heap it needed at peak beyond what
/// was live before (inputs excluded).
fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t = Instant::now();
    let out = f();
    let el = t.elapsed();
    (out, el, PEAK.load(Ordering::Relaxed) - base)
}

fn table() {
    let v4 = requests(100_000, Family::V4);
    let v6 = requests(100_000, Family::V6);
    let small = requests(10_000, Family::V4);
    let status: Vec<Vec<IpAddr>> = {
        let al = allocate_all("10.0.0.0/8", &small);
        small
            .iter()
            .map(|r| {
                al.assignment(&r.key)
                    .map(|a| a.ips.clone())
                    .unwrap_or_default()
            })
            .collect()
    };
    println!("\n| case | time | peak heap | used-address runs |");
    println!("|---|---|---|---|");
    for (name, cidr, reqs) in [
        ("allocate 100k from IPv4 /8", "10.0.0.0/8", &v4),
        ("allocate 100k from IPv6 /64", "2001:db8::/64", &v6),
    ] {
        let mut best = (Duration::MAX, 0, 0);
        for _ in 0..5 {
            let (al, t, peak) = measure(|| allocate_all(cidr, reqs));
            if t < best.0 {
                best = (t, peak, al.used_runs());
            }
        }
        println!(
            "| {name} (best of 5) | {:.1} ms | {:.1} MiB | {} |",
            best.0.as_secs_f64() * 1e3,
            best.1 as f64 / 1048576.0,
            best.2
        );
    }
    let mut best = (Duration::MAX, 0);
    for _ in 0..5 {
        let (_, t, peak) = measure(|| readopt("10.0.0.0/8", &small, &status));
        if t < best.0 {
            best = (t, peak);
        }
    }
    println!(
        "| cold start: re-adopt 10k from status (best of 5) | {:.1} ms | {:.1} MiB | |\n",
        best.0.as_secs_f64() * 1e3,
        best.1 as f64 / 1048576.0
    );
}

fn benches(c: &mut Criterion) {
    let v4 = requests(100_000, Family::V4);
    let v6 = requests(100_000, Family::V6);
    let small = requests(10_000, Family::V4);
    let al = allocate_all("10.0.0.0/8", &small);
    let status: Vec<Vec<IpAddr>> = small
        .iter()
        .map(|r| {
            al.assignment(&r.key)
                .map(|a| a.ips.clone())
                .unwrap_or_default()
        })
        .collect();
    let mut g = c.benchmark_group("allocator");
    g.sample_size(10);
    g.bench_function("allocate_100k_v4_slash8", |b| {
        b.iter_batched(
            || (),
            |_| allocate_all("10.0.0.0/8", &v4),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("allocate_100k_v6_slash64", |b| {
        b.iter_batched(
            || (),
            |_| allocate_all("2001:db8::/64", &v6),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("readopt_10k", |b| {
        b.iter_batched(
            || (),
            |_| readopt("10.0.0.0/8", &small, &status),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(group, benches);

fn main() {
    table();
    group();
    Criterion::default().configure_from_args().final_summary();
}
