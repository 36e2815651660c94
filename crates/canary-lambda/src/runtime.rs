//! The Lambda side: JSON logs, services built once per cold start from the
//! environment, and the `lambda_runtime` loop around one handler.
//!
//! Environment:
//! - `CANARY_STATE_BUCKET` (required): the shared stack's bucket for records and locks.
//! - `CANARY_STATE_PREFIX` (optional): a key prefix inside it (default `state`).
//! - `RUST_LOG` (optional): log filter (default `info`).
//! - `CANARY_KUBECONFIG` (optional): reach the cluster through this kubeconfig instead
//!   of EKS (for running the functions locally against any cluster, e.g. the simulated
//!   one under a local Lambda Runtime API).
//! - `CANARY_EVENT_BUS` (optional): the EventBridge bus that receives the notification of
//!   each decision (default `default`).
//! - `CANARY_TOPIC_ARN` (optional): an SNS topic that also receives it, as an AWS Chatbot
//!   custom notification (unset: no SNS message).
//! - the standard AWS variables (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...).

use std::future::Future;
use std::sync::Arc;

use canary_core::clock::SystemClock;
use std::path::Path;

use canary_kube::{Cluster, RequestPolicy};
use canary_metrics::DeployJsonMetrics;
use canary_store::DeploymentStore;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use crate::{ClusterConnector, EksConnector, FixedCluster, HandlerError, Holders, Services};

/// The default key prefix of the records in the state bucket.
pub const DEFAULT_STATE_PREFIX: &str = "state";

/// Structured JSON logs on stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

/// Services from the environment, as a Lambda function has them.
pub async fn services_from_env() -> Result<Services, HandlerError> {
    let bucket = std::env::var("CANARY_STATE_BUCKET").map_err(|_| {
        HandlerError::internal("the CANARY_STATE_BUCKET environment variable is not set")
    })?;
    let prefix =
        std::env::var("CANARY_STATE_PREFIX").unwrap_or_else(|_| DEFAULT_STATE_PREFIX.to_owned());
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let metrics = DeployJsonMetrics::new(&sdk)?;
    let clusters: Arc<dyn ClusterConnector> = match std::env::var_os("CANARY_KUBECONFIG") {
        Some(path) => {
            let cluster =
                Cluster::from_kubeconfig_file(Path::new(&path), None, RequestPolicy::default())
                    .await?;
            Arc::new(FixedCluster(cluster))
        }
        None => Arc::new(EksConnector::new(sdk.clone(), RequestPolicy::default())),
    };
    Ok(Services {
        store: DeploymentStore::s3(&sdk, bucket).with_prefix(&prefix),
        metrics: Arc::new(metrics),
        clusters,
        clock: Arc::new(SystemClock),
        holders: Holders::step_functions(&sdk),
        notifier: Arc::new(crate::notify::AwsNotifier::from_env(&sdk)),
    })
}

/// Runs `handler` as a Lambda function until the runtime stops it.
pub async fn serve<F, Fut>(name: &'static str, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Services, Value) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send,
{
    init_tracing();
    crate::emf::enable();
    let services = services_from_env().await?;
    tracing::info!(function = name, "cold start");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let services = services.clone();
        let handler = handler.clone();
        async move {
            let result = handler(services, event.payload).await;
            if let Err(e) = &result {
                tracing::error!(function = name, error_type = e.error_type.as_str(), message = %e.message, "failed");
            }
            result
        }
    }))
    .await
}
