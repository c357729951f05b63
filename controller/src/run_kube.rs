//! The controller on the Kubernetes API. Not built yet: see issue 4's note.

use std::sync::Arc;

use tokio::sync::watch;

use crate::metrics::Metrics;

/// Runs against the API server.
pub async fn run(
    _class: String,
    _metrics: Arc<Metrics>,
    _ready: watch::Sender<bool>,
    _shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    anyhow::bail!("--source kube is not implemented yet; use --source file --dir DIR")
}
