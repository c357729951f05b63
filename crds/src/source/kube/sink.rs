//! Writes status to the API server with server-side apply, and Events.

use std::sync::{Arc, Mutex, MutexGuard};

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client};
use serde_json::json;

use super::speaker_objects::Applied;
use crate::source::status::{
    EventRecord, PoolStatusRecord, ServiceStatusRecord, SpeakerStatusFile,
};
use crate::source::{SourceError, StatusSink};
use crate::v1beta1::{API_VERSION, IPAddressPool};

/// Writes status to the API server with server-side apply under one field manager,
/// and Events through the events.k8s.io API.
#[derive(Clone)]
pub struct KubeSink {
    pub(super) client: Client,
    pub(super) namespace: String,
    field_manager: String,
    recorder: Recorder,
    /// Set on the speaker's objects, so that they go when its pod goes.
    pub(super) owner: Option<OwnerReference>,
    applied: Arc<Mutex<Applied>>,
}

pub(super) fn api_err(what: String, e: kube::Error) -> SourceError {
    SourceError::Io {
        path: what.into(),
        message: e.to_string(),
    }
}

impl KubeSink {
    /// A sink writing as `field_manager` (also the Events' reporting controller);
    /// `namespace` holds FerroLB's configuration objects; `instance` tells replicas
    /// apart in Events (the pod name).
    pub fn new(
        client: Client,
        namespace: impl Into<String>,
        field_manager: impl Into<String>,
        instance: Option<String>,
    ) -> Self {
        let field_manager = field_manager.into();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: field_manager.clone(),
                instance,
            },
        );
        KubeSink {
            client,
            namespace: namespace.into(),
            field_manager,
            recorder,
            owner: None,
            applied: Arc::default(),
        }
    }

    /// Makes `pod` (of FerroLB's namespace) the owner of the speaker's status
    /// objects: when the speaker's pod is deleted (its node left the cluster, the
    /// DaemonSet was uninstalled), garbage collection removes them.
    pub fn owned_by_pod(mut self, name: impl Into<String>, uid: impl Into<String>) -> Self {
        self.owner = Some(OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: name.into(),
            uid: uid.into(),
            ..Default::default()
        });
        self
    }

    pub(super) fn applied(&self) -> MutexGuard<'_, Applied> {
        // Poisoned only if a holder panicked; the map is still usable.
        self.applied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn apply_params(&self) -> PatchParams {
        PatchParams::apply(&self.field_manager).force()
    }

    /// Applies one Service's status and the annotations FerroLB owns.
    pub async fn write_service(&self, r: &ServiceStatusRecord) -> Result<(), SourceError> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), &r.namespace);
        let what = format!("Service {}/{}", r.namespace, r.name);
        let status = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "status": { "loadBalancer": r.load_balancer, "conditions": r.conditions },
        });
        api.patch_status(&r.name, &self.apply_params(), &Patch::Apply(status))
            .await
            .map_err(|e| api_err(format!("{what} status"), e))?;
        let meta = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": { "annotations": r.annotations },
        });
        api.patch(&r.name, &self.apply_params(), &Patch::Apply(meta))
            .await
            .map_err(|e| api_err(what, e))?;
        Ok(())
    }

    /// Applies one pool's status.
    pub async fn write_pool(&self, r: &PoolStatusRecord) -> Result<(), SourceError> {
        let api: Api<IPAddressPool> = Api::namespaced(self.client.clone(), &r.namespace);
        let body =
            json!({ "apiVersion": API_VERSION, "kind": "IPAddressPool", "status": r.status });
        api.patch_status(&r.name, &self.apply_params(), &Patch::Apply(body))
            .await
            .map_err(|e| {
                api_err(
                    format!("IPAddressPool {}/{} status", r.namespace, r.name),
                    e,
                )
            })?;
        Ok(())
    }

    /// Records one Event.
    pub async fn emit(&self, e: &EventRecord) -> Result<(), SourceError> {
        let core = matches!(
            e.involved_object.kind.as_str(),
            "Service" | "Node" | "Namespace" | "Secret"
        );
        let namespace = if !e.involved_object.namespace.is_empty() {
            Some(e.involved_object.namespace.clone())
        } else if core {
            None
        } else {
            // FerroLB's kinds live in its namespace; the speakers do not track it.
            Some(self.namespace.clone())
        };
        let reference = ObjectReference {
            api_version: Some(if core { "v1" } else { API_VERSION }.into()),
            kind: Some(e.involved_object.kind.clone()),
            namespace,
            name: Some(e.involved_object.name.clone()),
            ..Default::default()
        };
        let ev = Event {
            type_: if e.type_ == "Warning" {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: e.reason.clone(),
            note: Some(e.message.clone()),
            action: e.reason.clone(),
            secondary: None,
        };
        self.recorder.publish(&ev, &reference).await.map_err(|err| {
            api_err(
                format!(
                    "Event {} on {}/{}",
                    e.reason, e.involved_object.namespace, e.involved_object.name
                ),
                err,
            )
        })
    }

    /// FerroLB's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

impl StatusSink for KubeSink {
    async fn write_services(&self, records: &[ServiceStatusRecord]) -> Result<(), SourceError> {
        // One failure must not stop the other Services' updates; the first error is
        // returned after all were tried.
        let mut first = None;
        for r in records {
            if let Err(e) = self.write_service(r).await {
                tracing::warn!(error = %e, "cannot write Service status");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn write_pools(&self, records: &[PoolStatusRecord]) -> Result<(), SourceError> {
        let mut first = None;
        for r in records {
            if let Err(e) = self.write_pool(r).await {
                tracing::warn!(error = %e, "cannot write pool status");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn write_speaker(&self, status: &SpeakerStatusFile) -> Result<(), SourceError> {
        self.write_service_statuses(status).await
    }

    async fn update_speaker(
        &self,
        before: &SpeakerStatusFile,
        status: &SpeakerStatusFile,
    ) -> Result<(), SourceError> {
        self.update_service_statuses(before, status).await
    }

    async fn emit_events(&self, events: &[EventRecord]) -> Result<(), SourceError> {
        for e in events {
            if let Err(err) = self.emit(e).await {
                tracing::warn!(error = %err, "cannot record Event");
            }
        }
        Ok(())
    }
}
