//! The crate's one error type, and its mapping to the state machine's error names.

use canary_core::errors;

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
    },
    /// S3 refused the request (access denied, no such bucket, ...).
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
    },
    /// A record that must exist does not.
    #[error("`{key}` is missing: {why}")]
    Missing {
        /// The object key.
        key: String,
        /// Why it was expected.
        why: String,
    },
    /// A stored object is not what this version of the code wrote.
    #[error("`{key}` is corrupt: {message}")]
    Corrupt {
        /// The object key.
        key: String,
        /// What is wrong with it.
        message: String,
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
        /// Which argument (`execution`, `bucket`, `version` ...).
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
            | Self::Invalid { .. } => errors::STORE_ERROR,
        }
    }
}
