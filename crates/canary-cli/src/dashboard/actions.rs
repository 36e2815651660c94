//! What the dashboard's buttons do: the same as `canary approve`, `canary promote
//! [--full]` (the very functions, `records::gates`) and `canary abort`, each returning
//! the sentence the command prints.

use canary_store::{DeploymentStore, ServiceRef};

use crate::error::CliError;
use crate::records::gates;
use crate::records::lock::request_abort;

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

/// `canary abort` (`records::lock::request_abort`), with the sentence the page shows.
pub async fn abort(
    store: &DeploymentStore,
    svc: &ServiceRef,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<String, CliError> {
    let r = request_abort(store, svc, by, reason, now).await?;
    Ok(format!(
        "{svc}: abort requested by {by}; execution {} will roll {} back at its next step, and end \"aborted by {by}: {reason}\"",
        r.execution, r.what
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
