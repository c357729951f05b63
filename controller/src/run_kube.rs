//! The controller on the Kubernetes API: elect a leader, watch, reconcile, write
//! only what changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::annotations::IP_ALLOCATED_FROM_POOL;
use ferrolb_crds::source::SnapshotSource;
use ferrolb_crds::source::kube::{KubeSink, KubeWatchOptions, watch_cluster};
use ferrolb_crds::source::status::{PoolStatusRecord, ServiceStatusRecord};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use tokio::sync::watch;

use crate::lease::{Elector, LeaseTimings};
use crate::metrics::Metrics;
use crate::reconcile::{ADDRESS_ASSIGNED, ANNOUNCED, COMPONENT, Outcome, Reconciler};

/// Settings of the kube runner.
#[derive(Clone, Debug)]
pub struct KubeOptions {
    /// loadBalancerClass served.
    pub class: String,
    /// FerroLB's namespace (configuration, Secrets, the Lease).
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a speaker may be missing, or a BGP session down, before the
    /// Services concerned say so.
    pub speaker_grace: SignedDuration,
}

/// Whether the API server's copy of the Service differs from what we would write.
pub fn service_differs(svc: &Service, r: &ServiceStatusRecord) -> bool {
    let status = svc.status.clone().unwrap_or_default();
    let ingress = |lb: Option<&k8s_openapi::api::core::v1::LoadBalancerStatus>| {
        lb.and_then(|l| l.ingress.clone()).unwrap_or_default()
    };
    let annotation = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(IP_ALLOCATED_FROM_POOL));
    let ours: Vec<_> = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ == ADDRESS_ASSIGNED || c.type_ == ANNOUNCED)
        .collect();
    ingress(status.load_balancer.as_ref()) != ingress(Some(&r.load_balancer))
        || annotation != r.annotations.get(IP_ALLOCATED_FROM_POOL)
        || ours != r.conditions
}

/// The writes one pass needs against the snapshot it was computed from.
pub fn changes(
    snap: &ClusterSnapshot,
    out: &Outcome,
) -> (Vec<ServiceStatusRecord>, Vec<PoolStatusRecord>) {
    let svcs: BTreeMap<(&str, &str), &Service> = snap
        .services
        .iter()
        .filter_map(|s| {
            Some((
                (
                    s.metadata.namespace.as_deref()?,
                    s.metadata.name.as_deref()?,
                ),
                &**s,
            ))
        })
        .collect();
    let mut services: Vec<ServiceStatusRecord> = out
        .services
        .iter()
        .filter(|r| {
            svcs.get(&(r.namespace.as_str(), r.name.as_str()))
                .is_none_or(|s| service_differs(s, r))
        })
        .cloned()
        .collect();
    for k in &out.released {
        // Clearing is an apply of nothing: the fields we owned go away.
        services.push(ServiceStatusRecord {
            namespace: k.namespace.to_string(),
            name: k.name.to_string(),
            ..Default::default()
        });
    }
    let pools = out
        .pools
        .iter()
        .filter(|r| {
            !snap.pools.iter().any(|p| {
                p.metadata.name.as_deref() == Some(r.name.as_str())
                    && p.metadata.namespace.as_deref() == Some(r.namespace.as_str())
                    && p.status.as_ref() == Some(&r.status)
            })
        })
        .cloned()
        .collect();
    (services, pools)
}

/// Runs until shutdown, or until leadership is lost (an error: the pod restarts
/// and stands for election again, as client-go controllers do).
pub async fn run(
    opts: KubeOptions,
    metrics: Arc<Metrics>,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("cannot reach the Kubernetes API (in-cluster config or kubeconfig)")?;
    let (leader_tx, mut leader) = watch::channel(false);
    let elector = Elector::new(
        client.clone(),
        &opts.namespace,
        &opts.lease_name,
        &opts.identity,
        LeaseTimings::default(),
    );
    let election = tokio::spawn(elector.run(leader_tx));
    tracing::info!(lease = %opts.lease_name, identity = %opts.identity, "waiting for leadership");
    tokio::select! {
        r = leader.wait_for(|l| *l) => { r.context("leader election stopped")?; }
        _ = shutdown.changed() => { election.abort(); return Ok(()); }
    }
    let cluster = watch_cluster(
        client.clone(),
        KubeWatchOptions {
            namespace: opts.namespace.clone(),
            // The Announced condition says when no node may announce an address
            // (node state, and ready endpoints for externalTrafficPolicy: Local).
            nodes: true,
            endpoint_slices: true,
            // ... and when no speaker runs on the eligible nodes, or every BGP
            // session of the announcing nodes is down.
            speakers: true,
        },
    )
    .await;
    let sink = KubeSink::new(
        client,
        &opts.namespace,
        COMPONENT,
        Some(opts.identity.clone()),
    );
    let mut rec = Reconciler::new(opts.class.clone()).with_speaker_grace(opts.speaker_grace);
    let mut rx = cluster.snapshots();
    let result = loop {
        let loaded = rx.borrow_and_update().clone();
        let t = Instant::now();
        let out = rec.reconcile_with(
            &loaded.snapshot,
            loaded.speakers.as_deref(),
            Timestamp::now(),
        );
        metrics.observe(&out, rec.allocator(), t.elapsed());
        let (services, pools) = changes(&loaded.snapshot, &out);
        for r in &services {
            if let Err(e) = sink.write_service(r).await {
                tracing::warn!(error = %e, "cannot write Service; retried on the next change");
            }
        }
        for r in &pools {
            if let Err(e) = sink.write_pool(r).await {
                tracing::warn!(error = %e, "cannot write pool status");
            }
        }
        for e in &out.events {
            if let Err(err) = sink.emit(e).await {
                tracing::warn!(error = %err, "cannot record Event");
            }
        }
        ready.send_replace(true);
        tokio::select! {
            c = rx.changed() => if c.is_err() { break Ok(()) },
            _ = crate::run_file::recheck(out.recheck_at) => {}
            _ = leader.wait_for(|l| !*l) => break Err(anyhow::anyhow!("lost the leader lease; exiting so that another replica takes over")),
            _ = shutdown.changed() => break Ok(()),
        }
    };
    election.abort();
    result
}
