//! `ferrolb.io/v1beta1`: MetalLB's kinds and field names, so that a MetalLB user
//! changes the apiVersion and nothing else.
//!
//! Validation a schema can express lives here as CEL (`x-kubernetes-validations`);
//! checks that need other objects (overlaps, references) live in [`crate::config`].

mod advertisement;
mod bfd;
mod community;
mod peer;
mod pool;
mod service_status;
mod speaker_status;

pub use advertisement::{
    BGPAdvertisement, BGPAdvertisementSpec, L2Advertisement, L2AdvertisementSpec,
    PreferredNodeSelector,
};
pub use bfd::{BFDProfile, BFDProfileSpec};
pub use community::{Community, CommunityAlias, CommunitySpec};
pub use peer::{BGPPeer, BGPPeerSpec, DynamicAsnMode};
pub use pool::{IPAddressPool, IPAddressPoolSpec, IPAddressPoolStatus, ServiceAllocation};
pub use service_status::{
    InterfaceStatus, ServiceBGPStatus, ServiceBGPStatusSpec, ServiceBGPStatusStatus,
    ServiceL2Status, ServiceL2StatusSpec, ServiceL2StatusStatus,
};
pub use speaker_status::{
    BGPSessionState, BGPSessionStateSpec, BGPSessionStateStatus, SpeakerStatus, SpeakerStatusSpec,
    SpeakerStatusStatus, WithheldPrefixes,
};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every FerroLB kind.
pub const GROUP: &str = "ferrolb.io";
/// API version of every FerroLB kind.
pub const VERSION: &str = "v1beta1";
/// `apiVersion` as written in YAML.
pub const API_VERSION: &str = "ferrolb.io/v1beta1";

/// Status of configuration objects that hold no state beyond "is it valid and used".
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// `Valid` (the object passed every cross-object check) and, where it applies,
    /// `InUse`. A `False` condition's message names the field to fix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
