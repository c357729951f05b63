//! FerroLB's API (`ferrolb.io/v1beta1` CRDs and annotations), the validated
//! configuration built from it, and the sources of cluster state both binaries use.

pub mod annotations;
pub mod config;
pub mod convert;
pub mod crdgen;
pub mod snapshot;
pub mod source;
// `printcolumn(...)` repeats `type_ = ...` once per column, which this lint misreads.
#[allow(clippy::duplicated_attributes)]
pub mod v1beta1;

pub use snapshot::ClusterSnapshot;
pub mod process;
pub mod serve;
pub mod services;
