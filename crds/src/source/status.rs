//! What the file source writes under `DIR/status/`: the same facts the kube source
//! writes to the API server, as YAML (and JSON lines for Events).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::LoadBalancerStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};

use crate::v1beta1::{
    BGPSessionStateStatus, IPAddressPoolStatus, ServiceBGPStatusStatus, ServiceL2StatusStatus,
};

/// `status/services.yaml`: one entry per Service that has (or had) an address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicesStatusFile {
    /// The Services, sorted by namespace and name.
    #[serde(default)]
    pub services: Vec<ServiceStatusRecord>,
}

/// A Service's address as the controller assigned it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatusRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Annotations the controller owns (`ferrolb.io/ip-allocated-from-pool`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `status.loadBalancer`.
    #[serde(default)]
    pub load_balancer: LoadBalancerStatus,
    /// Service conditions the controller owns (e.g. why allocation failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// `status/pools.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolsStatusFile {
    /// One entry per pool object.
    #[serde(default)]
    pub pools: Vec<PoolStatusRecord>,
}

/// One pool's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatusRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Status as the kube source would write it.
    pub status: IPAddressPoolStatus,
}

/// `status/speaker-<node>.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerStatusFile {
    /// The node the speaker runs on.
    pub node: String,
    /// Services this node announces in layer 2 mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l2: Vec<ServiceL2StatusStatus>,
    /// Services this node announces over BGP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bgp: Vec<ServiceBGPStatusStatus>,
    /// Speaker-level findings (`SpeakerStatus` conditions in kube mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// One entry per BGP session of this node (`BGPSessionState` objects in kube
    /// mode), sorted by peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<BGPSessionStateStatus>,
}

/// One line of `status/events.jsonl`, shaped like a Kubernetes Event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// CamelCase reason, e.g. `IPAllocated`.
    pub reason: String,
    /// What happened, for a person.
    pub message: String,
    /// The object the event is about.
    pub involved_object: ObjectRef,
    /// Who reported it, e.g. `ferrolb-controller`.
    pub reporting_component: String,
    /// RFC 3339 time.
    pub event_time: String,
}

/// A reference to an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Kind.
    pub kind: String,
    /// Namespace, empty for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    pub name: String,
}
