//! The command's error type and its exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use canary_core::{RenderError, ValidationErrors};

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
    /// deploy.json is invalid (every problem is listed).
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    /// The template could not be rendered.
    #[error("{0}")]
    Render(#[from] RenderError),
    /// A command-line argument is invalid.
    #[error("{0}")]
    Usage(String),
    /// An AWS call failed (S3, CloudWatch, Step Functions), after the SDK's retries.
    #[error("{0}")]
    Aws(String),
    /// The operation ran and failed (a failed deployment, an unhealthy canary).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// 2 for bad input (including an input file that cannot be read), 1 for a failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Invalid(_) | Self::Render(_) | Self::Usage(_) | Self::Io { .. } => {
                ExitCode::from(2)
            }
            Self::Aws(_) | Self::Failed(_) => ExitCode::from(1),
        }
    }

    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
