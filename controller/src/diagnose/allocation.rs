//! The address link: the Service's address, or why it has none, pool by pool.
//! Runs the controller's own reconciler on the snapshot so that the reason is
//! exactly the one the controller gives.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::config::{Config, Family};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::Timestamp;

use super::Link;
use crate::allocator::{Allocator, PoolRejection, ServiceKey, ServiceRequest};
use crate::reconcile::{ADDRESS_ASSIGNED, Reconciler};
use crate::service;

/// How one pool stands toward the Service.
enum Verdict {
    Rejected(PoolRejection),
    NotRequested(String),
    Exhausted(Family),
    Serves,
}

/// What to change so that `pool` may serve the Service.
pub fn rejection_fix(pool: &str, key: &ServiceKey, why: &PoolRejection) -> String {
    match why {
        PoolRejection::Namespace(ns) => format!(
            "add {ns} to spec.serviceAllocation.namespaces of IPAddressPool {pool} (or label Namespace {ns} to match its spec.serviceAllocation.namespaceSelectors)"
        ),
        PoolRejection::ServiceSelector => format!(
            "label Service {key} to match spec.serviceAllocation.serviceSelectors of IPAddressPool {pool}"
        ),
        PoolRejection::AutoAssignOff => format!(
            "annotate Service {key} with ferrolb.io/address-pool: {pool}, or set spec.autoAssign: true on IPAddressPool {pool}"
        ),
        PoolRejection::NoFamily(f) => format!(
            "add {f} addresses to spec.addresses of IPAddressPool {pool}, or change spec.ipFamilies of Service {key}"
        ),
    }
}

fn verdicts(config: &Config, req: &ServiceRequest, alloc: &Allocator) -> Vec<(String, Verdict)> {
    let family = req.first_family();
    config
        .pools
        .values()
        .map(|p| {
            let v = if let Some(asked) = req.pool.as_ref().filter(|a| **a != p.name) {
                Verdict::NotRequested(asked.clone())
            } else if !p.auto_assign && req.pool.is_none() {
                Verdict::Rejected(PoolRejection::AutoAssignOff)
            } else if let Err(why) = Allocator::eligibility(p, req) {
                Verdict::Rejected(why)
            } else if !p.families().contains(&family) {
                Verdict::Rejected(PoolRejection::NoFamily(family))
            } else if alloc.pool_stats(&p.name).is_some_and(|s| {
                s.available[match family {
                    Family::V4 => 0,
                    Family::V6 => 1,
                }] == 0
            }) {
                Verdict::Exhausted(family)
            } else {
                Verdict::Serves
            };
            (p.name.clone(), v)
        })
        .collect()
}

fn detail(pool: &str, key: &ServiceKey, v: &Verdict) -> String {
    match v {
        Verdict::Rejected(why) => format!(
            "IPAddressPool {pool}: {why} (fix: {})",
            rejection_fix(pool, key, why)
        ),
        Verdict::NotRequested(asked) => {
            format!("IPAddressPool {pool}: not used, the Service asks for pool {asked}")
        }
        Verdict::Exhausted(f) => format!("IPAddressPool {pool}: no free {f} address"),
        Verdict::Serves => format!("IPAddressPool {pool}: may serve this Service"),
    }
}

fn namespace_labels(snap: &ClusterSnapshot, ns: &str) -> BTreeMap<String, String> {
    snap.namespaces
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(ns))
        .and_then(|n| n.metadata.labels.clone())
        .unwrap_or_default()
}

/// The address link. `ips` are the addresses in the Service's status.
pub fn address_link(
    snap: &ClusterSnapshot,
    config: &Config,
    class: &str,
    svc: &Service,
    ips: &[IpAddr],
) -> Link {
    let key = service::key(svc);
    if !ips.is_empty() {
        let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
        return Link::ok(
            "address",
            "Assigned",
            format!("{} in status.loadBalancer.ingress", list.join(", ")),
        );
    }
    let req = match service::request(svc, &namespace_labels(snap, &key.namespace)) {
        Ok(r) => r,
        Err(e) => {
            return Link::broken(
                "address",
                "InvalidAnnotation",
                format!("no address: {e}"),
                format!("correct {} of Service {key}", e.field),
            );
        }
    };
    // What the controller would decide now, from the same snapshot.
    let mut rec = Reconciler::new(class);
    let out = rec.reconcile(snap, Timestamp::UNIX_EPOCH);
    let record = out
        .services
        .iter()
        .find(|r| *r.namespace == *key.namespace && *r.name == *key.name);
    let cond = record.and_then(|r| r.conditions.iter().find(|c| c.type_ == ADDRESS_ASSIGNED));
    let details: Vec<String> = verdicts(config, &req, rec.allocator())
        .iter()
        .map(|(p, v)| detail(p, &key, v))
        .collect();
    let Some(c) = cond.filter(|c| c.status == "False") else {
        let would = record
            .and_then(|r| r.load_balancer.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.clone())
            .collect::<Vec<_>>()
            .join(", ");
        return Link::broken(
            "address",
            "NotYetAssigned",
            format!("no address in status.loadBalancer.ingress, though the pools can give {would}"),
            "check that ferrolb-controller runs and can write Service status (its log names the cause); with the file source run ferrolb-controller --source file --dir DIR",
        )
        .with_details(details);
    };
    let fix = match c.reason.as_str() {
        "NoPoolAvailable" if config.pools.is_empty() => {
            "create an IPAddressPool (and an L2Advertisement or BGPAdvertisement for it)".to_string()
        }
        "NoPoolAvailable" => {
            let first = verdicts(config, &req, rec.allocator())
                .into_iter()
                .find_map(|(p, v)| match v {
                    Verdict::Rejected(why) => Some(rejection_fix(&p, &key, &why)),
                    _ => None,
                });
            first.unwrap_or_else(|| "make one IPAddressPool accept the Service".into())
        }
        "PoolExhausted" => {
            "add addresses to spec.addresses of the IPAddressPool(s) named above, or delete Services holding addresses from them".to_string()
        }
        "InvalidPoolAnnotation" => format!(
            "set metadata.annotations[ferrolb.io/address-pool] of Service {key} to an IPAddressPool that exists and accepts it"
        ),
        "RequestedIPInUse" => format!(
            "request another address for Service {key}, or give both Services the same ferrolb.io/allow-shared-ip annotation (ports must not clash)"
        ),
        _ => format!(
            "request an address inside an IPAddressPool that serves Service {key} (metadata.annotations[ferrolb.io/loadBalancerIPs] or spec.loadBalancerIP), or remove the request"
        ),
    };
    Link::broken(
        "address",
        &c.reason,
        format!("pending, no address: {}", c.message),
        fix,
    )
    .with_details(details)
}
