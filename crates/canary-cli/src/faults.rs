//! The fault matrix: every task state of the definition × {a returned error, a timeout,
//! a crash}, plus two deployments of one service racing for its lock. Each cell runs a
//! real deployment (the shipped definition, the real handlers, the simulated cluster)
//! of v2 beside a promoted v1 with the fault injected into that state's call, and
//! then checks the end state: all traffic on one healthy version, no other version's
//! objects left, the lock released, the record written.
//!
//! The faults, as AWS would show them:
//! - **error**: the function returns `KubeError` (not transient) on that call and every
//!   later call of the same function, so retries cannot help and the Catch decides.
//!   Rollback retries every error (it must finish), so there it fails twice and then
//!   works; an error that never stops ends in `RollbackFailed` with the lock kept, by
//!   design, and is covered by the state machine's own tests.
//! - **timeout**: the handler runs to the end, but its answer is lost
//!   (`States.Timeout`): the retry must find the work done and not do it twice.
//! - **crash**: the process dies before the handler does anything (`Lambda.Unknown`).
//!
//! And the cells where the execution does not end by itself:
//! - **unlocked, then continued**: `canary unlock` before a task, and the old execution
//!   goes on: it is fenced out (`LockLost`, no write after the unlock); the next
//!   deployment then restores what it left (all traffic on v1, v2 removed, its record
//!   "recovered from ...") before it deploys v3.
//! - **stopped, then recovered**: the execution is stopped just before a task
//!   (StopExecution, an execution timeout, a killed terminal: its future is dropped
//!   with the lock held and traffic wherever it was), then `recover` restores the
//!   service from the records: all traffic on v1, no v2 objects, the lock released, the
//!   record "recovered from demo-2: stopped at N%". One more cell lets the next
//!   deployment do it.

use std::fmt::Write as _;

use canary_core::execution::OutcomeStatus;
use canary_sfn::{NoopObserver, Status};
use serde::Serialize;

use crate::format::outcome_word;
use crate::harness::fixtures::{FAULTY_ERROR_RATE, SERVICE, image};
use crate::harness::{Check, DemoEnv};
use crate::local::{Fault, FaultKind, FaultyInvoker, Function};
use canary_lambda::{RecoverRequest, Recovery};

/// A task state of the definition and the call of its function that it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TaskState {
    /// The state's name in the definition.
    pub state: &'static str,
    /// The function behind it.
    #[serde(skip)]
    pub function: Function,
    /// Which call of the function (1-based) is this state's first.
    pub call: u32,
}

/// Every task state the demo's deployment goes through, in flow order. DeployCanary's
/// call applies, watches the new Deployment until it is ready and makes the first shift;
/// each HealthCheck call of the demo (checks every 20 s, made inside the invocation)
/// checks through a step and makes the next shift, so its first call ends with the
/// shift to 20% and a timeout there is a retried check-and-shift. CheckReadiness (a
/// Deployment slower than one invocation's watch) and ShiftWeights (a `shift` left by a
/// handler of an earlier release) are not on the demo's path: their own tests cover
/// them (tests/readiness_watch.rs, canary-sfn's definition tests).
pub const TASK_STATES: [TaskState; 5] = [
    TaskState {
        state: "RenderTemplate",
        function: Function::RenderTemplate,
        call: 1,
    },
    TaskState {
        state: "DeployCanary",
        function: Function::DeployCanary,
        call: 1,
    },
    TaskState {
        state: "HealthCheck",
        function: Function::HealthCheck,
        call: 1,
    },
    TaskState {
        state: "Cleanup",
        function: Function::Cleanup,
        call: 1,
    },
    TaskState {
        state: "Rollback",
        function: Function::Rollback,
        call: 1,
    },
];

/// The kinds of fault of the matrix's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultColumn {
    Error,
    Timeout,
    Crash,
}

impl FaultColumn {
    /// The columns, in order.
    pub const ALL: [FaultColumn; 3] = [Self::Error, Self::Timeout, Self::Crash];

    fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Crash => "crash",
        }
    }
}

/// One cell's result.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The state, or `lock contention`.
    pub state: String,
    /// The fault, or `second deployment`.
    pub fault: String,
    /// How the execution ended (`succeeded`, or the Fail state's error).
    pub execution: String,
    /// The version serving all traffic at the end.
    pub serving: u32,
    /// What the cell's deployment did to the service.
    pub outcome: String,
    /// The end-state checks.
    pub checks: Vec<Check>,
    /// Every check held and the execution ended as this fault must end.
    pub passed: bool,
}

/// The fault of the cells where the lock is broken before a task.
pub const UNLOCKED: &str = "unlocked, then continued";
/// The fault of the cells where the execution is stopped before a task.
pub const STOPPED: &str = "stopped, then recovered";
/// The fault of the cell where the next deployment recovers a stopped one.
pub const STOPPED_THEN_DEPLOYED: &str = "stopped, then the next deployment";

/// Runs every cell. Each has its own simulated cluster and store.
pub async fn run_matrix() -> Vec<Cell> {
    let mut cells = Vec::new();
    for task in TASK_STATES {
        for column in FaultColumn::ALL {
            cells.push(run_cell(task, column).await);
        }
    }
    cells.push(cleanup_half_done().await);
    cells.push(lock_contention().await);
    for task in TASK_STATES
        .iter()
        .filter(|t| t.function != Function::RenderTemplate)
    {
        cells.push(unlocked_then_continued(*task).await);
    }
    for task in TASK_STATES
        .iter()
        .filter(|t| t.function != Function::RenderTemplate)
    {
        cells.push(stopped_then_recovered(*task).await);
    }
    cells.push(stopped_then_next_deployment().await);
    cells.push(route_not_confirmed(true).await);
    cells.push(route_not_confirmed(false).await);
    cells.push(rollback_refused().await);
    cells.push(namespace_missing().await);
    cells
}

/// The execution deploying v2 is stopped just before `task` (its future dropped with
/// the lock held and the traffic wherever it was); then `recover` (as `canary recover`
/// and the shared stack's EventBridge rule run it) restores the service.
pub async fn stopped_then_recovered(task: TaskState) -> Cell {
    let fault = STOPPED;
    let env = match DemoEnv::start().await {
        Ok(env) => env,
        Err(e) => return failed_cell(task.state, fault, e.to_string()),
    };
    if let Err(e) = env.deploy_versions(&[1]).await {
        return failed_cell(task.state, fault, e.to_string());
    }
    if task.function == Function::Rollback {
        env.sim.set_error_rate(&image(2), FAULTY_ERROR_RATE);
    }
    let stopped = match stop_v2_before(&env, task).await {
        Ok(stopped) => stopped,
        Err(why) => return failed_cell(task.state, fault, why),
    };
    let request = RecoverRequest {
        svc: env.service_ref(),
        by: "canary recover by the fault matrix".into(),
        ended: None,
        force: false,
        current_kinds: Vec::new(),
    };
    let first = canary_lambda::recover(&env.services, &request).await;
    let again = canary_lambda::recover(&env.services, &request).await;
    let mut checks = env.verify(2, 1, OutcomeStatus::RolledBack).await;
    checks.push(Check::new(
        "the execution was stopped with the lock held",
        stopped.lock_held,
        format!("{} stopped before {}", stopped.name, task.state),
    ));
    checks.push(recovered_check(&env, &stopped.name, 2).await);
    checks.push(Check::new(
        "recover said what it did",
        matches!(&first, Ok(Recovery::Recovered { execution, version: 2, .. }) if *execution == stopped.name),
        format!("{first:?}"),
    ));
    checks.push(Check::new(
        "a second recover finds nothing to do",
        matches!(&again, Ok(Recovery::NothingToRecover { .. })),
        format!("{again:?}"),
    ));
    let passed = checks.iter().all(|c| c.ok);
    env.shutdown().await;
    Cell {
        state: task.state.to_owned(),
        fault: fault.into(),
        execution: "stopped".into(),
        serving: 1,
        outcome: "recovered".into(),
        checks,
        passed,
    }
}

/// Stopped at the first health check (traffic split 10/90), then the next deployment
/// (v3) finds the lock of an ended execution: it recovers first (v2's record says so)
/// and is promoted.
pub async fn stopped_then_next_deployment() -> Cell {
    let task = TASK_STATES[2];
    let fault = STOPPED_THEN_DEPLOYED;
    let env = match DemoEnv::start().await {
        Ok(env) => env,
        Err(e) => return failed_cell(task.state, fault, e.to_string()),
    };
    if let Err(e) = env.deploy_versions(&[1]).await {
        return failed_cell(task.state, fault, e.to_string());
    }
    let stopped = match stop_v2_before(&env, task).await {
        Ok(stopped) => stopped,
        Err(why) => return failed_cell(task.state, fault, why),
    };
    let run = env
        .deploy(&image(3), &env.invoker(), &mut NoopObserver)
        .await;
    let execution = ended_as(&run.status);
    let mut checks = env.verify(3, 3, OutcomeStatus::Promoted).await;
    checks.push(Check::new(
        "the execution was stopped with traffic split",
        stopped.lock_held && stopped.split,
        format!("{} stopped before {}", stopped.name, task.state),
    ));
    checks.push(Check::new(
        "the next deployment recovered first, then was promoted",
        execution == "succeeded" && run.path().contains(&"RecoverService"),
        format!("{execution}: {:?}", run.path()),
    ));
    checks.push(recovered_check(&env, &stopped.name, 2).await);
    let passed = checks.iter().all(|c| c.ok);
    env.shutdown().await;
    Cell {
        state: task.state.to_owned(),
        fault: fault.into(),
        execution,
        serving: 3,
        outcome: "recovered, then promoted".into(),
        checks,
        passed,
    }
}

/// An execution stopped before a task.
struct Stopped {
    name: String,
    lock_held: bool,
    split: bool,
}

/// Deploys v2 and stops its execution just before `task`'s call.
async fn stop_v2_before(env: &DemoEnv, task: TaskState) -> Result<Stopped, String> {
    let invoker = FaultyInvoker::new(
        env.invoker(),
        vec![Fault {
            function: task.function,
            nth: task.call,
            times: 1,
            kind: FaultKind::Stop,
        }],
    );
    let name = match env
        .deploy_until(&image(2), &invoker, invoker.stopped())
        .await
    {
        Err(name) => name,
        Ok(run) => {
            return Err(format!(
                "the execution ended ({}) before {} was called",
                ended_as(&run.status),
                task.state
            ));
        }
    };
    let lock = env.services.store.lock(&env.service_ref()).await;
    let targets = env
        .sim
        .get_object(
            "appmesh.k8s.aws/v1beta2",
            "VirtualRouter",
            crate::harness::fixtures::NAMESPACE,
            SERVICE,
        )
        .map(|r| crate::harness::route_targets(&r))
        .unwrap_or_default();
    Ok(Stopped {
        lock_held: matches!(&lock, Ok(Some(l)) if l.execution == name),
        split: targets.iter().filter(|(_, w)| *w > 0).count() > 1,
        name,
    })
}

/// The orphan's record says "recovered from <execution>".
async fn recovered_check(env: &DemoEnv, execution: &str, version: u32) -> Check {
    let record = env.services.store.record(&env.service_ref(), version).await;
    let reason = match &record {
        Ok(Some(r)) => r.outcome.as_ref().map(|o| o.reason.clone()),
        _ => None,
    };
    Check::new(
        "the stopped deployment's record says it was recovered",
        reason
            .as_deref()
            .is_some_and(|r| r.starts_with(&format!("recovered from {execution}: stopped at "))),
        reason.unwrap_or_else(|| format!("{record:?}")),
    )
}

fn ended_as(status: &Status) -> String {
    match status {
        Status::Succeeded => "succeeded".to_owned(),
        Status::Failed { error, .. } => error.clone(),
    }
}

/// `canary unlock` just before a task, and the old execution goes on: the task's first
/// read (the fence) finds the lock gone, so nothing of it reaches the cluster and the
/// execution ends with `LockLost`, naming who holds the lock now. Where traffic was
/// left, split or not, the next deployment (v3) restores first: all traffic on v1, v2
/// removed and its record "recovered from ...", then v3 is deployed and promoted.
pub async fn unlocked_then_continued(task: TaskState) -> Cell {
    let fault = UNLOCKED;
    let env = match DemoEnv::start().await {
        Ok(env) => env,
        Err(e) => return failed_cell(task.state, fault, e.to_string()),
    };
    if let Err(e) = env.deploy_versions(&[1]).await {
        return failed_cell(task.state, fault, e.to_string());
    }
    if task.function == Function::Rollback {
        env.sim.set_error_rate(&image(2), FAULTY_ERROR_RATE);
    }
    let invoker = FaultyInvoker::new(
        env.invoker(),
        vec![Fault {
            function: task.function,
            nth: task.call,
            times: 1,
            kind: FaultKind::LockBroken,
        }],
    )
    .counting_writes_of(env.sim.clone());
    let run = env.deploy(&image(2), &invoker, &mut NoopObserver).await;
    let (execution, cause) = match &run.status {
        Status::Succeeded => ("succeeded".to_owned(), String::new()),
        Status::Failed { error, cause } => (error.clone(), cause.clone()),
    };
    let writes_after = env.sim.write_count();
    let at_break = invoker.writes_at_break();
    let lock = env.services.store.lock(&env.service_ref()).await;
    let mut checks = vec![
        Check {
            name: "execution ended with LockLost".into(),
            ok: execution == "LockLost" && cause.contains("released by"),
            detail: format!("{execution}: {}", crate::format::shorten(&cause, 160)),
        },
        Check {
            name: "no write after the unlock".into(),
            ok: at_break.is_some() && at_break == Some(writes_after),
            detail: format!(
                "{} writes when unlocked, {writes_after} at the end",
                at_break.map_or("?".to_owned(), |w| w.to_string())
            ),
        },
        Check {
            name: "the lock stays released".into(),
            ok: matches!(lock, Ok(None)),
            detail: format!("{:?}", lock.map(|l| l.map(|l| l.execution))),
        },
    ];
    // The next deployment restores what the fenced execution left, then goes on. The
    // demo's health check counts the service's errors, not a version's: v3 starts once
    // the errors of the faulty v2 (still on the route until the recovery) have left its
    // window (failure_threshold_time).
    use canary_core::clock::Clock as _;
    env.sim.set_error_rate(&image(2), 0.0);
    env.clock.set(env.clock.now_millis() + 600_000);
    let next = env
        .deploy(&image(3), &env.invoker(), &mut NoopObserver)
        .await;
    checks.extend(env.verify(3, 3, OutcomeStatus::Promoted).await);
    checks.push(Check::new(
        "the next deployment recovered first, then was promoted",
        next.succeeded() && next.path().contains(&"RecoverService"),
        format!("{}: {:?}", ended_as(&next.status), next.path()),
    ));
    checks.push(recovered_check(&env, &crate::harness::execution_id("demo-2"), 2).await);
    let passed = checks.iter().all(|c| c.ok);
    env.shutdown().await;
    Cell {
        state: task.state.to_owned(),
        fault: fault.into(),
        execution,
        serving: 3,
        outcome: "fenced, then recovered".into(),
        checks,
        passed,
    }
}

fn failed_cell(state: &str, fault: &str, why: String) -> Cell {
    Cell {
        state: state.to_owned(),
        fault: fault.to_owned(),
        execution: "did not run".into(),
        serving: 0,
        outcome: why.clone(),
        checks: vec![Check {
            name: "set-up".into(),
            ok: false,
            detail: why,
        }],
        passed: false,
    }
}

/// One cell: v1 promoted, then v2 (faulty when the state is Rollback, so that a
/// rollback happens) with the fault injected.
pub async fn run_cell(task: TaskState, column: FaultColumn) -> Cell {
    let env = match DemoEnv::start().await {
        Ok(env) => env,
        Err(e) => return failed_cell(task.state, column.name(), e.to_string()),
    };
    if let Err(e) = env.deploy_versions(&[1]).await {
        return failed_cell(task.state, column.name(), e.to_string());
    }
    let rollback_cell = task.function == Function::Rollback;
    if rollback_cell {
        env.sim.set_error_rate(&image(2), FAULTY_ERROR_RATE);
    }
    let kind = match column {
        FaultColumn::Error => FaultKind::Error(canary_core::errors::KUBE_ERROR.into()),
        FaultColumn::Timeout => FaultKind::Timeout,
        FaultColumn::Crash => FaultKind::Crash,
    };
    let times = match (column, rollback_cell) {
        (FaultColumn::Error, false) => u32::MAX,
        (FaultColumn::Error, true) => 2,
        _ => 1,
    };
    let invoker = FaultyInvoker::new(
        env.invoker(),
        vec![Fault {
            function: task.function,
            nth: task.call,
            times,
            kind,
        }],
    );
    let run = env.deploy(&image(2), &invoker, &mut NoopObserver).await;
    let execution = match &run.status {
        Status::Succeeded => "succeeded".to_owned(),
        Status::Failed { error, .. } => error.clone(),
    };

    // How the cell must end. A persistent error rolls back (at render: nothing is
    // touched); timeouts and crashes are retried and the deployment goes on.
    let (expected_execution, serving, outcome) = match (column, task.function) {
        (_, Function::Rollback) => ("RolledBack", 1, Some(OutcomeStatus::RolledBack)),
        (FaultColumn::Error, Function::RenderTemplate) => ("KubeError", 1, None),
        (FaultColumn::Error, _) => ("RolledBack", 1, Some(OutcomeStatus::RolledBack)),
        _ => ("succeeded", 2, Some(OutcomeStatus::Promoted)),
    };
    let mut checks = match outcome {
        Some(o) => env.verify(2, serving, o).await,
        None => untouched(&env).await,
    };
    checks.push(Check {
        name: "execution ended as expected".into(),
        ok: execution == expected_execution,
        detail: format!("{execution} (expected {expected_execution})"),
    });
    checks.push(Check {
        name: "the fault was injected".into(),
        ok: invoker
            .calls()
            .iter()
            .filter(|f| **f == task.function)
            .count()
            >= task.call as usize,
        detail: format!(
            "{} calls of {}",
            invoker.calls().len(),
            task.function.name()
        ),
    });
    let passed = checks.iter().all(|c| c.ok);
    env.shutdown().await;
    Cell {
        state: task.state.to_owned(),
        fault: column.name().to_owned(),
        execution,
        serving,
        outcome: outcome.map_or("untouched", outcome_word).to_owned(),
        checks,
        passed,
    }
}

/// After a deployment that failed before taking anything: v1 serves as before, the
/// lock is free, and no version 2 exists anywhere.
async fn untouched(env: &DemoEnv) -> Vec<Check> {
    let mut checks: Vec<Check> = env
        .verify(1, 1, OutcomeStatus::Promoted)
        .await
        .into_iter()
        .filter(|c| c.name != "record written")
        .collect();
    let record = env.services.store.record(&env.service_ref(), 2).await;
    checks.push(Check {
        name: "no record for the failed deployment".into(),
        ok: matches!(record, Ok(None)),
        detail: format!("{:?}", record.map(|r| r.map(|r| r.execution))),
    });
    checks
}

/// Cleanup fails half-way: the old version's Deployment is already deleted when the
/// API server starts refusing the deletion of its Service, longer than Cleanup's
/// retries last. Rolling back to v1 would send traffic to a version that is gone, so
/// Rollback completes the promotion instead and the execution fails with
/// `CleanupFailed` for someone to read.
pub async fn cleanup_half_done() -> Cell {
    let (state, fault) = ("Cleanup", "fails half-way");
    let env = match DemoEnv::start().await {
        Ok(env) => env,
        Err(e) => return failed_cell(state, fault, e.to_string()),
    };
    if let Err(e) = env.deploy_versions(&[1]).await {
        return failed_cell(state, fault, e.to_string());
    }
    // Cleanup makes 5 attempts of 3 requests each; 20 refusals outlast them and the
    // first of Rollback's attempts.
    let old_service = format!("/services/{}-1", SERVICE);
    env.sim.inject_fault(
        canary_sim::Fault::new(
            Some("DELETE"),
            &old_service,
            canary_sim::FaultAction::InternalError,
        )
        .and_following(19),
    );
    let run = env
        .deploy(&image(2), &env.invoker(), &mut NoopObserver)
        .await;
    let execution = match &run.status {
        Status::Succeeded => "succeeded".to_owned(),
        Status::Failed { error, .. } => error.clone(),
    };
    let mut checks = env.verify(2, 2, OutcomeStatus::Promoted).await;
    checks.push(Check {
        name: "execution ended as expected".into(),
        ok: execution == "CleanupFailed",
        detail: format!("{execution} (expected CleanupFailed)"),
    });
    let passed = checks.iter().all(|c| c.ok);
    env.shutdown().await;
    Cell {
        state: state.into(),
        fault: fault.into(),
        execution,
        serving: 2,
        outcome: "promotion completed".into(),
        checks,
        passed,
    }
}

/// Two deployments of one service at once (v2 and v3 beside v1): exactly one takes the
/// lock and is promoted; the other fails at render with `ServiceLocked` and touches
/// nothing.
pub async fn lock_contention() -> Cell {
    let (state, fault) = ("RenderTemplate", "second deployment");
    let env = match DemoEnv::start().await {
        Ok(env) => env,
        Err(e) => return failed_cell(state, fault, e.to_string()),
    };
    if let Err(e) = env.deploy_versions(&[1]).await {
        return failed_cell(state, fault, e.to_string());
    }
    let (a, b) = (env.invoker(), env.invoker());
    let image_a = image(2);
    let image_b = image(3);
    let (mut obs_a, mut obs_b) = (NoopObserver, NoopObserver);
    let (run_a, run_b) = tokio::join!(
        env.deploy(&image_a, &a, &mut obs_a),
        env.deploy(&image_b, &b, &mut obs_b)
    );
    let ended = |s: &Status| match s {
        Status::Succeeded => "succeeded".to_owned(),
        Status::Failed { error, .. } => error.clone(),
    };
    let (ea, eb) = (ended(&run_a.status), ended(&run_b.status));
    let winners = [&ea, &eb]
        .iter()
        .filter(|e| e.as_str() == "succeeded")
        .count();
    let losers = [&ea, &eb]
        .iter()
        .filter(|e| e.as_str() == "ServiceLocked")
        .count();
    // The winner took version 2, whichever image it carried.
    let mut checks = env.verify(2, 2, OutcomeStatus::Promoted).await;
    checks.push(Check {
        name: "exactly one deployment took the lock".into(),
        ok: winners == 1 && losers == 1,
        detail: format!("first: {ea}, second: {eb}"),
    });
    let record3 = env.services.store.record(&env.service_ref(), 3).await;
    checks.push(Check {
        name: "the loser touched nothing".into(),
        ok: matches!(record3, Ok(None)),
        detail: "no version 3 record, no version 3 objects".into(),
    });
    let passed = checks.iter().all(|c| c.ok);
    env.shutdown().await;
    Cell {
        state: "lock contention".into(),
        fault: fault.into(),
        execution: format!("{ea} / {eb}"),
        serving: 2,
        outcome: "one promoted, one refused".into(),
        checks,
        passed,
    }
}

/// The matrix as a table: one row per state, one column per fault.
pub fn matrix_text(cells: &[Cell]) -> String {
    let mut out = String::new();
    let header = format!(
        "  {:<16} {:<28} {:<28} {:<28} {:<28} {}",
        "state", "error", "timeout", "crash", UNLOCKED, STOPPED
    );
    let _ = writeln!(out, "{header}");
    for task in TASK_STATES {
        let mut row = format!("  {:<16}", task.state);
        for column in FaultColumn::ALL {
            let text = cells
                .iter()
                .find(|c| c.state == task.state && c.fault == column.name())
                .map(|c| {
                    format!(
                        "{} {} (v{})",
                        if c.passed { "ok" } else { "FAIL" },
                        c.outcome,
                        c.serving
                    )
                })
                .unwrap_or_else(|| "-".into());
            let _ = write!(row, " {text:<28}");
        }
        let unlocked = cells
            .iter()
            .find(|c| c.state == task.state && c.fault == UNLOCKED)
            .map_or_else(
                || "-".to_owned(),
                |c| {
                    format!(
                        "{} {}, v{}",
                        if c.passed { "ok" } else { "FAIL" },
                        c.execution,
                        c.serving
                    )
                },
            );
        let _ = write!(row, " {unlocked:<28}");
        let stopped = cells
            .iter()
            .find(|c| c.state == task.state && c.fault == STOPPED)
            .map_or_else(
                || "-".to_owned(),
                |c| {
                    format!(
                        "{} {} (v{})",
                        if c.passed { "ok" } else { "FAIL" },
                        c.outcome,
                        c.serving
                    )
                },
            );
        let _ = write!(row, " {stopped}");
        let _ = writeln!(out, "{}", row.trim_end());
    }
    for c in cells.iter().filter(|c| c.fault == "fails half-way") {
        let _ = writeln!(
            out,
            "  cleanup fails half-way (old version partly removed): {} {} (v{}, {})",
            if c.passed { "ok" } else { "FAIL" },
            c.outcome,
            c.serving,
            c.execution
        );
    }
    for c in cells.iter().filter(|c| c.fault == STOPPED_THEN_DEPLOYED) {
        let _ = writeln!(
            out,
            "  stopped at the first health check, then the next deployment: {} {} (v{}, {})",
            if c.passed { "ok" } else { "FAIL" },
            c.outcome,
            c.serving,
            c.execution
        );
    }
    for c in cells.iter().filter(|c| {
        [
            ROUTE_REFUSED,
            ROUTE_NEVER_CONFIRMED,
            ROLLBACK_REFUSED,
            NAMESPACE_MISSING,
        ]
        .contains(&c.fault.as_str())
    }) {
        let _ = writeln!(
            out,
            "  {} at {}: {} {} (v{}, {})",
            c.fault,
            c.state,
            if c.passed { "ok" } else { "FAIL" },
            c.outcome,
            c.serving,
            c.execution
        );
    }
    for c in cells.iter().filter(|c| c.state == "lock contention") {
        let _ = writeln!(
            out,
            "  lock contention: {} {} ({})",
            if c.passed { "ok" } else { "FAIL" },
            c.outcome,
            c.execution
        );
    }
    for c in cells.iter().filter(|c| !c.passed) {
        let _ = writeln!(out, "\n  {} x {}:", c.state, c.fault);
        for check in c.checks.iter().filter(|k| !k.ok) {
            let _ = writeln!(out, "    {}: {}", check.name, check.detail);
        }
    }
    out
}

/// The fault of the cell where the controller refuses the canary's route.
pub const ROUTE_REFUSED: &str = "controller refuses the route";
/// The fault of the cell where the controller never confirms the canary's route.
pub const ROUTE_NEVER_CONFIRMED: &str = "controller never confirms";
/// The fault of the cell where the controller refuses the rollback's route write.
pub const ROLLBACK_REFUSED: &str = "rollback's route refused";
/// The fault of the cell where deploy.json names a namespace that does not exist.
pub const NAMESPACE_MISSING: &str = "namespace does not exist";

/// Sets the simulated route controller's behaviour when a function is first invoked
/// (the controller recovers, or starts refusing, between two tasks).
struct ControllerSwitch {
    inner: crate::local::LocalInvoker,
    sim: canary_sim::SimCluster,
    at: Function,
    to: canary_sim::RouteController,
    switched: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl canary_sfn::TaskInvoker for ControllerSwitch {
    async fn invoke(
        &self,
        resource: &str,
        input: serde_json::Value,
    ) -> Result<serde_json::Value, canary_sfn::TaskError> {
        if Function::from_resource(resource) == Some(self.at)
            && !self
                .switched
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.sim.set_route_controller(self.to.clone());
        }
        self.inner.invoke(resource, input).await
    }
}

fn accepting() -> canary_sim::RouteController {
    canary_sim::RouteController::Accepting {
        delay: std::time::Duration::ZERO,
    }
}

/// The route controller refuses (`refusing`) or never confirms the canary's first
/// route write: DeployCanary's first shift fails `RouteNotConfirmed`, the state machine
/// rolls back (the controller accepts again by then) to v1, and the record says why,
/// with the controller's words.
pub async fn route_not_confirmed(refusing: bool) -> Cell {
    let (state, fault) = (
        "DeployCanary",
        if refusing {
            ROUTE_REFUSED
        } else {
            ROUTE_NEVER_CONFIRMED
        },
    );
    let env = match DemoEnv::start().await {
        Ok(env) => env,
        Err(e) => return failed_cell(state, fault, e.to_string()),
    };
    if let Err(e) = env.deploy_versions(&[1]).await {
        return failed_cell(state, fault, e.to_string());
    }
    env.sim.set_route_controller(if refusing {
        canary_sim::RouteController::Refusing {
            reason: "BackendNotFound".into(),
            message: format!("backendRef name: {SERVICE}-2"),
        }
    } else {
        canary_sim::RouteController::Never
    });
    use canary_core::clock::Clock as _;
    let started = env.clock.now_millis();
    let invoker = ControllerSwitch {
        inner: env.invoker(),
        sim: env.sim.clone(),
        at: Function::Rollback,
        to: accepting(),
        switched: false.into(),
    };
    let run = env.deploy(&image(2), &invoker, &mut NoopObserver).await;
    let execution = ended_as(&run.status);
    let mut checks = env.verify(2, 1, OutcomeStatus::RolledBack).await;
    checks.push(Check::new(
        "execution ended as expected",
        execution == "RolledBack",
        format!("{execution} (expected RolledBack)"),
    ));
    let reason = match env.services.store.record(&env.service_ref(), 2).await {
        Ok(Some(r)) => r.outcome.map(|o| o.reason).unwrap_or_default(),
        other => format!("{other:?}"),
    };
    let said = if refusing {
        "VirtualRouterActive=False: BackendNotFound"
    } else {
        "did not accept it within 60 s"
    };
    checks.push(Check::new(
        "the record says the controller did not confirm the route, and why",
        reason.contains("RouteNotConfirmed") && reason.contains(said),
        crate::format::shorten(&reason, 200),
    ));
    let deploy_attempts = invoker_calls(&run, "DeployCanary");
    if !refusing {
        // Each attempt waited the whole route_confirm_timeout on the virtual clock.
        let waited = env.clock.now_millis() - started;
        checks.push(Check::new(
            "the wait lasted the route_confirm_timeout",
            waited >= 60_000,
            format!(
                "{} s from the start, {deploy_attempts} DeployCanary attempt(s)",
                waited / 1000
            ),
        ));
    }
    let passed = checks.iter().all(|c| c.ok);
    env.shutdown().await;
    Cell {
        state: state.into(),
        fault: fault.into(),
        execution,
        serving: 1,
        outcome: "rolled back".into(),
        checks,
        passed,
    }
}

/// How many times the execution entered `state` (attempts included).
fn invoker_calls(run: &canary_sfn::Execution, state: &str) -> usize {
    run.path().iter().filter(|s| **s == state).count()
}

/// The canary fails its health check, and the controller refuses the rollback's own
/// route write: the rollback is not reported done. After its retries the execution
/// ends `RollbackFailed` (traffic may be split), the lock stays held, and the rollback's
/// last error (kept in the execution's output) names the controller's refusal. Once the
/// controller accepts again, `canary recover` restores v1 and releases the lock.
pub async fn rollback_refused() -> Cell {
    let (state, fault) = ("Rollback", ROLLBACK_REFUSED);
    let env = match DemoEnv::start().await {
        Ok(env) => env,
        Err(e) => return failed_cell(state, fault, e.to_string()),
    };
    if let Err(e) = env.deploy_versions(&[1]).await {
        return failed_cell(state, fault, e.to_string());
    }
    env.sim.set_error_rate(&image(2), FAULTY_ERROR_RATE);
    let invoker = ControllerSwitch {
        inner: env.invoker(),
        sim: env.sim.clone(),
        at: Function::Rollback,
        to: canary_sim::RouteController::Refusing {
            reason: "VirtualNodeNotFound".into(),
            message: format!("{SERVICE}-1 is unknown to the mesh"),
        },
        switched: false.into(),
    };
    let run = env.deploy(&image(2), &invoker, &mut NoopObserver).await;
    let (execution, cause) = match &run.status {
        Status::Succeeded => ("succeeded".to_owned(), String::new()),
        Status::Failed { error, cause } => (error.clone(), cause.clone()),
    };
    let last_error = &run.output["rollback_error"];
    let lock = env.services.store.lock(&env.service_ref()).await;
    let mut checks = vec![
        Check::new(
            "execution ended RollbackFailed, saying traffic may be split",
            execution == "RollbackFailed" && cause.contains("traffic may still be split"),
            format!("{execution}: {}", crate::format::shorten(&cause, 120)),
        ),
        Check::new(
            "the rollback's error names the controller's refusal",
            last_error["Error"] == "RouteNotConfirmed"
                && last_error["Cause"]
                    .as_str()
                    .is_some_and(|c| c.contains("VirtualRouterActive=False: VirtualNodeNotFound")),
            crate::format::shorten(&last_error.to_string(), 200),
        ),
        Check::new(
            "the lock stays held by the failed execution",
            matches!(&lock, Ok(Some(l)) if l.execution == crate::harness::execution_id("demo-2")),
            format!(
                "{:?}",
                lock.as_ref()
                    .map(|l| l.as_ref().map(|l| l.execution.clone()))
            ),
        ),
    ];
    // A person fixes the controller, then recovers the service.
    env.sim.set_route_controller(accepting());
    let request = RecoverRequest {
        svc: env.service_ref(),
        by: "canary recover by the fault matrix".into(),
        ended: None,
        force: false,
        current_kinds: Vec::new(),
    };
    let recovered = canary_lambda::recover(&env.services, &request).await;
    checks.push(Check::new(
        "canary recover restores v1 once the controller accepts",
        matches!(&recovered, Ok(Recovery::Recovered { version: 2, .. })),
        format!("{recovered:?}"),
    ));
    checks.extend(env.verify(2, 1, OutcomeStatus::RolledBack).await);
    let passed = checks.iter().all(|c| c.ok);
    env.shutdown().await;
    Cell {
        state: state.into(),
        fault: fault.into(),
        execution,
        serving: 1,
        outcome: "lock held, then recovered".into(),
        checks,
        passed,
    }
}

/// deploy.json names a namespace the cluster does not have (the simulated cluster
/// refuses objects there, as kube-apiserver does): DeployCanary's first apply is
/// refused, the execution ends rolled back with a reason naming the namespace and the
/// command that creates it, nothing is stored in the cluster, and the lock is released.
/// After `kubectl create namespace`, the same deployment goes through.
pub async fn namespace_missing() -> Cell {
    let (state, fault) = ("DeployCanary", NAMESPACE_MISSING);
    let env = match DemoEnv::start_with(canary_sim::SimConfig::with_strict_namespaces).await {
        Ok(env) => env,
        Err(e) => return failed_cell(state, fault, e.to_string()),
    };
    let run = env
        .deploy(&image(1), &env.invoker(), &mut NoopObserver)
        .await;
    let (execution, cause) = match &run.status {
        Status::Succeeded => ("succeeded".to_owned(), String::new()),
        Status::Failed { error, cause } => (error.clone(), cause.clone()),
    };
    let ns = crate::harness::fixtures::NAMESPACE;
    let stored = env.sim.list_objects(ns);
    let refused_writes: Vec<String> = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.write)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let lock = env.services.store.lock(&env.service_ref()).await;
    let reason = match env.services.store.record(&env.service_ref(), 1).await {
        Ok(Some(r)) => r.outcome.map(|o| o.reason).unwrap_or_default(),
        other => format!("{other:?}"),
    };
    let message = format!(
        "namespace {ns} does not exist on cluster blogpost: create it first (kubectl create namespace {ns})"
    );
    let mut checks = vec![
        Check::new(
            "execution ended rolled back, naming the namespace",
            execution == "RolledBack" && cause.contains(&message),
            format!("{execution}: {}", crate::format::shorten(&cause, 200)),
        ),
        Check::new(
            "nothing was stored in the cluster",
            stored.is_empty() && refused_writes.len() == 1,
            format!("{} objects; writes sent: {refused_writes:?}", stored.len()),
        ),
        Check::new(
            "lock released",
            matches!(lock, Ok(None)),
            format!("{:?}", lock.map(|l| l.map(|l| l.execution))),
        ),
        Check::new(
            "the record says why",
            reason.contains(&message) && reason.contains("nothing was written"),
            crate::format::shorten(&reason, 200),
        ),
    ];
    // kubectl create namespace, and the next deployment goes through.
    if let Err(e) = env.sim.create_namespace(ns) {
        checks.push(Check::new("kubectl create namespace", false, e.to_string()));
    }
    let next = env
        .deploy(&image(2), &env.invoker(), &mut NoopObserver)
        .await;
    checks.push(Check::new(
        "after kubectl create namespace the next deployment is promoted",
        next.succeeded(),
        ended_as(&next.status),
    ));
    checks.extend(env.verify(2, 2, OutcomeStatus::Promoted).await);
    let passed = checks.iter().all(|c| c.ok);
    env.shutdown().await;
    Cell {
        state: state.into(),
        fault: fault.into(),
        execution,
        serving: 2,
        outcome: "untouched, lock released".into(),
        checks,
        passed,
    }
}
