//! The fixed `errorType` names that Lambda functions return and that the state
//! machine's Retry and Catch clauses match on. The runtime's default names (Rust type
//! names) are not stable, so every error a handler returns carries one of these.

/// deploy.json or the template is invalid. Raised before the lock is taken.
pub const INVALID_INPUT: &str = "InvalidInput";
/// Another execution holds the per-service lock: touch nothing.
pub const SERVICE_LOCKED: &str = "ServiceLocked";
/// Our lock token is no longer the holder (someone broke the lock): touch nothing.
pub const LOCK_LOST: &str = "LockLost";
/// The Kubernetes API server answered 5xx or 429, timed out or could not be reached.
pub const KUBE_TRANSIENT: &str = "KubeTransient";
/// The Kubernetes API server refused a request (4xx other than 409 and 429).
pub const KUBE_ERROR: &str = "KubeError";
/// The route object kept changing under us (409 after re-reading).
pub const ROUTE_CONFLICT: &str = "RouteConflict";
/// The new Deployment did not become ready before its deadline.
pub const CANARY_NOT_READY: &str = "CanaryNotReady";
/// Someone asked the running deployment to stop (`canary abort`): roll back.
pub const ABORTED: &str = "Aborted";
/// CloudWatch throttled or failed.
pub const METRICS_TRANSIENT: &str = "MetricsTransient";
/// CloudWatch refused the query.
pub const METRICS_ERROR: &str = "MetricsError";
/// S3 throttled or failed.
pub const STORE_TRANSIENT: &str = "StoreTransient";
/// S3 refused, or a record is missing or corrupt.
pub const STORE_ERROR: &str = "StoreError";
/// A bug: an invariant did not hold.
pub const INTERNAL: &str = "Internal";

/// Every error name our functions can return.
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
pub fn lambda_cause(error_type: &str, message: &str) -> String {
    serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string()
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
}
