//! Layer 2 mode: answer ARP/NDP for owned addresses and announce takeovers.

pub mod announcer;
pub mod arp;
pub mod interfaces;
pub mod ndp;
pub mod responder;
pub mod socket;
pub mod task;
