//! `canary what-if`: the health rule replayed over a service's real past numbers, as if
//! a canary had run at every check time. Pure: the metrics crate fetches the
//! [`History`] (each series once, over the whole range, per period), and this module
//! slides the check windows over it locally and judges each with
//! [`judge_rules`], the very function the health check calls.
//!
//! Why one fetch and local windows: a week at 60 s checks is 10,080 checks of several
//! queries each; CloudWatch would throttle and bill them. A window of
//! `failure_threshold_time` is the sum of the periods inside it, which is what
//! GetMetricData answers for the window anyway (Prometheus: the sum of per-step
//! `increase(...[step])`, which equals `increase(...[window])` but for the edges of each
//! step's extrapolation).
//!
//! The model, and its approximations:
//! - **The replayed canary** is the service's running version as it really was. It gets
//!   the share of traffic of the plan's step the check falls in (the first step's for
//!   the per-check listing and the injection): with per-version metrics (CloudWatch with
//!   `version_dimension`, Prometheus, Lattice) its counts are the service's counts times
//!   that share (expected values, so they may be fractional); with whole-service metrics
//!   (CloudWatch without `version_dimension`) a real check sees the whole service, so
//!   nothing is scaled.
//! - **Canary against stable** (`compare_to_stable`): the stable side is the same
//!   version's numbers times the rest of the traffic (1 − share), as a real stable
//!   version serves the rest. Without injection the comparison asks "is a canary that
//!   behaves exactly like stable called worse?" — the false-alarm question.
//! - **False alarms**: every unhealthy verdict of a service assumed healthy, the canary
//!   at the first step's share for a whole window. Per deployment: a deployment makes
//!   [`crate::schedule::Plan::checks`] checks; every run of that many consecutive checks
//!   (one starting at each check time) is a deployment, each period of each window at
//!   the share of the step it falls in (none before the deployment began); it is rolled
//!   back when a check is unhealthy or the holds in a row are more than `max_holds`.
//! - **Injection**: from an onset at a check time, a failure adds `error_rate` of the
//!   canary's requests as errors (taken from its successes) and `latency_ms` to its
//!   latency. A period counts as failed for the part of it after the onset. Latency per
//!   period (CloudWatch: the check takes the highest per-period pNN of its window) is
//!   shifted when the failed part of the period's requests exceeds 1 − q; latency over
//!   the whole window (Prometheus: one `histogram_quantile` over the window) is shifted
//!   once the failed part of the window's requests exceeds 1 − q: the quantile of a
//!   mixture whose shifted part is larger than the tail above q lies in the shifted
//!   part, assumed at least the old quantile plus the shift (exact for a uniform
//!   slowdown of every request, optimistic by the spread of latencies otherwise).
//!   The onset sits right after a check (the worst phase); a metric's publication delay
//!   (a minute for CloudWatch metric filters) is not modelled and adds to every catch
//!   time. Time to catch = the first unhealthy check after the onset minus the onset,
//!   within a deployment's number of checks; an onset whose first unhealthy check is a
//!   false alarm of the data anyway is counted apart, as it says nothing about the
//!   rule's sensitivity.

use serde::Serialize;

use crate::compare::Counts;
use crate::schedule::plan;
use crate::spec::{DeploySpec, LatencyRule, SourceSpec};
use crate::verdict::{Observation, Rules, Verdict, VerdictStatus, judge_rules};

/// A service's past numbers, one value per period from `from`; `None` is a period
/// without a datapoint.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Start of the first period, Unix seconds.
    pub from: i64,
    /// The length of a period, in seconds.
    pub period_secs: u64,
    /// Errors (5xx) per period.
    pub errors: Vec<Option<f64>>,
    /// Successes per period (requests minus errors), when fetched.
    pub successes: Option<Vec<Option<f64>>>,
    /// Latency at the rule's quantile, in milliseconds, when fetched.
    pub latency_ms: Option<Vec<Option<f64>>>,
    /// What a latency sample covers.
    pub latency_samples: LatencySamples,
}

/// What one latency sample of a [`History`] covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencySamples {
    /// The period alone; a check judges the highest sample of its window (CloudWatch).
    PerPeriod,
    /// The whole check window ending with the period; a check judges the sample of the
    /// period it ends with (Prometheus, `{window}` = `failure_threshold_time`).
    WindowEnding,
}

impl History {
    /// The end of the last period, Unix seconds.
    pub fn to(&self) -> i64 {
        self.period_start(self.errors.len())
    }

    fn period_start(&self, i: usize) -> i64 {
        self.from
            .saturating_add(i64::try_from(i as u64 * self.period_secs).unwrap_or(i64::MAX))
    }

    fn check(&self) -> Result<(), WhatIfError> {
        if self.period_secs == 0 {
            return Err(WhatIfError::ZeroPeriod);
        }
        let expected = self.errors.len();
        for (series, s) in [
            ("successes", &self.successes),
            ("latency", &self.latency_ms),
        ] {
            if let Some(s) = s
                && s.len() != expected
            {
                return Err(WhatIfError::Mismatch {
                    series,
                    len: s.len(),
                    expected,
                });
            }
        }
        Ok(())
    }
}

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhatIfError {
    /// A history's period is 0 seconds.
    #[error("the history's period is 0 seconds")]
    ZeroPeriod,
    /// A series of the history does not have one value per period.
    #[error("the {series} series has {len} periods, the errors series {expected}")]
    Mismatch {
        /// `successes` or `latency`.
        series: &'static str,
        /// Its length.
        len: usize,
        /// The errors series' length.
        expected: usize,
    },
    /// The range does not hold one check window.
    #[error(
        "the range ({range_secs} s) is shorter than one check window (failure_threshold_time {window_secs} s)"
    )]
    TooShort {
        /// The history's length in seconds.
        range_secs: i64,
        /// `failure_threshold_time`.
        window_secs: u64,
    },
}

/// A failure to inject into the canary's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Injection {
    /// The share of the canary's requests that fail, 0..=1.
    pub error_rate: f64,
    /// Milliseconds added to the canary's latency.
    pub latency_ms: f64,
}

/// The settings a replay needs, from a deploy.json.
#[derive(Debug, Clone)]
pub struct Replay<'a> {
    /// The rules of every verdict.
    pub rules: Rules<'a>,
    /// `failure_threshold_time`, seconds.
    pub window_secs: u64,
    /// Seconds between checks.
    pub interval_secs: u64,
    /// The version the verdicts name, when metrics are per version.
    pub version: Option<u32>,
    /// Whether the numbers are the judged version's own (else the whole service's).
    pub per_version: bool,
    /// The plan's steps: the canary's share in percent and the checks made at it.
    pub steps: Vec<(u8, u64)>,
}

impl<'a> Replay<'a> {
    /// The replay of `spec`'s rules for `version`.
    pub fn of(spec: &'a DeploySpec, version: u32) -> Self {
        let per_version = spec.health.version_dimension.is_some()
            || !matches!(spec.metrics.source, SourceSpec::CloudWatch { .. });
        let p = plan(spec);
        Self {
            rules: Rules::of(spec),
            window_secs: spec.failure_threshold_time,
            interval_secs: p.check_interval_secs,
            version: per_version.then_some(version),
            per_version,
            steps: p.steps.iter().map(|s| (s.weight, s.checks)).collect(),
        }
    }

    /// The checks a deployment makes.
    pub fn checks_per_deployment(&self) -> u64 {
        self.steps.iter().map(|s| s.1).sum::<u64>().max(1)
    }

    /// The first step's share of traffic, in percent.
    pub fn first_weight(&self) -> u8 {
        self.steps.first().map_or(100, |s| s.0)
    }

    /// The check times over `h`: every `interval_secs` from one window after its start
    /// to its end.
    pub fn check_times(&self, h: &History) -> Vec<i64> {
        let window = i64::try_from(self.window_secs).unwrap_or(i64::MAX);
        let step = i64::try_from(self.interval_secs.max(1)).unwrap_or(i64::MAX);
        let end = h.to();
        let mut out = Vec::new();
        let mut t = h.from.saturating_add(window);
        while t <= end {
            out.push(t);
            t = t.saturating_add(step);
        }
        out
    }

    /// The observation a check at `t` would make, the canary holding `share` (0..=1)
    /// of the traffic, with `failure` (its onset and size) injected.
    pub fn observe(
        &self,
        h: &History,
        t: i64,
        share: f64,
        failure: Option<(i64, Injection)>,
    ) -> Observation {
        self.observe_shares(h, t, &|_| share, failure)
    }

    /// [`Self::observe`] with the canary's share of each period given by `share_at`
    /// (of the period's start): a deployment's steps change it over one window.
    fn observe_shares(
        &self,
        h: &History,
        t: i64,
        share_at: &dyn Fn(i64) -> f64,
        failure: Option<(i64, Injection)>,
    ) -> Observation {
        let window = i64::try_from(self.window_secs).unwrap_or(i64::MAX);
        let period = i64::try_from(h.period_secs.max(1)).unwrap_or(i64::MAX);
        let start = t.saturating_sub(window);
        // Periods wholly inside [start, t).
        let first = (start - h.from).max(0).div_euclid(period)
            + i64::from((start - h.from).max(0).rem_euclid(period) != 0);
        let last = ((t - h.from).div_euclid(period)).min(h.errors.len() as i64);
        // The failed part of the observed requests, for a failed part `f` of the canary's.
        let observed_failed = |f: f64, share: f64| if self.per_version { f } else { f * share };
        let end_share = share_at(t.saturating_sub(period));
        let latency_rule: Option<LatencyRule> = self.rules.latency;
        let mut errors = Vec::new();
        let mut successes = Vec::new();
        let mut stable = Counts::new(0.0, 0.0);
        let mut latency: Option<f64> = None;
        for i in first.max(0)..last.max(0) {
            let i = i as usize;
            let p_start = h.period_start(i);
            let share = share_at(p_start);
            let seen = if self.per_version { share } else { 1.0 };
            let e = h.errors.get(i).copied().flatten();
            let s = h
                .successes
                .as_ref()
                .and_then(|s| s.get(i).copied().flatten());
            let requests = e.unwrap_or(0.0) + s.unwrap_or(0.0);
            let failed = failure.map_or(0.0, |(onset, _)| {
                ((p_start + period - onset) as f64 / period as f64).clamp(0.0, 1.0)
            });
            let extra = failure.map_or(0.0, |(_, inj)| {
                (inj.error_rate * share * requests * failed).min(share * s.unwrap_or(0.0))
            });
            match e {
                Some(e) => errors.push(e * seen + extra),
                None if extra > 0.0 => errors.push(extra),
                None => {}
            }
            if let Some(s) = s {
                successes.push((s * seen - extra).max(0.0));
            }
            stable.requests += requests * (1.0 - share);
            stable.errors += e.unwrap_or(0.0) * (1.0 - share);
            if let (Some(rule), LatencySamples::PerPeriod) = (latency_rule, h.latency_samples) {
                let sample = h
                    .latency_ms
                    .as_ref()
                    .and_then(|l| l.get(i).copied().flatten());
                if let Some(ms) = sample {
                    let shift = match failure {
                        Some((_, inj)) if observed_failed(failed, share) > 1.0 - rule.quantile => {
                            inj.latency_ms
                        }
                        _ => 0.0,
                    };
                    latency = Some(latency.map_or(ms + shift, |m: f64| m.max(ms + shift)));
                }
            }
        }
        if let (Some(rule), LatencySamples::WindowEnding) = (latency_rule, h.latency_samples)
            && last >= 1
        {
            let sample = h
                .latency_ms
                .as_ref()
                .and_then(|l| l.get(last as usize - 1).copied().flatten());
            latency = sample.map(|ms| match failure {
                Some((onset, inj)) => {
                    let failed = ((t - onset) as f64 / window.max(1) as f64).clamp(0.0, 1.0);
                    if observed_failed(failed, end_share) > 1.0 - rule.quantile {
                        ms + inj.latency_ms
                    } else {
                        ms
                    }
                }
                None => ms,
            });
        }
        Observation {
            errors,
            successes: self.rules.needs_requests().then_some(successes),
            latency_ms: latency,
            stable: self.rules.compare.map(|_| stable),
        }
    }

    /// The verdict of a check at `t` with the canary at `share` of the traffic.
    pub fn judge(
        &self,
        h: &History,
        t: i64,
        share: f64,
        failure: Option<(i64, Injection)>,
    ) -> Verdict {
        judge_rules(
            &self.rules,
            self.window_secs,
            self.version,
            &self.observe(h, t, share, failure),
        )
    }

    /// Replays every check over `h` (the service assumed healthy): the false alarms,
    /// per check and per deployment; with `injection`, how soon a failure of that size
    /// is caught.
    pub fn run(&self, h: &History, injection: Option<Injection>) -> Result<Report, WhatIfError> {
        h.check()?;
        let times = self.check_times(h);
        if times.is_empty() {
            return Err(WhatIfError::TooShort {
                range_secs: h.to() - h.from,
                window_secs: self.window_secs,
            });
        }
        let first_share = f64::from(self.first_weight()) / 100.0;
        let mut false_alarms = Vec::new();
        let mut holds = 0;
        let mut first_statuses = Vec::with_capacity(times.len());
        for &t in &times {
            let v = self.judge(h, t, first_share, None);
            first_statuses.push(v.status);
            match v.status {
                VerdictStatus::Unhealthy => false_alarms.push(FalseAlarm { at: t, verdict: v }),
                VerdictStatus::Hold => holds += 1,
                VerdictStatus::Healthy => {}
            }
        }
        let episodes = first_statuses
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                **s == VerdictStatus::Unhealthy
                    && (*i == 0 || first_statuses[i - 1] != VerdictStatus::Unhealthy)
            })
            .count();
        let n = usize::try_from(self.checks_per_deployment()).unwrap_or(usize::MAX);
        let (deployments, rolled_back) = self.deployments(h, &times, n);
        let checks = times.len();
        let catch = injection.map(|inj| self.catch_times(h, &times, &first_statuses, n, inj));
        Ok(Report {
            from: h.from,
            to: h.to(),
            period_secs: h.period_secs,
            window_secs: self.window_secs,
            interval_secs: self.interval_secs,
            canary_weight_percent: self.first_weight(),
            per_version: self.per_version,
            checks,
            healthy: checks - false_alarms.len() - holds,
            holds,
            episodes,
            false_alarm_rate_per_check: false_alarms.len() as f64 / checks as f64,
            false_alarms,
            checks_per_deployment: n,
            deployments,
            deployments_rolled_back: rolled_back,
            false_rollback_rate_per_deployment: (deployments > 0)
                .then(|| rolled_back as f64 / deployments as f64),
            catch,
        })
    }

    /// Every run of `n` consecutive checks is a deployment: how many there are and how
    /// many would have rolled back. A run's deployment starts one interval before its
    /// first check; each period of a window holds the canary's share of the step it
    /// falls in (none before the deployment started), so the first checks see little
    /// canary traffic and, with `compare_to_stable`, the stable version's traffic from
    /// before the shift to 100% stays in the window as it would.
    fn deployments(&self, h: &History, times: &[i64], n: usize) -> (usize, usize) {
        if times.len() < n {
            return (0, 0);
        }
        // The share of the j-th check interval of a deployment.
        let shares: Vec<f64> = self
            .steps
            .iter()
            .flat_map(|&(w, c)| std::iter::repeat_n(f64::from(w) / 100.0, c as usize))
            .collect();
        let interval = i64::try_from(self.interval_secs.max(1)).unwrap_or(i64::MAX);
        let runs = times.len() - n + 1;
        let rolled_back = (0..runs)
            .filter(|&k| {
                let start = times[k] - interval;
                let share_at = |at: i64| {
                    if at < start {
                        0.0
                    } else {
                        let j = usize::try_from((at - start) / interval).unwrap_or(usize::MAX);
                        shares.get(j).or(shares.last()).copied().unwrap_or(1.0)
                    }
                };
                let mut held = 0;
                (0..n).any(|j| {
                    let obs = self.observe_shares(h, times[k + j], &share_at, None);
                    let v = judge_rules(&self.rules, self.window_secs, self.version, &obs);
                    match v.status {
                        VerdictStatus::Unhealthy => true,
                        VerdictStatus::Hold => {
                            held += 1;
                            crate::decide::holds::too_many_holds(held, self.rules.health)
                        }
                        VerdictStatus::Healthy => {
                            held = 0;
                            false
                        }
                    }
                })
            })
            .count();
        (runs, rolled_back)
    }

    /// A failure injected at every check time that a deployment's checks follow: how
    /// long until the first unhealthy check. An onset whose first unhealthy check was
    /// unhealthy without the failure too (`baseline`, at the same share) was caught by
    /// a false alarm, not by the failure: it is counted apart.
    fn catch_times(
        &self,
        h: &History,
        times: &[i64],
        baseline: &[VerdictStatus],
        n: usize,
        inj: Injection,
    ) -> CatchTimes {
        let share = f64::from(self.first_weight()) / 100.0;
        let onsets = times.len().saturating_sub(n);
        let mut caught: Vec<u64> = Vec::new();
        let mut masked = 0;
        for k in 0..onsets {
            let onset = times[k];
            let hit = (k + 1..=k + n).find(|&i| {
                self.judge(h, times[i], share, Some((onset, inj))).status
                    == VerdictStatus::Unhealthy
            });
            match hit {
                Some(i) if baseline[i] == VerdictStatus::Unhealthy => masked += 1,
                Some(i) => caught.push(u64::try_from(times[i] - onset).unwrap_or(0)),
                None => {}
            }
        }
        caught.sort_unstable();
        let rank = |q: f64| {
            let i = ((q * caught.len() as f64).ceil() as usize).clamp(1, caught.len().max(1));
            caught.get(i - 1).copied()
        };
        CatchTimes {
            injection: inj,
            onsets,
            caught: caught.len(),
            masked_by_false_alarms: masked,
            not_caught: onsets - caught.len() - masked,
            median_secs: rank(0.5),
            p90_secs: rank(0.9),
            max_secs: caught.last().copied(),
        }
    }
}

/// An unhealthy verdict of a service assumed healthy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FalseAlarm {
    /// The check's time (end of its window), Unix seconds.
    pub at: i64,
    /// The verdict, with its numbers and reason.
    pub verdict: Verdict,
}

/// How soon an injected failure is caught.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatchTimes {
    /// The failure injected.
    pub injection: Injection,
    /// Onsets tried: one at every check time that a deployment's checks follow.
    pub onsets: usize,
    /// Onsets caught by the failure within a deployment's checks.
    pub caught: usize,
    /// Onsets whose first unhealthy check was a false alarm of the data anyway.
    pub masked_by_false_alarms: usize,
    /// Onsets never caught within a deployment's checks.
    pub not_caught: usize,
    /// Median time from onset to the first unhealthy check, seconds (nearest rank).
    pub median_secs: Option<u64>,
    /// 90th percentile, seconds (nearest rank).
    pub p90_secs: Option<u64>,
    /// The longest, seconds.
    pub max_secs: Option<u64>,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The range replayed, Unix seconds.
    pub from: i64,
    /// End of the range.
    pub to: i64,
    /// The history's period, seconds.
    pub period_secs: u64,
    /// The check window, seconds.
    pub window_secs: u64,
    /// Seconds between checks.
    pub interval_secs: u64,
    /// The replayed canary's share of traffic (the first step's), percent.
    pub canary_weight_percent: u8,
    /// Whether the numbers are the version's own (scaled by the share) or the whole
    /// service's.
    pub per_version: bool,
    /// Checks replayed.
    pub checks: usize,
    /// Healthy verdicts.
    pub healthy: usize,
    /// Hold verdicts.
    pub holds: usize,
    /// Runs of consecutive unhealthy checks (one burst of errors is one episode).
    pub episodes: usize,
    /// Unhealthy verdicts per check.
    pub false_alarm_rate_per_check: f64,
    /// Every unhealthy verdict, in time order.
    pub false_alarms: Vec<FalseAlarm>,
    /// Checks in one deployment of this spec.
    pub checks_per_deployment: usize,
    /// Deployments replayed (runs of that many checks, one starting at each check).
    pub deployments: usize,
    /// Of them, how many a healthy service would have been rolled back in.
    pub deployments_rolled_back: usize,
    /// `deployments_rolled_back / deployments`; `None` when the range is shorter than
    /// one deployment.
    pub false_rollback_rate_per_deployment: Option<f64>,
    /// With an injected failure: how soon it is caught.
    pub catch: Option<CatchTimes>,
}

impl Report {
    /// The `count` worst false alarms: most errors first, then the highest error rate,
    /// then the highest latency.
    pub fn worst(&self, count: usize) -> Vec<&FalseAlarm> {
        let mut all: Vec<&FalseAlarm> = self.false_alarms.iter().collect();
        let key = |a: &FalseAlarm| {
            (
                a.verdict.errors,
                a.verdict.error_rate.unwrap_or(0.0),
                a.verdict.latency_ms.unwrap_or(0.0),
            )
        };
        all.sort_by(|a, b| {
            key(b)
                .partial_cmp(&key(a))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.at.cmp(&b.at))
        });
        all.truncate(count);
        all
    }
}

#[cfg(test)]
mod tests;
