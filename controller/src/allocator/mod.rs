//! Address allocation: pure, no Kubernetes types, no I/O.
//!
//! One ordered map from address to its use is the single source of truth; the
//! used-address interval sets, the per-Service index, the sharing-key index and the
//! per-pool counters are derived from it and only changed by [`Allocator::commit`]
//! and [`Allocator::release`]. Memory grows with addresses in use, never with pool
//! size; counters are exact `u128`s.

mod error;
mod intervals;
mod request;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_crds::config::{Family, Pool, any_matches, to_u128};

pub use error::{AllocError, PoolRejection};
pub use intervals::IntervalSet;
pub use request::{FamilyPolicy, Port, Protocol, ServiceKey, ServiceRequest, TrafficPolicy};

/// The addresses a Service holds and the pool they come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The pool (shared, so that 100k assignments do not hold 100k copies).
    pub pool: Arc<str>,
    /// One or two addresses (one per family), in the Service's family order.
    pub ips: Vec<IpAddr>,
}

/// A failed allocation. When the Service had a valid address before the change
/// that failed, it keeps it (`kept`), so that a bad edit does not cause an outage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocFailure {
    /// Why.
    pub error: AllocError,
    /// The assignment the Service keeps, if any.
    pub kept: Option<Assignment>,
}

/// Per-family figures of one pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Addresses in use, `[IPv4, IPv6]`.
    pub assigned: [u128; 2],
    /// Addresses still free (excluding `.0`/`.255` with `avoidBuggyIPs`), `[IPv4, IPv6]`.
    pub available: [u128; 2],
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    sharing_key: Option<String>,
    ports: Vec<Port>,
    traffic: TrafficPolicy,
}

/// Who uses an address. Holders are slots in `Allocator::entries`: most
/// addresses have one, so a plain vector is smaller than any map.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AddrUse {
    pool: Arc<str>,
    holders: Vec<u32>,
}

/// A Service holding addresses.
#[derive(Clone, Debug)]
struct Entry {
    key: ServiceKey,
    assignment: Assignment,
    holder: Holder,
}

/// A pool with its ranges sorted (lowest address first) and its shared name.
#[derive(Clone, Debug)]
struct PoolEntry {
    name: Arc<str>,
    pool: Pool,
    /// Whether the pool has IPv4, IPv6 addresses.
    has: [bool; 2],
}

/// Hash maps keyed by Service or pool name: foldhash is several times faster than
/// SipHash on such short keys and is randomly seeded like std's.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The allocator.
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    pools: BTreeMap<String, PoolEntry>,
    uses: BTreeMap<IpAddr, AddrUse>,
    used: [IntervalSet; 2],
    ids: HashMap<ServiceKey, u32>,
    entries: Vec<Option<Entry>>,
    free_ids: Vec<u32>,
    by_sharing_key: HashMap<String, BTreeSet<IpAddr>>,
    assigned: HashMap<Arc<str>, [u128; 2]>,
}

fn pool_entries(pools: BTreeMap<String, Pool>) -> BTreeMap<String, PoolEntry> {
    pools
        .into_iter()
        .map(|(k, mut pool)| {
            pool.ranges.sort();
            let name: Arc<str> = Arc::from(pool.name.as_str());
            let mut has = [false; 2];
            for r in &pool.ranges {
                has[fam_idx(r.family())] = true;
            }
            (k, PoolEntry { name, pool, has })
        })
        .collect()
}

fn fam_idx(f: Family) -> usize {
    match f {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// `.0` and `.255` IPv4 addresses, which some old clients drop.
fn is_buggy(pool: &Pool, ip: &IpAddr) -> bool {
    pool.avoid_buggy_ips && matches!(ip, IpAddr::V4(a) if matches!(a.octets()[3], 0 | 255))
}

/// Count of `x` in `[lo, hi]` with `x % 256 == r`.
fn count_residue(lo: u128, hi: u128, r: u128) -> u128 {
    let upto = |n: u128| if n < r { 0 } else { (n - r) / 256 + 1 };
    upto(hi) - if lo == 0 { 0 } else { upto(lo - 1) }
}

/// Why two holders of one address may not share it, if they may not.
fn share_conflict(a: &Holder, b: &Holder) -> Option<String> {
    match (&a.sharing_key, &b.sharing_key) {
        (Some(x), Some(y)) if x == y => {}
        (None, _) | (_, None) => {
            return Some("both need the same allow-shared-ip annotation".into());
        }
        (Some(x), Some(y)) => {
            return Some(format!(
                "their allow-shared-ip keys differ ({x:?} and {y:?})"
            ));
        }
    }
    if let Some(p) = a.ports.iter().find(|p| b.ports.contains(p)) {
        return Some(format!("both use port {}/{}", p.port, p.protocol));
    }
    match (&a.traffic, &b.traffic) {
        (TrafficPolicy::Cluster, TrafficPolicy::Cluster) => None,
        (TrafficPolicy::Local(x), TrafficPolicy::Local(y)) if x == y => None,
        (TrafficPolicy::Local(_), TrafficPolicy::Local(_)) => {
            Some("with externalTrafficPolicy Local both must select the same pods".into())
        }
        _ => Some("one has externalTrafficPolicy Local and the other Cluster".into()),
    }
}

fn holder_of(req: &ServiceRequest) -> Holder {
    Holder {
        sharing_key: req.sharing_key.clone(),
        ports: req.ports.clone(),
        traffic: req.traffic_policy.clone(),
    }
}

impl Allocator {
    /// An allocator over these pools, holding nothing.
    pub fn new(pools: BTreeMap<String, Pool>) -> Self {
        Allocator {
            pools: pool_entries(pools),
            ..Default::default()
        }
    }

    fn entry(&self, id: u32) -> Option<&Entry> {
        self.entries.get(id as usize).and_then(Option::as_ref)
    }

    /// The current assignment of a Service.
    pub fn assignment(&self, key: &ServiceKey) -> Option<&Assignment> {
        self.ids
            .get(key)
            .and_then(|id| self.entry(*id))
            .map(|e| &e.assignment)
    }

    /// Every Service holding an address.
    pub fn assignments(&self) -> impl Iterator<Item = (&ServiceKey, &Assignment)> {
        self.entries
            .iter()
            .flatten()
            .map(|e| (&e.key, &e.assignment))
    }

    /// Names of the pools in use.
    pub fn pool_names(&self) -> impl Iterator<Item = &str> {
        self.pools.keys().map(String::as_str)
    }

    /// The pool holding `ip`, if any.
    fn pool_of(&self, ip: &IpAddr) -> Option<&PoolEntry> {
        self.pools.values().find(|p| p.pool.contains(ip))
    }

    /// Figures of one pool; `None` for an unknown pool.
    pub fn pool_stats(&self, name: &str) -> Option<PoolStats> {
        let e = self.pools.get(name)?;
        let pool = &e.pool;
        let mut total = [0u128; 2];
        for r in &pool.ranges {
            let (lo, hi) = r.bounds();
            let mut n = r.len();
            if pool.avoid_buggy_ips && r.family() == Family::V4 {
                n -= count_residue(lo, hi, 0) + count_residue(lo, hi, 255);
            }
            total[fam_idx(r.family())] += n;
        }
        let assigned = self.assigned.get(name).copied().unwrap_or_default();
        Some(PoolStats {
            assigned,
            available: [
                total[0].saturating_sub(assigned[0]),
                total[1].saturating_sub(assigned[1]),
            ],
        })
    }

    /// Number of used-address runs (memory grows with this, not pool size).
    pub fn used_runs(&self) -> usize {
        self.used.iter().map(IntervalSet::runs).sum()
    }

    /// Replaces the pools. Services whose addresses are no longer valid (pool gone,
    /// shrunk, or now `avoidBuggyIPs`) lose them; their keys are returned so that the
    /// caller re-allocates them and tells the user.
    pub fn set_pools(&mut self, pools: BTreeMap<String, Pool>) -> Vec<ServiceKey> {
        self.pools = pool_entries(pools);
        let mut evicted = BTreeSet::new();
        for (ip, u) in &self.uses {
            let ok = self
                .pool_of(ip)
                .is_some_and(|p| p.name == u.pool && !is_buggy(&p.pool, ip));
            if !ok {
                evicted.extend(
                    u.holders
                        .iter()
                        .filter_map(|id| self.entry(*id))
                        .map(|e| e.key.clone()),
                );
            }
        }
        for k in &evicted {
            self.release(k);
        }
        evicted.into_iter().collect()
    }

    /// Whether `pool` may serve the Service, ignoring `autoAssign`.
    pub fn eligibility(pool: &Pool, req: &ServiceRequest) -> Result<(), PoolRejection> {
        let Some(a) = &pool.allocation else {
            return Ok(());
        };
        let restricts_ns = !a.namespaces.is_empty() || !a.namespace_selectors.is_empty();
        let ns_ok = a.namespaces.contains(&*req.key.namespace)
            || (!a.namespace_selectors.is_empty()
                && any_matches(&a.namespace_selectors, &req.namespace_labels));
        if restricts_ns && !ns_ok {
            return Err(PoolRejection::Namespace(req.key.namespace.to_string()));
        }
        if !any_matches(&a.service_selectors, &req.labels) {
            return Err(PoolRejection::ServiceSelector);
        }
        Ok(())
    }

    /// Pools tried for a Service that asked for none, in order: those whose
    /// `serviceAllocation` selects it (by priority, unprioritised last), then the
    /// unrestricted ones; ties by name. Also returns why the others were skipped.
    fn candidates(&self, req: &ServiceRequest) -> (Vec<&PoolEntry>, Vec<(String, PoolRejection)>) {
        let mut ok: Vec<&PoolEntry> = Vec::new();
        let mut rejected = Vec::new();
        for p in self.pools.values() {
            if !p.pool.auto_assign {
                rejected.push((p.pool.name.clone(), PoolRejection::AutoAssignOff));
            } else if let Err(why) = Self::eligibility(&p.pool, req) {
                rejected.push((p.pool.name.clone(), why));
            } else {
                ok.push(p);
            }
        }
        // Pools come sorted by name from the map, and the sort is stable.
        ok.sort_by_key(|p| match &p.pool.allocation {
            Some(a) => (0, a.priority.unwrap_or(i32::MAX)),
            None => (1, 0),
        });
        (ok, rejected)
    }

    /// Whether the Service may hold `ip` beside its current holders.
    fn shareable(&self, ip: &IpAddr, req: &ServiceRequest) -> Result<(), (ServiceKey, String)> {
        let Some(u) = self.uses.get(ip) else {
            return Ok(());
        };
        let me = holder_of(req);
        for e in u.holders.iter().filter_map(|id| self.entry(*id)) {
            if e.key == req.key {
                continue;
            }
            if let Some(why) = share_conflict(&me, &e.holder) {
                return Err((e.key.clone(), why));
            }
        }
        Ok(())
    }

    fn usable(&self, pool: &Pool, ip: &IpAddr, req: &ServiceRequest) -> bool {
        pool.contains(ip) && !is_buggy(pool, ip) && self.shareable(ip, req).is_ok()
    }

    /// One address of `fam` from `pool`: a preferred one if it still fits, else one
    /// already used under the same sharing key, else the lowest free one.
    fn pick(
        &self,
        pool: &Pool,
        fam: Family,
        req: &ServiceRequest,
        prefer: &[IpAddr],
    ) -> Option<IpAddr> {
        if let Some(ip) = prefer
            .iter()
            .find(|ip| Family::of(ip) == fam && self.usable(pool, ip, req))
        {
            return Some(*ip);
        }
        if let Some(key) = &req.sharing_key
            && let Some(ips) = self.by_sharing_key.get(key)
            && let Some(ip) = ips
                .iter()
                .find(|ip| Family::of(ip) == fam && self.usable(pool, ip, req))
        {
            return Some(*ip);
        }
        let used = &self.used[fam_idx(fam)];
        let skip_buggy = pool.avoid_buggy_ips && fam == Family::V4;
        pool.ranges
            .iter()
            .filter(|r| r.family() == fam)
            .find_map(|r| {
                let (lo, hi) = r.bounds();
                used.lowest_free(lo, hi, |x| !(skip_buggy && matches!(x % 256, 0 | 255)))
                    .map(|x| ferrolb_crds::config::from_u128(fam, x))
            })
    }

    /// Picks addresses for a Service that asked for none.
    fn choose_free(
        &self,
        req: &ServiceRequest,
        prefer: &[IpAddr],
    ) -> Result<Assignment, AllocError> {
        if self.pools.is_empty() {
            return Err(AllocError::NoPools);
        }
        let (mut pools, mut rejected): (Vec<&PoolEntry>, _) = match &req.pool {
            Some(name) => {
                let pool = self
                    .pools
                    .get(name)
                    .ok_or_else(|| AllocError::UnknownPool(name.clone()))?;
                Self::eligibility(&pool.pool, req).map_err(|reason| AllocError::PoolRefuses {
                    pool: name.clone(),
                    reason,
                })?;
                (vec![pool], vec![])
            }
            None => self.candidates(req),
        };
        // Stickiness: the pool of an address the Service had is tried first.
        if !prefer.is_empty() {
            pools.sort_by_key(|p| !prefer.iter().any(|ip| p.pool.contains(ip)));
        }
        let first = req.first_family();
        let second = match first {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        };
        let mut full: BTreeSet<String> = BTreeSet::new();
        let mut lacking: Vec<(String, PoolRejection)> = Vec::new();
        // Pools are tried in order; each gives what it can: a PreferDualStack
        // Service takes one family from a higher-priority pool rather than two
        // from a lower one.
        for p in &pools {
            let fams: Vec<Family> = match req.family_policy {
                FamilyPolicy::SingleStack => vec![first],
                FamilyPolicy::RequireDualStack => vec![first, second],
                FamilyPolicy::PreferDualStack => [first, second]
                    .into_iter()
                    .filter(|f| p.has[fam_idx(*f)])
                    .collect(),
            };
            if let Some(f) = fams
                .iter()
                .find(|f| !p.has[fam_idx(**f)])
                .or(fams.is_empty().then_some(&first))
            {
                lacking.push((p.pool.name.clone(), PoolRejection::NoFamily(*f)));
                continue;
            }
            let picked: Vec<IpAddr> = fams
                .iter()
                .filter_map(|f| self.pick(&p.pool, *f, req, prefer))
                .collect();
            let enough = match req.family_policy {
                FamilyPolicy::PreferDualStack => !picked.is_empty(),
                _ => picked.len() == fams.len(),
            };
            if enough {
                return Ok(Assignment {
                    pool: p.name.clone(),
                    ips: picked,
                });
            }
            full.insert(p.pool.name.clone());
        }
        if !full.is_empty() {
            let families = match req.family_policy {
                FamilyPolicy::SingleStack => first.to_string(),
                FamilyPolicy::RequireDualStack => format!("{first} and {second}"),
                FamilyPolicy::PreferDualStack => format!("{first} or {second}"),
            };
            return Err(AllocError::Exhausted {
                pools: full.into_iter().collect(),
                families,
            });
        }
        rejected.extend(lacking);
        if let (Some(name), [(_, reason)]) = (&req.pool, rejected.as_slice()) {
            return Err(AllocError::PoolRefuses {
                pool: name.clone(),
                reason: reason.clone(),
            });
        }
        Err(AllocError::NoPool(rejected))
    }

    /// Checks the addresses a Service asked for.
    fn choose_requested(&self, req: &ServiceRequest) -> Result<Assignment, AllocError> {
        let mut ips: Vec<IpAddr> = Vec::new();
        for ip in &req.requested {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        let fams: BTreeSet<Family> = ips.iter().map(Family::of).collect();
        if fams.len() != ips.len() {
            return Err(AllocError::RequestedFamilies(
                "at most one address per family".into(),
            ));
        }
        let order = req.family_order();
        match req.family_policy {
            FamilyPolicy::SingleStack if ips.len() > 1 => {
                return Err(AllocError::RequestedFamilies(
                    "a SingleStack Service takes one address".into(),
                ));
            }
            FamilyPolicy::SingleStack if !req.families.is_empty() && !fams.contains(&order[0]) => {
                return Err(AllocError::RequestedFamilies(format!(
                    "the Service is {} only",
                    order[0]
                )));
            }
            FamilyPolicy::RequireDualStack if ips.len() != 2 => {
                return Err(AllocError::RequestedFamilies(
                    "a RequireDualStack Service needs one IPv4 and one IPv6 address".into(),
                ));
            }
            _ => {}
        }
        let mut chosen: Option<&PoolEntry> = None;
        for ip in &ips {
            let p = self
                .pool_of(ip)
                .ok_or(AllocError::RequestedOutsidePools(*ip))?;
            let name = &p.pool.name;
            if let Some(pinned) = &req.pool
                && pinned != name
            {
                return Err(AllocError::RequestedNotInPinnedPool {
                    ip: *ip,
                    pool: pinned.clone(),
                });
            }
            Self::eligibility(&p.pool, req).map_err(|reason| AllocError::RequestedPoolRefuses {
                ip: *ip,
                pool: name.clone(),
                reason,
            })?;
            if is_buggy(&p.pool, ip) {
                return Err(AllocError::RequestedBuggy {
                    ip: *ip,
                    pool: name.clone(),
                });
            }
            if let Err((holder, why)) = self.shareable(ip, req) {
                return Err(AllocError::RequestedInUse {
                    ip: *ip,
                    holder,
                    why,
                });
            }
            match chosen {
                Some(c) if c.name != p.name => {
                    return Err(AllocError::RequestedDifferentPools(format!(
                        "{}, {name}",
                        c.name
                    )));
                }
                _ => chosen = Some(p),
            }
        }
        let pool = chosen
            .map(|p| p.name.clone())
            .unwrap_or_else(|| Arc::from(""));
        ips.sort_by_key(|ip| {
            order
                .iter()
                .position(|f| *f == Family::of(ip))
                .unwrap_or(usize::MAX)
        });
        Ok(Assignment { pool, ips })
    }

    /// Whether the Service's current assignment still satisfies its request, the
    /// pools and its co-holders.
    fn still_valid(&self, req: &ServiceRequest, cur: &Assignment) -> bool {
        let Some(p) = self.pools.get(&*cur.pool) else {
            return false;
        };
        let pool = &p.pool;
        let fams: BTreeSet<Family> = cur.ips.iter().map(Family::of).collect();
        if !req.requested.is_empty() {
            let want: BTreeSet<&IpAddr> = req.requested.iter().collect();
            if want != cur.ips.iter().collect::<BTreeSet<_>>() {
                return false;
            }
        } else {
            if req.pool.as_ref().is_some_and(|p| **p != *cur.pool)
                || (req.pool.is_none() && !pool.auto_assign)
            {
                return false;
            }
            let order = req.family_order();
            let fams_ok = match req.family_policy {
                FamilyPolicy::SingleStack => cur.ips.len() == 1 && fams.contains(&order[0]),
                FamilyPolicy::RequireDualStack => fams.len() == 2,
                // One family is fine (the other may be full); `allocate` adds the
                // second when it can, without touching the first.
                FamilyPolicy::PreferDualStack => !fams.is_empty(),
            };
            if !fams_ok {
                return false;
            }
        }
        Self::eligibility(pool, req).is_ok() && cur.ips.iter().all(|ip| self.usable(pool, ip, req))
    }

    fn commit(&mut self, req: &ServiceRequest, a: &Assignment) {
        let id = match self.free_ids.pop() {
            Some(id) => id,
            None => {
                self.entries.push(None);
                // More than 4 billion Services cannot exist in one cluster.
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        for ip in &a.ips {
            let fam = Family::of(ip);
            let u = self.uses.entry(*ip).or_insert_with(|| AddrUse {
                pool: a.pool.clone(),
                holders: Vec::with_capacity(1),
            });
            if u.holders.is_empty() {
                self.used[fam_idx(fam)].insert(to_u128(ip));
                self.assigned.entry(a.pool.clone()).or_default()[fam_idx(fam)] += 1;
            }
            u.holders.push(id);
            if let Some(k) = &req.sharing_key {
                self.by_sharing_key
                    .entry(k.clone())
                    .or_default()
                    .insert(*ip);
            }
        }
        if let Some(slot) = self.entries.get_mut(id as usize) {
            *slot = Some(Entry {
                key: req.key.clone(),
                assignment: a.clone(),
                holder: holder_of(req),
            });
        }
        self.ids.insert(req.key.clone(), id);
    }

    /// Frees whatever the Service holds (deleted, no longer a LoadBalancer, not our
    /// class). Returns what it held.
    pub fn release(&mut self, key: &ServiceKey) -> Option<Assignment> {
        let id = self.ids.remove(key)?;
        let e = self.entries.get_mut(id as usize)?.take()?;
        self.free_ids.push(id);
        for ip in &e.assignment.ips {
            let Some(u) = self.uses.get_mut(ip) else {
                continue;
            };
            u.holders.retain(|h| *h != id);
            let remaining: Vec<u32> = u.holders.clone();
            if let Some(k) = &e.holder.sharing_key {
                let still_keyed = remaining
                    .iter()
                    .filter_map(|h| self.entries.get(*h as usize).and_then(Option::as_ref))
                    .any(|o| o.holder.sharing_key.as_ref() == Some(k));
                if !still_keyed && let Some(set) = self.by_sharing_key.get_mut(k) {
                    set.remove(ip);
                    if set.is_empty() {
                        self.by_sharing_key.remove(k);
                    }
                }
            }
            if remaining.is_empty() {
                let pool = e.assignment.pool.clone();
                self.uses.remove(ip);
                let fam = Family::of(ip);
                self.used[fam_idx(fam)].remove(to_u128(ip));
                if let Some(c) = self.assigned.get_mut(&pool) {
                    c[fam_idx(fam)] -= 1;
                }
            }
        }
        Some(e.assignment)
    }

    /// Takes exactly `ips` for the Service if they are still valid for it; used at
    /// start-up, before any new allocation, with the addresses in Service status.
    /// Returns whether they were taken.
    pub fn adopt(&mut self, req: &ServiceRequest, ips: &[IpAddr]) -> bool {
        let Some(first) = ips.first() else {
            return false;
        };
        let Some(pool) = self.pool_of(first).map(|p| p.name.clone()) else {
            return false;
        };
        let a = Assignment {
            pool,
            ips: ips.to_vec(),
        };
        if self.ids.contains_key(&req.key) || !self.still_valid(req, &a) {
            return false;
        }
        self.commit(req, &a);
        true
    }

    /// Gives the Service addresses, keeping its current ones while they stay valid.
    /// `hint` are addresses it had before (e.g. in its status), preferred when a new
    /// choice has to be made, so that addresses move only when they must.
    pub fn allocate(
        &mut self,
        req: &ServiceRequest,
        hint: &[IpAddr],
    ) -> Result<Assignment, AllocFailure> {
        let old = self
            .ids
            .get(&req.key)
            .and_then(|id| self.entry(*id))
            .cloned();
        if let Some(cur) = old.as_ref().map(|e| &e.assignment)
            && self.still_valid(req, cur)
        {
            let next = self.with_second_family(req, cur);
            if next != *cur || old.as_ref().is_some_and(|e| e.holder != holder_of(req)) {
                // Refresh what co-holders see (ports, traffic policy may have changed).
                self.release(&req.key);
                self.commit(req, &next);
            }
            return Ok(next);
        }
        // Free the old addresses so that they can be chosen again.
        if old.is_some() {
            self.release(&req.key);
        }
        let mut prefer: Vec<IpAddr> = old
            .iter()
            .flat_map(|e| e.assignment.ips.iter().copied())
            .collect();
        prefer.extend(hint.iter().copied());
        let chosen = if req.requested.is_empty() {
            self.choose_free(req, &prefer)
        } else {
            self.choose_requested(req)
        };
        match chosen {
            Ok(a) => {
                self.commit(req, &a);
                Ok(a)
            }
            Err(error) => {
                // Keep the old addresses if nothing but the request made them invalid.
                let kept = match old {
                    Some(e) if self.structurally_valid(&e.assignment) && self.shareable_as(&e) => {
                        let prev = ServiceRequest {
                            key: e.key.clone(),
                            sharing_key: e.holder.sharing_key.clone(),
                            ports: e.holder.ports.clone(),
                            traffic_policy: e.holder.traffic.clone(),
                            ..Default::default()
                        };
                        self.commit(&prev, &e.assignment);
                        Some(e.assignment)
                    }
                    _ => None,
                };
                Err(AllocFailure { error, kept })
            }
        }
    }

    /// A PreferDualStack Service with one address gains the other family when its
    /// pool has a free one; the existing address never changes.
    fn with_second_family(&self, req: &ServiceRequest, cur: &Assignment) -> Assignment {
        let mut next = cur.clone();
        if req.family_policy != FamilyPolicy::PreferDualStack || !req.requested.is_empty() {
            return next;
        }
        let ([only], Some(p)) = (cur.ips.as_slice(), self.pools.get(&*cur.pool)) else {
            return next;
        };
        let other = match Family::of(only) {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        };
        if let Some(extra) = self.pick(&p.pool, other, req, &[]) {
            next.ips.push(extra);
            let order = req.family_order();
            next.ips.sort_by_key(|ip| {
                order
                    .iter()
                    .position(|f| *f == Family::of(ip))
                    .unwrap_or(usize::MAX)
            });
        }
        next
    }

    fn structurally_valid(&self, a: &Assignment) -> bool {
        self.pools.get(&*a.pool).is_some_and(|p| {
            a.ips
                .iter()
                .all(|ip| p.pool.contains(ip) && !is_buggy(&p.pool, ip))
        })
    }

    fn shareable_as(&self, e: &Entry) -> bool {
        let req = ServiceRequest {
            key: e.key.clone(),
            sharing_key: e.holder.sharing_key.clone(),
            ports: e.holder.ports.clone(),
            traffic_policy: e.holder.traffic.clone(),
            ..Default::default()
        };
        e.assignment
            .ips
            .iter()
            .all(|ip| self.shareable(ip, &req).is_ok())
    }
}

#[cfg(test)]
mod tests;
