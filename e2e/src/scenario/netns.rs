//! Running code inside a network namespace from this process: a thread joins the
//! namespace (setns applies to the calling thread only) and every thread it starts
//! inherits it. The lab's clients use it, so a request costs no process start.

use std::fs::File;
use std::thread::JoinHandle;

use anyhow::Context;
use nix::sched::{CloneFlags, setns};

/// Runs `f` on a new thread inside the named namespace (`ip netns` name).
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<JoinHandle<anyhow::Result<T>>> {
    let path = format!("/run/netns/{ns}");
    let file = File::open(&path).with_context(|| format!("opening {path}"))?;
    Ok(std::thread::spawn(move || {
        setns(&file, CloneFlags::CLONE_NEWNET).context("setns into the namespace")?;
        Ok(f())
    }))
}

/// Runs `f` inside the named namespace and waits for it.
pub fn run_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    spawn_in(ns, f)?
        .join()
        .map_err(|_| anyhow::anyhow!("the thread in {ns} panicked"))?
}
