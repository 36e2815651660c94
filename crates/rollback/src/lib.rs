//! rollback: all traffic back to the stable version with one write, the canary's
//! objects removed (a failed first deployment removes everything it created, as nothing
//! served before it), the record written with the reason, and the lock released. The
//! state machine then fails with that reason as its cause.
//!
//! Idempotent: a retry after a timeout finds the route already on stable (no write) and
//! the objects already gone.

use canary_core::execution::{Next, Outcome, OutcomeStatus};
use canary_core::VerdictStatus;
use canary_lambda::{HandlerResult, Services, Task, kinds_of_version};
use canary_store::Finish;
use serde_json::Value;

/// Runs the task.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let mut task = Task::from_value(input)?;
    let reason = reason(&task);
    let cluster = task.cluster(services).await?;
    let svc = task.service_ref();
    let d = &task.deployment;
    let ns = &task.spec.kubernetes_namespace;
    let current_kinds = task.render(0)?.kinds();
    let kinds = kinds_of_version(&services.store, &svc, d.canary_version, current_kinds).await?;
    match d.stable_version {
        Some(stable) => {
            let backends = vec![canary_kube::Backend::new(task.name_of(stable), 100)];
            task.router(cluster.clone()).set_weights(&d.route, &backends).await?;
            cluster.delete_version(ns, &task.spec.microservice_name, d.canary_version, &kinds).await?;
        }
        None => {
            cluster.delete_service(ns, &task.spec.microservice_name, &kinds).await?;
        }
    }
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
    services.store.finish_rolled_back(&svc, &finish).await?;
    tracing::warn!(%reason, "rolled back");
    let d = &mut task.deployment;
    d.weight = 0;
    d.next = Next::Done;
    d.wait_seconds = 0;
    d.outcome = Some(Outcome { status: OutcomeStatus::RolledBack, reason });
    Ok(task.into_value())
}

/// One sentence: why this deployment is rolled back.
fn reason(task: &Task) -> String {
    let d = &task.deployment;
    let version = task.name_of(d.canary_version);
    let place = match d.stable_version {
        Some(s) => format!("{version} rolled back to {} at {}% of traffic", task.name_of(s), d.weight),
        None => format!("{version} (a first deployment) removed"),
    };
    if let Some((error, cause)) = &task.error {
        let cause = cause.trim();
        return if cause.is_empty() { format!("{place}: {error}") } else { format!("{place}: {error}: {cause}") };
    }
    match &d.verdict {
        Some(v) if v.status == VerdictStatus::Hold => {
            format!("{place}: too little traffic after {} checks in a row: {}", d.holds, v.reason)
        }
        Some(v) => format!("{place}: {}", v.reason),
        None => format!("{place}: rollback requested"),
    }
}
