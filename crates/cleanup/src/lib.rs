//! cleanup: the canary passed its last check at full traffic. The route keeps only the
//! new version, the old version's objects are removed, the record says promoted
//! (`canary_core::decide::promotion`), and the lock is released. Idempotent, like every
//! task.

use canary_core::decide::promotion::promoted_reason;
use canary_core::execution::OutcomeStatus;
use canary_lambda::{HandlerError, HandlerResult, Services, Task, handle_task};
use serde_json::Value;

/// Runs the task on its JSON input.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    handle_task(input, |task| run(services, task)).await
}

/// Runs the task.
pub async fn run(services: &Services, task: Task) -> Result<Task, HandlerError> {
    let cluster = task.cluster(services).await?;
    let d = &task.deployment;
    if let Some(stable) = d.stable_version {
        task.keep_one_version(services, &cluster, d.canary_version, stable)
            .await?;
    }
    let reason = promoted_reason(&task.spec.microservice_name, d);
    task.finish(services, OutcomeStatus::Promoted, reason).await
}
