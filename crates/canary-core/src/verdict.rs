//! Verdict maths: from the numbers a metrics source returned to healthy, unhealthy or
//! hold, with one sentence that says why. Pure; the metrics crates fetch the numbers.
//!
//! Seed compatibility: with only `failure_threshold_value` set, the verdict is the
//! original rule — the sum of the 5xx datapoints over the window, unhealthy when above
//! the threshold, and no datapoints mean no errors. Once `min_request_count` is set, too
//! little traffic is judged by `no_data` and is never silently healthy unless the user
//! chose `pass`.

use serde::{Deserialize, Serialize};

use crate::spec::{HealthSpec, NoDataPolicy};

/// The three possible verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictStatus {
    Healthy,
    Unhealthy,
    /// Too little traffic to judge, and the policy is to wait and check again.
    Hold,
}

/// A verdict with the numbers it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub status: VerdictStatus,
    /// Sum of the error (5xx) datapoints in the window.
    pub errors: f64,
    /// Requests seen in the window (errors + successes), when request counts were queried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<f64>,
    /// errors / requests, in percent, when there were requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// The window the numbers cover, in seconds.
    pub window_seconds: u64,
    /// How many datapoints the metrics source returned (errors and successes together).
    pub datapoints: usize,
    /// The version the numbers belong to, when metrics are per version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// One sentence: why this verdict.
    pub reason: String,
}

impl Verdict {
    /// The verdict of a health check that found an abort request: unhealthy, no
    /// numbers, and a reason that reads "aborted by <who>: <why>".
    pub fn aborted(version: u32, by: &str, reason: &str) -> Self {
        Self::without_numbers(
            VerdictStatus::Unhealthy,
            Some(version),
            crate::errors::aborted_by(by, reason),
        )
    }

    /// The verdict when health checks are switched off (nothing is queried): healthy,
    /// with `why` as its reason.
    pub fn checks_disabled(version: Option<u32>, why: impl Into<String>) -> Self {
        Self::without_numbers(VerdictStatus::Healthy, version, why.into())
    }

    fn without_numbers(status: VerdictStatus, version: Option<u32>, reason: String) -> Self {
        Self {
            status,
            errors: 0.0,
            requests: None,
            error_rate: None,
            window_seconds: 0,
            datapoints: 0,
            version,
            reason,
        }
    }
}

/// What a metrics source observed over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    /// Error (5xx) datapoint values.
    pub errors: Vec<f64>,
    /// Success (2xx) datapoint values; `None` when they were not queried.
    pub successes: Option<Vec<f64>>,
}

impl Observation {
    /// Whether request counts are needed to judge with these settings.
    pub fn needs_requests(health: &HealthSpec) -> bool {
        health.max_error_rate.is_some() || health.min_request_count.is_some()
    }
}

/// Judges an observation. `max_errors` is deploy.json's `failure_threshold_value`. The
/// rules are applied in the order of their precedence, one branch each, so that the
/// sentence names the rule that decided; that order is why the function is one piece.
pub fn judge(
    health: &HealthSpec,
    max_errors: f64,
    window_seconds: u64,
    version: Option<u32>,
    obs: &Observation,
) -> Verdict {
    let errors: f64 = obs.errors.iter().sum();
    let successes: Option<f64> = obs.successes.as_ref().map(|s| s.iter().sum());
    let requests = successes.map(|s| s + errors);
    let datapoints = obs.errors.len() + obs.successes.as_ref().map_or(0, Vec::len);
    let error_rate = requests.filter(|r| *r > 0.0).map(|r| errors / r * 100.0);
    let window = window_seconds;
    let seen = match requests {
        Some(r) => format!(
            "{} errors in {} requests over {window} s",
            num(errors),
            num(r)
        ),
        None => format!(
            "{} errors over {window} s ({datapoints} datapoints)",
            num(errors)
        ),
    };
    let (status, reason) = if errors > max_errors {
        (
            VerdictStatus::Unhealthy,
            format!(
                "{seen}: more than failure_threshold_value {}",
                num(max_errors)
            ),
        )
    } else if let (Some(max_rate), Some(rate)) = (health.max_error_rate, error_rate)
        && rate > max_rate
    {
        (
            VerdictStatus::Unhealthy,
            format!(
                "{seen}: error rate {}% is above max_error_rate {}%",
                num(rate),
                num(max_rate)
            ),
        )
    } else if let Some(min) = health.min_request_count
        && requests.unwrap_or(0.0) < min as f64
    {
        let why = format!("{seen}: fewer than min_request_count {min}");
        match health.no_data {
            NoDataPolicy::Fail => (
                VerdictStatus::Unhealthy,
                format!("{why}, and no_data is `fail`"),
            ),
            NoDataPolicy::Pass => (
                VerdictStatus::Healthy,
                format!("{why}; passed because no_data is `pass`"),
            ),
            NoDataPolicy::Hold => (
                VerdictStatus::Hold,
                format!("{why}; holding (no_data is `hold`)"),
            ),
        }
    } else {
        let rate = error_rate
            .map(|r| format!(", error rate {}%", num(r)))
            .unwrap_or_default();
        (
            VerdictStatus::Healthy,
            format!("{seen}{rate}: within thresholds"),
        )
    };
    Verdict {
        status,
        errors,
        requests,
        error_rate,
        window_seconds,
        datapoints,
        version,
        reason,
    }
}

/// Formats a count or a rate without a trailing `.0` and with at most two decimals.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aborted_verdict_is_unhealthy_and_names_who_asked() {
        let v = Verdict::aborted(8, "ana", "latency");
        assert_eq!(v.status, VerdictStatus::Unhealthy);
        assert_eq!(v.reason, "aborted by ana: latency");
        assert_eq!(v.version, Some(8));
        assert_eq!((v.errors, v.datapoints, v.window_seconds), (0.0, 0, 0));
    }

    #[test]
    fn a_verdict_without_checks_is_healthy_with_the_given_reason() {
        let v = Verdict::checks_disabled(None, "no metrics");
        assert_eq!(v.status, VerdictStatus::Healthy);
        assert_eq!(v.reason, "no metrics");
    }
}
