//! Lambda glue for the six functions: the services a handler uses (record store,
//! metrics, cluster connection, clock; built once per cold start), the typed events
//! (`event.rs`: the execution document as a [`Task`], render-template's
//! [`RenderInput`]), the error every handler returns with its [`ErrorName`]
//! (`error.rs`), the I/O sequences the handlers share (`actions.rs`: keep one version,
//! remove a first deployment, finish a deployment), how a cluster is reached
//! (`connect.rs`), whether a lock's holder still runs and how this process holds a lock
//! (`holders.rs`), the recovery of a deployment that ended without finishing
//! (`recover.rs`), the notification of each decision (`notify.rs`), the weight shift every task that moves traffic makes and the wait
//! inside an invocation (`shift.rs`) and the `lambda_runtime` loop with JSON logs (`runtime.rs`).
//!
//! The handlers themselves live in their own crates (render-template, deploy-canary,
//! shift-weights, health-check, rollback, cleanup): each has a typed
//! `run(&Services, Task) -> Result<Task, HandlerError>` and the JSON
//! `handle(&Services, Value) -> HandlerResult` around it, called by its Lambda binary
//! and, in-process, by the `canary` command's local executor.
//!
//! [`ErrorName`]: canary_core::ErrorName

mod actions;
mod connect;
pub mod emf;
mod error;
mod event;
pub mod holders;
pub mod notify;
pub mod recover;
pub mod runtime;
mod shift;

use std::sync::Arc;

use canary_core::clock::Clock;
use canary_metrics::MetricsSource;
use canary_store::DeploymentStore;

pub use actions::{kinds_of_version, rerender};
pub use connect::{ClusterConnector, EksConnector, FixedCluster};
pub use error::{Cause, HandlerError};
pub use event::{RenderInput, Task, handle_render, handle_task};
pub use holders::{ExecutionLookup, Holders, NoLookup, StepFunctionsLookup};
pub use notify::{AwsNotifier, NoNotifier, Notifier, RecordedNotifier, notify};
pub use recover::{RecoverRequest, Recovery, recover};
pub use shift::pause;

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
    /// How this process's executions hold a lock (a lease or none), and how to tell
    /// whether another holder still runs.
    pub holders: Holders,
    /// Where the notification of each decision goes (`notify.rs`).
    pub notifier: Arc<dyn Notifier>,
}

/// The result every handler's JSON entry point returns.
pub type HandlerResult = Result<serde_json::Value, HandlerError>;
