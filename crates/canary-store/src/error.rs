//! The crate's one error type, and its mapping to the state machine's error names.
//!
//! Every variant names the S3 key (or the argument) it is about and keeps its cause as
//! the error's `source`; the message also quotes the cause, for the callers that only
//! print `to_string()` (the Lambda error payload, the CLI).

use canary_core::errors;

/// The cause of an S3 failure: the SDK's error, kept whole.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another execution holds the service's lock. Nothing was changed.
    #[error(
        "service `{service}` is locked by execution `{holder}` since {since} (Unix seconds); `canary unlock` breaks a stale lock"
    )]
    Locked {
        /// `<cluster>/<namespace>/<service>`.
        service: String,
        /// The execution that holds the lock.
        holder: String,
        /// When it took the lock, Unix seconds.
        since: i64,
    },
    /// Our lock token no longer holds the service's lock (it was broken or taken over).
    #[error("execution `{execution}` no longer holds the lock of `{service}`: {now}")]
    LockLost {
        /// `<cluster>/<namespace>/<service>`.
        service: String,
        /// The execution that thought it held the lock.
        execution: String,
        /// What the lock says now (`held by execution ...`, `broken by ...`, `absent`).
        now: String,
    },
    /// S3 throttled, failed (5xx) or could not be reached (after the SDK's retries).
    #[error("S3 {operation} of `{key}` failed transiently: `{code}`: {message}")]
    Transient {
        /// The S3 operation (`PutObject`, ...).
        operation: &'static str,
        /// The object key (or prefix).
        key: String,
        /// The error code (`SlowDown`, `InternalError`, `timeout`, `dispatch`, `HTTP 503`).
        code: String,
        /// S3's message or the transport error.
        message: String,
        /// The SDK's error.
        #[source]
        source: Option<Cause>,
    },
    /// S3 refused the request (access denied, no such bucket, ...) or answered
    /// something the store cannot use (no ETag, ...).
    #[error("S3 {operation} of `{key}` was refused: `{code}`: {message}")]
    Refused {
        /// The S3 operation.
        operation: &'static str,
        /// The object key (or prefix).
        key: String,
        /// The error code (`AccessDenied`, `NoSuchBucket`, `HTTP 400`, ...).
        code: String,
        /// S3's message.
        message: String,
        /// The SDK's error, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// A record that must exist does not.
    #[error("`{key}` is missing: {why}")]
    Missing {
        /// The object key.
        key: String,
        /// Why it was expected.
        why: String,
    },
    /// A stored JSON document is not what this version of the code wrote (a corrupt
    /// `state.json`, history record, lock or abort marker).
    #[error("`{key}` is corrupt: {source}")]
    Corrupt {
        /// The object key.
        key: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A stored manifest is not UTF-8 text.
    #[error("`{key}` is not UTF-8 text: {source}")]
    NotText {
        /// The object key.
        key: String,
        /// Where the bytes stop being UTF-8.
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// Stored objects break one of the store's rules (a key under `history/` that is
    /// not `<version>.json`, a version counter that cannot grow, ...).
    #[error("`{key}` is inconsistent: {problem}")]
    Inconsistent {
        /// The object key (or prefix).
        key: String,
        /// Which rule it breaks, quoting the value.
        problem: String,
    },
    /// A document could not be serialized, so nothing was written.
    #[error("the document for `{key}` cannot be serialized: {source}")]
    Serialize {
        /// The object key it was meant for.
        key: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A conditional write kept losing to concurrent writers.
    #[error("`{key}` kept changing under us after {attempts} attempts")]
    Contended {
        /// The object key.
        key: String,
        /// How many read-modify-write rounds were tried.
        attempts: u32,
    },
    /// A caller passed something the store cannot use.
    #[error("invalid {what} `{value}`: {why}")]
    Invalid {
        /// Which argument (`execution`, `service`, `version` ...).
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        why: String,
    },
}

impl StoreError {
    /// The `errorType` the Lambda returns for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Locked { .. } => errors::SERVICE_LOCKED,
            Self::LockLost { .. } => errors::LOCK_LOST,
            Self::Transient { .. } | Self::Contended { .. } => errors::STORE_TRANSIENT,
            Self::Refused { .. }
            | Self::Missing { .. }
            | Self::Corrupt { .. }
            | Self::NotText { .. }
            | Self::Inconsistent { .. }
            | Self::Serialize { .. }
            | Self::Invalid { .. } => errors::STORE_ERROR,
        }
    }
}
