//! health-check: judges the canary from the metrics of the last
//! `failure_threshold_time` seconds and decides what comes next: check again, shift,
//! promote, or roll back. `canary abort` is honoured here: an abort request is an
//! unhealthy verdict that names who asked.

use canary_core::{Verdict, VerdictStatus};
use canary_lambda::{HandlerResult, Services, Task};
use serde_json::Value;

/// Runs the task.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let mut task = Task::from_value(input)?;
    let svc = task.service_ref();
    let now = services.clock.now_secs();
    let verdict = match services.store.abort_requested(&svc).await? {
        Some(abort) => Verdict {
            status: VerdictStatus::Unhealthy,
            errors: 0.0,
            requests: None,
            error_rate: None,
            window_seconds: 0,
            datapoints: 0,
            version: Some(task.deployment.canary_version),
            reason: format!("aborted by {}: {}", abort.by, abort.reason),
        },
        None => {
            canary_metrics::check(
                services.metrics.as_ref(),
                &task.spec,
                task.deployment.canary_version,
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
    Ok(task.into_value())
}
