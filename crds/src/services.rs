//! What both binaries read off a Service the same way.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;

/// Whether FerroLB serves this Service: `type: LoadBalancer` and either no
/// `loadBalancerClass` or `class`.
pub fn is_ours(svc: &Service, class: &str) -> bool {
    let Some(spec) = &svc.spec else { return false };
    spec.type_.as_deref() == Some("LoadBalancer")
        && spec
            .load_balancer_class
            .as_deref()
            .is_none_or(|c| c == class)
}

/// The addresses in `status.loadBalancer.ingress` (unparseable entries skipped).
pub fn ingress_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect()
}
