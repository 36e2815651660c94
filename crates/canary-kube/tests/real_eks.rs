//! Against a real EKS cluster (never run by default): DescribeCluster, a signed token,
//! and one read through the kube client. Set `CANARY_EKS_CLUSTER` (and the usual AWS
//! environment: region, credentials) and run with `--ignored`.

use canary_kube::{Cluster, RequestPolicy};

#[tokio::test]
#[ignore = "needs a real EKS cluster (CANARY_EKS_CLUSTER) and AWS credentials"]
async fn a_real_eks_cluster_answers_with_the_signed_token() -> Result<(), Box<dyn std::error::Error>>
{
    let name = std::env::var("CANARY_EKS_CLUSTER")?;
    let namespace = std::env::var("CANARY_EKS_NAMESPACE").unwrap_or_else(|_| "default".into());
    let cluster =
        Cluster::connect_eks_from_env(&name, &namespace, RequestPolicy::default()).await?;
    let svc = cluster
        .get("v1", "Service", "default", "kubernetes")
        .await?;
    assert!(
        svc.is_some(),
        "the `kubernetes` Service exists in every cluster"
    );
    println!("{name}: {} request(s)", cluster.stats().requests);
    Ok(())
}
