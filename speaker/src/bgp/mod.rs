//! BGP mode: sessions to the configured peers and the routes they carry.

pub mod adj_out;
pub mod families;
pub mod fsm;
pub mod graceful_restart;
pub mod manager;
pub mod nexthop;
pub mod notification;
pub mod packet;
pub mod routes;
pub mod session;
pub mod session_state;
pub mod socket;
pub mod update;
