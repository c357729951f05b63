use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ferrolb_crds::config::{IpRange, Pool, Selector, ServiceAllocation};
use proptest::prelude::*;

use super::*;

fn pool(name: &str, ranges: &[&str]) -> Pool {
    Pool {
        name: name.into(),
        ranges: ranges.iter().map(|r| IpRange::parse(r).unwrap()).collect(),
        auto_assign: true,
        avoid_buggy_ips: false,
        allocation: None,
        labels: BTreeMap::new(),
    }
}

fn pools(list: Vec<Pool>) -> BTreeMap<String, Pool> {
    list.into_iter().map(|p| (p.name.clone(), p)).collect()
}

fn svc(name: &str) -> ServiceRequest {
    ServiceRequest {
        key: ServiceKey::new("default", name),
        ports: vec![Port {
            protocol: Protocol::Tcp,
            port: 80,
        }],
        ..Default::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ips(a: &Assignment) -> Vec<String> {
    a.ips.iter().map(ToString::to_string).collect()
}

#[test]
fn lowest_free_address_first_and_release_makes_it_free_again() {
    let mut al = Allocator::new(pools(vec![pool("p", &["10.0.0.0/30"])]));
    let got: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| ips(&al.allocate(&svc(n), &[]).unwrap())[0].clone())
        .collect();
    assert_eq!(got, ["10.0.0.0", "10.0.0.1", "10.0.0.2"]);
    al.release(&ServiceKey::new("default", "b"));
    assert_eq!(ips(&al.allocate(&svc("d"), &[]).unwrap()), ["10.0.0.1"]);
    assert_eq!(ips(&al.allocate(&svc("e"), &[]).unwrap()), ["10.0.0.3"]);
    let err = al.allocate(&svc("f"), &[]).unwrap_err();
    assert_eq!(err.error.reason(), "PoolExhausted");
    assert_eq!(
        err.error.to_string(),
        "no free IPv4 address in IPAddressPool p: add addresses or free some"
    );
}

#[test]
fn avoid_buggy_ips_skips_dot_zero_and_dot_255_and_counts_exactly() {
    let mut p = pool("p", &["10.0.0.254-10.0.1.1"]);
    p.avoid_buggy_ips = true;
    let mut al = Allocator::new(pools(vec![p]));
    assert_eq!(al.pool_stats("p").unwrap().available, [2, 0]);
    let got: Vec<_> = ["a", "b"]
        .iter()
        .map(|n| ips(&al.allocate(&svc(n), &[]).unwrap())[0].clone())
        .collect();
    assert_eq!(got, ["10.0.0.254", "10.0.1.1"]);
    assert!(al.allocate(&svc("c"), &[]).is_err());
    let mut r = svc("d");
    r.requested = vec![ip("10.0.1.0")];
    assert_eq!(
        al.allocate(&r, &[]).unwrap_err().error.reason(),
        "InvalidRequestedIP"
    );
}

#[test]
fn counters_are_exact_for_huge_ipv6_pools() {
    let mut al = Allocator::new(pools(vec![
        pool("v6", &["2001:db8::/64"]),
        pool("big", &["4000::/2"]),
    ]));
    let mut r = svc("a");
    r.families = vec![Family::V6];
    r.pool = Some("v6".into());
    al.allocate(&r, &[]).unwrap();
    let s = al.pool_stats("v6").unwrap();
    assert_eq!(s.assigned, [0, 1]);
    assert_eq!(s.available, [0, (1u128 << 64) - 1]);
    assert_eq!(al.pool_stats("big").unwrap().available[1], 1u128 << 126);
}

#[test]
fn requested_addresses_must_be_in_an_allowed_pool_and_free() {
    let mut al = Allocator::new(pools(vec![pool("p", &["10.0.0.0/24"])]));
    let mut a = svc("a");
    a.requested = vec![ip("10.0.0.7")];
    assert_eq!(ips(&al.allocate(&a, &[]).unwrap()), ["10.0.0.7"]);
    let mut b = svc("b");
    b.requested = vec![ip("10.0.0.7")];
    let e = al.allocate(&b, &[]).unwrap_err().error;
    assert_eq!(
        e.to_string(),
        "requested address 10.0.0.7 is in use by default/a, and they cannot share it: both need the same allow-shared-ip annotation"
    );
    b.requested = vec![ip("192.168.0.1")];
    assert_eq!(
        al.allocate(&b, &[]).unwrap_err().error,
        AllocError::RequestedOutsidePools(ip("192.168.0.1"))
    );
}

#[test]
fn sharing_needs_same_key_disjoint_ports_and_compatible_traffic_policy() {
    let mut al = Allocator::new(pools(vec![pool("p", &["10.0.0.0/24"])]));
    let mut dns_tcp = svc("dns-tcp");
    dns_tcp.sharing_key = Some("dns".into());
    dns_tcp.ports = vec![Port {
        protocol: Protocol::Tcp,
        port: 53,
    }];
    let mut dns_udp = dns_tcp.clone();
    dns_udp.key = ServiceKey::new("other-ns", "dns-udp");
    dns_udp.ports = vec![Port {
        protocol: Protocol::Udp,
        port: 53,
    }];
    let a = al.allocate(&dns_tcp, &[]).unwrap();
    let b = al.allocate(&dns_udp, &[]).unwrap();
    assert_eq!(a.ips, b.ips, "same key, disjoint ports: shared");
    assert_eq!(al.pool_stats("p").unwrap().assigned, [1, 0]);
    // Same port: a new address.
    let mut clash = dns_tcp.clone();
    clash.key = ServiceKey::new("default", "clash");
    assert_ne!(al.allocate(&clash, &[]).unwrap().ips, a.ips);
    // Local vs Cluster cannot share.
    let mut local = dns_tcp.clone();
    local.key = ServiceKey::new("default", "local");
    local.ports = vec![Port {
        protocol: Protocol::Tcp,
        port: 853,
    }];
    local.traffic_policy = TrafficPolicy::Local(BTreeMap::from([("app".into(), "dns".into())]));
    local.requested = a.ips.clone();
    let e = al.allocate(&local, &[]).unwrap_err().error;
    assert!(
        e.to_string()
            .contains("one has externalTrafficPolicy Local and the other Cluster"),
        "{e}"
    );
    // Releasing one holder keeps the address for the other.
    al.release(&dns_tcp.key);
    assert_eq!(al.pool_stats("p").unwrap().assigned, [2, 0]);
    al.release(&dns_udp.key);
    assert_eq!(al.pool_stats("p").unwrap().assigned, [1, 0]);
}

#[test]
fn local_services_share_only_with_identical_selectors() {
    let mut al = Allocator::new(pools(vec![pool("p", &["10.0.0.0/24"])]));
    let sel = |v: &str| TrafficPolicy::Local(BTreeMap::from([("app".to_string(), v.to_string())]));
    let mut a = svc("a");
    a.sharing_key = Some("k".into());
    a.traffic_policy = sel("web");
    let mut b = a.clone();
    b.key = ServiceKey::new("default", "b");
    b.ports = vec![Port {
        protocol: Protocol::Tcp,
        port: 443,
    }];
    let mut c = b.clone();
    c.key = ServiceKey::new("default", "c");
    c.ports = vec![Port {
        protocol: Protocol::Tcp,
        port: 8443,
    }];
    c.traffic_policy = sel("api");
    let ia = al.allocate(&a, &[]).unwrap().ips;
    assert_eq!(al.allocate(&b, &[]).unwrap().ips, ia);
    assert_ne!(al.allocate(&c, &[]).unwrap().ips, ia);
}

#[test]
fn dual_stack_policies() {
    let mut al = Allocator::new(pools(vec![
        pool("v4only", &["10.0.0.0/24"]),
        pool("dual", &["10.1.0.0/24", "fd00::/120"]),
    ]));
    let mut req = svc("req");
    req.family_policy = FamilyPolicy::RequireDualStack;
    req.families = vec![Family::V6, Family::V4];
    let a = al.allocate(&req, &[]).unwrap();
    assert_eq!(&*a.pool, "dual");
    assert_eq!(ips(&a), ["fd00::", "10.1.0.0"], "ipFamilies order is kept");
    let mut pref = svc("pref");
    pref.family_policy = FamilyPolicy::PreferDualStack;
    assert_eq!(al.allocate(&pref, &[]).unwrap().ips.len(), 2);

    let mut al = Allocator::new(pools(vec![pool("v4only", &["10.0.0.0/24"])]));
    assert_eq!(
        ips(&al.allocate(&pref, &[]).unwrap()),
        ["10.0.0.0"],
        "PreferDualStack takes what it can"
    );
    let e = al.allocate(&req, &[]).unwrap_err().error;
    assert_eq!(
        e,
        AllocError::NoPool(vec![("v4only".into(), PoolRejection::NoFamily(Family::V6))])
    );
    // The pool gains IPv6: the Service gains an address and keeps its IPv4 one.
    al.set_pools(pools(vec![pool("v4only", &["10.0.0.0/24", "fd00::/120"])]));
    let mut low = svc("low");
    low.requested = vec![];
    al.allocate(&low, &[]).unwrap();
    assert_eq!(
        ips(&al.allocate(&pref, &[]).unwrap()),
        ["10.0.0.0", "fd00::"]
    );
}

#[test]
fn prefer_dual_stack_respects_pool_priority() {
    let mut first = pool("first", &["10.0.0.0/24"]);
    first.allocation = Some(ServiceAllocation {
        priority: Some(1),
        ..Default::default()
    });
    let mut al = Allocator::new(pools(vec![
        first,
        pool("dual", &["10.1.0.0/24", "fd00::/120"]),
    ]));
    let mut r = svc("a");
    r.family_policy = FamilyPolicy::PreferDualStack;
    let a = al.allocate(&r, &[]).unwrap();
    assert_eq!((&*a.pool, ips(&a)), ("first", vec!["10.0.0.0".to_string()]));
}

#[test]
fn pool_order_priority_namespaces_selectors_and_auto_assign() {
    let mut team = pool("team", &["10.9.0.0/24"]);
    team.allocation = Some(ServiceAllocation {
        priority: Some(5),
        namespaces: BTreeSet::from(["team-a".to_string()]),
        ..Default::default()
    });
    let mut urgent = pool("urgent", &["10.8.0.0/24"]);
    urgent.allocation = Some(ServiceAllocation {
        priority: Some(1),
        service_selectors: vec![
            Selector::parse(
                &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                    match_labels: Some(BTreeMap::from([("tier".to_string(), "gold".to_string())])),
                    ..Default::default()
                },
            )
            .unwrap(),
        ],
        ..Default::default()
    });
    let mut manual = pool("manual", &["10.7.0.0/24"]);
    manual.auto_assign = false;
    let general = pool("general", &["10.1.0.0/24"]);
    let mut al = Allocator::new(pools(vec![team, urgent, manual, general]));

    let plain = svc("plain");
    assert_eq!(&*al.allocate(&plain, &[]).unwrap().pool, "general");
    let mut in_team = svc("t");
    in_team.key.namespace = "team-a".into();
    assert_eq!(&*al.allocate(&in_team, &[]).unwrap().pool, "team");
    let mut gold = in_team.clone();
    gold.key.name = "gold".into();
    gold.labels.insert("tier".into(), "gold".into());
    assert_eq!(
        &*al.allocate(&gold, &[]).unwrap().pool,
        "urgent",
        "lower priority number first"
    );
    let mut pinned = svc("pinned");
    pinned.pool = Some("manual".into());
    assert_eq!(
        &*al.allocate(&pinned, &[]).unwrap().pool,
        "manual",
        "the annotation reaches autoAssign: false pools"
    );
    let mut wrong = svc("wrong");
    wrong.pool = Some("team".into());
    let e = al.allocate(&wrong, &[]).unwrap_err().error;
    assert!(
        e.to_string()
            .contains("namespace default is neither in spec.serviceAllocation.namespaces"),
        "{e}"
    );
    wrong.pool = Some("nope".into());
    assert_eq!(
        al.allocate(&wrong, &[]).unwrap_err().error,
        AllocError::UnknownPool("nope".into())
    );
}

#[test]
fn no_pool_error_explains_every_pool() {
    let mut manual = pool("manual", &["10.7.0.0/24"]);
    manual.auto_assign = false;
    let mut al = Allocator::new(pools(vec![manual]));
    let e = al.allocate(&svc("a"), &[]).unwrap_err().error;
    assert_eq!(
        e.to_string(),
        "no IPAddressPool may serve this Service: pool \"manual\": autoAssign is false: ask for it with the ferrolb.io/address-pool annotation or an address from it"
    );
    let mut al = Allocator::new(BTreeMap::new());
    assert_eq!(
        al.allocate(&svc("a"), &[]).unwrap_err().error,
        AllocError::NoPools
    );
}

#[test]
fn shrinking_a_pool_moves_only_the_services_outside_it() {
    let mut al = Allocator::new(pools(vec![
        pool("p", &["10.0.0.0/24"]),
        pool("q", &["10.5.0.0/24"]),
    ]));
    for n in ["a", "b", "c"] {
        al.allocate(&svc(n), &[]).unwrap();
    }
    let evicted = al.set_pools(pools(vec![
        pool("p", &["10.0.0.0/31"]),
        pool("q", &["10.5.0.0/24"]),
    ]));
    assert_eq!(evicted, vec![ServiceKey::new("default", "c")]);
    assert_eq!(
        ips(al.assignment(&ServiceKey::new("default", "a")).unwrap()),
        ["10.0.0.0"]
    );
    let again = al.allocate(&svc("c"), &[ip("10.0.0.2")]).unwrap();
    assert_eq!(&*again.pool, "q");
    // Pool deleted, the same range created under another name: the address stays.
    let evicted = al.set_pools(pools(vec![
        pool("p2", &["10.0.0.0/31"]),
        pool("q", &["10.5.0.0/24"]),
    ]));
    assert_eq!(evicted.len(), 2);
    let a = al.allocate(&svc("a"), &[ip("10.0.0.0")]).unwrap();
    assert_eq!((&*a.pool, ips(&a)[0].as_str()), ("p2", "10.0.0.0"));
}

#[test]
fn a_failed_edit_keeps_the_working_address() {
    let mut al = Allocator::new(pools(vec![pool("p", &["10.0.0.0/24"])]));
    let a = al.allocate(&svc("a"), &[]).unwrap();
    let mut edited = svc("a");
    edited.requested = vec![ip("172.16.0.1")];
    let f = al.allocate(&edited, &[]).unwrap_err();
    assert_eq!(f.kept, Some(a.clone()));
    assert_eq!(al.assignment(&edited.key), Some(&a));
    // The address is still taken for others.
    assert_ne!(al.allocate(&svc("b"), &[]).unwrap().ips, a.ips);
}

#[test]
fn restart_readopts_before_allocating_and_changes_nothing() {
    let ps = pools(vec![pool("p", &["10.0.0.0/28"])]);
    let mut al = Allocator::new(ps.clone());
    let reqs: Vec<_> = (0..6).map(|i| svc(&format!("s{i}"))).collect();
    for r in &reqs {
        al.allocate(r, &[]).unwrap();
    }
    al.release(&reqs[1].key);
    al.release(&reqs[3].key);
    let before: BTreeMap<_, _> = al
        .assignments()
        .map(|(k, a)| (k.clone(), a.clone()))
        .collect();
    // A new controller: adopt from status in reverse order, then allocate everyone.
    let mut fresh = Allocator::new(ps);
    for r in reqs.iter().rev() {
        if let Some(a) = before.get(&r.key) {
            assert!(fresh.adopt(r, &a.ips));
        }
    }
    for r in &reqs {
        if before.contains_key(&r.key) {
            assert_eq!(&fresh.allocate(r, &[]).unwrap(), &before[&r.key]);
        }
    }
}

// ---- properties ----------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        svc: usize,
        key: Option<u8>,
        port: i32,
        local: Option<u8>,
        req: Option<u8>,
        policy: u8,
    },
    Release(usize),
    Pools(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..8, prop::option::of(0u8..2), 1i32..4, prop::option::of(0u8..2), prop::option::weighted(0.3, 0u8..6), 0u8..3)
            .prop_map(|(svc, key, port, local, req, policy)| Op::Alloc { svc, key, port, local, req, policy }),
        1 => (0usize..8).prop_map(Op::Release),
        1 => (0u8..4).prop_map(Op::Pools),
    ]
}

fn pool_variant(v: u8) -> BTreeMap<String, Pool> {
    let mut buggy = pool("b", &["10.0.0.254-10.0.1.2"]);
    buggy.avoid_buggy_ips = true;
    match v {
        0 => pools(vec![
            pool("a", &["10.0.0.0/29", "fd00::/126"]),
            pool("c", &["fd01::/126"]),
        ]),
        1 => pools(vec![pool("a", &["10.0.0.0/30", "fd00::/127"]), buggy]),
        2 => pools(vec![
            pool("a2", &["10.0.0.0/29"]),
            pool("c", &["fd01::/126", "10.9.0.0/31"]),
        ]),
        _ => pools(vec![buggy]),
    }
}

fn request_for(op: &Op) -> Option<ServiceRequest> {
    let Op::Alloc {
        svc: i,
        key,
        port,
        local,
        req,
        policy,
    } = op
    else {
        return None;
    };
    let addrs = [
        "10.0.0.1", "10.0.0.2", "fd00::1", "10.0.1.0", "fd01::2", "10.9.0.1",
    ];
    Some(ServiceRequest {
        key: ServiceKey::new("ns", format!("s{i}")),
        family_policy: [
            FamilyPolicy::SingleStack,
            FamilyPolicy::PreferDualStack,
            FamilyPolicy::RequireDualStack,
        ][*policy as usize],
        families: if *i % 2 == 0 {
            vec![Family::V4, Family::V6]
        } else {
            vec![Family::V6, Family::V4]
        },
        requested: req
            .map(|r| vec![addrs[r as usize].parse().unwrap()])
            .unwrap_or_default(),
        sharing_key: key.map(|k| format!("k{k}")),
        ports: vec![Port {
            protocol: Protocol::Tcp,
            port: *port,
        }],
        traffic_policy: match local {
            None => TrafficPolicy::Cluster,
            Some(s) => TrafficPolicy::Local(BTreeMap::from([("app".into(), s.to_string())])),
        },
        ..Default::default()
    })
}

fn check_invariants(al: &Allocator) -> Result<(), TestCaseError> {
    let mut recount: BTreeMap<String, [u128; 2]> = BTreeMap::new();
    for (addr, u) in &al.uses {
        let pool = al.pools.get(&*u.pool).map(|e| &e.pool);
        prop_assert!(
            pool.is_some_and(|p| p.contains(addr) && !is_buggy(p, addr)),
            "{addr} outside its pool {}",
            u.pool
        );
        let hs: Vec<&Entry> = u.holders.iter().map(|id| al.entry(*id).unwrap()).collect();
        for (i, a) in hs.iter().enumerate() {
            prop_assert!(a.assignment.ips.contains(addr));
            for b in &hs[i + 1..] {
                prop_assert!(
                    share_conflict(&a.holder, &b.holder).is_none(),
                    "{addr} held by services that may not share"
                );
            }
        }
        prop_assert!(!u.holders.is_empty());
        prop_assert!(al.used[fam_idx(Family::of(addr))].contains(to_u128(addr)));
        recount.entry(u.pool.to_string()).or_default()[fam_idx(Family::of(addr))] += 1;
    }
    for (k, id) in &al.ids {
        let e = al.entry(*id).unwrap();
        prop_assert_eq!(&e.key, k);
        for addr in &e.assignment.ips {
            prop_assert!(
                al.uses
                    .get(addr)
                    .is_some_and(|u| u.holders.contains(id) && u.pool == e.assignment.pool)
            );
        }
        let fams: BTreeSet<_> = e.assignment.ips.iter().map(Family::of).collect();
        prop_assert_eq!(
            fams.len(),
            e.assignment.ips.len(),
            "two addresses of one family"
        );
    }
    prop_assert_eq!(al.ids.len(), al.entries.iter().flatten().count());
    for (p, c) in &al.assigned {
        prop_assert_eq!(
            recount.get(&**p).copied().unwrap_or_default(),
            *c,
            "counter of {}",
            p
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_histories_keep_every_invariant_and_survive_a_restart(ops in prop::collection::vec(op(), 1..60), seed in any::<u64>()) {
        let mut al = Allocator::new(pool_variant(0));
        let mut last: BTreeMap<usize, ServiceRequest> = BTreeMap::new();
        let mut current_pools = 0u8;
        for o in &ops {
            match o {
                Op::Alloc { svc, .. } => {
                    let r = request_for(o).unwrap();
                    let hint: Vec<IpAddr> = al.assignment(&r.key).map(|a| a.ips.clone()).unwrap_or_default();
                    match al.allocate(&r, &hint) {
                        Ok(a) => {
                            prop_assert!(r.requested.is_empty() || r.requested == a.ips);
                            last.insert(*svc, r);
                        }
                        Err(f) => {
                            if f.kept.is_none() {
                                last.remove(svc);
                            }
                        }
                    }
                }
                Op::Release(i) => {
                    al.release(&ServiceKey::new("ns", format!("s{i}")));
                    last.remove(i);
                }
                Op::Pools(v) => {
                    current_pools = *v;
                    for k in al.set_pools(pool_variant(*v)) {
                        let i: usize = k.name[1..].parse().unwrap();
                        last.remove(&i);
                    }
                }
            }
            check_invariants(&al)?;
        }
        // Restart: a new allocator adopts the status of every Service, in any order.
        let before: BTreeMap<ServiceKey, Assignment> = al.assignments().map(|(k, a)| (k.clone(), a.clone())).collect();
        let mut fresh = Allocator::new(pool_variant(current_pools));
        let mut order: Vec<_> = before.keys().cloned().collect();
        let n = order.len().max(1);
        order.rotate_left((seed as usize) % n);
        for k in &order {
            let i: usize = k.name[1..].parse().unwrap();
            let req = last.get(&i).cloned().unwrap_or_else(|| ServiceRequest { key: k.clone(), ..Default::default() });
            let req = ServiceRequest { key: k.clone(), ..req };
            prop_assert!(fresh.adopt(&req, &before[k].ips), "restart lost {k}: {:?}", before[k]);
        }
        let after: BTreeMap<ServiceKey, Assignment> = fresh.assignments().map(|(k, a)| (k.clone(), a.clone())).collect();
        prop_assert_eq!(after, before);
        check_invariants(&fresh)?;
    }
}

proptest! {
    /// Services that ask for addresses get them whatever order they come in.
    #[test]
    fn requested_addresses_do_not_depend_on_event_order(picks in prop::collection::btree_set(0u8..16, 1..10), seed in any::<u64>()) {
        let ps = pools(vec![pool("p", &["10.0.0.0/28"])]);
        let reqs: Vec<ServiceRequest> = picks
            .iter()
            .map(|b| {
                let mut r = svc(&format!("s{b}"));
                r.requested = vec![IpAddr::from([10, 0, 0, *b])];
                r
            })
            .collect();
        let run = |order: &[ServiceRequest]| {
            let mut al = Allocator::new(ps.clone());
            for r in order {
                al.allocate(r, &[]).unwrap();
            }
            al.assignments().map(|(k, a)| (k.clone(), a.clone())).collect::<BTreeMap<_, _>>()
        };
        let mut shuffled = reqs.clone();
        let n = shuffled.len();
        shuffled.rotate_left(seed as usize % n);
        shuffled.reverse();
        prop_assert_eq!(run(&reqs), run(&shuffled));
    }
}
