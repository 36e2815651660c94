//! The Prometheus source against a real Prometheus server (Debian's `prometheus` 2.42):
//! each test backfills Istio-shaped series (canary_testkit::prometheus::istio_seed) with `promtool tsdb create-blocks-from
//! openmetrics` into a fresh data directory, starts `/usr/bin/prometheus` on a free
//! loopback port with no scrape jobs, and queries it at the end of the seeded data.
//!
//! Seeded (namespace `yelb`, reporter `destination`, one sample a minute for two hours,
//! linear counters so `increase(...[600s])` is exact):
//! - `yelb-appserver-1` (stable): 100 × 200 and 1 × 500 a minute;
//! - `yelb-appserver-2` (healthy canary): 98 × 200 and 2 × 503 a minute (1000 requests
//!   and 20 errors in 10 minutes), and a latency histogram whose p99 is 375 ms;
//! - `yelb-appserver-3` (faulty canary): 70 × 200 and 30 × 500 a minute;
//! - `yelb-appserver-2` as seen by `reporter="source"`: other numbers, which the
//!   queries must not count;
//! - nothing for `yelb-appserver-4`.
//!
//! Also: a bearer/basic-checking axum server, a closed port (transient, retried), and
//! SigV4 signatures compared with botocore's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use canary_core::spec::{
    PromQueries, PrometheusAuth, PrometheusSpec, SourceSpec, parse_metrics_section,
};
use canary_core::{DeploySpec, VerdictStatus};
use canary_metrics::prometheus::{PrometheusMetrics, RetryPolicy, encode, sign_get};
use canary_metrics::{HealthQuery, MetricsError, MetricsSource};
use canary_testkit::prometheus::{PrometheusServer, istio_seed};
use canary_testkit::python_without_aws_env as python;
use serde_json::json;

const NAMESPACE: &str = "yelb";
const SERVICE: &str = "yelb-appserver";

/// A running Prometheus on the seeded series, and the end of the seeded data (Unix
/// seconds): queries are made at this time.
struct Prometheus {
    _server: PrometheusServer,
    url: String,
    end: i64,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Backfills the seeded series and starts Prometheus on them (`None`: the peer is
/// missing and allowed to be).
fn start_prometheus() -> Option<Prometheus> {
    let seed = istio_seed(NAMESPACE, SERVICE);
    let server =
        PrometheusServer::backfilled(&seed.openmetrics).unwrap_or_else(|e| panic!("{e}"))?;
    Some(Prometheus {
        url: server.url.clone(),
        _server: server,
        end: seed.end,
    })
}

/// A deploy.json (`max_error_rate` etc. in `extra`) and its `metrics` section, read
/// with `parse_metrics_section` (this build's `DeploySpec::parse` still refuses
/// non-CloudWatch sources until the health check uses them).
struct Deploy {
    spec: DeploySpec,
    prom: PrometheusSpec,
}

fn deploy(metrics: serde_json::Value, extra: serde_json::Value) -> Deploy {
    let mut doc = json!({
        "cluster_name": "c1",
        "kubernetes_namespace": NAMESPACE,
        "microservice_name": SERVICE,
        "percentage_step": 10,
        "wait_time": 60,
        "container_image": "repo/app:1",
        "version_dimension": "destination_workload",
        "failure_threshold_time": 600,
    });
    doc.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let spec =
        DeploySpec::parse(&doc, Some("kind: Deployment\n")).unwrap_or_else(|e| panic!("{e:?}"));
    let section = parse_metrics_section(&metrics).unwrap_or_else(|e| panic!("{e:?}"));
    let prom = match section.source {
        SourceSpec::Prometheus(p) => p,
        other => panic!("not prometheus: {other:?}"),
    };
    Deploy { spec, prom }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(20),
        attempt_timeout: Duration::from_secs(5),
    }
}

fn source(d: &Deploy) -> PrometheusMetrics {
    PrometheusMetrics::new(&d.prom, None)
        .unwrap()
        .with_namespace(&d.spec.kubernetes_namespace)
        .with_retry(fast())
}

fn istio(url: &str) -> Deploy {
    deploy(
        json!({"source": "prometheus", "url": url, "preset": "istio", "max_latency_ms": 300}),
        json!({"max_error_rate": 5, "failure_threshold_value": 50}),
    )
}

fn custom_queries() -> serde_json::Value {
    json!({
        "requests": "sum(increase(istio_requests_total{reporter=\"destination\", destination_workload_namespace=\"{namespace}\", destination_workload=\"{workload}\"}[{window}]))",
        "errors": "sum(increase(istio_requests_total{reporter=\"destination\", destination_workload_namespace=\"{namespace}\", destination_workload=\"{workload}\", response_code=~\"5..\"}[{window}]))",
    })
}

#[tokio::test]
async fn a_healthy_canary_reads_exactly_the_seeded_numbers_through_the_preset_and_a_custom_query() {
    let Some(p) = start_prometheus() else { return };
    let preset = istio(&p.url);
    let custom = deploy(
        json!({"source": "prometheus", "url": p.url, "queries": custom_queries()}),
        json!({"max_error_rate": 5, "failure_threshold_value": 50}),
    );
    for d in [&preset, &custom] {
        let spec = &d.spec;
        let q = HealthQuery::for_check(spec, 2, p.end);
        assert!(q.need_requests);
        let obs = source(d).observe(&q).await.unwrap();
        assert_eq!(obs.errors, vec![20.0], "{:?}", d.prom.preset);
        assert_eq!(obs.successes, Some(vec![980.0]));
        let verdict = canary_core::verdict::judge(
            &q.health,
            spec.failure_threshold_value,
            q.window_seconds(),
            q.judged_version(),
            &obs,
        );
        // 20 errors is 2% of 1000: under max_error_rate 5%.
        assert_eq!(verdict.status, VerdictStatus::Healthy, "{}", verdict.reason);
        assert_eq!(verdict.requests, Some(1000.0));
    }
    // The stable version's counts, for a comparison.
    let q = HealthQuery::for_check(&preset.spec, 2, p.end);
    let counts = source(&preset).counts(&q, 1).await.unwrap();
    assert_eq!(counts, Some((1010.0, 10.0)));
}

#[tokio::test]
async fn a_canary_above_the_threshold_is_judged_unhealthy() {
    let Some(p) = start_prometheus() else { return };
    let d = istio(&p.url);
    let spec = &d.spec;
    let q = HealthQuery::for_check(spec, 3, p.end);
    let obs = source(&d).observe(&q).await.unwrap();
    assert_eq!(obs.errors, vec![300.0]);
    assert_eq!(obs.successes, Some(vec![700.0]));
    let verdict = canary_core::verdict::judge(
        &q.health,
        spec.failure_threshold_value,
        q.window_seconds(),
        q.judged_version(),
        &obs,
    );
    assert_eq!(
        verdict.status,
        VerdictStatus::Unhealthy,
        "{}",
        verdict.reason
    );
    assert_eq!(verdict.errors, 300.0);
}

#[tokio::test]
async fn latency_p99_comes_from_the_histogram() {
    let Some(p) = start_prometheus() else { return };
    let d = istio(&p.url);
    let q = HealthQuery::for_check(&d.spec, 2, p.end);
    let src = source(&d);
    let p99 = src.latency_ms(&q, 0.99).await.unwrap().unwrap();
    // Rank 99 of 100 falls halfway into the (250, 500] bucket, which holds 2.
    assert!((p99 - 375.0).abs() < 1e-6, "p99 = {p99}");
    let p50 = src.latency_ms(&q, 0.5).await.unwrap().unwrap();
    assert!((p50 - 50.0).abs() < 1e-6, "p50 = {p50}");
    // No histogram for version 3: no datapoints.
    let q3 = HealthQuery::for_check(&d.spec, 3, p.end);
    assert_eq!(src.latency_ms(&q3, 0.99).await.unwrap(), None);
}

#[tokio::test]
async fn an_empty_result_is_no_datapoints_not_zero() {
    let Some(p) = start_prometheus() else { return };
    let d = istio(&p.url);
    let q = HealthQuery::for_check(&d.spec, 4, p.end);
    let src = source(&d);
    let obs = src.observe(&q).await.unwrap();
    assert_eq!(obs.errors, Vec::<f64>::new());
    assert_eq!(obs.successes, Some(vec![]));
    assert_eq!(src.counts(&q, 4).await.unwrap(), None);
    // Without request counts needed, still no datapoints.
    let plain = deploy(
        json!({"source": "prometheus", "url": p.url, "preset": "istio"}),
        json!({}),
    );
    let q = HealthQuery::for_check(&plain.spec, 4, p.end);
    assert!(!q.need_requests);
    let obs = source(&plain).observe(&q).await.unwrap();
    assert_eq!((obs.errors, obs.successes), (vec![], None));
}

#[tokio::test]
async fn a_refused_query_is_not_retried_and_names_the_query_and_prometheus_message() {
    let Some(p) = start_prometheus() else { return };
    let src = source(&istio(&p.url));
    let query = "sum(increase(istio_requests_total[10m]) by";
    let err = src.instant(query, p.end).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(
        matches!(err, MetricsError::Refused { status: 400, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(query), "{text}");
    assert!(text.contains("bad_data"), "{text}");
    // Prometheus's own parser message.
    assert!(text.contains("parse error"), "{text}");
}

#[tokio::test]
async fn prometheus_down_is_transient_after_exactly_the_configured_attempts() {
    let port = free_port(); // bound and released: nothing listens there
    let d = istio(&format!("http://127.0.0.1:{port}"));
    let src = source(&d);
    let q = HealthQuery::for_check(&d.spec, 2, 1_700_000_000);
    let started = std::time::Instant::now();
    let err = src.observe(&q).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    match &err {
        MetricsError::Transient { attempts, code, .. } => {
            assert_eq!(*attempts, 3, "{err}");
            assert_eq!(code, "connect", "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("istio_requests_total"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let one = PrometheusMetrics::new(&d.prom, None)
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 1,
            ..fast()
        });
    // The query carries the service's namespace: no with_namespace needed.
    assert_eq!(q.namespace, NAMESPACE);
    match one.observe(&q).await.unwrap_err() {
        MetricsError::Transient { attempts, .. } => assert_eq!(attempts, 1),
        other => panic!("{other:?}"),
    }
}

/// A server that answers `7` only to the expected `Authorization` header, 401 otherwise.
async fn auth_server(expected: String) -> String {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/api/v1/query",
        get(move |headers: HeaderMap| {
            let expected = expected.clone();
            async move {
                let got = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if got == expected {
                    (
                        StatusCode::OK,
                        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"7"]}]}}"#,
                    )
                } else {
                    (
                        StatusCode::UNAUTHORIZED,
                        r#"{"status":"error","errorType":"unauthorized","error":"bad credentials"}"#,
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn with_auth(url: &str, auth: PrometheusAuth) -> PrometheusSpec {
    PrometheusSpec {
        url: url.to_owned(),
        auth,
        queries: PromQueries {
            requests: "sum(x)".into(),
            errors: "sum(y)".into(),
            latency: None,
        },
        preset: None,
    }
}

#[tokio::test]
async fn bearer_and_basic_credentials_come_from_the_named_environment_variable() {
    // PATH is always set (the edition forbids setting variables in tests); it holds `:`,
    // so it also serves as `user:password`.
    let secret = std::env::var("PATH").unwrap();
    let url = auth_server(format!("Bearer {secret}")).await;
    let bearer = PrometheusMetrics::new(
        &with_auth(&url, PrometheusAuth::Bearer { env: "PATH".into() }),
        None,
    )
    .unwrap()
    .with_retry(fast());
    assert_eq!(bearer.instant("sum(x)", 1).await.unwrap(), Some(7.0));

    // The wrong credentials are refused at once, with the server's message.
    let basic = PrometheusMetrics::new(
        &with_auth(&url, PrometheusAuth::Basic { env: "PATH".into() }),
        None,
    )
    .unwrap()
    .with_retry(fast());
    let err = basic.instant("sum(x)", 1).await.unwrap_err();
    assert!(
        matches!(err, MetricsError::Refused { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("bad credentials"), "{err}");

    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret.as_bytes());
    let url = auth_server(format!("Basic {encoded}")).await;
    let basic = PrometheusMetrics::new(
        &with_auth(&url, PrometheusAuth::Basic { env: "PATH".into() }),
        None,
    )
    .unwrap();
    assert_eq!(basic.instant("sum(x)", 1).await.unwrap(), Some(7.0));

    let missing = "EKS_CANARY_TEST_SURELY_UNSET_TOKEN";
    let err = PrometheusMetrics::new(
        &with_auth(
            &url,
            PrometheusAuth::Bearer {
                env: missing.into(),
            },
        ),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains(missing), "{err}");
    // SigV4 without AWS credentials is an error too.
    let err = PrometheusMetrics::new(
        &with_auth(
            &url,
            PrometheusAuth::Sigv4 {
                region: "eu-west-1".into(),
            },
        ),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("credentials"), "{err}");
}

#[test]
fn the_sigv4_signature_matches_botocore() {
    let found = canary_testkit::require_peer(
        "botocore",
        canary_testkit::python_module_available("botocore"),
        canary_testkit::install::BOTOCORE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if !found {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/botocore_sigv4.py");
    let base = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123abcd-4567";
    let cases = [
        (
            "eu-west-1",
            None,
            "2024-05-06T07:08:09",
            1_714_979_289_u64,
            r#"sum(increase(istio_requests_total{reporter="destination", destination_workload="yelb-appserver-2", response_code=~"5.."}[600s]))"#,
        ),
        (
            "us-east-1",
            Some("FwoGZXIvYXdzEBYaDH/+session=token"),
            "2026-01-31T23:59:59",
            1_769_903_999,
            "histogram_quantile(0.99, sum by (le) (rate(x_bucket{a=~\"b|c\", d!='e f'}[5m])))",
        ),
    ];
    for (region, token, time, unix, query) in cases {
        let url = format!(
            "{base}/api/v1/query?query={}&time=1714979000",
            encode(query)
        );
        let args = json!({
            "url": url, "region": region, "access_key": "AKIDEXAMPLE",
            "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session_token": token, "time": time,
        });
        let out = python()
            .arg(&script)
            .arg(args.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "botocore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&out.stdout).unwrap();
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "test",
        );
        let at = UNIX_EPOCH + Duration::from_secs(unix);
        let ours: std::collections::BTreeMap<String, String> = sign_get(&creds, region, &url, at)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_lowercase(), v))
            .collect();
        for header in ["authorization", "x-amz-date"] {
            assert_eq!(
                ours.get(header).map(String::as_str),
                theirs.get(header).and_then(|v| v.as_str()),
                "{header} for {query}\nours:   {ours:?}\ntheirs: {theirs:?}"
            );
        }
        assert_eq!(
            ours.get("x-amz-security-token").map(String::as_str),
            token,
            "{ours:?}"
        );
        assert!(ours["authorization"].starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/{region}/aps/aws4_request",
            &time[..10].replace('-', "")
        )));
    }
}

/// The verdict cases the CloudWatch source is held to, here through `check` (the health
/// check's whole path) against the seeded series: the error rate, `min_request_count`
/// with each `no_data` policy, per version, latency, and the canary against the stable
/// version.
#[tokio::test]
async fn the_verdict_table_through_the_whole_health_check() {
    use canary_metrics::check;
    let Some(p) = start_prometheus() else { return };
    let url = p.url.clone();
    let preset = |extra: serde_json::Value| {
        let mut m = json!({"source": "prometheus", "url": url, "preset": "istio"});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    let cases: Vec<(
        &str,
        serde_json::Value,
        serde_json::Value,
        u32,
        VerdictStatus,
        &str,
    )> = vec![
        (
            "healthy by rate",
            preset(json!({})),
            json!({"max_error_rate": 5, "failure_threshold_value": 50}),
            2,
            VerdictStatus::Healthy,
            "20 errors in 1000 requests",
        ),
        (
            "unhealthy by rate",
            preset(json!({})),
            json!({"max_error_rate": 5, "failure_threshold_value": 1000}),
            3,
            VerdictStatus::Unhealthy,
            "above max_error_rate 5%",
        ),
        (
            "the original count rule",
            preset(json!({})),
            json!({"failure_threshold_value": 10}),
            2,
            VerdictStatus::Unhealthy,
            "more than failure_threshold_value 10",
        ),
        (
            "no data, fail",
            preset(json!({})),
            json!({"min_request_count": 100, "no_data": "fail"}),
            4,
            VerdictStatus::Unhealthy,
            "fewer than min_request_count 100",
        ),
        (
            "no data, pass",
            preset(json!({})),
            json!({"min_request_count": 100, "no_data": "pass"}),
            4,
            VerdictStatus::Healthy,
            "no_data is `pass`",
        ),
        (
            "no data, hold",
            preset(json!({})),
            json!({"min_request_count": 100, "no_data": "hold"}),
            4,
            VerdictStatus::Hold,
            "holding",
        ),
        (
            "latency above",
            preset(json!({"max_latency_ms": 300})),
            json!({"failure_threshold_value": 50}),
            2,
            VerdictStatus::Unhealthy,
            "latency p99 375 ms is above max_latency_ms 300 ms",
        ),
        (
            "latency within",
            preset(json!({"max_latency_ms": 400})),
            json!({"failure_threshold_value": 50}),
            2,
            VerdictStatus::Healthy,
            "latency p99 375 ms",
        ),
        (
            "worse than stable",
            preset(json!({"compare_to_stable": true})),
            json!({}),
            3,
            VerdictStatus::Unhealthy,
            "the canary is worse",
        ),
        (
            "no worse than stable",
            preset(json!({"compare_to_stable": {"margin_percent": 2}})),
            json!({}),
            2,
            VerdictStatus::Healthy,
            "not worse by more than 2 percentage points",
        ),
    ];
    for (name, metrics, extra, version, want, says) in cases {
        let mut doc = json!({
            "cluster_name": "c1", "kubernetes_namespace": NAMESPACE,
            "microservice_name": SERVICE, "percentage_step": 10, "wait_time": 60,
            "container_image": "repo/app:1", "failure_threshold_time": 600,
            "metrics": metrics,
        });
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let spec = DeploySpec::parse(&doc, Some("kind: Deployment\n"))
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let SourceSpec::Prometheus(prom) = &spec.metrics.source else {
            panic!("{name}")
        };
        let src = PrometheusMetrics::new(prom, None)
            .unwrap()
            .with_retry(fast());
        let v = check(&src, &spec, version, Some(1), p.end)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(v.status, want, "{name}: {}", v.reason);
        assert!(v.reason.contains(says), "{name}: {}", v.reason);
    }
}
