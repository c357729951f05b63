//! Leader election on a `coordination.k8s.io/v1` Lease, so that two controller
//! replicas never allocate at the same time. The decision is pure; `Elector` does
//! the API calls. Optimistic concurrency (resourceVersion) settles races: of two
//! replicas writing the same Lease, one gets a conflict and follows.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;

/// Timings, as client-go's defaults.
#[derive(Clone, Copy, Debug)]
pub struct LeaseTimings {
    /// How long a lease is valid without renewal.
    pub duration: Duration,
    /// A leader that could not renew for this long stops leading.
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry: Duration,
}

impl Default for LeaseTimings {
    fn default() -> Self {
        LeaseTimings {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// What to do with the Lease as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No Lease exists: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Another holder let it expire (or none holds it): take it.
    Acquire,
    /// Another holder's lease is valid: wait.
    Follow(String),
}

/// Decides from the Lease's spec.
pub fn decide(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == me {
        return Decision::Renew;
    }
    let secs = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let expired = match &spec.renew_time {
        Some(t) => t.0 + SignedDuration::from_secs(secs) < now,
        None => true,
    };
    if holder.is_empty() || expired {
        Decision::Acquire
    } else {
        Decision::Follow(holder.to_string())
    }
}

/// The Lease spec after `decision` (for Create, Renew, Acquire).
pub fn next_spec(
    current: Option<&LeaseSpec>,
    decision: &Decision,
    me: &str,
    now: Timestamp,
    t: &LeaseTimings,
) -> LeaseSpec {
    let mut s = current.cloned().unwrap_or_default();
    s.holder_identity = Some(me.to_string());
    s.lease_duration_seconds = Some(i32::try_from(t.duration.as_secs()).unwrap_or(15));
    s.renew_time = Some(MicroTime(now));
    if matches!(decision, Decision::Create | Decision::Acquire) {
        s.acquire_time = Some(MicroTime(now));
        s.lease_transitions = Some(match decision {
            Decision::Create => 0,
            _ => s.lease_transitions.unwrap_or(0) + 1,
        });
    }
    s
}

/// Runs the election; `leader` is true while we hold the Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    me: String,
    timings: LeaseTimings,
}

impl Elector {
    /// An elector for Lease `name` in `namespace`, as `me` (the pod name).
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        me: &str,
        timings: LeaseTimings,
    ) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            me: me.to_string(),
            timings,
        }
    }

    /// One round: read, decide, write. Returns whether we lead afterwards.
    pub async fn round(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.name).await?;
        let decision = decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.me,
            now,
        );
        let spec = next_spec(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &decision,
            &self.me,
            now,
            &self.timings,
        );
        let result = match (&decision, current) {
            (Decision::Follow(holder), _) => {
                tracing::debug!(%holder, "another replica leads");
                return Ok(false);
            }
            (Decision::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(spec),
                };
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            (_, Some(mut lease)) => {
                // resourceVersion stays set: a concurrent writer makes this a 409.
                lease.spec = Some(spec);
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            (_, None) => return Ok(false),
        };
        match result {
            Ok(()) => {
                if decision != Decision::Renew {
                    tracing::info!(lease = %self.name, "became the leader");
                }
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs rounds forever, publishing leadership. A leader that cannot renew
    /// within the renew deadline publishes `false` (and the caller stops).
    pub async fn run(self, leader: watch::Sender<bool>) {
        let mut last_renewed: Option<tokio::time::Instant> = None;
        loop {
            match self.round().await {
                Ok(true) => {
                    last_renewed = Some(tokio::time::Instant::now());
                    leader.send_replace(true);
                }
                Ok(false) => {
                    last_renewed = None;
                    leader.send_replace(false);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lease round failed");
                    if last_renewed.is_none_or(|t| t.elapsed() > self.timings.renew_deadline) {
                        leader.send_replace(false);
                    }
                }
            }
            tokio::time::sleep(self.timings.retry).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed: &str) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(MicroTime(renewed.parse().unwrap())),
            lease_transitions: Some(3),
            ..Default::default()
        }
    }

    #[test]
    fn decisions() {
        let now: Timestamp = "2026-11-24T12:00:30Z".parse().unwrap();
        assert_eq!(decide(None, "a", now), Decision::Create);
        assert_eq!(
            decide(Some(&spec("a", "2026-11-24T11:00:00Z")), "a", now),
            Decision::Renew
        );
        assert_eq!(
            decide(Some(&spec("b", "2026-11-24T12:00:20Z")), "a", now),
            Decision::Follow("b".into())
        );
        assert_eq!(
            decide(Some(&spec("b", "2026-11-24T12:00:10Z")), "a", now),
            Decision::Acquire,
            "15 s without renewal"
        );
        assert_eq!(
            decide(Some(&spec("", "2026-11-24T12:00:29Z")), "a", now),
            Decision::Acquire
        );
    }

    #[test]
    fn acquiring_counts_a_transition_and_renewing_does_not() {
        let now: Timestamp = "2026-11-24T12:00:30Z".parse().unwrap();
        let t = LeaseTimings::default();
        let old = spec("b", "2026-11-24T12:00:00Z");
        let s = next_spec(Some(&old), &Decision::Acquire, "a", now, &t);
        assert_eq!(
            (s.holder_identity.as_deref(), s.lease_transitions),
            (Some("a"), Some(4))
        );
        assert_eq!(s.acquire_time, Some(MicroTime(now)));
        let r = next_spec(Some(&s), &Decision::Renew, "a", now, &t);
        assert_eq!(r.lease_transitions, Some(4));
    }
}
