//! DescribeCluster against a real peer nobody here wrote: moto_server on loopback.
//! The cluster is created through the EKS API (aws-sdk-eks `CreateCluster`), then
//! described through our code. moto's CA is random bytes, not PEM, so building a kube
//! client from it must fail with a clear configuration error, not a panic.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use canary_kube::{Cluster, Error, RequestPolicy};

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a test fails when [`start_moto`] gave nothing: how to install moto.
fn moto_did_not_start() -> Box<dyn std::error::Error> {
    format!(
        "moto_server is not installed or did not start within 30 s: {}, or run scripts/test, \
         which installs it",
        canary_testkit::install::MOTO
    )
    .into()
}

/// Starts moto_server on a free loopback port; `None` when it is not installed.
fn start_moto() -> Option<Moto> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let moto = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(moto);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[tokio::test]
async fn describe_cluster_returns_the_endpoint_and_ca_that_eks_create_cluster_recorded()
-> Result<(), Box<dyn std::error::Error>> {
    let Some(moto) = start_moto() else {
        return Err(moto_did_not_start());
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        )))
        .endpoint_url(&moto.url)
        .load()
        .await;
    let eks = aws_sdk_eks::Client::new(&sdk);
    eks.create_cluster()
        .name("canary-demo")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-12345")
                .build(),
        )
        .send()
        .await?;

    let endpoint = canary_kube::describe_cluster(&eks, "canary-demo").await?;
    assert_eq!(endpoint.name, "canary-demo");
    assert!(
        endpoint.endpoint.starts_with("https://")
            && endpoint.endpoint.contains("eu-west-1.eks.amazonaws.com")
    );
    assert!(!endpoint.ca_data.is_empty());
    println!(
        "moto: {} CA {} bytes (base64)",
        endpoint.endpoint,
        endpoint.ca_data.len()
    );

    let missing = canary_kube::describe_cluster(&eks, "no-such-cluster").await;
    assert!(
        matches!(&missing, Err(e @ Error::DescribeCluster { transient: false, message, .. })
            if message.contains("ResourceNotFound") && e.error_type() == "KubeError"),
        "{missing:?}"
    );

    // The whole connection: DescribeCluster, then a token-authenticated client on first use.
    let policy = RequestPolicy {
        timeout: Duration::from_secs(2),
        attempts: 1,
        backoff: Duration::from_millis(10),
    };
    let cluster = Cluster::connect_eks(&sdk, "canary-demo", "yelb", policy).await?;
    assert_eq!(cluster.namespace(), "yelb");
    let got = cluster.get("v1", "Service", "yelb", "x").await;
    assert!(
        matches!(&got, Err(Error::Config { .. })),
        "moto's CA is not PEM: {got:?}"
    );
    assert_eq!(
        cluster.stats().requests,
        0,
        "no request can be sent without a client"
    );
    Ok(())
}

/// Set in the child process that runs with the AWS environment variables.
const CHILD: &str = "CANARY_KUBE_MOTO_CHILD";

#[tokio::test]
async fn connecting_from_the_environment_honours_aws_endpoint_url_and_region()
-> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os(CHILD).is_some() {
        // The child: everything comes from the environment the parent set.
        let policy = RequestPolicy {
            timeout: Duration::from_secs(2),
            attempts: 1,
            backoff: Duration::from_millis(10),
        };
        let cluster = Cluster::connect_eks_from_env("env-demo", "yelb", policy).await?;
        assert_eq!(cluster.namespace(), "yelb");
        let missing = Cluster::connect_eks_from_env("not-there", "yelb", policy).await;
        assert!(
            matches!(&missing, Err(Error::DescribeCluster { .. })),
            "{missing:?}"
        );
        return Ok(());
    }
    let Some(moto) = start_moto() else {
        return Err(moto_did_not_start());
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-west-2"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            None,
            None,
            "test",
        )))
        .endpoint_url(&moto.url)
        .load()
        .await;
    aws_sdk_eks::Client::new(&sdk)
        .create_cluster()
        .name("env-demo")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await?;
    // Run this same test in a child process with only the environment to go by.
    let mut child = Command::new(std::env::current_exe()?);
    child
        .args([
            "--exact",
            "connecting_from_the_environment_honours_aws_endpoint_url_and_region",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env("AWS_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let out = child.output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
