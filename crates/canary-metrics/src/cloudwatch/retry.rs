//! How CloudWatch calls are retried: the SDK's own retries are off, and [`call`] runs
//! one SDK call up to [`RetryPolicy::max_attempts`] times, waiting with capped
//! exponential backoff between attempts. Throttling, 5xx, timeouts and connection
//! failures are retried; anything else ends the call at once. The crate keeps its own
//! loop (rather than the SDK's `RetryConfig`) so that the final
//! [`MetricsError::Transient`] says how many attempts were made and what the last one
//! answered, and so that the attempt count is exact (no retry-quota token bucket).

use canary_core::errors::error_chain;
use std::future::Future;
use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::config::http::HttpResponse;
use aws_sdk_cloudwatch::error::{ProvideErrorMetadata, SdkError};

use crate::MetricsError;

/// Error codes that mean "slow down" or "try again": retried.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServiceFault",
    "InternalServiceError",
    "InternalError",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// How calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles after each failure.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// The longest one attempt may take (connect, send, read the answer).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, 200 ms doubling up to 2 s (at most about 5 s of waiting, with jitter),
    /// 5 s per attempt: short enough for a Lambda, long enough to ride out throttling.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): exponential, capped,
    /// with "equal jitter" (half fixed, half random).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = half.mul_f64(f64::from(nanos % 1000) / 1000.0);
        half + jitter
    }
}

/// How one attempt failed.
#[derive(Debug)]
enum Failure {
    /// Worth another attempt.
    Retry {
        /// `Throttling`, `HTTP 503`, `timeout`, `connect`, ...
        code: String,
        /// The backend's message or the transport error.
        message: String,
        /// The SDK's error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// Final.
    Fatal(MetricsError),
}

/// Runs `attempt` (one SDK call) under `policy`, retrying transient failures.
pub(crate) async fn call<T, E, F, Fut>(
    policy: &RetryPolicy,
    operation: &'static str,
    attempt: F,
) -> Result<T, MetricsError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut n = 1;
    loop {
        let err = match attempt().await {
            Ok(out) => return Ok(out),
            Err(err) => err,
        };
        match classify(operation, err) {
            Failure::Fatal(e) => return Err(e),
            Failure::Retry {
                code,
                message,
                source,
            } if n >= policy.max_attempts => {
                return Err(MetricsError::Transient {
                    operation,
                    code,
                    message,
                    attempts: n,
                    source: Some(source),
                });
            }
            Failure::Retry { code, message, .. } => {
                let wait = policy.backoff(n);
                tracing::warn!(operation, attempt = n, %code, %message, wait_ms = wait.as_millis() as u64, "CloudWatch call failed; retrying");
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

/// Sorts an SDK error into "try again" and "final".
fn classify<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retry = |code: String, err: SdkError<E, HttpResponse>| Failure::Retry {
        code,
        message: error_chain(&err),
        source: Box::new(err),
    };
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx
                .err()
                .code()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status}"));
            let message = ctx
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| preview(ctx.raw().body().bytes().unwrap_or_default()));
            if status >= 500 || status == 429 || RETRYABLE_CODES.contains(&code.as_str()) {
                Failure::Retry {
                    code,
                    message,
                    source: Box::new(err),
                }
            } else {
                Failure::Fatal(MetricsError::Refused {
                    operation,
                    status,
                    code,
                    message,
                    source: Some(Box::new(err)),
                })
            }
        }
        SdkError::TimeoutError(_) => retry("timeout".into(), err),
        SdkError::DispatchFailure(d) if d.is_user() => Failure::Fatal(MetricsError::Setup {
            what: "endpoint",
            message: error_chain(&err),
            source: Some(Box::new(err)),
        }),
        SdkError::DispatchFailure(d) => {
            let code = if d.is_timeout() {
                "timeout"
            } else if d.is_io() {
                "connect"
            } else {
                "http"
            };
            retry(code.into(), err)
        }
        SdkError::ResponseError(r) if r.raw().status().as_u16() >= 500 => {
            let code = format!("HTTP {}", r.raw().status().as_u16());
            retry(code, err)
        }
        SdkError::ConstructionFailure(_) => {
            let what = if caused_by_credentials(&err) {
                "credentials"
            } else {
                "request"
            };
            Failure::Fatal(MetricsError::Setup {
                what,
                message: error_chain(&err),
                source: Some(Box::new(err)),
            })
        }
        _ => Failure::Fatal(MetricsError::BadResponse {
            operation,
            message: error_chain(&err),
            source: Some(Box::new(err)),
        }),
    }
}

/// Whether a credentials provider's failure is somewhere in `err`'s chain.
fn caused_by_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        next = e.source();
    }
    false
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 9,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            attempt_timeout: Duration::from_secs(1),
        };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 400), (30, 400)] {
            let wait = p.backoff(attempt).as_millis();
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait} ms not in [{}, {full}]",
                full / 2
            );
        }
    }

    #[test]
    fn a_credentials_failure_is_found_anywhere_in_the_chain() {
        let creds = aws_credential_types::provider::error::CredentialsError::not_loaded("no IMDS");
        let wrapped: SdkError<
            aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError,
            HttpResponse,
        > = SdkError::construction_failure(creds);
        assert!(caused_by_credentials(&wrapped));
        let other: SdkError<
            aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataError,
            HttpResponse,
        > = SdkError::construction_failure("bad endpoint");
        assert!(!caused_by_credentials(&other));
        match classify("GetMetricData", wrapped) {
            Failure::Fatal(e) => {
                assert!(e.is_transient(), "credentials may come back: {e}");
                assert!(std::error::Error::source(&e).is_some(), "keeps its cause");
            }
            Failure::Retry { code, .. } => panic!("not retried in the loop: {code}"),
        }
    }
}
