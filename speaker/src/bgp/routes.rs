//! The routes one node announces to one peer (pure): every address of a Service
//! of ours whose pool a BGPAdvertisement selects for this node and this peer.
//! [`PeerRoutes`] keeps each Service's routes between plans, so a change to one
//! Service recomputes one Service, not 10,000.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_crds::config::{BgpAdvertisement, CommunityValue, Config, Peer, Pool, any_matches};
use ferrolb_crds::services::LbService;
use ipnet::IpNet;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::Snapshot;
use crate::election::{NodeView, nodes_with_ready_endpoints};

/// Attributes of a route that do not depend on the session.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteSpec {
    /// LOCAL_PREF (sent on iBGP sessions only).
    pub local_pref: Option<u32>,
    /// Standard communities, sorted and unique.
    pub communities: Vec<u32>,
    /// Large communities, sorted and unique.
    pub large_communities: Vec<(u32, u32, u32)>,
}

impl RouteSpec {
    /// Both: the higher LOCAL_PREF, every community.
    fn merge(&mut self, o: &RouteSpec) {
        self.local_pref = self.local_pref.max(o.local_pref);
        self.communities.extend_from_slice(&o.communities);
        self.large_communities
            .extend_from_slice(&o.large_communities);
        self.communities.sort_unstable();
        self.communities.dedup();
        self.large_communities.sort_unstable();
        self.large_communities.dedup();
    }
}

/// Desired routes toward one peer, sorted by prefix. Specs are shared: most
/// prefixes carry one of a handful, and a shared one compares by pointer. A
/// sorted list, not a map: 32 bytes a route against 53 (10,000 routes: 0.32 MB
/// instead of 0.53), and it changes by one merge pass per update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table(Vec<(IpNet, Arc<RouteSpec>)>);

impl Table {
    fn at(&self, p: &IpNet) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.cmp(p))
    }

    /// The spec of a prefix.
    pub fn get(&self, p: &IpNet) -> Option<&Arc<RouteSpec>> {
        self.at(p).ok().map(|i| &self.0[i].1)
    }

    /// Whether the prefix is in.
    pub fn contains_key(&self, p: &IpNet) -> bool {
        self.at(p).is_ok()
    }

    /// The prefixes, in order.
    pub fn keys(&self) -> impl Iterator<Item = &IpNet> {
        self.0.iter().map(|(p, _)| p)
    }

    /// The routes, in order of prefix.
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &Arc<RouteSpec>)> {
        self.0.iter().map(|(p, s)| (p, s))
    }

    /// How many routes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This table with `changes` made (sorted by prefix, one each: a spec to
    /// put, or `None` to take the prefix out).
    fn with(&self, changes: &[(IpNet, Option<Arc<RouteSpec>>)]) -> Table {
        let mut out = Vec::with_capacity(self.0.len() + changes.len());
        let (mut old, mut ch) = (self.0.iter().peekable(), changes.iter().peekable());
        loop {
            match (old.peek(), ch.peek()) {
                (None, None) => break,
                (Some(_), None) => out.extend(old.by_ref().cloned()),
                (Some((p, _)), Some((q, _))) if p < q => out.extend(old.next().cloned()),
                (_, Some((q, s))) => {
                    if old.peek().is_some_and(|(p, _)| p == q) {
                        old.next();
                    }
                    if let Some(s) = s {
                        out.push((*q, s.clone()));
                    }
                    ch.next();
                }
            }
        }
        out.shrink_to_fit();
        Table(out)
    }
}

/// The peers this node opens sessions to.
pub fn peers_for<'a>(config: &'a Config, node: &NodeView) -> Vec<&'a Peer> {
    config
        .peers
        .values()
        .filter(|p| any_matches(&p.node_selectors, &node.labels))
        .collect()
}

/// The routes of one Service toward `peer`, by prefix, each spec merged over the
/// advertisements that select it (empty when the node does not announce it).
pub fn service_routes(
    snap: &Snapshot,
    config: &Config,
    node: &NodeView,
    peer: &Peer,
    svc: &LbService,
) -> Vec<(IpNet, RouteSpec)> {
    let mut out: Vec<(IpNet, RouteSpec)> = Vec::new();
    if !node.usable
        || svc.local
            && !nodes_with_ready_endpoints(&snap.endpoint_slices, &svc.namespace, &svc.name)
                .contains(&node.name)
    {
        return out;
    }
    for &ip in &svc.ips {
        let Some(pool) = config.pools.values().find(|p| p.contains(&ip)) else {
            continue;
        };
        for ad in config.bgp_advertisements.values() {
            if !ad.pools.contains(&pool.name)
                || !any_matches(&ad.node_selectors, &node.labels)
                || !(ad.peers.is_empty() || ad.peers.contains(&peer.name))
            {
                continue;
            }
            let len = match ip {
                IpAddr::V4(_) => ad.aggregation_length,
                IpAddr::V6(_) => ad.aggregation_length_v6,
            };
            let Ok(prefix) = IpNet::new(ip, len).map(|n| n.trunc()) else {
                continue;
            };
            let mut r = RouteSpec {
                local_pref: ad.local_pref,
                ..Default::default()
            };
            for c in &ad.communities {
                match *c {
                    CommunityValue::Standard(v) => r.communities.push(v),
                    CommunityValue::Large(a, b, c) => r.large_communities.push((a, b, c)),
                }
            }
            match out.iter_mut().find(|(p, _)| *p == prefix) {
                Some((_, s)) => s.merge(&r),
                None => {
                    r.merge(&RouteSpec::default());
                    out.push((prefix, r))
                }
            }
        }
    }
    out.sort_unstable_by_key(|(p, _)| *p);
    out
}

/// What the routes of every Service depend on besides the Service (and, for
/// `externalTrafficPolicy: Local`, the EndpointSlices).
#[derive(Clone, Debug, PartialEq)]
struct Inputs {
    pools: BTreeMap<String, Pool>,
    ads: BTreeMap<String, BgpAdvertisement>,
    node: NodeView,
    peer: String,
    class: String,
}

/// One prefix of one Service toward the peer, with the Service's spec for it.
struct Entry {
    prefix: IpNet,
    /// Held so that its address, the Service's key, is not reused while here.
    svc: Arc<LbService>,
    spec: Arc<RouteSpec>,
}

fn key(svc: &Arc<LbService>) -> usize {
    Arc::as_ptr(svc) as usize
}

/// The routes toward one peer, kept per Service (by the `Arc` the snapshot
/// shares: an unchanged Service keeps its allocation from one snapshot to the
/// next) while the configuration, the node and the peer stay the same. The table
/// is updated in place: only the prefixes of changed Services are touched.
#[derive(Default)]
pub struct PeerRoutes {
    inputs: Option<Inputs>,
    slices: Vec<Arc<EndpointSlice>>,
    /// Every (prefix, Service) pair, sorted by prefix: the Services behind an
    /// aggregate are one run. One flat list, 40 bytes a pair: a map of Services
    /// to their prefixes beside a map of (prefix, Service) to specs were 1.6 MB
    /// per peer with 10,000 Services, this is 0.4. A Service without routes
    /// leaves nothing: a full pass computes it again (it is one pool lookup).
    entries: Vec<Entry>,
    /// Shared with the session it was handed to: changed in place
    /// ([`Arc::make_mut`]) when the session has moved on to a newer one, copied
    /// only while it still holds this one.
    table: Arc<Table>,
    specs: Vec<Arc<RouteSpec>>,
    /// Updated once: the next update may look at what changed since.
    synced: bool,
    /// A Service's routes were computed or dropped since the last
    /// [`PeerRoutes::take_services_changed`].
    services_changed: bool,
}

/// Distinct specs kept for sharing; past this many the list starts over.
const MAX_SPECS: usize = 256;

/// What one update drops from, and re-files in, the list.
#[derive(Default)]
struct Drops {
    /// Services gone or changed, by address.
    services: HashSet<usize>,
    /// Every `externalTrafficPolicy: Local` Service (the EndpointSlices changed).
    local: bool,
    /// Only these Services stay (a full pass), by address.
    keep_only: Option<HashSet<usize>>,
    /// Equal Services under a new address (old address -> new object).
    rekey: HashMap<usize, Arc<LbService>>,
}

impl PeerRoutes {
    /// Brings the table in line with this snapshot; true when it changed.
    /// `prev` is the snapshot of the last call (when there was one): only the
    /// Services that differ from it are looked at.
    pub fn update(
        &mut self,
        prev: Option<&Snapshot>,
        snap: &Snapshot,
        config: &Config,
        class: &str,
        node: &NodeView,
        peer: &Peer,
    ) -> bool {
        let inputs = Inputs {
            pools: config.pools.clone(),
            ads: config.bgp_advertisements.clone(),
            node: node.clone(),
            peer: peer.name.clone(),
            class: class.to_string(),
        };
        let mut touched: Vec<IpNet> = Vec::new();
        let touched_all = self.inputs.as_ref() != Some(&inputs);
        if touched_all {
            touched.extend(self.table.keys());
            self.entries = Vec::new();
            self.specs.clear();
            self.inputs = Some(inputs);
        }
        let slices_same = self.slices.len() == snap.endpoint_slices.len()
            && self
                .slices
                .iter()
                .zip(&snap.endpoint_slices)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        // Local Services dropped here are learnt again by the full pass.
        let full = touched_all || !slices_same;
        let mut drops = Drops {
            local: !slices_same,
            ..Default::default()
        };
        if !slices_same {
            self.slices = snap.endpoint_slices.clone();
        }
        if self.specs.len() > MAX_SPECS {
            self.specs.clear();
        }
        let mut fresh: Vec<Entry> = Vec::new();
        match prev.filter(|_| self.synced && !full) {
            Some(prev) => {
                let ch = changed_services(&prev.services, &snap.services);
                drops.services.extend(ch.removed.into_iter().map(key));
                let mut added = ch.added;
                for (o, n) in ch.replaced {
                    // The file source builds new objects on every load: an equal
                    // one keeps its routes under its new address.
                    if **o == **n {
                        drops.rekey.insert(key(o), n.clone());
                        continue;
                    }
                    drops.services.insert(key(o));
                    added.push(n);
                }
                self.drop_entries(drops, &mut touched);
                for svc in added.into_iter().filter(|s| s.is_ours(class)) {
                    self.learn(snap, config, node, peer, svc, &mut fresh);
                }
            }
            None => {
                let ours = || snap.services.iter().filter(|s| s.is_ours(class));
                drops.keep_only = Some(ours().map(key).collect());
                self.drop_entries(drops, &mut touched);
                let known: HashSet<usize> = self.entries.iter().map(|e| key(&e.svc)).collect();
                for svc in ours().filter(|s| !known.contains(&key(s))) {
                    self.learn(snap, config, node, peer, svc, &mut fresh);
                }
            }
        }
        touched.extend(fresh.iter().map(|e| e.prefix));
        self.merge_in(fresh);
        self.synced = true;
        touched.sort_unstable();
        touched.dedup();
        let mut changes: Vec<(IpNet, Option<Arc<RouteSpec>>)> = Vec::new();
        for p in touched {
            let mut merged: Option<Arc<RouteSpec>> = None;
            let from = self.entries.partition_point(|e| e.prefix < p);
            for e in self.entries[from..].iter().take_while(|e| e.prefix == p) {
                let s = &e.spec;
                merged = Some(match merged {
                    None => s.clone(),
                    Some(m) if *m == **s => m,
                    Some(m) => {
                        let mut both = (*m).clone();
                        both.merge(s);
                        share(&mut self.specs, both)
                    }
                });
            }
            let now = self.table.get(&p);
            if now != merged.as_ref() {
                changes.push((p, merged));
            }
        }
        if changes.is_empty() {
            return false;
        }
        // A new table: the session holds the last one until it has sent this.
        self.table = Arc::new(self.table.with(&changes));
        true
    }

    /// One pass over the list: drops what `drops` names (noting the prefixes),
    /// re-files the rekeyed.
    fn drop_entries(&mut self, drops: Drops, touched: &mut Vec<IpNet>) {
        if drops.services.is_empty()
            && !drops.local
            && drops.keep_only.is_none()
            && drops.rekey.is_empty()
        {
            return;
        }
        let before = self.entries.len();
        self.entries.retain_mut(|e| {
            let k = key(&e.svc);
            let gone = drops.services.contains(&k)
                || drops.local && e.svc.local
                || drops.keep_only.as_ref().is_some_and(|s| !s.contains(&k));
            if gone {
                touched.push(e.prefix);
                return false;
            }
            if let Some(n) = drops.rekey.get(&k) {
                e.svc = n.clone();
            }
            true
        });
        if self.entries.len() != before {
            self.services_changed = true;
            if self.entries.capacity() > 2 * self.entries.len() {
                self.entries.shrink_to_fit();
            }
        }
    }

    /// Adds new entries (each Service's sorted by prefix), keeping the list
    /// sorted: one merge into a list of the exact size.
    fn merge_in(&mut self, mut fresh: Vec<Entry>) {
        if fresh.is_empty() {
            return;
        }
        self.services_changed = true;
        fresh.sort_by_key(|e| e.prefix);
        let old = std::mem::take(&mut self.entries);
        let mut out = Vec::with_capacity(old.len() + fresh.len());
        let (mut a, mut b) = (old.into_iter().peekable(), fresh.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if y.prefix < x.prefix => b.next(),
                (Some(_), _) => a.next(),
                (None, _) => b.next(),
            };
            match next {
                Some(e) => out.push(e),
                None => break,
            }
        }
        self.entries = out;
    }

    /// Computes one Service's routes into `fresh`.
    fn learn(
        &mut self,
        snap: &Snapshot,
        config: &Config,
        node: &NodeView,
        peer: &Peer,
        svc: &Arc<LbService>,
        fresh: &mut Vec<Entry>,
    ) {
        for (prefix, s) in service_routes(snap, config, node, peer, svc) {
            fresh.push(Entry {
                prefix,
                svc: svc.clone(),
                spec: share(&mut self.specs, s),
            });
        }
    }

    /// Whether the Services behind the table may differ since the last call
    /// (the table itself may not: two Services behind one aggregate).
    pub fn take_services_changed(&mut self) -> bool {
        std::mem::take(&mut self.services_changed)
    }

    /// The table as of the last update.
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// Each prefix toward the peer with each Service behind it (a Service with
    /// several prefixes comes once per prefix).
    pub fn carried(&self) -> impl Iterator<Item = (&Arc<LbService>, &IpNet)> {
        self.entries.iter().map(|e| (&e.svc, &e.prefix))
    }
}

/// How two snapshots' Service lists differ.
#[derive(Debug, Default)]
pub struct ServiceChanges<'a> {
    /// Only in the new list.
    pub added: Vec<&'a Arc<LbService>>,
    /// Only in the old list.
    pub removed: Vec<&'a Arc<LbService>>,
    /// The same key in another object: (old, new).
    pub replaced: Vec<(&'a Arc<LbService>, &'a Arc<LbService>)>,
}

/// How `new` differs from `old`. Both are sorted by (namespace, name), as every
/// snapshot is, so this is one pass of pointer comparisons that looks into an
/// object only where the lists differ: with the kube source a change to one of
/// 10,000 Services reads one or two of them.
pub fn changed_services<'a>(
    old: &'a [Arc<LbService>],
    new: &'a [Arc<LbService>],
) -> ServiceChanges<'a> {
    fn key(s: &LbService) -> (&str, &str) {
        (&s.namespace, &s.name)
    }
    let mut out = ServiceChanges::default();
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        if Arc::ptr_eq(&old[i], &new[j]) {
            i += 1;
            j += 1;
            continue;
        }
        match key(&old[i]).cmp(&key(&new[j])) {
            std::cmp::Ordering::Less => {
                out.removed.push(&old[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.added.push(&new[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.replaced.push((&old[i], &new[j]));
                i += 1;
                j += 1;
            }
        }
    }
    out.removed.extend(&old[i..]);
    out.added.extend(&new[j..]);
    out
}

/// The shared spec equal to `s` (a new one when there is none yet).
fn share(specs: &mut Vec<Arc<RouteSpec>>, s: RouteSpec) -> Arc<RouteSpec> {
    if let Some(x) = specs.iter().find(|x| ***x == s) {
        return x.clone();
    }
    let a = Arc::new(s);
    specs.push(a.clone());
    a
}

/// Desired routes of `node` toward `peer` (without a cache).
pub fn routes(
    snap: &Snapshot,
    config: &Config,
    class: &str,
    node: &NodeView,
    peer: &Peer,
) -> Table {
    let mut r = PeerRoutes::default();
    r.update(None, snap, config, class, node, peer);
    Arc::unwrap_or_clone(r.table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_crds::source::yaml::parse_file_as;
    use std::path::Path;

    const YAML: &str = "
apiVersion: ferrolb.io/v1beta1
kind: IPAddressPool
metadata: {name: routed}
spec: {addresses: [198.51.100.0/24, '2001:db8:100::/64']}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: a}
spec:
  communities: [65535:65282, large:64512:1:2]
  localPref: 50
---
apiVersion: ferrolb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: aggregate-to-tor-b}
spec:
  aggregationLength: 24
  peers: [tor-b]
  nodeSelectors: [{matchLabels: {rack: r1}}]
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: tor-a}
spec: {myASN: 64512, peerASN: 64512, peerAddress: 10.0.0.1}
---
apiVersion: ferrolb.io/v1beta1
kind: BGPPeer
metadata: {name: tor-b}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 10.0.0.2, nodeSelectors: [{matchLabels: {rack: r1}}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {type: LoadBalancer}
status: {loadBalancer: {ingress: [{ip: 198.51.100.7}, {ip: '2001:db8:100::7'}]}}
---
apiVersion: v1
kind: Service
metadata: {name: local}
spec: {type: LoadBalancer, externalTrafficPolicy: Local}
status: {loadBalancer: {ingress: [{ip: 198.51.100.8}]}}
";

    fn setup() -> (Snapshot, Config) {
        let (objs, errs) = parse_file_as(Path::new("t.yaml"), YAML);
        assert!(errs.is_empty(), "{errs:?}");
        let mut s = Snapshot::default();
        for (_, o) in objs {
            s.add(o);
        }
        let (c, e) = s.config();
        assert!(e.is_empty(), "{e:?}");
        (s, c)
    }

    fn node(labels: &[(&str, &str)]) -> NodeView {
        NodeView {
            name: "n1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            usable: true,
        }
    }

    #[test]
    fn selection_by_peer_node_and_aggregation() {
        let (s, c) = setup();
        let plain = node(&[]);
        assert_eq!(
            peers_for(&c, &plain)
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["tor-a"]
        );
        let r = routes(&s, &c, "ferrolb.io/ferrolb", &plain, &c.peers["tor-a"]);
        let keys: Vec<String> = r.keys().map(ToString::to_string).collect();
        assert_eq!(
            keys,
            ["198.51.100.7/32", "2001:db8:100::7/128"],
            "no ready endpoint: the Local Service is not announced"
        );
        let v = r.get(&"198.51.100.7/32".parse().unwrap()).unwrap();
        assert_eq!(v.communities, vec![(65535 << 16) | 65282]);
        assert_eq!(v.large_communities, vec![(64512, 1, 2)]);
        assert_eq!(v.local_pref, Some(50));
        let rack = node(&[("rack", "r1")]);
        assert_eq!(peers_for(&c, &rack).len(), 2);
        let r = routes(&s, &c, "ferrolb.io/ferrolb", &rack, &c.peers["tor-b"]);
        let keys: Vec<String> = r.keys().map(ToString::to_string).collect();
        assert_eq!(
            keys,
            ["198.51.100.0/24", "198.51.100.7/32", "2001:db8:100::7/128"],
            "the aggregate only tor-b gets, and the host routes of the ad for every peer"
        );
        let down = NodeView {
            usable: false,
            ..rack
        };
        assert!(routes(&s, &c, "ferrolb.io/ferrolb", &down, &c.peers["tor-b"]).is_empty());
    }

    #[test]
    fn changed_services_by_pointer_walk() {
        let svc = |n: &str| Arc::new(LbService::new("default", n));
        let (a, b, c, d) = (svc("a"), svc("b"), svc("c"), svc("d"));
        let old = vec![a.clone(), b.clone(), d.clone()];
        let b2 = svc("b");
        let new = vec![a.clone(), b2.clone(), c.clone()];
        let ch = changed_services(&old, &new);
        let names =
            |v: &[&Arc<LbService>]| v.iter().map(|s| s.name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&ch.added), ["c"]);
        assert_eq!(names(&ch.removed), ["d"]);
        assert_eq!(ch.replaced.len(), 1, "b is another object now");
        assert!(Arc::ptr_eq(ch.replaced[0].0, &b) && Arc::ptr_eq(ch.replaced[0].1, &b2));
        let ch = changed_services(&new, &new);
        assert!(ch.added.is_empty() && ch.removed.is_empty() && ch.replaced.is_empty());
    }

    /// How many Services have routes.
    fn services(cache: &PeerRoutes) -> usize {
        let names: std::collections::BTreeSet<&str> =
            cache.carried().map(|(s, _)| &*s.name).collect();
        names.len()
    }

    /// A copy of `svc` with `ip` as its only address.
    fn with_ip(svc: &LbService, ip: &str) -> LbService {
        svc.with_ips([ip.parse().unwrap()])
    }

    /// An update that remembers its snapshot for the next, as the manager does.
    fn step(
        cache: &mut PeerRoutes,
        prev: &mut Option<Snapshot>,
        s: &Snapshot,
        c: &Config,
        n: &NodeView,
        peer: &Peer,
    ) -> bool {
        let changed = cache.update(prev.as_ref(), s, c, "ferrolb.io/ferrolb", n, peer);
        *prev = Some(s.clone());
        changed
    }

    #[test]
    fn unchanged_services_keep_their_routes() {
        let (mut s, c) = setup();
        let n = node(&[]);
        let peer = &c.peers["tor-a"];
        let mut cache = PeerRoutes::default();
        let mut prev = None;
        assert!(step(&mut cache, &mut prev, &s, &c, &n, peer));
        let first = Table::clone(cache.table());
        assert_eq!(first, routes(&s, &c, "ferrolb.io/ferrolb", &n, peer));
        assert!(
            !step(&mut cache, &mut prev, &s, &c, &n, peer),
            "nothing changed"
        );
        let again = Table::clone(cache.table());
        let spec = |t: &Table, p: &str| t.get(&p.parse::<IpNet>().unwrap()).unwrap().clone();
        assert!(
            Arc::ptr_eq(
                &spec(&first, "198.51.100.7/32"),
                &spec(&again, "198.51.100.7/32")
            ),
            "the same Service object: its routes are reused, not recomputed"
        );
        // An equal copy (the file source's reload) keeps its routes.
        for x in &mut s.services {
            *x = Arc::new((**x).clone());
        }
        assert!(!step(&mut cache, &mut prev, &s, &c, &n, peer));
        assert_eq!(services(&cache), 1, "web (the Local one has no routes yet)");
        assert!(Arc::ptr_eq(
            &spec(&first, "198.51.100.7/32"),
            &spec(cache.table(), "198.51.100.7/32")
        ));
        // A changed Service (a new object) is recomputed; a removed one goes. The
        // table a session holds is not changed behind its back.
        let held = cache.table().clone();
        let web = s.services.iter().position(|x| &*x.name == "web").unwrap();
        s.services[web] = Arc::new(with_ip(&s.services[web], "198.51.100.9"));
        assert!(step(&mut cache, &mut prev, &s, &c, &n, peer));
        let t = Table::clone(cache.table());
        let keys: Vec<String> = t.keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["198.51.100.9/32"]);
        assert_eq!(t, routes(&s, &c, "ferrolb.io/ferrolb", &n, peer));
        assert_eq!(*held, first, "the held table is the one before the change");
        // A ready endpoint on this node (a new EndpointSlice) brings the Local one in.
        let slice: k8s_openapi::api::discovery::v1::EndpointSlice =
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "local-1", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": "local"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.1.0.5"], "nodeName": "n1"}]
            }))
            .unwrap();
        s.endpoint_slices.push(Arc::new(slice));
        assert!(step(&mut cache, &mut prev, &s, &c, &n, peer));
        let t = Table::clone(cache.table());
        let keys: Vec<String> = t.keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["198.51.100.8/32", "198.51.100.9/32"]);
        // Other configuration: everything is recomputed.
        let mut c2 = c.clone();
        c2.bgp_advertisements.retain(|k, _| k != "a");
        assert!(step(&mut cache, &mut prev, &s, &c2, &n, peer));
        assert!(cache.table().is_empty());
        assert_eq!(services(&cache), 0);
    }

    #[test]
    fn an_aggregate_stays_while_any_service_behind_it_does() {
        let (mut s, c) = setup();
        let rack = node(&[("rack", "r1")]);
        let peer = &c.peers["tor-b"];
        let web = s
            .services
            .iter()
            .find(|x| &*x.name == "web")
            .cloned()
            .unwrap();
        let mut db = with_ip(&web, "198.51.100.20");
        db.name = "db".into();
        s.services.push(Arc::new(db));
        s.normalize();
        let mut cache = PeerRoutes::default();
        let mut prev = None;
        let keys = |t: &Table| t.keys().map(ToString::to_string).collect::<Vec<_>>();
        step(&mut cache, &mut prev, &s, &c, &rack, peer);
        assert_eq!(
            keys(cache.table()),
            [
                "198.51.100.0/24",
                "198.51.100.7/32",
                "198.51.100.20/32",
                "2001:db8:100::7/128"
            ]
        );
        s.services.retain(|x| &*x.name != "web");
        assert!(step(&mut cache, &mut prev, &s, &c, &rack, peer));
        assert_eq!(keys(cache.table()), ["198.51.100.0/24", "198.51.100.20/32"]);
        assert_eq!(
            **cache.table(),
            routes(&s, &c, "ferrolb.io/ferrolb", &rack, peer)
        );
        s.services.retain(|x| &*x.name != "db");
        assert!(step(&mut cache, &mut prev, &s, &c, &rack, peer));
        assert!(cache.table().is_empty(), "{:?}", keys(cache.table()));
    }

    #[test]
    fn a_table_changes_by_one_merge() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let a = Arc::new(RouteSpec::default());
        let b = Arc::new(RouteSpec {
            local_pref: Some(7),
            ..Default::default()
        });
        let t = Table::default().with(&[
            (net("10.0.0.2/32"), Some(a.clone())),
            (net("10.0.0.4/32"), Some(a.clone())),
        ]);
        let t2 = t.with(&[
            (net("10.0.0.1/32"), Some(b.clone())),
            (net("10.0.0.2/32"), None),
            (net("10.0.0.3/32"), None),
            (net("10.0.0.4/32"), Some(b.clone())),
            (net("10.0.0.9/32"), Some(a.clone())),
        ]);
        let got: Vec<(String, Option<u32>)> = t2
            .iter()
            .map(|(p, s)| (p.to_string(), s.local_pref))
            .collect();
        assert_eq!(
            got,
            [
                ("10.0.0.1/32".to_string(), Some(7)),
                ("10.0.0.4/32".to_string(), Some(7)),
                ("10.0.0.9/32".to_string(), None),
            ]
        );
        assert!(t2.contains_key(&net("10.0.0.9/32")) && !t2.contains_key(&net("10.0.0.2/32")));
        assert_eq!(t.len(), 2, "the table it was made from is left as it was");
    }

    proptest::proptest! {
        /// Whatever the order of changes (Services added, readdressed, copied,
        /// removed; an endpoint coming and going), the kept table is the one
        /// computed from scratch, and the Services it names are the ones with
        /// routes.
        #[test]
        fn kept_routes_equal_routes_from_scratch(
            ops in proptest::collection::vec((0u8..6, 0usize..6, 0u8..4), 1..40)
        ) {
            let (mut s, c) = setup();
            let rack = node(&[("rack", "r1")]);
            let peer = &c.peers["tor-b"];
            let slice: Arc<EndpointSlice> = Arc::new(
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": "s1-1", "namespace": "default",
                                 "labels": {"kubernetes.io/service-name": "s1"}},
                    "addressType": "IPv4",
                    "endpoints": [{"addresses": ["10.1.0.5"], "nodeName": "n1"}]
                }))
                .unwrap(),
            );
            let mut cache = PeerRoutes::default();
            let mut prev = None;
            for (op, i, ip) in ops {
                let name = format!("s{i}");
                let at = s.services.iter().position(|x| *x.name == *name);
                let addr = ["198.51.100.1", "198.51.100.2", "192.0.2.9", "2001:db8:100::1"][ip as usize];
                match (op, at) {
                    (0, None) => {
                        let mut svc = with_ip(&LbService::new("default", &name), addr);
                        svc.local = i % 2 == 1;
                        s.services.push(Arc::new(svc));
                        s.normalize();
                    }
                    (1, Some(at)) => {
                        s.services[at] = Arc::new(with_ip(&s.services[at], addr));
                    }
                    (2, Some(at)) => {
                        s.services[at] = Arc::new((*s.services[at]).clone());
                    }
                    (3, Some(at)) => {
                        s.services.remove(at);
                    }
                    (4, _) => {
                        if s.endpoint_slices.is_empty() {
                            s.endpoint_slices.push(slice.clone());
                        } else {
                            s.endpoint_slices.clear();
                        }
                    }
                    _ => {}
                }
                step(&mut cache, &mut prev, &s, &c, &rack, peer);
                let want = routes(&s, &c, "ferrolb.io/ferrolb", &rack, peer);
                proptest::prop_assert_eq!(&**cache.table(), &want);
                let named: std::collections::BTreeSet<String> =
                    cache.carried().map(|(x, _)| x.name.to_string()).collect();
                let with_routes: std::collections::BTreeSet<String> = s
                    .services
                    .iter()
                    .filter(|x| !service_routes(&s, &c, &rack, peer, x).is_empty())
                    .map(|x| x.name.to_string())
                    .collect();
                proptest::prop_assert_eq!(named, with_routes);
            }
        }
    }
}
