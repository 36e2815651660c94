//! Retry classification against a scripted CloudWatch on loopback (moto cannot throttle):
//! a raw HTTP server answers each request with the next scripted answer in the Smithy
//! RPC v2 CBOR protocol that `aws-sdk-cloudwatch` speaks, and records what it was sent.
//! The client is the production one, configured as for moto.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::sync::{Arc, Mutex};
use std::time::Duration;

use canary_core::{VerdictStatus, errors};
use canary_metrics::cloudwatch::{CloudWatchMetrics, RetryPolicy};
use canary_metrics::{MetricsError, check};
use ciborium::Value as Cbor;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The path every GetMetricData call is sent to.
const GET_METRIC_DATA_PATH: &str = "/service/GraniteServiceVersion20100801/operation/GetMetricData";

#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
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

/// A CBOR error answer, as CloudWatch sends it: `__type` and `message` in the body.
fn error_answer(status: u16, query_error: Option<&'static str>, ty: &str, message: &str) -> Answer {
    let mut headers = vec![("smithy-protocol", "rpc-v2-cbor")];
    if let Some(q) = query_error {
        headers.push(("x-amzn-query-error", q));
    }
    Answer {
        status,
        headers,
        body: cbor(vec![("__type", text(ty)), ("message", text(message))]),
    }
}

fn throttled() -> Answer {
    error_answer(
        400,
        Some("Throttling;Sender"),
        "com.amazonaws.cloudwatch#Throttling",
        "Rate exceeded",
    )
}

/// One page of the `errors` query. Timestamps are whole epoch seconds under tag 1, as
/// moto writes them.
fn page(errors: &[f64], next: Option<&str>) -> Answer {
    let stamps = (0..errors.len())
        .map(|i| {
            Cbor::Tag(
                1,
                Box::new(Cbor::Integer((1_767_225_000 + 60 * i as i64).into())),
            )
        })
        .collect();
    let result = Cbor::Map(vec![
        (text("Id"), text("errors")),
        (text("Label"), text("5xx")),
        (text("Timestamps"), Cbor::Array(stamps)),
        (
            text("Values"),
            Cbor::Array(errors.iter().map(|v| Cbor::Float(*v)).collect()),
        ),
        (text("StatusCode"), text("Complete")),
    ]);
    let mut body = vec![("MetricDataResults", Cbor::Array(vec![result]))];
    if let Some(t) = next {
        body.push(("NextToken", text(t)));
    }
    Answer {
        status: 200,
        headers: vec![("smithy-protocol", "rpc-v2-cbor")],
        body: cbor(body),
    }
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

#[derive(Debug)]
struct Seen {
    head: String,
    body: Value,
}

/// Serves `script` in order (the last answer repeats), one request per connection.
async fn serve(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for i in 0..100usize {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then Content-Length bytes of body.
            let (head, body) = loop {
                let Ok(n) = sock.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    break (head, buf[end + 4..].to_vec());
                }
            };
            let body = ciborium::from_reader::<Cbor, _>(body.as_slice())
                .map(|v| json_of(&v))
                .unwrap_or(Value::Null);
            log.lock().expect("log").push(Seen { head, body });
            let a = script[i.min(script.len() - 1)].clone();
            let mut out = format!(
                "HTTP/1.1 {} X\r\ncontent-type: application/cbor\r\ncontent-length: {}\r\nconnection: close\r\n",
                a.status,
                a.body.len()
            );
            for (k, v) in &a.headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            let mut bytes = out.into_bytes();
            bytes.extend_from_slice(&a.body);
            let _ = sock.write_all(&bytes).await;
            let _ = sock.shutdown().await;
        }
    });
    (format!("http://{addr}"), seen)
}

async fn client(endpoint: &str, attempts: u32) -> CloudWatchMetrics {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKID", "SECRET", None, None, "test",
        ))
        .load()
        .await;
    CloudWatchMetrics::new(&sdk)
        .expect("client")
        .with_retry(RetryPolicy {
            max_attempts: attempts,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(40),
            attempt_timeout: Duration::from_secs(5),
        })
}

fn spec() -> canary_core::DeploySpec {
    let doc = json!({
        "cluster_name": "c1", "kubernetes_namespace": "shop", "microservice_name": "web",
        "percentage_step": 20, "wait_time": 60, "container_image": "repo/web:2",
        "failure_threshold_value": 4,
    });
    canary_core::DeploySpec::parse(&doc, Some("kind: Deployment\n")).expect("valid deploy.json")
}

#[tokio::test]
async fn throttling_is_retried_and_every_page_is_read() {
    let (endpoint, seen) = serve(vec![
        throttled(),
        throttled(),
        page(&[1.0, 2.0], Some("p2")),
        page(&[3.0], None),
    ])
    .await;
    let cw = client(&endpoint, 5).await;
    let v = check(&cw, &spec(), 2, None, 1_767_225_600)
        .await
        .expect("throttling was retried");
    assert_eq!(v.errors, 6.0, "both pages were summed");
    assert_eq!(v.status, VerdictStatus::Unhealthy, "{}", v.reason);
    let seen = seen.lock().expect("log");
    assert_eq!(seen.len(), 4, "two throttled attempts, then two pages");
    for s in seen.iter() {
        let head = s.head.to_ascii_lowercase();
        assert!(
            head.starts_with(&format!(
                "post {} ",
                GET_METRIC_DATA_PATH.to_ascii_lowercase()
            )),
            "{head}"
        );
        assert!(head.contains("smithy-protocol: rpc-v2-cbor"), "{head}");
        assert!(
            head.contains("authorization: aws4-hmac-sha256 credential=akid/"),
            "{head}"
        );
        assert!(
            head.contains("/us-east-1/monitoring/aws4_request"),
            "{head}"
        );
    }
    assert_eq!(seen[2].body.get("NextToken"), None);
    assert_eq!(
        seen[3].body["NextToken"], "p2",
        "the second page asks for the token"
    );
    let query = &seen[3].body["MetricDataQueries"][0];
    assert_eq!(query["MetricStat"]["Metric"]["MetricName"], "5xx-web");
    assert_eq!(query["MetricStat"]["Stat"], "Sum");
    assert_eq!(query["MetricStat"]["Period"], 60);
    assert_eq!(seen[3].body["ScanBy"], "TimestampAscending");
    assert_eq!(
        seen[3].body["EndTime"].as_f64(),
        Some(1_767_225_600.0),
        "the window ends at the check"
    );
}

#[tokio::test]
async fn server_errors_are_retried_too() {
    let unavailable = Answer {
        status: 503,
        headers: vec![],
        body: b"{}".to_vec(),
    };
    let (endpoint, seen) = serve(vec![unavailable, page(&[0.0], None)]).await;
    let v = check(&client(&endpoint, 3).await, &spec(), 2, None, 1_767_225_600)
        .await
        .expect("retried");
    assert_eq!(v.status, VerdictStatus::Healthy);
    assert_eq!(seen.lock().expect("log").len(), 2);
}

#[tokio::test]
async fn throttling_that_never_ends_is_a_transient_metrics_error_after_the_last_attempt() {
    let (endpoint, seen) = serve(vec![throttled()]).await;
    let err = check(&client(&endpoint, 3).await, &spec(), 2, None, 1_767_225_600)
        .await
        .expect_err("gives up");
    assert_eq!(err.error_type(), errors::METRICS_TRANSIENT);
    assert!(
        matches!(&err, MetricsError::Transient { code, attempts: 3, .. } if code == "Throttling"),
        "{err:?}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the SDK's error is kept as the cause: {err:?}"
    );
    assert_eq!(seen.lock().expect("log").len(), 3);
}

#[tokio::test]
async fn error_codes_are_read_from_the_cbor_type_without_its_namespace_and_from_the_status() {
    let (endpoint, _) = serve(vec![error_answer(
        400,
        None,
        "com.amazon.coral.availability#ThrottlingException",
        "Rate exceeded",
    )])
    .await;
    let err = check(&client(&endpoint, 2).await, &spec(), 2, None, 1_767_225_600)
        .await
        .expect_err("gives up");
    assert!(
        matches!(&err, MetricsError::Transient { code, message, attempts: 2, .. }
            if code == "ThrottlingException" && message == "Rate exceeded"),
        "{err:?}"
    );

    let bad_gateway = Answer {
        status: 502,
        headers: vec![],
        body: b"<html>oops</html>".to_vec(),
    };
    let (endpoint, _) = serve(vec![bad_gateway]).await;
    let err = check(&client(&endpoint, 2).await, &spec(), 2, None, 1_767_225_600)
        .await
        .expect_err("gives up");
    assert!(
        matches!(&err, MetricsError::Transient { code, .. } if code == "HTTP 502"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_refused_query_is_a_metrics_error_and_is_not_retried() {
    let refused = error_answer(
        400,
        None,
        "InvalidParameterValue",
        "The value 7 for parameter Period is not valid.",
    );
    let (endpoint, seen) = serve(vec![refused]).await;
    let err = check(&client(&endpoint, 5).await, &spec(), 2, None, 1_767_225_600)
        .await
        .expect_err("refused");
    assert_eq!(err.error_type(), errors::METRICS_ERROR);
    assert!(err.to_string().contains("InvalidParameterValue"), "{err}");
    assert!(
        matches!(
            &err,
            MetricsError::Refused {
                status: 400,
                source: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(seen.lock().expect("log").len(), 1);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    // Bind then drop: nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let err = check(
        &client(&format!("http://127.0.0.1:{port}"), 2).await,
        &spec(),
        2,
        None,
        1_767_225_600,
    )
    .await
    .expect_err("nothing listens");
    assert_eq!(err.error_type(), errors::METRICS_TRANSIENT, "{err}");
}
