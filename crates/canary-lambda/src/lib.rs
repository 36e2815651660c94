//! Shared glue for the six Lambda functions: the services a handler uses (record store,
//! metrics, cluster connection, clock), the error every handler returns (with a fixed
//! `errorType` for the state machine), the execution document helpers, and the
//! `lambda_runtime` loop with JSON logs.
//!
//! The handlers themselves live in their own crates (render-template, deploy-canary,
//! shift-weights, health-check, rollback, cleanup): each is an `async fn(&Services,
//! Value) -> Result<Value, HandlerError>`, called by its Lambda binary and, in-process,
//! by the `canary` command's local executor.

mod connect;
mod document;
mod error;
pub mod runtime;

use std::sync::Arc;

use canary_core::clock::Clock;
use canary_metrics::MetricsSource;
use canary_store::DeploymentStore;

pub use connect::{ClusterConnector, EksConnector, FixedCluster};
pub use document::{Task, kinds_of_version, rerender};
pub use error::HandlerError;

/// Everything a handler talks to. Built once per cold start (or once per local run).
#[derive(Debug, Clone)]
pub struct Services {
    /// Deployment records, versions and the per-service lock.
    pub store: DeploymentStore,
    /// Where health numbers come from.
    pub metrics: Arc<dyn MetricsSource>,
    /// How to reach a cluster by name.
    pub clusters: Arc<dyn ClusterConnector>,
    /// Now.
    pub clock: Arc<dyn Clock>,
}

/// The result every handler returns.
pub type HandlerResult = Result<serde_json::Value, HandlerError>;
