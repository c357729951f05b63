use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::ConfigStatus;

/// Announce the addresses of some pools in layer 2 mode: one node answers ARP/NDP.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "L2Advertisement",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ConfigStatus",
    shortname = "l2adv",
    category = "ferrolb",
    printcolumn(
        name = "IPAddressPools",
        type_ = "string",
        json_path = ".spec.ipAddressPools"
    ),
    printcolumn(
        name = "Pool Selectors",
        type_ = "string",
        json_path = ".spec.ipAddressPoolSelectors",
        priority = 10
    ),
    printcolumn(name = "Interfaces", type_ = "string", json_path = ".spec.interfaces"),
    printcolumn(
        name = "Node Selectors",
        type_ = "string",
        json_path = ".spec.nodeSelectors",
        priority = 10
    ),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct L2AdvertisementSpec {
    /// Pools to announce, by name. With neither this nor `ipAddressPoolSelectors`,
    /// every pool is announced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub ip_address_pools: Vec<String>,
    /// Pools to announce, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that may announce. Empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub node_selectors: Vec<LabelSelector>,
    /// Interfaces to answer on. Empty: the interfaces whose subnet holds the address,
    /// else every non-virtual interface that is up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 15)))]
    pub interfaces: Vec<String>,
    /// Nodes to prefer as the announcer: the eligible node with the highest summed
    /// weight of matching selectors wins; ties go to the rendezvous hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub preferred_node_selectors: Vec<PreferredNodeSelector>,
}

/// A weighted node preference, shaped like Kubernetes' `PreferredSchedulingTerm`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PreferredNodeSelector {
    /// 1 to 100.
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 100").message("weight must be between 1 and 100"))]
    pub weight: i32,
    /// The nodes this weight applies to.
    pub preference: LabelSelector,
}

/// Announce the addresses of some pools over BGP from every eligible node.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPAdvertisement",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ConfigStatus",
    shortname = "bgpadv",
    category = "ferrolb",
    printcolumn(
        name = "IPAddressPools",
        type_ = "string",
        json_path = ".spec.ipAddressPools"
    ),
    printcolumn(
        name = "Pool Selectors",
        type_ = "string",
        json_path = ".spec.ipAddressPoolSelectors",
        priority = 10
    ),
    printcolumn(name = "Peers", type_ = "string", json_path = ".spec.peers"),
    printcolumn(
        name = "Node Selectors",
        type_ = "string",
        json_path = ".spec.nodeSelectors",
        priority = 10
    ),
    printcolumn(
        name = "Aggregation",
        type_ = "integer",
        json_path = ".spec.aggregationLength",
        priority = 10
    ),
    printcolumn(
        name = "Valid",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Valid\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BGPAdvertisementSpec {
    /// Prefix length announced for IPv4 addresses. Default 32. Must not be shorter
    /// than any CIDR of the pools it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 32))]
    #[x_kube(validation = kube::core::Rule::new("self >= 0 && self <= 32").message("spec.aggregationLength must be between 0 and 32"))]
    pub aggregation_length: Option<i32>,
    /// Prefix length announced for IPv6 addresses. Default 128.
    #[serde(
        rename = "aggregationLengthV6",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("default" = 128))]
    #[x_kube(validation = kube::core::Rule::new("self >= 0 && self <= 128").message("spec.aggregationLengthV6 must be between 0 and 128"))]
    pub aggregation_length_v6: Option<i32>,
    /// LOCAL_PREF for iBGP sessions (ignored on eBGP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 0 && self <= 4294967295").message("spec.localPref must fit in 32 bits"))]
    pub local_pref: Option<i64>,
    /// Communities to attach: `65000:100`, `large:65000:1:2`, or the name of an alias
    /// defined in a `Community` object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 128)))]
    pub communities: Vec<String>,
    /// Pools to announce, by name. With neither this nor `ipAddressPoolSelectors`,
    /// every pool is announced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub ip_address_pools: Vec<String>,
    /// Pools to announce, by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that announce. Empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub node_selectors: Vec<LabelSelector>,
    /// Names of the `BGPPeer`s to announce to. Empty: every peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 253)))]
    pub peers: Vec<String>,
}
