//! `ferrolb-controller`: assigns load-balancer addresses to Services.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use ferrolb_controller::metrics::Metrics;
use ferrolb_controller::{run_file, run_kube};
use ferrolb_crds::annotations::DEFAULT_LOAD_BALANCER_CLASS;
use ferrolb_crds::serve::{Endpoints, serve};
use k8s_openapi::jiff::SignedDuration;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SourceKind {
    /// The Kubernetes API (in-cluster config or kubeconfig).
    Kube,
    /// A directory of YAML (standalone mode).
    File,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutputFormat {
    /// One line per link, for a terminal.
    Text,
    /// The chain as JSON (schema in docs/troubleshooting.md).
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Explain why a Service's address is (not) reachable: Service -> address ->
    /// pool -> advertisement -> eligible nodes -> owner/peers -> state. Exits 0
    /// when reachable, 1 when a link is broken, 2 when it cannot tell.
    Diagnose {
        /// The Service, as NAMESPACE/NAME (NAME alone: namespace default).
        service: String,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
        output: OutputFormat,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Assigns addresses from IPAddressPools to Services of type LoadBalancer.
#[derive(Parser, Debug)]
#[command(name = "ferrolb-controller", version)]
struct Args {
    /// Where cluster state comes from.
    #[arg(
        long,
        value_enum,
        default_value = "kube",
        env = "FERROLB_SOURCE",
        global = true
    )]
    source: SourceKind,
    /// Directory of YAML for `--source file`.
    #[arg(long, env = "FERROLB_DIR", global = true)]
    dir: Option<PathBuf>,
    /// Reconcile everything once, write status and exit.
    #[arg(long)]
    once: bool,
    /// The loadBalancerClass served (Services without a class are served too).
    #[arg(long, default_value = DEFAULT_LOAD_BALANCER_CLASS, env = "FERROLB_LOAD_BALANCER_CLASS", global = true)]
    load_balancer_class: String,
    /// Address of /metrics, /healthz and /readyz ("" to disable).
    #[arg(long, default_value = "0.0.0.0:7472", env = "FERROLB_METRICS_ADDRESS")]
    metrics_address: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "text", env = "FERROLB_LOG_FORMAT")]
    log_format: LogFormat,
    /// FerroLB's namespace: configuration objects, Secrets and the leader Lease.
    #[arg(
        long,
        default_value = "ferrolb-system",
        env = "POD_NAMESPACE",
        global = true
    )]
    namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "ferrolb-controller", env = "FERROLB_LEASE_NAME")]
    lease_name: String,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a node may run no speaker, or a BGP session stay down, before the
    /// Services concerned get `ferrolb.io/Announced=False` (NoSpeaker, PeersDown).
    #[arg(long, default_value_t = 60, env = "FERROLB_SPEAKER_GRACE_SECONDS")]
    speaker_grace_seconds: u32,
    /// Log filter, e.g. `info` or `ferrolb_controller=debug`.
    #[arg(long, default_value = "info", env = "FERROLB_LOG_LEVEL")]
    log_level: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if matches!(args.source, SourceKind::File) && args.dir.is_none() {
        eprintln!("error: --dir is required with --source file");
        return std::process::ExitCode::from(2);
    }
    if let Some(Command::Diagnose { service, output }) = &args.command {
        // Diagnosis prints for a person or a script: logs go to stderr, warnings only.
        ferrolb_crds::process::init_logging(false, "warn");
        return diagnose(&args, service, *output).await;
    }
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
    let metrics = Arc::new(Metrics::new(&mut registry));
    let (ready_tx, ready_rx) = watch::channel(false);
    let mut server = None;
    if !args.once && !args.metrics_address.is_empty() {
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
    let shutdown = ferrolb_crds::process::shutdown_signal();
    let grace = SignedDuration::from_secs(i64::from(args.speaker_grace_seconds));
    let result = match args.source {
        SourceKind::File => {
            let dir = args
                .dir
                .clone()
                .context("--dir is required with --source file")?;
            run_file::run(
                dir,
                args.load_balancer_class.clone(),
                args.once,
                grace,
                metrics,
                ready_tx,
                shutdown,
            )
            .await
        }
        SourceKind::Kube => {
            let identity = args.identity.clone().unwrap_or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "ferrolb-controller".into())
            });
            let opts = run_kube::KubeOptions {
                class: args.load_balancer_class.clone(),
                namespace: args.namespace.clone(),
                lease_name: args.lease_name.clone(),
                identity,
                speaker_grace: grace,
            };
            run_kube::run(opts, metrics, ready_tx, shutdown).await
        }
    };
    if let Some(t) = server {
        t.abort();
    }
    result
}

/// `ferrolb-controller diagnose`: 0 reachable, 1 a link is broken, 2 cannot tell.
async fn diagnose(args: &Args, target: &str, output: OutputFormat) -> std::process::ExitCode {
    use ferrolb_controller::diagnose::{self, Input, load, render};
    let (ns, name) = match target.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => (ns, name),
        None if !target.is_empty() => ("default", target),
        _ => {
            eprintln!("error: the Service must be given as NAMESPACE/NAME, not {target:?}");
            return std::process::ExitCode::from(2);
        }
    };
    let loaded = match (args.source, args.dir.as_deref()) {
        (SourceKind::File, Some(dir)) => load::from_dir(dir),
        (SourceKind::File, None) => Err(anyhow::anyhow!("--dir is required with --source file")),
        (SourceKind::Kube, _) => load::from_cluster(&args.namespace).await,
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let d = diagnose::diagnose(
        &Input {
            snapshot: &loaded.snapshot,
            class: &args.load_balancer_class,
            speakers: &loaded.speakers,
            speakers_complete: loaded.speakers_complete,
        },
        ns,
        name,
    );
    match output {
        OutputFormat::Text => print!("{}", render::text(&d)),
        OutputFormat::Json => println!("{}", render::json(&d)),
    }
    if d.reachable {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
