//! Health checks against a real moto_server on loopback: datapoints are written with
//! PutMetricData and judged through GetMetricData, exactly as in production.
//!
//! moto caveat: a query with dimensions ignores the namespace, so every test uses its
//! own service name (and so its own metric names).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use canary_core::{DeploySpec, VerdictStatus};
use canary_metrics::cloudwatch::{CloudWatchMetrics, MetricDatum};
use canary_metrics::{HealthQuery, MetricsSource, check};
use canary_testkit::{MotoServer, unique_name};
use serde_json::{Value, json};

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

async fn source() -> CloudWatchMetrics {
    let moto = MotoServer::shared().expect("moto_server starts");
    CloudWatchMetrics::new(&moto.sdk_config().await).expect("client for moto")
}

fn spec(service: &str, extra: Value) -> DeploySpec {
    let mut doc = json!({
        "cluster_name": "c1",
        "kubernetes_namespace": "shop",
        "microservice_name": service,
        "percentage_step": 20,
        "wait_time": 60,
        "container_image": "repo/app:2",
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    DeploySpec::parse(&doc, Some("kind: Deployment\n")).expect("valid deploy.json")
}

fn service() -> String {
    unique_name("m")
}

fn datum(name: &str, dims: &[(&str, &str)], ago: i64, value: f64) -> MetricDatum {
    MetricDatum {
        name: name.to_owned(),
        dimensions: dims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        timestamp_secs: NOW - ago,
        value,
    }
}

/// The original design's rule: the sum of the 5xx values over the window, unhealthy when
/// above the threshold; no values are healthy.
fn original_rule(values: &[f64], threshold: f64) -> VerdictStatus {
    if values.iter().sum::<f64>() > threshold {
        VerdictStatus::Unhealthy
    } else {
        VerdictStatus::Healthy
    }
}

#[tokio::test]
async fn seed_configurations_judge_like_the_original_rule_on_the_same_data() {
    let cw = source().await;
    let datasets: &[&[f64]] = &[
        &[],
        &[0.0],
        &[1.0],
        &[0.0, 0.0, 0.0],
        &[2.0, 1.0],
        &[5.0, 0.0, 4.0, 1.0],
    ];
    for values in datasets {
        for threshold in [0.0, 1.0, 3.0, 10.0] {
            let svc = service();
            let s = spec(&svc, json!({"failure_threshold_value": threshold}));
            // One datapoint per minute, all inside the 600 s window.
            let data: Vec<MetricDatum> = values
                .iter()
                .enumerate()
                .map(|(i, v)| datum(&format!("5xx-{svc}"), &[], 30 + 60 * i as i64, *v))
                .collect();
            cw.put_metric_data("EnvoyPrometheus/ResponseCode", &data)
                .await
                .expect("put");
            let verdict = check(&cw, &s, 2, None, NOW).await.expect("check");
            assert_eq!(
                verdict.status,
                original_rule(values, threshold),
                "values {values:?}, threshold {threshold}: {}",
                verdict.reason
            );
            assert_eq!(verdict.errors, values.iter().sum::<f64>());
            assert_eq!(verdict.window_seconds, 600);
            assert_eq!(
                verdict.requests, None,
                "the seed rule does not query requests"
            );
        }
    }
}

#[tokio::test]
async fn datapoints_outside_the_window_do_not_count() {
    let cw = source().await;
    let svc = service();
    let s = spec(&svc, json!({"failure_threshold_time": 300}));
    let name = format!("5xx-{svc}");
    cw.put_metric_data(
        "EnvoyPrometheus/ResponseCode",
        &[
            datum(&name, &[], 400, 9.0),
            datum(&name, &[], 1_000, 9.0),
            datum(&name, &[], 60, 0.0),
        ],
    )
    .await
    .expect("put");
    let verdict = check(&cw, &s, 2, None, NOW).await.expect("check");
    assert_eq!(verdict.status, VerdictStatus::Healthy, "{}", verdict.reason);
    assert_eq!(verdict.errors, 0.0);
}

#[tokio::test]
async fn the_error_rate_is_computed_from_the_5xx_and_2xx_metrics() {
    let cw = source().await;
    let svc = service();
    let (e, s2) = (format!("5xx-{svc}"), format!("2xx-{svc}"));
    cw.put_metric_data(
        "EnvoyPrometheus/ResponseCode",
        &[
            datum(&e, &[], 30, 2.0),
            datum(&e, &[], 90, 1.0),
            datum(&s2, &[], 30, 50.0),
            datum(&s2, &[], 90, 47.0),
        ],
    )
    .await
    .expect("put");
    let lenient = spec(
        &svc,
        json!({"failure_threshold_value": 1000, "max_error_rate": 5}),
    );
    let v = check(&cw, &lenient, 2, None, NOW).await.expect("check");
    assert_eq!(v.status, VerdictStatus::Healthy, "{}", v.reason);
    assert_eq!((v.errors, v.requests), (3.0, Some(100.0)));
    assert_eq!(v.error_rate, Some(3.0));

    let strict = spec(
        &svc,
        json!({"failure_threshold_value": 1000, "max_error_rate": 2.5}),
    );
    let v = check(&cw, &strict, 2, None, NOW).await.expect("check");
    assert_eq!(v.status, VerdictStatus::Unhealthy, "{}", v.reason);
    assert!(v.reason.contains("max_error_rate"), "{}", v.reason);
}

#[tokio::test]
async fn too_little_traffic_is_judged_by_the_no_data_policy() {
    let cw = source().await;
    let svc = service();
    cw.put_metric_data(
        "EnvoyPrometheus/ResponseCode",
        &[datum(&format!("2xx-{svc}"), &[], 30, 10.0)],
    )
    .await
    .expect("put");
    for (policy, want) in [
        ("fail", VerdictStatus::Unhealthy),
        ("pass", VerdictStatus::Healthy),
        ("hold", VerdictStatus::Hold),
    ] {
        let s = spec(&svc, json!({"min_request_count": 100, "no_data": policy}));
        let v = check(&cw, &s, 2, None, NOW).await.expect("check");
        assert_eq!(v.status, want, "no_data {policy}: {}", v.reason);
        assert_eq!(
            v.requests,
            Some(10.0),
            "the verdict says how much traffic it saw"
        );
    }
    // Enough traffic: judged on its numbers.
    let s = spec(&svc, json!({"min_request_count": 10, "no_data": "fail"}));
    let v = check(&cw, &s, 2, None, NOW).await.expect("check");
    assert_eq!(v.status, VerdictStatus::Healthy, "{}", v.reason);
}

#[tokio::test]
async fn no_datapoints_at_all_with_a_minimum_is_never_silently_healthy() {
    let cw = source().await;
    let svc = service();
    let s = spec(&svc, json!({"min_request_count": 1}));
    let v = check(&cw, &s, 2, None, NOW).await.expect("check");
    assert_eq!(v.status, VerdictStatus::Unhealthy, "{}", v.reason);
    assert_eq!((v.requests, v.datapoints), (Some(0.0), 0));
}

#[tokio::test]
async fn with_a_version_dimension_only_the_canarys_datapoints_count() {
    let cw = source().await;
    let svc = service();
    let name = format!("5xx-{svc}");
    let (stable, canary) = (format!("{svc}-1"), format!("{svc}-2"));
    cw.put_metric_data(
        "EnvoyPrometheus/ResponseCode",
        &[
            datum(&name, &[("pod_controller_name", &stable)], 30, 40.0),
            datum(&name, &[("pod_controller_name", &stable)], 90, 2.0),
            datum(&name, &[("pod_controller_name", &canary)], 30, 0.0),
        ],
    )
    .await
    .expect("put");
    let s = spec(&svc, json!({"version_dimension": "pod_controller_name"}));
    let v = check(&cw, &s, 2, None, NOW).await.expect("check");
    assert_eq!(v.status, VerdictStatus::Healthy, "{}", v.reason);
    assert_eq!((v.errors, v.version), (0.0, Some(2)));

    // The same data judged for version 1 sees the stable version's errors.
    let v = check(&cw, &s, 1, None, NOW).await.expect("check");
    assert_eq!(v.status, VerdictStatus::Unhealthy, "{}", v.reason);
    assert_eq!(v.errors, 42.0);
}

#[tokio::test]
async fn metric_overrides_and_extra_dimensions_are_queried() {
    let cw = source().await;
    let svc = service();
    let errors = format!("errs-{svc}");
    cw.put_metric_data(
        "Custom/Http",
        &[
            datum(&errors, &[("Cluster", "c1")], 30, 3.0),
            datum(&errors, &[("Cluster", "c2")], 30, 50.0),
        ],
    )
    .await
    .expect("put");
    let s = spec(
        &svc,
        json!({
            "metric_namespace": "Custom/Http",
            "error_metric_name": errors,
            "metric_dimensions": {"Cluster": "c1"},
            "failure_threshold_value": 5,
        }),
    );
    let q = HealthQuery::for_check(&s, 2, NOW);
    let obs = cw.observe(&q).await.expect("observe");
    assert_eq!(obs.errors.iter().sum::<f64>(), 3.0);
    assert_eq!(obs.successes, None);
    let v = check(&cw, &s, 2, None, NOW).await.expect("check");
    assert_eq!(v.status, VerdictStatus::Healthy, "{}", v.reason);
}

#[tokio::test]
async fn more_than_one_batch_of_datapoints_is_written_and_read_back() {
    // 1,500 datapoints: two PutMetricData calls, the first well over the 10 KiB above
    // which the SDK compresses PutMetricData bodies by default.
    let cw = source().await;
    let svc = service();
    let name = format!("5xx-{svc}");
    let data: Vec<MetricDatum> = (0..1_500)
        .map(|i| datum(&name, &[], 1 + (i % 590), 1.0))
        .collect();
    cw.put_metric_data("EnvoyPrometheus/ResponseCode", &data)
        .await
        .expect("put");
    let s = spec(&svc, json!({"failure_threshold_value": 10_000}));
    let v = check(&cw, &s, 2, None, NOW).await.expect("check");
    assert_eq!(v.errors, 1_500.0, "{}", v.reason);
    assert_eq!(v.status, VerdictStatus::Healthy, "{}", v.reason);
}

#[tokio::test]
async fn against_the_stable_version_both_versions_are_read_over_the_same_window() {
    let cw = source().await;
    let svc = service();
    let (e, ok) = (format!("5xx-{svc}"), format!("2xx-{svc}"));
    let (stable, canary) = (format!("{svc}-1"), format!("{svc}-2"));
    let dim = "pod_controller_name";
    cw.put_metric_data(
        "EnvoyPrometheus/ResponseCode",
        &[
            // The stable version: 1% errors (background noise).
            datum(&e, &[(dim, &stable)], 30, 90.0),
            datum(&ok, &[(dim, &stable)], 30, 8_910.0),
            // The canary: 1% errors too.
            datum(&e, &[(dim, &canary)], 30, 10.0),
            datum(&ok, &[(dim, &canary)], 30, 990.0),
        ],
    )
    .await
    .expect("put");
    let s = spec(
        &svc,
        json!({"version_dimension": dim, "metrics": {"compare_to_stable": true}}),
    );
    let v = check(&cw, &s, 2, Some(1), NOW).await.expect("check");
    assert_eq!(v.status, VerdictStatus::Healthy, "{}", v.reason);
    let stable_counts = v.stable.expect("stable numbers");
    assert_eq!(
        (stable_counts.requests, stable_counts.errors),
        (9_000.0, 90.0)
    );
    assert_eq!(v.requests, Some(1_000.0));
    assert!(
        v.reason.contains("canary 1.00% vs stable 1.00%"),
        "{}",
        v.reason
    );

    // Judged the other way round, version 1 against version 2: no worse either; and
    // with a tight absolute rate the same numbers fail.
    let strict = spec(
        &svc,
        json!({"version_dimension": dim, "max_error_rate": 0.5}),
    );
    let v = check(&cw, &strict, 2, Some(1), NOW).await.expect("check");
    assert_eq!(v.status, VerdictStatus::Unhealthy, "{}", v.reason);
    assert!(v.stable.is_none());
}
