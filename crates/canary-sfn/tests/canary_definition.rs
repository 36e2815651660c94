//! The real `statemachine/canary-deployment.asl.json`, run by the executor against a
//! scripted world of fake handlers that move `$.deployment.next` with canary-core's own
//! decision functions, as the real handlers do. No cluster, no AWS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use canary_core::clock::{Clock, ManualClock};
use canary_core::decide::rollback::error_rolls_back;
use canary_core::errors::{self, ErrorName};
use canary_core::execution::{
    Deployment, ExecutionDocument, Next, Outcome, OutcomeStatus, RouteRef,
};
use canary_core::provider::appmesh::APP_MESH;
use canary_core::schedule::schedule;
use canary_core::spec::DeploySpec;
use canary_core::verdict::{Verdict, VerdictStatus};
use canary_sfn::{Execution, Executor, NoopObserver, Status, TaskError, TaskInvoker};
use serde_json::{Value, json};

const RENDER: &str = "${RenderTemplateFunctionArn}";
const DEPLOY: &str = "${DeployCanaryFunctionArn}";
const SHIFT: &str = "${ShiftWeightsFunctionArn}";
const HEALTH: &str = "${HealthCheckFunctionArn}";
const ROLLBACK: &str = "${RollbackFunctionArn}";
const CLEANUP: &str = "${CleanupFunctionArn}";

const START_MILLIS: i64 = 1_700_000_000_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn definition_path() -> PathBuf {
    repo().join("statemachine/canary-deployment.asl.json")
}

fn definition() -> Value {
    serde_json::from_str(&std::fs::read_to_string(definition_path()).unwrap()).unwrap()
}

fn template() -> String {
    std::fs::read_to_string(
        repo().join("tests/fixtures/yelb/yelb-appserver/kubernetes_template.yml"),
    )
    .unwrap()
}

/// The seed's yelb-appserver deploy.json plus the image the pipeline adds.
fn deploy_json() -> Value {
    let text =
        std::fs::read_to_string(repo().join("tests/fixtures/yelb/yelb-appserver/deploy.json"))
            .unwrap();
    let mut deploy: Value = serde_json::from_str(&text).unwrap();
    deploy["container_image"] =
        json!("123456789012.dkr.ecr.us-east-1.amazonaws.com/yelb-appserver:8");
    deploy
}

/// What the fake world does.
#[derive(Debug, Default, Clone)]
struct Script {
    /// No stable version: straight to 100%.
    first_deployment: bool,
    /// The new Deployment is ready at this probe (`None`: never).
    ready_at_probe: Option<u32>,
    /// The health check says unhealthy once the canary has reached this step (1-based).
    unhealthy_at_step: Option<usize>,
    /// Another execution holds the lock.
    locked: bool,
    /// Errors a handler returns before behaving: `(resource, error, times)`.
    faults: Vec<(&'static str, &'static str, u32)>,
    /// A task that returns a `next` the definition does not know (by setting `done`).
    bogus_next_from: Option<&'static str>,
}

struct World {
    script: Script,
    clock: ManualClock,
    template: String,
    probes: AtomicU32,
    faults: Mutex<HashMap<&'static str, Vec<(&'static str, u32)>>>,
}

fn internal(e: impl std::fmt::Display) -> TaskError {
    TaskError::new(errors::INTERNAL, e.to_string())
}

impl World {
    fn new(script: Script, clock: ManualClock) -> Self {
        let mut faults: HashMap<&'static str, Vec<(&'static str, u32)>> = HashMap::new();
        for (resource, error, times) in &script.faults {
            faults.entry(resource).or_default().push((error, *times));
        }
        Self {
            script,
            clock,
            template: template(),
            probes: AtomicU32::new(0),
            faults: Mutex::new(faults),
        }
    }

    fn injected(&self, resource: &str) -> Option<TaskError> {
        let mut faults = self.faults.lock().unwrap();
        let queue = faults.get_mut(resource)?;
        let (error, left) = queue.first_mut()?;
        let error = *error;
        *left -= 1;
        if *left == 0 {
            queue.remove(0);
        }
        Some(TaskError::new(
            error,
            format!("injected {error} in {resource}"),
        ))
    }

    fn spec(&self, doc: &ExecutionDocument) -> Result<DeploySpec, TaskError> {
        DeploySpec::parse(&Value::Object(doc.spec.clone()), Some(&self.template))
            .map_err(|e| TaskError::new(errors::INVALID_INPUT, e.to_string()))
    }

    fn render(&self, input: Value) -> Result<Value, TaskError> {
        let execution = input["execution"]
            .as_str()
            .ok_or_else(|| internal("no execution ARN"))?
            .to_string();
        let deploy = input["deploy"].clone();
        let Value::Object(spec_map) = deploy.clone() else {
            return Err(internal("deploy is not an object"));
        };
        let spec = DeploySpec::parse(&deploy, Some(&self.template))
            .map_err(|e| TaskError::new(errors::INVALID_INPUT, e.to_string()))?;
        if self.script.locked {
            return Err(TaskError::new(
                errors::SERVICE_LOCKED,
                "yelb-appserver is locked by execution arn:aws:states:us-east-1:1:execution:canary:other",
            ));
        }
        let first = self.script.first_deployment;
        let now = self.clock.now_secs();
        let deployment = Deployment {
            execution,
            canary_version: if first { 1 } else { 8 },
            stable_version: if first { None } else { Some(7) },
            stable_image: None,
            provider: APP_MESH,
            route: RouteRef {
                api_version: "appmesh.k8s.aws/v1beta2".into(),
                kind: "VirtualRouter".into(),
                name: "yelb-appserver".into(),
            },
            schedule: schedule(&spec, first),
            step: 0,
            weight: 0,
            max_weight: 0,
            lock_token: "token-1".into(),
            manifest_key: None,
            record_key: None,
            started_at: now,
            ready_deadline: now + i64::try_from(spec.ready_timeout).unwrap(),
            step_started_at: None,
            checks: 0,
            holds: 0,
            verdict: None,
            next: Next::Apply,
            wait_seconds: 0,
            outcome: None,
            gate: None,
            skip_gates: false,
            rollback_reason: None,
            actions: Vec::new(),
        };
        ExecutionDocument {
            spec: spec_map,
            deployment: Some(deployment),
        }
        .to_value()
        .map_err(internal)
    }

    fn handle(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        if let Some(e) = self.injected(resource) {
            return Err(e);
        }
        if resource == RENDER {
            return self.render(input);
        }
        if resource == ROLLBACK && input.get("recover").is_some() {
            // RecoverService: deploy.json as the execution's input, and the execution.
            let request = &input["recover"];
            if request["deploy"] != deploy_json() || !request["execution"].is_string() {
                return Err(internal(format!("a recovery request of {input}")));
            }
            return Ok(json!({"recovery": "recovered", "summary": "recovered from other"}));
        }
        let error_cause = input
            .pointer("/error/Cause")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut doc = ExecutionDocument::from_value(input).map_err(internal)?;
        let spec = self.spec(&doc)?;
        let now = self.clock.now_secs();
        let d = doc
            .deployment
            .as_mut()
            .ok_or_else(|| internal("no deployment"))?;
        match resource {
            DEPLOY if d.next == Next::WaitReady => {
                let probe = self.probes.fetch_add(1, Ordering::SeqCst) + 1;
                if self.script.ready_at_probe.is_some_and(|n| probe >= n) {
                    d.after_ready_probe(true);
                } else if now >= d.ready_deadline {
                    return Err(TaskError::new(
                        errors::CANARY_NOT_READY,
                        "yelb-appserver-8 was not ready after 600 s: ImagePullBackOff",
                    ));
                } else {
                    d.after_ready_probe(false);
                }
            }
            DEPLOY if d.next == Next::Apply => d.after_apply(),
            DEPLOY => {
                return Err(internal(format!(
                    "deploy-canary called with next {:?}",
                    d.next
                )));
            }
            SHIFT => d.after_shift(&spec, now),
            HEALTH => {
                let unhealthy = self.script.unhealthy_at_step.is_some_and(|s| d.step >= s);
                let verdict = Verdict {
                    status: if unhealthy {
                        VerdictStatus::Unhealthy
                    } else {
                        VerdictStatus::Healthy
                    },
                    errors: if unhealthy { 12.0 } else { 0.0 },
                    requests: None,
                    error_rate: None,
                    window_seconds: spec.failure_threshold_time,
                    datapoints: 5,
                    version: Some(d.canary_version),
                    latency_ms: None,
                    comparison: None,
                    stable: None,
                    reason: if unhealthy {
                        "12 errors over 300 s, more than the threshold of 0".into()
                    } else {
                        "0 errors over 300 s".into()
                    },
                };
                d.after_check(&spec, verdict, now);
            }
            CLEANUP => {
                d.outcome = Some(Outcome {
                    status: OutcomeStatus::Promoted,
                    reason: format!("version {} serves all traffic", d.canary_version),
                });
                d.next = Next::Done;
            }
            ROLLBACK => {
                let why = error_cause
                    .or_else(|| d.verdict.as_ref().map(|v| v.reason.clone()))
                    .unwrap_or_else(|| "no reason recorded".into());
                d.outcome = Some(Outcome {
                    status: OutcomeStatus::RolledBack,
                    reason: format!(
                        "rolled back to version {} at {}%: {why}",
                        d.stable_version.unwrap_or(0),
                        d.max_weight
                    ),
                });
                d.weight = 0;
                d.next = Next::Done;
            }
            other => return Err(internal(format!("unknown resource {other}"))),
        }
        if self.script.bogus_next_from == Some(resource) {
            d.next = Next::Done;
        }
        doc.to_value().map_err(internal)
    }
}

#[async_trait]
impl TaskInvoker for World {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        self.handle(resource, input)
    }
}

async fn run_with(script: Script, input: Value) -> Execution {
    let executor = Executor::new(definition())
        .unwrap()
        .with_name("canary-deployment");
    let clock = ManualClock::starting_at(START_MILLIS);
    let world = World::new(script, clock.clone());
    executor
        .run_named("test", input, &world, &clock, &mut NoopObserver)
        .await
}

async fn run(script: Script) -> Execution {
    run_with(script, deploy_json()).await
}

fn count(execution: &Execution, state: &str) -> usize {
    execution.path().iter().filter(|s| **s == state).count()
}

fn failure(execution: &Execution) -> (String, String) {
    match &execution.status {
        Status::Failed { error, cause } => (error.clone(), cause.clone()),
        Status::Succeeded => panic!("expected a failure; path {:?}", execution.path()),
    }
}

fn tail(execution: &Execution, n: usize) -> Vec<&str> {
    let path = execution.path();
    path[path.len().saturating_sub(n)..].to_vec()
}

fn healthy() -> Script {
    Script {
        ready_at_probe: Some(2),
        ..Script::default()
    }
}

#[tokio::test]
async fn a_first_deployment_goes_straight_to_full_traffic_and_is_promoted() {
    let execution = run(Script {
        first_deployment: true,
        ready_at_probe: Some(1),
        ..Script::default()
    })
    .await;
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(
        execution.path(),
        vec![
            "RenderTemplate",
            "DeployCanary",
            "WhatNext",
            "WaitForReady",
            "CheckReadiness",
            "WhatNext",
            "ShiftWeights",
            "WhatNext",
            "Cleanup",
            "Promoted"
        ]
    );
    assert_eq!(execution.output["deployment"]["weight"], 100);
    assert_eq!(
        execution.output["deployment"]["outcome"]["status"],
        "promoted"
    );
}

#[tokio::test]
async fn a_healthy_canary_goes_through_every_step_and_is_promoted() {
    let execution = run(healthy()).await;
    assert_eq!(
        execution.status,
        Status::Succeeded,
        "{:?}",
        execution.path()
    );
    // yelb-appserver: percentage_step 10 -> 10 shifts, one check per 60 s step, and
    // three in the default 180 s bake at 100% (check_interval + two metric periods).
    assert_eq!(count(&execution, "ShiftWeights"), 10);
    assert_eq!(count(&execution, "HealthCheck"), 9 + 3);
    assert_eq!(count(&execution, "CheckReadiness"), 2);
    assert_eq!(count(&execution, "Rollback"), 0);
    assert_eq!(
        tail(&execution, 4),
        vec!["HealthCheck", "WhatNext", "Cleanup", "Promoted"]
    );
    let deployment = &execution.output["deployment"];
    assert_eq!(deployment["weight"], 100);
    assert_eq!(
        deployment["schedule"],
        json!([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    );
    // Two readiness polls of 10 s, nine steps of 60 s and the 180 s bake, on the
    // virtual clock.
    assert_eq!(execution.duration_millis, (2 * 10 + 9 * 60 + 180) * 1000);
    assert!(
        execution.transitions < 70,
        "{} transitions",
        execution.transitions
    );
    eprintln!(
        "yelb-appserver, healthy: {} state transitions, about {} AWS history events",
        execution.transitions, execution.aws_history_events
    );
}

#[tokio::test]
async fn an_unhealthy_canary_is_rolled_back_at_the_third_step() {
    let execution = run(Script {
        unhealthy_at_step: Some(3),
        ..healthy()
    })
    .await;
    let (error, cause) = failure(&execution);
    assert_eq!(error, "RolledBack");
    assert!(
        cause.contains("at 30%") && cause.contains("12 errors"),
        "{cause}"
    );
    assert_eq!(count(&execution, "ShiftWeights"), 3);
    assert_eq!(count(&execution, "HealthCheck"), 3);
    assert_eq!(
        tail(&execution, 5),
        vec![
            "HealthCheck",
            "WhatNext",
            "Rollback",
            "AfterRollback",
            "RolledBack"
        ]
    );
    assert_eq!(count(&execution, "Cleanup"), 0);
}

#[tokio::test]
async fn a_canary_that_never_becomes_ready_is_rolled_back_after_its_deadline() {
    let execution = run(Script {
        ready_at_probe: None,
        ..Script::default()
    })
    .await;
    let (error, cause) = failure(&execution);
    assert_eq!(error, "RolledBack");
    assert!(cause.contains("ImagePullBackOff"), "{cause}");
    assert_eq!(count(&execution, "ShiftWeights"), 0);
    // ready_timeout 600 s, polled every 10 s: the 60th probe is at the deadline.
    assert_eq!(count(&execution, "CheckReadiness"), 60);
    assert_eq!(
        tail(&execution, 4),
        vec!["CheckReadiness", "Rollback", "AfterRollback", "RolledBack"]
    );
}

#[tokio::test]
async fn transient_errors_and_a_crash_are_retried_and_the_deployment_is_promoted() {
    let execution = run(Script {
        faults: vec![
            (HEALTH, "MetricsTransient", 2),
            (DEPLOY, "Lambda.Unknown", 1),
            (SHIFT, "Lambda.TooManyRequestsException", 3),
        ],
        ..healthy()
    })
    .await;
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.attempts("HealthCheck"), 12 + 2);
    assert_eq!(execution.attempts("DeployCanary"), 2);
    assert_eq!(execution.attempts("ShiftWeights"), 10 + 3);
    assert_eq!(count(&execution, "Rollback"), 0);
}

#[tokio::test]
async fn a_task_timeout_is_retried() {
    let execution = run(Script {
        faults: vec![(CLEANUP, "States.Timeout", 1)],
        ..healthy()
    })
    .await;
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(execution.attempts("Cleanup"), 2);
}

#[tokio::test]
async fn a_task_that_always_fails_ends_in_rollback() {
    // A refused request is not retried.
    let execution = run(Script {
        faults: vec![(SHIFT, "KubeError", u32::MAX)],
        ..healthy()
    })
    .await;
    let (error, cause) = failure(&execution);
    assert_eq!(
        (error.as_str(), execution.attempts("ShiftWeights")),
        ("RolledBack", 1)
    );
    assert!(cause.contains("injected KubeError"), "{cause}");
    assert_eq!(
        tail(&execution, 4),
        vec!["ShiftWeights", "Rollback", "AfterRollback", "RolledBack"]
    );
    // A transient error is retried four times first.
    let execution = run(Script {
        faults: vec![(HEALTH, "MetricsTransient", u32::MAX)],
        ..healthy()
    })
    .await;
    assert_eq!(failure(&execution).0, "RolledBack");
    assert_eq!(execution.attempts("HealthCheck"), 5);
    assert_eq!(
        tail(&execution, 4),
        vec!["HealthCheck", "Rollback", "AfterRollback", "RolledBack"]
    );
}

#[tokio::test]
async fn a_locked_service_fails_at_render_without_touching_anything() {
    let execution = run(Script {
        locked: true,
        ..healthy()
    })
    .await;
    let (error, cause) = failure(&execution);
    assert_eq!(error, "ServiceLocked");
    assert!(cause.contains("locked by execution"), "{cause}");
    assert_eq!(
        execution.path(),
        vec!["RenderTemplate", "AnotherDeploymentOwnsService"]
    );
    assert_eq!(execution.attempts("RenderTemplate"), 1);
}

#[tokio::test]
async fn a_service_left_behind_is_recovered_first_then_rendered_again_from_the_same_input() {
    let execution = run(Script {
        faults: vec![(RENDER, "RecoveryNeeded", 1)],
        ..healthy()
    })
    .await;
    assert_eq!(execution.status, Status::Succeeded);
    assert_eq!(
        execution.path()[..4],
        [
            "RenderTemplate",
            "RecoverService",
            "RenderTemplate",
            "DeployCanary"
        ]
    );
    assert_eq!(execution.attempts("RenderTemplate"), 2);
    // The recovery's answer is discarded: the document is deploy.json plus deployment.
    assert_eq!(execution.output["microservice_name"], "yelb-appserver");
    assert!(
        execution.output.get("error").is_none(),
        "{}",
        execution.output
    );
}

#[tokio::test]
async fn a_recovery_that_fails_ends_recovery_failed_with_its_cause() {
    let execution = run(Script {
        faults: vec![
            (RENDER, "RecoveryNeeded", 1),
            (ROLLBACK, "KubeError", u32::MAX),
        ],
        ..healthy()
    })
    .await;
    let (error, cause) = failure(&execution);
    assert_eq!(error, "KubeError");
    assert!(cause.contains("injected KubeError"), "{cause}");
    assert_eq!(
        execution.path(),
        vec!["RenderTemplate", "RecoverService", "RecoveryFailed"]
    );
}

#[tokio::test]
async fn a_lost_lock_mid_deployment_stops_without_rollback() {
    let execution = run(Script {
        faults: vec![(HEALTH, "LockLost", 1)],
        ..healthy()
    })
    .await;
    assert_eq!(failure(&execution).0, "LockLost");
    assert_eq!(
        tail(&execution, 2),
        vec!["HealthCheck", "AnotherDeploymentOwnsService"]
    );
    assert_eq!(count(&execution, "Rollback"), 0);
}

#[tokio::test]
async fn an_invalid_deploy_json_fails_at_render_with_the_reason() {
    let mut input = deploy_json();
    input["percentage_stpe"] = json!(10);
    let execution = run_with(healthy(), input).await;
    let (error, cause) = failure(&execution);
    assert_eq!(error, "InvalidInput");
    assert!(cause.contains("percentage_stpe"), "{cause}");
    assert_eq!(
        execution.path(),
        vec!["RenderTemplate", "DeployJsonInvalid"]
    );
}

#[tokio::test]
async fn render_template_receives_deploy_json_and_the_execution_arn() {
    let execution = run(healthy()).await;
    let deployment = &execution.output["deployment"];
    assert_eq!(
        deployment["execution"],
        "arn:aws:states:local:000000000000:execution:canary-deployment:test"
    );
    assert_eq!(execution.output["microservice_name"], "yelb-appserver");
}

#[tokio::test]
async fn a_rollback_that_fails_twice_is_retried_until_it_finishes() {
    let execution = run(Script {
        unhealthy_at_step: Some(1),
        faults: vec![(ROLLBACK, "KubeTransient", 1), (ROLLBACK, "KubeError", 1)],
        ..healthy()
    })
    .await;
    assert_eq!(failure(&execution).0, "RolledBack");
    assert_eq!(execution.attempts("Rollback"), 3);
    assert_eq!(
        tail(&execution, 3),
        vec!["Rollback", "AfterRollback", "RolledBack"]
    );
}

#[tokio::test]
async fn a_rollback_that_keeps_failing_ends_in_rollback_failed_and_says_the_lock_is_kept() {
    let execution = run(Script {
        unhealthy_at_step: Some(1),
        faults: vec![(ROLLBACK, "KubeError", u32::MAX)],
        ..healthy()
    })
    .await;
    let (error, cause) = failure(&execution);
    assert_eq!(error, "RollbackFailed");
    assert!(
        cause.contains("traffic may still be split") && cause.contains("lock is kept"),
        "{cause}"
    );
    assert_eq!(execution.attempts("Rollback"), 7);
    assert_eq!(execution.output["rollback_error"]["Error"], "KubeError");
}

#[tokio::test]
async fn a_failing_cleanup_ends_in_rollback() {
    let execution = run(Script {
        faults: vec![(CLEANUP, "StoreError", 1)],
        ..healthy()
    })
    .await;
    assert_eq!(failure(&execution).0, "RolledBack");
    assert_eq!(
        tail(&execution, 4),
        vec!["Cleanup", "Rollback", "AfterRollback", "RolledBack"]
    );
}

#[tokio::test]
async fn an_unknown_next_from_a_task_is_treated_as_a_bug_and_rolled_back() {
    let execution = run(Script {
        bogus_next_from: Some(HEALTH),
        ..healthy()
    })
    .await;
    let (error, cause) = failure(&execution);
    assert_eq!(error, "RolledBack");
    assert!(cause.contains("does not handle"), "{cause}");
    assert_eq!(
        tail(&execution, 5),
        vec![
            "WhatNext",
            "UnexpectedNext",
            "Rollback",
            "AfterRollback",
            "RolledBack"
        ]
    );
}

#[test]
fn the_definition_loads_and_invokes_exactly_the_six_functions() {
    let executor = Executor::new(definition()).unwrap();
    let expected: BTreeSet<&str> = [RENDER, DEPLOY, SHIFT, HEALTH, ROLLBACK, CLEANUP]
        .into_iter()
        .collect();
    assert_eq!(executor.resources(), expected);
    assert_eq!(executor.start_at(), "RenderTemplate");
}

/// Errors that no clause names on purpose: after the lock they mean "roll back", which
/// every task's final `States.ALL` Catch does.
const LEFT_TO_STATES_ALL: &[&str] = &[
    errors::KUBE_ERROR,
    errors::CANARY_NOT_READY,
    errors::ABORTED,
    errors::METRICS_ERROR,
    errors::STORE_ERROR,
    errors::INTERNAL,
    // A shift's route refused or unconfirmed rolls back; a rollback's own ends in
    // RollbackFailed after its retries (its States.ALL clauses).
    errors::ROUTE_NOT_CONFIRMED,
    // deploy-canary before its first write: the rollback ends it touching nothing.
    errors::NAMESPACE_MISSING,
];

fn tasks(definition: &Value) -> Vec<(String, Value)> {
    definition["States"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| s["Type"] == "Task")
        .map(|(n, s)| (n.clone(), s.clone()))
        .collect()
}

fn clause_names(state: &Value, field: &str) -> Vec<Vec<String>> {
    state[field]
        .as_array()
        .map(|clauses| {
            clauses
                .iter()
                .map(|c| {
                    c["ErrorEquals"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|n| n.as_str().unwrap().to_string())
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_error_name_the_definition_matches_exists_and_every_error_is_handled() {
    let definition = definition();
    let mut named = BTreeSet::new();
    for (_, state) in tasks(&definition) {
        for field in ["Retry", "Catch"] {
            for names in clause_names(&state, field) {
                named.extend(names);
            }
        }
    }
    for name in &named {
        let aws = name.starts_with("States.")
            || name.starts_with("Lambda.")
            || name.starts_with("Sandbox.");
        assert!(
            aws || ErrorName::from_name(name).is_some(),
            "the definition matches `{name}`, which canary-core does not define"
        );
    }
    for name in ErrorName::ALL.map(ErrorName::as_str) {
        let explicit = named.contains(name);
        let left = LEFT_TO_STATES_ALL.contains(&name);
        assert!(
            explicit != left,
            "`{name}` must be matched by name or left to States.ALL, exactly one of the two"
        );
    }
}

#[test]
fn after_the_render_every_error_that_core_says_rolls_back_is_caught_into_rollback() {
    let definition = definition();
    for (state_name, state) in tasks(&definition) {
        // RenderTemplate and RecoverService come before this deployment began: nothing
        // of it to roll back.
        if state_name == "RenderTemplate"
            || state_name == "RecoverService"
            || state_name == "Rollback"
        {
            continue;
        }
        for name in ErrorName::ALL {
            let target = state["Catch"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| {
                    c["ErrorEquals"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n == name.as_str() || n == "States.ALL")
                })
                .map(|c| c["Next"].as_str().unwrap());
            assert_eq!(
                target == Some("Rollback"),
                error_rolls_back(name),
                "{state_name} on {name}: caught into {target:?}"
            );
        }
    }
}

#[test]
fn every_task_retries_transient_errors_and_keeps_its_hands_off_a_service_it_does_not_own() {
    let definition = definition();
    for (name, state) in tasks(&definition) {
        let retried: BTreeSet<String> = clause_names(&state, "Retry")
            .into_iter()
            .zip(state["Retry"].as_array().unwrap())
            .filter(|(_, clause)| clause["MaxAttempts"].as_u64() != Some(0))
            .flat_map(|(names, _)| names)
            .collect();
        for transient in errors::TRANSIENT {
            assert!(
                retried.contains(*transient) || retried.contains("States.ALL"),
                "{name} does not retry {transient}"
            );
        }
        for crash in [
            "States.Timeout",
            "Lambda.Unknown",
            "Lambda.ServiceException",
        ] {
            assert!(
                retried.contains(crash) || retried.contains("States.ALL"),
                "{name} does not retry {crash}"
            );
        }
        let catches = state["Catch"].as_array().unwrap();
        for hands_off in errors::HANDS_OFF {
            let target = catches
                .iter()
                .find(|c| {
                    c["ErrorEquals"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|n| n == hands_off)
                })
                .map(|c| c["Next"].as_str().unwrap());
            assert_eq!(
                target,
                Some("AnotherDeploymentOwnsService"),
                "{name} on {hands_off}"
            );
        }
        let last = catches.last().unwrap();
        assert_eq!(last["ErrorEquals"], json!(["States.ALL"]), "{name}");
        let expected = match name.as_str() {
            "RenderTemplate" => "RenderFailed",
            "RecoverService" => "RecoveryFailed",
            "Rollback" => "RollbackFailed",
            _ => "Rollback",
        };
        assert_eq!(last["Next"], expected, "{name}");
        assert!(
            state["TimeoutSeconds"].as_u64().is_some(),
            "{name} has no TimeoutSeconds"
        );
    }
}

#[test]
fn asl_validator_accepts_the_definition() {
    let bin = repo().join(".tools/node_modules/.bin/asl-validator");
    let found = canary_testkit::require_peer(
        "asl-validator",
        bin.exists(),
        canary_testkit::install::ASL_VALIDATOR,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if !found {
        return;
    }
    let out = std::process::Command::new(&bin)
        .arg("--json-path")
        .arg(definition_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "asl-validator rejected the definition:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // And it does reject a broken one, so the check above means something.
    let mut broken = definition();
    broken["States"]["Cleanup"]["Next"] = json!("Nowhere");
    let file =
        std::env::temp_dir().join(format!("canary-sfn-broken-{}.asl.json", std::process::id()));
    std::fs::write(&file, broken.to_string()).unwrap();
    let out = std::process::Command::new(&bin)
        .arg("--json-path")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        !out.status.success(),
        "asl-validator accepted a definition with a missing Next"
    );
}
