//! Why an allocation failed, in words a user can act on.

use std::fmt;
use std::net::IpAddr;

use ferrolb_crds::config::Family;

use super::request::ServiceKey;

/// Why a pool cannot serve a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolRejection {
    /// `serviceAllocation` restricts namespaces and this one is not allowed.
    Namespace(String),
    /// `serviceAllocation.serviceSelectors` does not select the Service.
    ServiceSelector,
    /// `autoAssign: false` and the Service did not ask for the pool.
    AutoAssignOff,
    /// The pool has no address of a family the Service needs.
    NoFamily(Family),
}

impl fmt::Display for PoolRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolRejection::Namespace(ns) => write!(
                f,
                "namespace {ns} is neither in spec.serviceAllocation.namespaces nor selected by spec.serviceAllocation.namespaceSelectors"
            ),
            PoolRejection::ServiceSelector => {
                f.write_str("the Service's labels do not match spec.serviceAllocation.serviceSelectors")
            }
            PoolRejection::AutoAssignOff => f.write_str(
                "autoAssign is false: ask for it with the ferrolb.io/address-pool annotation or an address from it",
            ),
            PoolRejection::NoFamily(fam) => write!(f, "it has no {fam} addresses"),
        }
    }
}

/// Why a Service got no address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// No pool exists at all.
    #[error("no IPAddressPool exists: create one")]
    NoPools,
    /// Pools exist but none may serve the Service.
    #[error("no IPAddressPool may serve this Service: {}", fmt_reasons(.0))]
    NoPool(Vec<(String, PoolRejection)>),
    /// Every usable pool is full.
    #[error("no free {families} address in IPAddressPool {}: add addresses or free some", .pools.join(", "))]
    Exhausted {
        /// The pools that were tried.
        pools: Vec<String>,
        /// e.g. `IPv4` or `IPv4 and IPv6`.
        families: String,
    },
    /// The annotation names a pool that does not exist.
    #[error("the address-pool annotation names {0:?}, which is not a valid IPAddressPool")]
    UnknownPool(String),
    /// The annotated pool refuses the Service.
    #[error(
        "IPAddressPool {pool:?} (from the address-pool annotation) cannot serve this Service: {reason}"
    )]
    PoolRefuses {
        /// The pool.
        pool: String,
        /// Why.
        reason: PoolRejection,
    },
    /// A requested address lies in no pool.
    #[error("requested address {0} is in no IPAddressPool")]
    RequestedOutsidePools(IpAddr),
    /// A requested address is in a pool the Service may not use.
    #[error(
        "requested address {ip} is in IPAddressPool {pool:?}, which cannot serve this Service: {reason}"
    )]
    RequestedPoolRefuses {
        /// The address.
        ip: IpAddr,
        /// Its pool.
        pool: String,
        /// Why.
        reason: PoolRejection,
    },
    /// A requested address is not in the annotated pool.
    #[error(
        "requested address {ip} is not in IPAddressPool {pool:?} named by the address-pool annotation"
    )]
    RequestedNotInPinnedPool {
        /// The address.
        ip: IpAddr,
        /// The annotated pool.
        pool: String,
    },
    /// Requested addresses from different pools.
    #[error("requested addresses come from different pools ({0}): ask for addresses of one pool")]
    RequestedDifferentPools(String),
    /// The requested addresses do not fit the family policy.
    #[error("requested addresses do not fit the Service's IP families: {0}")]
    RequestedFamilies(String),
    /// A requested address ends in .0 or .255 in an `avoidBuggyIPs` pool.
    #[error(
        "requested address {ip} ends in .0 or .255 and IPAddressPool {pool:?} has avoidBuggyIPs"
    )]
    RequestedBuggy {
        /// The address.
        ip: IpAddr,
        /// Its pool.
        pool: String,
    },
    /// A requested address is held by a Service it may not share with.
    #[error("requested address {ip} is in use by {holder}, and they cannot share it: {why}")]
    RequestedInUse {
        /// The address.
        ip: IpAddr,
        /// A Service holding it.
        holder: ServiceKey,
        /// Why they cannot share.
        why: String,
    },
}

fn fmt_reasons(r: &[(String, PoolRejection)]) -> String {
    r.iter()
        .map(|(p, why)| format!("pool {p:?}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl AllocError {
    /// A short CamelCase reason for conditions, Events and metric labels (bounded).
    pub fn reason(&self) -> &'static str {
        match self {
            AllocError::NoPools | AllocError::NoPool(_) => "NoPoolAvailable",
            AllocError::Exhausted { .. } => "PoolExhausted",
            AllocError::UnknownPool(_) | AllocError::PoolRefuses { .. } => "InvalidPoolAnnotation",
            AllocError::RequestedOutsidePools(_)
            | AllocError::RequestedPoolRefuses { .. }
            | AllocError::RequestedNotInPinnedPool { .. }
            | AllocError::RequestedDifferentPools(_)
            | AllocError::RequestedFamilies(_)
            | AllocError::RequestedBuggy { .. } => "InvalidRequestedIP",
            AllocError::RequestedInUse { .. } => "RequestedIPInUse",
        }
    }
}
