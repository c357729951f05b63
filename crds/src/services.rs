//! What both binaries read off a Service the same way, and what a source keeps
//! of each Service: the whole object (the controller, which allocates from its
//! spec and annotations) or [`LbService`], the few facts announcing needs (the
//! speaker: a full `Service` is ~840 bytes before its strings, and a speaker
//! holds every Service of the cluster).

use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{LoadBalancerStatus, Service};

use crate::source::status::ServiceStatusRecord;

/// Whether FerroLB serves this Service: `type: LoadBalancer` and either no
/// `loadBalancerClass` or `class`.
pub fn is_ours(svc: &Service, class: &str) -> bool {
    let Some(spec) = &svc.spec else { return false };
    spec.type_.as_deref() == Some("LoadBalancer")
        && spec
            .load_balancer_class
            .as_deref()
            .is_none_or(|c| c == class)
}

/// The addresses in `status.loadBalancer.ingress` (unparseable entries skipped).
pub fn ingress_ips(svc: &Service) -> Vec<IpAddr> {
    svc.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .map(lb_ips)
        .unwrap_or_default()
}

fn lb_ips(lb: &LoadBalancerStatus) -> Vec<IpAddr> {
    lb.ingress
        .iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect()
}

/// How a source keeps each Service it reads. Sources build it once per object
/// they read (the file source per parsed document, the kube source per watch
/// event) and share it (`Arc`) between snapshots while the object is unchanged.
pub trait ServiceView: Clone + Debug + PartialEq + Send + Sync + 'static {
    /// The view of a Service as read; `svc` is not shared yet.
    fn project(svc: Arc<Service>) -> Arc<Self>;
    /// `metadata.namespace`.
    fn namespace(&self) -> Option<&str>;
    /// `metadata.name`.
    fn name(&self) -> Option<&str>;
    /// A copy with the controller's output for it put on, as the API server
    /// would hold it (the file source's `status/services.yaml` record).
    fn with_status(&self, rec: &ServiceStatusRecord) -> Self;
}

impl ServiceView for Service {
    fn project(svc: Arc<Service>) -> Arc<Self> {
        svc
    }

    fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }

    fn name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    fn with_status(&self, rec: &ServiceStatusRecord) -> Self {
        let mut svc = self.clone();
        let ann = svc
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        for (k, v) in &rec.annotations {
            ann.insert(k.clone(), v.clone());
        }
        let st = svc.status.get_or_insert_with(Default::default);
        st.load_balancer = Some(rec.load_balancer.clone());
        if !rec.conditions.is_empty() {
            st.conditions = Some(rec.conditions.clone());
        }
        svc
    }
}

/// What the speaker reads of a Service: whether it is a load balancer of ours,
/// its traffic policy and its addresses. Names are shared between the copy as
/// read and the copy with status, which is all the file source keeps two of.
/// 56 bytes (a test holds it there): in an `Arc`, an 80-byte block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LbService {
    /// `metadata.namespace`.
    pub namespace: Interned,
    /// `metadata.name`.
    pub name: Arc<str>,
    /// `spec.type` is `LoadBalancer`.
    pub load_balancer: bool,
    /// `spec.loadBalancerClass`.
    pub class: Option<Interned>,
    /// `spec.externalTrafficPolicy` is `Local`.
    pub local: bool,
    /// `status.loadBalancer.ingress` addresses, in order (unparseable ones
    /// skipped).
    pub ips: Box<[IpAddr]>,
}

impl LbService {
    /// A `type: LoadBalancer` Service without class, policy or address.
    pub fn new(namespace: &str, name: &str) -> Self {
        LbService {
            namespace: namespace.into(),
            name: name.into(),
            load_balancer: true,
            ..Default::default()
        }
    }

    /// Whether FerroLB serves it (see [`is_ours`]).
    pub fn is_ours(&self, class: &str) -> bool {
        self.load_balancer && self.class.as_deref().is_none_or(|c| c == class)
    }

    /// A copy with these addresses.
    pub fn with_ips(&self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        LbService {
            ips: ips.into_iter().collect(),
            ..self.clone()
        }
    }

    /// (namespace, name), owned.
    pub fn key(&self) -> (String, String) {
        (self.namespace.to_string(), self.name.to_string())
    }
}

/// A namespace or class name: one copy of each for the whole process, behind a
/// thin pointer. A cluster has few of either and thousands of Services in them
/// (320 KB of `"default"`s for 10,000 as strings of their own); a shared
/// `Arc<str>` still took 16 bytes in each `LbService`, this takes 8, and with
/// the class too the speaker's two copies of 10,000 Services fit in 80-byte
/// blocks instead of 96. A name stays once seen: they are short, and their
/// number is the cluster's.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interned(&'static String);

impl Interned {
    /// The one copy of `s`.
    pub fn new(s: &str) -> Self {
        static NAMES: std::sync::Mutex<std::collections::BTreeMap<&'static str, Interned>> =
            std::sync::Mutex::new(std::collections::BTreeMap::new());
        let mut names = NAMES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = names.get(s) {
            return *n;
        }
        let owned: &'static String = Box::leak(Box::new(s.to_string()));
        let n = Interned(owned);
        names.insert(owned.as_str(), n);
        n
    }

    /// The name.
    pub fn as_str(&self) -> &'static str {
        self.0.as_str()
    }
}

impl Default for Interned {
    fn default() -> Self {
        static EMPTY: String = String::new();
        Interned(&EMPTY)
    }
}

impl std::ops::Deref for Interned {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl From<&str> for Interned {
    fn from(s: &str) -> Self {
        Interned::new(s)
    }
}

impl std::fmt::Debug for Interned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0.as_str(), f)
    }
}

impl From<&Service> for LbService {
    fn from(svc: &Service) -> Self {
        let spec = svc.spec.as_ref();
        LbService {
            // As kubectl places it (sources default it already).
            namespace: Interned::new(svc.metadata.namespace.as_deref().unwrap_or("default")),
            name: svc.metadata.name.as_deref().unwrap_or_default().into(),
            load_balancer: spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"),
            class: spec
                .and_then(|s| s.load_balancer_class.as_deref())
                .map(Interned::new),
            local: spec.and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local"),
            ips: ingress_ips(svc).into(),
        }
    }
}

impl ServiceView for LbService {
    fn project(svc: Arc<Service>) -> Arc<Self> {
        Arc::new(LbService::from(&*svc))
    }

    fn namespace(&self) -> Option<&str> {
        Some(&self.namespace)
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn with_status(&self, rec: &ServiceStatusRecord) -> Self {
        self.with_ips(lb_ips(&rec.load_balancer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_view_keeps_what_announcing_reads() {
        let svc = service(
            "metadata: {name: web, namespace: shop, annotations: {a: b}}\n\
spec: {type: LoadBalancer, loadBalancerClass: x, externalTrafficPolicy: Local, ports: [{port: 80}]}\n\
status: {loadBalancer: {ingress: [{ip: 192.0.2.1}, {hostname: h}, {ip: '2001:db8::1'}]}}\n",
        );
        let v = LbService::from(&svc);
        assert_eq!((&*v.namespace, &*v.name), ("shop", "web"));
        // Namespaces and classes are one shared string each.
        let again = LbService::from(&svc);
        assert!(std::ptr::eq(v.namespace.as_str(), again.namespace.as_str()));
        assert!(!Arc::ptr_eq(&v.name, &again.name));
        assert!(std::ptr::eq(
            v.class.unwrap().as_str(),
            again.class.unwrap().as_str()
        ));
        assert_eq!(Interned::new("shop"), v.namespace);
        // Two 80-byte blocks per Service in the file source, not 96 (Arc counts
        // and malloc's header included).
        assert_eq!(std::mem::size_of::<LbService>(), 56);
        assert!(v.load_balancer && v.local);
        assert_eq!(v.class.as_deref(), Some("x"));
        assert_eq!(
            &*v.ips,
            &[
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert_eq!(v.is_ours("x"), is_ours(&svc, "x"));
        assert_eq!(v.is_ours("y"), is_ours(&svc, "y"));
        assert!(!v.is_ours("y"));
        let plain = LbService::from(&service("metadata: {name: a}\nspec: {type: ClusterIP}\n"));
        assert!(!plain.is_ours("x") && !plain.local && plain.ips.is_empty());
    }

    #[test]
    fn status_is_put_on_both_views_alike() {
        let svc =
            service("metadata: {name: web, namespace: default}\nspec: {type: LoadBalancer}\n");
        let rec: ServiceStatusRecord = serde_saphyr::from_str(
            "namespace: default\nname: web\nannotations: {ferrolb.io/ip-allocated-from-pool: p}\n\
loadBalancer: {ingress: [{ip: 198.51.100.4}]}\n",
        )
        .unwrap();
        let full = svc.with_status(&rec);
        let before = LbService::from(&svc);
        let slim = before.with_status(&rec);
        assert_eq!(slim, LbService::from(&full));
        assert_eq!(ingress_ips(&full), slim.ips.to_vec());
        assert!(
            Arc::ptr_eq(&before.name, &slim.name),
            "the names are shared, not copied"
        );
    }
}
