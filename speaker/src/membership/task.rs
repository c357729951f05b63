//! The UDP side of membership: its own thread and single-threaded runtime, so a
//! busy speaker (a big snapshot, many sessions) never delays a heartbeat.
//!
//! ```text
//! runner --Seed/Watch/Applied/Leave--> [membership thread] --View--> runner
//!                                        |  ^
//!                                  UDP (port 7946) to and from the other speakers
//! ```

use std::collections::BTreeSet;
use std::net::{SocketAddr, SocketAddrV6, UdpSocket as StdUdp};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use super::detector::{Event, Membership, Send, Timing};
use super::wire::{self, State, WireError};
use crate::metrics::MembershipMetrics;

/// Settings.
#[derive(Clone, Debug)]
pub struct MembershipOptions {
    /// UDP port on every node.
    pub port: u16,
    /// Shared key authenticating members (HMAC); `None` accepts any sender.
    pub key: Option<Vec<u8>>,
    /// Timers.
    pub timing: Timing,
}

/// What the runner needs to know.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    /// Alive members, this node included.
    pub alive: BTreeSet<String>,
    /// This node sees a strict majority alive.
    pub quorum: bool,
    /// Bumped on every change; the runner reports back which one it applied.
    pub generation: u64,
}

enum Command {
    Seed(Vec<(String, SocketAddr)>),
    Watch(BTreeSet<String>),
    Applied(u64),
    Leave(oneshot::Sender<()>),
}

/// The runner's handle on the membership thread.
pub struct Handle {
    /// The current view.
    pub view: watch::Receiver<View>,
    cmd: mpsc::UnboundedSender<Command>,
}

impl Handle {
    /// Sets the members (from the Node objects).
    pub fn seed(&self, nodes: Vec<(String, SocketAddr)>) {
        let _ = self.cmd.send(Command::Seed(nodes));
    }

    /// Sets the members this node would take over from.
    pub fn watch(&self, names: BTreeSet<String>) {
        let _ = self.cmd.send(Command::Watch(names));
    }

    /// Reports that the view of `generation` is in effect (addresses taken over).
    pub fn applied(&self, generation: u64) {
        let _ = self.cmd.send(Command::Applied(generation));
    }

    /// Tells the group this node leaves and waits until the others have taken
    /// over (or the leave timeout passed).
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Leave(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Binds the port and starts the thread.
pub fn start(
    me: &str,
    opts: MembershipOptions,
    metrics: Arc<MembershipMetrics>,
) -> anyhow::Result<Handle> {
    // Dual stack when the host has IPv6, IPv4 only otherwise.
    let sock = StdUdp::bind(("::", opts.port))
        .or_else(|_| StdUdp::bind(("0.0.0.0", opts.port)))
        .with_context(|| format!("cannot bind the membership port {} (UDP)", opts.port))?;
    sock.set_nonblocking(true)?;
    // No judgement before the first members arrive: without a quorum the runner goes
    // by the Node objects, instead of this node electing itself for everything.
    let (view_tx, view_rx) = watch::channel(View::default());
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let me = me.to_string();
    std::thread::Builder::new()
        .name("membership".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the membership runtime");
                    return;
                }
            };
            rt.block_on(async move {
                match UdpSocket::from_std(sock) {
                    Ok(sock) => run(me, opts, sock, cmd_rx, view_tx, metrics).await,
                    Err(e) => tracing::error!(error = %e, "membership socket"),
                }
            });
        })?;
    Ok(Handle {
        view: view_rx,
        cmd: cmd_tx,
    })
}

fn incarnation_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64)
}

async fn run(
    me: String,
    opts: MembershipOptions,
    sock: UdpSocket,
    mut cmd: mpsc::UnboundedReceiver<Command>,
    view_tx: watch::Sender<View>,
    metrics: Arc<MembershipMetrics>,
) {
    let v6 = sock.local_addr().is_ok_and(|a| a.is_ipv6());
    let key = opts.key.clone();
    let mut mem = Membership::new(&me, incarnation_now(), opts.timing, Instant::now());
    let tick_every =
        (opts.timing.heartbeat / 5).clamp(Duration::from_millis(1), Duration::from_millis(5));
    let mut tick = tokio::time::interval(tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut buf = vec![0u8; 2048];
    let mut generation = 0u64;
    let mut applied = 0u64;
    let mut leaving: Option<oneshot::Sender<()>> = None;
    let mut last_view = view_tx.borrow().clone();
    let mut seeded = false;
    let mut warned: std::collections::HashMap<std::net::IpAddr, Instant> = Default::default();
    tracing::info!(
        port = opts.port,
        authenticated = key.is_some(),
        "membership started"
    );
    loop {
        let out: Vec<Send> = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, src)) => match wire::decode(&buf[..n], key.as_deref()) {
                    Ok(m) => {
                        metrics.received.inc();
                        mem.receive(src, &m, Instant::now())
                    }
                    Err(e) => {
                        let reason = match e {
                            WireError::BadMac => "authentication",
                            WireError::Foreign => "foreign",
                            _ => "malformed",
                        };
                        metrics.refused.get_or_create(&crate::metrics::ReasonLabels { reason: reason.into() }).inc();
                        // A wrong key is a misconfiguration worth a warning, once a
                        // minute per sender; anything else is noise on the port.
                        let warn_again = warned.get(&src.ip()).is_none_or(|t: &Instant| t.elapsed() > Duration::from_secs(60));
                        if e == WireError::BadMac && warn_again {
                            warned.insert(src.ip(), Instant::now());
                            tracing::warn!(%src, error = %e, "membership message refused");
                        } else {
                            tracing::debug!(%src, error = %e, "membership message refused");
                        }
                        Vec::new()
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, "membership receive");
                    Vec::new()
                }
            },
            _ = tick.tick() => mem.tick(Instant::now()),
            c = cmd.recv() => match c {
                None => break,
                Some(Command::Seed(nodes)) => {
                    seeded = true;
                    mem.seed(&nodes, Instant::now());
                    Vec::new()
                }
                Some(Command::Watch(names)) => mem.watch(names, Instant::now()),
                Some(Command::Applied(g)) => {
                    applied = applied.max(g);
                    Vec::new()
                }
                Some(Command::Leave(done)) => {
                    leaving = Some(done);
                    metrics.handovers.get_or_create(&crate::metrics::DirectionLabels { direction: "sent".into() }).inc();
                    tracing::info!("leaving the group: waiting for the others to take over");
                    mem.leave(Instant::now())
                }
            },
        };
        let mut out = out;
        // Departures are acknowledged once the runner runs the view without the
        // leaver, i.e. the new owners are answering.
        if applied >= generation {
            out.extend(mem.acknowledge_leaves());
        }
        for s in out {
            send(&sock, v6, &s, key.as_deref()).await;
        }
        for e in mem.take_events() {
            log_event(&e, &metrics);
        }
        let view = View {
            alive: mem.alive(),
            quorum: mem.has_quorum(),
            generation,
        };
        if seeded && (view.alive != last_view.alive || view.quorum != last_view.quorum) {
            generation += 1;
            let view = View { generation, ..view };
            let counts = |s: State| mem.members().values().filter(|m| m.state == s).count() as i64;
            metrics
                .members
                .get_or_create(&crate::metrics::StateLabels {
                    state: "alive".into(),
                })
                .set(counts(State::Alive) + 1);
            metrics
                .members
                .get_or_create(&crate::metrics::StateLabels {
                    state: "dead".into(),
                })
                .set(counts(State::Dead));
            metrics
                .members
                .get_or_create(&crate::metrics::StateLabels {
                    state: "left".into(),
                })
                .set(counts(State::Left));
            if !view.quorum {
                tracing::warn!(
                    alive = view.alive.len(),
                    members = mem.members().len() + 1,
                    "no majority of speakers reachable: taking over nothing the Node objects do not confirm"
                );
            }
            last_view = view.clone();
            view_tx.send_replace(view);
        }
        if leaving.is_some() && mem.leave_done(Instant::now()) {
            if let Some(done) = leaving.take() {
                let _ = done.send(());
            }
            break;
        }
    }
}

async fn send(sock: &UdpSocket, v6: bool, s: &Send, key: Option<&[u8]>) {
    let to = match s.to {
        SocketAddr::V4(a) if v6 => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        SocketAddr::V6(a) if !v6 => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), a.port()),
            None => return,
        },
        other => other,
    };
    match wire::encode(&s.msg, key) {
        Ok(bytes) => {
            if let Err(e) = sock.send_to(&bytes, to).await {
                tracing::debug!(%to, error = %e, "membership send");
            }
        }
        Err(e) => tracing::warn!(error = %e, "membership message not sent"),
    }
}

fn log_event(e: &Event, metrics: &MembershipMetrics) {
    match e {
        Event::Suspected(n) => {
            metrics.suspicions.inc();
            tracing::debug!(member = %n, "member silent: probing it directly and through others");
        }
        Event::Cleared(n) => tracing::debug!(member = %n, "member answered"),
        Event::Inconclusive(n) => {
            tracing::warn!(member = %n, "member silent and no other member answered for it: not declaring it dead (is this node cut off?)")
        }
        Event::Declared(n) => {
            metrics.declared.inc();
            tracing::warn!(member = %n, "member declared dead: it and the others it was probed through did not answer");
        }
        Event::Changed(n, s) => {
            if *s == State::Left {
                metrics
                    .handovers
                    .get_or_create(&crate::metrics::DirectionLabels {
                        direction: "received".into(),
                    })
                    .inc();
            }
            tracing::info!(member = %n, state = ?s, "member state changed");
        }
        Event::Refuted(inc) => {
            metrics.refutations.inc();
            tracing::warn!(
                incarnation = inc,
                "this node was reported dead: refuting with a new incarnation"
            );
        }
    }
}
