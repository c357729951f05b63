//! The thin async driver of one BGP session: it owns the socket and the timers,
//! feeds events to the [`Fsm`] and executes its actions. Nothing here decides.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ferrolb_crds::config::{Peer, PeerAsn};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::adj_out::{AdjOut, Change, Desired};
pub use super::families::Withheld;
use super::families::{self, IPV4_UNICAST, IPV6_UNICAST};
use super::fsm::{Action, Event, Expect, Fsm, Negotiated, PeerAsnRule, State};
use super::graceful_restart::{self, GracefulRestart};
use super::nexthop::{self, NextHops};
use super::packet::{self, LocalOpen, Message};
use super::routes::RouteSpec;
pub use super::routes::Table;
use super::update::{Attrs, Encoding};
use crate::metrics::BgpMetrics;

/// What the advertised table was planned from. While the session's families and
/// next hops stay the same, a new table is planned from its difference to this
/// one: a new Service costs its own prefixes, not a pass over 10,000.
#[derive(Clone)]
struct Planned {
    table: Arc<Table>,
    families: Vec<(u16, u8)>,
    next_hops: NextHops,
}

/// What a session reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    /// FSM state.
    pub state: State,
    /// Prefixes the peer has from us.
    pub advertised: usize,
    /// Why the last session ended, if it did.
    pub last_error: Option<String>,
    /// Prefixes of a family the session could carry but does not, per family,
    /// with the reason (no next hop of that family, or the peer did not
    /// negotiate it). Empty while the session is not Established.
    pub withheld: Vec<Withheld>,
    /// Both sides sent the Graceful Restart capability (RFC 4724): the peer keeps
    /// our routes while the speaker restarts.
    pub graceful_restart: bool,
}

/// A running session.
pub struct Session {
    routes: watch::Sender<Arc<Table>>,
    status: watch::Receiver<SessionStatus>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    /// Starts the session (it connects and retries by itself).
    pub fn start(
        peer: Peer,
        router_id: Option<Ipv4Addr>,
        table: Arc<Table>,
        metrics: Arc<BgpMetrics>,
    ) -> Session {
        let (routes, routes_rx) = watch::channel(table);
        let (status_tx, status) = watch::channel(SessionStatus {
            state: State::Idle,
            advertised: 0,
            last_error: None,
            withheld: Vec::new(),
            graceful_restart: false,
        });
        let (stop, stop_rx) = watch::channel(false);
        let task =
            tokio::spawn(Driver::new(peer, router_id, routes_rx, status_tx, metrics).run(stop_rx));
        Session {
            routes,
            status,
            stop,
            task,
        }
    }

    /// Replaces the desired routes; only the difference is sent (an equal table
    /// sends nothing). Not compared here: the caller passes a table it knows
    /// changed, and comparing 10,000 routes sat between a new Service and its
    /// UPDATE.
    pub fn set_routes(&self, table: Arc<Table>) {
        self.routes.send_replace(table);
    }

    /// The latest status.
    pub fn status(&self) -> SessionStatus {
        self.status.borrow().clone()
    }

    /// A receiver of status changes.
    pub fn watch_status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// Ends the session with a Cease NOTIFICATION and waits (briefly) for it to go out.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

type Connecting = Pin<Box<dyn std::future::Future<Output = std::io::Result<TcpStream>> + Send>>;

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    local: IpAddr,
    /// Read from the interfaces when the connection is made.
    next_hops: NextHops,
}

/// The session's next hops for the connection from `local`.
fn next_hops(peer: &Peer, local: IpAddr) -> NextHops {
    match nexthop::scan() {
        Ok(addrs) => nexthop::select(local, peer.address, &addrs),
        Err(e) => {
            let why = format!("cannot read the node's addresses: {e}");
            let none = nexthop::select(local, peer.address, &[]);
            NextHops {
                v4: none.v4.map_err(|_| why.clone()),
                v6: none.v6.map_err(|_| why),
            }
        }
    }
}

struct Driver {
    peer: Peer,
    router_id: Option<Ipv4Addr>,
    fsm: Fsm,
    routes: watch::Receiver<Arc<Table>>,
    status: watch::Sender<SessionStatus>,
    conn: Option<Conn>,
    connecting: Option<Connecting>,
    retry: Option<Instant>,
    hold: Option<Instant>,
    keepalive: Option<Instant>,
    adj: AdjOut,
    negotiated: Option<Negotiated>,
    metrics: Arc<BgpMetrics>,
    /// What is withheld now (logged when it changes).
    withheld: Vec<Withheld>,
    /// The distinct attribute sets of the last desired table.
    shared_attrs: Vec<Arc<Attrs>>,
    /// The table the advertised routes were planned from.
    planned: Option<Planned>,
    /// The session reached Established since this speaker started: later OPENs
    /// are not from a restarting speaker (RFC 4724 section 4.1, the R bit).
    was_established: bool,
}

async fn sleep_opt(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn connect(peer: Peer) -> std::io::Result<TcpStream> {
    let domain = match peer.address {
        IpAddr::V4(_) => socket2::Domain::IPV4,
        IpAddr::V6(_) => socket2::Domain::IPV6,
    };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if let Some(src) = peer.source_address {
        s.bind(&SocketAddr::new(src, 0).into())?;
    }
    if let Some(vrf) = &peer.vrf {
        s.bind_device(Some(vrf.as_bytes()))?;
    }
    if let Some(pw) = &peer.password {
        super::socket::set_md5(&s, peer.address, pw.as_bytes())?;
    }
    // eBGP peers are one hop away unless multihop is asked for (TTL 1, as FRR).
    let ebgp =
        !matches!(peer.peer_asn, PeerAsn::Internal) && peer.peer_asn != PeerAsn::Fixed(peer.my_asn);
    let ttl = if peer.ebgp_multihop {
        Some(255)
    } else if ebgp {
        Some(1)
    } else {
        None
    };
    if let Some(ttl) = ttl {
        match peer.address {
            IpAddr::V4(_) => s.set_ttl_v4(ttl)?,
            IpAddr::V6(_) => s.set_unicast_hops_v6(ttl)?,
        }
    }
    s.set_nonblocking(true)?;
    let sock = tokio::net::TcpSocket::from_std_stream(s.into());
    let stream = tokio::time::timeout(
        peer.connect_time.max(Duration::from_secs(1)),
        sock.connect(SocketAddr::new(peer.address, peer.port)),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Driver {
    fn new(
        peer: Peer,
        router_id: Option<Ipv4Addr>,
        routes: watch::Receiver<Arc<Table>>,
        status: watch::Sender<SessionStatus>,
        metrics: Arc<BgpMetrics>,
    ) -> Self {
        let expect = Expect {
            local_asn: peer.my_asn,
            router_id: router_id
                .or(peer.router_id)
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
            peer_asn: match peer.peer_asn {
                PeerAsn::Fixed(a) => PeerAsnRule::Fixed(a),
                PeerAsn::Internal => PeerAsnRule::Internal,
                PeerAsn::External => PeerAsnRule::External,
            },
            hold_time: peer.hold_time,
            keepalive: peer.keepalive_time,
            connect_retry: peer.connect_time,
            families: families::offered(peer.disable_mp, peer.address),
        };
        Driver {
            fsm: Fsm::new(expect),
            peer,
            router_id,
            routes,
            status,
            conn: None,
            connecting: None,
            retry: None,
            hold: None,
            keepalive: None,
            adj: AdjOut::default(),
            negotiated: None,
            metrics,
            withheld: Vec::new(),
            shared_attrs: Vec::new(),
            planned: None,
            was_established: false,
        }
    }

    fn publish(&self, last_error: Option<String>) {
        let l = BgpMetrics::peer(&self.peer.name);
        self.metrics
            .session_up
            .get_or_create(&l)
            .set(i64::from(self.fsm.state() == State::Established));
        self.metrics
            .announced_prefixes
            .get_or_create(&l)
            .set(i64::try_from(self.adj.len()).unwrap_or(i64::MAX));
        let withheld_count: usize = self.withheld.iter().map(|w| w.prefixes).sum();
        self.metrics
            .withheld_prefixes
            .get_or_create(&l)
            .set(i64::try_from(withheld_count).unwrap_or(i64::MAX));
        // Only a real change wakes the runner: it re-plans on every wake-up, and
        // waking it for nothing made it spin with the sessions.
        let state = self.fsm.state();
        let advertised = self.adj.len();
        let gr = self
            .negotiated
            .as_ref()
            .is_some_and(|n| n.graceful_restart && self.peer.graceful_restart);
        let withheld = &self.withheld;
        self.status.send_if_modified(|s| {
            let changed = s.state != state
                || s.advertised != advertised
                || (last_error.is_some() && s.last_error != last_error)
                || s.withheld != *withheld
                || s.graceful_restart != gr;
            s.state = state;
            s.advertised = advertised;
            s.withheld.clone_from(withheld);
            s.graceful_restart = gr;
            if last_error.is_some() {
                s.last_error = last_error;
            }
            changed
        });
    }

    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut actions = self.fsm.handle(Event::ManualStart);
        loop {
            self.execute(actions).await;
            let ev = tokio::select! {
                _ = stop.changed() => {
                    let a = self.fsm.handle(Event::ManualStop);
                    self.execute(a).await;
                    return;
                }
                _ = sleep_opt(self.retry) => { self.retry = None; Event::ConnectRetryTimerExpired }
                _ = sleep_opt(self.hold) => { self.hold = None; Event::HoldTimerExpired }
                _ = sleep_opt(self.keepalive) => { self.keepalive = None; Event::KeepaliveTimerExpired }
                r = async { match self.connecting.as_mut() { Some(c) => c.await, None => std::future::pending().await } } => {
                    self.connecting = None;
                    match r {
                        Ok(stream) => {
                            let local = stream.local_addr().map(|a| a.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                            let next_hops = next_hops(&self.peer, local);
                            self.conn = Some(Conn { stream, buf: Vec::with_capacity(4096), local, next_hops });
                            Event::TcpConnected
                        }
                        Err(e) => {
                            tracing::debug!(peer = %self.peer.name, error = %e, "cannot connect");
                            // The reason a session never comes up is the one users need.
                            self.publish(Some(format!("cannot connect to {}:{}: {e}", self.peer.address, self.peer.port)));
                            Event::TcpConnectFailed
                        }
                    }
                }
                r = async { match self.conn.as_mut() { Some(c) => { let mut b = [0u8; 8192]; c.stream.read(&mut b).await.map(|n| b[..n].to_vec()) } None => std::future::pending().await } } => {
                    match r {
                        Ok(bytes) if !bytes.is_empty() => {
                            if let Some(c) = self.conn.as_mut() {
                                c.buf.extend_from_slice(&bytes);
                            }
                            actions = self.drain_messages();
                            continue;
                        }
                        _ => Event::TcpClosed,
                    }
                }
                c = self.routes.changed(), if self.fsm.state() == State::Established => {
                    if c.is_err() { return; }
                    actions = vec![];
                    self.send_diff().await;
                    continue;
                }
            };
            actions = self.fsm.handle(ev);
        }
    }

    /// Handles every whole message in the buffer, in order.
    fn drain_messages(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        while let Some(c) = self.conn.as_mut() {
            let ev = match packet::frame(&c.buf) {
                Ok(None) => break,
                Ok(Some(n)) => {
                    let msg: Vec<u8> = c.buf.drain(..n).collect();
                    match packet::decode(&msg) {
                        Ok(Message::Open(o)) => Event::OpenReceived(o),
                        Ok(Message::Update(u)) => {
                            if let Some(why) = u.treat_as_withdraw {
                                tracing::warn!(peer = %self.peer.name, error = why, "UPDATE with an attribute error: treat-as-withdraw (RFC 7606), session kept");
                            }
                            Event::UpdateReceived
                        }
                        Ok(Message::Keepalive) => Event::KeepaliveReceived,
                        Ok(Message::Notification(n)) => Event::NotificationReceived(n),
                        Ok(Message::RouteRefresh(..)) => Event::RouteRefreshReceived,
                        Err(n) => Event::MessageInvalid(n),
                    }
                }
                Err(n) => Event::MessageInvalid(n),
            };
            let stop = matches!(
                ev,
                Event::MessageInvalid(_) | Event::NotificationReceived(_)
            );
            if let Event::NotificationReceived(n) | Event::MessageInvalid(n) = &ev {
                tracing::warn!(peer = %self.peer.name, notification = %n, received = matches!(ev, Event::NotificationReceived(_)), "session error");
            }
            actions.extend(self.fsm.handle(ev));
            if stop {
                break;
            }
        }
        actions
    }

    fn attrs(&self, spec: &RouteSpec, next_hop: IpAddr) -> Attrs {
        let ibgp = self.peer.is_ibgp();
        Attrs {
            as_path: if ibgp { vec![] } else { vec![self.peer.my_asn] },
            next_hop,
            // Global IPv6 next hops only: see `families::plan`.
            link_local: None,
            local_pref: if ibgp {
                spec.local_pref.or(Some(100))
            } else {
                None
            },
            communities: spec.communities.clone(),
            large_communities: spec.large_communities.clone(),
        }
    }

    /// The desired table with session attributes, for the families the session
    /// negotiated, each with the node's next hop of its family (MP-BGP carries
    /// the other family too). Prefixes without a next hop, or of a family we
    /// offered and the peer did not take, are withheld and reported.
    fn desired(&mut self) -> Desired {
        let (Some(c), Some(n)) = (self.conn.as_ref(), self.negotiated.as_ref()) else {
            return BTreeMap::new();
        };
        let offered = families::offered(self.peer.disable_mp, self.peer.address);
        let table = self.routes.borrow().clone();
        let plan = families::plan(table.keys().copied(), &offered, &n.families, &c.next_hops);
        self.planned = Some(Planned {
            table: table.clone(),
            families: n.families.clone(),
            next_hops: c.next_hops.clone(),
        });
        // One shared set of attributes per (route spec, next hop), the same `Arc`
        // as last time when it did not change: what is advertised already then
        // compares by pointer. The distinct sets are few, and neighbouring
        // prefixes mostly share their spec.
        let mut distinct: Vec<Arc<Attrs>> = Vec::new();
        let mut last: Option<(&Arc<RouteSpec>, IpAddr, Arc<Attrs>)> = None;
        let mut out = BTreeMap::new();
        for (p, nh) in &plan.hops {
            let Some(spec) = table.get(p) else { continue };
            let a = match &last {
                Some((ls, lnh, la)) if *lnh == *nh && (Arc::ptr_eq(ls, spec) || *ls == spec) => {
                    la.clone()
                }
                _ => {
                    let a = self.attrs(spec, *nh);
                    let shared = match distinct
                        .iter()
                        .chain(&self.shared_attrs)
                        .find(|s| ***s == a)
                    {
                        Some(s) => s.clone(),
                        None => Arc::new(a),
                    };
                    if !distinct.iter().any(|d| Arc::ptr_eq(d, &shared)) {
                        distinct.push(shared.clone());
                    }
                    last = Some((spec, *nh, shared.clone()));
                    shared
                }
            };
            out.insert(*p, a);
        }
        self.shared_attrs = distinct;
        for w in families::newly_withheld(&self.withheld, &plan.withheld) {
            tracing::warn!(peer = %self.peer.name, family = w.family, prefixes = w.prefixes, reason = %w.reason, "prefixes not announced to this peer");
        }
        self.withheld = plan.withheld;
        out
    }

    /// The changes from the planned table to the current one, with session
    /// attributes (`None`: withdraw), or `None` when the table must be planned
    /// whole (nothing planned yet, or the families or next hops changed).
    fn delta(&mut self) -> Option<Vec<Change>> {
        let (c, n) = (self.conn.as_ref()?, self.negotiated.as_ref()?);
        let planned = self.planned.as_ref()?;
        if planned.families != n.families || planned.next_hops != c.next_hops {
            return None;
        }
        let (negotiated, next_hops) = (n.families.clone(), c.next_hops.clone());
        let before_table = planned.table.clone();
        let table = self.routes.borrow().clone();
        // (prefix, spec before, spec now) for each prefix whose spec changed.
        type Changed<'a> = (
            IpNet,
            Option<&'a Arc<RouteSpec>>,
            Option<&'a Arc<RouteSpec>>,
        );
        let mut changed: Vec<Changed<'_>> = Vec::new();
        let (mut old, mut new) = (before_table.iter().peekable(), table.iter().peekable());
        loop {
            match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some((p, so)), None) => {
                    changed.push((**p, Some(*so), None));
                    old.next();
                }
                (None, Some((p, s))) => {
                    changed.push((**p, None, Some(*s)));
                    new.next();
                }
                (Some((po, so)), Some((pn, sn))) => match po.cmp(pn) {
                    std::cmp::Ordering::Less => {
                        changed.push((**po, Some(*so), None));
                        old.next();
                    }
                    std::cmp::Ordering::Greater => {
                        changed.push((**pn, None, Some(*sn)));
                        new.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if !Arc::ptr_eq(so, sn) && so != sn {
                            changed.push((**pn, Some(*so), Some(*sn)));
                        }
                        old.next();
                        new.next();
                    }
                },
            }
        }
        drop((old, new));
        let offered = families::offered(self.peer.disable_mp, self.peer.address);
        let mut recount = !self.withheld.is_empty();
        let mut out = Vec::with_capacity(changed.len());
        for (p, before, now) in changed {
            // The families and next hops are the planned ones: a prefix with a
            // next hop now had it then, so the peer has it if it was planned.
            let nh = match families::hop(p, &offered, &negotiated, &next_hops) {
                Some(Ok(nh)) => nh,
                Some(Err(_)) => {
                    recount = true;
                    continue;
                }
                None => continue,
            };
            match (before, now) {
                (Some(_), None) => out.push(Change::Withdraw(p)),
                (None, Some(s)) => out.push(Change::Add(p, self.shared(s, nh))),
                (Some(b), Some(s)) => {
                    let (was, is) = (self.shared(b, nh), self.shared(s, nh));
                    // Another spec may make the same attributes (LOCAL_PREF on
                    // an eBGP session): the peer has them already.
                    if was != is {
                        out.push(Change::Replace(p, is));
                    }
                }
                (None, None) => {}
            }
        }
        if recount {
            let plan = families::plan(table.keys().copied(), &offered, &negotiated, &next_hops);
            for w in families::newly_withheld(&self.withheld, &plan.withheld) {
                tracing::warn!(peer = %self.peer.name, family = w.family, prefixes = w.prefixes, reason = %w.reason, "prefixes not announced to this peer");
            }
            self.withheld = plan.withheld;
        }
        if let Some(p) = self.planned.as_mut() {
            p.table = table;
        }
        Some(out)
    }

    /// What the peer has from us: the planned table through its plan (empty
    /// when nothing was planned, or the session is not up).
    fn advertised(&mut self) -> Desired {
        let Some(planned) = self.planned.clone() else {
            return Desired::new();
        };
        let offered = families::offered(self.peer.disable_mp, self.peer.address);
        let plan = families::plan(
            planned.table.keys().copied(),
            &offered,
            &planned.families,
            &planned.next_hops,
        );
        let mut out = Desired::new();
        for (p, nh) in &plan.hops {
            if let Some(spec) = planned.table.get(p) {
                out.insert(*p, self.shared(spec, *nh));
            }
        }
        out
    }

    /// The shared attribute set for `spec` with `next_hop`.
    fn shared(&mut self, spec: &RouteSpec, next_hop: IpAddr) -> Arc<Attrs> {
        let a = self.attrs(spec, next_hop);
        if let Some(s) = self.shared_attrs.iter().find(|s| ***s == a) {
            return s.clone();
        }
        // Sharing saves memory and comparisons; a long list would cost more
        // than it saves (the next whole plan rebuilds it).
        if self.shared_attrs.len() >= 256 {
            self.shared_attrs.clear();
        }
        let a = Arc::new(a);
        self.shared_attrs.push(a.clone());
        a
    }

    fn encoding(&self) -> Encoding {
        Encoding {
            four_byte_asn: self.negotiated.as_ref().is_some_and(|n| n.four_byte_asn),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> bool {
        let Some(c) = self.conn.as_mut() else {
            return false;
        };
        match c.stream.write_all(bytes).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(peer = %self.peer.name, error = %e, "write failed");
                false
            }
        }
    }

    async fn send_all(&mut self, msgs: Vec<Vec<u8>>) {
        // One buffered write for many UPDATEs.
        let joined: Vec<u8> = msgs.concat();
        let sent = msgs
            .iter()
            .filter(|m| m.get(18) == Some(&packet::kind::UPDATE))
            .count() as u64;
        self.metrics
            .updates_sent
            .get_or_create(&BgpMetrics::peer(&self.peer.name))
            .inc_by(sent);
        if !joined.is_empty() && !self.write(&joined).await {
            let a = self.fsm.handle(Event::TcpClosed);
            Box::pin(self.execute(a)).await;
        }
        self.publish(None);
    }

    async fn send_diff(&mut self) {
        let t0 = Instant::now();
        let (msgs, t1) = match self.delta() {
            Some(changes) => {
                let t1 = Instant::now();
                (self.adj.apply(changes, self.encoding()), t1)
            }
            None => {
                let had = self.advertised();
                let desired = self.desired();
                let t1 = Instant::now();
                (self.adj.diff(&had, &desired, self.encoding()), t1)
            }
        };
        let t2 = Instant::now();
        let n = msgs.len();
        self.send_all(msgs).await;
        tracing::debug!(
            peer = %self.peer.name,
            desired_us = (t1 - t0).as_micros() as u64,
            diff_us = (t2 - t1).as_micros() as u64,
            send_us = t2.elapsed().as_micros() as u64,
            messages = n,
            "routes sent"
        );
    }

    async fn execute(&mut self, actions: Vec<Action>) {
        let now = Instant::now();
        for a in actions {
            match a {
                Action::StartConnection => {
                    self.connecting = Some(Box::pin(connect(self.peer.clone())))
                }
                Action::Disconnect => {
                    self.conn = None;
                    self.connecting = None;
                }
                Action::SendOpen => {
                    let local = self.conn.as_ref().map(|c| c.local);
                    let router_id = self.router_id.or(self.peer.router_id).or(match local {
                        Some(IpAddr::V4(a)) => Some(a),
                        _ => None,
                    });
                    let families = families::offered(self.peer.disable_mp, self.peer.address);
                    // RFC 4724 section 4.1: a restarting speaker sets R; the node
                    // keeps forwarding (kube-proxy) while the speaker restarts, so F
                    // is set for every family.
                    let graceful_restart = self.peer.graceful_restart.then(|| GracefulRestart {
                        restarted: !self.was_established,
                        restart_time: graceful_restart::restart_time_for(self.peer.hold_time),
                        families: families.iter().map(|(a, s)| (*a, *s, true)).collect(),
                    });
                    let open = LocalOpen {
                        asn: self.peer.my_asn,
                        hold_time: u16::try_from(self.peer.hold_time.as_secs()).unwrap_or(u16::MAX),
                        router_id: router_id.unwrap_or(Ipv4Addr::new(0, 0, 0, 1)),
                        ipv4: families.contains(&IPV4_UNICAST),
                        ipv6: families.contains(&IPV6_UNICAST),
                        graceful_restart,
                    };
                    match packet::open(&open) {
                        Ok(m) => {
                            if !self.write(&m).await {
                                let a = self.fsm.handle(Event::TcpClosed);
                                Box::pin(self.execute(a)).await;
                                return;
                            }
                        }
                        Err(n) => {
                            tracing::error!(peer = %self.peer.name, notification = %n, "cannot encode OPEN")
                        }
                    }
                }
                Action::SendKeepalive => {
                    let _ = self.write(&packet::keepalive()).await;
                }
                Action::SendNotification(n) => {
                    tracing::warn!(peer = %self.peer.name, notification = %n, "sending NOTIFICATION");
                    if n.code != super::notification::code::CEASE {
                        self.metrics
                            .errors
                            .get_or_create(&BgpMetrics::peer(&self.peer.name))
                            .inc();
                    }
                    let _ = self.write(&packet::notification(&n)).await;
                }
                Action::SendTable => {
                    // The table, then End-of-RIB for every negotiated family
                    // (RFC 4724 section 2), with or without graceful restart: it
                    // is an ordinary UPDATE to any peer, and tells the peer the
                    // initial table is complete (FRR and GoBGP send it always).
                    let desired = self.desired();
                    let fams = self
                        .negotiated
                        .as_ref()
                        .map(|n| n.families.clone())
                        .unwrap_or_default();
                    let msgs = self.adj.full(
                        &desired,
                        self.encoding(),
                        fams.contains(&IPV4_UNICAST),
                        fams.contains(&IPV6_UNICAST),
                    );
                    self.send_all(msgs).await;
                }
                Action::ArmConnectRetry(d) => self.retry = Some(now + d),
                Action::StopConnectRetry => self.retry = None,
                Action::ArmHold(d) => self.hold = Some(now + d),
                Action::StopHold => self.hold = None,
                Action::ArmKeepalive(d) => self.keepalive = Some(now + d),
                Action::StopKeepalive => self.keepalive = None,
                Action::SessionUp(n) => {
                    tracing::info!(peer = %self.peer.name, address = %self.peer.address, peer_asn = n.peer_asn, hold = ?n.hold, "session established");
                    self.negotiated = Some(n);
                    self.was_established = true;
                    self.publish(None);
                }
                Action::SessionDown(why) => {
                    tracing::warn!(peer = %self.peer.name, reason = %why, "session down");
                    self.adj.clear();
                    self.planned = None;
                    self.negotiated = None;
                    self.withheld.clear();
                    self.publish(Some(why));
                }
            }
        }
        self.publish(None);
    }
}
