//! The executor's handling of each States Language construct, on small definitions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use canary_core::clock::{Clock, ManualClock, SystemClock};
use canary_sfn::{
    DefinitionError, EventKind, Execution, Executor, NoopObserver, Status, TaskError, TaskInvoker,
};
use serde_json::{Value, json};

/// An invoker that answers with a closure.
struct FnInvoker<F>(F);

#[async_trait]
impl<F> TaskInvoker for FnInvoker<F>
where
    F: Fn(&str, Value) -> Result<Value, TaskError> + Send + Sync,
{
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        (self.0)(resource, input)
    }
}

fn echo() -> FnInvoker<impl Fn(&str, Value) -> Result<Value, TaskError> + Send + Sync> {
    FnInvoker(|_: &str, input: Value| Ok(input))
}

/// Fails with `errors` in turn, then succeeds with `{"ok": true}`.
fn failing(
    errors: &[&str],
) -> FnInvoker<impl Fn(&str, Value) -> Result<Value, TaskError> + Send + Sync> {
    let errors: Vec<String> = errors.iter().map(|e| (*e).to_string()).collect();
    let calls = AtomicU32::new(0);
    FnInvoker(move |_: &str, _input: Value| {
        let n = calls.fetch_add(1, Ordering::SeqCst) as usize;
        match errors.get(n) {
            Some(e) => Err(TaskError::new(e.clone(), format!("failure {}", n + 1))),
            None => Ok(json!({"ok": true})),
        }
    })
}

async fn run(
    definition: Value,
    input: Value,
    invoker: &dyn TaskInvoker,
) -> (Execution, ManualClock) {
    let executor = Executor::new(definition).unwrap();
    let clock = ManualClock::starting_at(1_700_000_000_000);
    let execution = executor
        .run(input, invoker, &clock, &mut NoopObserver)
        .await;
    (execution, clock)
}

fn one_task(task: Value) -> Value {
    let mut task = task;
    task["Type"] = json!("Task");
    task["Resource"] = json!("fn");
    if task.get("Next").is_none() {
        task["End"] = json!(true);
    }
    json!({
        "StartAt": "T",
        "States": {
            "T": task,
            "Caught": {"Type": "Pass", "End": true},
        }
    })
}

fn failed(execution: &Execution) -> (&str, &str) {
    match &execution.status {
        Status::Failed { error, cause } => (error, cause),
        Status::Succeeded => panic!("expected a failure, got success with {}", execution.output),
    }
}

fn delays(execution: &Execution) -> Vec<i64> {
    execution
        .history
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryScheduled { delay_millis, .. } => Some(*delay_millis),
            _ => None,
        })
        .collect()
}

/// Catch is not reachable in `one_task` unless a Catch names it; give every task one
/// harmless Catch to `Caught` when the test does not care.
fn with_unused_catch(mut task: Value) -> Value {
    if task.get("Catch").is_none() {
        task["Catch"] = json!([{"ErrorEquals": ["Never"], "Next": "Caught"}]);
    }
    task
}

#[tokio::test]
async fn input_path_parameters_result_selector_result_path_and_output_path_compose_in_order() {
    let input = json!({"doc": {"name": "yelb", "n": 1}, "keep": "me"});
    let cases = [
        (
            json!({}),
            json!({"doc": {"name": "yelb", "n": 1}, "keep": "me"}),
        ),
        (
            json!({"InputPath": "$.doc"}),
            json!({"name": "yelb", "n": 1}),
        ),
        (json!({"InputPath": null}), json!({})),
        (json!({"ResultPath": null}), input.clone()),
        (
            json!({"InputPath": "$.doc", "ResultPath": "$.result"}),
            json!({"doc": {"name": "yelb", "n": 1}, "keep": "me", "result": {"name": "yelb", "n": 1}}),
        ),
        (
            json!({"InputPath": "$.keep", "ResultPath": "$.a.b"}),
            json!({"doc": {"name": "yelb", "n": 1}, "keep": "me", "a": {"b": "me"}}),
        ),
        (
            json!({"InputPath": "$.keep", "ResultPath": "$.doc.name"}),
            json!({"doc": {"name": "me", "n": 1}, "keep": "me"}),
        ),
        (
            json!({"Parameters": {"fixed": 1, "name.$": "$.doc.name"}}),
            json!({"fixed": 1, "name": "yelb"}),
        ),
        (
            json!({"Parameters": {"whole.$": "$"}, "ResultSelector": {"n.$": "$.whole.doc.n"}}),
            json!({"n": 1}),
        ),
        (json!({"OutputPath": "$.doc.n"}), json!(1)),
        (json!({"OutputPath": null}), json!({})),
        (
            json!({"ResultPath": "$.r", "OutputPath": "$.r.keep"}),
            json!("me"),
        ),
    ];
    for (fields, expected) in cases {
        let (execution, _) = run(
            one_task(with_unused_catch(fields.clone())),
            input.clone(),
            &echo(),
        )
        .await;
        assert!(execution.succeeded(), "{fields}: {:?}", execution.status);
        assert_eq!(execution.output, expected, "{fields}");
    }
}

#[tokio::test]
async fn pass_states_inject_results_and_reshape_their_input() {
    let cases = [
        (json!({"Result": {"x": 1}}), json!({"x": 1})),
        (
            json!({"Result": "apply", "ResultPath": "$.operation"}),
            json!({"a": 1, "operation": "apply"}),
        ),
        (json!({"Parameters": {"copy.$": "$.a"}}), json!({"copy": 1})),
        (
            json!({"Parameters": {"copy.$": "$.a"}, "ResultPath": "$.p"}),
            json!({"a": 1, "p": {"copy": 1}}),
        ),
        (json!({"ResultPath": null, "Result": 5}), json!({"a": 1})),
        (json!({}), json!({"a": 1})),
    ];
    for (fields, expected) in cases {
        let mut pass = fields.clone();
        pass["Type"] = json!("Pass");
        pass["End"] = json!(true);
        let definition = json!({"StartAt": "P", "States": {"P": pass}});
        let (execution, _) = run(definition, json!({"a": 1}), &echo()).await;
        assert_eq!(execution.output, expected, "{fields}");
    }
}

#[tokio::test]
async fn a_choice_state_follows_the_first_matching_rule_or_its_default() {
    let definition = json!({
        "StartAt": "Decide",
        "States": {
            "Decide": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.next", "IsPresent": false, "Next": "Missing"},
                    {"Variable": "$.next", "StringEquals": "shift", "Next": "Shift"},
                    {"And": [
                        {"Variable": "$.next", "StringEquals": "check"},
                        {"Variable": "$.wait", "NumericGreaterThan": 0}
                    ], "Next": "Wait"},
                    {"Variable": "$.next", "StringEqualsPath": "$.special", "Next": "Special"}
                ],
                "Default": "Other"
            },
            "Missing": {"Type": "Succeed"},
            "Shift": {"Type": "Succeed"},
            "Wait": {"Type": "Succeed"},
            "Special": {"Type": "Succeed"},
            "Other": {"Type": "Succeed"}
        }
    });
    let cases = [
        (json!({}), "Missing"),
        (json!({"next": "shift"}), "Shift"),
        (json!({"next": "check", "wait": 5}), "Wait"),
        (
            json!({"next": "check", "wait": 0, "special": "check"}),
            "Special",
        ),
        (json!({"next": "check", "wait": 0, "special": "x"}), "Other"),
    ];
    for (input, expected) in cases {
        let (execution, _) = run(definition.clone(), input.clone(), &echo()).await;
        assert_eq!(execution.path(), vec!["Decide", expected], "{input}");
    }
}

#[tokio::test]
async fn a_choice_without_a_match_or_default_fails_the_execution() {
    let definition = json!({
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "BooleanEquals": true, "Next": "S"}]},
            "S": {"Type": "Succeed"}
        }
    });
    let (execution, _) = run(definition, json!({"a": false}), &echo()).await;
    assert_eq!(failed(&execution).0, "States.NoChoiceMatched");
}

#[tokio::test]
async fn wait_states_move_a_virtual_clock_instead_of_sleeping() {
    let start = 1_700_000_000_000_i64;
    let cases = [
        (json!({"Seconds": 30}), 30_000),
        (json!({"SecondsPath": "$.wait"}), 600_000),
        (json!({"Timestamp": "2023-11-14T22:13:27Z"}), 7_000),
        (json!({"TimestampPath": "$.until"}), 60_000),
        (json!({"Timestamp": "2000-01-01T00:00:00Z"}), 0),
    ];
    for (fields, expected) in cases {
        let mut wait = fields.clone();
        wait["Type"] = json!("Wait");
        wait["End"] = json!(true);
        let definition = json!({"StartAt": "W", "States": {"W": wait}});
        let input = json!({"wait": 600, "until": "2023-11-14T22:14:20Z"});
        let (execution, clock) = run(definition, input.clone(), &echo()).await;
        assert!(execution.succeeded(), "{fields}: {:?}", execution.status);
        assert_eq!(clock.now_millis() - start, expected, "{fields}");
        assert_eq!(execution.output, input);
    }
}

#[tokio::test]
async fn a_wait_whose_seconds_path_is_not_a_whole_number_is_a_runtime_error() {
    let definition = json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "SecondsPath": "$.w", "End": true}}});
    for input in [json!({"w": "ten"}), json!({"w": -1}), json!({})] {
        let (execution, _) = run(definition.clone(), input.clone(), &echo()).await;
        assert_eq!(failed(&execution).0, "States.Runtime", "{input}");
    }
}

#[tokio::test]
async fn a_wait_on_the_real_clock_sleeps() {
    let definition =
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": true}}});
    let executor = Executor::new(definition).unwrap();
    let started = std::time::Instant::now();
    let execution = executor
        .run(json!({}), &echo(), &SystemClock, &mut NoopObserver)
        .await;
    assert!(execution.succeeded());
    assert!(started.elapsed() >= std::time::Duration::from_millis(990));
}

#[tokio::test]
async fn retries_back_off_by_the_rate_and_then_the_task_succeeds() {
    let definition = one_task(with_unused_catch(json!({
        "Retry": [{"ErrorEquals": ["KubeTransient"], "IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 3}]
    })));
    let (execution, clock) = run(
        definition,
        json!({}),
        &failing(&["KubeTransient", "KubeTransient"]),
    )
    .await;
    assert!(execution.succeeded());
    assert_eq!(execution.attempts("T"), 3);
    assert_eq!(delays(&execution), vec![2_000, 4_000]);
    assert_eq!(clock.now_millis() - 1_700_000_000_000, 6_000);
    // One transition for the state, one per retry.
    assert_eq!(execution.transitions, 3);
}

#[tokio::test]
async fn max_delay_seconds_caps_the_backoff() {
    let definition = one_task(with_unused_catch(json!({
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3, "BackoffRate": 3, "MaxAttempts": 4, "MaxDelaySeconds": 10, "JitterStrategy": "FULL"}]
    })));
    let (execution, _) = run(definition, json!({}), &failing(&["X", "X", "X", "X"])).await;
    assert!(execution.succeeded());
    assert_eq!(delays(&execution), vec![3_000, 9_000, 10_000, 10_000]);
}

#[tokio::test]
async fn max_attempts_zero_never_retries_and_the_first_matching_retrier_decides() {
    let definition = one_task(json!({
        "Retry": [
            {"ErrorEquals": ["LockLost"], "MaxAttempts": 0},
            {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5}
        ],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    }));
    let (execution, _) = run(definition, json!({}), &failing(&["LockLost", "LockLost"])).await;
    assert!(execution.succeeded());
    assert_eq!(execution.attempts("T"), 1);
    assert_eq!(execution.path(), vec!["T", "Caught"]);
}

#[tokio::test]
async fn a_catch_applies_only_after_the_retries_are_used_up_and_merges_the_error() {
    let definition = one_task(json!({
        "Retry": [{"ErrorEquals": ["KubeTransient"], "MaxAttempts": 2}],
        "Catch": [
            {"ErrorEquals": ["ServiceLocked"], "Next": "Caught"},
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}
        ]
    }));
    let (execution, _) = run(
        definition,
        json!({"doc": 1}),
        &failing(&["KubeTransient", "KubeTransient", "KubeTransient"]),
    )
    .await;
    assert_eq!(execution.attempts("T"), 3);
    assert_eq!(execution.path(), vec!["T", "Caught"]);
    assert_eq!(
        execution.output,
        json!({"doc": 1, "error": {"Error": "KubeTransient", "Cause": "failure 3"}})
    );
}

#[tokio::test]
async fn a_catch_without_result_path_replaces_the_input_with_the_error() {
    let definition =
        one_task(json!({"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]}));
    let (execution, _) = run(definition, json!({"doc": 1}), &failing(&["KubeError"])).await;
    assert_eq!(
        execution.output,
        json!({"Error": "KubeError", "Cause": "failure 1"})
    );
}

#[tokio::test]
async fn task_failed_matches_every_task_error_but_a_timeout_while_states_all_matches_both() {
    let cases = [
        ("States.TaskFailed", "Lambda.Unknown", true),
        ("States.TaskFailed", "States.Timeout", false),
        ("States.ALL", "States.Timeout", true),
        ("KubeTransient", "KubeError", false),
    ];
    for (name, error, caught) in cases {
        let definition = one_task(json!({"Catch": [{"ErrorEquals": [name], "Next": "Caught"}]}));
        let (execution, _) = run(definition, json!({}), &failing(&[error])).await;
        assert_eq!(execution.succeeded(), caught, "{name} vs {error}");
        if !caught {
            assert_eq!(failed(&execution).0, error);
        }
    }
}

#[tokio::test]
async fn an_uncaught_task_error_fails_the_execution_with_that_error() {
    let definition = one_task(with_unused_catch(json!({})));
    let (execution, _) = run(definition, json!({"doc": 1}), &failing(&["KubeError"])).await;
    assert_eq!(failed(&execution), ("KubeError", "failure 1"));
    assert_eq!(
        execution.output,
        json!({"doc": 1}),
        "the last document is kept"
    );
}

#[tokio::test]
async fn a_runtime_error_is_neither_retried_nor_caught() {
    let definition = one_task(json!({
        "Parameters": {"x.$": "$.missing"},
        "Retry": [{"ErrorEquals": ["States.ALL"]}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    }));
    let (execution, _) = run(definition, json!({}), &echo()).await;
    assert_eq!(failed(&execution).0, "States.Runtime");
    assert_eq!(execution.attempts("T"), 0);
}

#[tokio::test]
async fn a_task_that_outlives_its_timeout_on_a_virtual_clock_times_out() {
    let clock = ManualClock::starting_at(0);
    let slow_clock = clock.clone();
    let slow = FnInvoker(move |_: &str, input: Value| {
        slow_clock.advance(61_000);
        Ok(input)
    });
    let definition = one_task(json!({
        "TimeoutSeconds": 60,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Caught"}]
    }));
    let executor = Executor::new(definition).unwrap();
    let execution = executor
        .run(json!({}), &slow, &clock, &mut NoopObserver)
        .await;
    assert_eq!(execution.path(), vec!["T", "Caught"]);
    assert_eq!(execution.output["error"]["Error"], "States.Timeout");
}

struct Sleepy;

#[async_trait]
impl TaskInvoker for Sleepy {
    async fn invoke(&self, _resource: &str, input: Value) -> Result<Value, TaskError> {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        Ok(input)
    }
}

#[tokio::test]
async fn a_task_that_outlives_its_timeout_on_the_real_clock_is_cut_off() {
    let definition = one_task(with_unused_catch(json!({"TimeoutSeconds": 1})));
    let executor = Executor::new(definition).unwrap();
    let started = std::time::Instant::now();
    let execution = executor
        .run(json!({}), &Sleepy, &SystemClock, &mut NoopObserver)
        .await;
    assert_eq!(failed(&execution).0, "States.Timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[tokio::test]
async fn fail_states_report_static_or_path_error_and_cause() {
    let input = json!({"error": {"Error": "ServiceLocked", "Cause": "held by exec-1"}, "reason": "5 errors"});
    let cases = [
        (
            json!({"Error": "RolledBack", "Cause": "static"}),
            ("RolledBack", "static"),
        ),
        (
            json!({"Error": "RolledBack", "CausePath": "$.reason"}),
            ("RolledBack", "5 errors"),
        ),
        (
            json!({"ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}),
            ("ServiceLocked", "held by exec-1"),
        ),
        (json!({}), ("", "")),
    ];
    for (fields, expected) in cases {
        let mut fail = fields.clone();
        fail["Type"] = json!("Fail");
        let definition = json!({"StartAt": "F", "States": {"F": fail}});
        let (execution, _) = run(definition, input.clone(), &echo()).await;
        assert_eq!(failed(&execution), expected, "{fields}");
        assert_eq!(execution.output, input);
    }
    let definition =
        json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "CausePath": "$.error"}}});
    let (execution, _) = run(definition, input, &echo()).await;
    assert_eq!(
        failed(&execution).0,
        "States.Runtime",
        "a CausePath naming an object"
    );
}

#[tokio::test]
async fn parameters_can_read_the_context_object() {
    let definition = one_task(with_unused_catch(json!({
        "Parameters": {"doc.$": "$", "execution.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "state.$": "$$.State.Name"}
    })));
    let executor = Executor::new(definition)
        .unwrap()
        .with_name("canary-deployment");
    let clock = ManualClock::starting_at(0);
    let execution = executor
        .run_named("run-1", json!({"a": 1}), &echo(), &clock, &mut NoopObserver)
        .await;
    assert_eq!(
        execution.output,
        json!({
            "doc": {"a": 1},
            "execution": "arn:aws:states:local:000000000000:execution:canary-deployment:run-1",
            "name": "run-1",
            "state": "T"
        })
    );
}

#[tokio::test]
async fn a_definition_that_loops_forever_is_stopped_at_the_history_cap() {
    let definition = json!({
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}
    });
    let executor = Executor::new(definition).unwrap();
    let clock = ManualClock::starting_at(0);
    let execution = executor
        .run(json!({}), &echo(), &clock, &mut NoopObserver)
        .await;
    let (error, cause) = failed(&execution);
    assert_eq!(error, "States.Runtime");
    assert!(cause.contains("25000"), "{cause}");
    assert!(execution.aws_history_events >= 25_000);
    let small = executor
        .with_max_history_events(10)
        .run(json!({}), &echo(), &clock, &mut NoopObserver)
        .await;
    assert!(small.transitions <= 10);
}

#[tokio::test]
async fn an_execution_timeout_stops_a_long_run() {
    let definition = json!({
        "StartAt": "W",
        "TimeoutSeconds": 60,
        "States": {"W": {"Type": "Wait", "Seconds": 50, "Next": "X"}, "X": {"Type": "Wait", "Seconds": 50, "Next": "Y"}, "Y": {"Type": "Succeed"}}
    });
    let (execution, _) = run(definition, json!({}), &echo()).await;
    assert_eq!(failed(&execution).0, "States.Timeout");
    assert_eq!(execution.path(), vec!["W", "X"]);
}

#[tokio::test]
async fn the_observer_sees_every_event_of_the_history_in_order() {
    let seen = Mutex::new(Vec::new());
    let mut observer = |event: &canary_sfn::Event| seen.lock().unwrap().push(event.clone());
    let definition = one_task(json!({
        "Retry": [{"ErrorEquals": ["X"]}],
        "Next": "Caught"
    }));
    let executor = Executor::new(definition).unwrap();
    let clock = ManualClock::starting_at(0);
    let execution = executor
        .run(json!({}), &failing(&["X"]), &clock, &mut observer)
        .await;
    assert_eq!(*seen.lock().unwrap(), execution.history);
    let kinds: Vec<&str> = execution
        .history
        .iter()
        .map(|e| match e.kind {
            EventKind::ExecutionStarted { .. } => "started",
            EventKind::StateEntered { .. } => "entered",
            EventKind::StateExited { .. } => "exited",
            EventKind::TaskScheduled { .. } => "scheduled",
            EventKind::TaskSucceeded { .. } => "succeeded",
            EventKind::TaskFailed { .. } => "failed",
            EventKind::RetryScheduled { .. } => "retry",
            EventKind::CatchMatched { .. } => "caught",
            EventKind::WaitStarted { .. } => "wait",
            EventKind::ExecutionSucceeded { .. } => "done",
            EventKind::ExecutionFailed { .. } => "fail",
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "started",
            "entered",
            "scheduled",
            "failed",
            "retry",
            "wait",
            "scheduled",
            "succeeded",
            "exited",
            "entered",
            "exited",
            "done"
        ]
    );
}

/// Checks that a definition error is of the expected kind.
type IsExpected = fn(&DefinitionError) -> bool;

#[test]
fn definitions_the_executor_cannot_run_are_rejected_with_the_reason() {
    let ok_task = json!({"Type": "Task", "Resource": "fn", "End": true});
    let with_state = |name: &str, state: Value| json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": name}, name: state}});
    let cases: Vec<(Value, IsExpected)> = vec![
        (json!({"States": {"A": ok_task.clone()}}), |e| {
            matches!(e, DefinitionError::Invalid { .. })
        }),
        (
            json!({"StartAt": "B", "States": {"A": ok_task.clone()}}),
            |e| matches!(e, DefinitionError::UnknownStartAt(_)),
        ),
        (
            json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nope"}}}),
            |e| matches!(e, DefinitionError::UnknownNext { .. }),
        ),
        (
            with_state("B", json!({"Type": "Sleep", "End": true})),
            |e| matches!(e, DefinitionError::UnknownStateType { .. }),
        ),
        (with_state("B", json!({"Type": "Map", "End": true})), |e| {
            matches!(e, DefinitionError::Unsupported { .. })
        }),
        (
            with_state(
                "B",
                json!({"Type": "Wait", "SecondPath": "$.x", "End": true}),
            ),
            |e| matches!(e, DefinitionError::UnknownField { .. }),
        ),
        (
            json!({"StartAt": "A", "States": {"A": ok_task.clone(), "B": ok_task.clone()}}),
            |e| matches!(e, DefinitionError::Unreachable(_)),
        ),
        (
            with_state(
                "B",
                json!({"Type": "Task", "Resource": "fn", "End": true, "Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]}),
            ),
            |e| matches!(e, DefinitionError::Invalid { .. }),
        ),
        (
            with_state(
                "B",
                json!({"Type": "Task", "Resource": "fn", "End": true, "Parameters": {"x.$": "States.Format('{}', $.a)"}}),
            ),
            |e| matches!(e, DefinitionError::Unsupported { .. }),
        ),
        (
            with_state(
                "B",
                json!({"Type": "Task", "Resource": "fn", "End": true, "InputPath": "$..a"}),
            ),
            |e| matches!(e, DefinitionError::InvalidPath { .. }),
        ),
        (
            with_state(
                "B",
                json!({"Type": "Wait", "Seconds": 1, "SecondsPath": "$.x", "End": true}),
            ),
            |e| matches!(e, DefinitionError::Invalid { .. }),
        ),
        (
            with_state("B", json!({"Type": "Task", "Resource": "fn"})),
            |e| matches!(e, DefinitionError::Invalid { .. }),
        ),
        (
            with_state(
                "B",
                json!({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}),
            ),
            |e| matches!(e, DefinitionError::Invalid { .. }),
        ),
        (
            with_state(
                "B",
                json!({"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEquals": "x", "Next": "Gone"}]}),
            ),
            |e| matches!(e, DefinitionError::UnknownNext { .. }),
        ),
        (
            with_state(
                "B",
                json!({"Type": "Task", "Resource": "fn", "End": true, "Catch": [{"ErrorEquals": ["X"], "Next": "Gone"}]}),
            ),
            |e| matches!(e, DefinitionError::UnknownNext { .. }),
        ),
    ];
    for (definition, expected) in cases {
        match Executor::new(definition.clone()) {
            Ok(_) => panic!("accepted: {definition}"),
            Err(e) => assert!(expected(&e), "{definition}: unexpected error {e}"),
        }
    }
    assert!(matches!(
        Executor::from_json("{not json"),
        Err(DefinitionError::NotJson(_))
    ));
}
