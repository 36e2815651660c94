//! What an execution leaves behind: its status, its output, and the history of events
//! (states entered and left, tasks scheduled, succeeded and failed, retries, catches,
//! waits), which an [`Observer`] also receives as they happen.

use serde::Serialize;
use serde_json::Value;

/// The type of a state, as history events report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StateType {
    /// Runs a resource (a Lambda function).
    Task,
    /// Picks the next state from the input.
    Choice,
    /// Waits.
    Wait,
    /// Passes (and may reshape) its input.
    Pass,
    /// Ends the execution successfully.
    Succeed,
    /// Ends the execution with an error.
    Fail,
}

/// One thing that happened, with the executor's clock time (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// When, on the clock the execution ran with.
    pub at_millis: i64,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of history events.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The execution began with this input.
    ExecutionStarted { input: Value },
    /// A state was entered with this (raw) input.
    StateEntered {
        state: String,
        state_type: StateType,
        input: Value,
    },
    /// A state finished with this output.
    StateExited { state: String, output: Value },
    /// A task's resource was invoked (`attempt` 1 is the first try).
    TaskScheduled {
        state: String,
        resource: String,
        attempt: u32,
        input: Value,
    },
    /// The resource returned this result.
    TaskSucceeded {
        state: String,
        resource: String,
        output: Value,
    },
    /// The resource failed.
    TaskFailed {
        state: String,
        resource: String,
        error: String,
        cause: String,
    },
    /// A Retry clause matched; the task runs again after `delay_millis`.
    RetryScheduled {
        state: String,
        error: String,
        retry: u32,
        delay_millis: i64,
    },
    /// A Catch clause matched; the execution goes on at `next`.
    CatchMatched {
        state: String,
        error: String,
        next: String,
    },
    /// A Wait state (or a retry's delay) waits this long.
    WaitStarted { state: String, millis: i64 },
    /// The execution succeeded with this output.
    ExecutionSucceeded { output: Value },
    /// The execution failed.
    ExecutionFailed { error: String, cause: String },
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// A Succeed state (or an `End` state) was reached.
    Succeeded,
    /// A Fail state was reached, or an error was neither retried nor caught.
    Failed { error: String, cause: String },
}

/// A finished execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Execution {
    /// How it ended.
    pub status: Status,
    /// On success, the execution's output. On failure (where Step Functions reports no
    /// output), the last document the execution held: the Fail state's input, or the
    /// input of the state whose error ended it.
    pub output: Value,
    /// Every event, in order.
    pub history: Vec<Event>,
    /// State transitions, as Step Functions bills them: one per state entered and one
    /// per retry.
    pub transitions: usize,
    /// An estimate of the history events that AWS Step Functions would record for the
    /// same run (Step Functions caps a Standard execution at 25,000).
    pub aws_history_events: usize,
    /// Clock time from start to end, in milliseconds.
    pub duration_millis: i64,
}

impl Execution {
    /// Whether the execution succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == Status::Succeeded
    }

    /// The names of the states entered, in order (the path the execution took).
    pub fn path(&self) -> Vec<&str> {
        self.history
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::StateEntered { state, .. } => Some(state.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The distinct states entered, in the order they were first entered.
    pub fn states_visited(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for state in self.path() {
            if !seen.contains(&state) {
                seen.push(state);
            }
        }
        seen
    }

    /// How many times the resource of `state` was invoked.
    pub fn attempts(&self, state: &str) -> usize {
        self.history
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::TaskScheduled { state: s, .. } if s == state))
            .count()
    }
}

/// Receives every event as it happens (a progress display, a log).
pub trait Observer: Send {
    /// Called once per event, in order, before the event is added to the history.
    fn on_event(&mut self, event: &Event);
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {
    fn on_event(&mut self, _event: &Event) {}
}

impl<F: FnMut(&Event) + Send> Observer for F {
    fn on_event(&mut self, event: &Event) {
        self(event)
    }
}
