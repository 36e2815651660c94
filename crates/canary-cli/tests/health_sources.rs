//! The health sources from the command line: `canary validate` accepts a Prometheus, an
//! AMP (SigV4) and a VPC Lattice source and refuses broken ones naming the field;
//! `canary plan` shows the source and its queries; `canary check-health` against a real
//! Prometheus with seeded series exits 0 for a healthy canary and 1 for one above the
//! threshold, naming the query and the numbers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use canary_testkit::prometheus::{PrometheusServer, istio_seed};
use serde_json::{Value, json};

fn canary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn template() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/templates/gateway-httproute.yml")
}

fn write(dir: &Path, name: &str, extra: Value) -> PathBuf {
    let mut doc = json!({
        "cluster_name": "blogpost", "kubernetes_namespace": "yelb",
        "microservice_name": "yelb-appserver", "percentage_step": 10, "wait_time": 60,
        "failure_threshold_time": 600,
    });
    doc.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let path = dir.join(name);
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

fn validate(path: &Path) -> Output {
    canary(&[
        "validate",
        path.to_str().unwrap(),
        "--template",
        template().to_str().unwrap(),
        "--image",
        "repo/app:2",
    ])
}

#[test]
fn validate_accepts_prometheus_amp_and_lattice_sources() {
    let dir = tempfile::tempdir().unwrap();
    for (name, metrics, source) in [
        (
            "prom.json",
            json!({"source": "prometheus", "url": "http://prometheus.monitoring:9090", "preset": "istio", "max_latency_ms": 250, "compare_to_stable": true}),
            "prometheus",
        ),
        (
            "amp.json",
            json!({"source": "prometheus", "url": "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123abcd", "preset": "envoy"}),
            "prometheus",
        ),
        (
            "lattice.json",
            json!({"source": "lattice", "max_latency_ms": 400, "compare_to_stable": {"margin_percent": 0.5}}),
            "lattice",
        ),
    ] {
        let o = validate(&write(dir.path(), name, json!({"metrics": metrics})));
        assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        assert!(
            text(&o.stdout).contains(&format!("health from {source}")),
            "{name}: {}",
            text(&o.stdout)
        );
    }
}

#[test]
fn validate_refuses_broken_sources_naming_each_field() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(
        dir.path(),
        "broken.json",
        json!({"metrics": {"source": "prometheus", "url": "ftp://p", "preset": "istoi",
            "auth": "bearer", "max_latency_ms": -5, "target_group_names": "x"}}),
    );
    let o = validate(&broken);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    for needle in [
        "`metrics.url` = \"ftp://p\"",
        "`metrics.preset` = \"istoi\"",
        "did you mean `istio`",
        "`metrics.credentials_env`",
        "`metrics.max_latency_ms` = -5",
        "`metrics.target_group_names`",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in\n{err}");
    }
    let lattice = write(
        dir.path(),
        "lattice.json",
        json!({"metrics": {"source": "latice"}}),
    );
    let err = text(&validate(&lattice).stderr);
    assert!(err.contains("did you mean `lattice`"), "{err}");
}

#[test]
fn plan_shows_the_source_rules_and_filled_queries() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "prom.json",
        json!({"metrics": {"source": "prometheus", "url": "http://p:9090", "preset": "istio",
            "max_latency_ms": 250, "compare_to_stable": true}}),
    );
    let o = canary(&["plan", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("Health from prometheus"), "{out}");
    assert!(out.contains("latency p99 above 250 ms"), "{out}");
    assert!(
        out.contains(r#"destination_workload="yelb-appserver-1""#),
        "{out}"
    );
    assert!(
        out.contains("canary latency: histogram_quantile(0.99"),
        "{out}"
    );
}

#[test]
fn check_health_against_a_real_prometheus_exits_0_healthy_and_1_unhealthy() {
    let seed = istio_seed("yelb", "yelb-appserver");
    let Some(server) =
        PrometheusServer::backfilled(&seed.openmetrics).unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "prom.json",
        json!({"max_error_rate": 5, "failure_threshold_value": 1000,
            "metrics": {"source": "prometheus", "url": server.url, "preset": "istio"}}),
    );
    let at = seed.end.to_string();
    let check = |version: &str| {
        Command::new(env!("CARGO_BIN_EXE_canary"))
            .args([
                "check-health",
                path.to_str().unwrap(),
                "--version",
                version,
                "--at",
                &at,
            ])
            .output()
            .unwrap()
    };
    let healthy = check("2");
    let out = text(&healthy.stdout);
    assert_eq!(
        healthy.status.code(),
        Some(0),
        "{out}{}",
        text(&healthy.stderr)
    );
    assert!(out.contains("source      prometheus"), "{out}");
    assert!(
        out.contains(r#"destination_workload="yelb-appserver-2""#),
        "{out}"
    );
    assert!(out.contains("20 errors in 1000 requests"), "{out}");

    let unhealthy = check("3");
    let out = text(&unhealthy.stdout);
    assert_eq!(
        unhealthy.status.code(),
        Some(1),
        "{out}{}",
        text(&unhealthy.stderr)
    );
    assert!(out.contains("300 errors in 1000 requests"), "{out}");
    assert!(
        out.contains("error rate 30% is above max_error_rate 5%"),
        "{out}"
    );
    assert!(
        out.contains(r#"destination_workload="yelb-appserver-3""#),
        "{out}"
    );
    drop(server);
}
