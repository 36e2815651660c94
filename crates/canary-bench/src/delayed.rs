//! A metrics source for the reaction-time benchmark that behaves like CloudWatch fed by
//! Logs metric filters: per-minute datapoints aligned to whole minutes (GetMetricData
//! rounds a recent start time down to the minute), each published `delay_secs` after
//! its minute has ended. A check at `now` therefore sees only the minutes that ended at
//! least `delay_secs` before `now`.
//!
//! It narrows each query to the visible minutes and hands it to the demo's
//! `SimMetricsSource`, which reads the simulated cluster's traffic, so an error that starts at time `t` first shows in the datapoint of the minute
//! holding `t`, visible from the end of that minute plus the delay.

use async_trait::async_trait;
use canary_cli::local::SimMetricsSource;
use canary_core::Observation;
use canary_metrics::{HealthQuery, MetricsError, MetricsSource};
use canary_sim::SimCluster;

/// The period of every datapoint, in seconds.
pub const PERIOD_SECS: i64 = 60;

/// Simulated traffic, published per minute and `delay_secs` late.
#[derive(Debug, Clone)]
pub struct DelayedMetrics {
    inner: SimMetricsSource,
    delay_secs: i64,
}

impl DelayedMetrics {
    /// Metrics of services in `namespace` of `sim`, each minute published `delay_secs`
    /// after it ends.
    pub fn new(sim: SimCluster, namespace: &str, delay_secs: i64) -> Self {
        Self {
            inner: SimMetricsSource::new(sim, namespace),
            delay_secs: delay_secs.max(0),
        }
    }

    /// The minutes a query sees: from its start rounded down to the minute, to the end
    /// of the last minute published by its end. `None` when no minute is visible.
    pub fn visible_window(&self, start_secs: i64, end_secs: i64) -> Option<(i64, i64)> {
        let start = start_secs.div_euclid(PERIOD_SECS) * PERIOD_SECS;
        let published = (end_secs - self.delay_secs).div_euclid(PERIOD_SECS) * PERIOD_SECS;
        let end = published.min(end_secs.div_euclid(PERIOD_SECS) * PERIOD_SECS);
        (end > start).then_some((start, end))
    }
}

#[async_trait]
impl MetricsSource for DelayedMetrics {
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError> {
        let Some((start, end)) = self.visible_window(q.start_secs, q.end_secs) else {
            return Ok(Observation {
                errors: Vec::new(),
                successes: q.need_requests.then(Vec::new),
                ..Observation::default()
            });
        };
        let visible = HealthQuery {
            start_secs: start,
            end_secs: end,
            period_secs: PERIOD_SECS as u32,
            ..q.clone()
        };
        self.inner.observe(&visible).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::clock::SystemClock;
    use canary_sim::SimConfig;
    use std::sync::Arc;

    fn source(delay: i64) -> DelayedMetrics {
        let sim = SimCluster::new(SimConfig::new(
            Arc::new(SystemClock),
            std::time::Duration::ZERO,
        ));
        DelayedMetrics::new(sim, "ns", delay)
    }

    #[test]
    fn a_minute_is_visible_one_period_after_it_ends() {
        let s = source(60);
        // At 10:02:30 the minute 10:01 (ended 10:02:00) is not yet 60 s old; 10:00 is.
        let base = 36_000;
        assert_eq!(
            s.visible_window(base - 300 + 150, base + 150),
            Some((base - 180, base + 60))
        );
        assert_eq!(s.visible_window(base + 10, base + 100), None);
    }

    #[test]
    fn without_a_delay_only_ended_minutes_are_visible() {
        let s = source(0);
        assert_eq!(s.visible_window(0, 119), Some((0, 60)));
        assert_eq!(s.visible_window(0, 120), Some((0, 120)));
    }
}
