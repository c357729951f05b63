//! Speaker metrics, named `ferrolb_<subsystem>_<name>_<unit>`. Address labels are
//! bounded by the addresses this node owns.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of per-address layer 2 counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AddrLabels {
    /// The load-balancer address.
    pub ip: String,
    /// The interface.
    pub interface: String,
}

/// Layer 2 metrics.
#[derive(Debug, Default)]
pub struct L2Metrics {
    /// Requests/solicitations received for an owned address.
    pub requests: Family<AddrLabels, Counter>,
    /// Replies/advertisements sent.
    pub replies: Family<AddrLabels, Counter>,
    /// Gratuitous ARPs / unsolicited NAs sent.
    pub announcements: Family<AddrLabels, Counter>,
    /// Frames from another host claiming an owned address.
    pub conflicts: Family<AddrLabels, Counter>,
    /// Addresses this node announces.
    pub owned: Gauge,
    /// 1 while a finding holds (`ferrolb_speaker_finding`), one series per
    /// finding type (`crate::findings::ALL`).
    pub findings: Family<FindingLabels, Gauge>,
}

/// Label of the finding gauge: a condition type of the speaker's status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    /// `StrictARPDisabled`, `InterfaceUnavailable`, ...
    pub finding: String,
}

impl L2Metrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &mut Registry) -> Self {
        let m = L2Metrics::default();
        registry.register(
            "ferrolb_layer2_requests_received",
            "ARP requests and neighbour solicitations received for owned addresses",
            m.requests.clone(),
        );
        registry.register(
            "ferrolb_layer2_responses_sent",
            "ARP replies and neighbour advertisements sent",
            m.replies.clone(),
        );
        registry.register(
            "ferrolb_layer2_gratuitous_sent",
            "Gratuitous ARPs and unsolicited neighbour advertisements sent",
            m.announcements.clone(),
        );
        registry.register(
            "ferrolb_layer2_conflicts",
            "Frames in which another host claims an address this node announces",
            m.conflicts.clone(),
        );
        registry.register(
            "ferrolb_layer2_announced_addresses",
            "Addresses this node announces in layer 2 mode",
            m.owned.clone(),
        );
        registry.register(
            "ferrolb_speaker_finding",
            "1 while the speaker reports the finding as a condition on its status",
            m.findings.clone(),
        );
        // Every series from the start: an alert on `== 1` needs no absent() twin.
        for t in crate::findings::ALL {
            m.finding(t).set(0);
        }
        m
    }

    /// The gauge of one finding type.
    pub fn finding(&self, finding: &str) -> Gauge {
        self.findings
            .get_or_create(&FindingLabels {
                finding: finding.to_string(),
            })
            .clone()
    }
}

/// Labels of per-peer BGP metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// The BGPPeer's name.
    pub peer: String,
}

/// BGP metrics, named like MetalLB's.
#[derive(Debug, Default)]
pub struct BgpMetrics {
    /// 1 while the session is Established.
    pub session_up: Family<PeerLabels, Gauge>,
    /// UPDATE messages sent.
    pub updates_sent: Family<PeerLabels, Counter>,
    /// Prefixes the peer has from us.
    pub announced_prefixes: Family<PeerLabels, Gauge>,
    /// NOTIFICATIONs sent because of an error (hold timer, malformed input, ...).
    pub errors: Family<PeerLabels, Counter>,
    /// Prefixes the session could carry but does not (no next hop of their
    /// family, or the peer did not negotiate it).
    pub withheld_prefixes: Family<PeerLabels, Gauge>,
}

impl BgpMetrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &mut Registry) -> Self {
        let m = BgpMetrics::default();
        registry.register(
            "ferrolb_bgp_session_up",
            "1 while the BGP session with the peer is Established",
            m.session_up.clone(),
        );
        registry.register(
            "ferrolb_bgp_updates_sent",
            "BGP UPDATE messages sent to the peer",
            m.updates_sent.clone(),
        );
        registry.register(
            "ferrolb_bgp_announced_prefixes",
            "Prefixes announced to the peer",
            m.announced_prefixes.clone(),
        );
        registry.register(
            "ferrolb_bgp_session_errors",
            "Sessions ended by an error with a NOTIFICATION sent",
            m.errors.clone(),
        );
        registry.register(
            "ferrolb_bgp_withheld_prefixes",
            "Prefixes not announced to the peer: no next hop of their family on the session's interface, or the family not negotiated",
            m.withheld_prefixes.clone(),
        );
        m
    }

    /// The labels of a peer.
    pub fn peer(name: &str) -> PeerLabels {
        PeerLabels {
            peer: name.to_string(),
        }
    }
}

/// A member state label (`alive`, `dead`, `left`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The state.
    pub state: String,
}

/// Why a membership message was refused (`authentication`, `foreign`, `malformed`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The reason.
    pub reason: String,
}

/// `sent` (this node left) or `received` (another node left).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// The direction.
    pub direction: String,
}

/// Membership metrics.
#[derive(Debug, Default)]
pub struct MembershipMetrics {
    /// Members per state, as this node sees them.
    pub members: Family<StateLabels, Gauge>,
    /// Checks started because a member was silent.
    pub suspicions: Counter,
    /// Members this node declared dead.
    pub declared: Counter,
    /// Rumours of this node's death it refuted.
    pub refutations: Counter,
    /// Planned handovers.
    pub handovers: Family<DirectionLabels, Counter>,
    /// Messages accepted.
    pub received: Counter,
    /// Messages refused.
    pub refused: Family<ReasonLabels, Counter>,
}

impl MembershipMetrics {
    /// Creates and registers the metrics.
    pub fn new(registry: &mut Registry) -> Self {
        let m = MembershipMetrics::default();
        registry.register(
            "ferrolb_membership_members",
            "Speakers per state as this node sees them (itself included in alive)",
            m.members.clone(),
        );
        registry.register(
            "ferrolb_membership_suspicions",
            "Checks started because a member was silent too long",
            m.suspicions.clone(),
        );
        registry.register(
            "ferrolb_membership_declared_dead",
            "Members this node declared dead after failed direct and indirect probes",
            m.declared.clone(),
        );
        registry.register(
            "ferrolb_membership_refutations",
            "Reports of this node's death it refuted",
            m.refutations.clone(),
        );
        registry.register(
            "ferrolb_membership_handovers",
            "Planned handovers: this node leaving (sent) or another leaving (received)",
            m.handovers.clone(),
        );
        registry.register(
            "ferrolb_membership_messages_received",
            "Membership messages accepted",
            m.received.clone(),
        );
        registry.register(
            "ferrolb_membership_messages_refused",
            "Membership messages refused (bad key, foreign, malformed)",
            m.refused.clone(),
        );
        m
    }
}
