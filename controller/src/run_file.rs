//! The controller on the file source: reconcile on every change of the directory
//! and write `status/`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ferrolb_crds::source::status::{PoolStatusRecord, ServiceStatusRecord};
use ferrolb_crds::source::{FileSource, Loaded, SnapshotSource, SourceError};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::reconcile::{Outcome, Reconciler};

/// Writes what changed since the last write.
struct Writer {
    source: FileSource,
    services: Option<Vec<ServiceStatusRecord>>,
    pools: Option<Vec<PoolStatusRecord>>,
}

impl Writer {
    fn write(&mut self, out: &Outcome) -> Result<(), SourceError> {
        if self.services.as_ref() != Some(&out.services) {
            self.source.write_services_sync(&out.services)?;
            self.services = Some(out.services.clone());
        }
        if self.pools.as_ref() != Some(&out.pools) {
            self.source.write_pools_sync(&out.pools)?;
            self.pools = Some(out.pools.clone());
        }
        self.source.emit_events_sync(&out.events)
    }
}

fn pass(
    rec: &mut Reconciler,
    loaded: &Loaded,
    writer: &mut Writer,
    metrics: &Metrics,
) -> Result<Outcome, SourceError> {
    for e in &loaded.errors {
        tracing::warn!(error = %e, "source");
    }
    let t = Instant::now();
    let out = rec.reconcile_with(
        &loaded.snapshot,
        loaded.speakers.as_deref(),
        Timestamp::now(),
    );
    metrics.observe(&out, rec.allocator(), t.elapsed());
    for e in &out.events {
        tracing::info!(
            kind = %e.involved_object.kind,
            object = %format!("{}/{}", e.involved_object.namespace, e.involved_object.name),
            reason = %e.reason,
            "{}",
            e.message
        );
    }
    writer.write(&out)?;
    Ok(out)
}

/// Sleeps until `at`, or forever when there is nothing to recheck.
pub(crate) async fn recheck(at: Option<Timestamp>) {
    match at {
        Some(at) => {
            // Past already: a negative duration converts to none, i.e. no wait.
            let wait = Timestamp::now().duration_until(at);
            tokio::time::sleep(wait.try_into().unwrap_or_default()).await;
        }
        None => std::future::pending().await,
    }
}

/// Runs one pass and returns (`--once`), or runs until `shutdown` fires.
/// `speaker_grace`: how long a speaker may be missing, or a BGP session down,
/// before the Services concerned say so (a single `--once` pass never does).
pub async fn run(
    dir: PathBuf,
    class: String,
    once: bool,
    speaker_grace: SignedDuration,
    metrics: Arc<Metrics>,
    ready: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let source = FileSource::new(&dir).with_speakers();
    let mut rec = Reconciler::new(class).with_speaker_grace(speaker_grace);
    let mut writer = Writer {
        source: source.clone(),
        services: source.read_services().ok().map(|f| f.services),
        pools: None,
    };
    if once {
        let loaded = source.load()?;
        let out = pass(&mut rec, &loaded, &mut writer, &metrics)?;
        tracing::info!(
            services = out.services.len(),
            without_address = out.failures,
            config_errors = out.config_errors.len(),
            "reconciled once"
        );
        return Ok(());
    }
    let watch = source.watch()?;
    let mut rx = watch.snapshots();
    loop {
        let loaded = rx.borrow_and_update().clone();
        let at = match pass(&mut rec, &loaded, &mut writer, &metrics) {
            Ok(out) => out.recheck_at,
            Err(e) => {
                // Nothing written this time; the next change (or our retry) tries again.
                tracing::error!(error = %e, "cannot write status; trying again on the next change");
                None
            }
        };
        ready.send_replace(true);
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return Ok(()) },
            _ = recheck(at) => {}
            _ = shutdown.changed() => return Ok(()),
        }
    }
}
