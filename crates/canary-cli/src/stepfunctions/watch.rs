//! Following one Step Functions execution until it ends (`canary watch`, and
//! `canary start --watch`).
//!
//! `watch` polls DescribeExecution and GetExecutionHistory. The history is read newest
//! first (`reverseOrder`) and paging stops at the first event already seen, so each poll
//! costs one call however long the execution has run; the new events are then replayed
//! oldest first. Every task returns the whole execution document, so the `deployment`
//! object in a state's output (TaskStateExited, LambdaFunctionSucceeded, ...) gives the
//! canary's weight, its step of the schedule and the last verdict.
//!
//! On a terminal the progress is a live indicatif line (state, weight, step, last
//! verdict) with the notable events printed above it; otherwise each event is one line on
//! standard output. The execution has ended when DescribeExecution says so, or when the
//! history holds its final event (moto without `execute_state_machine` answers RUNNING
//! forever beside a canned history that ends in ExecutionSucceeded).
//!
//! Exit codes: 0 the execution succeeded (promoted), 1 it failed, timed out or was
//! aborted, 2 bad input (checked before any AWS call).

use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use canary_core::Verdict;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::sfn_error;
use crate::error::CliError;
use crate::format::{duration, shorten, time_of_day, verdict_numbers};

/// How much of a failed execution's cause is printed (the rollback reason is short; a
/// States.Runtime cause can quote the whole document).
const MAX_CAUSE: usize = 1000;
/// How much of a task failure's cause is printed while watching.
const MAX_EVENT_CAUSE: usize = 300;

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
struct End {
    status: String,
    error: Option<String>,
    cause: Option<String>,
    output: Option<String>,
    stopped_at: Option<i64>,
}

/// Follows the execution `arn`, polling every `interval`, until it ends; exit 0 when it
/// succeeded, 1 otherwise.
pub(super) async fn follow(
    client: &Client,
    arn: &str,
    interval: Duration,
) -> Result<ExitCode, CliError> {
    let bar = progress_bar();
    let mut progress = Progress::default();
    let mut last_seen = 0_i64;
    let started_at;
    let end = loop {
        let desc = client
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .map_err(|e| sfn_error("DescribeExecution", e))?;
        let events = new_events(client, arn, &mut last_seen).await?;
        let mut from_history = None;
        for e in &events {
            for line in progress.apply(e) {
                say(&bar, &line);
            }
            if let Some(end) = e.end() {
                from_history = Some(end);
            }
        }
        bar.set_message(progress.summary());
        if let Some(w) = progress.weight {
            bar.set_position(u64::from(w));
        }
        let status = desc.status();
        if *status != ExecutionStatus::Running && *status != ExecutionStatus::PendingRedrive {
            started_at = desc.start_date().secs();
            break End {
                status: status.as_str().to_owned(),
                error: desc.error().map(str::to_owned),
                cause: desc.cause().map(str::to_owned),
                output: desc.output().map(str::to_owned),
                stopped_at: desc.stop_date().map(|d| d.secs()),
            };
        }
        if let Some(end) = from_history {
            started_at = progress.started_at.unwrap_or(desc.start_date().secs());
            break end;
        }
        tokio::time::sleep(interval).await;
    };
    bar.finish_and_clear();
    let took = end
        .stopped_at
        .map(|t| format!(" after {}", duration(t.saturating_sub(started_at))))
        .unwrap_or_default();
    println!("{}{took}: {arn}", end.status);
    if let Some(reason) = end
        .output
        .as_deref()
        .and_then(|o| serde_json::from_str::<Value>(o).ok())
        .and_then(|v| {
            v.pointer("/deployment/outcome/reason")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    {
        println!("  {reason}");
    }
    if let Some(error) = &end.error {
        println!("  error: {error}");
    }
    if let Some(cause) = &end.cause {
        let cause = canary_core::errors::readable_cause(cause);
        println!("  cause: {}", shorten(&cause, MAX_CAUSE));
    }
    Ok(if end.status == ExecutionStatus::Succeeded.as_str() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The events after `last_seen`, oldest first; moves `last_seen` on.
async fn new_events(
    client: &Client,
    arn: &str,
    last_seen: &mut i64,
) -> Result<Vec<Event>, CliError> {
    let mut out: Vec<Event> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .get_execution_history()
            .execution_arn(arn)
            .reverse_order(true)
            .max_results(100)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sfn_error("GetExecutionHistory", e))?;
        let mut reached_seen = false;
        for e in page.events() {
            if e.id() > *last_seen {
                out.push(Event::from_sdk(e));
            } else {
                reached_seen = true;
            }
        }
        match page.next_token() {
            Some(t) if !reached_seen && !t.is_empty() => token = Some(t.to_owned()),
            _ => break,
        }
    }
    out.sort_by_key(|e| e.id);
    out.dedup_by_key(|e| e.id);
    if let Some(last) = out.last() {
        *last_seen = last.id;
    }
    Ok(out)
}

/// The parts of a history event the display uses.
#[derive(Debug, Clone, Default, PartialEq)]
struct Event {
    id: i64,
    /// Unix seconds.
    at: i64,
    /// The event type (`TaskStateEntered`, `LambdaFunctionFailed`, ...).
    kind: String,
    /// The state's name (entered / exited events).
    state: Option<String>,
    /// A state's input (entered events).
    input: Option<String>,
    /// A state's or a function's output.
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

impl Event {
    fn from_sdk(e: &HistoryEvent) -> Self {
        let mut ev = Self {
            id: e.id(),
            at: e.timestamp().secs(),
            kind: e.r#type().as_str().to_owned(),
            ..Self::default()
        };
        if let Some(d) = e.state_entered_event_details() {
            ev.state = Some(d.name().to_owned());
            ev.input = d.input().map(str::to_owned);
        }
        if let Some(d) = e.state_exited_event_details() {
            ev.state = Some(d.name().to_owned());
            ev.output = d.output().map(str::to_owned);
        }
        if let Some(d) = e.lambda_function_succeeded_event_details() {
            ev.output = d.output().map(str::to_owned);
        }
        if let Some(d) = e.task_succeeded_event_details() {
            ev.output = d.output().map(str::to_owned);
        }
        if let Some(d) = e.execution_succeeded_event_details() {
            ev.output = d.output().map(str::to_owned);
        }
        let failure = [
            e.lambda_function_failed_event_details()
                .map(|d| (d.error(), d.cause())),
            e.lambda_function_timed_out_event_details()
                .map(|d| (d.error(), d.cause())),
            e.lambda_function_start_failed_event_details()
                .map(|d| (d.error(), d.cause())),
            e.lambda_function_schedule_failed_event_details()
                .map(|d| (d.error(), d.cause())),
            e.task_failed_event_details()
                .map(|d| (d.error(), d.cause())),
            e.task_timed_out_event_details()
                .map(|d| (d.error(), d.cause())),
            e.execution_failed_event_details()
                .map(|d| (d.error(), d.cause())),
            e.execution_aborted_event_details()
                .map(|d| (d.error(), d.cause())),
            e.execution_timed_out_event_details()
                .map(|d| (d.error(), d.cause())),
        ]
        .into_iter()
        .flatten()
        .next();
        if let Some((error, cause)) = failure {
            ev.error = error.map(str::to_owned);
            ev.cause = cause.map(str::to_owned);
        }
        ev
    }

    /// The execution's end, when this is its final event.
    fn end(&self) -> Option<End> {
        let status = match self.kind.as_str() {
            "ExecutionSucceeded" => "SUCCEEDED",
            "ExecutionFailed" => "FAILED",
            "ExecutionAborted" => "ABORTED",
            "ExecutionTimedOut" => "TIMED_OUT",
            _ => return None,
        };
        Some(End {
            status: status.to_owned(),
            error: self.error.clone(),
            cause: self.cause.clone(),
            output: self.output.clone(),
            stopped_at: Some(self.at),
        })
    }
}

/// What the display knows about the deployment so far.
#[derive(Debug, Clone, Default, PartialEq)]
struct Progress {
    /// When the ExecutionStarted event happened, Unix seconds.
    started_at: Option<i64>,
    state: Option<String>,
    canary_version: Option<u64>,
    stable_version: Option<u64>,
    weight: Option<u8>,
    step: Option<u64>,
    steps: Option<usize>,
    verdict: Option<Verdict>,
    /// The gate the deployment waits at, as last seen.
    gate: Option<canary_core::GateWait>,
}

impl Progress {
    /// Takes in one event; returns the lines worth printing.
    fn apply(&mut self, e: &Event) -> Vec<String> {
        let at = time_of_day(e.at);
        let mut lines = Vec::new();
        if e.kind == "ExecutionStarted" {
            self.started_at = Some(e.at);
            lines.push(format!("{at}  execution started"));
        }
        if e.kind.ends_with("StateEntered") {
            self.state.clone_from(&e.state);
            if let Some(name) = &e.state
                && e.kind != "ChoiceStateEntered"
            {
                let wait = (e.kind == "WaitStateEntered")
                    .then(|| {
                        parse(e.input.as_deref())
                            .and_then(|v| v.pointer("/deployment/wait_seconds")?.as_u64())
                    })
                    .flatten()
                    .map(|s| format!(" ({s} s)"))
                    .unwrap_or_default();
                lines.push(format!("{at}  {name}{wait}"));
            }
        }
        if let Some(doc) = parse(e.output.as_deref())
            && let Some(d) = doc.get("deployment")
        {
            lines.extend(self.take_document(d, &at));
        }
        if !e.kind.starts_with("Execution")
            && (e.kind.ends_with("Failed") || e.kind.ends_with("TimedOut"))
        {
            lines.push(format!(
                "{at}  {}: {}: {}",
                e.kind,
                e.error.as_deref().unwrap_or("(no error name)"),
                shorten(
                    &canary_core::errors::readable_cause(
                        e.cause.as_deref().unwrap_or("(no cause)")
                    ),
                    MAX_EVENT_CAUSE
                )
            ));
        }
        lines
    }

    fn take_document(&mut self, d: &Value, at: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let canary = d.get("canary_version").and_then(Value::as_u64);
        if canary.is_some() && canary != self.canary_version {
            self.canary_version = canary;
            self.stable_version = d.get("stable_version").and_then(Value::as_u64);
            let schedule: Vec<String> = d
                .get("schedule")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Value::to_string).collect())
                .unwrap_or_default();
            lines.push(format!(
                "{at}  version {} {}, weights {}",
                canary.unwrap_or(0),
                match self.stable_version {
                    Some(s) => format!("beside stable version {s}"),
                    None => "(first deployment)".to_owned(),
                },
                if schedule.is_empty() {
                    "?".to_owned()
                } else {
                    schedule.join(", ")
                }
            ));
        }
        if let Some(n) = d.get("schedule").and_then(Value::as_array) {
            self.steps = Some(n.len());
        }
        self.step = d.get("step").and_then(Value::as_u64).or(self.step);
        let weight = d
            .get("weight")
            .and_then(Value::as_u64)
            .and_then(|w| u8::try_from(w).ok());
        if weight.is_some() && weight != self.weight {
            self.weight = weight;
            lines.push(format!(
                "{at}  canary at {}%{}",
                weight.unwrap_or(0),
                self.step_text()
            ));
        }
        let verdict = d
            .get("verdict")
            .and_then(|v| serde_json::from_value::<Verdict>(v.clone()).ok());
        if verdict.is_some() && verdict != self.verdict {
            if let Some(v) = &verdict {
                lines.push(format!("{at}  verdict {}", verdict_numbers(v)));
                lines.push(format!("{at}    {}", v.reason));
            }
            self.verdict = verdict;
        }
        let actions: Vec<canary_core::OperatorAction> = d
            .get("actions")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default();
        for a in actions
            .iter()
            .filter(|a| a.kind != canary_core::ActionKind::Paused)
        {
            lines.push(format!("{at}  {}", crate::records::status::action_words(a)));
        }
        let gate = d
            .get("gate")
            .and_then(|g| serde_json::from_value::<canary_core::GateWait>(g.clone()).ok());
        if gate.is_some()
            && gate != self.gate
            && let Some(g) = &gate
        {
            lines.push(format!(
                "{at}  {} (canary approve passes it)",
                crate::records::gates::gate_line(g, g.since)
            ));
        }
        self.gate = gate;
        lines
    }

    fn step_text(&self) -> String {
        match (self.step, self.steps) {
            (Some(s), Some(n)) => format!(" (step {s} of {n})"),
            _ => String::new(),
        }
    }

    /// One line for the live display.
    fn summary(&self) -> String {
        let mut parts = vec![self.state.clone().unwrap_or_else(|| "starting".into())];
        if let Some(v) = self.canary_version {
            parts.push(format!(
                "v{v} at {}%{}",
                self.weight.unwrap_or(0),
                self.step_text()
            ));
        }
        if let Some(v) = &self.verdict {
            parts.push(format!("last verdict {}", verdict_numbers(v)));
        }
        if let Some(g) = &self.gate {
            parts.push(format!("waiting for approval at {}", g.gate));
        }
        parts.join(" · ")
    }
}

fn parse(text: Option<&str>) -> Option<Value> {
    serde_json::from_str(text?).ok()
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(100);
    let style = ProgressStyle::with_template(
        "{spinner} {elapsed_precise} [{bar:20}] {pos:>3}%  {wide_msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    if !bar.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(120));
    }
    bar
}

/// Prints above the live display, or plainly when there is none (not a terminal).
fn say(bar: &ProgressBar, line: &str) {
    if bar.is_hidden() {
        println!("{line}");
    } else {
        bar.println(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(id: i64, output: serde_json::Value) -> Event {
        Event {
            id,
            at: 1_767_225_600,
            kind: "TaskStateExited".into(),
            state: Some("HealthCheck".into()),
            output: Some(output.to_string()),
            ..Event::default()
        }
    }

    #[test]
    fn the_display_follows_weight_step_and_verdict_from_the_document() {
        let mut p = Progress::default();
        let lines = p.apply(&exited(
            5,
            serde_json::json!({"deployment": {"canary_version": 4, "stable_version": 3,
                "schedule": [10, 50, 100], "step": 1, "weight": 10}}),
        ));
        assert!(lines[0].contains("version 4 beside stable version 3, weights 10, 50, 100"));
        assert!(lines[1].contains("canary at 10% (step 1 of 3)"));
        let lines = p.apply(&exited(
            9,
            serde_json::json!({"deployment": {"canary_version": 4, "schedule": [10, 50, 100],
                "step": 1, "weight": 10, "verdict": {"status": "unhealthy", "errors": 12.0,
                "window_seconds": 600, "datapoints": 4, "reason": "12 errors: too many"}}}),
        ));
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("verdict unhealthy: 12 errors, window 600 s, 4 datapoints"));
        assert!(p.summary().contains("v4 at 10% (step 1 of 3)"));
    }

    #[test]
    fn a_gate_is_shown_once_when_reached_and_an_approval_when_it_happens() {
        let mut p = Progress::default();
        let doc = |gate: serde_json::Value, actions: serde_json::Value| {
            serde_json::json!({"deployment": {"canary_version": 4, "stable_version": 3,
                "schedule": [50, 100], "step": 1, "weight": 50, "gate": gate, "actions": actions}})
        };
        let gate = serde_json::json!({"gate": "50%", "weight": 50, "since": 1_767_225_600,
            "deadline": 1_767_229_200, "on_timeout": "rollback"});
        let lines = p.apply(&exited(5, doc(gate.clone(), serde_json::json!([]))));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("paused at 50%, waiting for approval since")
                    && l.contains("rolls back at")),
            "{lines:?}"
        );
        assert!(p.summary().contains("waiting for approval at 50%"));
        let lines = p.apply(&exited(7, doc(gate, serde_json::json!([]))));
        assert!(
            lines.iter().all(|l| !l.contains("paused")),
            "said once: {lines:?}"
        );
        let approved = serde_json::json!([{"kind": "approved", "by": "ana", "reason": "fine",
            "at": 1_767_226_000, "gate": "50%", "weight": 50}]);
        let lines = p.apply(&exited(9, doc(serde_json::Value::Null, approved)));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("approved by ana at 50%: fine")),
            "{lines:?}"
        );
        assert!(!p.summary().contains("waiting"));
    }

    #[test]
    fn task_failures_are_shown_with_their_error_and_cause() {
        let mut p = Progress::default();
        let lines = p.apply(&Event {
            id: 3,
            kind: "LambdaFunctionFailed".into(),
            error: Some("KubeTransient".into()),
            cause: Some("503 from the API server".into()),
            ..Event::default()
        });
        assert!(lines[0].ends_with("LambdaFunctionFailed: KubeTransient: 503 from the API server"));
    }

    #[test]
    fn only_final_events_end_the_watch() {
        let failed = Event {
            kind: "ExecutionFailed".into(),
            error: Some("RolledBack".into()),
            ..Event::default()
        };
        assert_eq!(failed.end().map(|e| e.status), Some("FAILED".to_owned()));
        let entered = Event {
            kind: "TaskStateEntered".into(),
            ..Event::default()
        };
        assert_eq!(entered.end(), None);
    }
}
