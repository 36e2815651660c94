//! The execution document: deploy.json plus one `deployment` object that the tasks fill
//! in as the state machine runs. Every task receives the whole document and returns it
//! updated (ResultPath `$`), so the state machine's Choice states only read
//! `$.deployment.next` and `$.deployment.wait_seconds`.
//!
//! The document stays small (a few kilobytes; Step Functions caps it at 256 KB): the
//! rendered manifest lives in S3, only its key is kept here, and only the last verdict.
//!
//! The decisions (what comes after a shift, a check, a readiness probe) are pure
//! functions here, so the state machine definition stays a thin loop and the maths is
//! tested without a cluster.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::spec::{DeploySpec, TrafficProvider};
use crate::verdict::{Verdict, VerdictStatus};

/// The key under which the tasks keep their state in the execution document.
pub const DEPLOYMENT_KEY: &str = "deployment";

/// How often the state machine polls a Deployment's readiness, in seconds.
pub const READY_POLL_SECONDS: u64 = 10;

/// What the state machine does after the current task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// deploy-canary applies the rendered objects (set by render-template).
    Apply,
    /// Wait `wait_seconds`, then ask deploy-canary again whether the new version is ready.
    WaitReady,
    /// Move to the next weight of the schedule now.
    Shift,
    /// Wait `wait_seconds`, then run a health check.
    Check,
    /// Promote: remove the old version, record success, release the lock.
    Promote,
    /// Roll back: all traffic to the stable version, remove the canary.
    Rollback,
    /// Finished (set by cleanup and rollback).
    Done,
}

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    Promoted,
    RolledBack,
}

/// The end of a deployment, as written to the record and shown to the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub status: OutcomeStatus,
    /// One sentence: why it ended this way.
    pub reason: String,
}

/// The state that the tasks keep in the execution document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    /// The execution that owns this deployment (and the lock).
    pub execution: String,
    /// The version being deployed (`<service>-<canary_version>`).
    pub canary_version: u32,
    /// The version serving traffic before this deployment; `None` on a first deployment.
    pub stable_version: Option<u32>,
    /// The stable version's image, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_image: Option<String>,
    /// The traffic provider, detected from the template or taken from deploy.json.
    pub provider: TrafficProvider,
    /// The kind and name of the route object that carries the weights.
    pub route: RouteRef,
    /// The canary weights to go through, ending at 100. `[100]` on a first deployment.
    pub schedule: Vec<u8>,
    /// How many entries of `schedule` have been applied (0 before the first shift).
    pub step: usize,
    /// The canary's current weight.
    pub weight: u8,
    /// The highest weight the canary reached.
    pub max_weight: u8,
    /// The lock token (an opaque value the lock's conditional writes compare against).
    pub lock_token: String,
    /// The S3 key of the rendered manifest of the canary version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_key: Option<String>,
    /// The S3 key of this deployment's record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_key: Option<String>,
    /// When render-template started the deployment (Unix seconds).
    pub started_at: i64,
    /// The deadline for the new Deployment to become ready (Unix seconds).
    pub ready_deadline: i64,
    /// When the current weight was applied (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<i64>,
    /// Health checks run so far.
    pub checks: u32,
    /// Consecutive checks that saw too little traffic and held (the `hold` no-data policy).
    pub holds: u32,
    /// The last verdict, with its numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// What the state machine does next.
    pub next: Next,
    /// Seconds for the next Wait state.
    pub wait_seconds: u64,
    /// Set when the deployment has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
}

/// The object whose weights shift traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

impl Deployment {
    /// True when there is no stable version: the new version goes straight to 100%.
    pub fn is_first(&self) -> bool {
        self.stable_version.is_none()
    }

    /// The weight the next shift applies, or `None` when the schedule is done.
    pub fn next_weight(&self) -> Option<u8> {
        self.schedule.get(self.step).copied()
    }

    /// After deploy-canary applied the objects: wait for readiness.
    pub fn after_apply(&mut self) {
        self.next = Next::WaitReady;
        self.wait_seconds = READY_POLL_SECONDS;
    }

    /// After a readiness probe. `ready` is whether the new Deployment is ready now.
    pub fn after_ready_probe(&mut self, ready: bool) {
        if ready {
            self.next = Next::Shift;
            self.wait_seconds = 0;
        } else {
            self.after_apply();
        }
    }

    /// After shift-weights applied `self.schedule[self.step]` at time `now`.
    pub fn after_shift(&mut self, spec: &DeploySpec, now: i64) {
        self.weight = self.next_weight().unwrap_or(100);
        self.max_weight = self.max_weight.max(self.weight);
        self.step += 1;
        self.step_started_at = Some(now);
        self.holds = 0;
        if self.is_first() {
            // Nothing to compare with and nothing to roll back to: a first deployment
            // is promoted once it is ready and routed.
            self.next = Next::Promote;
            self.wait_seconds = 0;
            return;
        }
        self.next = Next::Check;
        self.wait_seconds = spec.check_interval().min(self.step_duration(spec));
    }

    /// How long the canary stays at the current weight: `wait_time`, or `bake_time` at 100%.
    pub fn step_duration(&self, spec: &DeploySpec) -> u64 {
        if self.weight >= 100 {
            spec.bake_time()
        } else {
            spec.wait_time
        }
    }

    /// After a health check at time `now` with `verdict`.
    pub fn after_check(&mut self, spec: &DeploySpec, verdict: Verdict, now: i64) {
        self.checks += 1;
        let status = verdict.status;
        self.verdict = Some(verdict);
        match status {
            VerdictStatus::Unhealthy => {
                self.next = Next::Rollback;
                self.wait_seconds = 0;
                return;
            }
            VerdictStatus::Hold => {
                self.holds += 1;
                if self.holds > spec.health.max_holds {
                    // The verdict's reason already says why; the handler turns it into
                    // the rollback cause.
                    self.next = Next::Rollback;
                    self.wait_seconds = 0;
                    return;
                }
            }
            VerdictStatus::Healthy => self.holds = 0,
        }
        let elapsed = now
            .saturating_sub(self.step_started_at.unwrap_or(now))
            .max(0) as u64;
        let duration = self.step_duration(spec);
        if status == VerdictStatus::Healthy && elapsed >= duration {
            self.next = if self.weight >= 100 {
                Next::Promote
            } else {
                Next::Shift
            };
            self.wait_seconds = 0;
        } else {
            self.next = Next::Check;
            let left = duration.saturating_sub(elapsed).max(1);
            self.wait_seconds = spec.check_interval().min(left).max(1);
        }
    }
}

/// The execution document: deploy.json's fields plus `deployment`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionDocument {
    /// deploy.json as the pipeline gave it (every field, untouched).
    pub spec: Map<String, Value>,
    /// The tasks' state; `None` before render-template ran.
    pub deployment: Option<Deployment>,
}

impl ExecutionDocument {
    /// Splits a state machine input or task result into deploy.json and `deployment`.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(mut spec) = value else {
            return Err(format!(
                "the execution document must be a JSON object, got {}",
                kind_of(&value)
            ));
        };
        let deployment = match spec.remove(DEPLOYMENT_KEY) {
            None | Some(Value::Null) => None,
            Some(raw) => Some(serde_json::from_value(raw).map_err(|e| {
                format!("field `{DEPLOYMENT_KEY}` is not a valid deployment state: {e}")
            })?),
        };
        // Fields that Catch clauses add (`error`) are not part of deploy.json.
        spec.remove(ERROR_KEY);
        Ok(Self { spec, deployment })
    }

    /// The document as the next state receives it.
    pub fn to_value(&self) -> Value {
        let mut map = self.spec.clone();
        if let Some(d) = &self.deployment {
            // A Deployment always serializes (plain data, string keys).
            map.insert(
                DEPLOYMENT_KEY.into(),
                serde_json::to_value(d).unwrap_or(Value::Null),
            );
        }
        Value::Object(map)
    }
}

/// The key where the state machine's Catch clauses put `{Error, Cause}`.
pub const ERROR_KEY: &str = "error";

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
