//! Health metrics for a canary: the [`MetricsSource`] trait (one implementation per
//! metrics backend), the CloudWatch implementation ([`cloudwatch::CloudWatchMetrics`]),
//! a fixed source for tests ([`StaticMetrics`]), and [`check`], which queries a source
//! for one health-check window and hands the numbers to `canary_core::verdict::judge`.
//!
//! [`history`] fetches a whole range of past numbers at once for `canary what-if`.
//!
//! The maths lives in canary-core; this crate only fetches numbers. A source returns
//! datapoint values, never a verdict: "no datapoints" is an empty list, which the
//! verdict maths reads as the original design did (no errors) unless the user set
//! `min_request_count`, in which case `no_data` decides.

pub mod cloudwatch;
mod error;
pub mod history;
pub mod lattice;
pub mod prometheus;
mod query;
mod sources;

use async_trait::async_trait;
use canary_core::{DeploySpec, Observation, Rules, Verdict};

pub use error::{BoxError, MetricsError};
pub use query::{DEFAULT_PERIOD_SECONDS, HealthQuery};
pub use sources::{DeployJsonMetrics, described_queries};

/// A backend that can count a service's 5xx and 2xx responses over a window.
#[async_trait]
pub trait MetricsSource: Send + Sync + std::fmt::Debug {
    /// The datapoints of the window. `successes` is `Some` exactly when
    /// `q.need_requests` is set.
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError>;

    /// `Some(why)` for a source that measures nothing on purpose (`canary run --metrics
    /// none`): [`check`] then passes every check with `why` as the verdict's reason
    /// instead of judging an empty observation as "0 errors".
    fn disabled(&self) -> Option<String> {
        None
    }
}

/// Runs one health check at `now_secs` (Unix seconds): queries `source` for the window
/// of `spec.failure_threshold_time` seconds ending now and judges the numbers, against
/// `stable_version`'s over the same window when deploy.json asks for it.
pub async fn check(
    source: &dyn MetricsSource,
    spec: &DeploySpec,
    canary_version: u32,
    stable_version: Option<u32>,
    now_secs: i64,
) -> Result<Verdict, MetricsError> {
    check_against(source, spec, canary_version, stable_version, None, now_secs).await
}

/// [`check`], comparing against `stable_baseline` (the stable version's numbers from
/// the previous verdict) when the stable version serves too few requests in this
/// window: at 100% during the bake, or at a step where its share is small.
pub async fn check_against(
    source: &dyn MetricsSource,
    spec: &DeploySpec,
    canary_version: u32,
    stable_version: Option<u32>,
    stable_baseline: Option<canary_core::compare::Counts>,
    now_secs: i64,
) -> Result<Verdict, MetricsError> {
    let q =
        HealthQuery::for_check(spec, canary_version, now_secs).with_stable(spec, stable_version);
    if let Some(why) = source.disabled() {
        tracing::warn!(service = %q.service, canary_version, %why, "health check skipped");
        return Ok(Verdict::checks_disabled(q.judged_version(), why));
    }
    let obs = source.observe(&q).await?;
    let verdict = judge_observation(spec, &q, &obs, stable_baseline);
    tracing::info!(
        service = %q.service,
        canary_version,
        status = ?verdict.status,
        errors = verdict.errors,
        requests = ?verdict.requests,
        reason = %verdict.reason,
        "health check"
    );
    Ok(verdict)
}

/// Judges what `q` observed with every rule of `spec`, comparing against
/// `stable_baseline` (the previous verdict's stable numbers) when the stable version's
/// own window holds too few requests: what the health check does with its numbers.
pub fn judge_observation(
    spec: &DeploySpec,
    q: &HealthQuery,
    obs: &Observation,
    stable_baseline: Option<canary_core::compare::Counts>,
) -> Verdict {
    canary_core::verdict::judge_rules(
        &Rules::of(spec).with_baseline(stable_baseline),
        q.window_seconds(),
        q.judged_version(),
        obs,
    )
}

/// A source that returns the same observation for every query (for tests and dry runs).
/// Without success values it still answers `Some(vec![])` when requests are needed, as a
/// real backend with no datapoints would.
#[derive(Debug, Clone, Default)]
pub struct StaticMetrics {
    /// Error (5xx) datapoint values.
    pub errors: Vec<f64>,
    /// Success (2xx) datapoint values.
    pub successes: Vec<f64>,
}

impl StaticMetrics {
    /// A source that answers `errors` and `successes`.
    pub fn new(errors: Vec<f64>, successes: Vec<f64>) -> Self {
        Self { errors, successes }
    }
}

#[async_trait]
impl MetricsSource for StaticMetrics {
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError> {
        Ok(Observation {
            errors: self.errors.clone(),
            successes: q.need_requests.then(|| self.successes.clone()),
            ..Observation::default()
        })
    }
}
