//! How a deployment is rolled back, and why: traffic back to the stable version, a
//! failed first deployment removed, or — when the stable version is already gone — the
//! promotion completed instead (sending traffic to a removed version would be an
//! outage). Also which errors roll back, and the sentence the record keeps.

use crate::errors::ErrorName;
use crate::execution::{CaughtError, Deployment};
use crate::labels::versioned_name;
use crate::verdict::VerdictStatus;

/// Whether a task error sends the state machine to rollback once the canary's objects
/// may exist: every error except the hands-off ones (`ServiceLocked`, `LockLost`),
/// after which the service belongs to someone else.
pub fn error_rolls_back(error: ErrorName) -> bool {
    !error.is_hands_off()
}

/// What rollback does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackPlan {
    /// All traffic back to `stable`, the canary removed.
    BackToStable {
        /// The stable version.
        stable: u32,
    },
    /// The stable version's Deployment is gone: the canary keeps all traffic, what is
    /// left of `stable` is removed, and the outcome is a promotion. The canary's
    /// Deployment must still exist ([`NothingCanServe`] otherwise).
    CompletePromotion {
        /// The removed stable version.
        stable: u32,
    },
    /// A first deployment failed: every object of the service is removed (nothing
    /// served before it).
    RemoveFirst,
}

impl RollbackPlan {
    /// The plan for `d`, given whether the stable version's Deployment still exists.
    pub fn choose(d: &Deployment, stable_alive: bool) -> Self {
        match d.stable_version {
            Some(stable) if stable_alive => Self::BackToStable { stable },
            Some(stable) => Self::CompletePromotion { stable },
            None => Self::RemoveFirst,
        }
    }
}

/// When the caught error says that nothing of the deployment reached the cluster (its
/// namespace does not exist: deploy-canary's first write was refused), the rollback has
/// nothing to undo and must not touch the cluster (it may not even be allowed to): the
/// reason the record keeps. `None` for every other error.
pub fn nothing_applied_reason(
    service: &str,
    d: &Deployment,
    caught: Option<&CaughtError>,
) -> Option<String> {
    let caught = caught?;
    if ErrorName::from_name(&caught.error) != Some(ErrorName::NamespaceMissing) {
        return None;
    }
    Some(format!(
        "{} was not deployed, nothing was written to the cluster: {}",
        versioned_name(service, d.canary_version),
        crate::errors::readable_cause(caught.cause.trim())
    ))
}

/// Neither the stable version nor the canary has a Deployment: no version can serve,
/// and a person must restore one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "neither {stable} nor {canary} has a Deployment in namespace {namespace}: nothing can serve {service}; restore a version by hand (`canary status {service}` shows the records)"
)]
pub struct NothingCanServe {
    /// `<service>-<stable>`.
    pub stable: String,
    /// `<service>-<canary>`.
    pub canary: String,
    /// The namespace.
    pub namespace: String,
    /// The microservice.
    pub service: String,
}

/// One sentence: why `d` is rolled back — the caught error when there is one, else the
/// last verdict (with the count of holds when too little traffic was seen).
pub fn rolled_back_reason(service: &str, d: &Deployment, caught: Option<&CaughtError>) -> String {
    let version = versioned_name(service, d.canary_version);
    let place = match d.stable_version {
        Some(s) => format!(
            "{version} rolled back to {} at {}% of traffic",
            versioned_name(service, s),
            d.weight
        ),
        None => format!("{version} (a first deployment) removed"),
    };
    if let Some(CaughtError { error, cause }) = caught {
        let cause = cause.trim();
        return match (ErrorName::from_name(error), cause.is_empty()) {
            (_, true) => format!("{place}: {error}"),
            // The cause already says "aborted by <who>: <why>".
            (Some(ErrorName::Aborted), false) => format!("{place}: {cause}"),
            _ => format!("{place}: {error}: {cause}"),
        };
    }
    if let Some(why) = &d.rollback_reason {
        return format!("{place}: {why}");
    }
    match &d.verdict {
        Some(v) if v.status == VerdictStatus::Hold => {
            format!(
                "{place}: too little traffic after {} checks in a row: {}",
                d.holds, v.reason
            )
        }
        Some(v) => format!("{place}: {}", v.reason),
        None => format!("{place}: rollback requested"),
    }
}

/// The sentence of a rollback that completed the promotion because `stable` was gone;
/// `why` is what [`rolled_back_reason`] says.
pub fn completed_promotion_reason(service: &str, d: &Deployment, stable: u32, why: &str) -> String {
    format!(
        "{} kept all traffic because {} was already removed, so the promotion was completed ({why})",
        versioned_name(service, d.canary_version),
        versioned_name(service, stable)
    )
}
