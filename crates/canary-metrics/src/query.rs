//! What one health check asks a metrics source: which metrics, with which dimensions,
//! over which window. Built from deploy.json by [`HealthQuery::for_check`].

use canary_core::spec::{LatencyRule, SourceSpec};
use canary_core::{DeploySpec, HealthSpec, Rules};

/// The period of every datapoint, in seconds (as in the original design).
pub const DEFAULT_PERIOD_SECONDS: u32 = 60;

/// One health-check query.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthQuery {
    /// Namespace, metric names, dimensions and the version dimension.
    pub health: HealthSpec,
    /// The microservice (`microservice_name`).
    pub service: String,
    /// The version being judged.
    pub canary_version: u32,
    /// Start of the window, Unix seconds (inclusive).
    pub start_secs: i64,
    /// End of the window, Unix seconds (exclusive).
    pub end_secs: i64,
    /// The period of a datapoint, in seconds.
    pub period_secs: u32,
    /// Whether request counts (the success metric) are needed.
    pub need_requests: bool,
    /// The service's Kubernetes namespace.
    pub namespace: String,
    /// Where the numbers come from (deploy.json's `metrics.source`).
    pub source: SourceSpec,
    /// The canary's latency at this quantile is needed (`metrics.max_latency_ms`).
    pub latency: Option<LatencyRule>,
    /// The stable version's requests and errors over the same window are needed
    /// (`metrics.compare_to_stable`, and a stable version exists).
    pub stable_version: Option<u32>,
}

impl HealthQuery {
    /// The query for a check at `now_secs`: the window is `failure_threshold_time`
    /// seconds ending now, as in the original design.
    pub fn for_check(spec: &DeploySpec, canary_version: u32, now_secs: i64) -> Self {
        let window = i64::try_from(spec.failure_threshold_time).unwrap_or(i64::MAX);
        Self {
            health: spec.health.clone(),
            service: spec.microservice_name.clone(),
            canary_version,
            start_secs: now_secs.saturating_sub(window),
            end_secs: now_secs,
            period_secs: DEFAULT_PERIOD_SECONDS,
            need_requests: Rules::of(spec).needs_requests(),
            namespace: spec.kubernetes_namespace.clone(),
            source: spec.metrics.source.clone(),
            latency: spec.metrics.latency,
            stable_version: None,
        }
    }

    /// The same query, judging against `stable` too when deploy.json asks for it
    /// (`metrics.compare_to_stable`); nothing changes otherwise.
    pub fn with_stable(mut self, spec: &DeploySpec, stable: Option<u32>) -> Self {
        if spec.metrics.compare.is_some() {
            self.stable_version = stable.filter(|s| *s != self.canary_version);
        }
        self
    }

    /// The window's length in seconds.
    pub fn window_seconds(&self) -> u64 {
        u64::try_from(self.end_secs.saturating_sub(self.start_secs)).unwrap_or(0)
    }

    /// The version the numbers belong to: the canary's when metrics are per version
    /// (Prometheus and Lattice always are; CloudWatch with `version_dimension`), `None`
    /// when they cover the whole service.
    pub fn judged_version(&self) -> Option<u32> {
        let per_version = self.health.version_dimension.is_some()
            || !matches!(self.source, SourceSpec::CloudWatch { .. });
        per_version.then_some(self.canary_version)
    }

    /// The value of the version dimension: the pod controller's (Deployment's) name,
    /// `<service>-<version>`.
    pub fn version_value(&self) -> String {
        self.workload(self.canary_version)
    }

    /// The Deployment (and workload) name of `version`: `<service>-<version>`.
    pub fn workload(&self, version: u32) -> String {
        format!("{}-{version}", self.service)
    }

    /// Every dimension of the query, sorted by name: `metric_dimensions` plus the
    /// version dimension when set.
    pub fn dimensions(&self) -> Vec<(String, String)> {
        self.dimensions_of(self.canary_version)
    }

    /// The dimensions of `version`'s numbers (the same as [`Self::dimensions`] but
    /// for another version's workload, e.g. the stable one).
    pub fn dimensions_of(&self, version: u32) -> Vec<(String, String)> {
        let mut dims: Vec<(String, String)> = self
            .health
            .dimensions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(name) = &self.health.version_dimension {
            dims.push((name.clone(), self.workload(version)));
            dims.sort();
        }
        dims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> DeploySpec {
        let mut doc = serde_json::json!({
            "cluster_name": "c1",
            "kubernetes_namespace": "yelb",
            "microservice_name": "yelb-appserver",
            "percentage_step": 10,
            "wait_time": 60,
            "container_image": "repo/app:1",
        });
        if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        DeploySpec::parse(&doc, Some("kind: Deployment\n")).expect("valid deploy.json")
    }

    #[test]
    fn a_seed_spec_queries_the_original_metric_over_failure_threshold_time() {
        let q = HealthQuery::for_check(&spec(serde_json::json!({})), 4, 10_000);
        assert_eq!(q.health.metric_namespace, "EnvoyPrometheus/ResponseCode");
        assert_eq!(q.health.error_metric, "5xx-yelb-appserver");
        assert_eq!((q.start_secs, q.end_secs), (10_000 - 600, 10_000));
        assert_eq!(q.window_seconds(), 600);
        assert_eq!(q.period_secs, 60);
        assert!(!q.need_requests);
        assert!(q.dimensions().is_empty());
        assert_eq!(q.judged_version(), None);
    }

    #[test]
    fn a_version_dimension_names_the_canarys_deployment() {
        let q = HealthQuery::for_check(
            &spec(serde_json::json!({
                "version_dimension": "pod_controller_name",
                "metric_dimensions": {"ClusterName": "c1"},
                "max_error_rate": 5,
                "failure_threshold_time": 120,
            })),
            7,
            1_000,
        );
        assert_eq!(
            q.dimensions(),
            vec![
                ("ClusterName".to_owned(), "c1".to_owned()),
                (
                    "pod_controller_name".to_owned(),
                    "yelb-appserver-7".to_owned()
                ),
            ]
        );
        assert_eq!(q.judged_version(), Some(7));
        assert!(q.need_requests);
        assert_eq!(q.window_seconds(), 120);
    }
}
