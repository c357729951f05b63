//! FerroLB's controller: gives `type: LoadBalancer` Services their addresses.

pub mod allocator;
