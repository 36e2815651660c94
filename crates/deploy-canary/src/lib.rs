//! deploy-canary: applies the new version's objects beside the old one (server-side
//! apply, one field manager) with all traffic kept on the stable version, then watches
//! the new Deployment inside the same invocation: it reads it every half second
//! (`READY_WATCH_POLL_MILLIS`) for up to `CANARY_READY_WATCH_SECONDS` (60 s by
//! default), and as soon as it is ready it makes the first shift itself (the same code
//! as shift-weights: one route write), so the canary's first traffic follows its
//! readiness within a second. A Deployment that cannot become ready (ImagePullBackOff,
//! CrashLoopBackOff, a passed deadline) fails at once with `CanaryNotReady` and the
//! pods' reasons, which sends the state machine to rollback (the decision is
//! `canary_core::decide::readiness`). A Deployment still progressing when the watch is
//! over is left to the state machine's Wait loop, which calls this function again.
//!
//! It notifies "Canary Ready" when the new version is ready and "Canary Not Ready" with
//! the pods' reasons when it cannot become ready (then the first shift notifies "Canary
//! Shifted").
//!
//! Which of the two it does is read from `deployment.next`: `apply` (set by
//! render-template) applies, then watches; `wait_ready` only watches.
//!
//! A retry after a timeout applies again (server-side apply changes nothing) and shifts
//! to the same first weight again (the router writes nothing when the route already
//! carries it).

use canary_core::decide::{ReadyProbe, ReadyWatch};
use canary_core::execution::Next;
use canary_core::notify::Decision;
use canary_core::timing::{READY_WATCH_SECONDS, seconds_setting};
use canary_kube::{Cluster, Readiness};
use canary_lambda::{HandlerError, HandlerResult, Services, Task, handle_task, notify, pause};
use serde_json::Value;

/// The environment variable with the longest watch of one invocation, in seconds.
pub const READY_WATCH_ENV: &str = "CANARY_READY_WATCH_SECONDS";

/// The watch this function's environment asks for: [`READY_WATCH_ENV`], or 60 s.
pub fn watch_from_env() -> Result<ReadyWatch, HandlerError> {
    let value = std::env::var(READY_WATCH_ENV).ok();
    let max_secs = seconds_setting(READY_WATCH_ENV, value.as_deref(), READY_WATCH_SECONDS)
        .map_err(HandlerError::invalid)?;
    Ok(ReadyWatch {
        max_secs,
        ..ReadyWatch::default()
    })
}

/// Runs the task on its JSON input, with the watch of the environment.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let watch = watch_from_env()?;
    handle_task(input, |task| run_with(services, task, watch)).await
}

/// Runs the task with the default watch.
pub async fn run(services: &Services, task: Task) -> Result<Task, HandlerError> {
    run_with(services, task, ReadyWatch::default()).await
}

/// Runs the task, watching readiness as `watch` says.
pub async fn run_with(
    services: &Services,
    mut task: Task,
    watch: ReadyWatch,
) -> Result<Task, HandlerError> {
    let started_millis = services.clock.now_millis();
    let cluster = task.cluster(services).await?;
    if task.deployment.next == Next::WaitReady {
        task.check_abort(services).await?;
    } else {
        apply(services, &mut task, &cluster).await?;
    }
    watch_readiness(services, &mut task, &cluster, watch, started_millis).await?;
    if task.deployment.next == Next::Shift {
        task.shift(services, cluster).await?;
    }
    Ok(task)
}

/// Applies the canary's objects (a first deployment's route waits for its first shift).
async fn apply(
    services: &Services,
    task: &mut Task,
    cluster: &Cluster,
) -> Result<(), HandlerError> {
    let rendered = task.render(0)?;
    // A first deployment's route is created by its first shift, pointing at the new
    // version once it is ready; until then nothing routes to it.
    let first = task.deployment.is_first();
    let objects: Vec<Value> = rendered
        .objects
        .into_iter()
        .filter(|o| !(first && o.is_route))
        .map(|o| o.value)
        .collect();
    // A namespace that does not exist is named as such (NamespaceMissing), with nothing
    // written: the rollback then ends the deployment without touching the cluster.
    let report = cluster
        .apply_into(
            &objects,
            &task.spec.kubernetes_namespace,
            &task.spec.cluster_name,
        )
        .await?;
    tracing::info!(
        applied = report.applied.len(),
        "applied the canary's objects"
    );
    task.deployment
        .applied(&task.spec, services.clock.now_secs());
    Ok(())
}

/// Reads the new Deployment until it is ready (`next = shift`) or failed
/// (`CanaryNotReady`), or the watch is over (`next = wait_ready`, or `CanaryNotReady`
/// past the deadline).
async fn watch_readiness(
    services: &Services,
    task: &mut Task,
    cluster: &Cluster,
    watch: ReadyWatch,
    started_millis: i64,
) -> Result<(), HandlerError> {
    let name = task.name_of(task.deployment.canary_version);
    let namespace = task.spec.kubernetes_namespace.clone();
    let mut readings = 0u32;
    loop {
        let readiness = cluster.readiness(&namespace, &name).await?;
        readings += 1;
        let now_millis = services.clock.now_millis();
        if let Readiness::Progressing { .. } = &readiness
            && let Some(wait) =
                watch.wait_before_next(started_millis, now_millis, task.deployment.ready_deadline)
        {
            pause(services.clock.as_ref(), wait).await;
            continue;
        }
        if let Readiness::Progressing { detail } = &readiness {
            tracing::info!(deployment = %name, %detail, readings, "not ready yet; the state machine waits");
        } else {
            tracing::info!(deployment = %name, readings, ready = readiness.is_ready(), "readiness");
        }
        let decided = task.deployment.after_readiness(
            &task.spec,
            probe_of(readiness),
            now_millis.div_euclid(1000),
        );
        match &decided {
            Err(e) => {
                let reasons = e.to_string();
                notify(services, task, Decision::NotReady { reasons }).await;
            }
            Ok(()) if task.deployment.next == Next::Shift => {
                notify(services, task, Decision::Ready).await;
            }
            Ok(()) => {}
        }
        decided?;
        return Ok(());
    }
}

/// The cluster's readiness as the decision reads it.
fn probe_of(readiness: Readiness) -> ReadyProbe {
    match readiness {
        Readiness::Ready => ReadyProbe::Ready,
        Readiness::Progressing { detail } => ReadyProbe::Progressing { detail },
        Readiness::Failed { reason } => ReadyProbe::Failed { reason },
    }
}
