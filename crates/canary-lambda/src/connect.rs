//! How a handler reaches a cluster: by EKS cluster name (DescribeCluster and an STS
//! token, the Lambda's way) or through one fixed client (a kubeconfig, the simulated
//! cluster). Connections are cached per cluster and namespace for the life of the
//! process, so a warm Lambda does not describe the cluster again.

use std::collections::HashMap;
use std::fmt::Debug;

use async_trait::async_trait;
use canary_kube::{Cluster, RequestPolicy};
use tokio::sync::Mutex;

use crate::HandlerError;

/// Gives a [`Cluster`] handle for a cluster name and namespace.
#[async_trait]
pub trait ClusterConnector: Send + Sync + Debug {
    /// The cluster `cluster_name`, with `namespace` as its default namespace.
    async fn connect(&self, cluster_name: &str, namespace: &str) -> Result<Cluster, HandlerError>;
}

/// EKS clusters reached with the process's AWS credentials.
#[derive(Debug)]
pub struct EksConnector {
    sdk: aws_config::SdkConfig,
    policy: RequestPolicy,
    cache: Mutex<HashMap<(String, String), Cluster>>,
}

impl EksConnector {
    /// A connector using `sdk`'s region and credentials.
    pub fn new(sdk: aws_config::SdkConfig, policy: RequestPolicy) -> Self {
        Self {
            sdk,
            policy,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl ClusterConnector for EksConnector {
    async fn connect(&self, cluster_name: &str, namespace: &str) -> Result<Cluster, HandlerError> {
        let key = (cluster_name.to_owned(), namespace.to_owned());
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let cluster = Cluster::connect_eks(&self.sdk, cluster_name, namespace, self.policy).await?;
        cache.insert(key, cluster.clone());
        Ok(cluster)
    }
}

/// One cluster for every name: a kubeconfig's, or the simulated cluster's.
#[derive(Debug, Clone)]
pub struct FixedCluster(pub Cluster);

#[async_trait]
impl ClusterConnector for FixedCluster {
    async fn connect(
        &self,
        _cluster_name: &str,
        _namespace: &str,
    ) -> Result<Cluster, HandlerError> {
        Ok(self.0.clone())
    }
}
