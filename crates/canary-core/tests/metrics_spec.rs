//! The `metrics` section of deploy.json: a Prometheus, an Amazon Managed Service for
//! Prometheus (SigV4) and a VPC Lattice source validate; broken ones are refused with
//! every error naming its field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_core::DeploySpec;
use canary_core::spec::{MetricsSpec, PrometheusAuth, SourceSpec, parse_metrics_section};
use common::seed_doc;
use serde_json::{Value, json};

fn with_metrics(metrics: Value) -> Value {
    let mut doc = seed_doc("yelb-appserver");
    doc["metrics"] = metrics;
    doc
}

fn errors(metrics: Value) -> Vec<String> {
    match parse_metrics_section(&metrics) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn section(metrics: Value) -> MetricsSpec {
    parse_metrics_section(&metrics).unwrap()
}

#[test]
fn without_a_metrics_section_the_source_is_cloudwatch_with_no_extra_rules() {
    let spec = DeploySpec::parse(&seed_doc("yelb-ui"), None).unwrap();
    assert_eq!(spec.metrics.source.name(), "cloudwatch");
    assert!(spec.metrics.latency.is_none() && spec.metrics.compare.is_none());
}

#[test]
fn a_prometheus_source_with_a_preset_latency_and_comparison_validates() {
    let metrics = section(
        json!({"source": "prometheus", "url": "http://prometheus.monitoring:9090/",
            "preset": "istio", "max_latency_ms": 250, "compare_to_stable": {"margin_percent": 0.5}}),
    );
    let SourceSpec::Prometheus(p) = &metrics.source else {
        panic!("{:?}", metrics.source)
    };
    assert_eq!(p.url, "http://prometheus.monitoring:9090");
    assert_eq!(p.auth, PrometheusAuth::None);
    assert!(p.queries.requests.contains("istio_requests_total"));
    let latency = metrics.latency.unwrap();
    assert_eq!((latency.max_ms, latency.quantile), (250.0, 0.99));
    let compare = metrics.compare.unwrap();
    assert_eq!((compare.margin_percent, compare.confidence), (0.5, 0.95));
}

#[test]
fn an_amp_workspace_url_means_sigv4_in_its_region() {
    let metrics = section(json!({"source": "prometheus",
            "url": "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123abcd",
            "queries": {"requests": "sum(increase(http_requests_total{namespace=\"{namespace}\", workload=\"{workload}\"}[{window}]))",
                        "errors": "sum(increase(http_requests_total{namespace=\"{namespace}\", workload=\"{workload}\", code=~\"5..\"}[{window}]))"}}));
    let SourceSpec::Prometheus(p) = &metrics.source else {
        panic!()
    };
    assert_eq!(
        p.auth,
        PrometheusAuth::Sigv4 {
            region: "eu-west-1".into()
        }
    );
    assert_eq!(p.preset, None);
}

#[test]
fn a_lattice_source_validates() {
    let metrics = section(json!({"source": "lattice", "max_latency_ms": 800}));
    assert_eq!(metrics.source.name(), "lattice");
}

#[test]
fn broken_sections_are_refused_naming_each_field() {
    let cases = [
        (
            json!({"source": "prometeus"}),
            "metrics.source",
            "did you mean `prometheus`",
        ),
        (
            json!({"source": "prometheus"}),
            "metrics.url",
            "is required",
        ),
        (
            json!({"source": "prometheus", "url": "ftp://x"}),
            "metrics.url",
            "http://",
        ),
        (
            json!({"source": "prometheus", "url": "http://p:9090", "auth": "bearer"}),
            "metrics.credentials_env",
            "is required",
        ),
        (
            json!({"source": "prometheus", "url": "http://evil.example", "auth": "bearer", "credentials_env": "AWS_SESSION_TOKEN"}),
            "metrics.credentials_env",
            "must start with `CANARY_`",
        ),
        (
            json!({"source": "prometheus", "url": "http://p:9090", "auth": "sigv5"}),
            "metrics.auth",
            "did you mean `sigv4`",
        ),
        (
            json!({"source": "prometheus", "url": "http://p:9090", "auth": "sigv4"}),
            "metrics.region",
            "is required",
        ),
        (
            json!({"source": "prometheus", "url": "http://p:9090", "preset": "istoi"}),
            "metrics.preset",
            "did you mean `istio`",
        ),
        (
            json!({"source": "prometheus", "url": "http://p:9090", "queries": {"requests": "up"}}),
            "metrics.queries.errors",
            "is required",
        ),
        (
            json!({"source": "prometheus", "url": "http://p:9090", "queries": {"requests": "x{servce}", "errors": "y"}}),
            "metrics.queries.requests",
            "did you mean `service`",
        ),
        (
            json!({"source": "prometheus", "url": "http://p:9090", "queries": {"requests": "a", "errors": "b"}, "max_latency_ms": 100}),
            "metrics.max_latency_ms",
            "queries.latency",
        ),
        (
            json!({"source": "cloudwatch", "max_latency_ms": 100}),
            "metrics.max_latency_ms",
            "latency_metric_name",
        ),
        (
            json!({"source": "lattice", "url": "http://p:9090"}),
            "metrics.url",
            "does not apply to source `lattice`",
        ),
        (
            json!({"source": "lattice", "latency_quantile": 0.2}),
            "metrics.latency_quantile",
            "between 0.5 and 0.999",
        ),
        (
            json!({"source": "lattice", "compare_to_stable": "yes"}),
            "metrics.compare_to_stable",
            "must be true, false or an object",
        ),
        (
            json!({"source": "lattice", "compare_to_stable": {"confidence": 1.5}}),
            "metrics.compare_to_stable.confidence",
            "between",
        ),
        (
            json!({"source": "lattice", "treshold": 1}),
            "metrics.treshold",
            "is not a known field",
        ),
        (json!("prometheus"), "metrics", "must be an object"),
    ];
    for (metrics, field, words) in cases {
        let errs = errors(metrics.clone());
        let hit = errs.iter().find(|e| e.starts_with(&format!("`{field}`")));
        let Some(hit) = hit else {
            panic!("{metrics}: no error names `{field}`: {errs:?}")
        };
        assert!(hit.contains(words), "{metrics}: `{hit}` lacks `{words}`");
    }
}

#[test]
fn every_problem_of_the_section_is_reported_at_once() {
    let errs = errors(json!({"source": "prometheus", "auth": "bearer", "max_latency_ms": -1}));
    assert!(errs.len() >= 3, "{errs:?}");
}

#[test]
fn every_source_is_accepted_in_a_whole_deploy_json() {
    for metrics in [
        json!({"source": "prometheus", "url": "http://p:9090", "preset": "istio", "compare_to_stable": true, "max_latency_ms": 300}),
        json!({"source": "prometheus", "url": "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1", "preset": "envoy"}),
        json!({"source": "lattice", "max_latency_ms": 500}),
        json!({"source": "cloudwatch", "latency_metric_name": "p99-web", "max_latency_ms": 500}),
    ] {
        let doc = with_metrics(metrics.clone());
        assert!(DeploySpec::parse(&doc, None).is_ok(), "{metrics}");
    }
}

#[test]
fn judged_against_the_stable_version_a_count_of_errors_applies_only_when_given() {
    let doc = with_metrics(json!({"source": "lattice", "compare_to_stable": true}));
    let mut without = doc.clone();
    without
        .as_object_mut()
        .unwrap()
        .remove("failure_threshold_value");
    let spec = DeploySpec::parse(&without, None).unwrap();
    assert_eq!(
        spec.failure_threshold_value,
        canary_core::spec::NO_COUNT_LIMIT
    );
    let mut with = doc;
    with["failure_threshold_value"] = json!(25);
    assert_eq!(
        DeploySpec::parse(&with, None)
            .unwrap()
            .failure_threshold_value,
        25.0
    );
}

#[test]
fn comparing_on_cloudwatch_needs_per_version_metrics() {
    let doc = with_metrics(json!({"compare_to_stable": true}));
    let errs: Vec<String> = DeploySpec::parse(&doc, None)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        errs.iter().any(
            |e| e.starts_with("`metrics.compare_to_stable`") && e.contains("version_dimension")
        ),
        "{errs:?}"
    );
    let mut per_version = with_metrics(json!({"compare_to_stable": true}));
    per_version["version_dimension"] = json!("pod_controller_name");
    assert!(DeploySpec::parse(&per_version, None).is_ok());
}
