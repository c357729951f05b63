//! From CRD objects to [`Config`]. Objects are visited oldest first (then by
//! namespace and name), so that when two conflict, the one that was there first keeps
//! working and the newcomer gets the error.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Resource;

use super::{
    BfdProfile, BgpAdvertisement, CommunityValue, Config, ConfigError, DEFAULT_BGP_PORT,
    DEFAULT_CONNECT_TIME, DEFAULT_HOLD_TIME, Family, IpRange, L2Advertisement, Peer, PeerAsn, Pool,
    Selector, ServiceAllocation,
};
use crate::v1beta1;

/// The objects a configuration is built from. The kube source passes the objects
/// of FerroLB's namespace; the file source passes everything it loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConfigInput<'a> {
    /// `IPAddressPool`s.
    pub pools: &'a [v1beta1::IPAddressPool],
    /// `L2Advertisement`s.
    pub l2_advertisements: &'a [v1beta1::L2Advertisement],
    /// `BGPAdvertisement`s.
    pub bgp_advertisements: &'a [v1beta1::BGPAdvertisement],
    /// `BGPPeer`s.
    pub peers: &'a [v1beta1::BGPPeer],
    /// `Community` objects.
    pub communities: &'a [v1beta1::Community],
    /// `BFDProfile`s.
    pub bfd_profiles: &'a [v1beta1::BFDProfile],
    /// Secrets that peers may refer to.
    pub secrets: &'a [Secret],
}

impl Config {
    /// Validates every object and returns the usable configuration with one error
    /// per problem found.
    pub fn build(input: &ConfigInput<'_>) -> (Config, Vec<ConfigError>) {
        let mut b = Builder::default();
        b.pools(input.pools);
        b.communities(input.communities);
        b.bfd_profiles(input.bfd_profiles);
        b.peers(input.peers, input.secrets);
        b.l2_advertisements(input.l2_advertisements);
        b.bgp_advertisements(input.bgp_advertisements);
        (b.config, b.errors)
    }
}

#[derive(Default)]
struct Builder {
    config: Config,
    errors: Vec<ConfigError>,
    /// Names that exist but were rejected, to explain dangling references.
    rejected: BTreeMap<&'static str, BTreeSet<String>>,
}

/// Error sink for one object.
struct Obj {
    kind: &'static str,
    namespace: String,
    name: String,
    errors: Vec<ConfigError>,
    rejected: bool,
}

impl Obj {
    fn new<K: Resource<DynamicType = ()>>(o: &K) -> Self {
        Obj {
            kind: static_kind(&K::kind(&())),
            namespace: o.meta().namespace.clone().unwrap_or_default(),
            name: o.meta().name.clone().unwrap_or_default(),
            errors: Vec::new(),
            rejected: false,
        }
    }

    /// A problem that makes the object unusable.
    fn reject(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(field.into(), message.into(), true);
        self.rejected = true;
    }

    /// A problem the object survives (the bad part is left out).
    fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(field.into(), message.into(), false);
    }

    fn push(&mut self, field: String, message: String, rejected: bool) {
        self.errors.push(ConfigError {
            kind: self.kind,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            field,
            message,
            rejected,
        });
    }
}

/// Objects of one kind, oldest first, then by namespace and name.
fn in_order<K: Resource>(objs: &[K]) -> Vec<&K> {
    let mut v: Vec<&K> = objs.iter().collect();
    v.sort_by(|a, b| {
        let key = |m: &ObjectMeta| {
            (
                m.creation_timestamp.as_ref().map(|t| t.0),
                m.namespace.clone().unwrap_or_default(),
                m.name.clone().unwrap_or_default(),
            )
        };
        key(a.meta()).cmp(&key(b.meta()))
    });
    v
}

fn selectors(o: &mut Obj, field: &str, list: &[LabelSelector]) -> Vec<Selector> {
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        match Selector::parse(s) {
            Ok(s) => out.push(s),
            Err((part, msg)) => o.reject(format!("{field}[{i}].{part}"), msg),
        }
    }
    out
}

fn duration(o: &mut Obj, field: &str, d: Option<&kube::core::Duration>) -> Option<Duration> {
    let d = d?;
    if d.is_negative() {
        o.reject(field, format!("{d} is negative"));
        return None;
    }
    Some(Duration::from(*d))
}

fn u32_in(o: &mut Obj, field: &str, v: i64, lo: u32, hi: u32) -> Option<u32> {
    match u32::try_from(v) {
        Ok(x) if (lo..=hi).contains(&x) => Some(x),
        _ => {
            o.reject(field, format!("{v} is out of range {lo}-{hi}"));
            None
        }
    }
}

/// Parses a literal community: `65000:100` or `large:1:2:3`.
pub(crate) fn parse_community(text: &str) -> Option<CommunityValue> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [a, b] => {
            let a: u16 = a.parse().ok()?;
            let b: u16 = b.parse().ok()?;
            Some(CommunityValue::Standard(
                (u32::from(a) << 16) | u32::from(b),
            ))
        }
        ["large", a, b, c] => Some(CommunityValue::Large(
            a.parse().ok()?,
            b.parse().ok()?,
            c.parse().ok()?,
        )),
        _ => None,
    }
}

fn valid_interface_name(n: &str) -> bool {
    // Linux IFNAMSIZ is 16 including the NUL.
    !n.is_empty()
        && n.len() <= 15
        && !n.contains(['/', ' ', '\t', '\n', ':'])
        && n != "."
        && n != ".."
}

impl Builder {
    /// Keeps an object's errors; returns whether it was rejected.
    fn finish(&mut self, o: Obj) -> bool {
        self.errors.extend(o.errors);
        o.rejected
    }

    fn mark_rejected(&mut self, kind: &'static str, name: &str) {
        self.rejected
            .entry(kind)
            .or_default()
            .insert(name.to_string());
    }

    fn missing(&self, kind: &'static str, name: &str) -> String {
        if self.rejected.get(kind).is_some_and(|s| s.contains(name)) {
            format!("{kind} {name:?} is invalid (see its status); it is left out until fixed")
        } else {
            format!("no {kind} named {name:?}")
        }
    }

    fn pools(&mut self, pools: &[v1beta1::IPAddressPool]) {
        for p in in_order(pools) {
            let taken: Vec<(String, IpRange)> = self
                .config
                .pools
                .values()
                .flat_map(|q| q.ranges.iter().map(move |r| (q.name.clone(), *r)))
                .collect();
            let duplicate = self
                .config
                .pools
                .contains_key(&p.meta().name.clone().unwrap_or_default());
            let mut o = Obj::new(p);
            let name = o.name.clone();
            if duplicate {
                o.reject("metadata.name", "another IPAddressPool has the same name");
            }
            if p.spec.addresses.is_empty() {
                o.reject(
                    "spec.addresses",
                    "at least one CIDR, range or address is required",
                );
            }
            let mut ranges: Vec<IpRange> = Vec::new();
            for (i, text) in p.spec.addresses.iter().enumerate() {
                let field = format!("spec.addresses[{i}]");
                let r = match IpRange::parse(text) {
                    Ok(r) => r,
                    Err(e) => {
                        o.reject(field, e.to_string());
                        continue;
                    }
                };
                if let Some(j) = ranges.iter().position(|q| q.overlaps(&r)) {
                    o.reject(
                        field,
                        format!("{text} overlaps spec.addresses[{j}] ({})", ranges[j]),
                    );
                } else if let Some((other, q)) = taken.iter().find(|(_, q)| q.overlaps(&r)) {
                    o.reject(
                        field,
                        format!("{text} overlaps {q} of IPAddressPool {other:?}: pools must not share addresses"),
                    );
                }
                ranges.push(r);
            }
            let allocation = p.spec.service_allocation.as_ref().map(|a| {
                if a.priority.is_some_and(|x| x < 0) {
                    o.reject("spec.serviceAllocation.priority", "must not be negative");
                }
                ServiceAllocation {
                    priority: a.priority,
                    namespaces: a.namespaces.iter().cloned().collect(),
                    namespace_selectors: selectors(
                        &mut o,
                        "spec.serviceAllocation.namespaceSelectors",
                        &a.namespace_selectors,
                    ),
                    service_selectors: selectors(
                        &mut o,
                        "spec.serviceAllocation.serviceSelectors",
                        &a.service_selectors,
                    ),
                }
            });
            if self.finish(o) {
                if !duplicate {
                    self.mark_rejected("IPAddressPool", &name);
                }
                continue;
            }
            let pool = Pool {
                name: name.clone(),
                ranges,
                auto_assign: p.spec.auto_assign.unwrap_or(true),
                avoid_buggy_ips: p.spec.avoid_buggy_ips.unwrap_or(false),
                allocation,
                labels: p.meta().labels.clone().unwrap_or_default(),
            };
            self.config.pools.insert(name, pool);
        }
    }

    fn communities(&mut self, objs: &[v1beta1::Community]) {
        for c in in_order(objs) {
            let mut found = Vec::new();
            let mut o = Obj::new(c);
            for (i, alias) in c.spec.communities.iter().enumerate() {
                let field = format!("spec.communities[{i}]");
                match parse_community(&alias.value) {
                    None => o.warn(
                        format!("{field}.value"),
                        format!("{:?} is neither AS:value (16-bit numbers) nor large:AS:a:b (32-bit numbers)", alias.value),
                    ),
                    Some(_) if parse_community(&alias.name).is_some() => {
                        o.warn(format!("{field}.name"), format!("{:?} looks like a community value, not a name", alias.name))
                    }
                    Some(v) => found.push((field, alias.name.clone(), v)),
                }
            }
            for (field, name, v) in found {
                match self.config.communities.entry(name) {
                    std::collections::btree_map::Entry::Occupied(e) => o.warn(
                        format!("{field}.name"),
                        format!(
                            "alias {:?} is already defined by another Community",
                            e.key()
                        ),
                    ),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(v);
                    }
                }
            }
            self.finish(o);
        }
    }

    fn bfd_profiles(&mut self, objs: &[v1beta1::BFDProfile]) {
        for b in in_order(objs) {
            let s = &b.spec;
            let mut o = Obj::new(b);
            let name = o.name.clone();
            let ms = |o: &mut Obj, f: &str, v: Option<i64>, d: u32| {
                v.map_or(Some(d), |v| u32_in(o, f, v, 10, 60_000))
            };
            let receive = ms(&mut o, "spec.receiveInterval", s.receive_interval, 300);
            let transmit = ms(&mut o, "spec.transmitInterval", s.transmit_interval, 300);
            let echo = ms(&mut o, "spec.echoInterval", s.echo_interval, 50);
            let mult = s.detect_multiplier.map_or(Some(3), |v| {
                u32_in(&mut o, "spec.detectMultiplier", v, 2, 255)
            });
            let ttl = s
                .minimum_ttl
                .map_or(Some(254), |v| u32_in(&mut o, "spec.minimumTtl", v, 1, 254));
            let duplicate = self.config.bfd_profiles.contains_key(&name);
            if duplicate {
                o.reject("metadata.name", "another BFDProfile has the same name");
            }
            let rejected = self.finish(o);
            match (receive, transmit, echo, mult, ttl) {
                (Some(r), Some(t), Some(e), Some(m), Some(ttl)) if !rejected => {
                    let profile = BfdProfile {
                        name: name.clone(),
                        receive_interval_ms: r,
                        transmit_interval_ms: t,
                        detect_multiplier: u8::try_from(m).unwrap_or(u8::MAX),
                        echo_interval_ms: e,
                        echo_mode: s.echo_mode.unwrap_or(false),
                        passive_mode: s.passive_mode.unwrap_or(false),
                        minimum_ttl: u8::try_from(ttl).unwrap_or(u8::MAX),
                    };
                    self.config.bfd_profiles.insert(name, profile);
                }
                _ => {
                    if !duplicate {
                        self.mark_rejected("BFDProfile", &name);
                    }
                }
            }
        }
    }

    fn peers(&mut self, objs: &[v1beta1::BGPPeer], secrets: &[Secret]) {
        for p in in_order(objs) {
            let s = &p.spec;
            let bfd_known = s
                .bfd_profile
                .as_ref()
                .map(|b| (b.clone(), self.config.bfd_profiles.contains_key(b)));
            let bfd_missing = s
                .bfd_profile
                .as_ref()
                .map(|b| self.missing("BFDProfile", b));
            let duplicate_name = self
                .config
                .peers
                .contains_key(&p.meta().name.clone().unwrap_or_default());
            let existing: Vec<(String, IpAddr, u16, Option<String>)> = self
                .config
                .peers
                .values()
                .map(|q| (q.name.clone(), q.address, q.port, q.vrf.clone()))
                .collect();
            let mut o = Obj::new(p);
            let name = o.name.clone();
            if duplicate_name {
                o.reject("metadata.name", "another BGPPeer has the same name");
            }
            let my_asn = u32_in(&mut o, "spec.myASN", s.my_asn, 1, u32::MAX);
            let peer_asn = match (s.peer_asn, s.dynamic_asn) {
                (Some(a), None) => {
                    u32_in(&mut o, "spec.peerASN", a, 1, u32::MAX).map(PeerAsn::Fixed)
                }
                (None, Some(v1beta1::DynamicAsnMode::Internal)) => Some(PeerAsn::Internal),
                (None, Some(v1beta1::DynamicAsnMode::External)) => Some(PeerAsn::External),
                _ => {
                    o.reject(
                        "spec.peerASN",
                        "set exactly one of spec.peerASN and spec.dynamicASN",
                    );
                    None
                }
            };
            let address = match s.peer_address.trim().parse::<IpAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    o.reject(
                        "spec.peerAddress",
                        format!("{:?} is not an IP address", s.peer_address),
                    );
                    None
                }
            };
            let source_address = match s
                .source_address
                .as_deref()
                .map(|a| a.trim().parse::<IpAddr>())
            {
                None => None,
                Some(Ok(a)) => {
                    if address.is_some_and(|p| Family::of(&p) != Family::of(&a)) {
                        o.reject(
                            "spec.sourceAddress",
                            "must be of the same IP family as spec.peerAddress",
                        );
                    }
                    Some(a)
                }
                Some(Err(_)) => {
                    o.reject(
                        "spec.sourceAddress",
                        format!(
                            "{:?} is not an IP address",
                            s.source_address.as_deref().unwrap_or_default()
                        ),
                    );
                    None
                }
            };
            let port = match s.peer_port {
                None => Some(DEFAULT_BGP_PORT),
                Some(v) => u32_in(&mut o, "spec.peerPort", i64::from(v), 1, 65_535)
                    .and_then(|v| u16::try_from(v).ok()),
            };
            let hold_time = duration(&mut o, "spec.holdTime", s.hold_time.as_ref())
                .unwrap_or(DEFAULT_HOLD_TIME);
            // RFC 4271 section 4.2: the hold time is zero or at least three seconds.
            if hold_time != Duration::ZERO
                && (hold_time < Duration::from_secs(3) || hold_time > Duration::from_secs(65_535))
            {
                o.reject(
                    "spec.holdTime",
                    format!(
                        "{}s must be 0 or between 3s and 65535s",
                        hold_time.as_secs_f64()
                    ),
                );
            }
            let keepalive_time = duration(&mut o, "spec.keepaliveTime", s.keepalive_time.as_ref());
            if let Some(k) = keepalive_time
                && hold_time != Duration::ZERO
                && k >= hold_time
            {
                o.reject("spec.keepaliveTime", "must be shorter than spec.holdTime");
            }
            let connect_time = duration(&mut o, "spec.connectTime", s.connect_time.as_ref())
                .unwrap_or(DEFAULT_CONNECT_TIME);
            if connect_time < Duration::from_secs(1) || connect_time > Duration::from_secs(65_535) {
                o.reject("spec.connectTime", "must be between 1s and 65535s");
            }
            let router_id = match s.router_id.as_deref().map(|r| r.trim().parse::<Ipv4Addr>()) {
                None => None,
                Some(Ok(r)) => Some(r),
                Some(Err(_)) => {
                    o.reject("spec.routerID", "must be an IPv4 address");
                    None
                }
            };
            let password = match (&s.password, &s.password_secret) {
                (Some(_), Some(_)) => {
                    o.reject(
                        "spec.password",
                        "spec.password and spec.passwordSecret are mutually exclusive",
                    );
                    None
                }
                (Some(pw), None) => Some(pw.clone()),
                (None, Some(r)) => secret_password(&mut o, r, secrets),
                (None, None) => None,
            };
            let ibgp = match (peer_asn, my_asn) {
                (Some(PeerAsn::Fixed(a)), Some(m)) => a == m,
                (Some(PeerAsn::Internal), _) => true,
                _ => false,
            };
            if s.ebgp_multi_hop == Some(true) && ibgp {
                o.reject(
                    "spec.ebgpMultiHop",
                    "applies to eBGP only, and this peer is iBGP (peer ASN equals myASN)",
                );
            }
            if let (Some((b, false)), Some(why)) = (&bfd_known, bfd_missing) {
                o.reject(
                    "spec.bfdProfile",
                    format!("{why}; create it or remove spec.bfdProfile ({b:?})"),
                );
            }
            if let (Some(a), Some(pt)) = (address, port)
                && let Some((other, ..)) = existing
                    .iter()
                    .find(|(_, ea, ep, ev)| *ea == a && *ep == pt && *ev == s.vrf)
            {
                o.reject(
                    "spec.peerAddress",
                    format!("BGPPeer {other:?} already peers with {a} port {pt} in the same VRF"),
                );
            }
            if let Some(v) = &s.vrf
                && !valid_interface_name(v)
            {
                o.reject("spec.vrf", format!("{v:?} is not a valid VRF device name"));
            }
            let node_selectors = selectors(&mut o, "spec.nodeSelectors", &s.node_selectors);
            let rejected = self.finish(o);
            match (my_asn, peer_asn, address, port) {
                (Some(my_asn), Some(peer_asn), Some(address), Some(port)) if !rejected => {
                    let peer = Peer {
                        name: name.clone(),
                        my_asn,
                        peer_asn,
                        address,
                        source_address,
                        port,
                        hold_time,
                        keepalive_time,
                        connect_time,
                        router_id,
                        password,
                        ebgp_multihop: s.ebgp_multi_hop.unwrap_or(false),
                        node_selectors,
                        bfd_profile: s.bfd_profile.clone(),
                        vrf: s.vrf.clone(),
                        graceful_restart: s.enable_graceful_restart.unwrap_or(false),
                        disable_mp: s.disable_mp.unwrap_or(false),
                    };
                    self.config.peers.insert(name, peer);
                }
                _ => {
                    if !duplicate_name {
                        self.mark_rejected("BGPPeer", &name);
                    }
                }
            }
        }
    }

    /// Pools named or selected by an advertisement (all pools when neither is set).
    fn advertised_pools(
        &self,
        o: &mut Obj,
        names: &[String],
        selector_list: &[LabelSelector],
    ) -> BTreeSet<String> {
        if names.is_empty() && selector_list.is_empty() {
            return self.config.pools.keys().cloned().collect();
        }
        let mut out = BTreeSet::new();
        for (i, n) in names.iter().enumerate() {
            if self.config.pools.contains_key(n) {
                out.insert(n.clone());
            } else {
                o.warn(
                    format!("spec.ipAddressPools[{i}]"),
                    self.missing("IPAddressPool", n),
                );
            }
        }
        let sels = selectors(o, "spec.ipAddressPoolSelectors", selector_list);
        for p in self.config.pools.values() {
            if sels.iter().any(|s| s.matches(&p.labels)) {
                out.insert(p.name.clone());
            }
        }
        out
    }

    fn l2_advertisements(&mut self, objs: &[v1beta1::L2Advertisement]) {
        for a in in_order(objs) {
            let s = &a.spec;
            let duplicate = self
                .config
                .l2_advertisements
                .contains_key(&a.meta().name.clone().unwrap_or_default());
            let mut o = Obj::new(a);
            if duplicate {
                o.reject("metadata.name", "another L2Advertisement has the same name");
            }
            let pools =
                self.advertised_pools(&mut o, &s.ip_address_pools, &s.ip_address_pool_selectors);
            let node_selectors = selectors(&mut o, "spec.nodeSelectors", &s.node_selectors);
            for (i, n) in s.interfaces.iter().enumerate() {
                if !valid_interface_name(n) {
                    o.reject(
                        format!("spec.interfaces[{i}]"),
                        format!("{n:?} is not a valid interface name"),
                    );
                }
            }
            let mut preferred_nodes = Vec::new();
            for (i, p) in s.preferred_node_selectors.iter().enumerate() {
                let w = u32_in(
                    &mut o,
                    &format!("spec.preferredNodeSelectors[{i}].weight"),
                    i64::from(p.weight),
                    1,
                    100,
                );
                let sel = selectors(
                    &mut o,
                    &format!("spec.preferredNodeSelectors[{i}].preference"),
                    std::slice::from_ref(&p.preference),
                );
                if let (Some(w), Some(sel)) = (w, sel.into_iter().next()) {
                    preferred_nodes.push((w, sel));
                }
            }
            let name = o.name.clone();
            let rejected = self.finish(o);
            if !rejected {
                let ad = L2Advertisement {
                    name: name.clone(),
                    pools,
                    node_selectors,
                    interfaces: s.interfaces.clone(),
                    preferred_nodes,
                };
                self.config.l2_advertisements.insert(name, ad);
            }
        }
    }

    fn bgp_advertisements(&mut self, objs: &[v1beta1::BGPAdvertisement]) {
        for a in in_order(objs) {
            let s = &a.spec;
            let duplicate = self
                .config
                .bgp_advertisements
                .contains_key(&a.meta().name.clone().unwrap_or_default());
            let mut o = Obj::new(a);
            if duplicate {
                o.reject(
                    "metadata.name",
                    "another BGPAdvertisement has the same name",
                );
            }
            let pools =
                self.advertised_pools(&mut o, &s.ip_address_pools, &s.ip_address_pool_selectors);
            let agg4 = u32_in(
                &mut o,
                "spec.aggregationLength",
                i64::from(s.aggregation_length.unwrap_or(32)),
                0,
                32,
            );
            let agg6 = u32_in(
                &mut o,
                "spec.aggregationLengthV6",
                i64::from(s.aggregation_length_v6.unwrap_or(128)),
                0,
                128,
            );
            let (agg4, agg6) = (agg4.map_or(32, |v| v as u8), agg6.map_or(128, |v| v as u8));
            for pool in pools.iter().filter_map(|p| self.config.pools.get(p)) {
                for r in &pool.ranges {
                    let (agg, field) = match r.family() {
                        Family::V4 => (agg4, "spec.aggregationLength"),
                        Family::V6 => (agg6, "spec.aggregationLengthV6"),
                    };
                    if let Some(net) = r.to_cidrs().into_iter().find(|n| n.prefix_len() > agg) {
                        o.reject(
                            field,
                            format!(
                                "/{agg} would announce addresses outside IPAddressPool {:?}: its prefix {net} is more specific than the aggregation length",
                                pool.name
                            ),
                        );
                        break;
                    }
                }
            }
            let local_pref = s
                .local_pref
                .and_then(|v| u32_in(&mut o, "spec.localPref", v, 0, u32::MAX));
            let mut communities = Vec::new();
            for (i, c) in s.communities.iter().enumerate() {
                match parse_community(c).or_else(|| self.config.communities.get(c).copied()) {
                    Some(v) if !communities.contains(&v) => communities.push(v),
                    Some(_) => {}
                    None => o.reject(
                        format!("spec.communities[{i}]"),
                        format!("{c:?} is neither a community value (65000:100, large:1:2:3) nor an alias defined in a Community object"),
                    ),
                }
            }
            let mut peers = BTreeSet::new();
            for (i, p) in s.peers.iter().enumerate() {
                if self.config.peers.contains_key(p) {
                    peers.insert(p.clone());
                } else {
                    o.warn(format!("spec.peers[{i}]"), self.missing("BGPPeer", p));
                }
            }
            if !s.peers.is_empty() && peers.is_empty() {
                o.warn(
                    "spec.peers",
                    "none of the listed peers is usable, so nothing is announced",
                );
            }
            let node_selectors = selectors(&mut o, "spec.nodeSelectors", &s.node_selectors);
            let name = o.name.clone();
            let rejected = self.finish(o);
            if !rejected {
                let ad = BgpAdvertisement {
                    name: name.clone(),
                    pools,
                    aggregation_length: agg4,
                    aggregation_length_v6: agg6,
                    local_pref,
                    communities,
                    node_selectors,
                    peers,
                };
                self.config.bgp_advertisements.insert(name, ad);
            }
        }
    }
}

fn secret_password(
    o: &mut Obj,
    r: &k8s_openapi::api::core::v1::SecretReference,
    secrets: &[Secret],
) -> Option<String> {
    let field = "spec.passwordSecret";
    let Some(name) = r.name.as_deref() else {
        o.reject(format!("{field}.name"), "is required");
        return None;
    };
    let ns = r.namespace.clone().unwrap_or_else(|| o.namespace.clone());
    let found = secrets.iter().find(|s| {
        s.metadata.name.as_deref() == Some(name)
            && s.metadata.namespace.clone().unwrap_or_default() == ns
    });
    let Some(secret) = found else {
        o.reject(field, format!("Secret {ns}/{name} not found"));
        return None;
    };
    if let Some(t) = secret.type_.as_deref()
        && t != "kubernetes.io/basic-auth"
    {
        o.reject(
            field,
            format!("Secret {ns}/{name} has type {t:?}; it must be kubernetes.io/basic-auth"),
        );
        return None;
    }
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|b| String::from_utf8(b.0.clone()));
    let from_string = secret
        .string_data
        .as_ref()
        .and_then(|d| d.get("password"))
        .cloned();
    match (from_string, from_data) {
        (Some(p), _) | (None, Some(Ok(p))) if !p.is_empty() => Some(p),
        (None, Some(Err(_))) => {
            o.reject(
                field,
                format!("Secret {ns}/{name}: key \"password\" is not UTF-8"),
            );
            None
        }
        _ => {
            o.reject(
                field,
                format!("Secret {ns}/{name} has no non-empty \"password\" key"),
            );
            None
        }
    }
}

/// Kind names are a handful of literals; keeping them `'static` keeps errors cheap
/// to clone and compare.
fn static_kind(kind: &str) -> &'static str {
    const KINDS: [&str; 6] = [
        "IPAddressPool",
        "L2Advertisement",
        "BGPAdvertisement",
        "BGPPeer",
        "Community",
        "BFDProfile",
    ];
    KINDS.into_iter().find(|k| *k == kind).unwrap_or("object")
}
