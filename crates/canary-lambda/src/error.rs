//! The one error type of the handlers: a fixed error name ([`ErrorName`]) that the state
//! machine's Retry and Catch match on, a message for the person reading the execution's
//! history, and the error it came from (kept as its `source`).

use std::sync::Arc;

use canary_core::ErrorName;

/// The error a handler's cause came from.
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A handler's failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// The name the state machine matches on (its string is the Lambda `errorType`).
    pub error_type: ErrorName,
    /// What went wrong, quoting the values involved.
    pub message: String,
    /// The error this one came from, when there is one.
    #[source]
    pub source: Option<Cause>,
}

impl PartialEq for HandlerError {
    fn eq(&self, other: &Self) -> bool {
        self.error_type == other.error_type && self.message == other.message
    }
}

impl HandlerError {
    /// An error named `error_type` saying `message`.
    pub fn new(error_type: ErrorName, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
            source: None,
        }
    }

    /// An error named `error_type` whose message is `source`'s, kept as the source.
    pub fn caused_by(
        error_type: ErrorName,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            error_type,
            message: source.to_string(),
            source: Some(Arc::new(source)),
        }
    }

    /// deploy.json or the template is invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorName::InvalidInput, message)
    }

    /// An invariant did not hold.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorName::Internal, message)
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

/// The name of an adapter crate's error string (those crates name their errors with
/// the string constants of `canary_core::errors`); a string that is not one of ours is
/// a bug, reported as `Internal` with the string in the message.
fn named(error_type: &str, source: impl std::error::Error + Send + Sync + 'static) -> HandlerError {
    match ErrorName::from_name(error_type) {
        Some(name) => HandlerError::caused_by(name, source),
        None => {
            let mut e = HandlerError::caused_by(ErrorName::Internal, source);
            e.message = format!("unknown error name `{error_type}`: {}", e.message);
            e
        }
    }
}

impl From<canary_kube::Error> for HandlerError {
    fn from(e: canary_kube::Error) -> Self {
        named(e.error_type(), e)
    }
}

impl From<canary_store::StoreError> for HandlerError {
    fn from(e: canary_store::StoreError) -> Self {
        named(e.error_type(), e)
    }
}

impl From<canary_metrics::MetricsError> for HandlerError {
    fn from(e: canary_metrics::MetricsError) -> Self {
        named(e.error_type(), e)
    }
}

impl From<canary_core::RenderError> for HandlerError {
    fn from(e: canary_core::RenderError) -> Self {
        Self::caused_by(ErrorName::InvalidInput, e)
    }
}

impl From<canary_core::ValidationErrors> for HandlerError {
    fn from(e: canary_core::ValidationErrors) -> Self {
        Self::caused_by(ErrorName::InvalidInput, e)
    }
}

impl From<canary_core::decide::NotReady> for HandlerError {
    fn from(e: canary_core::decide::NotReady) -> Self {
        Self::caused_by(ErrorName::CanaryNotReady, e)
    }
}

impl From<canary_core::decide::NothingCanServe> for HandlerError {
    fn from(e: canary_core::decide::NothingCanServe) -> Self {
        Self::caused_by(ErrorName::Internal, e)
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        Self {
            error_type: e.error_type.as_str().to_owned(),
            error_message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adapter_error_keeps_its_name_message_and_source() {
        let e = HandlerError::from(canary_core::ValidationErrors(vec![]));
        assert_eq!(e.error_type, ErrorName::InvalidInput);
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(e.message, canary_core::ValidationErrors(vec![]).to_string());
    }

    #[test]
    fn the_lambda_diagnostic_carries_the_exact_error_name() {
        let d = lambda_runtime::Diagnostic::from(HandlerError::new(ErrorName::Aborted, "x"));
        assert_eq!(d.error_type, "Aborted");
        assert_eq!(d.error_message, "x");
    }
}
