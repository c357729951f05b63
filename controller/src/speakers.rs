//! What the controller makes of the speakers' own reports (`SpeakerStatus` and
//! `BGPSessionState` objects, or the speaker files): which nodes run no speaker
//! and which BGP sessions are down, each only once it has lasted a grace period.
//! A speaker that is starting, or a session still connecting after a router
//! restart, is not worth a condition and an Event on every Service it serves.
//!
//! Pure: the caller gives the time.

use std::collections::{BTreeMap, BTreeSet};

use ferrolb_crds::config::Config;
use ferrolb_crds::source::status::SpeakerStatusFile;
use ferrolb_speaker::bgp::routes::peers_for;
use ferrolb_speaker::election::NodeView;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Default grace period: a speaker pod pulling its image, or a BGP session after
/// a router restart (connect retry with backoff), takes tens of seconds.
pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_secs(60);

/// The verdicts of one pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdicts {
    /// The nodes that may run a speaker: every node except those without one for
    /// longer than the grace period. `None`: nothing is known of the speakers.
    pub may_run: Option<BTreeSet<String>>,
    /// (node, BGPPeer) sessions not Established for longer than the grace period,
    /// on nodes whose speaker runs.
    pub down: BTreeSet<(String, String)>,
    /// When a verdict still within its grace period matures: the caller passes
    /// again then, even if nothing changed.
    pub recheck_at: Option<Timestamp>,
}

impl Verdicts {
    /// Whether every session in `pairs` is judged down (false for none).
    pub fn all_down(&self, pairs: &[(String, String)]) -> bool {
        !pairs.is_empty() && pairs.iter().all(|p| self.down.contains(p))
    }
}

/// Since when each problem has been seen, between passes.
#[derive(Debug)]
pub struct SpeakerTracker {
    grace: SignedDuration,
    missing_since: BTreeMap<String, Timestamp>,
    down_since: BTreeMap<(String, String), Timestamp>,
}

impl Default for SpeakerTracker {
    fn default() -> Self {
        SpeakerTracker::new(DEFAULT_GRACE)
    }
}

impl SpeakerTracker {
    /// A tracker that waits `grace` before calling a speaker missing or a session
    /// down.
    pub fn new(grace: SignedDuration) -> Self {
        SpeakerTracker {
            grace,
            missing_since: BTreeMap::new(),
            down_since: BTreeMap::new(),
        }
    }

    /// The verdicts at `now`, from the Nodes, the configuration (which peers each
    /// node has) and what the speakers report (`None`: unknown).
    pub fn judge(
        &mut self,
        nodes: &[Node],
        config: &Config,
        speakers: Option<&[SpeakerStatusFile]>,
        now: Timestamp,
    ) -> Verdicts {
        let Some(speakers) = speakers else {
            self.missing_since.clear();
            self.down_since.clear();
            return Verdicts::default();
        };
        let by_node: BTreeMap<&str, &SpeakerStatusFile> =
            speakers.iter().map(|s| (s.node.as_str(), s)).collect();
        let mut v = Verdicts::default();
        let mut may_run = BTreeSet::new();
        let mut missing = BTreeMap::new();
        let mut down_since = BTreeMap::new();
        for n in nodes {
            let view = NodeView::from_node(n);
            let Some(status) = by_node.get(view.name.as_str()) else {
                let since = self.missing_since.get(&view.name).copied().unwrap_or(now);
                if !self.mature(since, now, &mut v.recheck_at) {
                    may_run.insert(view.name.clone());
                }
                missing.insert(view.name, since);
                continue;
            };
            for peer in peers_for(config, &view) {
                let up = status.sessions.iter().any(|s| {
                    s.peer.as_deref() == Some(peer.name.as_str())
                        && s.bgp_status.as_deref() == Some("Established")
                });
                if up {
                    continue;
                }
                let key = (view.name.clone(), peer.name.clone());
                let since = self.down_since.get(&key).copied().unwrap_or(now);
                if self.mature(since, now, &mut v.recheck_at) {
                    v.down.insert(key.clone());
                }
                down_since.insert(key, since);
            }
            may_run.insert(view.name);
        }
        v.may_run = Some(may_run);
        self.missing_since = missing;
        self.down_since = down_since;
        v
    }

    /// Whether a problem seen since `since` has lasted the grace period; if not,
    /// moves `recheck` to when it will have.
    fn mature(&self, since: Timestamp, now: Timestamp, recheck: &mut Option<Timestamp>) -> bool {
        let due = since.checked_add(self.grace).unwrap_or(Timestamp::MAX);
        if due <= now {
            return true;
        }
        *recheck = Some(recheck.map_or(due, |r| r.min(due)));
        false
    }
}
