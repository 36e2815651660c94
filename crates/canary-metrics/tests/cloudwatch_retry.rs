//! Retry classification against a scripted CloudWatch on loopback (moto cannot throttle):
//! a raw HTTP server answers each request with the next scripted answer and records
//! what it was sent. The client is the production one, configured as for moto.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::sync::{Arc, Mutex};
use std::time::Duration;

use canary_core::{VerdictStatus, errors};
use canary_metrics::cloudwatch::{CloudWatchMetrics, RetryPolicy};
use canary_metrics::{MetricsError, check};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

fn throttled() -> Answer {
    Answer {
        status: 400,
        headers: vec![("x-amzn-query-error", "Throttling;Sender")],
        body: json!({"__type": "com.amazonaws.cloudwatch#Throttling", "message": "Rate exceeded"})
            .to_string(),
    }
}

fn page(errors: &[f64], next: Option<&str>) -> Answer {
    let mut body = json!({"MetricDataResults": [{"Id": "errors", "Label": "5xx", "Timestamps": [], "Values": errors, "StatusCode": "Complete"}]});
    if let Some(t) = next {
        body["NextToken"] = json!(t);
    }
    Answer {
        status: 200,
        headers: vec![],
        body: body.to_string(),
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
            log.lock().expect("log").push(Seen {
                head,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
            let a = script[i.min(script.len() - 1)].clone();
            let mut out = format!(
                "HTTP/1.1 {} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n",
                a.status,
                a.body.len()
            );
            for (k, v) in &a.headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&a.body);
            let _ = sock.write_all(out.as_bytes()).await;
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
    let v = check(&cw, &spec(), 2, 1_767_225_600)
        .await
        .expect("throttling was retried");
    assert_eq!(v.errors, 6.0, "both pages were summed");
    assert_eq!(v.status, VerdictStatus::Unhealthy, "{}", v.reason);
    let seen = seen.lock().expect("log");
    assert_eq!(seen.len(), 4, "two throttled attempts, then two pages");
    for s in seen.iter() {
        let head = s.head.to_ascii_lowercase();
        assert!(
            head.contains("x-amz-target: graniteserviceversion20100801.getmetricdata"),
            "{head}"
        );
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
    assert_eq!(
        seen[3].body["MetricDataQueries"][0]["MetricStat"]["Metric"]["MetricName"],
        "5xx-web"
    );
}

#[tokio::test]
async fn server_errors_are_retried_too() {
    let unavailable = Answer {
        status: 503,
        headers: vec![],
        body: "{}".into(),
    };
    let (endpoint, seen) = serve(vec![unavailable, page(&[0.0], None)]).await;
    let v = check(&client(&endpoint, 3).await, &spec(), 2, 1_767_225_600)
        .await
        .expect("retried");
    assert_eq!(v.status, VerdictStatus::Healthy);
    assert_eq!(seen.lock().expect("log").len(), 2);
}

#[tokio::test]
async fn throttling_that_never_ends_is_a_transient_metrics_error_after_the_last_attempt() {
    let (endpoint, seen) = serve(vec![throttled()]).await;
    let err = check(&client(&endpoint, 3).await, &spec(), 2, 1_767_225_600)
        .await
        .expect_err("gives up");
    assert_eq!(err.error_type(), errors::METRICS_TRANSIENT);
    assert!(
        matches!(&err, MetricsError::Transient { code, attempts: 3, .. } if code == "Throttling"),
        "{err:?}"
    );
    assert_eq!(seen.lock().expect("log").len(), 3);
}

#[tokio::test]
async fn a_refused_query_is_a_metrics_error_and_is_not_retried() {
    let refused = Answer {
        status: 400,
        headers: vec![],
        body: json!({"__type": "InvalidParameterValue", "message": "The value 7 for parameter Period is not valid."}).to_string(),
    };
    let (endpoint, seen) = serve(vec![refused]).await;
    let err = check(&client(&endpoint, 5).await, &spec(), 2, 1_767_225_600)
        .await
        .expect_err("refused");
    assert_eq!(err.error_type(), errors::METRICS_ERROR);
    assert!(err.to_string().contains("InvalidParameterValue"), "{err}");
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
        1_767_225_600,
    )
    .await
    .expect_err("nothing listens");
    assert_eq!(err.error_type(), errors::METRICS_TRANSIENT, "{err}");
}
