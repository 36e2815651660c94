//! The final state after a deployment, checked: all traffic on one version (the route
//! read through its traffic provider), no other version's objects left, the serving
//! version's objects there, the lock released, the store's stable version and the
//! record written.

use canary_core::execution::OutcomeStatus;
use canary_core::labels;
pub use canary_core::provider::route_weights as route_targets;
use serde::Serialize;

use super::DemoEnv;
use super::fixtures::{NAMESPACE, SERVICE};

/// One check of the cluster's (and the store's) final state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

impl Check {
    pub(crate) fn new(name: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        }
    }
}

impl DemoEnv {
    /// Checks the final state after a deployment of `version` that should have left
    /// `stable` serving all traffic with the given outcome.
    pub async fn verify(&self, version: u32, stable: u32, outcome: OutcomeStatus) -> Vec<Check> {
        let mut checks = vec![self.traffic_check(stable)];
        checks.extend(self.object_checks(stable));
        checks.extend(self.store_checks(version, stable, outcome).await);
        checks
    }

    /// All traffic on one version: the route object, read from the simulator.
    fn traffic_check(&self, stable: u32) -> Check {
        let stable_name = labels::versioned_name(SERVICE, stable);
        let route = self.sim.get_object(
            "appmesh.k8s.aws/v1beta2",
            "VirtualRouter",
            NAMESPACE,
            SERVICE,
        );
        let targets = route.as_ref().map(route_targets).unwrap_or_default();
        let serving: Vec<&(String, u64)> = targets.iter().filter(|(_, w)| *w > 0).collect();
        let one = serving.len() == 1 && serving.iter().all(|(n, w)| *n == stable_name && *w == 100);
        Check::new(
            "all traffic on one version",
            one,
            if route.is_none() {
                "no VirtualRouter yelb-appserver".to_owned()
            } else {
                format!("route targets {}", show_targets(&targets))
            },
        )
    }

    /// No canary objects left, and the stable version's objects are there.
    fn object_checks(&self, stable: u32) -> [Check; 2] {
        let stable_name = labels::versioned_name(SERVICE, stable);
        let objects = self.sim.list_objects(NAMESPACE);
        let mut leftovers = Vec::new();
        let mut stable_objects = 0;
        for o in &objects {
            let labels_of = &o["metadata"]["labels"];
            if labels_of[labels::SERVICE].as_str() != Some(SERVICE) {
                continue;
            }
            match labels_of[labels::VERSION].as_str() {
                Some(v) if v == stable.to_string() => stable_objects += 1,
                Some(_) => leftovers.push(format!(
                    "{} {}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                )),
                None => {}
            }
        }
        let deployment = self
            .sim
            .get_object("apps/v1", "Deployment", NAMESPACE, &stable_name);
        [
            Check::new(
                "no other version's objects left",
                leftovers.is_empty(),
                if leftovers.is_empty() {
                    "none".to_owned()
                } else {
                    leftovers.join(", ")
                },
            ),
            Check::new(
                "the serving version's objects exist",
                deployment.is_some() && stable_objects > 0,
                format!("{stable_objects} objects labelled version {stable}"),
            ),
        ]
    }

    /// The lock is released, the stable version recorded and the record written, from
    /// the store.
    async fn store_checks(&self, version: u32, stable: u32, outcome: OutcomeStatus) -> Vec<Check> {
        let mut checks = Vec::new();
        let svc = self.service_ref();
        match self.services.store.status(&svc).await {
            Ok(status) => {
                checks.push(Check::new(
                    "lock released",
                    status.lock.is_none(),
                    match &status.lock {
                        Some(l) => format!("held by {}", l.execution),
                        None => "released".to_owned(),
                    },
                ));
                checks.push(Check::new(
                    "store's stable version",
                    status.state.stable_version == Some(stable),
                    format!("{:?}", status.state.stable_version),
                ));
            }
            Err(e) => checks.push(Check::new("lock released", false, e.to_string())),
        }
        match self.services.store.record(&svc, version).await {
            Ok(Some(record)) => {
                let ok = record.ended_at.is_some()
                    && record.outcome.as_ref().map(|o| o.status) == Some(outcome);
                checks.push(Check::new(
                    "record written",
                    ok,
                    match &record.outcome {
                        Some(o) => format!("{:?}: {}", o.status, o.reason),
                        None => "no outcome".to_owned(),
                    },
                ));
            }
            Ok(None) => checks.push(Check::new("record written", false, "no record")),
            Err(e) => checks.push(Check::new("record written", false, e.to_string())),
        }
        checks
    }
}

fn show_targets(targets: &[(String, u64)]) -> String {
    if targets.is_empty() {
        return "none".to_owned();
    }
    targets
        .iter()
        .map(|(n, w)| format!("{n}={w}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The notifications of a deployment whose tasks may have been retried: every id says
/// one decision (its repeats have the same detail-type, step and weight: a retry sends
/// the same id again, never a second distinct message), and when the deployment ended
/// (`outcome`), the last one says how.
pub fn notifications_check(
    sent: &[canary_core::notify::Notification],
    outcome: Option<OutcomeStatus>,
) -> Check {
    let key = |n: &canary_core::notify::Notification| {
        (
            n.detail_type.clone(),
            n.detail.get("step").cloned(),
            n.detail.get("weight").cloned(),
        )
    };
    let mut first: Vec<&canary_core::notify::Notification> = Vec::new();
    let mut repeats = 0;
    for n in sent {
        match first.iter().find(|f| f.id == n.id) {
            Some(f) if key(f) != key(n) => {
                return Check::new(
                    "notifications: one decision per id",
                    false,
                    format!("id {} said {:?} and then {:?}", n.id, key(f), key(n)),
                );
            }
            Some(_) => repeats += 1,
            None => first.push(n),
        }
    }
    let last = first.last().map(|n| n.detail_type.as_str());
    let want = outcome.map(|o| match o {
        OutcomeStatus::Promoted => "Canary Promoted",
        OutcomeStatus::RolledBack => "Canary Rolled Back",
    });
    let ends_right = want.is_none() || last == want;
    let types: Vec<&str> = first.iter().map(|n| n.detail_type.as_str()).collect();
    Check::new(
        "notifications: one decision per id, the end last",
        ends_right,
        format!(
            "{} decisions, {repeats} sent again with the same id: {}",
            first.len(),
            types.join(", ")
        ),
    )
}
