//! The lab: FerroLB end to end in network namespaces on one machine.
//!
//! ```text
//!            remote client 10.78.0.100 / fd78::100
//!                  |
//!               router (BIRD, AS 64501)  10.77.0.1 / fd77::1
//!                  |  eBGP to every node, ECMP into its kernel table
//!   LAN bridge ----+------------+------------+------------ LAN client 10.77.0.100
//!                  |            |            |
//!                 n1 .11       n2 .12       n3 .13    speaker + nftables "kube-proxy"
//!                  |            |            |
//!               pod p1       pod p2       pod p3      HTTP backends 10.244.i.2
//! ```
//!
//! The controller and the speakers run on the file source in one directory, as in
//! standalone mode. Node failure is the node's link going down and its speaker being
//! killed; the lab then plays the node controller (Node `Ready: False`, endpoints
//! gone) and kube-proxy (rules without the dead backends).

pub mod config;
pub mod failover;
pub mod http;
pub mod kubeproxy;
pub mod netns;
pub mod router;
pub mod table;
mod topology;
pub mod udp;

pub use topology::{Failover, Lab, Row, down};
