//! Which nodes may announce an address, and for every other node why not. The
//! checks are the speaker's (`NodeView::from_node`, advertisement node selectors,
//! ready endpoints for `externalTrafficPolicy: Local`), spelled out one by one.

use std::collections::BTreeSet;

use ferrolb_crds::annotations::EXCLUDE_FROM_EXTERNAL_LB;
use ferrolb_crds::config::{Selector, any_matches};
use ferrolb_speaker::election::NodeView;
use k8s_openapi::api::core::v1::Node;

use super::Link;

/// Why a node does not announce, in the order the checks run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Excluded {
    /// The Node's Ready condition is False or Unknown.
    NotReady,
    /// The Node's NetworkUnavailable condition is True.
    NetworkUnavailable,
    /// The Node carries the exclude-from-external-load-balancers label.
    ExcludeLabel,
    /// No advertisement of the pool selects the node.
    NodeSelectors,
    /// `externalTrafficPolicy: Local` and no ready endpoint on the node.
    NoReadyEndpoint,
    /// No speaker runs on the node.
    NoSpeaker,
}

/// The advertisements of one mode that select the pool: (kind, name, node selectors).
pub struct Ads<'a> {
    /// `L2Advertisement` or `BGPAdvertisement`.
    pub kind: &'static str,
    /// (name, nodeSelectors).
    pub ads: Vec<(&'a str, &'a [Selector])>,
}

/// What decides eligibility apart from the node itself.
pub struct Context<'a> {
    /// With `externalTrafficPolicy: Local`, the nodes with a ready endpoint.
    pub endpoints: Option<&'a BTreeSet<String>>,
    /// The nodes known to run a speaker (`None`: unknown).
    pub speakers: Option<&'a BTreeSet<String>>,
}

fn condition<'a>(n: &'a Node, t: &str) -> Option<&'a str> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.as_str())
}

/// Why `n` does not announce for these advertisements, or `None` when it may.
pub fn exclusion(n: &Node, ads: &Ads<'_>, ctx: &Context<'_>) -> Option<Excluded> {
    let view = NodeView::from_node(n);
    if !view.usable {
        // Same order as NodeView::from_node's checks.
        if matches!(condition(n, "Ready"), Some("False" | "Unknown")) {
            return Some(Excluded::NotReady);
        }
        if condition(n, "NetworkUnavailable") == Some("True") {
            return Some(Excluded::NetworkUnavailable);
        }
        if view.labels.contains_key(EXCLUDE_FROM_EXTERNAL_LB) {
            return Some(Excluded::ExcludeLabel);
        }
    }
    if !ads
        .ads
        .iter()
        .any(|(_, sel)| any_matches(sel, &view.labels))
    {
        return Some(Excluded::NodeSelectors);
    }
    if ctx.endpoints.is_some_and(|e| !e.contains(&view.name)) {
        return Some(Excluded::NoReadyEndpoint);
    }
    if ctx.speakers.is_some_and(|s| !s.contains(&view.name)) {
        return Some(Excluded::NoSpeaker);
    }
    None
}

fn describe(why: &Excluded, ads: &Ads<'_>) -> String {
    match why {
        Excluded::NotReady => "NotReady".into(),
        Excluded::NetworkUnavailable => "NetworkUnavailable".into(),
        Excluded::ExcludeLabel => format!("labelled {EXCLUDE_FROM_EXTERNAL_LB}"),
        Excluded::NodeSelectors => format!(
            "spec.nodeSelectors of {} {} match none of its labels",
            ads.kind,
            ads.ads
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Excluded::NoReadyEndpoint => {
            "no ready endpoint of the Service (externalTrafficPolicy: Local)".into()
        }
        Excluded::NoSpeaker => "no ferrolb-speaker runs there".into(),
    }
}

fn fix(why: &Excluded, ads: &Ads<'_>, service: &str) -> String {
    match why {
        Excluded::NotReady => "bring a node back to Ready (kubectl describe node)".into(),
        Excluded::NetworkUnavailable => {
            "fix the network plugin on a node (its NetworkUnavailable condition is True)".into()
        }
        Excluded::ExcludeLabel => format!("remove the label {EXCLUDE_FROM_EXTERNAL_LB} from a node"),
        Excluded::NodeSelectors => format!(
            "change spec.nodeSelectors of {} {} to match a node (or label a node to match)",
            ads.kind,
            ads.ads.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
        Excluded::NoReadyEndpoint => format!(
            "make a pod of Service {service} ready (kubectl get endpointslices -l kubernetes.io/service-name=...), or set spec.externalTrafficPolicy: Cluster on it"
        ),
        Excluded::NoSpeaker => "run ferrolb-speaker on the nodes (DaemonSet nodeSelector and tolerations; with the file source, ferrolb-speaker --source file --node NODE)".into(),
    }
}

/// The eligible-nodes link of one mode, and the eligible nodes.
pub fn nodes_link(
    id: &'static str,
    nodes: &[Node],
    ads: &Ads<'_>,
    ctx: &Context<'_>,
    service: &str,
) -> (Link, Vec<String>) {
    let mut eligible = Vec::new();
    let mut details = Vec::new();
    let mut closest: Option<Excluded> = None;
    for n in nodes {
        let name = n.metadata.name.clone().unwrap_or_default();
        match exclusion(n, ads, ctx) {
            None => {
                details.push(format!("{name}: eligible"));
                eligible.push(name);
            }
            Some(why) => {
                details.push(format!("{name}: {}", describe(&why, ads)));
                // The node that passed the most checks says what is left to fix.
                closest = closest.max(Some(why));
            }
        }
    }
    let link = match closest {
        _ if !eligible.is_empty() => Link::ok(
            id,
            "EligibleNodes",
            format!("{} may announce", eligible.join(", ")),
        ),
        None => Link::broken(
            id,
            "NoNodes",
            "no Node objects",
            "register nodes (with the file source: add Node objects to the directory)",
        ),
        Some(why) => {
            let reason = match why {
                Excluded::NoReadyEndpoint => "NoReadyEndpoint",
                Excluded::NoSpeaker => "NoSpeaker",
                _ => "NoEligibleNode",
            };
            Link::broken(
                id,
                reason,
                format!("no node may announce: {}", describe(&why, ads)),
                fix(&why, ads, service),
            )
        }
    };
    (link.with_details(details), eligible)
}
