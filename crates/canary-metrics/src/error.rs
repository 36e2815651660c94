//! The crate's one error type, and its mapping to the state machine's error names.
//! Every variant that comes from a failed call keeps that call's error as its
//! `source`, so a reader of the chain sees the SDK's own explanation.

use canary_core::errors;

/// The cause of a [`MetricsError`]: the SDK's error. It is `None` when the problem
/// was found by this crate (an `InternalError` result status, a missing region).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a metrics query failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The backend throttled, failed (5xx) or could not be reached, every time we tried.
    #[error("{operation} failed after {attempts} attempt(s): `{code}`: {message}")]
    Transient {
        /// The API operation (`GetMetricData`).
        operation: &'static str,
        /// The error code (`Throttling`, `InternalFailure`, `HTTP 503`, `timeout`, `connect`).
        code: String,
        /// The backend's message, or the transport error.
        message: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend refused the query (bad request, access denied, unknown metric ...).
    #[error("{operation} was refused with HTTP {status}: `{code}`: {message}")]
    Refused {
        /// The API operation.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// The error code (`AccessDenied`, `InvalidParameterValue`, ...).
        code: String,
        /// The backend's message.
        message: String,
        /// The SDK's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend answered with something we cannot read.
    #[error("{operation} answered with an unreadable response: {message}")]
    BadResponse {
        /// The API operation.
        operation: &'static str,
        /// What was wrong with it.
        message: String,
        /// The SDK's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The client could not be set up or could not build a request (no region, no
    /// credentials, a bad endpoint).
    #[error("metrics client setup failed: {what}: {message}")]
    Setup {
        /// What could not be set up (`region`, `credentials`, `endpoint`, `request`).
        what: &'static str,
        /// Why.
        message: String,
        /// The SDK's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl MetricsError {
    /// The `errorType` the Lambda returns for this error: `MetricsTransient` for
    /// throttling, 5xx, timeouts and connection failures (the state machine retries),
    /// `MetricsError` for everything else.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Transient { .. } => errors::METRICS_TRANSIENT,
            // Credentials from a metadata endpoint can fail for a moment, too.
            Self::Setup {
                what: "credentials",
                ..
            } => errors::METRICS_TRANSIENT,
            Self::Refused { .. } | Self::BadResponse { .. } | Self::Setup { .. } => {
                errors::METRICS_ERROR
            }
        }
    }

    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        self.error_type() == errors::METRICS_TRANSIENT
    }
}
