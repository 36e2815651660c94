//! A metrics source for the reaction-time benchmark that behaves like Prometheus scraping
//! the mesh's request counters: every `scrape_interval` seconds (at `phase`, `phase +
//! interval`, ...) the server stores each version's cumulative request and 5xx counts,
//! and a health check at `t` with a window of `w` seconds asks for `increase(...[w])`.
//!
//! The model answers `increase` as `counter(last scrape <= t) - counter(last scrape <=
//! t - w)`, per version, where `counter(s)` is the simulated traffic of `[0, s)`: the
//! numbers it hands to the verdict are the simulated cluster's traffic (through the
//! demo's [`SimMetricsSource`]) over `[scrape(t - w), scrape(t))`. So an error that
//! starts at time `e` is visible to every check from the first scrape after `e` on, and
//! the window always spans exactly `w` seconds of traffic when `w` is a multiple of the
//! scrape interval.
//!
//! How it differs from Prometheus's own `increase` (2.x, as `canary-metrics` queries
//! it):
//! - Prometheus takes the first and last *samples inside* `[t - w, t]`, whose distance is
//!   up to one interval shorter than `w`, and extrapolates the difference towards the
//!   window's edges (by at most half an interval past the first and last sample, and
//!   never below zero at the start). The result is fractional and, for a steady rate,
//!   close to the rate times `w`; the model returns the unextrapolated difference between
//!   scrapes exactly `w` apart, which is what the extrapolation estimates.
//! - A series that appears in the middle of the window (Envoy and Istio create a 5xx
//!   series at the first 5xx answer) has its first sample's value ignored by
//!   Prometheus 2.x, which sees only the increase after it; the model counts from zero,
//!   as if the exporter had published the series at 0 before the first error. With a
//!   `failure_threshold_value` of 0 this can make the model one scrape faster than a
//!   real server on an error series that did not exist before the onset.
//! - Scrapes, rule evaluation and the query are instantaneous and never fail; counters
//!   never reset.

use async_trait::async_trait;
use canary_cli::local::SimMetricsSource;
use canary_core::Observation;
use canary_metrics::{HealthQuery, MetricsError, MetricsSource};
use canary_sim::SimCluster;

/// The scrape interval the benchmark uses (Prometheus's common setting).
pub const SCRAPE_INTERVAL_SECS: i64 = 15;

/// Simulated traffic, seen through counters scraped every `interval_secs`.
#[derive(Debug, Clone)]
pub struct ScrapedMetrics {
    inner: SimMetricsSource,
    interval_secs: i64,
    phase_secs: i64,
}

impl ScrapedMetrics {
    /// Counters of services in `namespace` of `sim`, scraped every `interval_secs`
    /// (at least 1) at Unix times `phase_secs + k * interval_secs`.
    pub fn new(sim: SimCluster, namespace: &str, interval_secs: i64, phase_secs: i64) -> Self {
        let interval_secs = interval_secs.max(1);
        Self {
            inner: SimMetricsSource::new(sim, namespace),
            interval_secs,
            phase_secs: phase_secs.rem_euclid(interval_secs),
        }
    }

    /// The time of the last scrape at or before `t` (Unix seconds).
    pub fn last_scrape(&self, t: i64) -> i64 {
        (t - self.phase_secs).div_euclid(self.interval_secs) * self.interval_secs + self.phase_secs
    }

    /// The traffic an `increase` over `[start, end]` measures: from the last scrape at or
    /// before `start` to the last scrape at or before `end`. `None` when both are the same
    /// scrape (nothing was scraped inside the window: Prometheus has no sample pair).
    pub fn counted_span(&self, start_secs: i64, end_secs: i64) -> Option<(i64, i64)> {
        let (from, to) = (self.last_scrape(start_secs), self.last_scrape(end_secs));
        (to > from).then_some((from, to))
    }
}

#[async_trait]
impl MetricsSource for ScrapedMetrics {
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError> {
        let Some((from, to)) = self.counted_span(q.start_secs, q.end_secs) else {
            // An empty vector is "no datapoints", as an empty PromQL result is.
            return Ok(Observation {
                errors: Vec::new(),
                successes: q.need_requests.then(Vec::new),
                stable: q
                    .stable_version
                    .map(|_| canary_core::compare::Counts::new(0.0, 0.0)),
                ..Observation::default()
            });
        };
        // One period over the whole span: an `increase` is one number per version.
        let span = HealthQuery {
            start_secs: from,
            end_secs: to,
            period_secs: u32::try_from(to - from).unwrap_or(u32::MAX),
            ..q.clone()
        };
        self.inner.observe(&span).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_cli::harness::{DemoEnv, fixtures};
    use canary_core::DeploySpec;
    use canary_core::clock::{Clock, ManualClock};
    use canary_sfn::NoopObserver;
    use canary_sim::SimConfig;
    use serde_json::json;
    use std::sync::Arc;

    fn source(interval: i64, phase: i64) -> ScrapedMetrics {
        let sim = SimCluster::new(SimConfig::new(
            Arc::new(ManualClock::starting_at(0)),
            std::time::Duration::ZERO,
        ));
        ScrapedMetrics::new(sim, "ns", interval, phase)
    }

    #[test]
    fn a_check_counts_from_scrape_to_scrape() {
        let s = source(15, 0);
        assert_eq!(s.last_scrape(1_000), 990);
        assert_eq!(s.last_scrape(990), 990);
        assert_eq!(s.last_scrape(989), 975);
        // A 60 s window at 10:00:07 counts the traffic between the scrapes at 09:59:00
        // and 10:00:00: exactly 60 s, ending up to one interval before the check.
        assert_eq!(s.counted_span(36_007 - 60, 36_007), Some((35_940, 36_000)));
        // A window shorter than the interval may hold no scrape pair at all.
        assert_eq!(s.counted_span(36_001, 36_010), None);
        assert_eq!(s.counted_span(36_010, 36_016), Some((36_000, 36_015)));
    }

    #[test]
    fn the_scrape_phase_shifts_every_scrape() {
        let s = source(15, 7);
        assert_eq!(s.last_scrape(36_000), 35_992);
        assert_eq!(s.counted_span(35_940, 36_000), Some((35_932, 35_992)));
        // A phase of a whole interval or more is the same as its remainder.
        let t = source(15, 22);
        assert_eq!(t.last_scrape(36_000), s.last_scrape(36_000));
        // Times before the phase (and negative times) round down as well.
        assert_eq!(s.last_scrape(3), -8);
    }

    /// The demo's environment with v1 deployed (all of the service's 50 req/s), the clock
    /// then moved to the next whole minute, and the spec of a Prometheus source with a
    /// 60 s window.
    async fn env_with_v1() -> (DemoEnv, DeploySpec, i64) {
        let env = DemoEnv::start().await.expect("env");
        let run = env
            .deploy(&fixtures::image(1), &env.invoker(), &mut NoopObserver)
            .await;
        assert!(run.succeeded(), "{:?}", run.status);
        let now = env.clock.now_secs();
        let minute = (now / 60 + 1) * 60;
        env.clock.advance((minute - now) * 1000);
        let mut doc = fixtures::deploy_document(&fixtures::image(1));
        doc["max_error_rate"] = json!(50);
        doc["failure_threshold_value"] = json!(1000);
        doc["failure_threshold_time"] = json!(60);
        doc["metrics"] = json!({"source": "prometheus", "url": "http://prom.invalid:9090"});
        let spec = DeploySpec::parse(&doc, Some(fixtures::TEMPLATE)).expect("spec");
        (env, spec, minute)
    }

    fn sums(obs: &Observation) -> (f64, f64) {
        let errors: f64 = obs.errors.iter().sum();
        let oks: f64 = obs.successes.iter().flatten().sum();
        (errors, errors + oks)
    }

    #[tokio::test]
    async fn increase_is_the_traffic_between_the_scrapes_of_the_window() {
        let (env, spec, t0) = env_with_v1().await;
        let s = ScrapedMetrics::new(env.sim.clone(), fixtures::NAMESPACE, 15, 0);
        // v1 answers 20% with 5xx from t0 + 100 s.
        env.clock.advance(100_000);
        env.sim.set_error_rate(&fixtures::image(1), 0.2);
        env.clock.advance(100_000);
        // At t0 + 127 the window [t0 + 67, t0 + 127] counts [t0 + 60, t0 + 120): 60 s of
        // 50 req/s, of which the 20 s after the onset failed at 20%.
        let q = HealthQuery::for_check(&spec, 1, t0 + 127);
        let (errors, requests) = sums(&s.observe(&q).await.expect("observe"));
        assert!((errors - 200.0).abs() < 1e-6, "{errors}");
        assert!((requests - 3000.0).abs() < 1e-6, "{requests}");
        // Up to the first scrape after the onset (t0 + 105), nothing of it is visible.
        let q = HealthQuery::for_check(&spec, 1, t0 + 104);
        assert_eq!(sums(&s.observe(&q).await.expect("observe")), (0.0, 3000.0));
        let q = HealthQuery::for_check(&spec, 1, t0 + 105);
        let (errors, _) = sums(&s.observe(&q).await.expect("observe"));
        assert!((errors - 50.0).abs() < 1e-6, "{errors}");
        // With a phase of 7 s the same check counts [t0 + 67, t0 + 127).
        let p = ScrapedMetrics::new(env.sim.clone(), fixtures::NAMESPACE, 15, 7);
        let q = HealthQuery::for_check(&spec, 1, t0 + 127);
        let (errors, _) = sums(&p.observe(&q).await.expect("observe"));
        assert!((errors - 270.0).abs() < 1e-6, "{errors}");
        env.shutdown().await;
    }

    #[tokio::test]
    async fn a_window_without_a_scrape_pair_has_no_datapoints() {
        let (env, mut spec, t0) = env_with_v1().await;
        spec.failure_threshold_time = 10;
        let s = ScrapedMetrics::new(env.sim.clone(), fixtures::NAMESPACE, 15, 0);
        env.clock.advance(200_000);
        // [t0 + 151, t0 + 161] holds no scrape: both ends fall back to t0 + 150.
        let q = HealthQuery::for_check(&spec, 1, t0 + 161);
        let obs = s.observe(&q).await.expect("observe");
        assert!(obs.errors.is_empty());
        assert_eq!(obs.successes, Some(Vec::new()));
        // The next check holds a scrape pair again.
        let q = HealthQuery::for_check(&spec, 1, t0 + 166);
        assert_eq!(sums(&s.observe(&q).await.expect("observe")), (0.0, 750.0));
        env.shutdown().await;
    }
}
