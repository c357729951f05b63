//! What the allocator is asked: the parts of a Service that decide its address,
//! as plain data (no Kubernetes types), so that the rules can be tested alone.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use ferrolb_crds::config::Family;

/// `namespace/name` of a Service. Shared strings: the allocator keeps several
/// copies of each key, and cloning one must not allocate.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
}

impl ServiceKey {
    /// A key.
    pub fn new(namespace: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        ServiceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `spec.ipFamilyPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FamilyPolicy {
    /// One address, of the first family in `ipFamilies`.
    #[default]
    SingleStack,
    /// Both families when a pool has both, else one.
    PreferDualStack,
    /// One address of each family, or none at all.
    RequireDualStack,
}

/// A transport protocol of a Service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Protocol {
    /// TCP (the Kubernetes default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// From the Kubernetes spelling; empty means TCP, the Kubernetes default (the
    /// API server admits nothing else).
    pub fn parse(s: &str) -> Self {
        match s {
            "UDP" => Protocol::Udp,
            "SCTP" => Protocol::Sctp,
            _ => Protocol::Tcp,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// A port the Service exposes, for the sharing rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Port {
    /// Protocol.
    pub protocol: Protocol,
    /// Port number.
    pub port: i32,
}

/// `spec.externalTrafficPolicy`, with what the sharing rules compare.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    /// Any node may receive the traffic.
    #[default]
    Cluster,
    /// Only nodes with a local endpoint; carries the pod selector.
    Local(BTreeMap<String, String>),
}

/// Everything about a Service that its address depends on.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ServiceRequest {
    /// Which Service.
    pub key: ServiceKey,
    /// Dual-stack policy.
    pub family_policy: FamilyPolicy,
    /// `spec.ipFamilies` (empty: IPv4).
    pub families: Vec<Family>,
    /// Addresses asked for (spec or annotation); empty: any.
    pub requested: Vec<IpAddr>,
    /// Pool asked for by annotation.
    pub pool: Option<String>,
    /// Sharing key (`allow-shared-ip`).
    pub sharing_key: Option<String>,
    /// Exposed ports.
    pub ports: Vec<Port>,
    /// Traffic policy.
    pub traffic_policy: TrafficPolicy,
    /// The Service's labels (for `serviceSelectors`).
    pub labels: BTreeMap<String, String>,
    /// The namespace's labels (for `namespaceSelectors`).
    pub namespace_labels: BTreeMap<String, String>,
}

impl ServiceRequest {
    /// The preferred family: the first of `ipFamilies`, IPv4 when unset.
    pub fn first_family(&self) -> Family {
        self.families.first().copied().unwrap_or(Family::V4)
    }

    /// The families in preference order (`ipFamilies`, IPv4 when unset).
    pub fn family_order(&self) -> Vec<Family> {
        let mut out: Vec<Family> = Vec::new();
        for f in &self.families {
            if !out.contains(f) {
                out.push(*f);
            }
        }
        if out.is_empty() {
            out.push(Family::V4);
        }
        out
    }
}
