use k8s_openapi::api::core::v1::SecretReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigStatus;

/// A BGP router that the speakers on the selected nodes open a session to.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPPeer",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ConfigStatus",
    shortname = "bgppeer",
    category = "ferrolb",
    printcolumn(name = "Address", type_ = "string", json_path = ".spec.peerAddress"),
    printcolumn(name = "ASN", type_ = "integer", json_path = ".spec.peerASN"),
    printcolumn(name = "My ASN", type_ = "integer", json_path = ".spec.myASN"),
    printcolumn(
        name = "BFD Profile",
        type_ = "string",
        json_path = ".spec.bfdProfile",
        priority = 10
    ),
    printcolumn(
        name = "Multi Hops",
        type_ = "boolean",
        json_path = ".spec.ebgpMultiHop",
        priority = 10
    ),
    printcolumn(name = "VRF", type_ = "string", json_path = ".spec.vrf", priority = 10),
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
#[x_kube(
    validation = kube::core::Rule::new("has(self.peerASN) != has(self.dynamicASN)").message("set exactly one of spec.peerASN and spec.dynamicASN"),
    validation = kube::core::Rule::new("!(has(self.password) && has(self.passwordSecret))").message("spec.password and spec.passwordSecret are mutually exclusive"),
    validation = kube::core::Rule::new("!has(self.keepaliveTime) || !has(self.holdTime) || duration(self.holdTime) == duration('0s') || duration(self.keepaliveTime) < duration(self.holdTime)").message("spec.keepaliveTime must be shorter than spec.holdTime"),
    validation = kube::core::Rule::new("!has(self.sourceAddress) || ip(self.sourceAddress).family() == ip(self.peerAddress).family()").message("spec.sourceAddress must be of the same IP family as spec.peerAddress"),
    validation = kube::core::Rule::new("!(has(self.ebgpMultiHop) && self.ebgpMultiHop && ((has(self.peerASN) && self.peerASN == self.myASN) || (has(self.dynamicASN) && self.dynamicASN == 'internal')))").message("spec.ebgpMultiHop applies to eBGP only (spec.peerASN equals spec.myASN)"),
)]
#[serde(rename_all = "camelCase")]
pub struct BGPPeerSpec {
    /// Our AS number (1 to 4294967295; 4-byte ASNs are supported).
    #[serde(rename = "myASN")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 4294967295").message("spec.myASN must be 1 to 4294967295"))]
    pub my_asn: i64,
    /// The peer's AS number. Equal to myASN for iBGP.
    #[serde(rename = "peerASN", default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 4294967295").message("spec.peerASN must be 1 to 4294967295"))]
    pub peer_asn: Option<i64>,
    /// Accept whatever ASN the peer sends, as long as it is internal (= myASN) or
    /// external (!= myASN). Instead of peerASN.
    #[serde(
        rename = "dynamicASN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_asn: Option<DynamicAsnMode>,
    /// The peer's IP address.
    #[schemars(length(min = 2, max = 45))]
    #[x_kube(validation = kube::core::Rule::new("isIP(self)").message("spec.peerAddress must be an IP address"))]
    pub peer_address: String,
    /// The local address to open the session from. Default: chosen by the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 45))]
    #[x_kube(validation = kube::core::Rule::new("isIP(self)").message("spec.sourceAddress must be an IP address"))]
    pub source_address: Option<String>,
    /// The peer's TCP port. Default 179.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 179))]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 65535").message("spec.peerPort must be 1 to 65535"))]
    pub peer_port: Option<i32>,
    /// Proposed hold time (`90s`): 0 disables keepalives, otherwise at least 3s
    /// (RFC 4271 section 4.2). Default 90s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("duration(self) == duration('0s') || (duration(self) >= duration('3s') && duration(self) <= duration('65535s'))").message("spec.holdTime must be 0 or between 3s and 65535s"))]
    pub hold_time: Option<Duration>,
    /// Interval between KEEPALIVEs. Default: a third of the negotiated hold time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('0s')").message("spec.keepaliveTime must not be negative"))]
    pub keepalive_time: Option<Duration>,
    /// Initial wait between connection attempts (grows with backoff). Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("duration(self) >= duration('1s') && duration(self) <= duration('65535s')").message("spec.connectTime must be between 1s and 65535s"))]
    pub connect_time: Option<Duration>,
    /// BGP identifier to use instead of the node's address. Must be an IPv4 address.
    #[serde(rename = "routerID", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 7, max = 15))]
    #[x_kube(validation = kube::core::Rule::new("isIP(self) && ip(self).family() == 4").message("spec.routerID must be an IPv4 address"))]
    pub router_id: Option<String>,
    /// TCP MD5 password (RFC 2385). Prefer passwordSecret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 80))]
    pub password: Option<String>,
    /// A `kubernetes.io/basic-auth` Secret whose `password` key holds the TCP MD5
    /// password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretReference>,
    /// The peer is more than one hop away (eBGP only): send with TTL 255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebgp_multi_hop: Option<bool>,
    /// Nodes that open this session. Empty: every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub node_selectors: Vec<LabelSelector>,
    /// Name of a `BFDProfile` to run BFD with this peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub bfd_profile: Option<String>,
    /// The VRF (a Linux VRF device) the session runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 15))]
    pub vrf: Option<String>,
    /// Advertise the graceful restart capability (RFC 4724), with the forwarding
    /// state preserved for every family offered (kube-proxy keeps forwarding while
    /// the speaker restarts). A peer that supports it too keeps our routes (stale)
    /// when the speaker dies without a NOTIFICATION, for the restart time: 120s, at
    /// most the hold time (RFC 4724 section 3), and replaces them with what the
    /// restarted speaker sends up to its End-of-RIB. A clean stop (the speaker
    /// shuts down or the peer is removed) still withdraws at once. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_graceful_restart: Option<bool>,
    /// Carry only the family of `peerAddress` (MetalLB's meaning: one BGPPeer per
    /// family). By default (false) one session carries IPv4 and IPv6 (MP-BGP, RFC
    /// 4760): prefixes of the other family get the node's address of that family
    /// on the interface of the session as next hop, and are withheld (logged, and
    /// counted in `ferrolb_bgp_withheld_prefixes`) when there is none.
    #[serde(rename = "disableMP", default, skip_serializing_if = "Option::is_none")]
    pub disable_mp: Option<bool>,
}

/// How a dynamic peer ASN is accepted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DynamicAsnMode {
    /// The peer must use our ASN.
    Internal,
    /// The peer must use an ASN other than ours.
    External,
}
