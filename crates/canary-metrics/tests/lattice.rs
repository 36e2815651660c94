//! The VPC Lattice source against moto on loopback: moto 5.2.6 serves VPC Lattice's
//! `CreateTargetGroup`, `ListTargetGroups` and `ListTagsForResource` (its `vpclattice`
//! backend) and CloudWatch's `PutMetricData`/`GetMetricData`, so target groups are made
//! as the AWS Gateway API Controller makes them (its name and tags) and datapoints are
//! written to `AWS/VpcLattice` by `TargetGroup` id, then read back by the production
//! client.
//!
//! Every call goes through a small loopback front that forwards to moto and records the
//! path of each request, so a test can count calls (the lookup cache) and script the
//! answers moto cannot give: throttling, and latency percentiles (moto computes `Sum`,
//! `Average`, `Minimum`, `Maximum` and `SampleCount`, and answers no value for a `p99`),
//! for which the front answers `GetMetricData` itself in the Smithy RPC v2 CBOR protocol
//! and the test checks the request it was sent.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_vpclattice::types::{TargetGroupConfig, TargetGroupProtocol, TargetGroupType};
use bytes::Bytes;
use canary_core::compare::Counts;
use canary_core::spec::LatticeSpec;
use canary_metrics::MetricsError;
use canary_metrics::cloudwatch::{CloudWatchMetrics, MetricDatum, RetryPolicy};
use canary_metrics::lattice::{LatticeMetrics, TargetGroup};
use canary_testkit::{MotoServer, unique_name};
use ciborium::Value as Cbor;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const START: i64 = NOW - 600;
const PERIOD: u32 = 60;
const GET_METRIC_DATA_PATH: &str = "/service/GraniteServiceVersion20100801/operation/GetMetricData";
const LIST_TARGET_GROUPS_PATH: &str = "/targetgroups";
const TAGS_PATH: &str = "/tags/";

/// An answer the front gives instead of moto's.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
}

/// One request the front saw.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    /// A CBOR body as JSON (CloudWatch's requests); `Null` otherwise.
    body: Value,
}

#[derive(Debug, Default)]
struct FrontState {
    /// Answers for requests whose path starts with the key, used in order.
    script: Mutex<VecDeque<(&'static str, Answer)>>,
    seen: Mutex<Vec<Seen>>,
}

/// A loopback server in front of moto.
#[derive(Debug, Clone)]
struct Front {
    endpoint: String,
    state: Arc<FrontState>,
}

impl Front {
    async fn start(script: Vec<(&'static str, Answer)>) -> Self {
        let moto = MotoServer::shared()
            .expect("moto_server starts")
            .endpoint()
            .to_owned();
        let state = Arc::new(FrontState {
            script: Mutex::new(script.into()),
            seen: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let state = shared.clone();
            let moto = moto.clone();
            async move { answer(&state, &moto, req).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { endpoint, state }
    }

    /// How many requests went to paths starting with `prefix`.
    fn calls(&self, prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path.starts_with(prefix))
            .count()
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen").clone()
    }

    /// A source whose every call goes through this front.
    async fn source(&self, attempts: u32) -> LatticeMetrics {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKID", "SECRET", None, None, "test",
            ))
            .load()
            .await;
        LatticeMetrics::new(&sdk)
            .expect("source")
            .with_retry(RetryPolicy {
                max_attempts: attempts,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(40),
                attempt_timeout: Duration::from_secs(10),
            })
    }
}

async fn answer(
    state: &FrontState,
    moto: &str,
    req: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("request body");
    let path = parts.uri.path().to_owned();
    let cbor = if path == GET_METRIC_DATA_PATH {
        ciborium::from_reader::<Cbor, _>(body.as_ref())
            .map(|v| json_of(&v))
            .unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    state.seen.lock().expect("seen").push(Seen {
        path: path.clone(),
        body: cbor,
    });
    let scripted = {
        let mut script = state.script.lock().expect("script");
        match script.front() {
            Some((prefix, _)) if path.starts_with(prefix) => script.pop_front().map(|(_, a)| a),
            _ => None,
        }
    };
    if let Some(a) = scripted {
        let mut out = axum::response::Response::builder().status(a.status);
        for (k, v) in a.headers {
            out = out.header(k, v);
        }
        return out.body(axum::body::Body::from(a.body)).expect("response");
    }
    // Forward to moto as is.
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri = format!(
        "{moto}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forward = http::Request::builder().method(parts.method).uri(uri);
    for (k, v) in &parts.headers {
        if k != http::header::HOST {
            forward = forward.header(k, v);
        }
    }
    let reply = client
        .request(forward.body(Full::new(body)).expect("request"))
        .await
        .expect("moto answers");
    let (parts, body) = reply.into_parts();
    let body = body.collect().await.expect("moto's body").to_bytes();
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

fn text(s: &str) -> Cbor {
    Cbor::Text(s.to_owned())
}

fn cbor(map: Vec<(&str, Cbor)>) -> Vec<u8> {
    let value = Cbor::Map(map.into_iter().map(|(k, v)| (text(k), v)).collect());
    let mut out = Vec::new();
    ciborium::into_writer(&value, &mut out).expect("encodes");
    out
}

/// CBOR as JSON, for assertions (tags are dropped, their content kept).
fn json_of(v: &Cbor) -> Value {
    match v {
        Cbor::Integer(i) => json!(i128::from(*i)),
        Cbor::Float(f) => json!(f),
        Cbor::Text(s) => json!(s),
        Cbor::Bool(b) => json!(b),
        Cbor::Array(items) => Value::Array(items.iter().map(json_of).collect()),
        Cbor::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.as_text().unwrap_or_default().to_owned(), json_of(v)))
                .collect(),
        ),
        Cbor::Tag(_, inner) => json_of(inner),
        _ => Value::Null,
    }
}

/// CloudWatch's throttling answer (RPC v2 CBOR).
fn cloudwatch_throttled() -> Answer {
    Answer {
        status: 400,
        headers: vec![
            ("smithy-protocol", "rpc-v2-cbor"),
            ("content-type", "application/cbor"),
            ("x-amzn-query-error", "Throttling;Sender"),
        ],
        body: cbor(vec![
            ("__type", text("com.amazonaws.cloudwatch#Throttling")),
            ("message", text("Rate exceeded")),
        ]),
    }
}

/// VPC Lattice's throttling answer (REST JSON).
fn lattice_throttled() -> Answer {
    Answer {
        status: 429,
        headers: vec![
            ("content-type", "application/json"),
            ("x-amzn-errortype", "ThrottlingException"),
        ],
        body: br#"{"message":"Rate exceeded"}"#.to_vec(),
    }
}

/// A GetMetricData answer with one result.
fn metric_page(id: &str, values: &[f64]) -> Answer {
    let stamps = (0..values.len())
        .map(|i| Cbor::Tag(1, Box::new(Cbor::Integer((START + 60 * i as i64).into()))))
        .collect();
    let result = Cbor::Map(vec![
        (text("Id"), text(id)),
        (text("Label"), text(id)),
        (text("Timestamps"), Cbor::Array(stamps)),
        (
            text("Values"),
            Cbor::Array(values.iter().map(|v| Cbor::Float(*v)).collect()),
        ),
        (text("StatusCode"), text("Complete")),
    ]);
    Answer {
        status: 200,
        headers: vec![
            ("smithy-protocol", "rpc-v2-cbor"),
            ("content-type", "application/cbor"),
        ],
        body: cbor(vec![("MetricDataResults", Cbor::Array(vec![result]))]),
    }
}

/// Creates a target group in moto with `tags`.
async fn create_target_group(name: &str, tags: &[(&str, &str)]) -> TargetGroup {
    let moto = MotoServer::shared().expect("moto_server starts");
    let client = aws_sdk_vpclattice::Client::new(&moto.sdk_config().await);
    let mut req = client
        .create_target_group()
        .name(name)
        .r#type(TargetGroupType::Ip)
        .config(
            TargetGroupConfig::builder()
                .port(8080)
                .protocol(TargetGroupProtocol::Http)
                .vpc_identifier("vpc-0123456789abcdef0")
                .build(),
        );
    for (k, v) in tags {
        req = req.tags(*k, *v);
    }
    let out = req.send().await.expect("CreateTargetGroup");
    TargetGroup {
        id: out.id().expect("id").to_owned(),
        arn: out.arn().expect("arn").to_owned(),
        name: out.name().expect("name").to_owned(),
    }
}

/// A target group as the AWS Gateway API Controller makes it for Service
/// `namespace/service`, made by `source` (`HTTPRoute`, `ServiceExport`).
async fn controller_target_group(namespace: &str, service: &str, source: &str) -> TargetGroup {
    let suffix: String = unique_name("x")
        .bytes()
        .rev()
        .filter(u8::is_ascii_hexdigit)
        .take(10)
        .map(|b| char::from(b'a' + b % 26))
        .collect();
    create_target_group(
        &format!("k8s-{namespace}-{service}-{suffix}"),
        &[
            (
                "application-networking.k8s.aws/ManagedBy",
                "123456789012/c1/vpc-0123456789abcdef0",
            ),
            ("application-networking.k8s.aws/ClusterName", "c1"),
            ("application-networking.k8s.aws/ServiceName", service),
            ("application-networking.k8s.aws/ServiceNamespace", namespace),
            ("application-networking.k8s.aws/SourceTypeKey", source),
            ("application-networking.k8s.aws/RouteName", "web"),
            ("application-networking.k8s.aws/RouteNamespace", namespace),
        ],
    )
    .await
}

/// Writes `(metric, seconds before NOW, value)` datapoints for `tg` to AWS/VpcLattice.
async fn put(tg: &TargetGroup, points: &[(&str, i64, f64)]) {
    let moto = MotoServer::shared().expect("moto_server starts");
    let cw = CloudWatchMetrics::new(&moto.sdk_config().await).expect("client for moto");
    let data: Vec<MetricDatum> = points
        .iter()
        .map(|(metric, ago, value)| MetricDatum {
            name: (*metric).to_owned(),
            dimensions: vec![("TargetGroup".to_owned(), tg.id.clone())],
            timestamp_secs: NOW - ago,
            value: *value,
        })
        .collect();
    cw.put_metric_data("AWS/VpcLattice", &data)
        .await
        .expect("PutMetricData");
}

fn by_tags() -> LatticeSpec {
    LatticeSpec {
        target_group_names: None,
    }
}

fn namespace() -> String {
    unique_name("ns")
}

#[tokio::test]
async fn counts_per_version_come_from_the_target_groups_the_controller_tagged() {
    let ns = namespace();
    let v2 = controller_target_group(&ns, "web-2", "HTTPRoute").await;
    let v3 = controller_target_group(&ns, "web-3", "HTTPRoute").await;
    // Named like web-3's but for another Service, and web-3's own ServiceExport.
    let other = controller_target_group(&ns, "web-3-canary", "HTTPRoute").await;
    let export = controller_target_group(&ns, "web-3", "ServiceExport").await;
    put(
        &v2,
        &[
            ("TotalRequestCount", 30, 100.0),
            ("TotalRequestCount", 90, 50.0),
            ("HTTPCode_5XX_Count", 30, 1.0),
        ],
    )
    .await;
    put(
        &v3,
        &[
            ("TotalRequestCount", 30, 40.0),
            ("HTTPCode_5XX_Count", 30, 4.0),
            ("HTTPCode_5XX_Count", 150, 2.0),
            // Outside the window.
            ("TotalRequestCount", 700, 1000.0),
            ("HTTPCode_5XX_Count", 700, 1000.0),
        ],
    )
    .await;
    for decoy in [&other, &export] {
        put(
            decoy,
            &[
                ("TotalRequestCount", 30, 9000.0),
                ("HTTPCode_5XX_Count", 30, 9000.0),
            ],
        )
        .await;
    }

    let front = Front::start(Vec::new()).await;
    let source = front.source(3).await;
    let spec = by_tags();
    assert_eq!(
        source
            .target_group(&spec, &ns, "web", 3)
            .await
            .expect("web-3"),
        v3
    );
    assert_eq!(
        source
            .counts(&spec, &ns, "web", 2, START, NOW, PERIOD)
            .await
            .expect("web-2"),
        Some(Counts::new(150.0, 1.0))
    );
    assert_eq!(
        source
            .counts(&spec, &ns, "web", 3, START, NOW, PERIOD)
            .await
            .expect("web-3"),
        Some(Counts::new(40.0, 6.0))
    );

    // Both lookups are cached: more checks ask CloudWatch only.
    let (lists, tags) = (front.calls(LIST_TARGET_GROUPS_PATH), front.calls(TAGS_PATH));
    assert_eq!(lists, 2, "one listing per version");
    assert!(tags >= 2, "the tags of the candidates were read: {tags}");
    for version in [2, 3, 2] {
        source
            .counts(&spec, &ns, "web", version, START, NOW, PERIOD)
            .await
            .expect("again");
    }
    assert_eq!(front.calls(LIST_TARGET_GROUPS_PATH), lists);
    assert_eq!(front.calls(TAGS_PATH), tags);
    // A clone shares the cache.
    source
        .clone()
        .counts(&spec, &ns, "web", 3, START, NOW, PERIOD)
        .await
        .expect("clone");
    assert_eq!(front.calls(LIST_TARGET_GROUPS_PATH), lists);
}

#[tokio::test]
async fn a_name_template_finds_target_groups_that_are_not_the_controllers() {
    let ns = namespace();
    let v1 = create_target_group(&format!("{ns}-web-1-tg"), &[]).await;
    let v2 = create_target_group(&format!("{ns}-web-2-tg"), &[]).await;
    let _near = create_target_group(&format!("{ns}-web-2-tg-old"), &[]).await;
    put(
        &v1,
        &[
            ("TotalRequestCount", 60, 20.0),
            ("HTTPCode_5XX_Count", 60, 0.0),
        ],
    )
    .await;
    put(
        &v2,
        &[
            ("TotalRequestCount", 60, 10.0),
            ("HTTPCode_5XX_Count", 60, 3.0),
        ],
    )
    .await;

    let front = Front::start(Vec::new()).await;
    let source = front.source(3).await;
    let spec = LatticeSpec {
        target_group_names: Some("{namespace}-{workload}-tg".into()),
    };
    assert_eq!(
        source
            .target_group(&spec, &ns, "web", 2)
            .await
            .expect("web-2"),
        v2
    );
    assert_eq!(
        source
            .counts(&spec, &ns, "web", 1, START, NOW, PERIOD)
            .await
            .expect("web-1"),
        Some(Counts::new(20.0, 0.0))
    );
    assert_eq!(
        source
            .counts(&spec, &ns, "web", 2, START, NOW, PERIOD)
            .await
            .expect("web-2"),
        Some(Counts::new(10.0, 3.0))
    );
    assert_eq!(front.calls(TAGS_PATH), 0, "names need no tags");
}

#[tokio::test]
async fn a_missing_target_group_is_an_error_that_names_what_was_looked_for() {
    let ns = namespace();
    // web-9's neighbours exist; web-9 has none.
    controller_target_group(&ns, "web-90", "HTTPRoute").await;
    let front = Front::start(Vec::new()).await;
    let source = front.source(3).await;

    let err = source
        .counts(&by_tags(), &ns, "web", 9, START, NOW, PERIOD)
        .await
        .expect_err("no target group");
    assert!(!err.is_transient(), "not found is final: {err}");
    assert_eq!(err.error_type(), canary_core::errors::METRICS_ERROR);
    let text = err.to_string();
    for part in [
        format!("no VPC Lattice target group for Service {ns}/web-9"),
        format!("application-networking.k8s.aws/ServiceNamespace={ns}"),
        "application-networking.k8s.aws/ServiceName=web-9".to_owned(),
        "set metrics.target_group_names if the target groups are not the AWS Gateway API Controller's".to_owned(),
    ] {
        assert!(text.contains(&part), "`{part}` missing from: {text}");
    }

    let named = LatticeSpec {
        target_group_names: Some("{workload}-in-{namespace}".into()),
    };
    let text = source
        .target_group(&named, &ns, "web", 9)
        .await
        .expect_err("no such name")
        .to_string();
    assert!(text.contains(&format!("named `web-9-in-{ns}`")), "{text}");
    assert!(
        text.contains("metrics.target_group_names `{workload}-in-{namespace}`"),
        "{text}"
    );

    // Not cached: once the controller makes it, the next check finds it.
    let made = controller_target_group(&ns, "web-9", "HTTPRoute").await;
    assert_eq!(
        source
            .target_group(&by_tags(), &ns, "web", 9)
            .await
            .expect("now"),
        made
    );
}

#[tokio::test]
async fn a_version_without_datapoints_is_none_not_zero() {
    let ns = namespace();
    let quiet = controller_target_group(&ns, "web-4", "HTTPRoute").await;
    // Datapoints before the window only.
    put(
        &quiet,
        &[
            ("TotalRequestCount", 3_600, 5.0),
            ("RequestTime", 3_600, 12.0),
        ],
    )
    .await;
    let source = Front::start(Vec::new()).await.source(3).await;
    assert_eq!(
        source
            .counts(&by_tags(), &ns, "web", 4, START, NOW, PERIOD)
            .await
            .expect("counts"),
        None
    );
    assert_eq!(
        source
            .latency_ms(&by_tags(), &ns, "web", 4, START, NOW, PERIOD, 0.99)
            .await
            .expect("latency"),
        None
    );
}

#[tokio::test]
async fn latency_is_the_highest_per_period_request_time_at_the_quantile() {
    let ns = namespace();
    let tg = controller_target_group(&ns, "web-5", "HTTPRoute").await;
    let front = Front::start(vec![(
        GET_METRIC_DATA_PATH,
        metric_page("latency", &[120.0, 340.5, 80.0]),
    )])
    .await;
    let source = front.source(3).await;
    let p99 = source
        .latency_ms(&by_tags(), &ns, "web", 5, START, NOW, PERIOD, 0.99)
        .await
        .expect("latency");
    assert_eq!(p99, Some(340.5));

    let asked: Vec<Value> = front
        .seen()
        .into_iter()
        .filter(|s| s.path == GET_METRIC_DATA_PATH)
        .map(|s| s.body)
        .collect();
    assert_eq!(asked.len(), 1);
    let query = &asked[0]["MetricDataQueries"];
    assert_eq!(
        query,
        &json!([{
            "Id": "latency",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/VpcLattice",
                    "MetricName": "RequestTime",
                    "Dimensions": [{"Name": "TargetGroup", "Value": tg.id}],
                },
                "Period": 60,
                "Stat": "p99",
            },
            "ReturnData": true,
        }])
    );
    // Timestamps go out as CBOR epoch-seconds floats.
    assert_eq!(asked[0]["StartTime"].as_f64(), Some(START as f64));
    assert_eq!(asked[0]["EndTime"].as_f64(), Some(NOW as f64));

    let err = source
        .latency_ms(&by_tags(), &ns, "web", 5, START, NOW, PERIOD, 1.5)
        .await
        .expect_err("quantile");
    assert!(err.to_string().contains("`1.5`"), "{err}");
}

#[tokio::test]
async fn throttled_answers_are_retried_and_endless_throttling_is_transient() {
    let ns = namespace();
    let tg = controller_target_group(&ns, "web-6", "HTTPRoute").await;
    put(
        &tg,
        &[
            ("TotalRequestCount", 120, 70.0),
            ("HTTPCode_5XX_Count", 120, 7.0),
        ],
    )
    .await;
    let front = Front::start(vec![
        (LIST_TARGET_GROUPS_PATH, lattice_throttled()),
        (GET_METRIC_DATA_PATH, cloudwatch_throttled()),
        (GET_METRIC_DATA_PATH, cloudwatch_throttled()),
    ])
    .await;
    let source = front.source(3).await;
    assert_eq!(
        source
            .counts(&by_tags(), &ns, "web", 6, START, NOW, PERIOD)
            .await
            .expect("counts"),
        Some(Counts::new(70.0, 7.0))
    );
    assert_eq!(
        front.calls(LIST_TARGET_GROUPS_PATH),
        2,
        "listing retried once"
    );
    assert_eq!(
        front.calls(GET_METRIC_DATA_PATH),
        3,
        "GetMetricData retried twice"
    );

    // The same source keeps the target group; CloudWatch never stops throttling.
    let throttling = Front::start(vec![(GET_METRIC_DATA_PATH, cloudwatch_throttled()); 4]).await;
    let source = throttling.source(4).await;
    source
        .target_group(&by_tags(), &ns, "web", 6)
        .await
        .expect("lookup");
    let err = source
        .counts(&by_tags(), &ns, "web", 6, START, NOW, PERIOD)
        .await
        .expect_err("throttled to the end");
    assert!(
        matches!(&err, MetricsError::Transient { operation: "GetMetricData", code, attempts: 4, .. } if code == "Throttling"),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(throttling.calls(GET_METRIC_DATA_PATH), 4);
}

/// The whole health check of a deploy.json naming `source: lattice`, through the source
/// the health-check function builds ([`canary_metrics::DeployJsonMetrics`]): the
/// canary's and the stable version's target groups found by the controller's tags, the
/// comparison judged on their numbers.
#[tokio::test]
async fn a_deploy_json_with_a_lattice_source_is_judged_against_the_stable_version() {
    let ns = namespace();
    let service = unique_name("web");
    let stable = controller_target_group(&ns, &format!("{service}-1"), "HTTPRoute").await;
    let canary = controller_target_group(&ns, &format!("{service}-2"), "HTTPRoute").await;
    put(
        &stable,
        &[
            ("TotalRequestCount", 90, 9_000.0),
            ("HTTPCode_5XX_Count", 90, 90.0),
        ],
    )
    .await;
    put(
        &canary,
        &[
            ("TotalRequestCount", 90, 1_000.0),
            ("HTTPCode_5XX_Count", 90, 80.0),
        ],
    )
    .await;
    let doc = serde_json::json!({
        "cluster_name": "c1", "kubernetes_namespace": ns, "microservice_name": service,
        "percentage_step": 10, "wait_time": 60, "container_image": "repo/app:2",
        "failure_threshold_time": 600,
        "metrics": {"source": "lattice", "compare_to_stable": true},
    });
    let spec = canary_core::DeploySpec::parse(&doc, Some("kind: Deployment\n")).expect("valid");
    let moto = MotoServer::shared().expect("moto_server starts");
    let source = canary_metrics::DeployJsonMetrics::new(&moto.sdk_config().await).expect("source");
    let v = canary_metrics::check(&source, &spec, 2, Some(1), NOW)
        .await
        .expect("check");
    // 8% against 1%: worse by far more than a point.
    assert_eq!(
        v.status,
        canary_core::VerdictStatus::Unhealthy,
        "{}",
        v.reason
    );
    assert_eq!((v.errors, v.requests), (80.0, Some(1_000.0)));
    let s = v.stable.expect("the stable version's numbers");
    assert_eq!((s.requests, s.errors), (9_000.0, 90.0));
    assert!(
        v.reason.contains("canary 8.00% vs stable 1.00%"),
        "{}",
        v.reason
    );
}
