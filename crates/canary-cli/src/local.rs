//! Running the real state machine definition locally: the handlers are called
//! in-process by the local executor (canary-sfn), against any cluster the services
//! reach (the simulated one, or a real one through a kubeconfig or EKS).
//!
//! [`LocalInvoker`] maps the definition's Task resources to the six handlers;
//! [`FaultyInvoker`] wraps it to inject a returned error, a timeout (the handler ran, its
//! answer was lost), a crash (the handler did not finish), a broken lock or a stopped
//! execution into chosen calls, for the fault matrix; [`SimMetricsSource`] feeds the health check from the simulated traffic.

use std::sync::Mutex;

use async_trait::async_trait;
use canary_core::Observation;
use canary_core::compare::Counts;
use canary_lambda::{HandlerResult, Services};
use canary_metrics::{HealthQuery, MetricsError, MetricsSource};
use canary_sfn::{TaskError, TaskInvoker};
use canary_sim::{MetricsQuery, SimCluster};
use serde_json::Value;

/// The state machine definition, as shipped in `statemachine/` (the same bytes the
/// CloudFormation stack deploys).
pub const DEFINITION: &str = include_str!("../../../statemachine/canary-deployment.asl.json");

/// The name the local executor gives the state machine (`canary run`, the demo).
pub const MACHINE_NAME: &str = "canary-deployment";

/// The id (`$$.Execution.Id`, which becomes the lock's holder) the local executor gives
/// the execution `name` of [`MACHINE_NAME`].
pub fn execution_id(name: &str) -> String {
    format!("arn:aws:states:local:000000000000:execution:{MACHINE_NAME}:{name}")
}

/// The six functions of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    RenderTemplate,
    DeployCanary,
    ShiftWeights,
    HealthCheck,
    Rollback,
    Cleanup,
}

impl Function {
    /// Every function, in flow order.
    pub const ALL: [Function; 6] = [
        Self::RenderTemplate,
        Self::DeployCanary,
        Self::ShiftWeights,
        Self::HealthCheck,
        Self::Rollback,
        Self::Cleanup,
    ];

    /// The crate and Lambda function name (`render-template`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::RenderTemplate => "render-template",
            Self::DeployCanary => "deploy-canary",
            Self::ShiftWeights => "shift-weights",
            Self::HealthCheck => "health-check",
            Self::Rollback => "rollback",
            Self::Cleanup => "cleanup",
        }
    }

    /// The CloudFormation substitution variable of the function's ARN.
    pub fn arn_variable(self) -> &'static str {
        match self {
            Self::RenderTemplate => "RenderTemplateFunctionArn",
            Self::DeployCanary => "DeployCanaryFunctionArn",
            Self::ShiftWeights => "ShiftWeightsFunctionArn",
            Self::HealthCheck => "HealthCheckFunctionArn",
            Self::Rollback => "RollbackFunctionArn",
            Self::Cleanup => "CleanupFunctionArn",
        }
    }

    /// The function a Task `Resource` names: `${RenderTemplateFunctionArn}` in the
    /// definition file, or a Lambda ARN / name that ends with the function's name.
    pub fn from_resource(resource: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| {
            resource == format!("${{{}}}", f.arn_variable())
                || resource.ends_with(f.name())
                || resource.ends_with(&format!("{}:$LATEST", f.name()))
        })
    }

    /// Calls the function's handler in-process.
    pub async fn call(self, services: &Services, input: Value) -> HandlerResult {
        match self {
            Self::RenderTemplate => render_template::handle(services, input).await,
            Self::DeployCanary => deploy_canary::handle(services, input).await,
            Self::ShiftWeights => shift_weights::handle(services, input).await,
            Self::HealthCheck => health_check::handle(services, input).await,
            Self::Rollback => rollback::handle(services, input).await,
            Self::Cleanup => cleanup::handle(services, input).await,
        }
    }
}

/// Invokes the handlers in-process.
#[derive(Debug, Clone)]
pub struct LocalInvoker {
    pub services: Services,
}

#[async_trait]
impl TaskInvoker for LocalInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let Some(function) = Function::from_resource(resource) else {
            return Err(TaskError::new(
                "States.TaskFailed",
                format!("no local handler for resource `{resource}`"),
            ));
        };
        // As in AWS, a function error's Cause is the error payload as JSON text.
        function.call(&self.services, input).await.map_err(|e| {
            TaskError::new(
                e.error_type,
                canary_core::errors::lambda_cause(e.error_type, &e.message),
            )
        })
    }
}

/// What goes wrong in an injected fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// The handler is not called; the task fails with this error name.
    Error(String),
    /// The handler runs to the end but its answer is lost: `States.Timeout`.
    Timeout,
    /// The process dies before the handler does anything: `Lambda.Unknown`.
    Crash,
    /// Someone runs `canary unlock` on the service just before the call, which then
    /// runs as usual (the execution goes on without its lock).
    LockBroken,
    /// The execution is stopped just before the call (StopExecution, a timed-out
    /// execution, a killed terminal): the call never runs and
    /// [`FaultyInvoker::stopped`] is notified, for the runner to drop the execution.
    Stop,
}

/// One injected fault: the `nth` call (1-based) of `function` fails as `kind`, and so
/// do the `times - 1` calls after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub function: Function,
    pub nth: u32,
    pub times: u32,
    pub kind: FaultKind,
}

/// A [`LocalInvoker`] with faults.
#[derive(Debug)]
pub struct FaultyInvoker {
    inner: LocalInvoker,
    faults: Vec<Fault>,
    calls: Mutex<Vec<Function>>,
    /// The cluster whose writes are counted when a lock is broken.
    sim: Option<SimCluster>,
    writes_at_break: Mutex<Option<usize>>,
    stopped: tokio::sync::Notify,
}

impl FaultyInvoker {
    /// `inner` with `faults`.
    pub fn new(inner: LocalInvoker, faults: Vec<Fault>) -> Self {
        Self {
            inner,
            faults,
            calls: Mutex::new(Vec::new()),
            sim: None,
            writes_at_break: Mutex::new(None),
            stopped: tokio::sync::Notify::new(),
        }
    }

    /// Notified when a [`FaultKind::Stop`] fault stops the execution.
    pub fn stopped(&self) -> &tokio::sync::Notify {
        &self.stopped
    }

    /// Counts `sim`'s writes when a [`FaultKind::LockBroken`] fault breaks the lock.
    pub fn counting_writes_of(mut self, sim: SimCluster) -> Self {
        self.sim = Some(sim);
        self
    }

    /// How many writes the cluster had received when the lock was broken (`None`: not
    /// broken, or no cluster given).
    pub fn writes_at_break(&self) -> Option<usize> {
        self.writes_at_break.lock().ok().and_then(|w| *w)
    }

    /// The functions called so far, in order (faulty calls included).
    pub fn calls(&self) -> Vec<Function> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn fault_for(&self, function: Function) -> Option<FaultKind> {
        let mut calls = self.calls.lock().ok()?;
        calls.push(function);
        let n = u32::try_from(calls.iter().filter(|f| **f == function).count()).unwrap_or(u32::MAX);
        self.faults
            .iter()
            .find(|f| {
                f.function == function && n >= f.nth && n < f.nth.saturating_add(f.times.max(1))
            })
            .map(|f| f.kind.clone())
    }
}

#[async_trait]
impl TaskInvoker for FaultyInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let Some(function) = Function::from_resource(resource) else {
            return self.inner.invoke(resource, input).await;
        };
        match self.fault_for(function) {
            None => self.inner.invoke(resource, input).await,
            Some(FaultKind::Error(name)) => Err(TaskError::new(
                name,
                format!("injected fault in {}", function.name()),
            )),
            Some(FaultKind::Timeout) => {
                let _ = self.inner.invoke(resource, input).await;
                Err(TaskError::new(
                    "States.Timeout",
                    format!("{} timed out (injected)", function.name()),
                ))
            }
            Some(FaultKind::LockBroken) => {
                let svc = canary_lambda::Task::from_value(input.clone())
                    .map(|t| t.service_ref())
                    .map_err(|e| TaskError::new("States.TaskFailed", e.to_string()))?;
                let services = &self.inner.services;
                let now = services.clock.now_secs();
                services
                    .store
                    .break_lock(&svc, "the fault matrix", now)
                    .await
                    .map_err(|e| TaskError::new("States.TaskFailed", e.to_string()))?;
                if let (Some(sim), Ok(mut at)) = (&self.sim, self.writes_at_break.lock()) {
                    at.get_or_insert(sim.write_count());
                }
                self.inner.invoke(resource, input).await
            }
            Some(FaultKind::Stop) => {
                self.stopped.notify_one();
                std::future::pending().await
            }
            Some(FaultKind::Crash) => Err(TaskError::new(
                "Lambda.Unknown",
                format!(
                    "{}: Runtime.ExitError: the process exited (injected crash)",
                    function.name()
                ),
            )),
        }
    }
}

/// Health numbers from the simulated cluster's traffic, shaped as CloudWatch would
/// return them (one datapoint per period that saw traffic).
#[derive(Debug, Clone)]
pub struct SimMetricsSource {
    sim: SimCluster,
    namespace: String,
}

impl SimMetricsSource {
    /// Metrics of services in `namespace` of `sim`.
    pub fn new(sim: SimCluster, namespace: &str) -> Self {
        Self {
            sim,
            namespace: namespace.to_owned(),
        }
    }
}

#[async_trait]
impl MetricsSource for SimMetricsSource {
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError> {
        let window = |controller: Option<String>| {
            self.sim.metrics(&MetricsQuery {
                namespace: self.namespace.clone(),
                service: q.service.clone(),
                controller,
                start_millis: q.start_secs.saturating_mul(1000),
                end_millis: q.end_secs.saturating_mul(1000),
                period_secs: q.period_secs.max(1),
            })
        };
        let per_version = q.health.version_dimension.is_some() || q.stable_version.is_some();
        let m = window(per_version.then(|| q.version_value()));
        let stable = q.stable_version.map(|v| {
            let s = window(Some(q.workload(v)));
            let errors: f64 = s.errors.iter().sum();
            Counts::new(errors + s.successes.iter().sum::<f64>(), errors)
        });
        Ok(Observation {
            errors: m.errors,
            successes: q.need_requests.then_some(m.successes),
            latency_ms: None,
            stable,
        })
    }
}
