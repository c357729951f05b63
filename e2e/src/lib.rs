//! End-to-end tests for FerroLB: network namespaces on this machine standing in
//! for nodes, clients and routers, with the real binaries and real peers.

pub mod bird;
pub mod fake_api;
pub mod lab;
pub mod scenario;
