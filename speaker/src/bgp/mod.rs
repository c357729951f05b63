//! BGP mode: sessions to the configured peers and the routes they carry.

pub mod fsm;
pub mod notification;
pub mod packet;
