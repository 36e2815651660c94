//! cleanup: the canary passed its last check at full traffic. The route keeps only the
//! new version, the old version's objects are removed, the record says promoted, and
//! the lock is released. Idempotent, like every task.

use canary_core::execution::OutcomeStatus;
use canary_lambda::{HandlerResult, Services, Task};
use serde_json::Value;

/// Runs the task.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let task = Task::from_value(input)?;
    let cluster = task.cluster(services).await?;
    let d = &task.deployment;
    let canary = task.name_of(d.canary_version);
    if let Some(stable) = d.stable_version {
        task.keep_only(services, &cluster, d.canary_version, stable)
            .await?;
    }
    let reason = match (d.stable_version, &d.verdict) {
        (Some(s), Some(v)) => format!(
            "{canary} promoted, {} removed: {}",
            task.name_of(s),
            v.reason
        ),
        (Some(s), None) => format!("{canary} promoted, {} removed", task.name_of(s)),
        (None, _) => format!("{canary} deployed (first deployment, all traffic)"),
    };
    task.finish(services, OutcomeStatus::Promoted, reason).await
}
