//! Following a deployment while the local executor runs it. [`Tracker`] turns the
//! executor's history events into the deployment's progress (the current state, the
//! canary's weight, the step, when the next check happens, the last verdict with its
//! numbers) and into timeline [`Row`]s; [`ProgressDisplay`] shows that progress in a
//! terminal (an indicatif bar, or one plain line per change when standard error is not a
//! terminal). The demo builds its weight timeline from the same rows.

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use canary_core::ActionKind;
use canary_core::clock::Clock;
use canary_core::execution::{Next, OutcomeStatus};
use canary_core::{Deployment, Verdict, VerdictStatus};
use canary_sfn::{Event, EventKind, Observer};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::Value;

use crate::format::mmss;

/// One line of a deployment's timeline: what a task did, with the weight after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// When, on the executor's clock (Unix milliseconds).
    pub at_millis: i64,
    /// The state (`ShiftWeights`, `HealthCheck`, ...).
    pub state: String,
    /// The canary's weight after the task, in percent.
    pub weight: u8,
    /// Steps of the schedule applied so far.
    pub step: usize,
    /// Steps in the schedule.
    pub steps: usize,
    /// The verdict of a health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Whether this row is a failure (a task error, an unhealthy verdict, a rollback).
    pub bad: bool,
    /// What happened, in a few words.
    pub note: String,
}

/// What is known about the running deployment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The state being run.
    pub state: String,
    /// True between a task's invocation and its answer.
    pub in_task: bool,
    /// When the current Wait (or retry delay) ends, on the executor's clock.
    pub waiting_until: Option<i64>,
    /// The deployment as the last task returned it (`None` before render-template).
    pub deployment: Option<Deployment>,
    /// The input of the state being run: the whole execution document.
    pub document: Option<Value>,
    /// The last health-check verdict.
    pub last_verdict: Option<Verdict>,
    /// Set once the execution ended.
    pub finished: bool,
}

impl Snapshot {
    /// The execution document that a rollback would start from, when the deployment
    /// has begun (render-template took the lock and returned the document).
    pub fn rollback_document(&self) -> Option<Value> {
        let doc = self.document.as_ref()?;
        doc.get("deployment")?;
        Some(doc.clone())
    }
}

/// Turns events into a [`Snapshot`] and timeline rows.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    snapshot: Snapshot,
    rows: Vec<Row>,
    started_millis: Option<i64>,
    transitions: usize,
}

impl Tracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The progress so far.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Every row so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// State transitions so far, as Step Functions counts them (states entered, retries).
    pub fn transitions(&self) -> usize {
        self.transitions
    }

    /// When the execution started (the clock's milliseconds), once it has.
    pub fn started_millis(&self) -> Option<i64> {
        self.started_millis
    }

    /// Takes in one event; returns the timeline row it produced, if any.
    pub fn on_event(&mut self, event: &Event) -> Option<Row> {
        let s = &mut self.snapshot;
        match &event.kind {
            EventKind::ExecutionStarted { .. } => {
                self.started_millis = Some(event.at_millis);
                None
            }
            EventKind::StateEntered { state, input, .. } => {
                self.transitions += 1;
                s.state.clone_from(state);
                s.waiting_until = None;
                s.document = Some(input.clone());
                if let Some(d) = deployment_of(input) {
                    s.deployment = Some(d);
                }
                None
            }
            EventKind::TaskScheduled { .. } => {
                s.in_task = true;
                s.waiting_until = None;
                None
            }
            EventKind::WaitStarted { millis, .. } => {
                s.waiting_until = Some(event.at_millis + millis);
                None
            }
            EventKind::TaskSucceeded { state, output, .. } => {
                s.in_task = false;
                let d = deployment_of(output)?;
                let shifted = d.step > s.deployment.as_ref().map_or(0, |p| p.step);
                s.deployment = Some(d.clone());
                if d.verdict.is_some() && state == "HealthCheck" {
                    s.last_verdict.clone_from(&d.verdict);
                }
                let (note, bad) = describe_success(state, &d, shifted);
                let row = self.row(
                    event.at_millis,
                    state,
                    &d,
                    note,
                    bad,
                    state == "HealthCheck",
                );
                Some(row)
            }
            EventKind::TaskFailed {
                state,
                error,
                cause,
                ..
            } => {
                s.in_task = false;
                let d = s.deployment.clone()?;
                let note = format!(
                    "{error}: {}",
                    one_line(&canary_core::errors::readable_cause(cause))
                );
                Some(self.row(event.at_millis, state, &d, note, true, false))
            }
            EventKind::ExecutionSucceeded { .. } | EventKind::ExecutionFailed { .. } => {
                s.finished = true;
                s.in_task = false;
                s.waiting_until = None;
                None
            }
            EventKind::RetryScheduled { .. } => {
                self.transitions += 1;
                None
            }
            EventKind::StateExited { .. } | EventKind::CatchMatched { .. } => None,
        }
    }

    fn row(
        &mut self,
        at_millis: i64,
        state: &str,
        d: &Deployment,
        note: String,
        bad: bool,
        with_verdict: bool,
    ) -> Row {
        let row = Row {
            at_millis,
            state: state.to_owned(),
            weight: d.weight,
            step: d.step,
            steps: d.schedule.len(),
            verdict: if with_verdict {
                d.verdict.clone()
            } else {
                None
            },
            bad,
            note,
        };
        self.rows.push(row.clone());
        row
    }
}

impl Observer for Tracker {
    fn on_event(&mut self, event: &Event) {
        let _ = Tracker::on_event(self, event);
    }
}

fn deployment_of(doc: &Value) -> Option<Deployment> {
    serde_json::from_value(doc.get("deployment")?.clone()).ok()
}

/// What a task's success means, in a few words, and whether it is bad news. `shifted`:
/// the task moved the canary to the next weight (deploy-canary's first shift,
/// health-check's shift after the check that ended a step, shift-weights).
fn describe_success(state: &str, d: &Deployment, shifted: bool) -> (String, bool) {
    let canary = d.canary_version;
    let at = format!(
        "v{canary} at {}% (step {}/{})",
        d.weight,
        d.step,
        d.schedule.len()
    );
    match state {
        "RenderTemplate" => match d.stable_version {
            Some(stable) => (
                format!("v{canary} rendered beside stable v{stable}; lock taken"),
                false,
            ),
            None => (
                format!("v{canary} rendered (first deployment); lock taken"),
                false,
            ),
        },
        "DeployCanary" | "CheckReadiness" if d.next == Next::WaitReady => {
            if state == "DeployCanary" {
                let keeps = match d.stable_version {
                    Some(s) => format!("v{s} keeps 100%"),
                    None => "not routed yet".to_owned(),
                };
                (format!("v{canary} applied; {keeps}"), false)
            } else {
                (format!("v{canary} not ready yet"), false)
            }
        }
        "CheckReadiness" | "DeployCanary" if shifted => (format!("v{canary} ready; {at}"), false),
        "CheckReadiness" | "DeployCanary" => (format!("v{canary} ready"), false),
        "ShiftWeights" => (at, false),
        "HealthCheck" => match &d.verdict {
            Some(v) => {
                let then = match d.next {
                    Next::Rollback => "roll back".to_owned(),
                    Next::Shift => "next step".to_owned(),
                    Next::Promote => "promote".to_owned(),
                    _ if shifted => at,
                    _ => match &d.gate {
                        Some(g) => format!(
                            "paused at {}, waiting for approval (canary approve); {} at {}",
                            g.gate,
                            g.on_timeout.verb(),
                            crate::format::utc(g.deadline)
                        ),
                        None => "check again".to_owned(),
                    },
                };
                let mut said = String::new();
                for a in d.actions.iter().filter(|a| a.kind != ActionKind::Paused) {
                    said.push_str(&crate::records::status::action_words(a));
                    said.push_str("; ");
                }
                (
                    format!("{said}{}: {} -> {then}", status_word(v.status), v.reason),
                    v.status != VerdictStatus::Healthy,
                )
            }
            None => ("checked".to_owned(), false),
        },
        "Cleanup" | "Rollback" => match &d.outcome {
            Some(o) => (o.reason.clone(), o.status == OutcomeStatus::RolledBack),
            None => ("done".to_owned(), false),
        },
        _ => (String::new(), false),
    }
}

/// `healthy`, `UNHEALTHY`, `hold`.
pub fn status_word(status: VerdictStatus) -> &'static str {
    match status {
        VerdictStatus::Healthy => "healthy",
        VerdictStatus::Unhealthy => "UNHEALTHY",
        VerdictStatus::Hold => "hold",
    }
}

fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    if line.chars().count() > 200 {
        let cut: String = line.chars().take(200).collect();
        format!("{cut}...")
    } else {
        line.to_owned()
    }
}

/// A tracker shared between the executor's observer and whoever watches the run.
#[derive(Debug, Clone, Default)]
pub struct SharedTracker(Arc<Mutex<Tracker>>);

impl SharedTracker {
    /// A new, empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tracker, locked.
    pub fn lock(&self) -> MutexGuard<'_, Tracker> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The progress display of `canary run`: an observer that updates the shared tracker
/// and shows the progress on standard error.
#[derive(Debug)]
pub struct ProgressDisplay {
    tracker: SharedTracker,
    bar: Option<ProgressBar>,
    clock: Arc<dyn Clock>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl ProgressDisplay {
    /// A display for a run on `clock`. On a terminal it draws a bar that refreshes the
    /// "next check in" countdown; elsewhere it prints one line per timeline row.
    pub fn new(tracker: SharedTracker, clock: Arc<dyn Clock>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos:>3}% {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        let ticker = bar.as_ref().map(|bar| {
            let bar = bar.clone();
            let tracker = tracker.clone();
            let clock = clock.clone();
            tokio::spawn(async move {
                loop {
                    let message = status_line(tracker.lock().snapshot(), clock.now_millis());
                    bar.set_message(message);
                    bar.tick();
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        });
        Self {
            tracker,
            bar,
            clock,
            ticker,
        }
    }

    /// Prints a line above the bar (or plainly).
    pub fn println(&self, line: &str) {
        self.printer().println(line);
    }

    /// A handle that prints above the bar from elsewhere (the Ctrl-C handler).
    pub fn printer(&self) -> Printer {
        Printer {
            bar: self.bar.clone(),
        }
    }

    /// Removes the bar.
    pub fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Observer for ProgressDisplay {
    fn on_event(&mut self, event: &Event) {
        let (row, started, snapshot) = {
            let mut t = self.tracker.lock();
            let row = t.on_event(event);
            (row, t.started_millis(), t.snapshot().clone())
        };
        if let Some(bar) = &self.bar {
            if let Some(d) = &snapshot.deployment {
                bar.set_position(u64::from(d.weight));
            }
            bar.set_message(status_line(&snapshot, self.clock.now_millis()));
        }
        if let Some(row) = row {
            let at = mmss(row.at_millis - started.unwrap_or(row.at_millis));
            self.println(&format!(
                "[{at}] {:<15} {:>3}%  {}",
                row.state, row.weight, row.note
            ));
        }
    }
}

/// Prints lines on standard error without breaking the progress bar.
#[derive(Debug, Clone, Default)]
pub struct Printer {
    bar: Option<ProgressBar>,
}

impl Printer {
    /// Prints `line` above the bar, or plainly when there is none.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

/// One line: state, weight, step n/N, next check in, last verdict.
pub fn status_line(s: &Snapshot, now_millis: i64) -> String {
    let mut parts = vec![s.state.clone()];
    if let Some(d) = &s.deployment {
        parts.push(format!(
            "v{} {}% step {}/{}",
            d.canary_version,
            d.weight,
            d.step,
            d.schedule.len()
        ));
    }
    if let Some(until) = s.waiting_until {
        let left = ((until - now_millis).max(0) + 999) / 1000;
        let what = if s.state == "WaitForReady" {
            "next readiness probe"
        } else if s.state == "WaitForCheck" {
            "next check"
        } else {
            "retry"
        };
        parts.push(format!("{what} in {left}s"));
    }
    if let Some(v) = &s.last_verdict {
        parts.push(format!(
            "last check: {} ({})",
            status_word(v.status),
            v.reason
        ));
    }
    parts.join(" | ")
}
