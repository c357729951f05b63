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
pub mod runner;
