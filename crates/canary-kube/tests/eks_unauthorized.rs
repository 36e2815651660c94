//! A 401 from an EKS cluster's API server: the cached token is dropped and the request
//! is sent once more with a freshly signed one; a second 401 is an error naming the
//! cluster after exactly two requests, not a loop. A loopback HTTP server refuses the
//! tokens it is told to refuse and records every token presented; the credential
//! provider hands out new temporary credentials on each call, as a rotated role does.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use canary_kube::client::EksSource;
use canary_kube::{ClientSource, Cluster, ClusterEndpoint, TokenPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// New session credentials on every call.
#[derive(Debug, Default)]
struct Rotating(AtomicUsize);

impl ProvideCredentials for Rotating {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(Credentials::new(
            "ASIAEXAMPLE",
            "secret",
            Some(format!("session-{n}")),
            None,
            "rotating",
        )))
    }
}

/// Which tokens the server refuses.
#[derive(Debug, Clone, Copy)]
enum Refuse {
    /// The first token it sees (and only that one).
    First,
    /// Every token.
    All,
}

/// Answers 401 (a Kubernetes `Status`) to refused tokens and a Service to the others;
/// records every bearer token presented, in order.
async fn server(refuse: Refuse) -> Result<(String, Arc<Mutex<Vec<String>>>), std::io::Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let token = text
                    .lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    })
                    .map(|(_, v)| v.trim().trim_start_matches("Bearer ").to_owned())
                    .unwrap_or_default();
                let refused = {
                    let Ok(mut r) = record.lock() else { return };
                    let first = r.first().cloned().unwrap_or_else(|| token.clone());
                    r.push(token.clone());
                    match refuse {
                        Refuse::First => token == first,
                        Refuse::All => true,
                    }
                };
                let (status, body) = if refused {
                    (
                        "401 Unauthorized",
                        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#,
                    )
                } else {
                    (
                        "200 OK",
                        r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x","namespace":"yelb"}}"#,
                    )
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok((url, seen))
}

fn cluster_for(url: String) -> Result<Cluster, Box<dyn std::error::Error>> {
    let ca = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/test-ca.pem"
    ))?;
    let endpoint = ClusterEndpoint {
        name: "demo-prod".into(),
        endpoint: url,
        ca_data: STANDARD.encode(ca),
    };
    let creds = SharedCredentialsProvider::new(Rotating::default());
    let policy = common::fast_policy();
    let source = EksSource::new(
        endpoint,
        "eu-west-1",
        creds,
        "yelb",
        policy,
        TokenPolicy::default(),
    );
    Ok(Cluster::from_source(
        ClientSource::Eks(Arc::new(source)),
        "yelb",
        policy,
    ))
}

fn tokens(seen: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    seen.lock().map(|v| v.clone()).unwrap_or_default()
}

#[tokio::test]
async fn a_401_drops_the_cached_token_and_the_request_succeeds_with_a_fresh_one() -> TestResult {
    let (url, seen) = server(Refuse::First).await?;
    let cluster = cluster_for(url)?;

    assert!(cluster.get("v1", "Service", "yelb", "x").await?.is_some());
    let presented = tokens(&seen);
    assert_eq!(presented.len(), 2, "one refused request, one retry");
    assert!(presented.iter().all(|t| t.starts_with("k8s-aws-v1.")));
    assert_ne!(presented[0], presented[1], "the retry carries a new token");
    let stats = cluster.stats();
    assert_eq!((stats.requests, stats.retries), (2, 1));

    // The fresh token is cached: the next request uses it without signing again.
    assert!(cluster.get("v1", "Service", "yelb", "x").await?.is_some());
    let presented = tokens(&seen);
    assert_eq!(presented.len(), 3);
    assert_eq!(presented[2], presented[1]);
    Ok(())
}

#[tokio::test]
async fn a_second_401_is_an_error_naming_the_cluster_not_a_loop() -> TestResult {
    let (url, seen) = server(Refuse::All).await?;
    let cluster = cluster_for(url)?;

    let got = cluster.get("v1", "Service", "yelb", "x").await;
    let presented = tokens(&seen);
    assert_eq!(presented.len(), 2, "exactly one retry: {presented:?}");
    assert_ne!(presented[0], presented[1]);
    match got {
        Err(canary_kube::Error::ApiRefused { code, message, .. }) => {
            assert_eq!(code, 401);
            assert!(
                message.contains("`demo-prod`") && message.contains("grant-cluster-access"),
                "{message}"
            );
        }
        other => panic!("expected a 401 naming the cluster, got {other:?}"),
    }
    Ok(())
}
