//! render-template: the first task. Validates deploy.json and the template (nothing is
//! touched when they are wrong), takes the per-service lock, reads the versions from the
//! records (a first deployment, or stable N and new N+1), renders the new version, keeps
//! the manifest in S3 and returns the execution document.
//!
//! Input: a [`RenderInput`] — `{"deploy": <deploy.json>, "execution": "<execution id>"}`
//! (the state machine's Parameters). Output: a [`Task`] — deploy.json plus
//! `deployment`, with `next = apply` (built by `Deployment::start` in canary-core).

use canary_core::execution::{RouteRef, Start};
use canary_core::render::{self, RenderParams};
use canary_core::{DeploySpec, Deployment};
use canary_lambda::{HandlerError, HandlerResult, RenderInput, Services, Task, handle_render};
use canary_store::ServiceRef;
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
    let Value::Object(raw) = deploy else {
        return Err(HandlerError::internal(
            "deploy.json was validated but is not an object",
        ));
    };

    let svc = ServiceRef::from_spec(&spec);
    let now = services.clock.now_secs();
    let lock = services.store.take_lock(&svc, &execution, now).await?;
    match prepare(services, &spec, &svc, &execution, &lock.token, route, now).await {
        Ok(deployment) => Ok(Task::started(spec, raw, deployment)),
        Err(e) => {
            // Nothing was deployed: give the service back before failing.
            if let Err(release) = services
                .store
                .release_lock(&svc, &execution, &lock.token, now)
                .await
            {
                tracing::error!(error = %release, "could not release the lock after a failed render");
            }
            Err(e)
        }
    }
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
