//! `canary approve` and `canary promote`: a person's hand on a running deployment. Each
//! leaves a request beside the deployment's state (`approve.json`, `promote.json`,
//! naming the execution it is for) that its next passing health check acts on
//! (`canary_core::decide::gates`). [`approve`] and [`promote`] are what the commands
//! and the dashboard's buttons call.

use std::process::ExitCode;

use canary_core::decide::{Approval, PromoteRequest};
use canary_store::{DeploymentStore, ServiceRef, Status};

use super::{ServiceArgs, who};
use crate::error::CliError;
use crate::format::{duration, now_secs, utc};

/// `canary approve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Why, for the record and the notification.
    #[arg(long, default_value = "approved")]
    pub reason: String,
    /// Who approves (default `$USER@<hostname>`).
    #[arg(long)]
    pub by: Option<String>,
}

/// `canary promote`.
#[derive(Debug, Clone, clap::Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Skip every remaining step and gate: the next passing check shifts to 100%; the
    /// bake at 100% and its checks still come before the old version is removed.
    #[arg(long)]
    pub full: bool,
    /// Why, for the record and the notification.
    #[arg(long, default_value = "promoted by hand")]
    pub reason: String,
    /// Who promotes (default `$USER@<hostname>`).
    #[arg(long)]
    pub by: Option<String>,
}

/// The running deployment's execution, or the error that there is none.
fn running(svc: &ServiceRef, status: &Status) -> Result<String, CliError> {
    match (&status.lock, &status.state.in_progress) {
        (Some(lock), Some(_)) => Ok(lock.execution.clone()),
        (Some(lock), None) => Err(CliError::Usage(format!(
            "{svc}: execution {} holds the lock but has not started a deployment yet; try again in a moment",
            lock.execution
        ))),
        (None, _) => Err(CliError::Usage(format!(
            "{svc}: no deployment is running (the lock is not held); nothing to approve or promote"
        ))),
    }
}

fn check_words(by: &str, reason: &str) -> Result<(), CliError> {
    if by.trim().is_empty() {
        return Err(CliError::Usage("--by must not be empty".into()));
    }
    if reason.trim().is_empty() {
        return Err(CliError::Usage("--reason must not be empty".into()));
    }
    Ok(())
}

/// Passes the gate the running deployment of `svc` waits at; returns the sentence to
/// show. A service with no deployment, or one not waiting at a gate, is an error that
/// says where the deployment is.
pub async fn approve(
    store: &DeploymentStore,
    svc: &ServiceRef,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<String, CliError> {
    check_words(by, reason)?;
    let status = store.status(svc).await?;
    let execution = running(svc, &status)?;
    let record = status.in_progress.as_ref();
    let Some(gate) = record.and_then(|r| r.gate.clone()) else {
        let at = record.map_or(0, |r| r.weight);
        return Err(CliError::Usage(format!(
            "{svc}: the deployment (execution {execution}) is not waiting at a gate: it is at {at}% of the traffic; `canary promote` skips the rest of a step"
        )));
    };
    store
        .request_approval(
            svc,
            &Approval {
                execution: execution.clone(),
                gate: gate.gate.clone(),
                by: by.to_owned(),
                reason: reason.to_owned(),
                at: now,
            },
        )
        .await?;
    let after = if gate.weight >= 100 {
        "the promotion (the old version removed)".to_owned()
    } else {
        "the next weight".to_owned()
    };
    Ok(format!(
        "{svc}: gate at {} approved by {by} ({reason}); the next passing health check goes on to {after} (execution {execution})",
        gate.gate
    ))
}

/// Asks the running deployment of `svc` to skip the rest of its step (`full`: every
/// remaining step and gate); returns the sentence to show.
pub async fn promote(
    store: &DeploymentStore,
    svc: &ServiceRef,
    full: bool,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<String, CliError> {
    check_words(by, reason)?;
    let status = store.status(svc).await?;
    let execution = running(svc, &status)?;
    store
        .request_promotion(
            svc,
            &PromoteRequest {
                execution: execution.clone(),
                full,
                by: by.to_owned(),
                reason: reason.to_owned(),
                at: now,
            },
        )
        .await?;
    let what = if full {
        "shifts to 100% (its bake and checks still come before the old version is removed)"
    } else {
        "ends the current step (and passes a waiting gate)"
    };
    Ok(format!(
        "{svc}: promotion requested by {by} ({reason}); the next passing health check {what} (execution {execution})"
    ))
}

/// `canary approve`.
pub async fn approve_command(args: &ApproveArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let by = who(args.by.as_deref())?;
    let store = args.target.store.store().await?;
    println!(
        "{}",
        approve(&store, &svc, &by, &args.reason, now_secs()).await?
    );
    Ok(ExitCode::SUCCESS)
}

/// `canary promote`.
pub async fn promote_command(args: &PromoteArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let by = who(args.by.as_deref())?;
    let store = args.target.store.store().await?;
    let said = promote(&store, &svc, args.full, &by, &args.reason, now_secs()).await?;
    println!("{said}");
    Ok(ExitCode::SUCCESS)
}

/// "paused at 50%, waiting for approval since 12:03, rolls back at 13:03 (in 42m)".
pub fn gate_line(gate: &canary_core::GateWait, now: i64) -> String {
    let at = if gate.weight >= 100 {
        "100%, before promotion".to_owned()
    } else {
        gate.gate.clone()
    };
    format!(
        "paused at {at}, waiting for approval since {} UTC, {} at {} UTC (in {})",
        utc(gate.since),
        gate.on_timeout.verb(),
        utc(gate.deadline),
        duration(gate.deadline.saturating_sub(now))
    )
}
