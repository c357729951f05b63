//! The validated configuration: what the CRD objects (and the Secrets they refer to)
//! mean, with every cross-object rule checked. Built by [`Config::build`], which
//! returns the valid part and a list of errors, one per problem, each naming the
//! object and field. A bad object never hides the good ones.

mod addr;
mod build;
mod error;
mod selector;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub use addr::{Family, IpRange, RangeError, from_u128, to_u128};
pub use build::ConfigInput;
pub use error::ConfigError;
pub use selector::{Requirement, Selector, any_matches};

/// Every valid configuration object, keyed by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// Address pools.
    pub pools: BTreeMap<String, Pool>,
    /// Layer 2 advertisements.
    pub l2_advertisements: BTreeMap<String, L2Advertisement>,
    /// BGP advertisements.
    pub bgp_advertisements: BTreeMap<String, BgpAdvertisement>,
    /// BGP peers.
    pub peers: BTreeMap<String, Peer>,
    /// BFD profiles.
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
    /// Community aliases, resolved.
    pub communities: BTreeMap<String, CommunityValue>,
}

/// A valid address pool.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    /// Object name.
    pub name: String,
    /// The ranges, in the order written; they never overlap each other or other pools.
    pub ranges: Vec<IpRange>,
    /// May be picked for Services that did not ask for it.
    pub auto_assign: bool,
    /// Skip `.0` and `.255` IPv4 addresses.
    pub avoid_buggy_ips: bool,
    /// Which Services may use it.
    pub allocation: Option<ServiceAllocation>,
    /// The pool object's labels (for `ipAddressPoolSelectors`).
    pub labels: BTreeMap<String, String>,
}

impl Pool {
    /// Whether the pool holds `ip`.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// Families the pool has addresses of.
    pub fn families(&self) -> BTreeSet<Family> {
        self.ranges.iter().map(IpRange::family).collect()
    }
}

/// A pool's `serviceAllocation`, validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceAllocation {
    /// Lower first; `None` after every pool with a priority.
    pub priority: Option<i32>,
    /// Allowed namespaces by name (empty: no restriction by name).
    pub namespaces: BTreeSet<String>,
    /// Allowed namespaces by label (empty: no restriction by label).
    pub namespace_selectors: Vec<Selector>,
    /// Allowed Services by label (empty: no restriction).
    pub service_selectors: Vec<Selector>,
}

/// A valid L2 advertisement.
#[derive(Clone, Debug, PartialEq)]
pub struct L2Advertisement {
    /// Object name.
    pub name: String,
    /// Names of the pools it announces (existing pools only).
    pub pools: BTreeSet<String>,
    /// Nodes that may announce (empty: all).
    pub node_selectors: Vec<Selector>,
    /// Interfaces to answer on (empty: automatic).
    pub interfaces: Vec<String>,
    /// Weighted node preferences.
    pub preferred_nodes: Vec<(u32, Selector)>,
}

/// A valid BGP advertisement.
#[derive(Clone, Debug, PartialEq)]
pub struct BgpAdvertisement {
    /// Object name.
    pub name: String,
    /// Names of the pools it announces (existing pools only).
    pub pools: BTreeSet<String>,
    /// IPv4 prefix length announced.
    pub aggregation_length: u8,
    /// IPv6 prefix length announced.
    pub aggregation_length_v6: u8,
    /// LOCAL_PREF for iBGP.
    pub local_pref: Option<u32>,
    /// Communities, aliases resolved, in the order written, without duplicates.
    pub communities: Vec<CommunityValue>,
    /// Nodes that announce (empty: all).
    pub node_selectors: Vec<Selector>,
    /// Peers to announce to (empty: all); existing peers only.
    pub peers: BTreeSet<String>,
}

/// A BGP community value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CommunityValue {
    /// RFC 1997: `AS:value`, stored as `(AS << 16) | value`.
    Standard(u32),
    /// RFC 8092: `large:global:local1:local2`.
    Large(u32, u32, u32),
}

/// How the peer's ASN is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAsn {
    /// Exactly this ASN.
    Fixed(u32),
    /// Any ASN equal to ours.
    Internal,
    /// Any ASN other than ours.
    External,
}

/// A valid BGP peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    /// Object name.
    pub name: String,
    /// Our ASN.
    pub my_asn: u32,
    /// The peer's ASN.
    pub peer_asn: PeerAsn,
    /// The peer's address.
    pub address: IpAddr,
    /// Local address of the session.
    pub source_address: Option<IpAddr>,
    /// The peer's TCP port.
    pub port: u16,
    /// Proposed hold time (zero: no keepalives).
    pub hold_time: Duration,
    /// Keepalive interval; `None`: a third of the negotiated hold time.
    pub keepalive_time: Option<Duration>,
    /// First wait between connection attempts.
    pub connect_time: Duration,
    /// BGP identifier override.
    pub router_id: Option<Ipv4Addr>,
    /// TCP MD5 password, from `password` or the Secret.
    pub password: Option<String>,
    /// eBGP multihop (TTL 255).
    pub ebgp_multihop: bool,
    /// Nodes that open the session (empty: all).
    pub node_selectors: Vec<Selector>,
    /// BFD profile name (it exists).
    pub bfd_profile: Option<String>,
    /// VRF device.
    pub vrf: Option<String>,
    /// Graceful restart capability.
    pub graceful_restart: bool,
    /// One session per family instead of MP-BGP.
    pub disable_mp: bool,
}

impl Peer {
    /// Whether the session is iBGP. Dynamic peers are decided by their mode.
    pub fn is_ibgp(&self) -> bool {
        match self.peer_asn {
            PeerAsn::Fixed(asn) => asn == self.my_asn,
            PeerAsn::Internal => true,
            PeerAsn::External => false,
        }
    }
}

/// A valid BFD profile (values in milliseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdProfile {
    /// Object name.
    pub name: String,
    /// Minimum receive interval.
    pub receive_interval_ms: u32,
    /// Minimum transmit interval.
    pub transmit_interval_ms: u32,
    /// Detection multiplier.
    pub detect_multiplier: u8,
    /// Echo interval.
    pub echo_interval_ms: u32,
    /// Echo mode.
    pub echo_mode: bool,
    /// Passive mode.
    pub passive_mode: bool,
    /// Minimum TTL.
    pub minimum_ttl: u8,
}

/// Default BGP hold time (RFC 4271 section 10 suggests 90 s).
pub const DEFAULT_HOLD_TIME: Duration = Duration::from_secs(90);
/// Default initial connect retry time.
pub const DEFAULT_CONNECT_TIME: Duration = Duration::from_secs(10);
/// Default BGP port (RFC 4271 section 8.2.1).
pub const DEFAULT_BGP_PORT: u16 = 179;
