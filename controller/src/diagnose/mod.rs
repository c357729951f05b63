//! Why a Service's address is (not) reachable, as a chain of links
//! Service -> address -> pool -> advertisement -> eligible nodes -> owner/peers ->
//! state, each OK or broken, the first broken one with a fix naming the object and
//! field to change.
//!
//! Pure: [`diagnose`] works on a snapshot and the speakers' status; `load` (the
//! only module with I/O) fetches them from a directory or the API server, and
//! `render` prints the result.

mod allocation;
mod chain;
mod links;
pub mod load;
mod nodes;
pub mod render;

use ferrolb_crds::ClusterSnapshot;
use ferrolb_crds::source::status::SpeakerStatusFile;
use serde::Serialize;

pub use chain::{diagnose, node_problem};

/// What the diagnosis looks at.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    /// Cluster state, with Service status (the file source overlays
    /// `status/services.yaml`).
    pub snapshot: &'a ClusterSnapshot,
    /// The loadBalancerClass served.
    pub class: &'a str,
    /// What the speakers report (announced Services, established peers,
    /// findings), one entry per node.
    pub speakers: &'a [SpeakerStatusFile],
    /// Whether a node missing from `speakers` runs no speaker: with the file
    /// source, some speaker file exists; with the kube source, some `SpeakerStatus`
    /// (every running speaker keeps one).
    pub speakers_complete: bool,
}

/// The verdict on one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// The link holds.
    Ok,
    /// The link is broken: traffic cannot get past it.
    Broken,
    /// Not checked, because an earlier link is broken.
    Skipped,
}

/// One link of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Stable identifier: `service`, `address`, `pool`, `advertisement`,
    /// `l2Nodes`, `l2Owner`, `bgpNodes`, `bgpPeers`, `state` (and `nodes`,
    /// `announcement` when skipped before the mode is known).
    pub link: &'static str,
    /// The verdict.
    pub status: Mark,
    /// CamelCase reason, stable (for scripts and alerts).
    pub reason: String,
    /// One line for a person.
    pub summary: String,
    /// Supporting facts (one per pool, node, address or peer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// What to change, on a broken link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Link {
    fn ok(link: &'static str, reason: &str, summary: impl Into<String>) -> Self {
        Link {
            link,
            status: Mark::Ok,
            reason: reason.into(),
            summary: summary.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    fn broken(
        link: &'static str,
        reason: &str,
        summary: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Link {
            link,
            status: Mark::Broken,
            reason: reason.into(),
            summary: summary.into(),
            details: Vec::new(),
            fix: Some(fix.into()),
        }
    }

    fn with_details(mut self, details: Vec<String>) -> Self {
        self.details = details;
        self
    }
}

/// The whole chain for one Service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diagnosis {
    /// `namespace/name`.
    pub service: String,
    /// Whether every link holds.
    pub reachable: bool,
    /// The first broken link's identifier.
    pub broken_link: Option<&'static str>,
    /// The links, in order.
    pub links: Vec<Link>,
}

#[cfg(test)]
mod tests;
