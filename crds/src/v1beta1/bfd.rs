use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::ConfigStatus;

/// Bidirectional Forwarding Detection settings a `BGPPeer` can refer to.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "BFDProfile",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ConfigStatus",
    category = "ferrolb",
    printcolumn(name = "Passive", type_ = "boolean", json_path = ".spec.passiveMode"),
    printcolumn(
        name = "Transmit Interval",
        type_ = "integer",
        json_path = ".spec.transmitInterval"
    ),
    printcolumn(
        name = "Receive Interval",
        type_ = "integer",
        json_path = ".spec.receiveInterval"
    ),
    printcolumn(
        name = "Multiplier",
        type_ = "integer",
        json_path = ".spec.detectMultiplier"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BFDProfileSpec {
    /// Minimum interval between received control packets, in milliseconds (10-60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 10 && self <= 60000").message("spec.receiveInterval must be 10 to 60000 ms"))]
    pub receive_interval: Option<i64>,
    /// Minimum interval between sent control packets, in milliseconds (10-60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 10 && self <= 60000").message("spec.transmitInterval must be 10 to 60000 ms"))]
    pub transmit_interval: Option<i64>,
    /// Lost packets before the session is declared down (2-255).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 2 && self <= 255").message("spec.detectMultiplier must be 2 to 255"))]
    pub detect_multiplier: Option<i64>,
    /// Interval of echo packets, in milliseconds (10-60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 10 && self <= 60000").message("spec.echoInterval must be 10 to 60000 ms"))]
    pub echo_interval: Option<i64>,
    /// Send echo packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo_mode: Option<bool>,
    /// Wait for the peer to start the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive_mode: Option<bool>,
    /// Minimum TTL of incoming packets, for multihop sessions (1-254).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = kube::core::Rule::new("self >= 1 && self <= 254").message("spec.minimumTtl must be 1 to 254"))]
    pub minimum_ttl: Option<i64>,
}
