//! FerroLB's speaker: makes the network deliver each load-balancer address to a
//! node, by ARP/NDP (layer 2) or BGP.

pub mod announce;
pub mod bgp;
pub mod conflict;
pub mod election;
pub mod findings;
pub mod layer2;
pub mod membership;
pub mod memory;
pub mod metrics;
pub mod no_libm;
pub mod runner;

/// The cluster as the speaker keeps it: each Service as the few facts
/// announcing needs ([`ferrolb_crds::services::LbService`]), not the whole
/// object: a speaker holds every Service of the cluster.
pub type Snapshot = ferrolb_crds::ClusterSnapshot<ferrolb_crds::services::LbService>;

/// A [`Snapshot`] with the problems met reading it.
pub type Loaded = ferrolb_crds::source::Loaded<ferrolb_crds::services::LbService>;
