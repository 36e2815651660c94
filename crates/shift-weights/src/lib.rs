//! shift-weights: moves the canary to the next weight of the schedule with one write to
//! the route object (a first deployment creates the route with the new version at 100%),
//! and notes the weight in the deployment's record. What follows a shift is decided in
//! `canary_core::decide::shift`.
//!
//! deploy-canary and health-check make the same shift themselves (the first one once
//! the new version is ready, the others after the check that ends a step), through the
//! same code (`canary_lambda::Task::shift`), so the state machine reaches this function
//! only for a document whose `next` is `shift`: one left by a handler of an earlier
//! release while the stack is being updated.

use canary_lambda::{HandlerError, HandlerResult, Services, Task, handle_task};
use serde_json::Value;

/// Runs the task on its JSON input.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    handle_task(input, |task| run(services, task)).await
}

/// Runs the task.
pub async fn run(services: &Services, mut task: Task) -> Result<Task, HandlerError> {
    task.check_abort(services).await?;
    let cluster = task.cluster(services).await?;
    task.shift(services, cluster).await?;
    Ok(task)
}
