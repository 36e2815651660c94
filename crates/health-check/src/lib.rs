//! health-check: judges the canary from the metrics of the last
//! `failure_threshold_time` seconds and decides what comes next (check again, shift,
//! promote, or roll back: `canary_core::decide::check`). `canary abort` is honoured
//! here: an abort request is an unhealthy verdict that names who asked
//! (`Verdict::aborted`).

use canary_core::Verdict;
use canary_lambda::{HandlerError, HandlerResult, Services, Task, handle_task};
use serde_json::Value;

/// Runs the task on its JSON input.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    handle_task(input, |task| run(services, task)).await
}

/// Runs the task.
pub async fn run(services: &Services, mut task: Task) -> Result<Task, HandlerError> {
    let svc = task.service_ref();
    let now = services.clock.now_secs();
    let version = task.deployment.canary_version;
    let verdict = match services.store.abort_requested(&svc).await? {
        Some(abort) => Verdict::aborted(version, &abort.by, &abort.reason),
        None => {
            let d = &task.deployment;
            let baseline = d.verdict.as_ref().and_then(|v| v.stable);
            canary_metrics::check_against(
                services.metrics.as_ref(),
                &task.spec,
                version,
                d.stable_version,
                baseline,
                now,
            )
            .await?
        }
    };
    let d = &task.deployment;
    services
        .store
        .record_progress(
            &svc,
            &d.execution,
            d.canary_version,
            d.weight,
            Some(&verdict),
            now,
        )
        .await?;
    task.deployment.after_check(&task.spec, verdict, now);
    Ok(task)
}
