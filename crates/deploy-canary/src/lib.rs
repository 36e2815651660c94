//! deploy-canary: applies the new version's objects beside the old one (server-side
//! apply, one field manager) with all traffic kept on the stable version, then, called
//! again from the state machine's Wait loop, reports whether the new Deployment is
//! ready. A Deployment that cannot become ready (ImagePullBackOff, CrashLoopBackOff, a
//! passed deadline) fails at once with `CanaryNotReady` and the pods' reasons, which
//! sends the state machine to rollback (the decision is
//! `canary_core::decide::readiness`).
//!
//! Which of the two it does is read from `deployment.next`: `apply` (set by
//! render-template) applies; `wait_ready` probes.

use canary_core::decide::ReadyProbe;
use canary_core::execution::Next;
use canary_kube::Readiness;
use canary_lambda::{HandlerError, HandlerResult, Services, Task, handle_task};
use serde_json::Value;

/// Runs the task on its JSON input.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    handle_task(input, |task| run(services, task)).await
}

/// Runs the task.
pub async fn run(services: &Services, mut task: Task) -> Result<Task, HandlerError> {
    let cluster = task.cluster(services).await?;
    let now = services.clock.now_secs();
    if task.deployment.next == Next::WaitReady {
        task.check_abort(services).await?;
        let name = task.name_of(task.deployment.canary_version);
        let readiness = cluster
            .readiness(&task.spec.kubernetes_namespace, &name)
            .await?;
        if let Readiness::Progressing { detail } = &readiness {
            tracing::info!(deployment = %name, %detail, "not ready yet");
        }
        task.deployment
            .after_readiness(&task.spec, probe_of(readiness), now)?;
        return Ok(task);
    }
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
    task.deployment.applied(&task.spec, now);
    Ok(task)
}

/// The cluster's readiness as the decision reads it.
fn probe_of(readiness: Readiness) -> ReadyProbe {
    match readiness {
        Readiness::Ready => ReadyProbe::Ready,
        Readiness::Progressing { detail } => ReadyProbe::Progressing { detail },
        Readiness::Failed { reason } => ReadyProbe::Failed { reason },
    }
}
