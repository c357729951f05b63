//! `ferrolb-speaker`: makes load-balancer addresses reachable from the network.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use ferrolb_crds::annotations::DEFAULT_LOAD_BALANCER_CLASS;
use ferrolb_crds::serve::{Endpoints, serve};
use ferrolb_crds::services::LbService;
use ferrolb_crds::source::FileSource;
use ferrolb_crds::source::kube::{KubeSink, KubeWatchOptions, watch_cluster};
use ferrolb_speaker::findings::probe;
use ferrolb_speaker::layer2::announcer::AnnouncePolicy;
use ferrolb_speaker::membership::detector::Timing;
use ferrolb_speaker::membership::task::MembershipOptions;
use ferrolb_speaker::metrics::{BgpMetrics, L2Metrics, MembershipMetrics};
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
    /// FerroLB's namespace (configuration, Secrets, the speakers' status objects).
    #[arg(long, default_value = "ferrolb-system", env = "POD_NAMESPACE")]
    namespace: String,
    /// This speaker's pod (downward API), with --pod-uid: made the owner of its
    /// status objects, so that they are deleted with the pod.
    #[arg(long, env = "POD_NAME", requires = "pod_uid")]
    pod_name: Option<String>,
    /// The pod's UID (downward API `metadata.uid`).
    #[arg(long, env = "POD_UID", requires = "pod_name")]
    pod_uid: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "FERROLB_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter.
    #[arg(long, default_value = "info", env = "FERROLB_LOG_LEVEL")]
    log_level: String,
    /// UDP port of speaker membership on every node; 0 turns membership off (failover
    /// then waits for the Node to turn NotReady).
    #[arg(long, default_value_t = 7946, env = "FERROLB_MEMBERLIST_PORT")]
    memberlist_port: u16,
    /// Shared key authenticating membership messages (HMAC-SHA256); the same on
    /// every speaker. Prefer --memberlist-key-file or the environment.
    #[arg(long, env = "FERROLB_MEMBERLIST_KEY", hide_env_values = true)]
    memberlist_key: Option<String>,
    /// File holding the shared key (e.g. a mounted Secret).
    #[arg(long, env = "FERROLB_MEMBERLIST_KEY_FILE")]
    memberlist_key_file: Option<PathBuf>,
    /// Heartbeat to the nodes that would take over from this one.
    #[arg(long, default_value_t = 10)]
    memberlist_heartbeat_ms: u64,
    /// Silence of the owner after which its successor checks it.
    #[arg(long, default_value_t = 30)]
    memberlist_suspect_ms: u64,
    /// How long the members asked to check a silent node wait for it.
    #[arg(long, default_value_t = 15)]
    memberlist_relay_timeout_ms: u64,
    /// Longest wait on SIGTERM for the others to take over.
    #[arg(long, default_value_t = 2000)]
    handover_timeout_ms: u64,
}

impl Args {
    fn membership(&self) -> anyhow::Result<Option<MembershipOptions>> {
        if self.memberlist_port == 0 {
            return Ok(None);
        }
        let key = match (&self.memberlist_key_file, &self.memberlist_key) {
            (Some(f), _) => {
                let k = std::fs::read(f)
                    .with_context(|| format!("--memberlist-key-file {}", f.display()))?;
                Some(k.trim_ascii().to_vec())
            }
            (None, Some(k)) => Some(k.trim().as_bytes().to_vec()),
            (None, None) => None,
        };
        if key.as_ref().is_some_and(|k| k.is_empty()) {
            anyhow::bail!("the memberlist key is empty: set a non-empty key or none");
        }
        let ms = Duration::from_millis;
        let heartbeat = ms(self.memberlist_heartbeat_ms.max(1));
        let suspect = ms(self.memberlist_suspect_ms);
        if suspect < heartbeat * 2 {
            anyhow::bail!(
                "--memberlist-suspect-ms ({}) must be at least twice --memberlist-heartbeat-ms ({})",
                self.memberlist_suspect_ms,
                self.memberlist_heartbeat_ms
            );
        }
        Ok(Some(MembershipOptions {
            port: self.memberlist_port,
            key,
            timing: Timing {
                heartbeat,
                suspect_after: suspect,
                relay_timeout: ms(self.memberlist_relay_timeout_ms.max(1)),
                leave_timeout: ms(self.handover_timeout_ms),
                ..Timing::default()
            },
        }))
    }
}

fn main() -> std::process::ExitCode {
    // Before the runtime starts its threads: each would get an arena of its own.
    ferrolb_speaker::memory::tune_allocator();
    let args = Args::parse();
    ferrolb_crds::process::init_logging(
        matches!(args.log_format, LogFormat::Json),
        &args.log_level,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the speaker's loop as a task on the runtime's workers. Awaited in `main`
/// it ran on the main thread instead, which the kernel had to wake for every
/// snapshot: on a busy 2-core node that wake-up alone took 6-8 ms.
async fn on_worker(
    f: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    tokio::spawn(f).await.context("the speaker loop panicked")?
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut registry = Registry::default();
    let metrics = Arc::new(L2Metrics::new(&mut registry));
    let bgp_metrics = Arc::new(BgpMetrics::new(&mut registry));
    let membership_metrics = Arc::new(MembershipMetrics::new(&mut registry));
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
    let mut opts = SpeakerOptions {
        node: args.node.clone(),
        class: args.load_balancer_class.clone(),
        announce: AnnouncePolicy {
            repeats: args.announce_repeats,
            interval: Duration::from_millis(args.announce_interval_ms),
        },
        rescan: Duration::from_secs(args.interface_rescan_seconds.max(1)),
        kube_proxy: None,
    };
    let membership = match args.membership()? {
        Some(m) => {
            let port = m.port;
            let handle =
                ferrolb_speaker::membership::task::start(&args.node, m, membership_metrics)?;
            Some(runner::Membership { handle, port })
        }
        None => {
            tracing::warn!(
                "membership is off (--memberlist-port 0): failover waits for the Node to turn NotReady"
            );
            None
        }
    };
    let shutdown = ferrolb_crds::process::shutdown_signal();
    let result = match args.source {
        SourceKind::File => {
            let dir = args
                .dir
                .clone()
                .context("--dir is required with --source file")?;
            let source = FileSource::new(&dir);
            let watch = source.watch_as::<LbService>()?;
            on_worker(async move {
                runner::run(
                    &watch,
                    &source,
                    opts,
                    metrics,
                    bgp_metrics,
                    membership,
                    ready_tx,
                    shutdown,
                )
                .await
            })
            .await
        }
        SourceKind::Kube => {
            let client = kube::Client::try_default()
                .await
                .context("cannot reach the Kubernetes API (in-cluster config or kubeconfig)")?;
            // kube-proxy's configuration adds its words to the strictARP finding.
            let (kp_tx, kp_rx) = watch::channel(Default::default());
            opts.kube_proxy = Some(kp_rx);
            tokio::spawn(probe::poll_kube_proxy(
                client.clone(),
                kp_tx,
                probe::KUBE_PROXY_EVERY,
            ));
            let watch = watch_cluster::<LbService>(
                client.clone(),
                KubeWatchOptions {
                    namespace: args.namespace.clone(),
                    nodes: true,
                    endpoint_slices: true,
                    speakers: false,
                },
            )
            .await;
            let mut sink = KubeSink::new(
                client,
                &args.namespace,
                "ferrolb-speaker",
                Some(args.node.clone()),
            );
            if let (Some(name), Some(uid)) = (&args.pod_name, &args.pod_uid) {
                sink = sink.owned_by_pod(name, uid);
            }
            on_worker(async move {
                runner::run(
                    &watch,
                    &sink,
                    opts,
                    metrics,
                    bgp_metrics,
                    membership,
                    ready_tx,
                    shutdown,
                )
                .await
            })
            .await
        }
    };
    if let Some(t) = server {
        t.abort();
    }
    result
}
