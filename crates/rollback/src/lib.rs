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
use canary_core::execution::OutcomeStatus;
use canary_kube::Cluster;
use canary_lambda::{HandlerError, HandlerResult, Services, Task, kinds_of_version};
use serde_json::Value;

/// Runs the task.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let task = Task::from_value(input)?;
    let cluster = task.cluster(services).await?;
    let ns = task.spec.kubernetes_namespace.clone();
    let service = task.spec.microservice_name.clone();
    let d = task.deployment.clone();

    let stable_alive = match d.stable_version {
        Some(stable) => exists(&cluster, &ns, &task.name_of(stable)).await?,
        None => false,
    };
    let (status, reason) = match d.stable_version {
        Some(stable) if stable_alive => {
            task.keep_only(services, &cluster, stable, d.canary_version)
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
            task.keep_only(services, &cluster, d.canary_version, stable)
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
            let current_kinds = task.render(0)?.kinds();
            let svc = task.service_ref();
            let kinds =
                kinds_of_version(&services.store, &svc, d.canary_version, current_kinds).await?;
            cluster.delete_service(&ns, &service, &kinds).await?;
            (OutcomeStatus::RolledBack, reason(&task))
        }
    };
    task.finish(services, status, reason).await
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
