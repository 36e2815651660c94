//! Fault-matrix cells about the route controller and the namespace: a refused or
//! never-confirmed canary route, a refused rollback, a namespace that does not exist.

use super::*;

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
pub(super) struct ControllerSwitch {
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

pub(super) fn accepting() -> canary_sim::RouteController {
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
pub(super) fn invoker_calls(run: &canary_sfn::Execution, state: &str) -> usize {
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
