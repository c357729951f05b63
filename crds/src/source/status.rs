//! What the file source writes under `DIR/status/`: the same facts the kube source
//! writes to the API server, as YAML (and JSON lines for Events).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::LoadBalancerStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde::{Deserialize, Serialize};

use crate::services::LbService;
use crate::v1beta1::{
    BGPSessionStateStatus, IPAddressPoolStatus, ServiceBGPStatusStatus, ServiceL2StatusStatus,
};

/// `status/services.yaml`: one entry per Service that has (or had) an address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicesStatusFile {
    /// The Services, sorted by namespace and name.
    #[serde(default)]
    pub services: Vec<ServiceStatusRecord>,
}

/// A Service's address as the controller assigned it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatusRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Annotations the controller owns (`ferrolb.io/ip-allocated-from-pool`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `status.loadBalancer`.
    #[serde(default)]
    pub load_balancer: LoadBalancerStatus,
    /// Service conditions the controller owns (e.g. why allocation failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// `status/pools.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolsStatusFile {
    /// One entry per pool object.
    #[serde(default)]
    pub pools: Vec<PoolStatusRecord>,
}

/// One pool's status.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStatusRecord {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Status as the kube source would write it.
    pub status: IPAddressPoolStatus,
}

/// `status/speaker-<node>.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeakerStatusFile {
    /// The node the speaker runs on.
    pub node: String,
    /// Services this node announces in layer 2 mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub l2: Vec<ServiceL2StatusStatus>,
    /// Services this node announces over BGP.
    #[serde(default, skip_serializing_if = "Shared::is_empty")]
    pub bgp: Shared<BgpCarried>,
    /// Speaker-level findings (`SpeakerStatus` conditions in kube mode).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// One entry per BGP session of this node (`BGPSessionState` objects in kube
    /// mode), sorted by peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<BGPSessionStateStatus>,
}

/// One Service this node carries over BGP: a `ServiceBGPStatus`'s status as the
/// speaker keeps it, 10,000 of them at a time: two pointers, to the Service
/// (its namespace and name) and to the node with the peers (one for all the
/// Services that go to the same peers). As `ServiceBGPStatusStatus` each entry
/// was five allocations and 2.5 MB of heap for 10,000; as four shared strings,
/// 0.64 MB; this is 0.16. Reads and writes as that type.
#[derive(Clone, Debug, Default)]
pub struct BgpCarried {
    /// The Service.
    pub service: Arc<LbService>,
    /// Where its routes go.
    pub to: Arc<CarriedTo>,
}

/// The announcing node and the `BGPPeer`s with an established session the
/// routes go to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CarriedTo {
    /// The node.
    pub node: Arc<str>,
    /// The peers, sorted.
    pub peers: Vec<Arc<str>>,
}

impl BgpCarried {
    /// The Service's namespace.
    pub fn namespace(&self) -> &str {
        &self.service.namespace
    }

    /// The Service's name.
    pub fn name(&self) -> &str {
        &self.service.name
    }
}

/// What the status says: the Service's name, not its addresses.
impl PartialEq for BgpCarried {
    fn eq(&self, o: &Self) -> bool {
        self.namespace() == o.namespace()
            && self.name() == o.name()
            && (Arc::ptr_eq(&self.to, &o.to) || self.to == o.to)
    }
}

impl Eq for BgpCarried {}

impl From<ServiceBGPStatusStatus> for BgpCarried {
    fn from(s: ServiceBGPStatusStatus) -> Self {
        BgpCarried {
            service: Arc::new(LbService::new(
                s.service_namespace.as_deref().unwrap_or_default(),
                s.service_name.as_deref().unwrap_or_default(),
            )),
            to: Arc::new(CarriedTo {
                node: s.node.unwrap_or_default().into(),
                peers: s.peers.into_iter().map(Arc::from).collect(),
            }),
        }
    }
}

impl Serialize for BgpCarried {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// `ServiceBGPStatusStatus`'s fields, borrowed.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields<'a> {
            node: &'a str,
            service_name: &'a str,
            service_namespace: &'a str,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            peers: Vec<&'a str>,
        }
        Fields {
            node: &self.to.node,
            service_name: self.name(),
            service_namespace: self.namespace(),
            peers: self.to.peers.iter().map(|p| &**p).collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for BgpCarried {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ServiceBGPStatusStatus::deserialize(d).map(BgpCarried::from)
    }
}

/// A list shared between its copies: the speaker hands the same 10,000-entry
/// list to each status it builds until the list changes, and two copies of one
/// list compare by pointer. Reads and writes as the plain list; writing through
/// it copies the list first when it is shared.
#[derive(Clone, Debug, Default)]
pub struct Shared<T>(std::sync::Arc<Vec<T>>);

impl<T> Shared<T> {
    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether both are the same list (not a copy).
    pub fn same(&self, o: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &o.0)
    }
}

impl<T> From<Vec<T>> for Shared<T> {
    fn from(v: Vec<T>) -> Self {
        Shared(std::sync::Arc::new(v))
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: Clone> std::ops::DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, o: &Self) -> bool {
        self.same(o) || *self.0 == *o.0
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(d).map(Shared::from)
    }
}

/// One line of `status/events.jsonl`, shaped like a Kubernetes Event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// CamelCase reason, e.g. `IPAllocated`.
    pub reason: String,
    /// What happened, for a person.
    pub message: String,
    /// The object the event is about.
    pub involved_object: ObjectRef,
    /// Who reported it, e.g. `ferrolb-controller`.
    pub reporting_component: String,
    /// RFC 3339 time.
    pub event_time: String,
}

/// A reference to an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// Kind.
    pub kind: String,
    /// Namespace, empty for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the `ServiceBGPStatus` object's status.
    fn to_status(e: &BgpCarried) -> ServiceBGPStatusStatus {
        ServiceBGPStatusStatus {
            node: Some(e.to.node.to_string()),
            service_name: Some(e.name().to_string()),
            service_namespace: Some(e.namespace().to_string()),
            peers: e.to.peers.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn entry(name: &str) -> BgpCarried {
        BgpCarried {
            service: Arc::new(LbService::new("default", name)),
            to: Arc::new(CarriedTo {
                node: "n1".into(),
                peers: vec!["tor".into()],
            }),
        }
    }

    #[test]
    fn shared_list_reads_and_writes_as_the_plain_list() {
        let st = SpeakerStatusFile {
            node: "n1".into(),
            bgp: vec![entry("web")].into(),
            ..Default::default()
        };
        let json = serde_json::to_value(&st).unwrap();
        // The fields of a ServiceBGPStatus's status.
        assert_eq!(
            json["bgp"][0],
            serde_json::json!({"node": "n1", "serviceName": "web", "serviceNamespace": "default", "peers": ["tor"]})
        );
        assert_eq!(
            serde_json::to_value(to_status(&entry("web"))).unwrap(),
            json["bgp"][0]
        );
        let back: SpeakerStatusFile = serde_json::from_value(json).unwrap();
        assert_eq!(back, st);
        assert!(!back.bgp.same(&st.bgp), "a parsed list is a new list");
        // An empty list is left out, as the plain Vec was.
        let empty = serde_json::to_value(SpeakerStatusFile::default()).unwrap();
        assert!(empty.get("bgp").is_none());
    }

    #[test]
    fn entries_compare_by_what_the_status_says() {
        let a = entry("web");
        let mut readdressed = a.clone();
        readdressed.service = Arc::new(a.service.with_ips(["192.0.2.1".parse().unwrap()]));
        assert_eq!(a, readdressed, "the status does not carry the addresses");
        let mut other_peer = a.clone();
        other_peer.to = Arc::new(CarriedTo {
            node: "n1".into(),
            peers: vec!["tor-b".into()],
        });
        assert_ne!(a, other_peer);
        assert_ne!(a, entry("db"));
    }

    #[test]
    fn writing_through_a_copy_leaves_the_original() {
        let a: Shared<BgpCarried> = vec![entry("web")].into();
        let mut b = a.clone();
        assert!(b.same(&a));
        b.push(entry("db"));
        assert!(!b.same(&a));
        assert_eq!(a.len(), 1);
        assert_eq!(b.len(), 2);
        assert_ne!(a, b);
        // Equal copies that are not the same list still compare equal.
        let c: Shared<BgpCarried> = vec![entry("web")].into();
        assert!(!c.same(&a));
        assert_eq!(c, a);
    }
}
