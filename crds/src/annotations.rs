//! Service annotations. FerroLB's own keys come first; the MetalLB keys are honoured
//! so that Services need no edit when migrating.

/// Pin the pool a Service's address comes from.
pub const ADDRESS_POOL: &str = "ferrolb.io/address-pool";
/// Requested addresses, comma separated (one per family).
pub const LOAD_BALANCER_IPS: &str = "ferrolb.io/loadBalancerIPs";
/// Services with the same key may share an address.
pub const ALLOW_SHARED_IP: &str = "ferrolb.io/allow-shared-ip";
/// Written by the controller: the pool the address came from.
pub const IP_ALLOCATED_FROM_POOL: &str = "ferrolb.io/ip-allocated-from-pool";

/// The `loadBalancerClass` FerroLB serves by default.
pub const DEFAULT_LOAD_BALANCER_CLASS: &str = "ferrolb.io/ferrolb";

/// Nodes with this label never announce (a Kubernetes well-known label).
pub const EXCLUDE_FROM_EXTERNAL_LB: &str =
    "node.kubernetes.io/exclude-from-external-load-balancers";

/// Keys read for the pool, in order of precedence.
pub const ADDRESS_POOL_KEYS: [&str; 3] = [
    ADDRESS_POOL,
    "metallb.io/address-pool",
    "metallb.universe.tf/address-pool",
];
/// Keys read for requested addresses, in order of precedence.
pub const LOAD_BALANCER_IPS_KEYS: [&str; 3] = [
    LOAD_BALANCER_IPS,
    "metallb.io/loadBalancerIPs",
    "metallb.universe.tf/loadBalancerIPs",
];
/// Keys read for the sharing key, in order of precedence.
pub const ALLOW_SHARED_IP_KEYS: [&str; 3] = [
    ALLOW_SHARED_IP,
    "metallb.io/allow-shared-ip",
    "metallb.universe.tf/allow-shared-ip",
];

/// The first of `keys` present in `annotations`, with the key that matched.
pub fn first_of<'a>(
    annotations: &'a std::collections::BTreeMap<String, String>,
    keys: &[&'static str],
) -> Option<(&'static str, &'a str)> {
    keys.iter()
        .find_map(|k| annotations.get(*k).map(|v| (*k, v.as_str())))
}
