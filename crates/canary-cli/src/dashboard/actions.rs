//! What the dashboard's buttons do: the same as `canary approve`, `canary promote
//! [--full]` (the very functions, `records::gates`) and `canary abort`, each returning
//! the sentence the command prints.

use canary_store::{Abort, DeploymentStore, ServiceRef};

use crate::error::CliError;
use crate::records::gates;

/// A button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `canary approve`: pass the gate the deployment waits at.
    Approve,
    /// `canary promote`: skip the remaining steps' pauses.
    Promote,
    /// `canary promote --full`: 100% at the next passing check.
    PromoteFull,
    /// `canary abort`: roll back at the next step.
    Abort,
}

impl Action {
    /// The action a route names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "approve" => Some(Self::Approve),
            "promote" => Some(Self::Promote),
            "promote-full" => Some(Self::PromoteFull),
            "abort" => Some(Self::Abort),
            _ => None,
        }
    }
}

/// Runs `action` on `svc` as `by`; the sentence the command would print, or why not.
pub async fn run(
    action: Action,
    store: &DeploymentStore,
    svc: &ServiceRef,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<String, CliError> {
    match action {
        Action::Abort => abort(store, svc, by, reason, now).await,
        Action::Approve | Action::Promote | Action::PromoteFull => {
            gate_action(action, store, svc, by, reason, now).await
        }
    }
}

/// `canary abort`: asks the running deployment to roll back at its next step. A
/// service with no deployment running (the lock not held), or an empty reason, is a
/// usage error, as for the command.
pub async fn abort(
    store: &DeploymentStore,
    svc: &ServiceRef,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<String, CliError> {
    if reason.trim().is_empty() {
        return Err(CliError::Usage(
            "reason must not be empty: say why the deployment is aborted".into(),
        ));
    }
    let status = store.status(svc).await?;
    let Some(lock) = &status.lock else {
        return Err(CliError::Usage(format!(
            "{svc}: no deployment is running (the lock is not held); nothing to abort"
        )));
    };
    store
        .request_abort(
            svc,
            &Abort {
                by: by.to_owned(),
                reason: reason.to_owned(),
                at: now,
            },
        )
        .await?;
    let what = match &status.in_progress {
        Some(r) => format!("version {} (at {}% of the traffic)", r.version, r.weight),
        None => "the deployment".to_owned(),
    };
    Ok(format!(
        "{svc}: abort requested by {by}; execution {} will roll {what} back at its next step, and end \"aborted by {by}: {reason}\"",
        lock.execution
    ))
}

async fn gate_action(
    action: Action,
    store: &DeploymentStore,
    svc: &ServiceRef,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<String, CliError> {
    // The commands' defaults when the person gave no reason.
    let (default_reason, full) = match action {
        Action::Approve => ("approved", false),
        Action::PromoteFull => ("promoted by hand", true),
        Action::Promote | Action::Abort => ("promoted by hand", false),
    };
    let reason = if reason.trim().is_empty() {
        default_reason
    } else {
        reason
    };
    match action {
        Action::Approve => gates::approve(store, svc, by, reason, now).await,
        _ => gates::promote(store, svc, full, by, reason, now).await,
    }
}
