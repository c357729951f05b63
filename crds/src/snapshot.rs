//! The cluster state both binaries consume, whichever source it came from.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::config::{Config, ConfigError, ConfigInput};
use crate::services::ServiceView;
use crate::source::yaml::Object;
use crate::v1beta1::{
    BFDProfile, BGPAdvertisement, BGPPeer, Community, IPAddressPool, L2Advertisement,
};

/// Everything FerroLB reads: its own configuration objects and the cluster objects
/// that decide who gets an address and who announces it. Each list is sorted by
/// namespace and name so that equal states compare equal. `S` is what is kept of
/// each Service: the whole object (the controller) or
/// [`crate::services::LbService`] (the speaker).
#[derive(Clone, Debug)]
pub struct ClusterSnapshot<S = Service> {
    /// Address pools.
    pub pools: Vec<IPAddressPool>,
    /// L2 advertisements.
    pub l2_advertisements: Vec<L2Advertisement>,
    /// BGP advertisements.
    pub bgp_advertisements: Vec<BGPAdvertisement>,
    /// BGP peers.
    pub peers: Vec<BGPPeer>,
    /// Community aliases.
    pub communities: Vec<Community>,
    /// BFD profiles.
    pub bfd_profiles: Vec<BFDProfile>,
    /// Services (all types; the consumers filter). Shared: a new snapshot after
    /// one Service changed shares every other Service with the one before, so
    /// building and comparing it costs pointers, not copies of 10,000 objects.
    pub services: Vec<Arc<S>>,
    /// EndpointSlices (for `externalTrafficPolicy: Local`), shared the same way.
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Namespaces (for namespace selectors).
    pub namespaces: Vec<Namespace>,
    /// Secrets referenced by the configuration.
    pub secrets: Vec<Secret>,
}

/// Shared objects compare by pointer first: two snapshots of a source share every
/// object that did not change, and a deep comparison of 10,000 Services took
/// milliseconds of every update.
fn same_objects<T: PartialEq>(a: &[Arc<T>], b: &[Arc<T>]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| Arc::ptr_eq(x, y) || **x == **y)
}

impl<S> Default for ClusterSnapshot<S> {
    fn default() -> Self {
        ClusterSnapshot {
            pools: Vec::new(),
            l2_advertisements: Vec::new(),
            bgp_advertisements: Vec::new(),
            peers: Vec::new(),
            communities: Vec::new(),
            bfd_profiles: Vec::new(),
            services: Vec::new(),
            endpoint_slices: Vec::new(),
            nodes: Vec::new(),
            namespaces: Vec::new(),
            secrets: Vec::new(),
        }
    }
}

impl<S: PartialEq> PartialEq for ClusterSnapshot<S> {
    fn eq(&self, o: &Self) -> bool {
        self.pools == o.pools
            && self.l2_advertisements == o.l2_advertisements
            && self.bgp_advertisements == o.bgp_advertisements
            && self.peers == o.peers
            && self.communities == o.communities
            && self.bfd_profiles == o.bfd_profiles
            && same_objects(&self.services, &o.services)
            && same_objects(&self.endpoint_slices, &o.endpoint_slices)
            && self.nodes == o.nodes
            && self.namespaces == o.namespaces
            && self.secrets == o.secrets
    }
}

impl<S> ClusterSnapshot<S> {
    /// The configuration objects, for [`Config::build`].
    pub fn config_input(&self) -> ConfigInput<'_> {
        ConfigInput {
            pools: &self.pools,
            l2_advertisements: &self.l2_advertisements,
            bgp_advertisements: &self.bgp_advertisements,
            peers: &self.peers,
            communities: &self.communities,
            bfd_profiles: &self.bfd_profiles,
            secrets: &self.secrets,
        }
    }

    /// The validated configuration and the problems found.
    pub fn config(&self) -> (Config, Vec<ConfigError>) {
        Config::build(&self.config_input())
    }

    /// Adds one object to its list.
    pub fn add(&mut self, o: Object<S>) {
        match o {
            Object::IPAddressPool(x) => self.pools.push(*x),
            Object::L2Advertisement(x) => self.l2_advertisements.push(*x),
            Object::BGPAdvertisement(x) => self.bgp_advertisements.push(*x),
            Object::BGPPeer(x) => self.peers.push(*x),
            Object::Community(x) => self.communities.push(*x),
            Object::BFDProfile(x) => self.bfd_profiles.push(*x),
            Object::Service(x) => self.services.push(x),
            Object::Node(x) => self.nodes.push(*x),
            Object::Namespace(x) => self.namespaces.push(*x),
            Object::Secret(x) => self.secrets.push(*x),
            Object::EndpointSlice(x) => self.endpoint_slices.push(x),
        }
    }

    /// Reserves room for objects of these kinds (as [`crate::source::Object::kind`]
    /// names them), so that the lists are allocated once at their size instead of
    /// growing by doubling (up to twice the memory, and a copy at every step).
    pub fn reserve_for<'a>(&mut self, kinds: impl Iterator<Item = &'a str>) {
        let mut n = [0usize; 11];
        for k in kinds {
            let i = match k {
                "IPAddressPool" => 0,
                "L2Advertisement" => 1,
                "BGPAdvertisement" => 2,
                "BGPPeer" => 3,
                "Community" => 4,
                "BFDProfile" => 5,
                "Service" => 6,
                "EndpointSlice" => 7,
                "Node" => 8,
                "Namespace" => 9,
                _ => 10,
            };
            n[i] += 1;
        }
        self.pools.reserve_exact(n[0]);
        self.l2_advertisements.reserve_exact(n[1]);
        self.bgp_advertisements.reserve_exact(n[2]);
        self.peers.reserve_exact(n[3]);
        self.communities.reserve_exact(n[4]);
        self.bfd_profiles.reserve_exact(n[5]);
        self.services.reserve_exact(n[6]);
        self.endpoint_slices.reserve_exact(n[7]);
        self.nodes.reserve_exact(n[8]);
        self.namespaces.reserve_exact(n[9]);
        self.secrets.reserve_exact(n[10]);
    }

    /// Sorts every list by namespace and name.
    pub fn normalize(&mut self)
    where
        S: ServiceView,
    {
        // Unstable: no buffer of half the list (8 MB for 10,000 Services); keys are
        // unique (duplicates are rejected by every source), so the order is the same.
        fn key<K: kube::Resource>(k: &K) -> (Option<&str>, Option<&str>) {
            (k.meta().namespace.as_deref(), k.meta().name.as_deref())
        }
        self.services
            .sort_unstable_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
        self.endpoint_slices
            .sort_unstable_by(|a, b| key(&**a).cmp(&key(&**b)));
        self.normalize_owned();
    }

    /// Sorts every list but the shared ones (Services, EndpointSlices), for a
    /// source whose stores hand those out in (namespace, name) order already: a
    /// pass over 10,000 of them per change is a pointer chase per object.
    pub fn normalize_owned(&mut self) {
        fn key<K: kube::Resource>(k: &K) -> (Option<&str>, Option<&str>) {
            (k.meta().namespace.as_deref(), k.meta().name.as_deref())
        }
        fn sort<K: kube::Resource>(v: &mut [K]) {
            v.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        }
        sort(&mut self.pools);
        sort(&mut self.l2_advertisements);
        sort(&mut self.bgp_advertisements);
        sort(&mut self.peers);
        sort(&mut self.communities);
        sort(&mut self.bfd_profiles);
        sort(&mut self.nodes);
        sort(&mut self.namespaces);
        sort(&mut self.secrets);
    }
}

impl ClusterSnapshot<Service> {
    /// The same state with each Service seen as `T` (see [`ServiceView`]).
    pub fn project<T: ServiceView>(&self) -> ClusterSnapshot<T> {
        ClusterSnapshot {
            pools: self.pools.clone(),
            l2_advertisements: self.l2_advertisements.clone(),
            bgp_advertisements: self.bgp_advertisements.clone(),
            peers: self.peers.clone(),
            communities: self.communities.clone(),
            bfd_profiles: self.bfd_profiles.clone(),
            services: self.services.iter().cloned().map(T::project).collect(),
            endpoint_slices: self.endpoint_slices.clone(),
            nodes: self.nodes.clone(),
            namespaces: self.namespaces.clone(),
            secrets: self.secrets.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, ip: Option<&str>) -> Arc<Service> {
        let mut s = Service::default();
        s.metadata.name = Some(name.into());
        s.metadata.namespace = Some("default".into());
        if let Some(ip) = ip {
            s.metadata.annotations = Some([("ip".to_string(), ip.to_string())].into());
        }
        Arc::new(s)
    }

    #[test]
    fn shared_objects_compare_by_pointer_then_by_value() {
        let a = ClusterSnapshot {
            services: vec![svc("a", None), svc("b", Some("1"))],
            ..Default::default()
        };
        let shared = a.clone();
        assert!(Arc::ptr_eq(&a.services[1], &shared.services[1]));
        assert_eq!(a, shared);
        let copied = ClusterSnapshot {
            services: vec![svc("a", None), svc("b", Some("1"))],
            ..Default::default()
        };
        assert_eq!(a, copied, "equal objects in other allocations are equal");
        let changed = ClusterSnapshot {
            services: vec![a.services[0].clone(), svc("b", Some("2"))],
            ..Default::default()
        };
        assert_ne!(a, changed);
        let shorter = ClusterSnapshot {
            services: vec![a.services[0].clone()],
            ..Default::default()
        };
        assert_ne!(a, shorter);
    }
}
