//! The VPC Lattice metrics source: each version's requests, 5xx and latency as VPC
//! Lattice itself counts them for the version's target group, read from CloudWatch.
//!
//! **Which target group.** A version's workload `<service>-<version>` is a Deployment and,
//! by convention, a Kubernetes Service of the same name. Without
//! `metrics.target_group_names`, its target group is the one the AWS Gateway API
//! Controller made for that Service: the controller names it
//! `k8s-<namespace>-<service>-<10 random letters>` (each part cut to 55 characters) and
//! tags it with `application-networking.k8s.aws/ServiceNamespace` and
//! `application-networking.k8s.aws/ServiceName` (plus `ClusterName`, `SourceTypeKey` =
//! `HTTPRoute`, `GRPCRoute` or `ServiceExport`, `RouteName`, `RouteNamespace`). Those
//! keys and the name are set in aws/aws-application-networking-k8s
//! `pkg/model/lattice/targetgroup.go` (the `K8S...Key` constants over `aws.TagBase` =
//! `application-networking.k8s.aws/` of `pkg/aws/cloud.go`, and `TgNamePrefix`), and
//! written on creation in `pkg/deploy/lattice/target_group_manager.go`; both unchanged
//! since the controller's target group rewrite of November 2023 (v1.0). The name narrows
//! the search (one `ListTargetGroups` pass, then `ListTagsForResource` only for the
//! target groups named for the Service); the tags decide. When the Service has target
//! groups for a route and for a `ServiceExport`, the route's is the one the canary's
//! traffic goes through. With `metrics.target_group_names`, the template filled for the
//! version is looked up by name instead.
//!
//! Lookups are cached per source (clones share the cache): a found target group is
//! kept for every later check; one not found is looked up again next time (the
//! controller may not have made it yet), and is a clear, non-transient error.
//!
//! **Which metrics.** CloudWatch namespace `AWS/VpcLattice`, target group metrics with
//! the single dimension `TargetGroup` = the target group's id (`tg-...`):
//! `TotalRequestCount` and `HTTPCode_5XX_Count` (`Sum`), and `RequestTime` (the time
//! a request took, in milliseconds; read with an extended statistic such as `p99`).
//! Source: the AWS page "CloudWatch metrics for Amazon VPC Lattice" (VPC Lattice User
//! Guide, `vpc-lattice/latest/ug/monitoring-cloudwatch.html`, sections "Target group
//! metrics" and "Service metrics"). VPC Lattice reports a target group's metrics only
//! while it has traffic, so a window without any datapoint is `None`, never a silent
//! zero.
//!
//! Every call (ListTargetGroups, ListTagsForResource, GetMetricData) goes through the
//! crate's retry loop ([`RetryPolicy`]): the SDK clients' own retries are off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_config::SdkConfig;
use aws_sdk_cloudwatch::config::retry::RetryConfig;
use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataInput;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_sdk_vpclattice::types::{TargetGroupStatus, TargetGroupSummary};
use canary_core::compare::Counts;
use canary_core::spec::{LatticeSpec, fill_promql};

use crate::MetricsError;
use crate::cloudwatch::retry::{self, RetryPolicy};
use crate::cloudwatch::{CloudWatchMetrics, attempt_timeouts, percentile};

/// The CloudWatch namespace of VPC Lattice's metrics.
pub const NAMESPACE: &str = "AWS/VpcLattice";
/// The dimension that selects one target group's metrics; its value is the id.
pub const TARGET_GROUP_DIMENSION: &str = "TargetGroup";
/// Requests the target group handled.
pub const REQUESTS_METRIC: &str = "TotalRequestCount";
/// 5xx answers of the target group's targets.
pub const ERRORS_METRIC: &str = "HTTPCode_5XX_Count";
/// How long requests took, in milliseconds.
pub const LATENCY_METRIC: &str = "RequestTime";

/// The controller's tag with the Kubernetes Service's namespace.
pub const SERVICE_NAMESPACE_TAG: &str = "application-networking.k8s.aws/ServiceNamespace";
/// The controller's tag with the Kubernetes Service's name.
pub const SERVICE_NAME_TAG: &str = "application-networking.k8s.aws/ServiceName";
/// The controller's tag with what made the target group (`HTTPRoute`, `GRPCRoute`,
/// `ServiceExport`).
pub const SOURCE_TYPE_TAG: &str = "application-networking.k8s.aws/SourceTypeKey";
/// The controller's tag with the cluster's name.
pub const CLUSTER_NAME_TAG: &str = "application-networking.k8s.aws/ClusterName";
/// The controller cuts the namespace and the name to this many characters in a target
/// group's name.
const CONTROLLER_NAME_PART: usize = 55;

/// The most pages one listing or query follows.
const MAX_PAGES: usize = 100;
const REQUESTS_ID: &str = "requests";
const ERRORS_ID: &str = "errors";
const LATENCY_ID: &str = "latency";
const GET_METRIC_DATA: &str = "GetMetricData";
const LIST_TARGET_GROUPS: &str = "ListTargetGroups";
const LIST_TAGS: &str = "ListTagsForResource";

/// One VPC Lattice target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// `tg-...`, the value of the `TargetGroup` metric dimension.
    pub id: String,
    /// Its ARN.
    pub arn: String,
    /// Its name.
    pub name: String,
}

/// What a version's target group is looked up by (the cache key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Lookup {
    template: Option<String>,
    namespace: String,
    service: String,
    workload: String,
}

/// Health numbers from VPC Lattice's own metrics, per version's target group.
#[derive(Debug, Clone)]
pub struct LatticeMetrics {
    lattice: aws_sdk_vpclattice::Client,
    cloudwatch: CloudWatchMetrics,
    retry: RetryPolicy,
    found: Arc<Mutex<HashMap<Lookup, TargetGroup>>>,
}

impl LatticeMetrics {
    /// A source for the SDK configuration's region, credentials and endpoints (per
    /// service as usual: `$AWS_ENDPOINT_URL_VPC_LATTICE`, `$AWS_ENDPOINT_URL_CLOUDWATCH`,
    /// or the configuration's endpoint URL).
    pub fn new(sdk: &SdkConfig) -> Result<Self, MetricsError> {
        if sdk.region().is_none() {
            return Err(setup(
                "region",
                "no AWS region is configured (set AWS_REGION)".into(),
            ));
        }
        if sdk.credentials_provider().is_none() {
            return Err(setup(
                "credentials",
                "the SDK configuration has no credentials provider".into(),
            ));
        }
        let retry = RetryPolicy::default();
        let timeouts = attempt_timeouts(sdk.timeout_config(), &retry);
        let lattice = aws_sdk_vpclattice::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
        Ok(Self {
            lattice: aws_sdk_vpclattice::Client::from_conf(lattice),
            cloudwatch: CloudWatchMetrics::new(sdk)?.with_retry(retry),
            retry,
            found: Arc::default(),
        })
    }

    /// The same source with another retry policy (the cache is kept).
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        let retry = RetryPolicy {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        let lattice = self.lattice.config();
        let lattice = lattice
            .to_builder()
            .timeout_config(attempt_timeouts(lattice.timeout_config(), &retry))
            .build();
        Self {
            lattice: aws_sdk_vpclattice::Client::from_conf(lattice),
            cloudwatch: self.cloudwatch.with_retry(retry),
            retry,
            found: self.found,
        }
    }

    /// The target group of one version: from `spec.target_group_names` when given
    /// (looked up by name to get its id and ARN), else the one the AWS Gateway API
    /// Controller made for the Kubernetes Service `<service>-<version>` in `namespace`,
    /// found by its tags (see the module documentation for the keys and where the
    /// controller sets them). Errors name what was looked for.
    pub async fn target_group(
        &self,
        spec: &LatticeSpec,
        namespace: &str,
        service: &str,
        version: u32,
    ) -> Result<TargetGroup, MetricsError> {
        let key = Lookup {
            template: spec.target_group_names.clone(),
            namespace: namespace.to_owned(),
            service: service.to_owned(),
            workload: workload(service, version),
        };
        if let Some(tg) = self.cache().get(&key) {
            return Ok(tg.clone());
        }
        let tg = match &key.template {
            Some(template) => self.by_name(template, &key).await?,
            None => self.by_tags(&key).await?,
        };
        tracing::info!(namespace, workload = %key.workload, target_group = %tg.id, name = %tg.name, "VPC Lattice target group");
        self.cache().insert(key, tg.clone());
        Ok(tg)
    }

    /// Requests and 5xx of one version's target group over `[start, end)` (Unix
    /// seconds), summed over `period`-second datapoints. `None`: no datapoint at all.
    #[allow(clippy::too_many_arguments)] // one version over one window, as a check has them
    pub async fn counts(
        &self,
        spec: &LatticeSpec,
        namespace: &str,
        service: &str,
        version: u32,
        start: i64,
        end: i64,
        period: u32,
    ) -> Result<Option<Counts>, MetricsError> {
        check_window(start, end, period)?;
        let tg = self.target_group(spec, namespace, service, version).await?;
        let queries = vec![
            metric_query(REQUESTS_ID, REQUESTS_METRIC, &tg, period, "Sum"),
            metric_query(ERRORS_ID, ERRORS_METRIC, &tg, period, "Sum"),
        ];
        let values = self.metric_data(queries, start, end).await?;
        let requests = values.get(REQUESTS_ID).map_or(&[][..], Vec::as_slice);
        let errors = values.get(ERRORS_ID).map_or(&[][..], Vec::as_slice);
        if requests.is_empty() && errors.is_empty() {
            return Ok(None);
        }
        Ok(Some(Counts::new(
            requests.iter().sum(),
            errors.iter().sum(),
        )))
    }

    /// Latency (`RequestTime`, milliseconds) of one version's target group at
    /// `quantile` (0.99 = the extended statistic `p99`) over `[start, end)`: the
    /// highest of the per-`period` values, as the CloudWatch source judges latency (a
    /// slow minute anywhere in the window counts). `None`: no datapoint at all.
    #[allow(clippy::too_many_arguments)] // one version over one window, as a check has them
    pub async fn latency_ms(
        &self,
        spec: &LatticeSpec,
        namespace: &str,
        service: &str,
        version: u32,
        start: i64,
        end: i64,
        period: u32,
        quantile: f64,
    ) -> Result<Option<f64>, MetricsError> {
        check_window(start, end, period)?;
        if !(quantile > 0.0 && quantile < 1.0) {
            return Err(setup(
                "request",
                format!("latency quantile `{quantile}` is not between 0 and 1"),
            ));
        }
        let tg = self.target_group(spec, namespace, service, version).await?;
        let stat = percentile(quantile);
        let queries = vec![metric_query(LATENCY_ID, LATENCY_METRIC, &tg, period, &stat)];
        let values = self.metric_data(queries, start, end).await?;
        Ok(values
            .get(LATENCY_ID)
            .and_then(|v| v.iter().copied().reduce(f64::max)))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Lookup, TargetGroup>> {
        self.found.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `metrics.target_group_names` filled for the version, looked up by name.
    async fn by_name(&self, template: &str, key: &Lookup) -> Result<TargetGroup, MetricsError> {
        let name = target_group_name(template, &key.namespace, &key.service, &key.workload);
        let all = self.list_target_groups().await?;
        let named: Vec<TargetGroup> = all
            .iter()
            .filter(|s| s.name() == Some(name.as_str()) && usable(s))
            .filter_map(summary)
            .collect();
        match named.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(setup(
                "target group",
                format!(
                    "no VPC Lattice target group named `{name}` (metrics.target_group_names `{template}` for Service {}/{}) among the {} target groups of this account and region",
                    key.namespace,
                    key.workload,
                    all.len()
                ),
            )),
            many => Err(setup(
                "target group",
                format!(
                    "{} VPC Lattice target groups are named `{name}`: {}",
                    many.len(),
                    ids(many)
                ),
            )),
        }
    }

    /// The AWS Gateway API Controller's target group for the Service, by its tags.
    async fn by_tags(&self, key: &Lookup) -> Result<TargetGroup, MetricsError> {
        let prefix = controller_name_prefix(&key.namespace, &key.workload);
        let all = self.list_target_groups().await?;
        let mut tagged = Vec::new();
        for s in all.iter().filter(|s| usable(s)) {
            let Some(tg) = summary(s).filter(|tg| tg.name.starts_with(&prefix)) else {
                continue;
            };
            let tags = retry::call(&self.retry, LIST_TAGS, || {
                self.lattice
                    .list_tags_for_resource()
                    .resource_arn(&tg.arn)
                    .send()
            })
            .await?;
            tagged.push((tg, tags.tags().cloned().unwrap_or_default()));
        }
        choose_by_tags(tagged, &key.namespace, &key.workload, &prefix)
    }

    /// Every target group of the account and region, all pages.
    async fn list_target_groups(&self) -> Result<Vec<TargetGroupSummary>, MetricsError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = retry::call(&self.retry, LIST_TARGET_GROUPS, || {
                self.lattice
                    .list_target_groups()
                    .set_next_token(next.clone())
                    .send()
            })
            .await?;
            out.extend_from_slice(page.items());
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(out),
            }
        }
        Err(MetricsError::BadResponse {
            operation: LIST_TARGET_GROUPS,
            message: format!("still more pages after {MAX_PAGES}"),
            source: None,
        })
    }

    /// The values of each query id over the window, all pages.
    async fn metric_data(
        &self,
        queries: Vec<MetricDataQuery>,
        start: i64,
        end: i64,
    ) -> Result<HashMap<String, Vec<f64>>, MetricsError> {
        let asked: Vec<String> = queries
            .iter()
            .filter_map(|q| q.id().map(str::to_owned))
            .collect();
        let input = GetMetricDataInput::builder()
            .set_metric_data_queries(Some(queries))
            .start_time(DateTime::from_secs(start))
            .end_time(DateTime::from_secs(end))
            .scan_by(ScanBy::TimestampAscending)
            .build()
            .map_err(|e| MetricsError::Setup {
                what: "request",
                message: "the GetMetricData request is incomplete".into(),
                source: Some(Box::new(e)),
            })?;
        let mut values: HashMap<String, Vec<f64>> = HashMap::new();
        for (id, points) in self.cloudwatch.get_metric_data(&input, MAX_PAGES).await? {
            if !asked.contains(&id) {
                return Err(MetricsError::BadResponse {
                    operation: GET_METRIC_DATA,
                    message: format!("a result for query `{id}`, which was not asked"),
                    source: None,
                });
            }
            values
                .entry(id)
                .or_default()
                .extend(points.into_iter().map(|(_, v)| v));
        }
        Ok(values)
    }
}

/// The Deployment, and by convention Kubernetes Service, of one version.
fn workload(service: &str, version: u32) -> String {
    format!("{service}-{version}")
}

/// `metrics.target_group_names` filled for one version (`workload` =
/// `<service>-<version>`). The template was validated to hold only `{namespace}`,
/// `{service}` and `{workload}`, so the window and quantile of the shared filler
/// never apply.
pub fn target_group_name(template: &str, namespace: &str, service: &str, workload: &str) -> String {
    fill_promql(template, namespace, service, workload, 0, 0.0)
}

/// The start of the names the AWS Gateway API Controller gives the target groups of
/// Service `namespace/name` (`k8s-<namespace>-<name>-`, each part cut to 55 characters
/// and stripped of dashes at its ends, as the controller does).
pub fn controller_name_prefix(namespace: &str, name: &str) -> String {
    let cut = |s: &str| -> String {
        let s: String = s.chars().take(CONTROLLER_NAME_PART).collect();
        s.trim_matches('-').to_owned()
    };
    format!("k8s-{}-{}-", cut(namespace), cut(name))
}

/// Picks the Service's target group among `tagged` (target groups with their tags): the
/// ones whose controller tags name the Service; of those, the route's over a
/// `ServiceExport`'s. None, or two for the same kind of source, is an error that says
/// what was looked for.
fn choose_by_tags(
    tagged: Vec<(TargetGroup, HashMap<String, String>)>,
    namespace: &str,
    service: &str,
    prefix: &str,
) -> Result<TargetGroup, MetricsError> {
    let looked_at = tagged.len();
    let mut matching: Vec<(TargetGroup, HashMap<String, String>)> = tagged
        .into_iter()
        .filter(|(_, tags)| {
            tags.get(SERVICE_NAMESPACE_TAG).map(String::as_str) == Some(namespace)
                && tags.get(SERVICE_NAME_TAG).map(String::as_str) == Some(service)
        })
        .collect();
    let is_route = |tags: &HashMap<String, String>| {
        matches!(
            tags.get(SOURCE_TYPE_TAG).map(String::as_str),
            Some("HTTPRoute" | "GRPCRoute")
        )
    };
    if matching.iter().any(|(_, tags)| is_route(tags)) {
        matching.retain(|(_, tags)| is_route(tags));
    }
    match matching.len() {
        1 => Ok(matching.remove(0).0),
        0 => Err(setup(
            "target group",
            format!(
                "no VPC Lattice target group for Service {namespace}/{service}: looked for tags {SERVICE_NAMESPACE_TAG}={namespace} and {SERVICE_NAME_TAG}={service} on the {looked_at} target group(s) named `{prefix}*`; set metrics.target_group_names if the target groups are not the AWS Gateway API Controller's"
            ),
        )),
        n => {
            let found: Vec<String> = matching
                .iter()
                .map(|(tg, tags)| {
                    let tag = |k: &str| tags.get(k).map_or("?", String::as_str).to_owned();
                    format!(
                        "{} ({}, {} in cluster {})",
                        tg.name,
                        tg.id,
                        tag(SOURCE_TYPE_TAG),
                        tag(CLUSTER_NAME_TAG)
                    )
                })
                .collect();
            Err(setup(
                "target group",
                format!(
                    "{n} VPC Lattice target groups are tagged for Service {namespace}/{service}: {}; set metrics.target_group_names to pick one",
                    found.join(", ")
                ),
            ))
        }
    }
}

/// Whether a listed target group can have current metrics (not being deleted, not
/// failed).
fn usable(s: &TargetGroupSummary) -> bool {
    !matches!(
        s.status(),
        Some(
            TargetGroupStatus::DeleteInProgress
                | TargetGroupStatus::DeleteFailed
                | TargetGroupStatus::CreateFailed
        )
    )
}

/// A listed target group with its id, ARN and name (all three are always listed).
fn summary(s: &TargetGroupSummary) -> Option<TargetGroup> {
    Some(TargetGroup {
        id: s.id()?.to_owned(),
        arn: s.arn()?.to_owned(),
        name: s.name()?.to_owned(),
    })
}

fn ids(tgs: &[TargetGroup]) -> String {
    tgs.iter()
        .map(|tg| tg.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One `MetricStat` query of a target group metric.
fn metric_query(
    id: &str,
    metric: &str,
    tg: &TargetGroup,
    period: u32,
    stat: &str,
) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace(NAMESPACE)
        .metric_name(metric)
        .dimensions(
            Dimension::builder()
                .name(TARGET_GROUP_DIMENSION)
                .value(&tg.id)
                .build(),
        )
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(i32::try_from(period).unwrap_or(i32::MAX))
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

fn check_window(start: i64, end: i64, period: u32) -> Result<(), MetricsError> {
    if end <= start {
        return Err(setup(
            "request",
            format!("the window's end {end} is not after its start {start}"),
        ));
    }
    if period == 0 {
        return Err(setup(
            "request",
            "the period must be at least 1 second, not 0".into(),
        ));
    }
    Ok(())
}

fn setup(what: &'static str, message: String) -> MetricsError {
    MetricsError::Setup {
        what,
        message,
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tg(n: u32) -> TargetGroup {
        TargetGroup {
            id: format!("tg-{n}"),
            arn: format!("arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-{n}"),
            name: format!("k8s-shop-web-3-abcdefghi{n}"),
        }
    }

    fn tags(ns: &str, svc: &str, source: &str, cluster: &str) -> HashMap<String, String> {
        HashMap::from([
            (SERVICE_NAMESPACE_TAG.to_owned(), ns.to_owned()),
            (SERVICE_NAME_TAG.to_owned(), svc.to_owned()),
            (SOURCE_TYPE_TAG.to_owned(), source.to_owned()),
            (CLUSTER_NAME_TAG.to_owned(), cluster.to_owned()),
        ])
    }

    #[test]
    fn the_name_prefix_is_the_controllers() {
        assert_eq!(
            controller_name_prefix("yelb", "yelb-app-3"),
            "k8s-yelb-yelb-app-3-"
        );
        let long = "a".repeat(54) + "-b";
        assert_eq!(
            controller_name_prefix(&long, "web-2"),
            format!("k8s-{}-web-2-", "a".repeat(54)),
            "cut to 55 characters, then the dash at the end is dropped"
        );
    }

    #[test]
    fn the_name_template_is_filled_for_the_version() {
        assert_eq!(
            target_group_name("{namespace}-{service}-{workload}", "shop", "web", "web-12"),
            "shop-web-web-12"
        );
        assert_eq!(target_group_name("fixed", "shop", "web", "web-12"), "fixed");
    }

    #[test]
    fn the_service_is_chosen_by_both_tags_and_a_route_wins_over_an_export() {
        let tagged = vec![
            (tg(1), tags("shop", "web-3-canary", "HTTPRoute", "c1")),
            (tg(2), tags("other", "web-3", "HTTPRoute", "c1")),
            (tg(3), tags("shop", "web-3", "ServiceExport", "c1")),
            (tg(4), tags("shop", "web-3", "HTTPRoute", "c1")),
        ];
        let chosen = choose_by_tags(tagged, "shop", "web-3", "k8s-shop-web-3-").expect("one");
        assert_eq!(chosen, tg(4));

        let export_only = vec![(tg(3), tags("shop", "web-3", "ServiceExport", "c1"))];
        assert_eq!(
            choose_by_tags(export_only, "shop", "web-3", "k8s-shop-web-3-").expect("one"),
            tg(3)
        );
    }

    #[test]
    fn no_match_and_two_matches_are_errors_that_say_what_was_looked_for() {
        let none = choose_by_tags(
            vec![(tg(1), tags("shop", "web-30", "HTTPRoute", "c1"))],
            "shop",
            "web-3",
            "k8s-shop-web-3-",
        )
        .expect_err("none");
        let text = none.to_string();
        assert!(!none.is_transient());
        for part in [
            "Service shop/web-3",
            "application-networking.k8s.aws/ServiceNamespace=shop",
            "application-networking.k8s.aws/ServiceName=web-3",
            "metrics.target_group_names",
            "1 target group(s) named `k8s-shop-web-3-*`",
        ] {
            assert!(text.contains(part), "`{part}` missing from: {text}");
        }

        let two = choose_by_tags(
            vec![
                (tg(1), tags("shop", "web-3", "HTTPRoute", "c1")),
                (tg(2), tags("shop", "web-3", "GRPCRoute", "c2")),
            ],
            "shop",
            "web-3",
            "k8s-shop-web-3-",
        )
        .expect_err("ambiguous")
        .to_string();
        assert!(two.contains("2 VPC Lattice target groups"), "{two}");
        assert!(two.contains("tg-1") && two.contains("cluster c2"), "{two}");
    }

    #[test]
    fn a_query_selects_the_target_group_by_its_id() {
        let q = metric_query("errors", ERRORS_METRIC, &tg(7), 60, "Sum");
        let stat = q.metric_stat().expect("stat");
        let metric = stat.metric().expect("metric");
        assert_eq!(metric.namespace(), Some("AWS/VpcLattice"));
        assert_eq!(metric.metric_name(), Some("HTTPCode_5XX_Count"));
        assert_eq!(
            metric.dimensions(),
            [Dimension::builder()
                .name("TargetGroup")
                .value("tg-7")
                .build()]
        );
        assert_eq!((stat.period(), stat.stat()), (Some(60), Some("Sum")));
    }

    #[test]
    fn an_empty_window_or_period_is_refused_naming_the_values() {
        let e = check_window(100, 100, 60).expect_err("empty").to_string();
        assert!(e.contains("end 100") && e.contains("start 100"), "{e}");
        let e = check_window(0, 60, 0).expect_err("period").to_string();
        assert!(e.contains("period"), "{e}");
        assert!(check_window(0, 60, 60).is_ok());
    }
}
