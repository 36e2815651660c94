//! health-check: judges the canary from the metrics of the last
//! `failure_threshold_time` seconds and decides what comes next (check again, shift,
//! promote, or roll back: `canary_core::decide::check`). `canary abort` is honoured
//! here: an abort request is an unhealthy verdict that names who asked
//! (`Verdict::aborted`).
//!
//! One invocation does more than one check when that is cheaper:
//! - when the verdict ends a step (`shift`), it makes the shift itself, through the same
//!   code as shift-weights (one route write, behind the lock's fence), and returns: the
//!   check that allows a shift and the shift are one task, never a shift without a
//!   verdict just before it;
//! - when the next check is due within `CANARY_CHECK_INLINE_MAX_WAIT_SECONDS` (30 s by
//!   default), it waits for it itself instead of returning to the state machine's Wait
//!   state, for up to `CANARY_CHECK_INLINE_BUDGET_SECONDS` (60 s) from its start
//!   (`Deployment::check_again_inside`); an unhealthy verdict returns at once.
//!
//! A retry after a timeout starts again from the document it was given: it checks
//! again and shifts to the same weight (the router writes nothing when the route
//! already carries it); a shift is always the invocation's last act, so a retry never
//! goes back.

use canary_core::Verdict;
use canary_core::VerdictStatus;
use canary_core::decide::{InlineChecks, Requests};
use canary_core::execution::Next;
use canary_core::execution::{ActionKind, OperatorAction};
use canary_core::notify::Decision;
use canary_core::timing::{
    CHECK_INLINE_BUDGET_SECONDS, CHECK_INLINE_MAX_WAIT_SECONDS, seconds_setting,
};
use canary_lambda::{HandlerError, HandlerResult, Services, Task, handle_task, notify, pause};
use serde_json::Value;

/// The environment variable with the longest wait made inside one invocation, seconds.
pub const INLINE_MAX_WAIT_ENV: &str = "CANARY_CHECK_INLINE_MAX_WAIT_SECONDS";
/// The environment variable with one invocation's time for checks, seconds.
pub const INLINE_BUDGET_ENV: &str = "CANARY_CHECK_INLINE_BUDGET_SECONDS";

/// The inline checks this function's environment asks for (defaults: 30 s, 60 s).
pub fn inline_from_env() -> Result<InlineChecks, HandlerError> {
    let read = |name: &str, default: u64| {
        let value = std::env::var(name).ok();
        seconds_setting(name, value.as_deref(), default).map_err(HandlerError::invalid)
    };
    Ok(InlineChecks {
        max_wait_secs: read(INLINE_MAX_WAIT_ENV, CHECK_INLINE_MAX_WAIT_SECONDS)?,
        budget_secs: read(INLINE_BUDGET_ENV, CHECK_INLINE_BUDGET_SECONDS)?,
    })
}

/// Runs the task on its JSON input, with the inline checks of the environment.
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    let inline = inline_from_env()?;
    handle_task(input, |task| run_with(services, task, inline)).await
}

/// Runs the task with the default inline checks.
pub async fn run(services: &Services, task: Task) -> Result<Task, HandlerError> {
    run_with(services, task, InlineChecks::default()).await
}

/// Runs the task: checks (more than once when `inline` allows), then shifts when the
/// last verdict ends the step.
pub async fn run_with(
    services: &Services,
    mut task: Task,
    inline: InlineChecks,
) -> Result<Task, HandlerError> {
    let started = services.clock.now_secs();
    task.deployment.actions.clear();
    loop {
        let now = services.clock.now_secs();
        let actions = check_once(services, &mut task, now).await?;
        canary_lambda::emf::emit(
            &task.service_ref(),
            &task.deployment,
            "check",
            services.clock.now_millis(),
        );
        notify_check(services, &task, &actions).await;
        task.deployment.actions.extend(actions);
        if task.deployment.next == Next::Shift {
            let cluster = task.cluster(services).await?;
            task.shift(services, cluster).await?;
            return Ok(task);
        }
        match task.deployment.check_again_inside(started, now, &inline) {
            Some(wait) => pause(services.clock.as_ref(), wait.saturating_mul(1000)).await,
            None => return Ok(task),
        }
    }
}

/// The notifications of one check: an unhealthy or holding verdict with its numbers,
/// and what happened at a gate (paused, approved, promoted by hand). A rollback, an
/// abort and a gate's timeout are told by the rollback that follows.
async fn notify_check(services: &Services, task: &Task, actions: &[OperatorAction]) {
    for a in actions {
        let decision = match a.kind {
            ActionKind::Paused => match &task.deployment.gate {
                Some(g) => Decision::Paused {
                    gate: g.gate.clone(),
                    deadline: g.deadline,
                },
                None => continue,
            },
            ActionKind::Approved => Decision::Approved {
                gate: a.gate.clone().unwrap_or_default(),
                by: a.by.clone(),
                reason: a.reason.clone(),
            },
            ActionKind::Promoted | ActionKind::PromotedFull => Decision::PromotedByHand {
                by: a.by.clone(),
                reason: a.reason.clone(),
                full: a.kind == ActionKind::PromotedFull,
            },
            ActionKind::TimedOut | ActionKind::Aborted => continue,
        };
        notify(services, task, decision).await;
    }
    match task.deployment.verdict.as_ref().map(|v| v.status) {
        Some(VerdictStatus::Unhealthy) => notify(services, task, Decision::Unhealthy).await,
        Some(VerdictStatus::Hold) => notify(services, task, Decision::Hold).await,
        _ => {}
    }
}

/// One check at `now`: the verdict (or the abort request) and the decision, given the
/// requests a person left (approve, promote: `canary_core::decide::gates`), recorded;
/// the requests the decision used are removed after the record is written, so a retry
/// after a failed write sees them again.
async fn check_once(
    services: &Services,
    task: &mut Task,
    now: i64,
) -> Result<Vec<OperatorAction>, HandlerError> {
    let svc = task.service_ref();
    let version = task.deployment.canary_version;
    let abort = services.store.abort_requested(&svc).await?;
    let (verdict, requests) = match &abort {
        Some(abort) => (
            Verdict::aborted(version, &abort.by, &abort.reason),
            Requests::default(),
        ),
        None => {
            let d = &task.deployment;
            let baseline = d.verdict.as_ref().and_then(|v| v.stable);
            let verdict = canary_metrics::check_against(
                services.metrics.as_ref(),
                &task.spec,
                version,
                d.stable_version,
                baseline,
                now,
            )
            .await?;
            // An approval only means something while a gate waits (`canary approve`
            // refuses otherwise), so it is read only then.
            let approve = match d.gate {
                Some(_) => services.store.approval_requested(&svc).await?,
                None => None,
            };
            let promote = services.store.promotion_requested(&svc).await?;
            (verdict, Requests { approve, promote })
        }
    };
    let gate_before = task.deployment.gate.clone();
    let mut events = task
        .deployment
        .after_check_with(&task.spec, verdict.clone(), now, &requests);
    if let Some(abort) = &abort {
        events.actions.push(OperatorAction {
            kind: ActionKind::Aborted,
            by: abort.by.clone(),
            reason: abort.reason.clone(),
            at: now,
            gate: gate_before.map(|g| g.gate),
            weight: task.deployment.weight,
        });
    }
    let d = &task.deployment;
    services
        .store
        .record_check(
            &svc,
            &d.execution,
            d.canary_version,
            &verdict,
            d.gate.as_ref(),
            &events.actions,
            now,
        )
        .await?;
    if events.used_approval {
        services.store.clear_approval(&svc).await?;
    }
    if events.used_promotion {
        services.store.clear_promotion(&svc).await?;
    }
    Ok(events.actions)
}
