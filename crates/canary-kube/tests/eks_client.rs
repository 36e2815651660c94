//! The EKS client path without AWS: a kube client built from an endpoint, a CA bundle
//! and a token signed from the credential provider sends `Authorization: Bearer
//! k8s-aws-v1.…`, reuses the token while it is fresh and signs a new one shortly before
//! it expires. A small loopback HTTP server records the headers it receives. Also: a
//! kubeconfig file is enough to reach the simulated cluster.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use canary_kube::client::EksSource;
use canary_kube::{ClientSource, Cluster, ClusterEndpoint, TokenPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Answers every request with a Service object and records its Authorization header.
async fn recording_server() -> Result<(String, Arc<Mutex<Vec<String>>>), std::io::Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let seen = Arc::new(Mutex::new(Vec::new()));
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
                let auth = text
                    .lines()
                    .find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                    })
                    .map(|(_, v)| v.trim().to_owned())
                    .unwrap_or_default();
                if let Ok(mut r) = record.lock() {
                    r.push(auth);
                }
                let body = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x","namespace":"yelb"}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    Ok((url, seen))
}

fn headers(seen: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    seen.lock().map(|v| v.clone()).unwrap_or_default()
}

#[tokio::test]
async fn an_eks_client_sends_the_signed_token_reuses_it_and_renews_it_before_expiry() -> TestResult
{
    let (url, seen) = recording_server().await?;
    let ca = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/test-ca.pem"
    ))?;
    let endpoint = ClusterEndpoint {
        name: "demo".into(),
        endpoint: url,
        ca_data: STANDARD.encode(ca),
    };
    let creds = SharedCredentialsProvider::new(Credentials::new(
        "AKIDEXAMPLE",
        "secret",
        None,
        None,
        "test",
    ));
    // A token that must be renewed 10 s before a 12 s lifetime: fresh for 2 s.
    let tokens = TokenPolicy {
        lifetime: Duration::from_secs(12),
        margin: Duration::from_secs(10),
    };
    let policy = common::fast_policy();
    let source = EksSource::new(endpoint, "eu-west-1", creds, "yelb", policy, tokens);
    let cluster = Cluster::from_source(ClientSource::Eks(Arc::new(source)), "yelb", policy);

    assert!(cluster.get("v1", "Service", "yelb", "x").await?.is_some());
    assert!(cluster.get("v1", "Service", "yelb", "x").await?.is_some());
    let first = headers(&seen);
    assert_eq!(first.len(), 2);
    assert_eq!(first[0], first[1], "the token is reused while fresh");
    let token = first[0]
        .strip_prefix("Bearer k8s-aws-v1.")
        .unwrap_or_default();
    let url = String::from_utf8(URL_SAFE_NO_PAD.decode(token)?)?;
    assert!(url.starts_with(
        "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
    ));
    assert!(
        url.contains("X-Amz-Credential=AKIDEXAMPLE%2F")
            && url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id")
    );

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(cluster.get("v1", "Service", "yelb", "x").await?.is_some());
    let after = headers(&seen);
    assert_eq!(after.len(), 3);
    assert!(after[2].starts_with("Bearer k8s-aws-v1."));
    assert_ne!(
        after[2], after[0],
        "a new token is signed shortly before the old one expires"
    );
    Ok(())
}

#[tokio::test]
async fn a_ca_bundle_that_is_not_pem_is_refused_before_any_connection() -> TestResult {
    let (url, seen) = recording_server().await?;
    let endpoint = ClusterEndpoint {
        name: "demo".into(),
        endpoint: url,
        ca_data: STANDARD.encode(b"not a certificate"),
    };
    let creds = SharedCredentialsProvider::new(Credentials::new(
        "AKIDEXAMPLE",
        "secret",
        None,
        None,
        "test",
    ));
    let policy = common::fast_policy();
    let source = EksSource::new(
        endpoint,
        "eu-west-1",
        creds,
        "yelb",
        policy,
        TokenPolicy::default(),
    );
    let cluster = Cluster::from_source(ClientSource::Eks(Arc::new(source)), "yelb", policy);
    let got = cluster.get("v1", "Service", "yelb", "x").await;
    assert!(
        matches!(&got, Err(canary_kube::Error::Config { message }) if message.contains("PEM")),
        "{got:?}"
    );
    assert!(headers(&seen).is_empty());
    Ok(())
}

#[tokio::test]
async fn a_kubeconfig_file_is_enough_to_reach_the_simulated_cluster() -> TestResult {
    let h = common::harness("default").await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, canary_sim::kubeconfig_yaml(&h.server.url, "yelb"))?;
    let cluster = Cluster::from_kubeconfig_file(&path, None, common::fast_policy()).await?;
    assert_eq!(cluster.namespace(), "yelb");
    let fx = common::Fixture::new(
        "yelb-ui",
        "yelb",
        common::Flavor::AppMesh(vec!["httpRoute"]),
    );
    // Objects without a namespace go to the kubeconfig's namespace.
    let mut objects = fx.objects(1, &[(1, 100)]);
    for o in &mut objects {
        if let Some(meta) = o["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
    }
    cluster.apply(&objects).await?;
    assert!(
        h.sim
            .get_object("apps/v1", "Deployment", "yelb", "yelb-ui-1")
            .is_some()
    );
    let missing =
        Cluster::from_kubeconfig_file(&dir.path().join("nope"), None, common::fast_policy()).await;
    assert!(
        matches!(&missing, Err(canary_kube::Error::Config { message }) if message.contains("nope")),
        "{missing:?}"
    );
    Ok(())
}
