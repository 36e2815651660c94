//! The fixed `errorType` names that Lambda functions return and that the state
//! machine's Retry and Catch clauses match on. The runtime's default names (Rust type
//! names) are not stable, so every error a handler returns carries one of these, as an
//! [`ErrorName`]; the string constants are the same names for the adapter crates.

/// Every error name our functions can return, as a type: a handler's error carries one
/// of these, so a misspelt name does not compile. [`ErrorName::as_str`] (and `Display`)
/// give the exact string the state machine's Retry and Catch clauses match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorName {
    /// deploy.json or the template is invalid. Raised before the lock is taken.
    InvalidInput,
    /// Another execution holds the per-service lock: touch nothing.
    ServiceLocked,
    /// Our lock token is no longer the holder (someone broke the lock): touch nothing.
    LockLost,
    /// The Kubernetes API server answered 5xx or 429, timed out or could not be reached.
    KubeTransient,
    /// The Kubernetes API server refused a request (4xx other than 409 and 429).
    KubeError,
    /// The route object kept changing under us (409 after re-reading).
    RouteConflict,
    /// The new Deployment did not become ready before its deadline.
    CanaryNotReady,
    /// Someone asked the running deployment to stop (`canary abort`): roll back.
    Aborted,
    /// CloudWatch throttled or failed.
    MetricsTransient,
    /// CloudWatch refused the query.
    MetricsError,
    /// S3 throttled or failed.
    StoreTransient,
    /// S3 refused, or a record is missing or corrupt.
    StoreError,
    /// A bug: an invariant did not hold.
    Internal,
    /// render-template found the service left behind by an execution that ended
    /// without finishing (stopped, timed out, failed, or unlocked): it touched nothing,
    /// and the state machine restores the service first (`RecoverService`), then
    /// renders again.
    RecoveryNeeded,
    /// The route controller refused the route as written, or did not accept its
    /// generation within `route_confirm_timeout`: the weights are written but not
    /// applied. A shift's ends in rollback; a rollback's own, after its retries, in
    /// `RollbackFailed` (traffic may be split).
    RouteNotConfirmed,
    /// The deployment's namespace does not exist in the cluster (or its role may not
    /// read it): raised by deploy-canary before its first write, so nothing of the
    /// deployment is in the cluster; the rollback ends it without touching the cluster.
    NamespaceMissing,
}

impl ErrorName {
    /// Every name, in the order of the state machine's documentation.
    pub const ALL: [ErrorName; 16] = [
        Self::InvalidInput,
        Self::ServiceLocked,
        Self::LockLost,
        Self::KubeTransient,
        Self::KubeError,
        Self::RouteConflict,
        Self::CanaryNotReady,
        Self::Aborted,
        Self::MetricsTransient,
        Self::MetricsError,
        Self::StoreTransient,
        Self::StoreError,
        Self::Internal,
        Self::RecoveryNeeded,
        Self::RouteNotConfirmed,
        Self::NamespaceMissing,
    ];

    /// The exact `errorType` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "InvalidInput",
            Self::ServiceLocked => "ServiceLocked",
            Self::LockLost => "LockLost",
            Self::KubeTransient => "KubeTransient",
            Self::KubeError => "KubeError",
            Self::RouteConflict => "RouteConflict",
            Self::CanaryNotReady => "CanaryNotReady",
            Self::Aborted => "Aborted",
            Self::MetricsTransient => "MetricsTransient",
            Self::MetricsError => "MetricsError",
            Self::StoreTransient => "StoreTransient",
            Self::StoreError => "StoreError",
            Self::Internal => "Internal",
            Self::RecoveryNeeded => "RecoveryNeeded",
            Self::RouteNotConfirmed => "RouteNotConfirmed",
            Self::NamespaceMissing => "NamespaceMissing",
        }
    }

    /// The name whose string is `name`, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == name)
    }

    /// Worth retrying with backoff before giving up.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Self::KubeTransient
                | Self::RouteConflict
                | Self::MetricsTransient
                | Self::StoreTransient
        )
    }

    /// After this error the state machine must not touch the service at all.
    pub const fn is_hands_off(self) -> bool {
        matches!(self, Self::ServiceLocked | Self::LockLost)
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for ErrorName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<ErrorName> for String {
    fn from(name: ErrorName) -> Self {
        name.as_str().to_owned()
    }
}

impl PartialEq<&str> for ErrorName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for ErrorName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorName {
    type Err = UnknownErrorName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| UnknownErrorName(s.to_owned()))
    }
}

/// A string that is not one of our error names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an error name of eks-canary")]
pub struct UnknownErrorName(pub String);

// The names as strings, for the crates that compare `error_type()` strings.

/// deploy.json or the template is invalid. Raised before the lock is taken.
pub const INVALID_INPUT: &str = ErrorName::InvalidInput.as_str();
/// Another execution holds the per-service lock: touch nothing.
pub const SERVICE_LOCKED: &str = ErrorName::ServiceLocked.as_str();
/// Our lock token is no longer the holder (someone broke the lock): touch nothing.
pub const LOCK_LOST: &str = ErrorName::LockLost.as_str();
/// The Kubernetes API server answered 5xx or 429, timed out or could not be reached.
pub const KUBE_TRANSIENT: &str = ErrorName::KubeTransient.as_str();
/// The Kubernetes API server refused a request (4xx other than 409 and 429).
pub const KUBE_ERROR: &str = ErrorName::KubeError.as_str();
/// The route object kept changing under us (409 after re-reading).
pub const ROUTE_CONFLICT: &str = ErrorName::RouteConflict.as_str();
/// The new Deployment did not become ready before its deadline.
pub const CANARY_NOT_READY: &str = ErrorName::CanaryNotReady.as_str();
/// Someone asked the running deployment to stop (`canary abort`): roll back.
pub const ABORTED: &str = ErrorName::Aborted.as_str();
/// CloudWatch throttled or failed.
pub const METRICS_TRANSIENT: &str = ErrorName::MetricsTransient.as_str();
/// CloudWatch refused the query.
pub const METRICS_ERROR: &str = ErrorName::MetricsError.as_str();
/// S3 throttled or failed.
pub const STORE_TRANSIENT: &str = ErrorName::StoreTransient.as_str();
/// S3 refused, or a record is missing or corrupt.
pub const STORE_ERROR: &str = ErrorName::StoreError.as_str();
/// A bug: an invariant did not hold.
pub const INTERNAL: &str = ErrorName::Internal.as_str();
/// render-template found a service left behind by an execution that ended: recover it
/// first.
pub const RECOVERY_NEEDED: &str = ErrorName::RecoveryNeeded.as_str();
/// The route controller refused the route or did not accept it in time.
pub const ROUTE_NOT_CONFIRMED: &str = ErrorName::RouteNotConfirmed.as_str();
/// The deployment's namespace does not exist (or may not be read).
pub const NAMESPACE_MISSING: &str = ErrorName::NamespaceMissing.as_str();

/// Every error name our functions can return (the strings of [`ErrorName::ALL`]).
pub const ALL: &[&str] = &[
    INVALID_INPUT,
    SERVICE_LOCKED,
    LOCK_LOST,
    KUBE_TRANSIENT,
    KUBE_ERROR,
    ROUTE_CONFLICT,
    CANARY_NOT_READY,
    ABORTED,
    METRICS_TRANSIENT,
    METRICS_ERROR,
    STORE_TRANSIENT,
    STORE_ERROR,
    INTERNAL,
    RECOVERY_NEEDED,
    ROUTE_NOT_CONFIRMED,
    NAMESPACE_MISSING,
];

/// Errors that are worth retrying with backoff before giving up.
pub const TRANSIENT: &[&str] = &[
    KUBE_TRANSIENT,
    ROUTE_CONFLICT,
    METRICS_TRANSIENT,
    STORE_TRANSIENT,
];

/// Errors after which the state machine must not touch the service at all.
pub const HANDS_OFF: &[&str] = &[SERVICE_LOCKED, LOCK_LOST];

/// "aborted by <who>: <why>": how an abort request reads wherever it is shown (the
/// verdict of a health check, the `Aborted` error of the other tasks, the rollback's
/// reason).
pub fn aborted_by(by: &str, reason: &str) -> String {
    format!("aborted by {by}: {reason}")
}

/// The message of an error's `Cause` as a person should read it. When a Lambda function
/// fails, Step Functions puts the function's whole error payload in `Cause`, as JSON
/// text (`{"errorType": "...", "errorMessage": "..."}`); this returns the message. Any
/// other cause is returned as it is.
pub fn readable_cause(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| cause.to_owned())
}

/// The `Cause` Step Functions records for a Lambda function error: the error payload as
/// JSON text.
pub fn lambda_cause(error_type: impl AsRef<str>, message: &str) -> String {
    serde_json::json!({ "errorType": error_type.as_ref(), "errorMessage": message }).to_string()
}

/// An error and its sources, joined by `: ` (top-level messages of SDK errors are terse;
/// the cause is in the chain).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_error_payload_in_the_cause_is_reduced_to_its_message() {
        let payload = lambda_cause("CanaryNotReady", "web-2 cannot become ready");
        assert_eq!(readable_cause(&payload), "web-2 cannot become ready");
        assert_eq!(readable_cause("plain words"), "plain words");
        assert_eq!(readable_cause(r#"{"other": 1}"#), r#"{"other": 1}"#);
    }

    #[test]
    fn every_error_name_reads_back_as_itself_and_the_string_lists_agree() {
        for name in ErrorName::ALL {
            assert_eq!(ErrorName::from_name(name.as_str()), Some(name));
            assert_eq!(name.to_string(), name.as_str());
        }
        let strings: Vec<&str> = ErrorName::ALL.iter().map(|n| n.as_str()).collect();
        assert_eq!(strings, ALL);
        let transient: Vec<&str> = ErrorName::ALL
            .iter()
            .filter(|n| n.is_transient())
            .map(|n| n.as_str())
            .collect();
        assert_eq!(transient, TRANSIENT);
        let hands_off: Vec<&str> = ErrorName::ALL
            .iter()
            .filter(|n| n.is_hands_off())
            .map(|n| n.as_str())
            .collect();
        assert_eq!(hands_off, HANDS_OFF);
        assert!("Abortd".parse::<ErrorName>().is_err());
    }

    #[test]
    fn an_abort_reads_aborted_by_who_and_why() {
        assert_eq!(
            aborted_by("ana", "bad latency"),
            "aborted by ana: bad latency"
        );
    }
}
