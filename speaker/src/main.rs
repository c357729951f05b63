//! `ferrolb-speaker`: makes load-balancer addresses reachable from the network.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use ferrolb_crds::annotations::DEFAULT_LOAD_BALANCER_CLASS;
use ferrolb_crds::serve::{Endpoints, serve};
use ferrolb_crds::source::FileSource;
use ferrolb_crds::source::kube::{KubeSink, KubeWatchOptions, watch_cluster};
use ferrolb_speaker::layer2::announcer::AnnouncePolicy;
use ferrolb_speaker::metrics::{BgpMetrics, L2Metrics};
use ferrolb_speaker::runner::{self, SpeakerOptions};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SourceKind {
    /// The Kubernetes API.
    Kube,
    /// A directory of YAML (standalone mode).
    File,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Answers ARP/NDP (layer 2) and speaks BGP for load-balancer addresses.
#[derive(Parser, Debug)]
#[command(name = "ferrolb-speaker", version)]
struct Args {
    /// Where cluster state comes from.
    #[arg(long, value_enum, default_value = "kube", env = "FERROLB_SOURCE")]
    source: SourceKind,
    /// Directory of YAML for `--source file`.
    #[arg(long, env = "FERROLB_DIR", required_if_eq("source", "file"))]
    dir: Option<PathBuf>,
    /// This node's name (as in its Node object).
    #[arg(long, env = "NODE_NAME")]
    node: String,
    /// The loadBalancerClass served.
    #[arg(long, default_value = DEFAULT_LOAD_BALANCER_CLASS, env = "FERROLB_LOAD_BALANCER_CLASS")]
    load_balancer_class: String,
    /// Gratuitous ARPs / unsolicited NAs after the first one on takeover.
    #[arg(long, default_value_t = 4)]
    announce_repeats: u32,
    /// Time between them, in milliseconds.
    #[arg(long, default_value_t = 1100)]
    announce_interval_ms: u64,
    /// Seconds between interface rescans.
    #[arg(long, default_value_t = 5)]
    interface_rescan_seconds: u64,
    /// Address of /metrics, /healthz and /readyz ("" to disable).
    #[arg(long, default_value = "0.0.0.0:7473", env = "FERROLB_METRICS_ADDRESS")]
    metrics_address: String,
    /// FerroLB's namespace (configuration, Secrets, ServiceL2Status objects).
    #[arg(long, default_value = "ferrolb-system", env = "POD_NAMESPACE")]
    namespace: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "FERROLB_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter.
    #[arg(long, default_value = "info", env = "FERROLB_LOG_LEVEL")]
    log_level: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    ferrolb_crds::process::init_logging(
        matches!(args.log_format, LogFormat::Json),
        &args.log_level,
    );
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut registry = Registry::default();
    let metrics = Arc::new(L2Metrics::new(&mut registry));
    let bgp_metrics = Arc::new(BgpMetrics::new(&mut registry));
    let (ready_tx, ready_rx) = watch::channel(false);
    let mut server = None;
    if !args.metrics_address.is_empty() {
        let addr: SocketAddr = args.metrics_address.parse().context("--metrics-address")?;
        let (bound, task) = serve(
            addr,
            Endpoints {
                registry: Arc::new(registry),
                ready: ready_rx,
            },
        )
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(%bound, "serving /metrics, /healthz, /readyz");
        server = Some(task);
    }
    let opts = SpeakerOptions {
        node: args.node.clone(),
        class: args.load_balancer_class.clone(),
        announce: AnnouncePolicy {
            repeats: args.announce_repeats,
            interval: Duration::from_millis(args.announce_interval_ms),
        },
        rescan: Duration::from_secs(args.interface_rescan_seconds.max(1)),
    };
    let shutdown = ferrolb_crds::process::shutdown_signal();
    let result = match args.source {
        SourceKind::File => {
            let dir = args
                .dir
                .clone()
                .context("--dir is required with --source file")?;
            let source = FileSource::new(&dir);
            let watch = source.watch()?;
            runner::run(
                &watch,
                &source,
                opts,
                metrics,
                bgp_metrics,
                ready_tx,
                shutdown,
            )
            .await
        }
        SourceKind::Kube => {
            let client = kube::Client::try_default()
                .await
                .context("cannot reach the Kubernetes API (in-cluster config or kubeconfig)")?;
            let watch = watch_cluster(
                client.clone(),
                KubeWatchOptions {
                    namespace: args.namespace.clone(),
                    nodes: true,
                    endpoint_slices: true,
                },
            )
            .await;
            let sink = KubeSink::new(
                client,
                &args.namespace,
                "ferrolb-speaker",
                Some(args.node.clone()),
            );
            runner::run(
                &watch,
                &sink,
                opts,
                metrics,
                bgp_metrics,
                ready_tx,
                shutdown,
            )
            .await
        }
    };
    if let Some(t) = server {
        t.abort();
    }
    result
}
