//! The executor: runs a parsed definition from `StartAt` to a Succeed or Fail state,
//! invoking Task resources through a [`TaskInvoker`], waiting on a [`Clock`] (a virtual
//! clock moves instead of sleeping), and recording every step.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use canary_core::clock::Clock;
use serde_json::{Value, json};

use crate::definition::{Definition, Kind, State, TaskState};
use crate::error::{DefinitionError, TaskError};
use crate::history::{Event, EventKind, Execution, Observer, Status};
use crate::retry::{self, RUNTIME, TIMEOUT};
use crate::state_data::{fail_text, filter, iso, seconds_to_millis, wait_millis};

/// The default cap on (estimated) AWS history events per execution: Step Functions'
/// hard quota for a Standard execution. A run that reaches it fails with
/// `States.Runtime`, as it could not finish in AWS either; it also stops a definition
/// that loops forever.
pub const DEFAULT_MAX_HISTORY_EVENTS: usize = 25_000;

/// Runs a Task state's resource (in eks-canary: calls a handler in-process).
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    /// Invokes `resource` (the Task's `Resource`, as written in the definition) with the
    /// task's input. An `Err` carries the error name that Retry and Catch match on.
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError>;
}

/// A checked state machine, ready to run any number of times.
#[derive(Debug, Clone)]
pub struct Executor {
    definition: Definition,
    name: String,
    max_history_events: usize,
}

/// What a state does next.
enum Step {
    Next(String, Value),
    End(Value),
    Fail {
        error: String,
        cause: String,
        document: Value,
    },
}

fn runtime(cause: impl Into<String>, document: Value) -> Step {
    Step::Fail {
        error: RUNTIME.into(),
        cause: cause.into(),
        document,
    }
}

impl Executor {
    /// Parses and checks a definition: `StartAt` and every transition name a state,
    /// every state is reachable, every state type and field is known and supported.
    pub fn new(definition: Value) -> Result<Self, DefinitionError> {
        Ok(Self {
            definition: Definition::parse(&definition)?,
            name: "local".into(),
            max_history_events: DEFAULT_MAX_HISTORY_EVENTS,
        })
    }

    /// [`Executor::new`] from the definition's JSON text.
    pub fn from_json(text: &str) -> Result<Self, DefinitionError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| DefinitionError::NotJson(e.to_string()))?;
        Self::new(value)
    }

    /// Names the state machine (as the context object's `$$.StateMachine.Name` shows it).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Changes the cap on history events (see [`DEFAULT_MAX_HISTORY_EVENTS`]).
    pub fn with_max_history_events(mut self, max: usize) -> Self {
        self.max_history_events = max;
        self
    }

    /// The first state.
    pub fn start_at(&self) -> &str {
        &self.definition.start_at
    }

    /// Every state's name, sorted.
    pub fn state_names(&self) -> Vec<&str> {
        self.definition.states.keys().map(String::as_str).collect()
    }

    /// Every Task `Resource`, so that a caller can check it can invoke them all.
    pub fn resources(&self) -> BTreeSet<&str> {
        self.definition
            .states
            .values()
            .filter_map(|s| match &s.kind {
                Kind::Task(t) => Some(t.resource.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Runs one execution named `local-<start time in ms>`. See [`Executor::run_named`].
    pub async fn run(
        &self,
        input: Value,
        invoker: &dyn TaskInvoker,
        clock: &dyn Clock,
        observer: &mut dyn Observer,
    ) -> Execution {
        let name = format!("local-{}", clock.now_millis());
        self.run_named(&name, input, invoker, clock, observer).await
    }

    /// Runs one execution to its end. Waits and retry delays move a virtual clock
    /// (`clock.advance` returns true) or sleep for real. The execution never panics and
    /// never returns early: every problem ends it with a failed [`Status`]. Long on
    /// purpose: it is the execution loop (start, one state after another, the history
    /// cap, the end events) read top to bottom as Step Functions runs it.
    pub async fn run_named(
        &self,
        execution_name: &str,
        input: Value,
        invoker: &dyn TaskInvoker,
        clock: &dyn Clock,
        observer: &mut dyn Observer,
    ) -> Execution {
        let started = clock.now_millis();
        let machine_id = format!(
            "arn:aws:states:local:000000000000:stateMachine:{}",
            self.name
        );
        let mut run = Run {
            clock,
            observer,
            history: Vec::new(),
            aws_events: 0,
            transitions: 0,
            // A virtual clock accepts a zero advance; a real one refuses every advance.
            virtual_clock: clock.advance(0),
            context: json!({
                "Execution": {
                    "Id": format!("arn:aws:states:local:000000000000:execution:{}:{execution_name}", self.name),
                    "Name": execution_name,
                    "StartTime": iso(started),
                    "Input": input.clone(),
                },
                "StateMachine": { "Id": machine_id, "Name": self.name },
            }),
        };
        run.record(EventKind::ExecutionStarted {
            input: input.clone(),
        });

        let mut current = self.definition.start_at.clone();
        let mut document = input;
        loop {
            let step = if run.aws_events >= self.max_history_events {
                runtime(
                    format!(
                        "the execution reached {} history events, the most a Step Functions \
                         Standard execution may have",
                        self.max_history_events
                    ),
                    document,
                )
            } else if let Some(limit) = self.definition.timeout_seconds
                && clock.now_millis() - started > seconds_to_millis(limit)
            {
                Step::Fail {
                    error: TIMEOUT.into(),
                    cause: format!("the execution ran longer than its TimeoutSeconds ({limit} s)"),
                    document,
                }
            } else if let Some(state) = self.definition.states.get(&current) {
                run.transitions += 1;
                run.record(EventKind::StateEntered {
                    state: current.clone(),
                    state_type: state.state_type(),
                    input: document.clone(),
                });
                run.step(&current, state, document, invoker).await
            } else {
                runtime(format!("no state named `{current}`"), document)
            };
            match step {
                Step::Next(next, output) => {
                    run.record(EventKind::StateExited {
                        state: current.clone(),
                        output: output.clone(),
                    });
                    current = next;
                    document = output;
                }
                Step::End(output) => {
                    run.record(EventKind::StateExited {
                        state: current.clone(),
                        output: output.clone(),
                    });
                    run.record(EventKind::ExecutionSucceeded {
                        output: output.clone(),
                    });
                    return run.finish(Status::Succeeded, output, started);
                }
                Step::Fail {
                    error,
                    cause,
                    document,
                } => {
                    run.record(EventKind::ExecutionFailed {
                        error: error.clone(),
                        cause: cause.clone(),
                    });
                    return run.finish(Status::Failed { error, cause }, document, started);
                }
            }
        }
    }
}

/// The state of one execution while it runs.
struct Run<'a> {
    clock: &'a dyn Clock,
    observer: &'a mut dyn Observer,
    history: Vec<Event>,
    aws_events: usize,
    transitions: usize,
    virtual_clock: bool,
    context: Value,
}

impl Run<'_> {
    fn record(&mut self, kind: EventKind) {
        self.aws_events += aws_event_weight(&kind);
        let event = Event {
            at_millis: self.clock.now_millis(),
            kind,
        };
        self.observer.on_event(&event);
        self.history.push(event);
    }

    fn finish(self, status: Status, output: Value, started: i64) -> Execution {
        Execution {
            status,
            output,
            history: self.history,
            transitions: self.transitions,
            aws_history_events: self.aws_events,
            duration_millis: self.clock.now_millis() - started,
        }
    }

    async fn pause(&mut self, state: &str, millis: i64) {
        self.record(EventKind::WaitStarted {
            state: state.into(),
            millis,
        });
        if millis <= 0 {
            return;
        }
        if !self.clock.advance(millis) {
            tokio::time::sleep(Duration::from_millis(u64::try_from(millis).unwrap_or(0))).await;
        }
    }

    /// The context object (`$$`) as a state sees it.
    fn context(&self, state: &str, entered: i64, retry_count: u32) -> Value {
        let mut context = self.context.clone();
        if let Value::Object(map) = &mut context {
            map.insert(
                "State".into(),
                json!({ "Name": state, "EnteredTime": iso(entered), "RetryCount": retry_count }),
            );
        }
        context
    }

    /// Runs one state and says what comes next. Long on purpose: one arm per state type
    /// (Pass, Task, Choice, Wait, Succeed, Fail), each with its input and output
    /// processing in the order the States Language defines.
    async fn step(
        &mut self,
        name: &str,
        state: &State,
        raw: Value,
        invoker: &dyn TaskInvoker,
    ) -> Step {
        let entered = self.clock.now_millis();
        let effective = match filter(&state.input_path, &raw, "InputPath") {
            Ok(v) => v,
            Err(cause) => return runtime(cause, raw),
        };
        match &state.kind {
            Kind::Task(task) => {
                self.task(name, state, task, raw, effective, entered, invoker)
                    .await
            }
            Kind::Pass {
                parameters,
                result,
                result_path,
            } => {
                let value = match (result, parameters) {
                    (Some(r), _) => r.clone(),
                    (None, Some(t)) => {
                        match t.render(&effective, &self.context(name, entered, 0)) {
                            Ok(v) => v,
                            Err(cause) => return runtime(cause, raw),
                        }
                    }
                    (None, None) => effective,
                };
                match result_path.apply(raw.clone(), value) {
                    Ok(combined) => output(state, combined),
                    Err(cause) => Step::Fail {
                        error: "States.ResultPathMatchFailure".into(),
                        cause: cause.to_string(),
                        document: raw,
                    },
                }
            }
            Kind::Choice { rules, default } => {
                for (rule, next) in rules {
                    match rule.eval(&effective) {
                        Ok(true) => {
                            return match filter(&state.output_path, &effective, "OutputPath") {
                                Ok(out) => Step::Next(next.clone(), out),
                                Err(cause) => runtime(cause, raw),
                            };
                        }
                        Ok(false) => {}
                        Err(cause) => return runtime(cause, raw),
                    }
                }
                match default {
                    Some(next) => match filter(&state.output_path, &effective, "OutputPath") {
                        Ok(out) => Step::Next(next.clone(), out),
                        Err(cause) => runtime(cause, raw),
                    },
                    None => Step::Fail {
                        error: "States.NoChoiceMatched".into(),
                        cause: format!(
                            "no rule of the Choice state `{name}` matched and it has no Default"
                        ),
                        document: raw,
                    },
                }
            }
            Kind::Wait(wait) => {
                let millis = match wait_millis(wait, &effective, self.clock.now_millis()) {
                    Ok(ms) => ms,
                    Err(cause) => return runtime(cause, raw),
                };
                self.pause(name, millis).await;
                output(state, effective)
            }
            Kind::Succeed => match filter(&state.output_path, &effective, "OutputPath") {
                Ok(out) => Step::End(out),
                Err(cause) => runtime(cause, raw),
            },
            Kind::Fail { error, cause } => {
                let error = match fail_text(error, &raw, "ErrorPath") {
                    Ok(e) => e,
                    Err(c) => return runtime(c, raw),
                };
                let cause = match fail_text(cause, &raw, "CausePath") {
                    Ok(c) => c,
                    Err(c) => return runtime(c, raw),
                };
                Step::Fail {
                    error,
                    cause,
                    document: raw,
                }
            }
        }
    }

    /// Runs a Task state: invoke, Retry with backoff, Catch, ResultSelector and
    /// ResultPath. Long on purpose: the retry loop and the catch share the attempt's
    /// state, and the events are emitted in the order Step Functions records them.
    #[allow(clippy::too_many_arguments)]
    async fn task(
        &mut self,
        name: &str,
        state: &State,
        task: &TaskState,
        raw: Value,
        effective: Value,
        entered: i64,
        invoker: &dyn TaskInvoker,
    ) -> Step {
        let mut used = vec![0_u32; task.retry.len()];
        let mut retries = 0_u32;
        loop {
            let payload = match &task.parameters {
                Some(t) => match t.render(&effective, &self.context(name, entered, retries)) {
                    Ok(v) => v,
                    Err(cause) => return runtime(cause, raw),
                },
                None => effective.clone(),
            };
            self.record(EventKind::TaskScheduled {
                state: name.into(),
                resource: task.resource.clone(),
                attempt: retries + 1,
                input: payload.clone(),
            });
            match self.invoke(invoker, task, payload).await {
                Ok(result) => {
                    self.record(EventKind::TaskSucceeded {
                        state: name.into(),
                        resource: task.resource.clone(),
                        output: result.clone(),
                    });
                    let selected = match &task.result_selector {
                        Some(t) => match t.render(&result, &self.context(name, entered, retries)) {
                            Ok(v) => v,
                            Err(cause) => return runtime(cause, raw),
                        },
                        None => result,
                    };
                    return match task.result_path.apply(raw.clone(), selected) {
                        Ok(combined) => output(state, combined),
                        Err(cause) => Step::Fail {
                            error: "States.ResultPathMatchFailure".into(),
                            cause: cause.to_string(),
                            document: raw,
                        },
                    };
                }
                Err(failure) => {
                    self.record(EventKind::TaskFailed {
                        state: name.into(),
                        resource: task.resource.clone(),
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                    });
                    // The first Retry clause that matches decides; once its attempts are
                    // used up, the error goes to Catch.
                    if let Some(i) = task
                        .retry
                        .iter()
                        .position(|r| retry::matches(&r.error_equals, &failure.error))
                        && used[i] < task.retry[i].max_attempts
                    {
                        used[i] += 1;
                        retries += 1;
                        let delay = task.retry[i].delay_millis(used[i]);
                        self.record(EventKind::RetryScheduled {
                            state: name.into(),
                            error: failure.error.clone(),
                            retry: used[i],
                            delay_millis: delay,
                        });
                        self.transitions += 1;
                        self.pause(name, delay).await;
                        continue;
                    }
                    if let Some(catcher) = task
                        .catch
                        .iter()
                        .find(|c| retry::matches(&c.error_equals, &failure.error))
                    {
                        self.record(EventKind::CatchMatched {
                            state: name.into(),
                            error: failure.error.clone(),
                            next: catcher.next.clone(),
                        });
                        let error_output =
                            json!({ "Error": failure.error, "Cause": failure.cause });
                        return match catcher.result_path.apply(raw.clone(), error_output) {
                            Ok(out) => Step::Next(catcher.next.clone(), out),
                            Err(cause) => Step::Fail {
                                error: "States.ResultPathMatchFailure".into(),
                                cause: cause.to_string(),
                                document: raw,
                            },
                        };
                    }
                    return Step::Fail {
                        error: failure.error,
                        cause: failure.cause,
                        document: raw,
                    };
                }
            }
        }
    }

    /// Invokes the resource, enforcing TimeoutSeconds: with a real clock the call is cut
    /// off; with a virtual clock, a call during which the clock moved past the timeout
    /// (an invoker simulating a slow handler) counts as timed out.
    async fn invoke(
        &self,
        invoker: &dyn TaskInvoker,
        task: &TaskState,
        payload: Value,
    ) -> Result<Value, TaskError> {
        let timed_out = |seconds: u64| {
            TaskError::new(
                TIMEOUT,
                format!("the task did not finish within its TimeoutSeconds ({seconds} s)"),
            )
        };
        let before = self.clock.now_millis();
        let result = match task.timeout_seconds {
            Some(seconds) if !self.virtual_clock => {
                match tokio::time::timeout(
                    Duration::from_secs(seconds),
                    invoker.invoke(&task.resource, payload),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) => Err(timed_out(seconds)),
                }
            }
            _ => invoker.invoke(&task.resource, payload).await,
        };
        if let Some(seconds) = task.timeout_seconds
            && self.virtual_clock
            && self.clock.now_millis() - before > seconds_to_millis(seconds)
        {
            return Err(timed_out(seconds));
        }
        result
    }
}

/// Applies OutputPath and follows `Next` or `End`.
fn output(state: &State, combined: Value) -> Step {
    match filter(&state.output_path, &combined, "OutputPath") {
        Ok(out) => match &state.next {
            Some(next) => Step::Next(next.clone(), out),
            None => Step::End(out),
        },
        Err(cause) => runtime(cause, combined),
    }
}

/// How many events AWS Step Functions records for what one of ours stands for.
fn aws_event_weight(kind: &EventKind) -> usize {
    match kind {
        // LambdaFunctionScheduled + LambdaFunctionStarted.
        EventKind::TaskScheduled { .. } => 2,
        EventKind::RetryScheduled { .. }
        | EventKind::CatchMatched { .. }
        | EventKind::WaitStarted { .. } => 0,
        _ => 1,
    }
}
