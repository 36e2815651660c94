//! Exact timelines from Step Functions (`--state-machine`): a deployment's execution
//! history (GetExecutionHistory) read into [`Row`]s. Every task returns the whole
//! execution document, so each `TaskStateExited` output's `deployment` gives the weight,
//! the step and the verdict at that moment; a `WaitStateEntered` gives when the next
//! health check is due. Ended executions are read once and kept.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use canary_core::{Deployment, VerdictStatus};
use canary_store::ServiceRef;
use serde_json::Value;

use super::model::{TimedRows, TimelineSource};
use crate::error::CliError;
use crate::format::verdict_numbers;
use crate::progress::Row;

/// The executions of one state machine, read from Step Functions.
#[derive(Debug)]
pub struct StepFunctionsTimelines {
    client: Client,
    /// `arn:aws:states:<region>:<account>:execution:<machine>:`.
    execution_prefix: String,
    ended: Mutex<HashMap<String, TimedRows>>,
}

impl StepFunctionsTimelines {
    /// The timelines of `state_machine_arn`'s executions; a malformed ARN is refused
    /// naming the flag.
    pub fn new(client: Client, state_machine_arn: &str) -> Result<Self, CliError> {
        Ok(Self {
            client,
            execution_prefix: execution_prefix(state_machine_arn)?,
            ended: Mutex::new(HashMap::new()),
        })
    }

    async fn history(&self, arn: &str) -> Result<Vec<HistoryEvent>, String> {
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .get_execution_history()
                .execution_arn(arn)
                .max_results(1000)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws_sdk_sfn::error::DisplayErrorContext(&e).to_string())?;
            events.extend(page.events().iter().cloned());
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(events)
    }
}

/// `arn:aws:states:r:a:stateMachine:NAME` → `arn:aws:states:r:a:execution:NAME:`.
pub fn execution_prefix(state_machine_arn: &str) -> Result<String, CliError> {
    let parts: Vec<&str> = state_machine_arn.split(':').collect();
    match parts.as_slice() {
        [
            "arn",
            partition,
            "states",
            region,
            account,
            "stateMachine",
            name,
        ] if !name.is_empty() => Ok(format!(
            "arn:{partition}:states:{region}:{account}:execution:{name}:"
        )),
        _ => Err(CliError::Usage(format!(
            "invalid --state-machine `{state_machine_arn}`: expected `arn:aws:states:<region>:<account>:stateMachine:<name>`"
        ))),
    }
}

#[async_trait::async_trait]
impl TimelineSource for StepFunctionsTimelines {
    async fn rows(&self, _svc: &ServiceRef, _version: u32, execution: &str) -> Option<TimedRows> {
        if !execution.starts_with(&self.execution_prefix) {
            return None;
        }
        if let Some(done) = self.ended.lock().ok()?.get(execution) {
            return Some(done.clone());
        }
        let events = match self.history(execution).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(execution, error = %e, "cannot read the execution history");
                return None;
            }
        };
        let (rows, ended) = rows_of(&events);
        if ended && let Ok(mut m) = self.ended.lock() {
            m.insert(execution.to_owned(), rows.clone());
        }
        Some(rows)
    }
}

/// The rows of an execution's history, and whether it has ended.
pub fn rows_of(events: &[HistoryEvent]) -> (TimedRows, bool) {
    let mut out = TimedRows::default();
    let mut ended = false;
    let mut last_step = 0;
    for e in events {
        let at_millis = e.timestamp().to_millis().unwrap_or(0);
        match e.r#type() {
            HistoryEventType::TaskStateExited => {
                let Some(d) = e.state_exited_event_details() else {
                    continue;
                };
                let Some(dep) = d.output().and_then(deployment_of) else {
                    continue;
                };
                let state = d.name().to_owned();
                let check = state == "HealthCheck";
                let verdict = if check { dep.verdict.clone() } else { None };
                let (note, bad) = match (&dep.outcome, &verdict) {
                    (Some(o), _) => (o.reason.clone(), dep.weight == 0),
                    (None, Some(v)) => (
                        format!("{} — {}", verdict_numbers(v), v.reason),
                        v.status == VerdictStatus::Unhealthy,
                    ),
                    (None, None) if dep.step > last_step => (
                        format!(
                            "v{} at {}% (step {}/{})",
                            dep.canary_version,
                            dep.weight,
                            dep.step,
                            dep.schedule.len()
                        ),
                        false,
                    ),
                    (None, None) => (format!("{state} done"), false),
                };
                last_step = dep.step;
                out.next_check = None;
                out.rows.push(Row {
                    at_millis,
                    state,
                    weight: dep.weight,
                    step: dep.step,
                    steps: dep.schedule.len(),
                    verdict,
                    bad,
                    note,
                });
            }
            HistoryEventType::WaitStateEntered => {
                let wait = e
                    .state_entered_event_details()
                    .and_then(|d| d.input())
                    .and_then(deployment_of)
                    .map(|d| d.wait_seconds);
                if let Some(w) = wait {
                    let secs = at_millis / 1000;
                    out.next_check = Some(secs + i64::try_from(w).unwrap_or(0));
                }
            }
            HistoryEventType::ExecutionSucceeded
            | HistoryEventType::ExecutionFailed
            | HistoryEventType::ExecutionAborted
            | HistoryEventType::ExecutionTimedOut => {
                ended = true;
                out.next_check = None;
            }
            _ => {}
        }
    }
    (out, ended)
}

fn deployment_of(doc: &str) -> Option<Deployment> {
    let v: Value = serde_json::from_str(doc).ok()?;
    serde_json::from_value(v.get("deployment")?.clone()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_machine_arn_gives_its_executions_prefix_and_a_bad_one_names_the_flag() {
        let p = execution_prefix("arn:aws:states:us-east-1:123456789012:stateMachine:canary")
            .map_err(|e| e.to_string());
        assert_eq!(
            p,
            Ok("arn:aws:states:us-east-1:123456789012:execution:canary:".to_owned())
        );
        let bad = execution_prefix("canary").map_err(|e| e.to_string());
        assert!(
            matches!(&bad, Err(m) if m.contains("--state-machine")),
            "{bad:?}"
        );
    }
}
