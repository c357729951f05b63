//! From a Kubernetes Service to the allocator's request: the annotations (FerroLB's
//! and MetalLB's), the class, the families, the ports and the traffic policy.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_crds::annotations::{
    ADDRESS_POOL_KEYS, ALLOW_SHARED_IP_KEYS, LOAD_BALANCER_IPS_KEYS, first_of,
};
use ferrolb_crds::config::Family;
use k8s_openapi::api::core::v1::Service;

use crate::allocator::{FamilyPolicy, Port, Protocol, ServiceKey, ServiceRequest, TrafficPolicy};

/// A Service whose annotations or spec cannot be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ServiceError {
    /// The annotation or spec field, e.g. `metadata.annotations[ferrolb.io/loadBalancerIPs]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The key of a Service.
pub fn key(svc: &Service) -> ServiceKey {
    ServiceKey::new(
        svc.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        svc.metadata.name.clone().unwrap_or_default(),
    )
}

pub use ferrolb_crds::services::{ingress_ips as status_ips, is_ours};

fn family(s: &str) -> Option<Family> {
    match s {
        "IPv4" => Some(Family::V4),
        "IPv6" => Some(Family::V6),
        _ => None,
    }
}

/// The field of `svc` an allocation failure with `reason` (see
/// `AllocError::reason`) is about, for messages that name it: the requested-address
/// annotation or `spec.loadBalancerIP`, or the address-pool annotation. `None` when
/// the failure is not about one field of the Service (e.g. an exhausted pool).
pub fn field_of(svc: &Service, reason: &str) -> Option<String> {
    let empty = BTreeMap::new();
    let ann = svc.metadata.annotations.as_ref().unwrap_or(&empty);
    match reason {
        "InvalidRequestedIP" | "RequestedIPInUse" => {
            Some(first_of(ann, &LOAD_BALANCER_IPS_KEYS).map_or_else(
                || "spec.loadBalancerIP".into(),
                |(k, _)| format!("metadata.annotations[{k}]"),
            ))
        }
        "InvalidPoolAnnotation" => {
            first_of(ann, &ADDRESS_POOL_KEYS).map(|(k, _)| format!("metadata.annotations[{k}]"))
        }
        _ => None,
    }
}

/// Builds the allocator request. `namespace_labels` are the labels of the
/// Service's namespace.
pub fn request(
    svc: &Service,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<ServiceRequest, ServiceError> {
    let empty = BTreeMap::new();
    let ann = svc.metadata.annotations.as_ref().unwrap_or(&empty);
    let spec = svc.spec.clone().unwrap_or_default();
    let mut requested = Vec::new();
    if let Some((k, v)) = first_of(ann, &LOAD_BALANCER_IPS_KEYS) {
        for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let ip: IpAddr = part.parse().map_err(|_| ServiceError {
                field: format!("metadata.annotations[{k}]"),
                message: format!("{part:?} is not an IP address"),
            })?;
            requested.push(ip);
        }
        if spec
            .load_balancer_ip
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            return Err(ServiceError {
                field: "spec.loadBalancerIP".into(),
                message: format!("set either the {k} annotation or spec.loadBalancerIP, not both"),
            });
        }
    } else if let Some(ip) = spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty()) {
        requested.push(ip.trim().parse().map_err(|_| ServiceError {
            field: "spec.loadBalancerIP".into(),
            message: format!("{ip:?} is not an IP address"),
        })?);
    }
    let pool = first_of(ann, &ADDRESS_POOL_KEYS)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let sharing_key = first_of(ann, &ALLOW_SHARED_IP_KEYS)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty());
    let family_policy = match spec.ip_family_policy.as_deref() {
        Some("PreferDualStack") => FamilyPolicy::PreferDualStack,
        Some("RequireDualStack") => FamilyPolicy::RequireDualStack,
        _ => FamilyPolicy::SingleStack,
    };
    let families = spec
        .ip_families
        .iter()
        .flatten()
        .filter_map(|f| family(f))
        .collect();
    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| Port {
            protocol: Protocol::parse(p.protocol.as_deref().unwrap_or("TCP")),
            port: p.port,
        })
        .collect();
    let traffic_policy = match spec.external_traffic_policy.as_deref() {
        Some("Local") => TrafficPolicy::Local(spec.selector.clone().unwrap_or_default()),
        _ => TrafficPolicy::Cluster,
    };
    Ok(ServiceRequest {
        key: key(svc),
        family_policy,
        families,
        requested,
        pool,
        sharing_key,
        ports,
        traffic_policy,
        labels: svc.metadata.labels.clone().unwrap_or_default(),
        namespace_labels: namespace_labels.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn svc(ann: &[(&str, &str)], spec: ServiceSpec) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                annotations: Some(
                    ann.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                ..spec
            }),
            status: None,
        }
    }

    #[test]
    fn ferrolb_annotations_win_over_metallb_ones() {
        let s = svc(
            &[
                ("metallb.universe.tf/loadBalancerIPs", "10.0.0.9"),
                ("ferrolb.io/loadBalancerIPs", "10.0.0.1, fd00::1"),
                ("metallb.io/address-pool", "legacy"),
                ("metallb.universe.tf/allow-shared-ip", "k"),
            ],
            ServiceSpec::default(),
        );
        let r = request(&s, &BTreeMap::new()).unwrap();
        assert_eq!(
            r.requested,
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "fd00::1".parse().unwrap()
            ]
        );
        assert_eq!(r.pool.as_deref(), Some("legacy"));
        assert_eq!(r.sharing_key.as_deref(), Some("k"));
        assert_eq!(r.key, ServiceKey::new("shop", "web"));
    }

    #[test]
    fn legacy_load_balancer_ip_and_policies() {
        let s = svc(
            &[],
            ServiceSpec {
                load_balancer_ip: Some("192.168.1.10".into()),
                ip_family_policy: Some("PreferDualStack".into()),
                ip_families: Some(vec!["IPv6".into(), "IPv4".into()]),
                external_traffic_policy: Some("Local".into()),
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                ports: Some(vec![ServicePort {
                    port: 53,
                    protocol: Some("UDP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            },
        );
        let r = request(&s, &BTreeMap::new()).unwrap();
        assert_eq!(r.requested, vec!["192.168.1.10".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.family_policy, FamilyPolicy::PreferDualStack);
        assert_eq!(r.families, vec![Family::V6, Family::V4]);
        assert_eq!(
            r.ports,
            vec![Port {
                protocol: Protocol::Udp,
                port: 53
            }]
        );
        assert!(matches!(r.traffic_policy, TrafficPolicy::Local(ref m) if m["app"] == "web"));
    }

    #[test]
    fn bad_annotations_name_the_annotation() {
        let s = svc(
            &[("metallb.io/loadBalancerIPs", "10.0.0.300")],
            ServiceSpec::default(),
        );
        let e = request(&s, &BTreeMap::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "metadata.annotations[metallb.io/loadBalancerIPs]: \"10.0.0.300\" is not an IP address"
        );
        let s = svc(
            &[("ferrolb.io/loadBalancerIPs", "10.0.0.1")],
            ServiceSpec {
                load_balancer_ip: Some("10.0.0.2".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            request(&s, &BTreeMap::new()).unwrap_err().field,
            "spec.loadBalancerIP"
        );
    }

    #[test]
    fn only_load_balancers_of_our_class() {
        let mut s = svc(&[], ServiceSpec::default());
        assert!(is_ours(&s, "ferrolb.io/ferrolb"));
        s.spec.as_mut().unwrap().load_balancer_class = Some("other.io/lb".into());
        assert!(!is_ours(&s, "ferrolb.io/ferrolb"));
        s.spec.as_mut().unwrap().load_balancer_class = Some("ferrolb.io/ferrolb".into());
        assert!(is_ours(&s, "ferrolb.io/ferrolb"));
        s.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        assert!(!is_ours(&s, "ferrolb.io/ferrolb"));
    }
}
