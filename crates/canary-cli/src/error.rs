//! The crate's one error type and the exit code each error gives the `canary` command.
//! Every variant that comes from a failed call keeps that call's error as its `source`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use canary_core::{RenderError, ValidationErrors};
use canary_store::StoreError;

use crate::harness::HarnessError;

/// The cause of a failed AWS SDK call, as the SDK gives it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a `canary` command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file a long-running command writes for others (cluster-sim's kubeconfig) could
    /// not be written: the command failed after it started, unlike a bad input file.
    #[error("{path}: {source}")]
    Written {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that must hold JSON does not.
    #[error("{path}: not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Something to print as JSON could not be written as JSON.
    #[error("cannot write {what} as JSON: {source}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// deploy.json is invalid (every problem is listed).
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    /// The template could not be rendered.
    #[error("{0}")]
    Render(#[from] RenderError),
    /// A command-line argument is invalid.
    #[error("{0}")]
    Usage(String),
    /// The record store (S3, or memory) failed or refused, after the SDK's retries.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The metrics source (CloudWatch) failed, after the SDK's retries.
    #[error("{0}")]
    Metrics(#[from] canary_metrics::MetricsError),
    /// The cluster could not be reached or used.
    #[error("{0}")]
    Kube(#[from] canary_kube::Error),
    /// The handlers' way to the cluster (EKS) could not connect.
    #[error("{0}")]
    Connect(#[from] canary_lambda::HandlerError),
    /// Reading the service's route from the cluster failed.
    #[error("reading the route from the cluster: {0}")]
    RouteRead(#[source] canary_kube::Error),
    /// The shipped state machine definition did not load.
    #[error("{0}")]
    Definition(#[from] canary_sfn::DefinitionError),
    /// The simulated environment (cluster, executor) could not start.
    #[error("{0}")]
    Harness(#[from] HarnessError),
    /// A Step Functions call failed, after the SDK's retries.
    #[error("{operation} failed: {detail}")]
    StepFunctions {
        /// The API operation (`StartExecution`, `DescribeExecution`, ...).
        operation: &'static str,
        /// The SDK's explanation, with its whole chain of causes.
        detail: String,
        #[source]
        source: BoxError,
    },
    /// A server could not listen on its address.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Waiting for Ctrl-C or SIGTERM failed.
    #[error("cannot wait for a signal: {0}")]
    Signal(#[source] std::io::Error),
    /// The operation ran and failed (a failed deployment, an unhealthy canary).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// 2 for bad input (including an input file that cannot be read, and a store that
    /// refuses the arguments), 1 for a failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Invalid(_)
            | Self::Render(_)
            | Self::Usage(_)
            | Self::Io { .. }
            | Self::Json { .. }
            | Self::Store(StoreError::Invalid { .. }) => ExitCode::from(2),
            Self::Store(_)
            | Self::Metrics(_)
            | Self::Kube(_)
            | Self::Connect(_)
            | Self::RouteRead(_)
            | Self::Definition(_)
            | Self::Harness(_)
            | Self::StepFunctions { .. }
            | Self::Listen { .. }
            | Self::Signal(_)
            | Self::Serialize { .. }
            | Self::Written { .. }
            | Self::Failed(_) => ExitCode::from(1),
        }
    }

    /// The error of reading or writing `path`, for `map_err`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
