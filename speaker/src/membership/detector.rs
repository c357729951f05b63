//! The membership state machine (pure: messages and time in, messages out).
//!
//! Failure detection has two speeds:
//! - **fast**, where a failover waits on it: a node that would take over an
//!   address from `X` (the runner-up of the election) *watches* `X`: it subscribes
//!   (`Watch`) and `X` sends it a heartbeat every `heartbeat` (10 ms). After
//!   `suspect_after` (30 ms) of silence the watcher checks;
//! - **slow**, for everyone else: every member sends every other a heartbeat every
//!   `gossip_interval` (200 ms) carrying gossip; after `silent_after` (1 s) of
//!   silence, a check.
//!
//! A check is SWIM's: a direct `Ping` and a `PingReq` to up to `relays` other
//! members, who ping the target themselves and answer `Ack` (it answered) or `Nack`
//! (it did not, within `relay_timeout`). The target is declared dead only when some
//! relay said `Nack`: a node that can reach nobody (it is the one cut off) never
//! declares anyone dead. With no other member to ask (two nodes), the direct ping
//! decides. A declaration is broadcast at once; a member wrongly declared dead
//! refutes it with a higher incarnation (it restarts its counter from the clock, so
//! a restarted speaker also supersedes its old self).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::wire::{Kind, MAX_UPDATES, Message, State, Update};

/// Timers and fan-out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Fast heartbeat to watchers.
    pub heartbeat: Duration,
    /// Silence of a watched member before a check.
    pub suspect_after: Duration,
    /// How long a relay waits for the target's `Ack`.
    pub relay_timeout: Duration,
    /// Slow heartbeat (with gossip) to every member.
    pub gossip_interval: Duration,
    /// Silence of any member before a check.
    pub silent_after: Duration,
    /// How often a watcher renews its subscription.
    pub watch_refresh: Duration,
    /// How long a subscription lasts without renewal.
    pub watch_ttl: Duration,
    /// Members asked to probe indirectly.
    pub relays: usize,
    /// How long a leaving member waits for the others to take over.
    pub leave_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat: Duration::from_millis(10),
            suspect_after: Duration::from_millis(30),
            relay_timeout: Duration::from_millis(15),
            gossip_interval: Duration::from_millis(200),
            silent_after: Duration::from_secs(1),
            watch_refresh: Duration::from_millis(250),
            watch_ttl: Duration::from_secs(1),
            relays: 3,
            leave_timeout: Duration::from_secs(2),
        }
    }
}

/// A member as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state.
    pub state: State,
    /// Its incarnation as last learned.
    pub incarnation: u64,
    last_heard: Instant,
    /// Heard from at least once: a Node that never ran a speaker does not count
    /// towards the quorum.
    pub heard: bool,
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    /// Destination.
    pub to: SocketAddr,
    /// The message.
    pub msg: Message,
}

/// Something worth a log line and a metric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A check started (the member was silent too long).
    Suspected(String),
    /// A check found the member alive.
    Cleared(String),
    /// A check could not conclude: no relay answered (are we cut off?).
    Inconclusive(String),
    /// This node declared the member dead.
    Declared(String),
    /// The member's state changed (by our check, gossip, or its own message).
    Changed(String, State),
    /// This node refuted a rumour of its death.
    Refuted(u64),
}

#[derive(Clone, Debug)]
struct Check {
    seq: u32,
    deadline: Instant,
    asked: usize,
    started: Instant,
}

#[derive(Clone, Debug)]
struct Relay {
    origin: String,
    origin_seq: u32,
    target: String,
    seq: u32,
    deadline: Instant,
}

#[derive(Clone, Debug)]
struct Leaving {
    pending: BTreeSet<String>,
    deadline: Instant,
    last_sent: Instant,
}

/// The membership of one speaker.
#[derive(Debug)]
pub struct Membership {
    me: String,
    incarnation: u64,
    timing: Timing,
    members: BTreeMap<String, Member>,
    watching: BTreeSet<String>,
    subscribers: BTreeMap<String, Instant>,
    checks: BTreeMap<String, Check>,
    relaying: Vec<Relay>,
    rumors: VecDeque<(Update, u32)>,
    next_seq: u32,
    next_relay: usize,
    last_heartbeat: Instant,
    last_gossip: Instant,
    last_watch: Instant,
    leaving: Option<Leaving>,
    leaves_to_ack: BTreeSet<String>,
    events: Vec<Event>,
}

impl Membership {
    /// A member named `me` at `incarnation` (e.g. the clock in ms at start).
    pub fn new(me: &str, incarnation: u64, timing: Timing, now: Instant) -> Self {
        Membership {
            me: me.to_string(),
            incarnation,
            timing,
            members: BTreeMap::new(),
            watching: BTreeSet::new(),
            subscribers: BTreeMap::new(),
            checks: BTreeMap::new(),
            relaying: Vec::new(),
            rumors: VecDeque::new(),
            next_seq: 1,
            next_relay: 0,
            last_heartbeat: now,
            // Announce ourselves at the first tick: a restarted speaker must supersede
            // its old self before it takes addresses back.
            last_gossip: now.checked_sub(timing.gossip_interval).unwrap_or(now),
            last_watch: now,
            leaving: None,
            leaves_to_ack: BTreeSet::new(),
            events: Vec::new(),
        }
    }

    /// The members (without this node).
    pub fn members(&self) -> &BTreeMap<String, Member> {
        &self.members
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Alive members, this node included.
    pub fn alive(&self) -> BTreeSet<String> {
        self.members
            .iter()
            .filter(|(_, m)| m.state == State::Alive)
            .map(|(n, _)| n.clone())
            .chain([self.me.clone()])
            .collect()
    }

    /// Whether this node may act on its own view: it sees a strict majority of
    /// the speakers it has ever heard from (itself included) alive, or exactly half
    /// when that half holds the lowest-named of them (a tie-break both halves of an
    /// even split agree on). A node that has heard no other speaker at all while
    /// other Nodes exist (a wrong key, a firewall) has no quorum.
    pub fn has_quorum(&self) -> bool {
        let heard: Vec<(&String, &Member)> = self.members.iter().filter(|(_, m)| m.heard).collect();
        if heard.is_empty() {
            return self.members.is_empty();
        }
        let total = heard.len() + 1;
        let alive = 1 + heard
            .iter()
            .filter(|(_, m)| m.state == State::Alive)
            .count();
        if alive * 2 != total {
            return alive * 2 > total;
        }
        let lowest = heard
            .iter()
            .map(|(n, _)| n.as_str())
            .chain([self.me.as_str()])
            .min();
        lowest == Some(self.me.as_str())
            || heard
                .iter()
                .any(|(n, m)| Some(n.as_str()) == lowest && m.state == State::Alive)
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Sets the members from the Node objects: new ones start alive, gone ones go.
    pub fn seed(&mut self, nodes: &[(String, SocketAddr)], now: Instant) {
        let names: BTreeSet<&String> = nodes.iter().map(|(n, _)| n).collect();
        self.members.retain(|n, _| names.contains(n));
        for (name, addr) in nodes.iter().filter(|(n, _)| *n != self.me) {
            self.members
                .entry(name.clone())
                .and_modify(|m| m.addr = *addr)
                .or_insert(Member {
                    addr: *addr,
                    state: State::Alive,
                    incarnation: 0,
                    last_heard: now,
                    heard: false,
                });
        }
    }

    /// Sets the members this node watches closely (it takes over from them).
    pub fn watch(&mut self, names: BTreeSet<String>, now: Instant) -> Vec<Send> {
        let mut new = Vec::new();
        for n in names.difference(&self.watching) {
            if let Some(m) = self.members.get_mut(n) {
                // A grace period: it only learns now that it must send to us.
                m.last_heard = m.last_heard.max(now);
                new.push(m.addr);
            }
        }
        self.watching = names;
        self.send_each(new, Kind::Watch)
    }

    fn send_each(&mut self, addrs: Vec<SocketAddr>, kind: Kind) -> Vec<Send> {
        addrs
            .into_iter()
            .map(|to| Send {
                to,
                msg: self.msg(kind, 0, ""),
            })
            .collect()
    }

    /// Starts a planned departure: every alive member is told, and asked to
    /// acknowledge once it has taken over.
    pub fn leave(&mut self, now: Instant) -> Vec<Send> {
        let pending: BTreeSet<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.state == State::Alive)
            .map(|(n, _)| n.clone())
            .collect();
        let addrs = pending
            .iter()
            .filter_map(|n| self.members.get(n))
            .map(|m| m.addr)
            .collect();
        self.leaving = Some(Leaving {
            pending,
            deadline: now + self.timing.leave_timeout,
            last_sent: now,
        });
        self.send_each(addrs, Kind::Leave)
    }

    /// Whether a departure is complete (every member acknowledged, or it timed out).
    pub fn leave_done(&self, now: Instant) -> bool {
        self.leaving
            .as_ref()
            .is_some_and(|l| l.pending.is_empty() || now >= l.deadline)
    }

    /// Acknowledges the departures received so far; call once the runner has
    /// applied the view that excludes the leavers (the new owners have announced).
    pub fn acknowledge_leaves(&mut self) -> Vec<Send> {
        let names = std::mem::take(&mut self.leaves_to_ack);
        let addrs = names
            .iter()
            .filter_map(|n| self.members.get(n))
            .map(|m| m.addr)
            .collect();
        self.send_each(addrs, Kind::LeaveAck)
    }

    fn msg(&mut self, kind: Kind, seq: u32, about: &str) -> Message {
        // Piggyback the rumours with the most transmissions left.
        let mut updates = Vec::new();
        for (u, left) in self.rumors.iter_mut().take(MAX_UPDATES) {
            updates.push(u.clone());
            *left = left.saturating_sub(1);
        }
        self.rumors.retain(|(_, left)| *left > 0);
        Message {
            kind,
            seq,
            incarnation: self.incarnation,
            from: self.me.clone(),
            about: about.to_string(),
            updates,
        }
    }

    fn rumor(&mut self, u: Update) {
        self.rumors.retain(|(r, _)| r.name != u.name);
        // Enough retransmissions to reach everyone by gossip (SWIM's λ·log n).
        let n = self.members.len() as u32 + 1;
        let times = 3 * (32 - n.leading_zeros()) + 2;
        self.rumors.push_front((u, times));
    }

    fn seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        self.next_seq
    }

    fn set_state(&mut self, name: &str, state: State, incarnation: u64, now: Instant) {
        let Some(m) = self.members.get_mut(name) else {
            return;
        };
        let changed = m.state != state;
        m.state = state;
        m.incarnation = incarnation;
        if state == State::Alive {
            m.last_heard = now;
        }
        if changed {
            self.checks.remove(name);
            self.events.push(Event::Changed(name.to_string(), state));
            self.rumor(Update {
                name: name.to_string(),
                incarnation,
                state,
            });
        }
    }

    /// Applies one gossiped fact (SWIM's precedence rules).
    fn apply(&mut self, u: &Update, now: Instant) -> Vec<Send> {
        if u.name == self.me {
            if u.state != State::Alive
                && u.incarnation >= self.incarnation
                && self.leaving.is_none()
            {
                self.incarnation = u.incarnation.saturating_add(1);
                self.events.push(Event::Refuted(self.incarnation));
                let me = Update {
                    name: self.me.clone(),
                    incarnation: self.incarnation,
                    state: State::Alive,
                };
                self.rumor(me);
                return self.broadcast(Kind::Heartbeat);
            }
            return Vec::new();
        }
        let Some(m) = self.members.get(&u.name) else {
            return Vec::new();
        };
        let newer = match (u.state, m.state) {
            (State::Alive, _) => u.incarnation > m.incarnation,
            (State::Dead, State::Alive) => u.incarnation >= m.incarnation,
            (State::Dead, _) => u.incarnation > m.incarnation,
            (State::Left, State::Left) => u.incarnation > m.incarnation,
            (State::Left, _) => u.incarnation >= m.incarnation,
        };
        if newer {
            self.set_state(&u.name.clone(), u.state, u.incarnation, now);
        }
        Vec::new()
    }

    fn broadcast(&mut self, kind: Kind) -> Vec<Send> {
        let addrs: Vec<SocketAddr> = self.members.values().map(|m| m.addr).collect();
        self.send_each(addrs, kind)
    }

    /// Handles a message from `src`.
    pub fn receive(&mut self, src: SocketAddr, msg: &Message, now: Instant) -> Vec<Send> {
        if msg.from == self.me {
            return Vec::new();
        }
        let Some(sender) = self.members.get(&msg.from).cloned() else {
            // Not (yet) a Node we know: answer probes only.
            if msg.kind == Kind::Ping {
                return vec![Send {
                    to: src,
                    msg: self.msg(Kind::Ack, msg.seq, &self.me.clone()),
                }];
            }
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(m) = self.members.get_mut(&msg.from) {
            m.heard = true;
        }
        // Hearing from a member is proof of life at its incarnation.
        match sender.state {
            State::Alive => {
                if let Some(m) = self.members.get_mut(&msg.from) {
                    m.last_heard = now;
                    m.incarnation = m.incarnation.max(msg.incarnation);
                }
                if self.checks.remove(&msg.from).is_some() {
                    self.events.push(Event::Cleared(msg.from.clone()));
                }
            }
            _ if msg.incarnation > sender.incarnation && msg.kind != Kind::Leave => {
                self.set_state(&msg.from, State::Alive, msg.incarnation, now);
            }
            state => {
                // It does not know it was declared dead: tell it, so it refutes.
                let fact = Update {
                    name: msg.from.clone(),
                    incarnation: sender.incarnation,
                    state,
                };
                let mut m = self.msg(Kind::Heartbeat, 0, "");
                m.updates.insert(0, fact);
                m.updates.truncate(MAX_UPDATES);
                out.push(Send {
                    to: sender.addr,
                    msg: m,
                });
            }
        }
        for u in &msg.updates {
            out.extend(self.apply(u, now));
        }
        match msg.kind {
            Kind::Heartbeat => {}
            Kind::Watch => {
                self.subscribers
                    .insert(msg.from.clone(), now + self.timing.watch_ttl);
                out.push(Send {
                    to: sender.addr,
                    msg: self.msg(Kind::Heartbeat, 0, ""),
                });
            }
            Kind::Ping => {
                let me = self.me.clone();
                out.push(Send {
                    to: sender.addr,
                    msg: self.msg(Kind::Ack, msg.seq, &me),
                });
            }
            Kind::Ack => {
                if let Some(i) = self
                    .relaying
                    .iter()
                    .position(|r| r.seq == msg.seq && r.target == msg.from)
                {
                    let r = self.relaying.swap_remove(i);
                    if let Some(origin) = self.members.get(&r.origin).map(|m| m.addr) {
                        out.push(Send {
                            to: origin,
                            msg: self.msg(Kind::Ack, r.origin_seq, &r.target),
                        });
                    }
                } else if self
                    .checks
                    .get(&msg.about)
                    .is_some_and(|c| c.seq == msg.seq)
                {
                    self.checks.remove(&msg.about);
                    if let Some(m) = self.members.get_mut(&msg.about) {
                        m.last_heard = now;
                    }
                    self.events.push(Event::Cleared(msg.about.clone()));
                }
            }
            Kind::PingReq => {
                if let Some(target) = self.members.get(&msg.about).map(|m| m.addr) {
                    let seq = self.seq();
                    self.relaying.push(Relay {
                        origin: msg.from.clone(),
                        origin_seq: msg.seq,
                        target: msg.about.clone(),
                        seq,
                        deadline: now + self.timing.relay_timeout,
                    });
                    out.push(Send {
                        to: target,
                        msg: self.msg(Kind::Ping, seq, ""),
                    });
                }
            }
            Kind::Nack => {
                // A relay could not reach the target either, and our own ping (sent
                // with the request) has had as long: conclude now.
                if self
                    .checks
                    .get(&msg.about)
                    .is_some_and(|c| c.seq == msg.seq)
                {
                    self.checks.remove(&msg.about);
                    out.extend(self.declare(&msg.about.clone(), now));
                }
            }
            Kind::Leave => {
                self.set_state(&msg.from, State::Left, msg.incarnation, now);
                self.leaves_to_ack.insert(msg.from.clone());
            }
            Kind::LeaveAck => {
                if let Some(l) = &mut self.leaving {
                    l.pending.remove(&msg.from);
                }
            }
        }
        out
    }

    /// Advances the timers.
    pub fn tick(&mut self, now: Instant) -> Vec<Send> {
        let mut out = Vec::new();
        let t = self.timing;
        if let Some(l) = &mut self.leaving {
            // Repeat the departure to whoever has not acknowledged (datagrams get lost).
            if now.duration_since(l.last_sent) >= Duration::from_millis(50) && !l.pending.is_empty()
            {
                l.last_sent = now;
                let pending: Vec<String> = l.pending.iter().cloned().collect();
                for n in pending {
                    if let Some(addr) = self.members.get(&n).map(|m| m.addr) {
                        out.push(Send {
                            to: addr,
                            msg: self.msg(Kind::Leave, 0, ""),
                        });
                    }
                }
            }
            return out;
        }
        // Heartbeats: fast to subscribers, slow (with gossip) to everyone.
        self.subscribers.retain(|_, until| *until > now);
        if now.duration_since(self.last_heartbeat) >= t.heartbeat {
            self.last_heartbeat = now;
            let subs: Vec<SocketAddr> = self
                .subscribers
                .keys()
                .filter_map(|n| self.members.get(n).map(|m| m.addr))
                .collect();
            for to in subs {
                out.push(Send {
                    to,
                    msg: self.msg(Kind::Heartbeat, 0, ""),
                });
            }
        }
        if now.duration_since(self.last_gossip) >= t.gossip_interval {
            self.last_gossip = now;
            out.extend(self.broadcast(Kind::Heartbeat));
        }
        if now.duration_since(self.last_watch) >= t.watch_refresh {
            self.last_watch = now;
            let watched: Vec<SocketAddr> = self
                .watching
                .iter()
                .filter_map(|n| self.members.get(n))
                .filter(|m| m.state == State::Alive)
                .map(|m| m.addr)
                .collect();
            for to in watched {
                out.push(Send {
                    to,
                    msg: self.msg(Kind::Watch, 0, ""),
                });
            }
        }
        // Relays that timed out: the target did not answer them.
        let (expired, live): (Vec<Relay>, Vec<Relay>) =
            self.relaying.drain(..).partition(|r| now >= r.deadline);
        self.relaying = live;
        for r in expired {
            if let Some(origin) = self.members.get(&r.origin).map(|m| m.addr) {
                out.push(Send {
                    to: origin,
                    msg: self.msg(Kind::Nack, r.origin_seq, &r.target),
                });
            }
        }
        // Checks that ended.
        let ended: Vec<(String, Check)> = self
            .checks
            .iter()
            .filter(|(_, c)| now >= c.deadline)
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        for (name, c) in ended {
            self.checks.remove(&name);
            let heard = self
                .members
                .get(&name)
                .is_some_and(|m| m.last_heard > c.started);
            if heard {
                self.events.push(Event::Cleared(name));
            } else if c.asked == 0 {
                out.extend(self.declare(&name, now));
            } else {
                self.events.push(Event::Inconclusive(name.clone()));
                if let Some(m) = self.members.get_mut(&name) {
                    // Try again after another silence period, not at once.
                    m.last_heard = now;
                }
            }
        }
        // New checks for members silent too long.
        let silent: Vec<String> = self
            .members
            .iter()
            .filter(|(n, m)| {
                let limit = if self.watching.contains(*n) {
                    t.suspect_after
                } else {
                    t.silent_after
                };
                m.state == State::Alive
                    && !self.checks.contains_key(*n)
                    && now.duration_since(m.last_heard) > limit
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in silent {
            out.extend(self.start_check(&name, now));
        }
        out
    }

    fn declare(&mut self, name: &str, now: Instant) -> Vec<Send> {
        let inc = self.members.get(name).map_or(0, |m| m.incarnation);
        self.events.push(Event::Declared(name.to_string()));
        self.set_state(name, State::Dead, inc, now);
        self.broadcast(Kind::Heartbeat)
    }

    fn start_check(&mut self, target: &str, now: Instant) -> Vec<Send> {
        let Some(addr) = self.members.get(target).map(|m| m.addr) else {
            return Vec::new();
        };
        let seq = self.seq();
        self.events.push(Event::Suspected(target.to_string()));
        let mut out = vec![Send {
            to: addr,
            msg: self.msg(Kind::Ping, seq, ""),
        }];
        let others: Vec<SocketAddr> = self
            .members
            .iter()
            .filter(|(n, m)| *n != target && m.state == State::Alive)
            .map(|(_, m)| m.addr)
            .collect();
        let asked = others.len().min(self.timing.relays);
        for k in 0..asked {
            // Rotate through the others so no relay is always the one asked.
            let to = others[(self.next_relay + k) % others.len()];
            out.push(Send {
                to,
                msg: self.msg(Kind::PingReq, seq, target),
            });
        }
        self.next_relay = self.next_relay.wrapping_add(1);
        // Relays answer within relay_timeout; allow the round trips on top.
        let wait = if asked == 0 {
            self.timing.relay_timeout
        } else {
            self.timing.relay_timeout * 2
        };
        self.checks.insert(
            target.to_string(),
            Check {
                seq,
                deadline: now + wait,
                asked,
                started: now,
            },
        );
        out
    }
}

#[cfg(test)]
mod tests;
