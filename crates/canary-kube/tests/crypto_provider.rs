//! kube-rs (rustls with aws-lc-rs) and the AWS SDK (default-https-client, also aws-lc)
//! live in one process: building both TLS clients and sending a request through each
//! must not panic over rustls' process-wide crypto provider. One test per file, so the
//! process starts with no provider installed.

use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use canary_kube::{Cluster, Error, RequestPolicy};

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9)
}

#[tokio::test]
async fn a_kube_client_and_an_sdk_client_share_one_process_without_a_crypto_provider_panic()
-> Result<(), Error> {
    let port = closed_port();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n\
         users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n    namespace: demo\n\
         current-context: x\n"
    );
    let policy = RequestPolicy {
        timeout: Duration::from_secs(2),
        attempts: 2,
        backoff: Duration::from_millis(10),
    };

    // The SDK first: its HTTPS client is built on the first request.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "a", "b", None, None, "test",
        )))
        .endpoint_url(format!("https://127.0.0.1:{port}"))
        .load()
        .await;
    let eks = aws_sdk_eks::Client::new(&sdk);
    let described = canary_kube::describe_cluster(&eks, "demo").await;
    assert!(
        matches!(
            &described,
            Err(Error::DescribeCluster {
                transient: true,
                ..
            })
        ),
        "{described:?}"
    );

    // Then kube: its rustls config is built with the client.
    let cluster = Cluster::from_kubeconfig_yaml(&kubeconfig, None, policy).await?;
    let got = cluster.get("v1", "Service", "demo", "x").await;
    assert!(
        matches!(&got, Err(Error::Connect { tries: 2, .. })),
        "{got:?}"
    );
    assert_eq!(cluster.stats().requests, 2);

    // And the SDK again, after kube installed its provider.
    let again = canary_kube::describe_cluster(&eks, "demo").await;
    assert!(
        matches!(
            &again,
            Err(Error::DescribeCluster {
                transient: true,
                ..
            })
        ),
        "{again:?}"
    );
    Ok(())
}
