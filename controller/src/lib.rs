//! FerroLB's controller: gives `type: LoadBalancer` Services their addresses.

pub mod allocator;
pub mod conditions;
pub mod diagnose;
pub mod lease;
pub mod metrics;
pub mod reconcile;
pub mod run_file;
pub mod run_kube;
pub mod service;
pub mod speakers;
