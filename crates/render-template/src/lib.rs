//! render-template: the first task. Validates deploy.json and the template (nothing is
//! touched when they are wrong), takes the per-service lock, decides the versions from
//! the records (a first deployment, or stable N and new N+1), renders the new version,
//! keeps the manifest in S3 and returns the execution document.
//!
//! Input: `{"deploy": <deploy.json>, "execution": "<execution id>"}` (the state
//! machine's Parameters). Output: deploy.json plus `deployment`, with `next = apply`.

use canary_core::execution::{Next, RouteRef};
use canary_core::render::{self, RenderParams};
use canary_core::{DeploySpec, Deployment, ExecutionDocument, schedule};
use canary_lambda::{HandlerError, HandlerResult, Services};
use canary_store::ServiceRef;
use serde_json::Value;

/// Runs the task.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let (deploy, execution) = split_input(input)?;
    let spec = DeploySpec::parse(&deploy, None)?;
    // Render both shapes now, so that a broken template fails before the lock.
    let probe = render::render(
        &spec,
        &RenderParams {
            version: 2,
            stable_version: Some(1),
            canary_weight: 0,
        },
    )?;
    render::render(
        &spec,
        &RenderParams {
            version: 1,
            stable_version: None,
            canary_weight: 100,
        },
    )?;

    let svc = ServiceRef::from_spec(&spec);
    let now = services.clock.now_secs();
    let lock = services.store.take_lock(&svc, &execution, now).await?;
    match prepare(
        services,
        &spec,
        &svc,
        &execution,
        &lock.token,
        probe.route,
        now,
    )
    .await
    {
        Ok(deployment) => {
            let Value::Object(raw) = deploy else {
                return Err(HandlerError::internal(
                    "deploy.json stopped being an object",
                ));
            };
            Ok(ExecutionDocument {
                spec: raw,
                deployment: Some(deployment),
            }
            .to_value())
        }
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

/// The input is either `{deploy, execution}` or, for a person calling the function by
/// hand, deploy.json itself (the execution is then `manual-<time>`).
fn split_input(input: Value) -> Result<(Value, String), HandlerError> {
    match input {
        Value::Object(mut map) if map.contains_key("deploy") => {
            let deploy = map.remove("deploy").unwrap_or(Value::Null);
            let execution = match map.remove("execution") {
                Some(Value::String(s)) if !s.is_empty() => s,
                other => {
                    return Err(HandlerError::invalid(format!(
                        "`execution` must be the execution's id, got {}",
                        other.unwrap_or(Value::Null)
                    )));
                }
            };
            Ok((deploy, execution))
        }
        Value::Object(_) => Err(HandlerError::invalid(
            "the input must be {\"deploy\": <deploy.json>, \"execution\": \"<id>\"} (the state machine passes it so)",
        )),
        other => Err(HandlerError::invalid(format!(
            "the input must be a JSON object, got {other}"
        ))),
    }
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
    let first = begin.stable_version.is_none();
    let params = RenderParams {
        version: begin.canary_version,
        stable_version: begin.stable_version,
        canary_weight: if first { 100 } else { 0 },
    };
    let rendered = render::render(spec, &params)?;
    let manifest_key = services
        .store
        .put_manifest(svc, begin.canary_version, &rendered.to_yaml())
        .await?;
    Ok(Deployment {
        execution: execution.to_owned(),
        canary_version: begin.canary_version,
        stable_version: begin.stable_version,
        stable_image: begin.stable_image,
        provider: rendered.provider,
        route,
        schedule: schedule::schedule(spec, first),
        step: 0,
        weight: 0,
        max_weight: 0,
        lock_token: lock_token.to_owned(),
        manifest_key: Some(manifest_key),
        record_key: Some(begin.record_key),
        started_at: now,
        ready_deadline: now + i64::try_from(spec.ready_timeout).unwrap_or(i64::MAX / 2),
        step_started_at: None,
        checks: 0,
        holds: 0,
        verdict: None,
        next: Next::Apply,
        wait_seconds: 0,
        outcome: None,
    })
}
