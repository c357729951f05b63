//! What both binaries do the same way as processes: logging and shutdown signals.

use std::io::IsTerminal;

use tokio::sync::watch;

/// Installs the global tracing subscriber on stderr: JSON lines or text, with an
/// `EnvFilter` expression (an invalid one falls back to `info`).
pub fn init_logging(json: bool, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: in a file or a log collector they are noise that
    // breaks grep.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// A receiver that turns true on SIGTERM or SIGINT. Needs a tokio runtime.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = term => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    rx
}
