//! The CloudWatch metrics source, through `aws-sdk-cloudwatch` (which speaks Smithy
//! RPC v2 CBOR to CloudWatch; moto 5.2.6 and newer understand it): `GetMetricData`
//! with plain `MetricStat` queries (no metric math, which moto lacks; ratios are
//! computed by the verdict maths), `Sum` per 60-second period over the window,
//! following `NextToken` pages.
//!
//! The seed-compatible query is the `Sum` of `5xx-<microservice>` in namespace
//! `EnvoyPrometheus/ResponseCode`. The 2xx metric is queried too when the health spec
//! needs request counts (`max_error_rate`, `min_request_count`). Every query carries
//! `metric_dimensions` plus, when `version_dimension` is set,
//! `{<version_dimension>: "<service>-<canary_version>"}`, so only the canary's own
//! datapoints count.
//!
//! With `metrics.compare_to_stable`, the same two metrics are asked for the stable
//! version's workload too (`stable_errors`, `stable_successes`); with
//! `metrics.max_latency_ms`, the `latency_metric_name` metric with the extended
//! statistic of the rule's quantile (`p99`) per period, judged on the highest of those
//! datapoints (a per-minute p99 above the limit in any minute of the window counts).
//!
//! Retries are this crate's own (see [`retry`]): the SDK client is built with its
//! retries off and one attempt timeout, so every failed call is classified once.
//!
//! [`CloudWatchMetrics::put_metric_data`] writes datapoints (tests, the demo).

pub(crate) mod retry;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::config::retry::RetryConfig;
use aws_sdk_cloudwatch::config::timeout::TimeoutConfig;
use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataInput;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StandardUnit, StatusCode,
};
use canary_core::Observation;
use canary_core::compare::Counts;

pub use retry::RetryPolicy;

use crate::{HealthQuery, MetricsError, MetricsSource};

/// The most pages one query follows (a window of a day at one-minute periods fits in one).
const MAX_PAGES: usize = 50;
/// The query id of the error metric.
pub(crate) const ERRORS_ID: &str = "errors";
/// The query id of the success metric.
pub(crate) const SUCCESSES_ID: &str = "successes";
/// The query id of the stable version's error metric.
const STABLE_ERRORS_ID: &str = "stable_errors";
/// The query id of the stable version's success metric.
const STABLE_SUCCESSES_ID: &str = "stable_successes";
/// The query id of the latency metric.
pub(crate) const LATENCY_ID: &str = "latency";
/// CloudWatch accepts at most this many datapoints per PutMetricData call.
const PUT_BATCH: usize = 1000;
/// The operation name in errors and logs.
const GET_METRIC_DATA: &str = "GetMetricData";

/// Health metrics from CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: Client,
    retry: RetryPolicy,
}

/// One datapoint to write.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDatum {
    /// The metric's name.
    pub name: String,
    /// Its dimensions, `(name, value)`.
    pub dimensions: Vec<(String, String)>,
    /// When, in Unix seconds.
    pub timestamp_secs: i64,
    /// The value (a count).
    pub value: f64,
}

impl CloudWatchMetrics {
    /// A source for the SDK configuration's region, credentials and endpoint. The
    /// endpoint is, as for every SDK client: `$AWS_ENDPOINT_URL_CLOUDWATCH`, the
    /// configuration's endpoint URL (`$AWS_ENDPOINT_URL` or `endpoint_url` in the
    /// profile), or CloudWatch's regional endpoint.
    pub fn new(sdk: &SdkConfig) -> Result<Self, MetricsError> {
        if sdk.region().is_none() {
            return Err(MetricsError::Setup {
                what: "region",
                message: "no AWS region is configured (set AWS_REGION)".into(),
                source: None,
            });
        }
        if sdk.credentials_provider().is_none() {
            return Err(MetricsError::Setup {
                what: "credentials",
                message: "the SDK configuration has no credentials provider".into(),
                source: None,
            });
        }
        let retry = RetryPolicy::default();
        let config = aws_sdk_cloudwatch::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(attempt_timeouts(sdk.timeout_config(), &retry))
            .build();
        Ok(Self {
            client: Client::from_conf(config),
            retry,
        })
    }

    /// The same source with another retry policy.
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        let retry = RetryPolicy {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        let config = self.client.config();
        let timeouts = attempt_timeouts(config.timeout_config(), &retry);
        let config = config.to_builder().timeout_config(timeouts).build();
        Self {
            client: Client::from_conf(config),
            retry,
        }
    }

    /// The GetMetricData request for `q` (without a `NextToken`).
    pub fn request(q: &HealthQuery) -> Result<GetMetricDataInput, MetricsError> {
        let dims = |version: u32| -> Option<Vec<Dimension>> {
            let dims: Vec<Dimension> = q
                .dimensions_of(version)
                .into_iter()
                .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                .collect();
            (!dims.is_empty()).then_some(dims)
        };
        let stat = |id: &str, metric: &str, version: u32, stat: &str| {
            let metric = Metric::builder()
                .namespace(&q.health.metric_namespace)
                .metric_name(metric)
                .set_dimensions(dims(version))
                .build();
            MetricDataQuery::builder()
                .id(id)
                .metric_stat(
                    MetricStat::builder()
                        .metric(metric)
                        .period(i32::try_from(q.period_secs).unwrap_or(i32::MAX))
                        .stat(stat)
                        .build(),
                )
                .return_data(true)
                .build()
        };
        let canary = q.canary_version;
        let mut queries = vec![stat(ERRORS_ID, &q.health.error_metric, canary, "Sum")];
        if q.need_requests {
            queries.push(stat(SUCCESSES_ID, &q.health.success_metric, canary, "Sum"));
        }
        if let Some(stable) = q.stable_version {
            queries.push(stat(
                STABLE_ERRORS_ID,
                &q.health.error_metric,
                stable,
                "Sum",
            ));
            queries.push(stat(
                STABLE_SUCCESSES_ID,
                &q.health.success_metric,
                stable,
                "Sum",
            ));
        }
        if let Some(rule) = q.latency {
            let canary_core::spec::SourceSpec::CloudWatch {
                latency_metric: Some(metric),
            } = &q.source
            else {
                return Err(MetricsError::Setup {
                    what: "request",
                    message:
                        "max_latency_ms with source `cloudwatch` needs metrics.latency_metric_name"
                            .into(),
                    source: None,
                });
            };
            queries.push(stat(LATENCY_ID, metric, canary, &percentile(rule.quantile)));
        }
        GetMetricDataInput::builder()
            .set_metric_data_queries(Some(queries))
            .start_time(DateTime::from_secs(q.start_secs))
            .end_time(DateTime::from_secs(q.end_secs))
            .scan_by(ScanBy::TimestampAscending)
            .build()
            .map_err(|e| MetricsError::Setup {
                what: "request",
                message: format!(
                    "the GetMetricData request for `{}` is incomplete",
                    q.service
                ),
                source: Some(Box::new(e)),
            })
    }

    /// Writes datapoints to `namespace`, in batches of 1000.
    pub async fn put_metric_data(
        &self,
        namespace: &str,
        data: &[MetricDatum],
    ) -> Result<(), MetricsError> {
        for batch in data.chunks(PUT_BATCH) {
            let batch: Vec<aws_sdk_cloudwatch::types::MetricDatum> = batch
                .iter()
                .map(|d| {
                    let dimensions: Vec<Dimension> = d
                        .dimensions
                        .iter()
                        .map(|(name, value)| Dimension::builder().name(name).value(value).build())
                        .collect();
                    aws_sdk_cloudwatch::types::MetricDatum::builder()
                        .metric_name(&d.name)
                        .set_dimensions((!dimensions.is_empty()).then_some(dimensions))
                        .timestamp(DateTime::from_secs(d.timestamp_secs))
                        .value(d.value)
                        .unit(StandardUnit::Count)
                        .build()
                })
                .collect();
            retry::call(&self.retry, "PutMetricData", || {
                self.client
                    .put_metric_data()
                    .namespace(namespace)
                    .set_metric_data(Some(batch.clone()))
                    .send()
            })
            .await?;
        }
        Ok(())
    }
}

/// The SDK configuration's timeouts with one attempt limited to `retry.attempt_timeout`.
pub(crate) fn attempt_timeouts(base: Option<&TimeoutConfig>, retry: &RetryPolicy) -> TimeoutConfig {
    base.map(TimeoutConfig::to_builder)
        .unwrap_or_default()
        .operation_attempt_timeout(retry.attempt_timeout)
        .build()
}

/// CloudWatch's extended statistic for a quantile: 0.99 → `p99`, 0.995 → `p99.5`.
pub fn percentile(quantile: f64) -> String {
    let p = format!("{:.3}", quantile * 100.0);
    format!("p{}", p.trim_end_matches('0').trim_end_matches('.'))
}

impl CloudWatchMetrics {
    /// Runs `input`, following `NextToken` for at most `max_pages` pages: every query
    /// id's `(timestamp, value)` datapoints, in the order CloudWatch answered them. A
    /// query with status `InternalError` is transient, `Forbidden` refused.
    pub(crate) async fn get_metric_data(
        &self,
        input: &GetMetricDataInput,
        max_pages: usize,
    ) -> Result<Vec<(String, Vec<(i64, f64)>)>, MetricsError> {
        let mut next_token: Option<String> = None;
        let mut out: Vec<(String, Vec<(i64, f64)>)> = Vec::new();
        for _ in 0..max_pages {
            let page = retry::call(&self.retry, GET_METRIC_DATA, || {
                self.client
                    .get_metric_data()
                    .set_metric_data_queries(input.metric_data_queries.clone())
                    .set_start_time(input.start_time)
                    .set_end_time(input.end_time)
                    .set_scan_by(input.scan_by.clone())
                    .set_next_token(next_token.clone())
                    .send()
            })
            .await?;
            for result in page.metric_data_results() {
                let id = result.id().unwrap_or_default();
                match result.status_code() {
                    Some(StatusCode::InternalError) => {
                        return Err(MetricsError::Transient {
                            operation: GET_METRIC_DATA,
                            code: "InternalError".into(),
                            message: format!("query `{id}` has status InternalError"),
                            attempts: 1,
                            source: None,
                        });
                    }
                    Some(StatusCode::Forbidden) => {
                        return Err(MetricsError::Refused {
                            operation: GET_METRIC_DATA,
                            status: 200,
                            code: "Forbidden".into(),
                            message: format!("query `{id}` has status Forbidden"),
                            source: None,
                        });
                    }
                    _ => {}
                }
                let points = result
                    .timestamps()
                    .iter()
                    .map(DateTime::secs)
                    .zip(result.values().iter().copied());
                match out.iter_mut().find(|(known, _)| known == id) {
                    Some((_, values)) => values.extend(points),
                    None => out.push((id.to_owned(), points.collect())),
                }
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(out),
            }
        }
        Err(MetricsError::BadResponse {
            operation: GET_METRIC_DATA,
            message: format!("still more pages after {max_pages}; the range is too long"),
            source: None,
        })
    }
}

#[async_trait]
impl MetricsSource for CloudWatchMetrics {
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError> {
        let input = Self::request(q)?;
        let mut errors = Vec::new();
        let mut successes = Vec::new();
        let mut stable = (Vec::new(), Vec::new());
        let mut latency: Vec<f64> = Vec::new();
        for (id, points) in self.get_metric_data(&input, MAX_PAGES).await? {
            let values = points.into_iter().map(|(_, v)| v);
            match id.as_str() {
                ERRORS_ID => errors.extend(values),
                SUCCESSES_ID => successes.extend(values),
                STABLE_ERRORS_ID => stable.0.extend(values),
                STABLE_SUCCESSES_ID => stable.1.extend(values),
                LATENCY_ID => latency.extend(values),
                other => {
                    return Err(MetricsError::BadResponse {
                        operation: GET_METRIC_DATA,
                        message: format!("a result for query `{other}`, which was not asked"),
                        source: None,
                    });
                }
            }
        }
        let stable_errors: f64 = stable.0.iter().sum();
        let stable_requests = stable_errors + stable.1.iter().sum::<f64>();
        Ok(Observation {
            errors,
            successes: q.need_requests.then_some(successes),
            latency_ms: latency.into_iter().reduce(f64::max),
            stable: q
                .stable_version
                .map(|_| Counts::new(stable_requests, stable_errors)),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use canary_core::{HealthSpec, NoDataPolicy};

    use super::*;

    fn query(version_dimension: Option<&str>, need_requests: bool) -> HealthQuery {
        HealthQuery {
            health: HealthSpec {
                max_error_rate: None,
                min_request_count: None,
                no_data: NoDataPolicy::Fail,
                max_holds: 3,
                metric_namespace: "EnvoyPrometheus/ResponseCode".into(),
                error_metric: "5xx-web".into(),
                success_metric: "2xx-web".into(),
                dimensions: BTreeMap::from([("ClusterName".to_owned(), "c1".to_owned())]),
                version_dimension: version_dimension.map(str::to_owned),
            },
            service: "web".into(),
            canary_version: 3,
            start_secs: 1_000,
            end_secs: 1_600,
            period_secs: 60,
            need_requests,
            namespace: "shop".into(),
            source: canary_core::spec::SourceSpec::CloudWatch {
                latency_metric: Some("latency-web".into()),
            },
            latency: None,
            stable_version: None,
        }
    }

    #[test]
    fn quantiles_are_cloudwatch_percentile_statistics() {
        assert_eq!(percentile(0.99), "p99");
        assert_eq!(percentile(0.995), "p99.5");
        assert_eq!(percentile(0.5), "p50");
        assert_eq!(percentile(0.999), "p99.9");
    }

    #[test]
    fn the_stable_version_and_latency_add_their_own_queries() {
        let mut q = query(Some("pod_controller_name"), true);
        q.stable_version = Some(2);
        q.latency = Some(canary_core::spec::LatencyRule {
            max_ms: 250.0,
            quantile: 0.99,
        });
        let input = CloudWatchMetrics::request(&q).expect("request");
        let found: Vec<(&str, &str, &str, &str)> = input
            .metric_data_queries()
            .iter()
            .map(|d| {
                let stat = d.metric_stat().expect("stat");
                let m = metric_of(d);
                let version = m
                    .dimensions()
                    .iter()
                    .find(|d| d.name() == Some("pod_controller_name"))
                    .and_then(Dimension::value)
                    .unwrap_or_default();
                (
                    d.id().unwrap_or_default(),
                    m.metric_name().unwrap_or_default(),
                    version,
                    stat.stat().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("errors", "5xx-web", "web-3", "Sum"),
                ("successes", "2xx-web", "web-3", "Sum"),
                ("stable_errors", "5xx-web", "web-2", "Sum"),
                ("stable_successes", "2xx-web", "web-2", "Sum"),
                ("latency", "latency-web", "web-3", "p99"),
            ]
        );
    }

    fn metric_of(q: &MetricDataQuery) -> &Metric {
        q.metric_stat()
            .and_then(MetricStat::metric)
            .expect("a MetricStat query")
    }

    #[test]
    fn the_request_is_plain_metric_stats_with_sum_over_sixty_seconds() {
        let input = CloudWatchMetrics::request(&query(None, false)).expect("request");
        let want = MetricDataQuery::builder()
            .id("errors")
            .metric_stat(
                MetricStat::builder()
                    .metric(
                        Metric::builder()
                            .namespace("EnvoyPrometheus/ResponseCode")
                            .metric_name("5xx-web")
                            .dimensions(
                                Dimension::builder().name("ClusterName").value("c1").build(),
                            )
                            .build(),
                    )
                    .period(60)
                    .stat("Sum")
                    .build(),
            )
            .return_data(true)
            .build();
        assert_eq!(input.metric_data_queries(), [want]);
        assert_eq!(input.start_time(), Some(&DateTime::from_secs(1000)));
        assert_eq!(input.end_time(), Some(&DateTime::from_secs(1600)));
        assert_eq!(input.scan_by(), Some(&ScanBy::TimestampAscending));
        assert_eq!(input.next_token(), None);
    }

    #[test]
    fn request_counts_and_the_version_dimension_are_added_when_configured() {
        let input =
            CloudWatchMetrics::request(&query(Some("pod_controller_name"), true)).expect("request");
        let names: Vec<&str> = input
            .metric_data_queries()
            .iter()
            .filter_map(|q| metric_of(q).metric_name())
            .collect();
        assert_eq!(names, ["5xx-web", "2xx-web"]);
        for q in input.metric_data_queries() {
            assert_eq!(
                metric_of(q).dimensions(),
                [
                    Dimension::builder().name("ClusterName").value("c1").build(),
                    Dimension::builder()
                        .name("pod_controller_name")
                        .value("web-3")
                        .build(),
                ]
            );
        }
    }
}
