//! cleanup: the canary passed its last check at full traffic. The route keeps only the
//! new version, the old version's objects are removed, the record says promoted, and
//! the lock is released. Idempotent, like every task.

use canary_core::execution::{Next, Outcome, OutcomeStatus};
use canary_lambda::{HandlerResult, Services, Task, kinds_of_version};
use canary_store::Finish;
use serde_json::Value;

/// Runs the task.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let mut task = Task::from_value(input)?;
    let cluster = task.cluster(services).await?;
    let svc = task.service_ref();
    let d = &task.deployment;
    let canary = task.name_of(d.canary_version);
    if let Some(stable) = d.stable_version {
        let backends = vec![canary_kube::Backend::new(canary.clone(), 100)];
        task.router(cluster.clone()).set_weights(&d.route, &backends).await?;
        let kinds = kinds_of_version(&services.store, &svc, stable, task.render(100)?.kinds()).await?;
        cluster.delete_version(&task.spec.kubernetes_namespace, &task.spec.microservice_name, stable, &kinds).await?;
    }
    let now = services.clock.now_secs();
    let reason = match (d.stable_version, &d.verdict) {
        (Some(s), Some(v)) => format!("{canary} promoted, {} removed: {}", task.name_of(s), v.reason),
        (Some(s), None) => format!("{canary} promoted, {} removed", task.name_of(s)),
        (None, _) => format!("{canary} deployed (first deployment, all traffic)"),
    };
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
    services.store.finish_promoted(&svc, &finish).await?;
    tracing::info!(%reason, "promoted");
    let d = &mut task.deployment;
    d.next = Next::Done;
    d.wait_seconds = 0;
    d.outcome = Some(Outcome { status: OutcomeStatus::Promoted, reason });
    Ok(task.into_value())
}
