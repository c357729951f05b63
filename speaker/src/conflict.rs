//! Address conflicts: another host answering ARP/NDP for an address this node
//! announces. How they are reported on the speaker's status.

/// Condition type on a speaker's status: another host claims an address this
/// node announces. Its message names the address between spaces and the other
/// host's MAC: `another host (MAC 02:00:00:00:00:09) answers ARP for 10.0.0.5 which node n1 announces`.
pub const ADDRESS_CONFLICT: &str = "AddressConflict";
