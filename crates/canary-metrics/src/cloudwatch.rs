//! The CloudWatch metrics source: `GetMetricData` with plain `MetricStat` queries (no
//! metric math, which moto lacks; ratios are computed by the verdict maths), `Sum` per
//! 60-second period over the window, following `NextToken` pages.
//!
//! The seed-compatible query is the `Sum` of `5xx-<microservice>` in namespace
//! `EnvoyPrometheus/ResponseCode`. The 2xx metric is queried too when the health spec
//! needs request counts (`max_error_rate`, `min_request_count`). Every query carries
//! `metric_dimensions` plus, when `version_dimension` is set,
//! `{<version_dimension>: "<service>-<canary_version>"}`, so only the canary's own
//! datapoints count.
//!
//! [`CloudWatchMetrics::put_metric_data`] writes datapoints (tests, the demo).

pub mod api;

use async_trait::async_trait;
use aws_config::SdkConfig;
use canary_core::Observation;
use serde::{Deserialize, Serialize};

pub use api::{CloudWatchApi, RetryPolicy};

use crate::{HealthQuery, MetricsError, MetricsSource};

/// The most pages one query follows (a window of a day at one-minute periods fits in one).
const MAX_PAGES: usize = 50;
/// The query id of the error metric.
const ERRORS_ID: &str = "errors";
/// The query id of the success metric.
const SUCCESSES_ID: &str = "successes";
/// CloudWatch accepts at most this many datapoints per PutMetricData call.
const PUT_BATCH: usize = 1000;

/// Health metrics from CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    api: CloudWatchApi,
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
    /// A source for the SDK configuration's region, credentials and endpoint
    /// (see [`CloudWatchApi::new`]).
    pub fn new(sdk: &SdkConfig) -> Result<Self, MetricsError> {
        Ok(Self {
            api: CloudWatchApi::new(sdk)?,
        })
    }

    /// The same source with another retry policy.
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        Self {
            api: self.api.with_retry(retry),
        }
    }

    /// The GetMetricData request for `q` (without a `NextToken`).
    pub fn request(q: &HealthQuery) -> GetMetricDataInput {
        let dimensions: Vec<Dimension> = q
            .dimensions()
            .into_iter()
            .map(|(name, value)| Dimension { name, value })
            .collect();
        let stat = |id: &str, metric: &str| MetricDataQuery {
            id: id.to_owned(),
            metric_stat: MetricStat {
                metric: Metric {
                    namespace: q.health.metric_namespace.clone(),
                    metric_name: metric.to_owned(),
                    dimensions: dimensions.clone(),
                },
                period: q.period_secs,
                stat: "Sum".into(),
            },
            return_data: true,
        };
        let mut queries = vec![stat(ERRORS_ID, &q.health.error_metric)];
        if q.need_requests {
            queries.push(stat(SUCCESSES_ID, &q.health.success_metric));
        }
        GetMetricDataInput {
            metric_data_queries: queries,
            start_time: q.start_secs,
            end_time: q.end_secs,
            scan_by: "TimestampAscending".into(),
            next_token: None,
        }
    }

    /// Writes datapoints to `namespace`, in batches of 1000.
    pub async fn put_metric_data(
        &self,
        namespace: &str,
        data: &[MetricDatum],
    ) -> Result<(), MetricsError> {
        for batch in data.chunks(PUT_BATCH) {
            let input = PutMetricDataInput {
                namespace: namespace.to_owned(),
                metric_data: batch
                    .iter()
                    .map(|d| PutDatum {
                        metric_name: d.name.clone(),
                        dimensions: d
                            .dimensions
                            .iter()
                            .map(|(name, value)| Dimension {
                                name: name.clone(),
                                value: value.clone(),
                            })
                            .collect(),
                        timestamp: d.timestamp_secs,
                        value: d.value,
                        unit: "Count".into(),
                    })
                    .collect(),
            };
            let _: serde_json::Value = self.api.call("PutMetricData", &input).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl MetricsSource for CloudWatchMetrics {
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError> {
        let mut input = Self::request(q);
        let mut errors = Vec::new();
        let mut successes = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: GetMetricDataOutput = self.api.call("GetMetricData", &input).await?;
            for result in page.metric_data_results {
                match result.status_code.as_deref() {
                    Some("InternalError") => {
                        return Err(MetricsError::Transient {
                            operation: "GetMetricData",
                            code: "InternalError".into(),
                            message: format!("query `{}` has status InternalError", result.id),
                            attempts: 1,
                        });
                    }
                    Some("Forbidden") => {
                        return Err(MetricsError::Refused {
                            operation: "GetMetricData",
                            status: 200,
                            code: "Forbidden".into(),
                            message: format!("query `{}` has status Forbidden", result.id),
                        });
                    }
                    _ => {}
                }
                match result.id.as_str() {
                    ERRORS_ID => errors.extend(result.values),
                    SUCCESSES_ID => successes.extend(result.values),
                    other => {
                        return Err(MetricsError::BadResponse {
                            operation: "GetMetricData",
                            message: format!("a result for query `{other}`, which was not asked"),
                        });
                    }
                }
            }
            match page.next_token {
                Some(token) if !token.is_empty() => input.next_token = Some(token),
                _ => {
                    return Ok(Observation {
                        errors,
                        successes: q.need_requests.then_some(successes),
                    });
                }
            }
        }
        Err(MetricsError::BadResponse {
            operation: "GetMetricData",
            message: format!("still more pages after {MAX_PAGES}; the window is too long"),
        })
    }
}

/// GetMetricData's input (the fields used here).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricDataInput {
    pub metric_data_queries: Vec<MetricDataQuery>,
    /// Unix seconds.
    pub start_time: i64,
    /// Unix seconds.
    pub end_time: i64,
    pub scan_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One query of a GetMetricData call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDataQuery {
    pub id: String,
    pub metric_stat: MetricStat,
    pub return_data: bool,
}

/// A metric, a period and a statistic.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStat {
    pub metric: Metric,
    pub period: u32,
    pub stat: String,
}

/// A metric's identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metric {
    pub namespace: String,
    pub metric_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<Dimension>,
}

/// A metric dimension.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetMetricDataOutput {
    #[serde(default)]
    metric_data_results: Vec<MetricDataResult>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricDataResult {
    id: String,
    #[serde(default)]
    values: Vec<f64>,
    #[serde(default)]
    status_code: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutMetricDataInput {
    namespace: String,
    metric_data: Vec<PutDatum>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutDatum {
    metric_name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dimensions: Vec<Dimension>,
    timestamp: i64,
    value: f64,
    unit: String,
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
        }
    }

    #[test]
    fn the_request_is_plain_metric_stats_with_sum_over_sixty_seconds() {
        let body = serde_json::to_value(CloudWatchMetrics::request(&query(None, false)))
            .expect("serializes");
        assert_eq!(
            body,
            serde_json::json!({
                "MetricDataQueries": [{
                    "Id": "errors",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "EnvoyPrometheus/ResponseCode",
                            "MetricName": "5xx-web",
                            "Dimensions": [{"Name": "ClusterName", "Value": "c1"}],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                    "ReturnData": true,
                }],
                "StartTime": 1000,
                "EndTime": 1600,
                "ScanBy": "TimestampAscending",
            })
        );
    }

    #[test]
    fn request_counts_and_the_version_dimension_are_added_when_configured() {
        let input = CloudWatchMetrics::request(&query(Some("pod_controller_name"), true));
        let names: Vec<&str> = input
            .metric_data_queries
            .iter()
            .map(|q| q.metric_stat.metric.metric_name.as_str())
            .collect();
        assert_eq!(names, ["5xx-web", "2xx-web"]);
        for q in &input.metric_data_queries {
            assert_eq!(
                q.metric_stat.metric.dimensions,
                vec![
                    Dimension {
                        name: "ClusterName".into(),
                        value: "c1".into()
                    },
                    Dimension {
                        name: "pod_controller_name".into(),
                        value: "web-3".into()
                    },
                ]
            );
        }
    }
}
