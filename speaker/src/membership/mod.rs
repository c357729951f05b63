//! Speaker membership: which speakers are alive, known within tens of milliseconds
//! and without the API server, for the layer 2 election (see `detector.rs` for the
//! protocol, `wire.rs` for the bytes, `task.rs` for the UDP side).

pub mod detector;
pub mod task;
pub mod wire;
