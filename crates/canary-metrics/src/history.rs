//! A service's past numbers over a whole range, for `canary what-if`: each series
//! fetched once, per period, from the source deploy.json's `metrics` section names;
//! canary-core's `whatif` then slides the check windows over it locally (one query per
//! check would be 10,080 checks of several queries for a week at 60 s checks, which
//! CloudWatch would throttle and bill).
//!
//! - **CloudWatch**: one GetMetricData over the range with the check's own queries
//!   ([`CloudWatchMetrics::request`]: `Sum` of the error and success metrics, the
//!   latency metric's `pNN`), per 60 s, following `NextToken`.
//! - **Prometheus**: `/api/v1/query_range` with the step = 60 s, or the check interval
//!   when shorter (at least 15 s, a usual scrape interval). The count templates are
//!   filled with `{window}` = the step, so each sample is one period's `increase`; the
//!   latency template with `{window}` = `failure_threshold_time`, so each sample is the
//!   quantile a check ending then would read (a quantile cannot be summed from periods).
//!   A sample at time `t` covers the period ending at `t`.
//! - **VPC Lattice**: not read yet (an error says so).
//!
//! The range is cut to whole periods: `from` rounded down, `to` rounded down.

use aws_config::SdkConfig;
use canary_core::DeploySpec;
use canary_core::spec::{PrometheusSpec, SourceSpec, fill_promql};
use canary_core::whatif::{History, LatencySamples};

use crate::cloudwatch::{CloudWatchMetrics, ERRORS_ID, LATENCY_ID, SUCCESSES_ID, percentile};
use crate::prometheus::PrometheusMetrics;
use crate::{HealthQuery, MetricsError, described_queries};

/// The longest period of a history, seconds (CloudWatch's metric filters publish per
/// minute; a Prometheus step is never longer).
pub const HISTORY_PERIOD_SECS: u64 = 60;
/// The shortest Prometheus step, seconds.
pub const MIN_PROMETHEUS_STEP_SECS: u64 = 15;
/// The most GetMetricData pages one history follows (a page holds up to 100,800
/// datapoints: weeks of one-minute data).
const MAX_HISTORY_PAGES: usize = 1000;

/// What a history must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRequest {
    /// The version whose numbers are read (its workload, `<service>-<version>`).
    pub version: u32,
    /// Start of the range, Unix seconds.
    pub from: i64,
    /// End of the range, Unix seconds.
    pub to: i64,
    /// Whether successes are needed (request counts, or an injected error rate).
    pub successes: bool,
    /// Whether latency is needed (`metrics.max_latency_ms`).
    pub latency: bool,
}

impl HistoryRequest {
    /// What `spec`'s rules need over `from..to` for `version`; `inject_errors` asks for
    /// successes even when the rules do not (an injected rate is a share of requests).
    pub fn of(spec: &DeploySpec, version: u32, from: i64, to: i64, inject_errors: bool) -> Self {
        Self {
            version,
            from,
            to,
            successes: inject_errors || canary_core::Rules::of(spec).needs_requests(),
            latency: spec.metrics.latency.is_some(),
        }
    }
}

/// The period of `spec`'s history, seconds.
pub fn period_secs(spec: &DeploySpec) -> u64 {
    match spec.metrics.source {
        SourceSpec::Prometheus(_) => spec
            .check_interval()
            .clamp(MIN_PROMETHEUS_STEP_SECS, HISTORY_PERIOD_SECS),
        SourceSpec::CloudWatch { .. } | SourceSpec::Lattice(_) => HISTORY_PERIOD_SECS,
    }
}

/// The range cut to whole periods.
fn aligned(req: &HistoryRequest, period: u64) -> (i64, i64) {
    let p = i64::try_from(period.max(1)).unwrap_or(i64::MAX);
    (req.from.div_euclid(p) * p, req.to.div_euclid(p) * p)
}

/// The health query of a check spanning the whole range (CloudWatch's request, and the
/// words that describe it).
fn range_query(spec: &DeploySpec, req: &HistoryRequest) -> HealthQuery {
    let (from, to) = aligned(req, period_secs(spec));
    let mut q = HealthQuery::for_check(spec, req.version, to);
    q.start_secs = from;
    q.need_requests = req.successes;
    q.latency = if req.latency {
        spec.metrics.latency
    } else {
        None
    };
    q.stable_version = None;
    q
}

/// What the history asks its source, one `(what, query)` per line.
pub fn history_queries(spec: &DeploySpec, req: &HistoryRequest) -> Vec<(String, String)> {
    let q = range_query(spec, req);
    match &spec.metrics.source {
        SourceSpec::Prometheus(p) => {
            let step = period_secs(spec);
            let workload = q.workload(req.version);
            let fill = |t: &str, window: u64, quantile: f64| {
                fill_promql(t, &q.namespace, &q.service, &workload, window, quantile)
            };
            let mut out = vec![
                (
                    "errors".to_owned(),
                    format!(
                        "{} (range, step {step} s)",
                        fill(&p.queries.errors, step, 0.0)
                    ),
                ),
                (
                    "requests".to_owned(),
                    format!(
                        "{} (range, step {step} s)",
                        fill(&p.queries.requests, step, 0.0)
                    ),
                ),
            ];
            if let (Some(rule), Some(t), true) =
                (spec.metrics.latency, &p.queries.latency, req.latency)
            {
                out.push((
                    "latency".to_owned(),
                    format!(
                        "{} (range, step {step} s)",
                        fill(t, spec.failure_threshold_time, rule.quantile)
                    ),
                ));
            }
            out
        }
        _ => described_queries(&q)
            .into_iter()
            .map(|(what, query)| {
                let what = what.trim_start_matches("canary ").to_owned();
                (what, format!("{query}, one GetMetricData over the range"))
            })
            .collect(),
    }
}

/// The numbers of `req.version` over the range, per period, from the source `spec`
/// names. `sdk` is needed for CloudWatch and for Prometheus with SigV4.
pub async fn history(
    spec: &DeploySpec,
    sdk: Option<&SdkConfig>,
    req: &HistoryRequest,
) -> Result<History, MetricsError> {
    match &spec.metrics.source {
        SourceSpec::CloudWatch { .. } => {
            let sdk = sdk.ok_or_else(|| MetricsError::Setup {
                what: "credentials",
                message: "reading CloudWatch needs an AWS configuration".into(),
                source: None,
            })?;
            cloudwatch_history(&CloudWatchMetrics::new(sdk)?, spec, req).await
        }
        SourceSpec::Prometheus(p) => {
            let source = PrometheusMetrics::new(p, sdk)?;
            prometheus_history(&source, p, spec, req).await
        }
        SourceSpec::Lattice(_) => Err(MetricsError::Setup {
            what: "source",
            message: "what-if does not read VPC Lattice yet".into(),
            source: None,
        }),
    }
}

/// One series placed in its periods: `(time, value)` where `time` is a period's start
/// (`ends`: its end), values outside the range dropped, two in one period added.
fn place(
    points: &[(i64, f64)],
    from: i64,
    period: u64,
    len: usize,
    ends: bool,
) -> Vec<Option<f64>> {
    let p = i64::try_from(period.max(1)).unwrap_or(i64::MAX);
    let mut out = vec![None; len];
    for &(t, v) in points {
        let start = if ends { t - p } else { t };
        if start < from {
            continue;
        }
        let i = usize::try_from((start - from) / p).unwrap_or(usize::MAX);
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(slot.unwrap_or(0.0) + v);
        }
    }
    out
}

/// One GetMetricData over the whole range.
pub async fn cloudwatch_history(
    cw: &CloudWatchMetrics,
    spec: &DeploySpec,
    req: &HistoryRequest,
) -> Result<History, MetricsError> {
    let period = HISTORY_PERIOD_SECS;
    let q = range_query(spec, req);
    let input = CloudWatchMetrics::request(&q)?;
    let len = usize::try_from((q.end_secs - q.start_secs).max(0) / period as i64).unwrap_or(0);
    let mut errors = vec![None; len];
    let mut successes = req.successes.then(|| vec![None; len]);
    let mut latency = q.latency.map(|_| vec![None; len]);
    for (id, points) in cw.get_metric_data(&input, MAX_HISTORY_PAGES).await? {
        let placed = place(&points, q.start_secs, period, len, false);
        match id.as_str() {
            ERRORS_ID => errors = placed,
            SUCCESSES_ID => successes = Some(placed),
            LATENCY_ID => latency = Some(placed),
            other => {
                return Err(MetricsError::BadResponse {
                    operation: "GetMetricData",
                    message: format!("a result for query `{other}`, which was not asked"),
                    source: None,
                });
            }
        }
    }
    if let (Some(rule), Some(l)) = (q.latency, &latency) {
        tracing::debug!(statistic = %percentile(rule.quantile), datapoints = l.iter().flatten().count(), "latency history");
    }
    Ok(History {
        from: q.start_secs,
        period_secs: period,
        errors,
        successes,
        latency_ms: latency,
        latency_samples: LatencySamples::PerPeriod,
    })
}

/// Range queries over the whole range: errors and requests per step, latency over the
/// check window at every step.
pub async fn prometheus_history(
    source: &PrometheusMetrics,
    p: &PrometheusSpec,
    spec: &DeploySpec,
    req: &HistoryRequest,
) -> Result<History, MetricsError> {
    let step = period_secs(spec);
    let (from, to) = aligned(req, step);
    let len = usize::try_from((to - from).max(0) / step as i64).unwrap_or(0);
    let first = from + step as i64;
    let workload = format!("{}-{}", spec.microservice_name, req.version);
    let fill = |t: &str, window: u64, quantile: f64| {
        fill_promql(
            t,
            &spec.kubernetes_namespace,
            &spec.microservice_name,
            &workload,
            window,
            quantile,
        )
    };
    let range = |query: String| async move {
        if len == 0 {
            return Ok(Vec::new());
        }
        source.range(&query, first, to, step).await
    };
    let errors = place(
        &range(fill(&p.queries.errors, step, 0.0)).await?,
        from,
        step,
        len,
        true,
    );
    let successes = if req.successes {
        let requests = place(
            &range(fill(&p.queries.requests, step, 0.0)).await?,
            from,
            step,
            len,
            true,
        );
        // As a check reads them: no request sample is no datapoint; no error sample
        // next to a request count is 0 errors (a service that never failed has no 5xx
        // series).
        Some(
            requests
                .iter()
                .zip(&errors)
                .map(|(r, e)| r.map(|r| (r - e.unwrap_or(0.0)).max(0.0)))
                .collect(),
        )
    } else {
        None
    };
    let latency = match (spec.metrics.latency, &p.queries.latency, req.latency) {
        (Some(rule), Some(t), true) => Some(place(
            &range(fill(t, spec.failure_threshold_time, rule.quantile)).await?,
            from,
            step,
            len,
            true,
        )),
        (Some(_), None, true) => {
            return Err(MetricsError::Setup {
                what: "request",
                message: "metrics.queries has no latency query (needed for max_latency_ms)".into(),
                source: None,
            });
        }
        _ => None,
    };
    Ok(History {
        from,
        period_secs: step,
        errors,
        successes,
        latency_ms: latency,
        latency_samples: LatencySamples::WindowEnding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_their_periods_and_outside_ones_are_dropped() {
        let points = [(60, 1.0), (120, 2.0), (130, 0.5), (0, 9.0), (400, 9.0)];
        assert_eq!(
            place(&points, 60, 60, 3, false),
            [Some(1.0), Some(2.5), None]
        );
        // Samples that end their period (Prometheus): the one at 60 covers [0, 60).
        assert_eq!(place(&points, 60, 60, 3, true), [Some(2.5), None, None]);
    }

    fn spec(extra: serde_json::Value) -> DeploySpec {
        let mut doc = serde_json::json!({
            "cluster_name": "c1",
            "kubernetes_namespace": "shop",
            "microservice_name": "web",
            "percentage_step": 10,
            "wait_time": 30,
            "container_image": "repo/web:2",
        });
        if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        DeploySpec::parse(&doc, Some("kind: Deployment\n")).expect("valid deploy.json")
    }

    #[test]
    fn prometheus_steps_follow_the_check_interval_between_15_and_60_seconds() {
        let prom = serde_json::json!({"metrics": {"source": "prometheus",
            "url": "http://127.0.0.1:9090", "preset": "istio"}});
        assert_eq!(period_secs(&spec(prom.clone())), 30);
        let mut fast = prom.clone();
        fast["check_interval"] = 5.into();
        assert_eq!(period_secs(&spec(fast)), 15);
        assert_eq!(period_secs(&spec(serde_json::json!({}))), 60);
        let req = HistoryRequest::of(&spec(prom.clone()), 3, 1_000, 5_000, false);
        let queries = history_queries(&spec(prom), &req);
        assert!(
            queries[0].1.contains("web-3") && queries[0].1.contains("[30s]"),
            "{queries:?}"
        );
        assert!(queries[0].1.ends_with("(range, step 30 s)"), "{queries:?}");
    }

    #[test]
    fn the_cloudwatch_query_spans_the_range_cut_to_whole_minutes() {
        let s = spec(serde_json::json!({"max_error_rate": 5}));
        let req = HistoryRequest::of(&s, 2, 1_010, 4_630, false);
        assert!(req.successes);
        let q = range_query(&s, &req);
        assert_eq!((q.start_secs, q.end_secs), (960, 4_620));
        let input = CloudWatchMetrics::request(&q).expect("request");
        assert_eq!(input.metric_data_queries().len(), 2);
    }
}
