//! deploy-canary: applies the new version's objects beside the old one (server-side
//! apply, one field manager) with all traffic kept on the stable version, then, called
//! again from the state machine's Wait loop, reports whether the new Deployment is
//! ready. A Deployment that cannot become ready (ImagePullBackOff, CrashLoopBackOff, a
//! passed deadline) fails at once with `CanaryNotReady` and the pods' reasons, which
//! sends the state machine to rollback.
//!
//! Which of the two it does is read from `deployment.next`: `apply` (set by
//! render-template) applies; `wait_ready` probes.

use canary_core::errors;
use canary_core::execution::Next;
use canary_kube::Readiness;
use canary_lambda::{HandlerError, HandlerResult, Services, Task};
use serde_json::Value;

/// Runs the task.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let mut task = Task::from_value(input)?;
    let cluster = task.cluster(services).await?;
    let now = services.clock.now_secs();
    match task.deployment.next {
        Next::WaitReady => {
            task.check_abort(services).await?;
            let name = task.name_of(task.deployment.canary_version);
            let readiness = cluster
                .readiness(&task.spec.kubernetes_namespace, &name)
                .await?;
            match readiness {
                Readiness::Ready => task.deployment.after_ready_probe(true),
                Readiness::Failed { reason } => {
                    return Err(HandlerError::new(
                        errors::CANARY_NOT_READY,
                        format!("{name} cannot become ready: {reason}"),
                    ));
                }
                Readiness::Progressing { detail } if now >= task.deployment.ready_deadline => {
                    return Err(HandlerError::new(
                        errors::CANARY_NOT_READY,
                        format!(
                            "{name} was not ready within ready_timeout ({} s): {detail}",
                            task.spec.ready_timeout
                        ),
                    ));
                }
                Readiness::Progressing { detail } => {
                    tracing::info!(deployment = %name, %detail, "not ready yet");
                    task.deployment.after_ready_probe(false);
                }
            }
        }
        _ => {
            let rendered = task.render(0)?;
            // A first deployment's route is created by shift-weights, pointing at the new
            // version once it is ready; until then nothing routes to it.
            let first = task.deployment.is_first();
            let objects: Vec<Value> = rendered
                .objects
                .into_iter()
                .filter(|o| !(first && o.is_route))
                .map(|o| o.value)
                .collect();
            let report = cluster.apply(&objects).await?;
            tracing::info!(
                applied = report.applied.len(),
                "applied the canary's objects"
            );
            task.deployment.ready_deadline =
                now + i64::try_from(task.spec.ready_timeout).unwrap_or(i64::MAX / 2);
            task.deployment.after_apply();
        }
    }
    Ok(task.into_value())
}
