//! rollback: all traffic back to the stable version with one write, the canary's
//! objects removed (a failed first deployment removes everything it created, as nothing
//! served before it), the record written with the reason, and the lock released. The
//! state machine then fails with that reason as its cause.
//!
//! The last good version is never lost: traffic only goes back to the stable version if
//! its Deployment still exists. If it does not (a cleanup that failed half-way, after
//! the canary had passed its last check at 100%, had already removed it), sending
//! traffic there would be an outage, so the promotion is completed instead and the
//! outcome says so.
//!
//! Idempotent: a retry after a timeout finds the route already on stable (no write) and
//! the objects already gone.

use canary_core::VerdictStatus;
use canary_core::execution::{Next, Outcome, OutcomeStatus};
use canary_kube::{Backend, Cluster};
use canary_lambda::{HandlerError, HandlerResult, Services, Task, kinds_of_version};
use canary_store::Finish;
use serde_json::Value;

/// Runs the task.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let mut task = Task::from_value(input)?;
    let cluster = task.cluster(services).await?;
    let svc = task.service_ref();
    let ns = task.spec.kubernetes_namespace.clone();
    let service = task.spec.microservice_name.clone();
    let d = task.deployment.clone();
    let current_kinds = task.render(0)?.kinds();

    let stable_alive = match d.stable_version {
        Some(stable) => exists(&cluster, &ns, &task.name_of(stable)).await?,
        None => false,
    };
    let (status, reason) = match d.stable_version {
        Some(stable) if stable_alive => {
            let backends = vec![Backend::new(task.name_of(stable), 100)];
            task.router(cluster.clone())
                .set_weights(&d.route, &backends)
                .await?;
            let kinds =
                kinds_of_version(&services.store, &svc, d.canary_version, current_kinds).await?;
            cluster
                .delete_version(&ns, &service, d.canary_version, &kinds)
                .await?;
            (OutcomeStatus::RolledBack, reason(&task))
        }
        Some(stable) => {
            // The stable version is gone: the only version that can serve is the canary.
            let canary = task.name_of(d.canary_version);
            if !exists(&cluster, &ns, &canary).await? {
                return Err(HandlerError::internal(format!(
                    "neither {} nor {canary} has a Deployment in namespace {ns}: nothing can serve {service}; restore a version by hand (`canary status {service}` shows the records)",
                    task.name_of(stable)
                )));
            }
            let backends = vec![Backend::new(canary.clone(), 100)];
            task.router(cluster.clone())
                .set_weights(&d.route, &backends)
                .await?;
            let kinds = kinds_of_version(&services.store, &svc, stable, current_kinds).await?;
            cluster
                .delete_version(&ns, &service, stable, &kinds)
                .await?;
            let why = reason(&task);
            (
                OutcomeStatus::Promoted,
                format!(
                    "{canary} kept all traffic because {} was already removed, so the promotion was completed ({why})",
                    task.name_of(stable)
                ),
            )
        }
        None => {
            let kinds =
                kinds_of_version(&services.store, &svc, d.canary_version, current_kinds).await?;
            cluster.delete_service(&ns, &service, &kinds).await?;
            (OutcomeStatus::RolledBack, reason(&task))
        }
    };

    let now = services.clock.now_secs();
    let finish = Finish {
        execution: d.execution.clone(),
        lock_token: d.lock_token.clone(),
        version: d.canary_version,
        image: task.spec.container_image.clone(),
        started_at: d.started_at,
        ended_at: now,
        max_weight: d.max_weight,
        verdicts: d.verdict.iter().cloned().collect(),
        reason: reason.clone(),
    };
    match status {
        OutcomeStatus::RolledBack => services.store.finish_rolled_back(&svc, &finish).await?,
        OutcomeStatus::Promoted => services.store.finish_promoted(&svc, &finish).await?,
    };
    tracing::warn!(?status, %reason, "rollback finished");
    let d = &mut task.deployment;
    d.weight = if status == OutcomeStatus::Promoted {
        100
    } else {
        0
    };
    d.next = Next::Done;
    d.wait_seconds = 0;
    d.outcome = Some(Outcome { status, reason });
    Ok(task.into_value())
}

async fn exists(cluster: &Cluster, namespace: &str, name: &str) -> Result<bool, HandlerError> {
    Ok(cluster
        .get("apps/v1", "Deployment", namespace, name)
        .await?
        .is_some())
}

/// One sentence: why this deployment is rolled back.
fn reason(task: &Task) -> String {
    let d = &task.deployment;
    let version = task.name_of(d.canary_version);
    let place = match d.stable_version {
        Some(s) => format!(
            "{version} rolled back to {} at {}% of traffic",
            task.name_of(s),
            d.weight
        ),
        None => format!("{version} (a first deployment) removed"),
    };
    if let Some((error, cause)) = &task.error {
        let cause = cause.trim();
        return match (error.as_str(), cause.is_empty()) {
            (_, true) => format!("{place}: {error}"),
            // The cause already says "aborted by <who>: <why>".
            (canary_core::errors::ABORTED, false) => format!("{place}: {cause}"),
            _ => format!("{place}: {error}: {cause}"),
        };
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
