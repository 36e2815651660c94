//! The execution document: deploy.json plus one `deployment` object that the tasks fill
//! in as the state machine runs. Every task receives the whole document and returns it
//! updated (ResultPath `$`), so the state machine's Choice states only read
//! `$.deployment.next` and `$.deployment.wait_seconds`.
//!
//! The document stays small (a few kilobytes; Step Functions caps it at 256 KB): the
//! rendered manifest lives in S3, only its key is kept here, and only the last verdict.
//!
//! The decisions (what comes after a readiness probe, a shift, a check, a rollback) are
//! in `decide/`, one file each; this file holds the data and its constructor.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::spec::{DeploySpec, OnTimeout, TrafficProvider};
use crate::verdict::Verdict;

/// The key under which the tasks keep their state in the execution document.
pub const DEPLOYMENT_KEY: &str = "deployment";

pub use crate::timing::READY_POLL_SECONDS;

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
    /// The gate the deployment waits at, if it waits (`decide/gates.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateWait>,
    /// Set by `canary promote --full`: no gate pauses any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_gates: bool,
    /// Why the deployment rolls back when neither a verdict nor an error says it (a
    /// gate's timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_reason: Option<String>,
    /// What people and gates did during the last task (paused, approved, promoted,
    /// timed out, aborted), for whoever follows the execution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<OperatorAction>,
}

/// A gate the deployment waits at: its weight holds and the checks go on until a person
/// approves or the deadline passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateWait {
    /// The gate's name: `50%` or `promotion`.
    pub gate: String,
    /// The canary's weight while it waits.
    pub weight: u8,
    /// When the wait began (Unix seconds).
    pub since: i64,
    /// When the wait ends without an approval (Unix seconds).
    pub deadline: i64,
    /// What the deadline passing means.
    pub on_timeout: OnTimeout,
}

/// What happened at a gate or by a person's hand, for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// The deployment reached a gate and began to wait.
    Paused,
    /// A person passed the gate (`canary approve`).
    Approved,
    /// A person skipped the rest of the step (`canary promote`).
    Promoted,
    /// A person skipped every remaining step (`canary promote --full`).
    PromotedFull,
    /// Nobody approved before the gate's deadline.
    TimedOut,
    /// A person asked for a rollback (`canary abort`).
    Aborted,
}

/// One entry of a record's `actions`: who did what, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorAction {
    pub kind: ActionKind,
    /// Who: the person (from the request), or `deploy.json` for a gate's own events.
    pub by: String,
    /// Why, in their words (or what the gate did).
    pub reason: String,
    /// When it took effect (Unix seconds).
    pub at: i64,
    /// The gate it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    /// The canary's weight then.
    pub weight: u8,
}

/// The object whose weights shift traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

/// Everything render-template knows when a deployment starts: the versions it decided,
/// the route it found in the template, the lock it took and where it kept the manifest
/// and the record.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// The execution that owns this deployment (and the lock).
    pub execution: String,
    /// The version being deployed.
    pub canary_version: u32,
    /// The version serving traffic now; `None` on a first deployment.
    pub stable_version: Option<u32>,
    /// The stable version's image, for the record.
    pub stable_image: Option<String>,
    /// The traffic provider of the rendered template.
    pub provider: TrafficProvider,
    /// The route object that carries the weights.
    pub route: RouteRef,
    /// The lock token.
    pub lock_token: String,
    /// The S3 key of the rendered manifest.
    pub manifest_key: Option<String>,
    /// The S3 key of the deployment's record.
    pub record_key: Option<String>,
}

impl Deployment {
    /// A deployment that starts at `now`: the weights of the schedule (straight to 100
    /// on a first deployment), nothing applied yet, and `next = apply`.
    pub fn start(spec: &DeploySpec, start: Start, now: i64) -> Self {
        let first = start.stable_version.is_none();
        Self {
            execution: start.execution,
            canary_version: start.canary_version,
            stable_version: start.stable_version,
            stable_image: start.stable_image,
            provider: start.provider,
            route: start.route,
            schedule: crate::schedule::schedule(spec, first),
            step: 0,
            weight: 0,
            max_weight: 0,
            lock_token: start.lock_token,
            manifest_key: start.manifest_key,
            record_key: start.record_key,
            started_at: now,
            ready_deadline: spec.ready_deadline(now),
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
        }
    }

    /// True when there is no stable version: the new version goes straight to 100%.
    pub fn is_first(&self) -> bool {
        self.stable_version.is_none()
    }

    /// `<service>-<version>` of the canary.
    pub fn canary_name(&self, service: &str) -> String {
        crate::labels::versioned_name(service, self.canary_version)
    }
}

/// The error a Catch clause put in the document (`{"Error", "Cause"}`), with the cause
/// reduced to its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaughtError {
    /// The error name (ours, or one of Step Functions' `States.*`).
    pub error: String,
    /// What went wrong, as a person should read it.
    pub cause: String,
}

impl CaughtError {
    /// The caught error of a task input, if a Catch clause added one.
    pub fn of_document(value: &Value) -> Option<Self> {
        let e = value.get(ERROR_KEY)?;
        let text = |k: &str| {
            e.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Some(Self {
            error: text("Error"),
            cause: crate::errors::readable_cause(&text("Cause")),
        })
    }
}

/// Why an execution document could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The document is not a JSON object.
    #[error("the execution document must be a JSON object, got {got}")]
    NotAnObject {
        /// What it is instead (`an array`, `null`, ...).
        got: &'static str,
    },
    /// `deployment` does not hold a valid deployment state.
    #[error("field `{DEPLOYMENT_KEY}` is not a valid deployment state: {source}")]
    InvalidDeployment {
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The deployment state could not be serialized.
    #[error("field `{DEPLOYMENT_KEY}` could not be serialized: {source}")]
    Serialize {
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
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
    pub fn from_value(value: Value) -> Result<Self, DocumentError> {
        let Value::Object(mut spec) = value else {
            return Err(DocumentError::NotAnObject {
                got: crate::spec::json_kind(&value),
            });
        };
        let deployment = match spec.remove(DEPLOYMENT_KEY) {
            None | Some(Value::Null) => None,
            Some(raw) => Some(
                serde_json::from_value(raw)
                    .map_err(|source| DocumentError::InvalidDeployment { source })?,
            ),
        };
        // Fields that Catch clauses add (`error`) are not part of deploy.json.
        spec.remove(ERROR_KEY);
        Ok(Self { spec, deployment })
    }

    /// The document as the next state receives it.
    pub fn to_value(&self) -> Result<Value, DocumentError> {
        let mut map = self.spec.clone();
        if let Some(d) = &self.deployment {
            let d =
                serde_json::to_value(d).map_err(|source| DocumentError::Serialize { source })?;
            map.insert(DEPLOYMENT_KEY.into(), d);
        }
        Ok(Value::Object(map))
    }
}

/// The key where the state machine's Catch clauses put `{Error, Cause}`.
pub const ERROR_KEY: &str = "error";
