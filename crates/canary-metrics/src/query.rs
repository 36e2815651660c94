//! What one health check asks a metrics source: which metrics, with which dimensions,
//! over which window. Built from deploy.json by [`HealthQuery::for_check`].

use canary_core::{DeploySpec, HealthSpec, Observation};

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
            need_requests: Observation::needs_requests(&spec.health),
        }
    }

    /// The window's length in seconds.
    pub fn window_seconds(&self) -> u64 {
        u64::try_from(self.end_secs.saturating_sub(self.start_secs)).unwrap_or(0)
    }

    /// The version the numbers belong to: the canary's when metrics are per version
    /// (`version_dimension` set), `None` when they cover the whole service.
    pub fn judged_version(&self) -> Option<u32> {
        self.health
            .version_dimension
            .as_ref()
            .map(|_| self.canary_version)
    }

    /// The value of the version dimension: the pod controller's (Deployment's) name,
    /// `<service>-<version>`.
    pub fn version_value(&self) -> String {
        format!("{}-{}", self.service, self.canary_version)
    }

    /// Every dimension of the query, sorted by name: `metric_dimensions` plus the
    /// version dimension when set.
    pub fn dimensions(&self) -> Vec<(String, String)> {
        let mut dims: Vec<(String, String)> = self
            .health
            .dimensions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(name) = &self.health.version_dimension {
            dims.push((name.clone(), self.version_value()));
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
