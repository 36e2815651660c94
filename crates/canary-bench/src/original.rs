//! The original design as a model, for the comparisons that cannot run its code:
//!
//! - its state machine (`bench/baseline/original-flow.asl.json`, re-created from the
//!   published structure) run by the same local executor as ours, with model functions
//!   that only move the percentage and answer the health question, to count its state
//!   transitions and Lambda invocations per deployment;
//! - its exact detection rule for the reaction time: a health check only after each
//!   `wait_time` (never after the shift to 100%), reading the sum of the per-minute 5xx
//!   datapoints of the last `failure_threshold_time` seconds, with the same publication
//!   delay as our benchmark's metrics source.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use canary_core::clock::ManualClock;
use canary_sfn::{Executor, NoopObserver, TaskError, TaskInvoker};
use serde::Serialize;
use serde_json::{Value, json};

use crate::delayed::PERIOD_SECS;

/// The re-created definition of the original state machine.
pub const ORIGINAL_DEFINITION: &str =
    include_str!("../../../bench/baseline/original-flow.asl.json");

/// The model of the original's five Lambda functions: counts the calls, moves the
/// percentage by `percentage_step` (as its bash function did), and answers "healthy"
/// except at the check numbered `unhealthy_at` (1-based), if any.
#[derive(Debug)]
pub struct OriginalModel {
    unhealthy_at: Option<u32>,
    calls: Mutex<Vec<String>>,
}

impl OriginalModel {
    /// A model whose health check fails at check `unhealthy_at` (never with `None`).
    pub fn new(unhealthy_at: Option<u32>) -> Self {
        Self {
            unhealthy_at,
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Calls per function name (`check-version`, `deploy-and-switch`, ...).
    pub fn call_counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        if let Ok(calls) = self.calls.lock() {
            for c in calls.iter() {
                *out.entry(c.clone()).or_insert(0) += 1;
            }
        }
        out
    }
}

#[async_trait]
impl TaskInvoker for OriginalModel {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let name = resource.trim_start_matches("original:").to_owned();
        let checks_so_far = {
            let mut calls = self
                .calls
                .lock()
                .map_err(|_| TaskError::new("States.TaskFailed", "model state poisoned"))?;
            calls.push(name.clone());
            calls.iter().filter(|c| *c == "gather-health").count() as u32
        };
        match name.as_str() {
            "check-version" => Ok(json!({"new_version": 2, "current_percentage": 0})),
            "deploy-and-switch" => {
                let step = input["percentage_step"].as_u64().unwrap_or(100);
                let now = input["deployment"]["current_percentage"]
                    .as_u64()
                    .unwrap_or(0);
                Ok(json!((now + step).min(100)))
            }
            "gather-health" => Ok(json!(self.unhealthy_at != Some(checks_so_far))),
            "remove-or-rollback" => Ok(json!(true)),
            "update-version" => Ok(json!({})),
            other => Err(TaskError::new(
                "States.TaskFailed",
                format!("no model function `{other}`"),
            )),
        }
    }
}

/// One run of the original's flow model.
#[derive(Debug, Clone, Serialize)]
pub struct OriginalRun {
    /// `healthy` or `unhealthy at check N`.
    pub case: String,
    /// Whether the execution succeeded.
    pub succeeded: bool,
    /// State transitions, as Step Functions bills them.
    pub transitions: usize,
    /// Lambda invocations per model function.
    pub invocations: BTreeMap<String, usize>,
    /// Virtual seconds from start to end.
    pub duration_secs: i64,
}

/// Runs the original's flow for a deploy.json (`percentage_step`, `wait_time`).
pub async fn run_flow(
    deploy: &Value,
    unhealthy_at: Option<u32>,
) -> Result<OriginalRun, canary_sfn::DefinitionError> {
    let executor = Executor::from_json(ORIGINAL_DEFINITION)?.with_name("original");
    let model = OriginalModel::new(unhealthy_at);
    let clock = ManualClock::starting_at(0);
    let run = executor
        .run(deploy.clone(), &model, &clock, &mut NoopObserver)
        .await;
    Ok(OriginalRun {
        case: unhealthy_at.map_or_else(
            || "healthy".to_owned(),
            |n| format!("unhealthy at check {n}"),
        ),
        succeeded: run.succeeded(),
        transitions: run.transitions,
        invocations: model.call_counts(),
        duration_secs: run.duration_millis / 1000,
    })
}

/// The original's timeline: the weight shifts at `t0 + k * wait_time` (k = 0..steps-1)
/// and checks at `t0 + k * wait_time` for k = 1..steps-1 (none after the shift to
/// 100%). Returns the seconds from `onset_secs` until the check that sees the error
/// rolls back, or `None` when no check sees it (the faulty version is promoted).
///
/// A check at `c` reads the minutes from `c - window_secs` (rounded down to the minute)
/// that were published by `c` (ended at least `delay_secs` before `c`); the error shows
/// in every minute from the one holding the onset.
pub fn original_reaction(
    t0_secs: i64,
    steps: u32,
    wait_secs: i64,
    window_secs: i64,
    delay_secs: i64,
    onset_secs: i64,
) -> Option<i64> {
    let onset_minute = onset_secs.div_euclid(PERIOD_SECS) * PERIOD_SECS;
    (1..i64::from(steps))
        .map(|k| t0_secs + k * wait_secs)
        .find(|&c| {
            let start = (c - window_secs).div_euclid(PERIOD_SECS) * PERIOD_SECS;
            let published = (c - delay_secs).div_euclid(PERIOD_SECS) * PERIOD_SECS;
            onset_secs < c && published >= onset_minute + PERIOD_SECS && start <= onset_minute
        })
        .map(|c| c - onset_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_seen_by_the_first_check_after_its_minute_is_published() {
        // t0 on a minute; error at t0 + 5 s (minute t0) is published at t0 + 120 s,
        // so the check at t0 + 60 misses it and the one at t0 + 120 sees it.
        assert_eq!(original_reaction(600, 10, 60, 300, 60, 605), Some(115));
    }

    #[test]
    fn an_error_after_the_last_check_is_never_seen() {
        // The last check is at t0 + 9 * 60 = 1140; an error at 1100 is published at 1200.
        assert_eq!(original_reaction(600, 10, 60, 300, 60, 1_100), None);
    }

    #[tokio::test]
    async fn the_original_flow_for_yelb_appserver_has_fifty_three_transitions() {
        let deploy = json!({"percentage_step": 10, "wait_time": 60});
        let run = run_flow(&deploy, None).await.expect("definition loads");
        assert!(run.succeeded);
        assert_eq!(run.transitions, 53);
        assert_eq!(run.invocations.get("deploy-and-switch"), Some(&10));
        assert_eq!(run.invocations.get("gather-health"), Some(&9));
    }
}
