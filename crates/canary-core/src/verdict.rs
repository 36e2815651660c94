//! Verdict maths: from the numbers a metrics source returned to healthy, unhealthy or
//! hold, with one sentence that says why. Pure; the metrics crates fetch the numbers.
//!
//! Seed compatibility: with only `failure_threshold_value` set, the verdict is the
//! original rule — the sum of the 5xx datapoints over the window, unhealthy when above
//! the threshold, and no datapoints mean no errors. Once `min_request_count` is set, too
//! little traffic is judged by `no_data` and is never silently healthy unless the user
//! chose `pass`.

use serde::{Deserialize, Serialize};

use crate::compare::{CompareRule, Comparison, Counts, compare};
use crate::spec::{DeploySpec, HealthSpec, LatencyRule, NoDataPolicy};

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
    /// The canary's latency at the rule's quantile, in milliseconds, when latency is
    /// judged and the source had datapoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The canary against the stable version over the same window, when judged so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    /// The stable version's numbers over the same window, when judged against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<Counts>,
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
            latency_ms: None,
            comparison: None,
            stable: None,
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
    /// The judged version's latency at the latency rule's quantile, in milliseconds;
    /// `None` when not queried or without datapoints.
    pub latency_ms: Option<f64>,
    /// The stable version's requests and errors over the same window, when queried
    /// (no datapoints: zero requests).
    pub stable: Option<Counts>,
}

impl Observation {
    /// Whether request counts are needed to judge with these settings.
    pub fn needs_requests(health: &HealthSpec) -> bool {
        health.max_error_rate.is_some() || health.min_request_count.is_some()
    }
}

/// Every rule a verdict applies, from deploy.json: the top-level ones and those of the
/// `metrics` section.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// `max_error_rate`, `min_request_count`, `no_data` and the metric settings.
    pub health: &'a HealthSpec,
    /// `failure_threshold_value`.
    pub max_errors: f64,
    /// `metrics.max_latency_ms` at its quantile.
    pub latency: Option<LatencyRule>,
    /// `metrics.compare_to_stable`.
    pub compare: Option<CompareRule>,
    /// The stable version's numbers from its last window with enough requests (the
    /// previous verdict's), compared against when it serves too little now: at 100%
    /// during the bake, or at a step where its share is small.
    pub stable_baseline: Option<Counts>,
}

impl<'a> Rules<'a> {
    /// The rules of a deploy.json.
    pub fn of(spec: &'a DeploySpec) -> Self {
        Self {
            health: &spec.health,
            max_errors: spec.failure_threshold_value,
            latency: spec.metrics.latency,
            compare: spec.metrics.compare,
            stable_baseline: None,
        }
    }

    /// The same rules, comparing against `baseline` when the stable version's own
    /// window holds too few requests.
    pub fn with_baseline(mut self, baseline: Option<Counts>) -> Self {
        self.stable_baseline = baseline;
        self
    }

    /// Only the top-level rules (no latency, no comparison).
    pub fn top_level(health: &'a HealthSpec, max_errors: f64) -> Self {
        Self {
            health,
            max_errors,
            latency: None,
            compare: None,
            stable_baseline: None,
        }
    }

    /// Whether request counts are needed.
    pub fn needs_requests(&self) -> bool {
        Observation::needs_requests(self.health) || self.compare.is_some()
    }
}

/// Judges an observation with the top-level rules only. `max_errors` is deploy.json's
/// `failure_threshold_value`.
pub fn judge(
    health: &HealthSpec,
    max_errors: f64,
    window_seconds: u64,
    version: Option<u32>,
    obs: &Observation,
) -> Verdict {
    judge_rules(
        &Rules::top_level(health, max_errors),
        window_seconds,
        version,
        obs,
    )
}

/// Judges an observation. The rules are applied in the order of their precedence, one
/// branch each, so that the sentence names the rule that decided: the count of errors,
/// the error rate, latency, the canary worse than the stable version, then too little
/// traffic (`min_request_count`, or too few requests to compare) under `no_data`.
pub fn judge_rules(
    rules: &Rules<'_>,
    window_seconds: u64,
    version: Option<u32>,
    obs: &Observation,
) -> Verdict {
    let health = rules.health;
    let max_errors = rules.max_errors;
    let errors: f64 = obs.errors.iter().sum();
    let successes: Option<f64> = obs.successes.as_ref().map(|s| s.iter().sum());
    let requests = successes.map(|s| s + errors);
    let datapoints = obs.errors.len() + obs.successes.as_ref().map_or(0, Vec::len);
    let error_rate = requests.filter(|r| *r > 0.0).map(|r| errors / r * 100.0);
    let window = window_seconds;
    let latency = rules.latency.and_then(|l| obs.latency_ms.map(|ms| (l, ms)));
    let (stable, from_baseline) = stable_to_compare(rules, obs.stable);
    let comparison = match (rules.compare, stable) {
        (Some(rule), Some(stable)) => {
            let canary = Counts::new(requests.unwrap_or(0.0), errors);
            Some((rule, compare(canary, stable, &rule)))
        }
        _ => None,
    };
    let baseline_note = if from_baseline {
        " (the stable version's numbers from its last window with enough requests: it serves too few now)"
    } else {
        ""
    };
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
    let too_little = |why: String| match health.no_data {
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
    } else if let Some((rule, ms)) = latency
        && ms > rule.max_ms
    {
        (
            VerdictStatus::Unhealthy,
            format!(
                "{seen}: latency p{} {} ms is above max_latency_ms {} ms",
                quantile_name(rule.quantile),
                num(ms),
                num(rule.max_ms)
            ),
        )
    } else if let Some((rule, c)) = &comparison
        && c.canary_worse
    {
        (
            VerdictStatus::Unhealthy,
            format!("{seen}; {}{baseline_note}", c.sentence(rule)),
        )
    } else if let Some(min) = health.min_request_count
        && requests.unwrap_or(0.0) < min as f64
    {
        too_little(format!("{seen}: fewer than min_request_count {min}"))
    } else if let Some((rule, c)) = &comparison
        && !c.conclusive()
    {
        too_little(format!("{seen}; {}", c.sentence(rule)))
    } else {
        let mut fine = seen;
        if let Some(r) = error_rate {
            fine.push_str(&format!(", error rate {}%", num(r)));
        }
        if let Some((rule, ms)) = latency {
            fine.push_str(&format!(
                ", latency p{} {} ms",
                quantile_name(rule.quantile),
                num(ms)
            ));
        } else if rules.latency.is_some() {
            fine.push_str(", no latency datapoints");
        }
        match &comparison {
            Some((rule, c)) => (
                VerdictStatus::Healthy,
                format!("{fine}; {}{baseline_note}", c.sentence(rule)),
            ),
            None => (VerdictStatus::Healthy, format!("{fine}: within thresholds")),
        }
    };
    Verdict {
        status,
        errors,
        requests,
        error_rate,
        window_seconds,
        datapoints,
        version,
        latency_ms: latency.map(|(_, ms)| ms),
        comparison: comparison.map(|(_, c)| c),
        stable: stable.filter(|_| rules.compare.is_some()),
        reason,
    }
}

/// The stable numbers a comparison uses: this window's, or the baseline when this
/// window holds too few requests and the baseline enough (and whether it was the
/// baseline).
fn stable_to_compare(rules: &Rules<'_>, now: Option<Counts>) -> (Option<Counts>, bool) {
    let (Some(rule), Some(current)) = (rules.compare, now) else {
        return (now, false);
    };
    let enough = rule.min_requests.max(1.0);
    match rules.stable_baseline {
        Some(b) if current.requests < enough && b.requests >= enough => (Some(b), true),
        _ => (Some(current), false),
    }
}

/// `0.99` → `99`, `0.995` → `99.5`.
fn quantile_name(q: f64) -> String {
    num(q * 100.0)
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
