//! The chain, link after link; it stops checking at the first broken link (what
//! follows depends on it) and ends with the overall state.

use std::collections::BTreeSet;

use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::config::{Config, Selector};
use ferrolb_crds::services::ingress_ips;
use ferrolb_speaker::election::{NodeView, l2_assignments, nodes_with_ready_endpoints};
use k8s_openapi::api::core::v1::Service;

use super::allocation::address_link;
use super::links::{
    advertisement_link, bgp_peers_link, l2_owner_link, no_peer_link, peers_down_fix, pool_link,
    pool_peers, service_link,
};
use super::nodes::{Ads, Context, nodes_link};
use super::{Diagnosis, Input, Link, Mark};
use crate::speakers::Verdicts;

/// Links still to come after `done`, to list as skipped.
const ORDER: [&str; 6] = [
    "service",
    "address",
    "pool",
    "advertisement",
    "nodes",
    "announcement",
];

fn links(input: &Input<'_>, ns: &str, name: &str) -> Vec<Link> {
    let snap = input.snapshot;
    let key = format!("{ns}/{name}");
    let svc = snap
        .services
        .iter()
        .find(|s| {
            s.metadata.namespace.as_deref().unwrap_or("default") == ns
                && s.metadata.name.as_deref() == Some(name)
        })
        .map(|s| &**s);
    let mut out = vec![service_link(svc, &key, input.class)];
    let Some(svc) = svc.filter(|_| out[0].status == Mark::Ok) else {
        return out;
    };
    let (config, _) = snap.config();
    let ips = ingress_ips(svc);
    out.push(address_link(snap, &config, input.class, svc, &ips));
    if out[1].status != Mark::Ok {
        return out;
    }
    let (link, pool) = pool_link(&config, &ips);
    out.push(link);
    let Some(pool) = pool else { return out };
    let (link, l2, bgp) = advertisement_link(&config, pool, &ips);
    out.push(link);
    if l2.is_empty() && bgp.is_empty() {
        return out;
    }
    let local = svc
        .spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
        == Some("Local");
    let endpoints = local.then(|| nodes_with_ready_endpoints(&snap.endpoint_slices, ns, name));
    let running: BTreeSet<String> = input.speakers.iter().map(|s| s.node.clone()).collect();
    let ctx = Context {
        endpoints: endpoints.as_ref(),
        speakers: input.speakers_complete.then_some(&running),
    };
    if !l2.is_empty() {
        let ads = l2_ads(&config, &l2);
        let (link, _) = nodes_link("l2Nodes", &snap.nodes, &ads, &ctx, &key);
        let ok = link.status == Mark::Ok;
        out.push(link);
        if !ok {
            return out;
        }
        let alive = input.speakers_complete.then_some(&running);
        // The speaker's view of every Service, as a speaker would elect.
        let (assignments, _) = l2_assignments(&snap.project(), &config, input.class, alive);
        out.push(l2_owner_link(ns, name, &ips, &assignments, input.speakers));
        if out.last().is_some_and(|l| l.status != Mark::Ok) {
            return out;
        }
    }
    if !bgp.is_empty() {
        let ads = bgp_ads(&config, &bgp);
        let (link, announcing) = nodes_link("bgpNodes", &snap.nodes, &ads, &ctx, &key);
        let ok = link.status == Mark::Ok;
        out.push(link);
        if !ok {
            return out;
        }
        out.push(bgp_peers_link(
            &config,
            pool,
            ns,
            name,
            &snap.nodes,
            &announcing,
            input.speakers,
        ));
    }
    out
}

/// The advertisements of one kind named in `names`, with their node selectors.
fn ads<'a>(
    kind: &'static str,
    all: impl Iterator<Item = (&'a str, &'a [Selector])>,
    names: &[String],
) -> Ads<'a> {
    Ads {
        kind,
        ads: all.filter(|(n, _)| names.iter().any(|x| x == n)).collect(),
    }
}

fn l2_ads<'a>(config: &'a Config, names: &[String]) -> Ads<'a> {
    let all = config.l2_advertisements.values();
    ads(
        "L2Advertisement",
        all.map(|a| (a.name.as_str(), a.node_selectors.as_slice())),
        names,
    )
}

fn bgp_ads<'a>(config: &'a Config, names: &[String]) -> Ads<'a> {
    let all = config.bgp_advertisements.values();
    ads(
        "BGPAdvertisement",
        all.map(|a| (a.name.as_str(), a.node_selectors.as_slice())),
        names,
    )
}

/// For a Service whose pool `pool` the L2Advertisements `l2` and
/// BGPAdvertisements `bgp` select: the first mode in which no node may announce
/// it (NotReady, NetworkUnavailable, the exclusion label, node selectors, no
/// speaker running there for longer than the grace period) or, with
/// `externalTrafficPolicy: Local`, no node has a ready endpoint; then, in BGP
/// mode, no BGPPeer for the announcing nodes, or every one of their sessions down
/// for longer than the grace period. The controller sets the Service's Announced
/// condition from it; the same checks make `diagnose`'s node links.
pub fn node_problem(
    snap: &ClusterSnapshot,
    config: &Config,
    svc: &Service,
    pool: &str,
    (l2, bgp): (&[String], &[String]),
    speakers: &Verdicts,
) -> Option<Link> {
    let (ns, name) = (
        svc.metadata.namespace.as_deref().unwrap_or("default"),
        svc.metadata.name.as_deref().unwrap_or_default(),
    );
    let key = format!("{ns}/{name}");
    let local = svc
        .spec
        .as_ref()
        .and_then(|s| s.external_traffic_policy.as_deref())
        == Some("Local");
    let endpoints = local.then(|| nodes_with_ready_endpoints(&snap.endpoint_slices, ns, name));
    let ctx = Context {
        endpoints: endpoints.as_ref(),
        speakers: speakers.may_run.as_ref(),
    };
    if !l2.is_empty() {
        let (link, _) = nodes_link("l2Nodes", &snap.nodes, &l2_ads(config, l2), &ctx, &key);
        if link.status == Mark::Broken {
            return Some(link);
        }
    }
    if bgp.is_empty() {
        return None;
    }
    let (link, announcing) = nodes_link("bgpNodes", &snap.nodes, &bgp_ads(config, bgp), &ctx, &key);
    if link.status == Mark::Broken {
        return Some(link);
    }
    let pairs: Vec<(String, String)> = snap
        .nodes
        .iter()
        .map(NodeView::from_node)
        .filter(|v| announcing.contains(&v.name))
        .flat_map(|v| {
            pool_peers(config, pool, &v)
                .into_iter()
                .map(move |p| (v.name.clone(), p))
        })
        .collect();
    if pairs.is_empty() {
        return Some(no_peer_link(&announcing));
    }
    if !speakers.all_down(&pairs) {
        return None;
    }
    let mut peers: Vec<String> = pairs.iter().map(|(_, p)| p.clone()).collect();
    peers.sort();
    peers.dedup();
    let sessions: Vec<String> = pairs.iter().map(|(n, p)| format!("{n} to {p}")).collect();
    Some(Link::broken(
        "bgpPeers",
        "PeersDown",
        format!(
            "every BGP session of the announcing nodes is down ({})",
            sessions.join(", ")
        ),
        peers_down_fix(&peers),
    ))
}

/// The chain for Service `ns/name`.
pub fn diagnose(input: &Input<'_>, ns: &str, name: &str) -> Diagnosis {
    let mut links = links(input, ns, name);
    let broken = links
        .iter()
        .find(|l| l.status == Mark::Broken)
        .map(|l| l.link);
    if broken.is_some() {
        // Name what could not be checked, so that the chain always reads to the end.
        for id in ORDER.iter().skip(links_before_modes(&links)) {
            links.push(Link {
                link: id,
                status: Mark::Skipped,
                reason: "NotChecked".into(),
                summary: "not checked: an earlier link is broken".into(),
                details: Vec::new(),
                fix: None,
            });
        }
    }
    let state = match broken {
        None => {
            let mut how = Vec::new();
            for l in &links {
                if l.link == "l2Owner" {
                    how.push(format!("layer 2: {}", l.summary));
                }
                if l.link == "bgpPeers" {
                    how.push(format!("BGP: {}", l.summary));
                }
            }
            Link::ok(
                "state",
                "Reachable",
                format!("reachable ({})", how.join("; ")),
            )
        }
        Some(id) => Link {
            link: "state",
            status: Mark::Broken,
            reason: "Unreachable".into(),
            summary: format!("not reachable: the {id} link is broken"),
            details: Vec::new(),
            fix: None,
        },
    };
    links.push(state);
    Diagnosis {
        service: format!("{ns}/{name}"),
        reachable: broken.is_none(),
        broken_link: broken,
        links,
    }
}

/// How many of [`ORDER`] the links cover: mode-specific links stand for `nodes`
/// and `announcement`.
fn links_before_modes(links: &[Link]) -> usize {
    let nodes = links
        .iter()
        .any(|l| l.link == "l2Nodes" || l.link == "bgpNodes");
    let announced = links
        .iter()
        .any(|l| l.link == "l2Owner" || l.link == "bgpPeers");
    let plain = links
        .iter()
        .filter(|l| ORDER[..4].contains(&l.link))
        .count();
    plain + usize::from(nodes) + usize::from(announced)
}
