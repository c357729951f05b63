//! Kubernetes-style conditions whose `lastTransitionTime` only moves when the
//! status does, so that unchanged state writes identical status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A condition of `type_`, keeping the transition time of `existing` when the
/// status is the same.
pub fn condition(
    existing: &[Condition],
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    now: Timestamp,
    generation: Option<i64>,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let since = existing
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: since,
        observed_generation: generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let c0 = condition(&[], "Ready", true, "A", "m".into(), t0, None);
        let c1 = condition(
            std::slice::from_ref(&c0),
            "Ready",
            true,
            "B",
            "n".into(),
            t1,
            Some(2),
        );
        assert_eq!(c1.last_transition_time, Time(t0));
        assert_eq!((c1.reason.as_str(), c1.observed_generation), ("B", Some(2)));
        let c2 = condition(&[c1], "Ready", false, "C", "o".into(), t1, None);
        assert_eq!(c2.last_transition_time, Time(t1));
    }
}
