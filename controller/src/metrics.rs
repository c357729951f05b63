//! Controller metrics, named `ferrolb_<subsystem>_<name>_<unit>`. Label values are
//! bounded: pool names (configuration), address families and fixed reasons.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::allocator::Allocator;
use crate::reconcile::{ADDRESS_ASSIGNED, Outcome};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: String,
    family: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// The controller's metrics.
#[derive(Debug)]
pub struct Metrics {
    in_use: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    available: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    failures: Family<ReasonLabels, Counter>,
    without_address: Family<ReasonLabels, Gauge>,
    config_errors: Gauge,
    reconcile: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics {
            in_use: Family::default(),
            available: Family::default(),
            failures: Family::default(),
            without_address: Family::default(),
            config_errors: Gauge::default(),
            reconcile: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
        };
        registry.register(
            "ferrolb_allocator_addresses_in_use",
            "Addresses assigned to Services, per pool and family",
            m.in_use.clone(),
        );
        registry.register(
            "ferrolb_allocator_addresses_available",
            "Free addresses, per pool and family (a float: exact figures are in the pool status)",
            m.available.clone(),
        );
        registry.register(
            "ferrolb_allocator_allocation_failures",
            "Allocation failures reported, by reason",
            m.failures.clone(),
        );
        registry.register(
            "ferrolb_controller_services_without_address",
            "LoadBalancer Services that have no address now, by reason",
            m.without_address.clone(),
        );
        registry.register(
            "ferrolb_controller_config_errors",
            "Problems in the configuration objects",
            m.config_errors.clone(),
        );
        registry.register_with_unit(
            "ferrolb_controller_reconcile_duration",
            "Time of one pass over all Services",
            prometheus_client::registry::Unit::Seconds,
            m.reconcile.clone(),
        );
        m
    }

    /// Records one pass.
    pub fn observe(&self, out: &Outcome, allocator: &Allocator, took: Duration) {
        self.reconcile.observe(took.as_secs_f64());
        self.config_errors
            .set(i64::try_from(out.config_errors.len()).unwrap_or(i64::MAX));
        self.in_use.clear();
        self.available.clear();
        for name in allocator.pool_names() {
            let Some(st) = allocator.pool_stats(name) else {
                continue;
            };
            for (i, family) in ["ipv4", "ipv6"].into_iter().enumerate() {
                let l = PoolLabels {
                    pool: name.to_string(),
                    family,
                };
                // u128 to f64 rounds only beyond 2^53 addresses.
                self.in_use.get_or_create(&l).set(st.assigned[i] as f64);
                self.available.get_or_create(&l).set(st.available[i] as f64);
            }
        }
        let mut without: BTreeMap<String, i64> = BTreeMap::new();
        for s in &out.services {
            if let Some(c) = s
                .conditions
                .iter()
                .find(|c| c.type_ == ADDRESS_ASSIGNED && c.status == "False")
                && s.load_balancer.ingress.is_none()
            {
                *without.entry(c.reason.clone()).or_default() += 1;
            }
        }
        self.without_address.clear();
        for (reason, n) in without {
            self.without_address
                .get_or_create(&ReasonLabels { reason })
                .set(n);
        }
        for e in out.events.iter().filter(|e| e.reason == "AllocationFailed") {
            let reason = out
                .services
                .iter()
                .find(|s| {
                    s.name == e.involved_object.name && s.namespace == e.involved_object.namespace
                })
                .and_then(|s| s.conditions.first())
                .map(|c| c.reason.clone())
                .unwrap_or_else(|| "Unknown".into());
            self.failures.get_or_create(&ReasonLabels { reason }).inc();
        }
    }
}
