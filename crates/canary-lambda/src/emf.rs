//! The numbers of each decision as CloudWatch Embedded Metric Format log lines: one
//! JSON object per line on standard output, which CloudWatch Logs turns into metrics
//! with no API call (and no permission beyond the function's own log group). The
//! pipeline stack's dashboard (cloudformation/pipeline.yaml) draws them.
//!
//! Namespace [`NAMESPACE`], dimensions `Cluster`, `Namespace`, `Service`; metrics:
//! `CanaryWeight` (percent, after every shift, check and end), and after a check
//! `CanaryRequests`, `CanaryErrors`, `CanaryErrorRate`, `CanaryLatency` (ms) and the
//! same four `Stable*` when the check compared the canary with the stable version.
//! `CanaryVersion`, `StableVersion`, `Verdict`, `Decision` and `Execution` ride along as
//! properties (searchable in Logs Insights, not metrics: no cost).

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use canary_core::Deployment;
use canary_store::ServiceRef;
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of the metrics.
pub const NAMESPACE: &str = "EksCanary";

/// The EMF line of `d` after `decision` (`shift`, `check`, `promoted`, `rolled_back`) at
/// `now_millis`.
pub fn line(svc: &ServiceRef, d: &Deployment, decision: &str, now_millis: i64) -> String {
    let mut metrics: Vec<(&str, &str, f64)> =
        vec![("CanaryWeight", "Percent", f64::from(d.weight))];
    if decision == "check"
        && let Some(v) = &d.verdict
    {
        if let Some(requests) = v.requests {
            metrics.push(("CanaryRequests", "Count", requests));
        }
        metrics.push(("CanaryErrors", "Count", v.errors));
        if let Some(rate) = v.error_rate {
            metrics.push(("CanaryErrorRate", "Percent", rate));
        }
        if let Some(ms) = v.latency_ms {
            metrics.push(("CanaryLatency", "Milliseconds", ms));
        }
        if let Some(s) = &v.stable {
            metrics.push(("StableRequests", "Count", s.requests));
            metrics.push(("StableErrors", "Count", s.errors));
            if s.requests > 0.0 {
                metrics.push(("StableErrorRate", "Percent", 100.0 * s.errors / s.requests));
            }
        }
    }
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_millis,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Cluster", "Namespace", "Service"]],
                "Metrics": metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    doc.insert("Cluster".into(), json!(svc.cluster));
    doc.insert("Namespace".into(), json!(svc.namespace));
    doc.insert("Service".into(), json!(svc.service));
    for (name, _, value) in &metrics {
        if value.is_finite() {
            doc.insert((*name).into(), json!(value));
        }
    }
    doc.insert("CanaryVersion".into(), json!(d.canary_version));
    if let Some(s) = d.stable_version {
        doc.insert("StableVersion".into(), json!(s));
    }
    if let Some(v) = &d.verdict {
        doc.insert("Verdict".into(), json!(v.status));
    }
    doc.insert("Decision".into(), json!(decision));
    doc.insert("Execution".into(), json!(d.execution));
    Value::Object(doc).to_string()
}

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the lines on for this process: the Lambda runtime does (`runtime::serve`), and
/// `canary lambda-proxy`; `canary demo` and `canary run` print their own output and
/// leave them off.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Writes the EMF line of `d` after `decision` to standard output (CloudWatch Logs in
/// Lambda), when [`enable`] was called.
pub fn emit(svc: &ServiceRef, d: &Deployment, decision: &str, now_millis: i64) {
    if ENABLED.load(Ordering::Relaxed) {
        // A closed standard output must not fail (or panic) a deployment.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", line(svc, d, decision, now_millis));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::compare::Counts;
    use canary_core::execution::{RouteRef, Start};
    use canary_core::provider::appmesh::APP_MESH;
    use canary_core::{DeploySpec, Verdict, VerdictStatus};

    fn deployment() -> Deployment {
        let doc = json!({"cluster_name": "c1", "kubernetes_namespace": "shop", "microservice_name": "web",
            "percentage_step": 50, "wait_time": 60, "container_image": "r/web:2",
            "config_file": "eA=="});
        let spec = DeploySpec::parse(&doc, Some("x: 1")).unwrap_or_else(|e| panic!("{e}"));
        let start = Start {
            execution: "arn:aws:states:us-east-1:1:execution:m:e".into(),
            canary_version: 2,
            stable_version: Some(1),
            stable_image: None,
            provider: APP_MESH,
            route: RouteRef {
                api_version: "v".into(),
                kind: "VirtualRouter".into(),
                name: "web".into(),
            },
            lock_token: "t".into(),
            manifest_key: None,
            record_key: None,
        };
        let mut d = Deployment::start(&spec, start, 0);
        d.weight = 50;
        d
    }

    #[test]
    fn a_check_line_is_emf_with_every_number_of_both_versions() {
        let mut d = deployment();
        d.verdict = Some(Verdict {
            status: VerdictStatus::Healthy,
            errors: 2.0,
            requests: Some(400.0),
            error_rate: Some(0.5),
            window_seconds: 60,
            datapoints: 2,
            version: Some(2),
            latency_ms: Some(120.0),
            comparison: None,
            stable: Some(Counts::new(800.0, 4.0)),
            reason: "fine".into(),
        });
        let svc = ServiceRef::new("c1", "shop", "web");
        let v: Value = serde_json::from_str(&line(&svc, &d, "check", 1_767_225_600_000)).unwrap();
        let aws = &v["_aws"];
        assert_eq!(aws["Timestamp"], 1_767_225_600_000_i64);
        let cwm = &aws["CloudWatchMetrics"][0];
        assert_eq!(cwm["Namespace"], NAMESPACE);
        assert_eq!(
            cwm["Dimensions"],
            json!([["Cluster", "Namespace", "Service"]])
        );
        let names: Vec<&str> = cwm["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "CanaryWeight",
                "CanaryRequests",
                "CanaryErrors",
                "CanaryErrorRate",
                "CanaryLatency",
                "StableRequests",
                "StableErrors",
                "StableErrorRate"
            ]
        );
        // Every metric named has its value at the top level, as EMF requires.
        for n in names {
            assert!(v[n].is_number(), "{n}: {v}");
        }
        assert_eq!(
            (
                v["Service"].as_str(),
                v["Namespace"].as_str(),
                v["Cluster"].as_str()
            ),
            (Some("web"), Some("shop"), Some("c1"))
        );
        assert_eq!(v["StableErrorRate"], 0.5);
        assert_eq!(v["Verdict"], "healthy");
        assert_eq!(v["CanaryWeight"], 50.0);
    }

    #[test]
    fn a_shift_line_has_the_weight_only() {
        let d = deployment();
        let svc = ServiceRef::new("c1", "shop", "web");
        let v: Value = serde_json::from_str(&line(&svc, &d, "shift", 0)).unwrap();
        let metrics = v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(metrics, 1);
        assert_eq!(v["Decision"], "shift");
        assert!(!line(&svc, &d, "shift", 0).contains('\n'), "one line");
    }
}
