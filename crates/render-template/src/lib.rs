//! render-template: the first task. Validates deploy.json and the template (nothing is
//! touched when they are wrong), takes the per-service lock, reads the versions from the
//! records (a first deployment, or stable N and new N+1), renders the new version, keeps
//! the manifest in S3 and returns the execution document.
//!
//! Input: a [`RenderInput`] — `{"deploy": <deploy.json>, "execution": "<execution id>"}`
//! (the state machine's Parameters). Output: a [`Task`] — deploy.json plus
//! `deployment`, with `next = apply` (built by `Deployment::start` in canary-core).
//!
//! A service left behind by an execution that ended without finishing is restored
//! before anything else: when the lock is held by an execution that has ended (its
//! lease ran out, or Step Functions says it is no longer RUNNING), or when the lock is
//! free but `state.json` still shows another execution's deployment in progress (after
//! `canary unlock`), render-template touches nothing and fails with `RecoveryNeeded`;
//! the state machine's `RecoverService` state (the rollback function, which may write
//! to the cluster; render-template may not) restores it and comes back here. A lock
//! held by an execution that still runs, or may, is `ServiceLocked` as always.
//!
//! An execution whose name says it belongs to another service (the owner prefix
//! `<namespace>_<service>_` that pipelines and `canary start` give, see [`owner`]) is
//! refused with `InvalidInput` before any lock is taken: a pipeline deploys only its
//! own service. A name without an owner prefix is accepted ([`owner`] says why).
//!
//! A deployment that begins sends the notification "Canary Started" (a retry sends the
//! same id again).
//!
//! After the lock is taken, a failure ends the new deployment's record ("render
//! failed: ...") and releases the lock, so nothing is left held or unexplained.

pub mod owner;

use canary_core::decide::HolderState;
use canary_core::execution::{RouteRef, Start};
use canary_core::notify::Decision;
use canary_core::render::{self, RenderParams};
use canary_core::{DeploySpec, Deployment, ErrorName};
use canary_lambda::holders::holder_state;
use canary_lambda::{
    HandlerError, HandlerResult, RenderInput, Services, Task, handle_render, notify,
};
use canary_store::{Finish, ServiceRef, StoreError, TakeLock};
use serde_json::Value;

/// Runs the task on its JSON input.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    handle_render(input, |input| run(services, input)).await
}

/// Runs the task.
pub async fn run(services: &Services, input: RenderInput) -> Result<Task, HandlerError> {
    let RenderInput { deploy, execution } = input;
    let spec = DeploySpec::parse(&deploy, None)?;
    let route = check_template(&spec)?;
    owner::check(
        &execution,
        &spec.kubernetes_namespace,
        &spec.microservice_name,
    )
    .map_err(HandlerError::invalid)?;
    let Value::Object(raw) = deploy else {
        return Err(HandlerError::internal(
            "deploy.json was validated but is not an object",
        ));
    };

    let svc = ServiceRef::from_spec(&spec);
    let now = services.clock.now_secs();
    let take = TakeLock {
        execution: &execution,
        now,
        lease_secs: services.holders.lease_secs,
        replacing: None,
    };
    let lock = match services.store.take_lock_as(&svc, &take).await {
        Ok(lock) => lock,
        Err(StoreError::Locked { .. }) => return Err(locked(services, &svc).await?),
        Err(e) => return Err(e.into()),
    };
    let state = services.store.state(&svc).await?;
    if let Some(p) = state.in_progress.filter(|p| p.execution != execution) {
        // Left by an execution that lost its lock (`canary unlock`) or failed without
        // finishing: restored first, by RecoverService.
        release(services, &svc, &execution, &lock.token, now).await;
        return Err(HandlerError::new(
            ErrorName::RecoveryNeeded,
            format!(
                "execution `{}` left version {} of `{svc}` in progress without holding the lock: the service is restored first",
                p.execution, p.version
            ),
        ));
    }
    match prepare(services, &spec, &svc, &execution, &lock.token, route, now).await {
        Ok(deployment) => {
            let task = Task::started(spec, raw, deployment);
            notify(services, &task, Decision::Started).await;
            Ok(task)
        }
        Err(e) => {
            // Nothing was applied: end the record (when `begin` wrote one) with the
            // reason, which releases the lock; else just give the service back.
            end_failed_render(services, &spec, &svc, &execution, &lock.token, now, &e).await;
            Err(e)
        }
    }
}

/// The error for a lock held by someone else: `RecoveryNeeded` when that execution has
/// ended, else `ServiceLocked` saying why it is taken to run.
async fn locked(services: &Services, svc: &ServiceRef) -> Result<HandlerError, HandlerError> {
    let Some(holder) = services.store.lock(svc).await? else {
        // Released in between: a retry takes it.
        return Ok(HandlerError::new(
            ErrorName::StoreTransient,
            format!("the lock of `{svc}` was released while it was being taken: try again"),
        ));
    };
    Ok(match holder_state(services, &holder).await {
        HolderState::Ended { how } => HandlerError::new(
            ErrorName::RecoveryNeeded,
            format!(
                "execution `{}` holds the lock of `{svc}` but has ended ({how}): the service is restored first",
                holder.execution
            ),
        ),
        HolderState::Running { why } => HandlerError::new(
            ErrorName::ServiceLocked,
            format!(
                "service `{svc}` is locked by execution `{}` since {} (Unix seconds), and {why}; `canary recover` restores the service once it has ended",
                holder.execution, holder.since
            ),
        ),
    })
}

/// Releases the lock, logging a failure (the caller is failing already).
async fn release(services: &Services, svc: &ServiceRef, execution: &str, token: &str, now: i64) {
    if let Err(e) = services
        .store
        .release_lock(svc, execution, token, now)
        .await
    {
        tracing::error!(error = %e, "could not release the lock after a failed render");
    }
}

/// After a failure past the lock: the record `begin` wrote (if it did) ends rolled back
/// with the error as its reason (which clears `state.json` and releases the lock);
/// without one, the lock is released.
async fn end_failed_render(
    services: &Services,
    spec: &DeploySpec,
    svc: &ServiceRef,
    execution: &str,
    token: &str,
    now: i64,
    error: &HandlerError,
) {
    let begun = match services.store.state(svc).await {
        Ok(state) => state.in_progress.filter(|p| p.execution == execution),
        Err(_) => None,
    };
    if let Some(p) = begun {
        let finish = Finish {
            execution: execution.to_owned(),
            lock_token: token.to_owned(),
            version: p.version,
            image: spec.container_image.clone(),
            started_at: p.started_at,
            ended_at: now,
            max_weight: 0,
            verdicts: Vec::new(),
            reason: format!(
                "render failed before anything was applied: {}: {}",
                error.error_type, error.message
            ),
        };
        match services.store.finish_rolled_back(svc, &finish).await {
            Ok(_) => return,
            Err(e) => tracing::error!(error = %e, "could not end the record after a failed render"),
        }
    }
    release(services, svc, execution, token, now).await;
}

/// Renders both shapes (a canary beside a stable version, and a first deployment), so
/// that a broken template fails before the lock; returns the route object it found.
fn check_template(spec: &DeploySpec) -> Result<RouteRef, HandlerError> {
    Ok(render::render_both(spec, 0)?.route)
}

async fn prepare(
    services: &Services,
    spec: &DeploySpec,
    svc: &ServiceRef,
    execution: &str,
    lock_token: &str,
    route: RouteRef,
    now: i64,
) -> Result<Deployment, HandlerError> {
    let begin = services
        .store
        .begin(svc, execution, &spec.container_image, now)
        .await?;
    let params = RenderParams {
        version: begin.canary_version,
        stable_version: begin.stable_version,
        canary_weight: if begin.stable_version.is_none() {
            100
        } else {
            0
        },
    };
    let rendered = render::render(spec, &params)?;
    let manifest_key = services
        .store
        .put_manifest(svc, begin.canary_version, &rendered.to_yaml())
        .await?;
    let start = Start {
        execution: execution.to_owned(),
        canary_version: begin.canary_version,
        stable_version: begin.stable_version,
        stable_image: begin.stable_image,
        provider: rendered.provider,
        route,
        lock_token: lock_token.to_owned(),
        manifest_key: Some(manifest_key),
        record_key: Some(begin.record_key),
    };
    Ok(Deployment::start(spec, start, now))
}
