use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A set of addresses FerroLB may hand to `type: LoadBalancer` Services.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "IPAddressPool",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "IPAddressPoolStatus",
    shortname = "ippool",
    category = "ferrolb",
    printcolumn(
        name = "Auto Assign",
        type_ = "boolean",
        json_path = ".spec.autoAssign"
    ),
    printcolumn(
        name = "Avoid Buggy IPs",
        type_ = "boolean",
        json_path = ".spec.avoidBuggyIPs"
    ),
    printcolumn(name = "Addresses", type_ = "string", json_path = ".spec.addresses"),
    printcolumn(
        name = "IPv4 Used",
        type_ = "string",
        json_path = ".status.assignedIPv4"
    ),
    printcolumn(
        name = "IPv4 Free",
        type_ = "string",
        json_path = ".status.availableIPv4"
    ),
    printcolumn(
        name = "IPv6 Used",
        type_ = "string",
        json_path = ".status.assignedIPv6"
    ),
    printcolumn(
        name = "IPv6 Free",
        type_ = "string",
        json_path = ".status.availableIPv6"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolSpec {
    /// Address ranges: CIDRs (`192.168.10.0/24`, `fc00:f853:ccd:e799::/124`), ranges
    /// (`192.168.9.1-192.168.9.5`) or single addresses. IPv4 and IPv6 may be mixed.
    #[schemars(length(min = 1, max = 256), inner(length(min = 1, max = 100)))]
    #[x_kube(validation = kube::core::Rule::new(
        "self.all(a, isCIDR(a) || isIP(a) || (a.split('-').size() == 2 && isIP(a.split('-')[0].trim()) && isIP(a.split('-')[1].trim()) && ip(a.split('-')[0].trim()).family() == ip(a.split('-')[1].trim()).family()))"
    ).message("each entry of spec.addresses must be a CIDR (10.0.0.0/24), a range of one family (10.0.0.1-10.0.0.9) or a single address"))]
    pub addresses: Vec<String>,

    /// Whether FerroLB may pick addresses from this pool for Services that did not ask
    /// for it by name or address. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub auto_assign: Option<bool>,

    /// Skip addresses ending in `.0` and `.255` (some clients drop them). Default false.
    #[serde(
        rename = "avoidBuggyIPs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("default" = false))]
    pub avoid_buggy_ips: Option<bool>,

    /// Restrict which Services may get addresses from this pool, and in which order
    /// pools are tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_allocation: Option<ServiceAllocation>,
}

/// Which Services a pool serves. A Service must match every list that is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAllocation {
    /// Lower is tried first. Pools without a priority come after all that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0").message("spec.serviceAllocation.priority must not be negative"))]
    pub priority: Option<i32>,
    /// Namespaces whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 63)))]
    pub namespaces: Vec<String>,
    /// Label selectors on Namespaces whose Services may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub namespace_selectors: Vec<LabelSelector>,
    /// Label selectors on the Services that may use the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub service_selectors: Vec<LabelSelector>,
}

/// Pool usage. Counts are decimal strings so that they are exact for any pool size
/// (an IPv6 /64 holds 2^64 addresses, more than a JSON integer can carry).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IPAddressPoolStatus {
    /// IPv4 addresses in use by Services.
    #[serde(
        rename = "assignedIPv4",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub assigned_ipv4: Option<String>,
    /// IPv4 addresses still free (after `avoidBuggyIPs`).
    #[serde(
        rename = "availableIPv4",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub available_ipv4: Option<String>,
    /// IPv6 addresses in use by Services.
    #[serde(
        rename = "assignedIPv6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub assigned_ipv6: Option<String>,
    /// IPv6 addresses still free.
    #[serde(
        rename = "availableIPv6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub available_ipv6: Option<String>,
    /// `Ready` (valid and used for allocation) and `Exhausted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
