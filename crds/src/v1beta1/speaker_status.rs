//! Status objects of the speakers themselves (not of a Service): one `SpeakerStatus`
//! per node with the node-level findings, and one `BGPSessionState` per node and
//! peer, shaped like frr-k8s' object of that name (which MetalLB users read).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What one node's speaker found wrong (or nothing): named after the node.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "SpeakerStatus",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "SpeakerStatusStatus",
    category = "ferrolb",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(
        name = "Conflict",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"AddressConflict\")].status"
    ),
    printcolumn(
        name = "Interface",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"InterfaceUnavailable\")].status"
    ),
    printcolumn(
        name = "Strict ARP Off",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"StrictARPDisabled\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct SpeakerStatusSpec {}

/// The speaker of one node.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerStatusStatus {
    /// The node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Findings, each `True` while it holds (`AddressConflict`,
    /// `InterfaceUnavailable`, `StrictARPDisabled`, `KubeProxyConfigUnreadable`);
    /// the message says what to change. None: nothing found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// The state of one node's BGP session with one `BGPPeer`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BGPSessionState",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "BGPSessionStateStatus",
    category = "ferrolb",
    printcolumn(name = "Node", type_ = "string", json_path = ".status.node"),
    printcolumn(name = "Peer", type_ = "string", json_path = ".status.peer"),
    printcolumn(name = "VRF", type_ = "string", json_path = ".status.vrf"),
    printcolumn(name = "BGP", type_ = "string", json_path = ".status.bgpStatus"),
    printcolumn(name = "BFD", type_ = "string", json_path = ".status.bfdStatus"),
    printcolumn(
        name = "Prefixes",
        type_ = "integer",
        json_path = ".status.advertisedPrefixes",
        priority = 10
    ),
    printcolumn(
        name = "Last Error",
        type_ = "string",
        json_path = ".status.lastError",
        priority = 10
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct BGPSessionStateSpec {}

/// One session, as its node sees it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BGPSessionStateStatus {
    /// The node the session runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The `BGPPeer`'s name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The peer's address (`spec.peerAddress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_address: Option<String>,
    /// The VRF, empty for the default one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrf: Option<String>,
    /// RFC 4271 state: `Idle`, `Connect`, `Active`, `OpenSent`, `OpenConfirm` or
    /// `Established`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp_status: Option<String>,
    /// `N/A` without a BFD profile; FerroLB does not run BFD yet, so a peer with a
    /// profile shows `Unsupported`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_status: Option<String>,
    /// Prefixes the peer has from this node.
    #[serde(default)]
    pub advertised_prefixes: u32,
    /// Prefixes of a family this session does not carry, with the reason (no
    /// next hop of that family on the node's interface, or the peer did not
    /// negotiate the family).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<WithheldPrefixes>,
    /// Both sides sent the Graceful Restart capability (RFC 4724): the peer keeps
    /// this node's routes while its speaker restarts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub graceful_restart: bool,
    /// Why the session last went down or could not come up (a NOTIFICATION sent or
    /// received, the hold timer, the connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// `Established`: `True` while the session is up; when `False`, the reason is the
    /// state and the message the last error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Prefixes of one family a session does not carry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WithheldPrefixes {
    /// `IPv4` or `IPv6`.
    pub family: String,
    /// How many.
    pub prefixes: u32,
    /// Why, and what to change.
    pub reason: String,
}
