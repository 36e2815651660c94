//! shift-weights: moves the canary to the next weight of the schedule with one write to
//! the route object (a first deployment creates the route with the new version at 100%),
//! and notes the weight in the deployment's record. What follows a shift is decided in
//! `canary_core::decide::shift`.

use canary_lambda::{HandlerError, HandlerResult, Services, Task, handle_task};
use serde_json::Value;

/// Runs the task on its JSON input.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    handle_task(input, |task| run(services, task)).await
}

/// Runs the task.
pub async fn run(services: &Services, mut task: Task) -> Result<Task, HandlerError> {
    task.check_abort(services).await?;
    let Some(weight) = task.deployment.next_weight() else {
        return Err(HandlerError::internal(format!(
            "shift-weights was called after the last step of {:?}",
            task.deployment.schedule
        )));
    };
    let cluster = task.cluster(services).await?;
    if task.deployment.is_first() {
        let rendered = task.render(100)?;
        let route: Vec<Value> = rendered
            .objects
            .into_iter()
            .filter(|o| o.is_route)
            .map(|o| o.value)
            .collect();
        cluster.apply(&route).await?;
    } else {
        let report = task
            .router(cluster)
            .set_weights(&task.deployment.route, &task.backends(weight))
            .await?;
        tracing::info!(
            weight,
            written = report.written,
            conflicts = report.conflicts,
            "shifted"
        );
    }
    let now = services.clock.now_secs();
    task.deployment.after_shift(&task.spec, now);
    let d = &task.deployment;
    services
        .store
        .record_progress(
            &task.service_ref(),
            &d.execution,
            d.canary_version,
            d.weight,
            None,
            now,
        )
        .await?;
    Ok(task)
}
