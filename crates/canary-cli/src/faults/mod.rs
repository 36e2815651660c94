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

mod controller;
mod recovery;

pub use controller::*;
pub use recovery::*;

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
    env.notifications.take();
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
    checks.push(crate::harness::checks::notifications_check(
        &env.notifications.take(),
        outcome,
    ));
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
