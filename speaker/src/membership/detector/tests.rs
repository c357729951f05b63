//! A simulated network of members on a virtual clock: messages take 200 µs, nodes
//! can be killed (they stop sending and receiving) and links cut one way.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::membership::wire::{decode, encode};

struct Net {
    now: Instant,
    nodes: BTreeMap<String, Membership>,
    addrs: BTreeMap<String, SocketAddr>,
    queue: Vec<(Instant, String, Send)>,
    down: BTreeSet<String>,
    /// (from, to) pairs whose messages are lost.
    cut: BTreeSet<(String, String)>,
    events: Vec<(Duration, String, Event)>,
    start: Instant,
    sent: usize,
}

fn addr(i: usize) -> SocketAddr {
    format!("10.0.0.{i}:7946").parse().unwrap()
}

impl Net {
    fn new(n: usize) -> Net {
        let now = Instant::now();
        let addrs: BTreeMap<String, SocketAddr> =
            (1..=n).map(|i| (format!("n{i}"), addr(i))).collect();
        let seeds: Vec<(String, SocketAddr)> = addrs.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let nodes = addrs
            .keys()
            .map(|name| {
                let mut m = Membership::new(name, 1000, Timing::default(), now);
                m.seed(&seeds, now);
                (name.clone(), m)
            })
            .collect();
        Net {
            now,
            nodes,
            addrs,
            queue: Vec::new(),
            down: BTreeSet::new(),
            cut: BTreeSet::new(),
            events: Vec::new(),
            start: now,
            sent: 0,
        }
    }

    fn name_of(&self, a: SocketAddr) -> String {
        self.addrs
            .iter()
            .find(|(_, v)| **v == a)
            .map(|(k, _)| k.clone())
            .unwrap()
    }

    fn send(&mut self, from: &str, out: Vec<Send>) {
        for s in out {
            self.sent += 1;
            // Every message goes through the codec, as on the wire.
            let bytes = encode(&s.msg, Some(b"k")).unwrap();
            let msg = decode(&bytes, Some(b"k")).unwrap();
            self.queue.push((
                self.now + Duration::from_micros(200),
                from.to_string(),
                Send { to: s.to, msg },
            ));
        }
    }

    fn watch(&mut self, who: &str, whom: &[&str]) {
        let now = self.now;
        let out = self
            .nodes
            .get_mut(who)
            .unwrap()
            .watch(whom.iter().map(|s| s.to_string()).collect(), now);
        self.send(who, out);
    }

    /// Runs for `d` in 1 ms steps (a tick every 1 ms, as the task's timer does at most).
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(1);
            let due: Vec<(Instant, String, Send)>;
            (due, self.queue) = std::mem::take(&mut self.queue)
                .into_iter()
                .partition(|(t, _, _)| *t <= self.now);
            for (_, from, s) in due {
                let to = self.name_of(s.to);
                if self.down.contains(&from)
                    || self.down.contains(&to)
                    || self.cut.contains(&(from.clone(), to.clone()))
                {
                    continue;
                }
                let now = self.now;
                let out = self
                    .nodes
                    .get_mut(&to)
                    .unwrap()
                    .receive(self.addrs[&from], &s.msg, now);
                self.send(&to, out);
            }
            let names: Vec<String> = self.nodes.keys().cloned().collect();
            for n in names {
                if self.down.contains(&n) {
                    continue;
                }
                let now = self.now;
                let m = self.nodes.get_mut(&n).unwrap();
                let out = m.tick(now);
                for e in m.take_events() {
                    self.events.push((now - self.start, n.clone(), e));
                }
                self.send(&n, out);
            }
        }
    }

    fn state(&self, who: &str, of: &str) -> State {
        self.nodes[who].members()[of].state
    }

    fn declared(&self) -> Vec<(String, String)> {
        self.events
            .iter()
            .filter_map(|(_, by, e)| match e {
                Event::Declared(x) => Some((by.clone(), x.clone())),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_healthy_group_declares_nobody_dead_for_a_minute() {
    let mut net = Net::new(4);
    net.watch("n2", &["n1"]);
    net.watch("n3", &["n1", "n2"]);
    net.run(Duration::from_secs(60));
    assert!(net.declared().is_empty(), "{:?}", net.events);
    for a in ["n1", "n2", "n3", "n4"] {
        assert_eq!(net.nodes[a].alive().len(), 4);
        assert!(net.nodes[a].has_quorum());
    }
}

#[test]
fn a_dead_watched_member_is_declared_within_suspect_plus_relay_time_and_everyone_agrees() {
    let mut net = Net::new(3);
    net.watch("n2", &["n1"]);
    net.run(Duration::from_secs(2));
    let killed = net.now;
    net.down.insert("n1".into());
    net.run(Duration::from_millis(200));
    let (at, by) = net
        .events
        .iter()
        .find_map(|(t, by, e)| (*e == Event::Declared("n1".into())).then_some((*t, by.clone())))
        .expect("n1 declared dead");
    assert_eq!(by, "n2", "the watcher declares");
    let after = (net.start + at) - killed;
    let t = Timing::default();
    // Silence of suspect_after (at most one heartbeat already missed), then a relay's
    // timeout, plus a few 1 ms ticks and 200 µs hops.
    assert!(
        after <= t.suspect_after + t.relay_timeout + Duration::from_millis(5),
        "{after:?}"
    );
    assert!(after >= t.suspect_after - t.heartbeat, "{after:?}");
    assert_eq!(
        net.state("n3", "n1"),
        State::Dead,
        "the broadcast reached n3"
    );
    assert_eq!(
        net.nodes["n3"].alive(),
        ["n2".to_string(), "n3".to_string()].into()
    );
}

#[test]
fn a_watcher_cut_off_from_everyone_declares_nobody_dead_and_is_declared() {
    let mut net = Net::new(3);
    net.watch("n2", &["n1"]);
    net.run(Duration::from_secs(1));
    for other in ["n1", "n3"] {
        net.cut.insert(("n2".into(), other.into()));
        net.cut.insert((other.into(), "n2".into()));
    }
    net.run(Duration::from_secs(5));
    // The others, who reach each other, find n2 gone; n2 accuses nobody.
    let declared = net.declared();
    assert!(
        declared.iter().all(|(by, x)| by != "n2" && x == "n2"),
        "{declared:?}"
    );
    assert!(
        net.events
            .iter()
            .any(|(_, by, e)| by == "n2" && *e == Event::Inconclusive("n1".into()))
    );
    // It keeps seeing them as alive, so it has its quorum view unchanged.
    assert_eq!(net.nodes["n2"].alive().len(), 3);
}

#[test]
fn a_lost_direct_path_is_bridged_by_a_relay_and_nobody_is_declared() {
    let mut net = Net::new(3);
    net.watch("n2", &["n1"]);
    net.run(Duration::from_secs(1));
    // n1 -> n2 is lost (heartbeats and acks), n1 -> n3 -> n2 works.
    net.cut.insert(("n1".into(), "n2".into()));
    net.run(Duration::from_secs(3));
    assert!(net.declared().is_empty(), "{:?}", net.declared());
    assert!(
        net.events
            .iter()
            .any(|(_, by, e)| by == "n2" && *e == Event::Cleared("n1".into()))
    );
    assert_eq!(net.state("n2", "n1"), State::Alive);
}

#[test]
fn with_two_members_the_direct_ping_decides() {
    let mut net = Net::new(2);
    net.watch("n2", &["n1"]);
    net.run(Duration::from_secs(1));
    net.down.insert("n1".into());
    net.run(Duration::from_millis(100));
    assert_eq!(net.declared(), vec![("n2".to_string(), "n1".to_string())]);
}

#[test]
fn a_member_wrongly_declared_dead_refutes_with_a_higher_incarnation() {
    let mut net = Net::new(3);
    net.watch("n2", &["n1"]);
    net.run(Duration::from_secs(1));
    // n1 freezes for 100 ms (e.g. a long pause): it is declared dead...
    net.down.insert("n1".into());
    net.run(Duration::from_millis(100));
    assert_eq!(net.state("n3", "n1"), State::Dead);
    // ...then resumes: it learns of its death and comes back with incarnation + 1.
    net.down.remove("n1");
    net.run(Duration::from_secs(1));
    assert!(
        net.events
            .iter()
            .any(|(_, by, e)| by == "n1" && matches!(e, Event::Refuted(1001))),
        "{:?}",
        net.events
    );
    assert_eq!(net.state("n2", "n1"), State::Alive);
    assert_eq!(net.state("n3", "n1"), State::Alive);
    assert_eq!(net.nodes["n3"].members()["n1"].incarnation, 1001);
}

#[test]
fn a_restarted_member_supersedes_its_dead_self() {
    let mut net = Net::new(3);
    net.run(Duration::from_secs(1));
    net.down.insert("n1".into());
    net.run(Duration::from_secs(3));
    assert_eq!(net.state("n2", "n1"), State::Dead);
    let seeds: Vec<(String, SocketAddr)> = net.addrs.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let mut fresh = Membership::new("n1", 5000, Timing::default(), net.now);
    fresh.seed(&seeds, net.now);
    net.nodes.insert("n1".into(), fresh);
    net.down.remove("n1");
    net.run(Duration::from_secs(1));
    assert_eq!(net.state("n2", "n1"), State::Alive);
    assert_eq!(net.nodes["n2"].members()["n1"].incarnation, 5000);
}

#[test]
fn a_leaving_member_waits_for_every_acknowledgement() {
    let mut net = Net::new(3);
    net.run(Duration::from_secs(1));
    let now = net.now;
    let out = net.nodes.get_mut("n1").unwrap().leave(now);
    assert_eq!(out.len(), 2);
    net.send("n1", out);
    net.run(Duration::from_millis(10));
    assert_eq!(net.state("n2", "n1"), State::Left);
    assert_eq!(net.state("n3", "n1"), State::Left);
    assert!(
        !net.nodes["n1"].leave_done(net.now),
        "nobody has acknowledged yet"
    );
    for n in ["n2", "n3"] {
        let out = net.nodes.get_mut(n).unwrap().acknowledge_leaves();
        assert_eq!(out.len(), 1);
        net.send(n, out);
    }
    net.run(Duration::from_millis(5));
    assert!(net.nodes["n1"].leave_done(net.now));
    assert!(net.declared().is_empty());
}

#[test]
fn a_leave_times_out_when_members_do_not_answer() {
    let mut net = Net::new(2);
    let now = net.now;
    let _ = net.nodes.get_mut("n1").unwrap().leave(now);
    net.run(Timing::default().leave_timeout + Duration::from_millis(1));
    assert!(net.nodes["n1"].leave_done(net.now));
}

#[test]
fn quorum_needs_a_strict_majority() {
    let mut net = Net::new(5);
    net.run(Duration::from_secs(1));
    net.down.extend(["n1".to_string(), "n2".to_string()]);
    net.run(Duration::from_secs(3));
    assert!(net.nodes["n3"].has_quorum(), "3 of 5");
    net.down.insert("n4".into());
    net.run(Duration::from_secs(3));
    assert!(!net.nodes["n3"].has_quorum(), "2 of 5");
}

#[test]
fn nodes_that_never_ran_a_speaker_do_not_count_towards_the_quorum() {
    let mut net = Net::new(3);
    // n3 is a Node without a speaker: it never sends anything.
    net.down.insert("n3".into());
    net.run(Duration::from_secs(3));
    assert_eq!(
        net.state("n1", "n3"),
        State::Dead,
        "declared after the slow check"
    );
    assert!(net.nodes["n2"].has_quorum(), "2 of the 2 ever heard");
    net.down.insert("n1".into());
    net.run(Duration::from_secs(3));
    assert!(
        !net.nodes["n2"].has_quorum(),
        "1 of 2, and not the lowest name"
    );
}

#[test]
fn a_member_that_hears_nobody_has_no_quorum_and_an_even_split_goes_to_the_lowest_name() {
    let mut net = Net::new(2);
    // n2 cannot hear n1 at all from the start (say, a wrong key).
    net.cut.insert(("n1".into(), "n2".into()));
    net.run(Duration::from_secs(3));
    assert!(!net.nodes["n2"].has_quorum(), "heard nobody");
    let mut net = Net::new(2);
    net.run(Duration::from_secs(1));
    net.down.insert("n2".into());
    net.run(Duration::from_secs(3));
    assert!(net.nodes["n1"].has_quorum(), "1 of 2, with the lowest name");
    let mut net = Net::new(2);
    net.run(Duration::from_secs(1));
    net.down.insert("n1".into());
    net.run(Duration::from_secs(3));
    assert!(
        !net.nodes["n2"].has_quorum(),
        "1 of 2, without the lowest name"
    );
}

#[test]
fn slow_heartbeats_cost_one_message_per_member_per_interval() {
    let mut net = Net::new(4);
    net.run(Duration::from_secs(1));
    let before = net.sent;
    net.run(Duration::from_secs(10));
    // 4 members x 3 others x 5/s x 10 s, and nothing else without watchers.
    assert_eq!(net.sent - before, 4 * 3 * 5 * 10);
}

#[test]
fn a_rumour_at_the_largest_incarnation_does_not_overflow() {
    // Found by fuzzing: a forged Dead at u64::MAX made the refutation overflow.
    let now = Instant::now();
    let mut m = Membership::new("n1", 1, Timing::default(), now);
    m.seed(&[("n2".into(), addr(2))], now);
    let msg = crate::membership::wire::Message {
        kind: crate::membership::wire::Kind::Heartbeat,
        seq: 0,
        incarnation: 1,
        from: "n2".into(),
        about: String::new(),
        updates: vec![Update {
            name: "n1".into(),
            incarnation: u64::MAX,
            state: State::Dead,
        }],
    };
    let out = m.receive(addr(2), &msg, now);
    assert_eq!(m.incarnation(), u64::MAX);
    assert!(!out.is_empty(), "it still tells the others it is alive");
}
