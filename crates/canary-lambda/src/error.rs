//! The one error type of the handlers: a fixed `errorType` (one of
//! `canary_core::errors`) that the state machine's Retry and Catch match on, and a
//! message for the person reading the execution's history.

use canary_core::errors;

/// A handler's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// One of the names in `canary_core::errors`.
    pub error_type: &'static str,
    /// What went wrong, quoting the values involved.
    pub message: String,
}

impl HandlerError {
    /// An error of `error_type` saying `message`.
    pub fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }

    /// deploy.json or the template is invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(errors::INVALID_INPUT, message)
    }

    /// An invariant did not hold.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(errors::INTERNAL, message)
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<canary_kube::Error> for HandlerError {
    fn from(e: canary_kube::Error) -> Self {
        Self::new(e.error_type(), e.to_string())
    }
}

impl From<canary_store::StoreError> for HandlerError {
    fn from(e: canary_store::StoreError) -> Self {
        Self::new(e.error_type(), e.to_string())
    }
}

impl From<canary_metrics::MetricsError> for HandlerError {
    fn from(e: canary_metrics::MetricsError) -> Self {
        Self::new(e.error_type(), e.to_string())
    }
}

impl From<canary_core::RenderError> for HandlerError {
    fn from(e: canary_core::RenderError) -> Self {
        Self::invalid(e.to_string())
    }
}

impl From<canary_core::ValidationErrors> for HandlerError {
    fn from(e: canary_core::ValidationErrors) -> Self {
        Self::invalid(e.to_string())
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        Self {
            error_type: e.error_type.to_owned(),
            error_message: e.message,
        }
    }
}
