//! deploy.json: the contract a microservice's pipeline hands to the state machine.
//!
//! Every field of the original design keeps its name, meaning and default. New fields
//! are optional. Parsing reports every problem at once, each naming the field and
//! quoting the value, and rejects unknown fields with the nearest known name.
//!
//! This file holds the types; the field rules are in `parse.rs` (the top-level fields)
//! and `health.rs` (the health-check fields), read through `reader.rs`; the list of
//! fields and the "did you mean" matching in `fields.rs`; the errors in `error.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod error;
mod fields;
mod gates;
mod health;
mod metrics;
mod parse;
mod prometheus;
mod reader;

pub use error::{FieldError, ValidationErrors};
pub use fields::{FIELDS, near_field};
pub use gates::{
    DEFAULT_GATE_TIMEOUT, GateAt, GateSpec, MAX_GATE_TIMEOUT, MAX_GATES, MIN_GATE_TIMEOUT,
    OnTimeout,
};
pub use metrics::{
    LatencyRule, LatticeSpec, MetricsSpec, PRESETS, PROMQL_PLACEHOLDERS, PromQueries,
    PrometheusAuth, PrometheusSpec, SourceSpec, aps_region, fill_promql, parse_metrics_section,
};
pub(crate) use reader::kind as json_kind;

/// The CloudWatch namespace of the original design's metric filters.
pub const DEFAULT_METRIC_NAMESPACE: &str = "EnvoyPrometheus/ResponseCode";
/// The original's default for `failure_threshold_time`, in seconds.
pub const DEFAULT_FAILURE_THRESHOLD_TIME: u64 = 600;
/// Default time for the new Deployment to become ready, in seconds.
pub const DEFAULT_READY_TIMEOUT: u64 = 600;
/// Default time the route controller has to accept a route write, in seconds.
pub const DEFAULT_ROUTE_CONFIRM_TIMEOUT: u64 = 60;
/// The longest `route_confirm_timeout`: the wait happens inside the task that wrote the
/// route, after up to 60 s of watching or checking (the functions that write routes time
/// out at 120-180 s, cloudformation/shared.yaml).
pub const MAX_ROUTE_CONFIRM_TIMEOUT: u64 = 90;
/// Default number of consecutive `hold` verdicts before the canary is rolled back.
pub const DEFAULT_MAX_HOLDS: u32 = 3;
/// The longest wait, window or bake this tool accepts: one day, in seconds.
pub const MAX_SECONDS: u64 = 86_400;
/// The highest version number that names are checked to fit with.
pub const MAX_VERSION: u32 = 99_999;
/// The largest `failure_threshold_value`, and its value when the canary is judged
/// against the stable version and no count was given: no limit on the count of errors.
pub const NO_COUNT_LIMIT: f64 = 1e12;

pub use crate::provider::TrafficProvider;

/// What a health check does when it saw fewer requests than `min_request_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    /// Too little traffic is a failure: roll back.
    #[default]
    Fail,
    /// Too little traffic passes.
    Pass,
    /// Do not advance; check again, and roll back after `max_holds` holds in a row.
    Hold,
}

/// How the canary's health is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSpec {
    /// Largest accepted 5xx share of requests, in percent.
    pub max_error_rate: Option<f64>,
    /// Fewest requests a window must hold to be judged on its numbers.
    pub min_request_count: Option<u64>,
    /// What too little traffic means.
    pub no_data: NoDataPolicy,
    /// Holds in a row before rolling back.
    pub max_holds: u32,
    /// CloudWatch namespace of the metrics.
    pub metric_namespace: String,
    /// Metric that counts 5xx responses.
    pub error_metric: String,
    /// Metric that counts 2xx responses.
    pub success_metric: String,
    /// Dimensions added to every query.
    pub dimensions: BTreeMap<String, String>,
    /// A dimension whose value is the pod's controller name (`<service>-<version>`), so
    /// the canary is judged on its own numbers.
    pub version_dimension: Option<String>,
}

/// A validated deploy.json.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploySpec {
    pub cluster_name: String,
    pub kubernetes_namespace: String,
    pub microservice_name: String,
    /// Canary increment in percent (`steps` replaces it).
    pub percentage_step: Option<u8>,
    /// Explicit canary weights, strictly increasing, ending at 100.
    pub steps: Option<Vec<u8>>,
    /// Seconds between traffic shifts.
    pub wait_time: u64,
    /// Most 5xx responses accepted in the window (default 0).
    pub failure_threshold_value: f64,
    /// The window of a health check, in seconds (default 600).
    pub failure_threshold_time: u64,
    /// The image of the new version.
    pub container_image: String,
    /// The decoded Kubernetes template (`config_file`, or a file given on the command line).
    pub template: String,
    /// The provider, if deploy.json names one; otherwise it comes from the template.
    pub traffic_provider: Option<TrafficProvider>,
    check_interval: Option<u64>,
    bake_time: Option<u64>,
    /// Seconds the new Deployment has to become ready.
    pub ready_timeout: u64,
    /// Seconds the route controller has to accept each route write (its status shows
    /// the written generation accepted); 0: no wait, for controllers that write no
    /// status.
    pub route_confirm_timeout: u64,
    pub health: HealthSpec,
    /// Where the health numbers come from, and the latency and canary-vs-stable rules
    /// (the `metrics` section).
    pub metrics: MetricsSpec,
    /// Where the deployment pauses for a person's approval (`gates`), in the order they
    /// are reached; empty when there are none.
    pub gates: Vec<GateSpec>,
}

impl DeploySpec {
    /// Seconds between health checks within a step (default: `wait_time`, at most 60).
    pub fn check_interval(&self) -> u64 {
        self.check_interval
            .unwrap_or_else(|| self.wait_time.clamp(1, 60))
            .max(1)
    }

    /// The gate at `at`, if deploy.json has one there.
    pub fn gate(&self, at: GateAt) -> Option<&GateSpec> {
        self.gates.iter().find(|g| g.at == at)
    }

    /// The deadline (Unix seconds) for a Deployment applied at `now` to become ready.
    pub fn ready_deadline(&self, now: i64) -> i64 {
        now.saturating_add(i64::try_from(self.ready_timeout).unwrap_or(i64::MAX / 2))
    }

    /// Seconds the canary stays at 100% before the old version is removed. The default
    /// is `wait_time`, but at least one check interval plus the time a metric datapoint
    /// takes to become visible (two periods: the minute it covers, and its publication),
    /// so that a failure that starts near the end of the rollout is still seen before
    /// the old version goes.
    pub fn bake_time(&self) -> u64 {
        self.bake_time.unwrap_or_else(|| {
            self.wait_time
                .max(self.check_interval() + crate::timing::METRIC_VISIBILITY_SECS)
        })
    }
}

/// How to read a deploy.json that a person holds, before the pipeline's build step has
/// added the image and the template.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions<'a> {
    /// The template as plain text; replaces `config_file`.
    pub template: Option<&'a str>,
    /// The image; replaces `container_image`.
    pub image: Option<&'a str>,
    /// Accept a deploy.json without `container_image` and `config_file` (for `canary
    /// plan`, which needs only the timings); they are then empty strings.
    pub artifacts_optional: bool,
}
