//! One task per interface: answer ARP/NDP for the owned set, announce takeovers,
//! keep solicited-node memberships. Dropping the handle stops answering at once.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use pnet_base::MacAddr;
use tokio::sync::watch;
use tokio::time::Instant;

use super::announcer::{AnnouncePolicy, Schedule};
use super::interfaces::Interface;
use super::responder::{Dropped, Owned, respond_arp, respond_ndp};
use super::socket::{Groups, PacketSocket};
use super::{arp, ndp};
use crate::metrics::{AddrLabels, L2Metrics};

/// Where foreign claims on an owned address go: (address, the other host's MAC).
pub type Conflicts = tokio::sync::mpsc::UnboundedSender<(IpAddr, String)>;

/// A running interface task.
pub struct IfaceTask {
    owned: watch::Sender<Arc<Owned>>,
    task: tokio::task::JoinHandle<()>,
    /// The interface as it was when the task started (a changed index or MAC
    /// restarts the task).
    pub iface: Interface,
}

impl Drop for IfaceTask {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IfaceTask {
    /// Opens the sockets and starts answering for `owned`. Fails only when ARP
    /// cannot be opened (no CAP_NET_RAW); an interface without IPv6 answers ARP only.
    pub fn start(
        iface: Interface,
        owned: Owned,
        policy: AnnouncePolicy,
        metrics: Arc<L2Metrics>,
        conflicts: Conflicts,
    ) -> std::io::Result<Self> {
        let arp_sock = PacketSocket::arp(iface.index)?;
        let ndp_sock = match PacketSocket::ndp(iface.index) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(iface = %iface.name, error = %e, "no NDP on this interface; answering ARP only");
                None
            }
        };
        let groups = Groups::new(iface.index).ok();
        let (tx, rx) = watch::channel(Arc::new(Owned::default()));
        tx.send_replace(Arc::new(owned));
        let task = tokio::spawn(run(
            iface.clone(),
            arp_sock,
            ndp_sock,
            groups,
            rx,
            policy,
            metrics,
            conflicts,
        ));
        Ok(IfaceTask {
            owned: tx,
            task,
            iface,
        })
    }

    /// Replaces the owned set; takes effect before the next frame is answered.
    pub fn set(&self, owned: Owned) {
        if **self.owned.borrow() != owned {
            self.owned.send_replace(Arc::new(owned));
        }
    }
}

/// `respond_arp` or `respond_ndp`.
type Responder = fn(&[u8], &Owned, MacAddr) -> Result<Vec<u8>, Dropped>;

fn labels(ip: IpAddr, iface: &str) -> AddrLabels {
    AddrLabels {
        ip: ip.to_string(),
        interface: iface.to_string(),
    }
}

async fn recv_opt(s: &Option<PacketSocket>, buf: &mut [u8]) -> std::io::Result<usize> {
    match s {
        Some(s) => s.recv(buf).await,
        None => std::future::pending().await,
    }
}

fn target_of(frame: &[u8]) -> Option<IpAddr> {
    arp::parse(frame)
        .map(|a| IpAddr::V4(a.target_ip))
        .ok()
        .or_else(|| ndp::parse(frame).ok().map(|n| IpAddr::V6(n.target)))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    iface: Interface,
    arp_sock: PacketSocket,
    ndp_sock: Option<PacketSocket>,
    mut groups: Option<Groups>,
    mut rx: watch::Receiver<Arc<Owned>>,
    policy: AnnouncePolicy,
    metrics: Arc<L2Metrics>,
    conflicts: Conflicts,
) {
    let mac: MacAddr = iface.mac;
    let name = iface.name.clone();
    let mut owned: Arc<Owned> = Arc::new(Owned::default());
    let mut sched = Schedule::default();
    let mut buf4 = [0u8; 1600];
    let mut buf6 = [0u8; 1600];
    // The first set arrives through the channel like every later one.
    rx.mark_changed();
    loop {
        let next = sched.next();
        tokio::select! {
            biased;
            c = rx.changed() => {
                if c.is_err() { return; }
                let new = rx.borrow_and_update().clone();
                let now = Instant::now();
                for ip in new.v4.iter().map(|a| IpAddr::V4(*a)).chain(new.v6.iter().map(|a| IpAddr::V6(*a))) {
                    let had = match ip { IpAddr::V4(a) => owned.v4.contains(&a), IpAddr::V6(a) => owned.v6.contains(&a) };
                    if !had {
                        tracing::info!(iface = %name, %ip, "taking over: announcing");
                        sched.takeover(ip, now, &policy);
                    }
                }
                for ip in owned.v4.iter().map(|a| IpAddr::V4(*a)).chain(owned.v6.iter().map(|a| IpAddr::V6(*a))) {
                    let keeps = match ip { IpAddr::V4(a) => new.v4.contains(&a), IpAddr::V6(a) => new.v6.contains(&a) };
                    if !keeps {
                        tracing::info!(iface = %name, %ip, "no longer owned: silent");
                        sched.cancel(&ip);
                    }
                }
                if let Some(g) = groups.as_mut() {
                    let want: BTreeSet<Ipv6Addr> = new.v6.iter().map(ndp::solicited_node).collect();
                    if let Err(e) = g.set(&want) {
                        tracing::warn!(iface = %name, error = %e, "cannot join solicited-node groups");
                    }
                }
                metrics.owned.set(i64::try_from(new.v4.len() + new.v6.len()).unwrap_or(i64::MAX));
                owned = new;
            }
            r = arp_sock.recv(&mut buf4) => match r {
                Ok(n) => answer(&buf4[..n], &owned, mac, &name, &arp_sock, &metrics, &conflicts, respond_arp),
                Err(e) => tracing::warn!(iface = %name, error = %e, "ARP receive failed"),
            },
            r = recv_opt(&ndp_sock, &mut buf6) => match (r, &ndp_sock) {
                (Ok(n), Some(s)) => answer(&buf6[..n], &owned, mac, &name, s, &metrics, &conflicts, respond_ndp),
                (Err(e), _) => tracing::warn!(iface = %name, error = %e, "NDP receive failed"),
                _ => {}
            },
            _ = async { if let Some(t) = next { tokio::time::sleep_until(t).await } else { std::future::pending::<()>().await } } => {
                for ip in sched.take_due(Instant::now()) {
                    let (frame, sock) = match ip {
                        IpAddr::V4(a) => (arp::gratuitous(a, mac), Some(&arp_sock)),
                        IpAddr::V6(a) => (ndp::unsolicited(a, mac), ndp_sock.as_ref()),
                    };
                    if let Some(s) = sock {
                        match s.send(&frame) {
                            Ok(()) => metrics.announcements.get_or_create(&labels(ip, &name)).inc(),
                            Err(e) => { tracing::warn!(iface = %name, %ip, error = %e, "cannot send announcement"); 0 }
                        };
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn answer(
    frame: &[u8],
    owned: &Owned,
    mac: MacAddr,
    iface: &str,
    sock: &PacketSocket,
    metrics: &L2Metrics,
    conflicts: &Conflicts,
    respond: Responder,
) {
    match respond(frame, owned, mac) {
        Ok(reply) => {
            if let Some(ip) = target_of(frame) {
                metrics.requests.get_or_create(&labels(ip, iface)).inc();
                if let Err(e) = sock.send(&reply) {
                    tracing::warn!(iface, %ip, error = %e, "cannot send reply");
                } else {
                    metrics.replies.get_or_create(&labels(ip, iface)).inc();
                }
            }
        }
        Err(Dropped::Conflict { ip, mac: other }) => {
            tracing::debug!(iface, %ip, other_mac = %other, "another host claims an address this node announces");
            metrics.conflicts.get_or_create(&labels(ip, iface)).inc();
            // The runner turns it into an Event and a condition, rate-limited.
            let _ = conflicts.send((ip, other.to_string()));
        }
        Err(_) => {}
    }
}
