//! A small CloudWatch client that speaks the AWS JSON 1.0 protocol
//! (`Content-Type: application/x-amz-json-1.0`, `X-Amz-Target:
//! GraniteServiceVersion20100801.<Operation>`), signs with SigV4 from the SDK
//! configuration's credentials, and retries throttling, 5xx, timeouts and connection
//! failures with capped exponential backoff.
//!
//! Why not `aws-sdk-cloudwatch`: its current releases only speak Smithy RPCv2 CBOR,
//! which moto 5.2 (the emulator every test here runs against) does not parse (it
//! answers 404). CloudWatch itself accepts JSON 1.0 as well as CBOR and the query
//! protocol, and moto answers JSON 1.0, so the code that runs in production is the
//! code the tests exercise. Only the two operations this project needs are here.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::MetricsError;

/// The SigV4 signing name of CloudWatch.
const SIGNING_NAME: &str = "monitoring";
/// The JSON 1.0 target prefix of CloudWatch's operations.
const TARGET_PREFIX: &str = "GraniteServiceVersion20100801";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// Credentials are refreshed this long before they expire.
const CREDENTIALS_MARGIN: Duration = Duration::from_secs(300);

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

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A signed JSON 1.0 CloudWatch client.
#[derive(Clone)]
pub struct CloudWatchApi {
    endpoint: http::Uri,
    region: String,
    credentials: SharedCredentialsProvider,
    cached: Arc<Mutex<Option<Credentials>>>,
    http: HttpClient,
    retry: RetryPolicy,
}

impl std::fmt::Debug for CloudWatchApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWatchApi")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// How one attempt failed.
enum Failure {
    /// Worth another attempt: `(code, message)`.
    Retry(String, String),
    /// Final.
    Fatal(MetricsError),
}

impl CloudWatchApi {
    /// A client for the SDK configuration's region, credentials and endpoint. The
    /// endpoint is, in order: `$AWS_ENDPOINT_URL_CLOUDWATCH`, the configuration's
    /// endpoint URL (`$AWS_ENDPOINT_URL` or `endpoint_url` in the profile), or
    /// `https://monitoring.<region>.amazonaws.com` (`.com.cn` in China regions).
    pub fn new(sdk: &SdkConfig) -> Result<Self, MetricsError> {
        let region =
            sdk.region()
                .map(|r| r.as_ref().to_owned())
                .ok_or_else(|| MetricsError::Setup {
                    what: "region",
                    message: "no AWS region is configured (set AWS_REGION)".into(),
                })?;
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| MetricsError::Setup {
                what: "credentials",
                message: "the SDK configuration has no credentials provider".into(),
            })?;
        let endpoint = std::env::var("AWS_ENDPOINT_URL_CLOUDWATCH")
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| {
                let suffix = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                format!("https://{SIGNING_NAME}.{region}.{suffix}")
            });
        let endpoint: http::Uri = endpoint.parse().map_err(|e| MetricsError::Setup {
            what: "endpoint",
            message: format!("`{endpoint}` is not a URL: {e}"),
        })?;
        if endpoint.authority().is_none() {
            return Err(MetricsError::Setup {
                what: "endpoint",
                message: format!("`{endpoint}` has no host"),
            });
        }
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| MetricsError::Setup {
                what: "tls",
                message: e.to_string(),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self {
            endpoint,
            region,
            credentials,
            cached: Arc::new(Mutex::new(None)),
            http,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            max_attempts: retry.max_attempts.max(1),
            ..retry
        };
        self
    }

    /// The endpoint calls go to.
    pub fn endpoint(&self) -> &http::Uri {
        &self.endpoint
    }

    /// Calls `operation` with `input`, retrying transient failures.
    pub async fn call<I: Serialize + Sync, O: DeserializeOwned>(
        &self,
        operation: &'static str,
        input: &I,
    ) -> Result<O, MetricsError> {
        let body = serde_json::to_vec(input).map_err(|e| MetricsError::BadResponse {
            operation,
            message: format!("cannot encode the request: {e}"),
        })?;
        let body = Bytes::from(body);
        let mut attempt = 1;
        loop {
            let failure = match tokio::time::timeout(
                self.retry.attempt_timeout,
                self.attempt(operation, body.clone()),
            )
            .await
            {
                Ok(Ok(answer)) => {
                    return serde_json::from_slice(&answer).map_err(|e| {
                        MetricsError::BadResponse {
                            operation,
                            message: format!("{e} in `{}`", preview(&answer)),
                        }
                    });
                }
                Ok(Err(failure)) => failure,
                Err(_) => Failure::Retry(
                    "timeout".into(),
                    format!(
                        "no answer within {} ms",
                        self.retry.attempt_timeout.as_millis()
                    ),
                ),
            };
            match failure {
                Failure::Fatal(e) => return Err(e),
                Failure::Retry(code, message) if attempt >= self.retry.max_attempts => {
                    return Err(MetricsError::Transient {
                        operation,
                        code,
                        message,
                        attempts: attempt,
                    });
                }
                Failure::Retry(code, message) => {
                    let wait = self.retry.backoff(attempt);
                    tracing::warn!(operation, attempt, %code, %message, wait_ms = wait.as_millis() as u64, "CloudWatch call failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, operation: &'static str, body: Bytes) -> Result<Bytes, Failure> {
        let request = self.signed_request(operation, body).await?;
        let response = self.http.request(request).await.map_err(|e| {
            let code = if e.is_connect() { "connect" } else { "http" };
            Failure::Retry(code.into(), error_chain(&e))
        })?;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| Failure::Retry("http".into(), format!("reading the answer failed: {e}")))?
            .to_bytes();
        let status = parts.status.as_u16();
        if parts.status.is_success() {
            return Ok(bytes);
        }
        let (code, message) = error_code(&parts.headers, &bytes, status);
        if status >= 500 || status == 429 || RETRYABLE_CODES.contains(&code.as_str()) {
            Err(Failure::Retry(code, message))
        } else {
            Err(Failure::Fatal(MetricsError::Refused {
                operation,
                status,
                code,
                message,
            }))
        }
    }

    async fn signed_request(
        &self,
        operation: &'static str,
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, Failure> {
        let credentials = self.credentials().await?;
        let host = self
            .endpoint
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let target = format!("{TARGET_PREFIX}.{operation}");
        let uri = self.endpoint.clone();
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(uri.clone())
            .header(http::header::HOST, &host)
            .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
            .header("x-amz-target", &target)
            .body(Full::new(body.clone()))
            .map_err(|e| {
                Failure::Fatal(MetricsError::Setup {
                    what: "endpoint",
                    message: e.to_string(),
                })
            })?;
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| {
                Failure::Fatal(MetricsError::Setup {
                    what: "credentials",
                    message: e.to_string(),
                })
            })?;
        let uri_text = uri.to_string();
        let headers = [
            ("host", host.as_str()),
            ("content-type", CONTENT_TYPE),
            ("x-amz-target", target.as_str()),
        ];
        let signable = SignableRequest::new(
            "POST",
            &uri_text,
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| {
            Failure::Fatal(MetricsError::Setup {
                what: "endpoint",
                message: e.to_string(),
            })
        })?;
        let (instructions, _signature) = sign(signable, &params.into())
            .map_err(|e| {
                Failure::Fatal(MetricsError::Setup {
                    what: "credentials",
                    message: e.to_string(),
                })
            })?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }

    async fn credentials(&self) -> Result<Credentials, Failure> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let fresh = c
                .expiry()
                .is_none_or(|exp| exp > SystemTime::now() + CREDENTIALS_MARGIN);
            if fresh {
                return Ok(c.clone());
            }
        }
        let c = self.credentials.provide_credentials().await.map_err(|e| {
            Failure::Fatal(MetricsError::Setup {
                what: "credentials",
                message: error_chain(&e),
            })
        })?;
        *cached = Some(c.clone());
        Ok(c)
    }
}

/// The error code and message of a failed answer: from `x-amzn-query-error`
/// (`Code;Sender`), `x-amzn-errortype`, or the body's `__type` / `code`; the message
/// from the body's `message` / `Message`.
fn error_code(headers: &http::HeaderMap, body: &[u8], status: u16) -> (String, String) {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let code = header("x-amzn-query-error")
        .or_else(|| header("x-amzn-errortype"))
        .or_else(|| {
            json.get("__type")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .or_else(|| {
            json.get("code")
                .or_else(|| json.get("Code"))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .map(|c| shape_name(&c))
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = json
        .get("message")
        .or_else(|| json.get("Message"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| preview(body));
    (code, message)
}

/// `com.amazonaws.cloudwatch#Throttling:http://...` and `Throttling;Sender` -> `Throttling`.
fn shape_name(raw: &str) -> String {
    let after_hash = raw.rsplit('#').next().unwrap_or(raw);
    let before_colon = after_hash.split(':').next().unwrap_or(after_hash);
    before_colon
        .split(';')
        .next()
        .unwrap_or(before_colon)
        .trim()
        .to_owned()
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push_str("...");
    }
    out
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
    fn error_codes_are_read_from_json_types_and_query_headers() {
        assert_eq!(
            shape_name("com.amazonaws.cloudwatch#Throttling:http://internal"),
            "Throttling"
        );
        assert_eq!(shape_name("Throttling;Sender"), "Throttling");
        assert_eq!(shape_name("InvalidParameterValue"), "InvalidParameterValue");
        let (code, message) = error_code(
            &http::HeaderMap::new(),
            br#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate exceeded"}"#,
            400,
        );
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("ThrottlingException", "Rate exceeded")
        );
        let (code, _) = error_code(&http::HeaderMap::new(), b"<html>oops</html>", 502);
        assert_eq!(code, "HTTP 502");
    }

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
}
