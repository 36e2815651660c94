//! Fault-matrix cells about the lock and stopped executions: a stop before each task
//! then `recover` or the next deployment, and `canary unlock` before each task.

use super::*;

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
pub(super) struct Stopped {
    name: String,
    lock_held: bool,
    split: bool,
}

/// Deploys v2 and stops its execution just before `task`'s call.
pub(super) async fn stop_v2_before(env: &DemoEnv, task: TaskState) -> Result<Stopped, String> {
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
pub(super) async fn recovered_check(env: &DemoEnv, execution: &str, version: u32) -> Check {
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

pub(super) fn ended_as(status: &Status) -> String {
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
