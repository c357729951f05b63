use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::ConfigStatus;

/// Names for BGP community values, usable in `BGPAdvertisement.spec.communities`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ferrolb.io",
    version = "v1beta1",
    kind = "Community",
    namespaced,
    derive = "PartialEq",
    derive = "Default",
    status = "ConfigStatus",
    category = "ferrolb",
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
pub struct CommunitySpec {
    /// The aliases. Names are unique within the object (a list-map keyed by name,
    /// which the API server enforces without a CEL cost).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub communities: Vec<CommunityAlias>,
}

/// One named community value.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommunityAlias {
    /// The alias.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// `AS:value` with two 16-bit numbers, or `large:AS:a:b` with three 32-bit numbers.
    #[schemars(length(min = 3, max = 64))]
    #[x_kube(validation = kube::core::Rule::new(
        "(self.matches('^[0-9]{1,5}:[0-9]{1,5}$') && int(self.split(':')[0]) <= 65535 && int(self.split(':')[1]) <= 65535) || (self.matches('^large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && self.split(':').slice(1, 4).all(p, int(p) <= 4294967295))"
    ).message("value must be AS:value with 16-bit numbers (65000:100) or large:AS:a:b with 32-bit numbers"))]
    pub value: String,
}
