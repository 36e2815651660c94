//! The Prometheus metrics source: instant queries on the HTTP API
//! (`GET {url}/api/v1/query?query=...&time=<end of window>`), self-managed or Amazon
//! Managed Service for Prometheus (SigV4, service `aps`).
//!
//! The PromQL templates of deploy.json's `metrics` section (a preset or custom) are
//! filled with `canary_core::spec::fill_promql` for the judged version's workload
//! (`<service>-<version>`) and the window of the check. Each query must answer one
//! number: a one-series vector or a scalar. An empty vector, or NaN, is "no
//! datapoints" (an empty list), never a silent 0.
//!
//! `canary what-if` reads a whole range at once with [`PrometheusMetrics::range`]
//! (`/api/v1/query_range`, one series of samples, NaN left out), through the same
//! retries and error classification as the instant queries.
//!
//! Errors: a query Prometheus refuses (HTTP 400/422 with `errorType`/`error`, or any
//! other 4xx) is a non-transient [`MetricsError::Refused`] naming the query and
//! Prometheus's message, not retried; 5xx, 429, connection failures and timeouts are
//! retried with backoff ([`RetryPolicy`], 3 attempts by default) and then end as
//! [`MetricsError::Transient`].
//!
//! Authentication: none, bearer or basic (the secret read from the environment
//! variable named in deploy.json, when the source is built), or SigV4 with the SDK
//! configuration's credentials ([`sign_get`] signs one GET at a given time).

use canary_core::errors::error_chain;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use base64::Engine;
use bytes::Bytes;
use canary_core::Observation;
use canary_core::compare::Counts;
use canary_core::spec::{PromQueries, PrometheusAuth, PrometheusSpec, fill_promql};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub use crate::cloudwatch::RetryPolicy;
use crate::{HealthQuery, MetricsError, MetricsSource};

/// The operation named in errors.
const OPERATION: &str = "Prometheus query";
/// The SigV4 service name of Amazon Managed Service for Prometheus.
const APS_SERVICE: &str = "aps";
/// Longest error body kept in a message.
const MAX_MESSAGE: usize = 500;
/// The most steps one range request asks for (Prometheus refuses more than 11,000
/// points per series).
pub const MAX_RANGE_POINTS: i64 = 10_000;

/// The default retry policy: 3 attempts, about 200 ms then 400 ms apart (half of it
/// jitter), 10 s per attempt.
pub fn default_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        attempt_timeout: Duration::from_secs(10),
    }
}

/// How requests are authenticated, resolved from the spec.
#[derive(Clone)]
enum Auth {
    None,
    /// A ready `Authorization` header value (bearer or basic).
    Header(String),
    Sigv4 {
        region: String,
        credentials: SharedCredentialsProvider,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Header(_) => f.write_str("Header(<redacted>)"),
            Self::Sigv4 { region, .. } => write!(f, "Sigv4({region})"),
        }
    }
}

/// A Prometheus server (or AMP workspace) answering health queries.
#[derive(Debug, Clone)]
pub struct PrometheusMetrics {
    base_url: String,
    queries: PromQueries,
    auth: Auth,
    namespace: String,
    retry: RetryPolicy,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

/// How one attempt failed.
enum Failure {
    Retry {
        code: String,
        message: String,
        source: Option<crate::BoxError>,
    },
    Fatal(MetricsError),
}

fn setup(what: &'static str, message: String) -> MetricsError {
    MetricsError::Setup {
        what,
        message,
        source: None,
    }
}

impl PrometheusMetrics {
    /// A source for `spec`. Bearer and basic secrets are read now from the environment
    /// variable the spec names (a missing variable is an error naming it); SigV4 takes
    /// the credentials provider of `sdk` (required for SigV4).
    pub fn new(spec: &PrometheusSpec, sdk: Option<&SdkConfig>) -> Result<Self, MetricsError> {
        let read_env = |env: &str| {
            std::env::var(env).map_err(|_| {
                setup(
                    "credentials",
                    format!(
                        "environment variable `{env}` (named by metrics.auth) is not set or not UTF-8"
                    ),
                )
            })
        };
        let auth = match &spec.auth {
            PrometheusAuth::None => Auth::None,
            PrometheusAuth::Bearer { env } => Auth::Header(format!("Bearer {}", read_env(env)?)),
            PrometheusAuth::Basic { env } => {
                let pair = read_env(env)?;
                if !pair.contains(':') {
                    return Err(setup(
                        "credentials",
                        format!("environment variable `{env}` must hold `user:password`"),
                    ));
                }
                let encoded = base64::engine::general_purpose::STANDARD.encode(pair.as_bytes());
                Auth::Header(format!("Basic {encoded}"))
            }
            PrometheusAuth::Sigv4 { region } => {
                let credentials =
                    sdk.and_then(SdkConfig::credentials_provider)
                        .ok_or_else(|| {
                            setup(
                                "credentials",
                                format!(
                                    "SigV4 for `{}` needs AWS credentials, and none are configured",
                                    spec.url
                                ),
                            )
                        })?;
                Auth::Sigv4 {
                    region: region.clone(),
                    credentials,
                }
            }
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| MetricsError::Setup {
                what: "endpoint",
                message: format!("TLS setup for `{}`: {e}", spec.url),
                source: Some(Box::new(e)),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            base_url: spec.url.trim_end_matches('/').to_owned(),
            queries: spec.queries.clone(),
            auth,
            namespace: String::new(),
            retry: default_retry(),
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// The Kubernetes namespace filled into `{namespace}` (deploy.json's
    /// `kubernetes_namespace`).
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.namespace);
        self
    }

    /// Replaces the retry policy (tests use short delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn fill(
        &self,
        template: &str,
        q: &HealthQuery,
        workload: &str,
        quantile: f64,
    ) -> Result<String, MetricsError> {
        let namespace = if self.namespace.is_empty() {
            q.namespace.as_str()
        } else {
            self.namespace.as_str()
        };
        if namespace.is_empty() && template.contains("{namespace}") {
            return Err(setup(
                "request",
                format!("query `{template}` uses {{namespace}}, and no namespace was given"),
            ));
        }
        Ok(fill_promql(
            template,
            namespace,
            &q.service,
            workload,
            q.window_seconds(),
            quantile,
        ))
    }

    /// The canary's latency at `quantile`, in milliseconds (`None`: no datapoints).
    pub async fn latency_ms(
        &self,
        q: &HealthQuery,
        quantile: f64,
    ) -> Result<Option<f64>, MetricsError> {
        let template = self.queries.latency.as_deref().ok_or_else(|| {
            setup(
                "request",
                "metrics.queries has no latency query (needed for max_latency_ms)".to_owned(),
            )
        })?;
        let query = self.fill(template, q, &q.version_value(), quantile)?;
        self.instant(&query, q.end_secs).await
    }

    /// Requests and errors of `version` (e.g. the stable one) over the window of `q`:
    /// `None` when the requests query has no datapoints. An empty errors result next to
    /// a request count means no 5xx series exist: 0 errors.
    pub async fn counts(
        &self,
        q: &HealthQuery,
        version: u32,
    ) -> Result<Option<(f64, f64)>, MetricsError> {
        let workload = format!("{}-{version}", q.service);
        let requests = self
            .instant(
                &self.fill(&self.queries.requests, q, &workload, 0.0)?,
                q.end_secs,
            )
            .await?;
        let Some(requests) = requests else {
            return Ok(None);
        };
        let errors = self
            .instant(
                &self.fill(&self.queries.errors, q, &workload, 0.0)?,
                q.end_secs,
            )
            .await?;
        Ok(Some((requests, errors.unwrap_or(0.0))))
    }

    /// One instant query at `time` (Unix seconds), retried per the policy: its one
    /// number, or `None` for an empty result or NaN.
    pub async fn instant(&self, query: &str, time: i64) -> Result<Option<f64>, MetricsError> {
        let url = format!(
            "{}/api/v1/query?query={}&time={time}",
            self.base_url,
            encode(query)
        );
        self.get(&url, query, interpret).await
    }

    /// One range query (`/api/v1/query_range`) from `start` to `end` (Unix seconds,
    /// both included) every `step_secs`, retried per the policy like [`Self::instant`]:
    /// the one series' `(time, value)` samples, without NaN; empty when the result is.
    /// Ranges of more than [`MAX_RANGE_POINTS`] steps are asked in several requests
    /// (Prometheus refuses more than 11,000 points per series).
    pub async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step_secs: u64,
    ) -> Result<Vec<(i64, f64)>, MetricsError> {
        let step = i64::try_from(step_secs.max(1)).unwrap_or(i64::MAX);
        let chunk = step.saturating_mul(MAX_RANGE_POINTS - 1);
        let mut out = Vec::new();
        let mut from = start;
        while from <= end {
            let to = from.saturating_add(chunk).min(end);
            let url = format!(
                "{}/api/v1/query_range?query={}&start={from}&end={to}&step={step}",
                self.base_url,
                encode(query)
            );
            out.extend(self.get(&url, query, interpret_matrix).await?);
            from = to.saturating_add(step);
        }
        Ok(out)
    }

    /// GET `url` with the policy's retries, the answer read by `read`.
    async fn get<T>(
        &self,
        url: &str,
        query: &str,
        read: fn(u16, &[u8], &str) -> Result<T, Failure>,
    ) -> Result<T, MetricsError> {
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let answer = match self.attempt(url).await {
                Ok((status, body)) => read(status, &body, query),
                Err(failure) => Err(failure),
            };
            match answer {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry {
                    code,
                    message,
                    source,
                }) => {
                    if attempt >= attempts {
                        return Err(MetricsError::Transient {
                            operation: OPERATION,
                            code,
                            message: format!("{message} (query: {query})"),
                            attempts: attempt,
                            source,
                        });
                    }
                    tracing::warn!(attempt, %code, %message, query, "Prometheus query failed; retrying");
                    tokio::time::sleep(self.retry.backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One GET of `url`: its status and body, or how it failed.
    async fn attempt(&self, url: &str) -> Result<(u16, Bytes), Failure> {
        let mut builder = http::Request::builder().method("GET").uri(url);
        match &self.auth {
            Auth::None => {}
            Auth::Header(value) => builder = builder.header(http::header::AUTHORIZATION, value),
            Auth::Sigv4 {
                region,
                credentials,
            } => {
                let creds = credentials.provide_credentials().await.map_err(|e| {
                    Failure::Fatal(MetricsError::Setup {
                        what: "credentials",
                        message: format!("for SigV4 on `{}`: {e}", self.base_url),
                        source: Some(Box::new(e)),
                    })
                })?;
                let headers =
                    sign_get(&creds, region, url, SystemTime::now()).map_err(Failure::Fatal)?;
                for (name, value) in headers {
                    builder = builder.header(name, value);
                }
            }
        }
        let request = builder.body(Empty::new()).map_err(|e| {
            Failure::Fatal(MetricsError::Setup {
                what: "request",
                message: format!("cannot build the request for `{url}`: {e}"),
                source: Some(Box::new(e)),
            })
        })?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let code = if e.is_connect() { "connect" } else { "http" };
                Failure::Retry {
                    code: code.to_owned(),
                    message: format!("{}: {}", self.base_url, error_chain(&e)),
                    source: Some(Box::new(e)),
                }
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| Failure::Retry {
                    code: "read".to_owned(),
                    message: format!("reading the answer of {}: {e}", self.base_url),
                    source: Some(Box::new(e)),
                })?;
            Ok::<_, Failure>((status, body.to_bytes()))
        };
        let (status, body) = match tokio::time::timeout(self.retry.attempt_timeout, exchange).await
        {
            Ok(r) => r?,
            Err(_) => {
                return Err(Failure::Retry {
                    code: "timeout".to_owned(),
                    message: format!(
                        "{} did not answer within {:?}",
                        self.base_url, self.retry.attempt_timeout
                    ),
                    source: None,
                });
            }
        };
        Ok((status.as_u16(), body))
    }
}

/// Turns an HTTP answer into a number, no data, or a failure.
fn interpret(status: u16, body: &[u8], query: &str) -> Result<Option<f64>, Failure> {
    let data = answer_data(status, body, query)?;
    let bad = |message: String| bad_response(message, query);
    let result = data.get("result");
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => {
            let series = result
                .and_then(Value::as_array)
                .ok_or_else(|| bad("`data.result` is not a list".to_owned()))?;
            match series.as_slice() {
                [] => Ok(None),
                [one] => sample_value(one.get("value")).map_err(bad),
                many => Err(bad(format!(
                    "{} series returned; the query must return one number (wrap it in sum(...))",
                    many.len()
                ))),
            }
        }
        Some("scalar") => sample_value(result).map_err(bad),
        other => Err(bad(format!(
            "result type {} is not a vector or a scalar",
            other.unwrap_or("(missing)")
        ))),
    }
}

/// Turns a range query's answer into the one series' samples (NaN left out), nothing
/// for an empty result, or a failure.
fn interpret_matrix(status: u16, body: &[u8], query: &str) -> Result<Vec<(i64, f64)>, Failure> {
    let data = answer_data(status, body, query)?;
    let bad = |message: String| bad_response(message, query);
    if data.get("resultType").and_then(Value::as_str) != Some("matrix") {
        return Err(bad(format!(
            "result type {} is not a matrix",
            data.get("resultType")
                .map_or("(missing)".into(), Value::to_string)
        )));
    }
    let series = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("`data.result` is not a list".to_owned()))?;
    let one = match series.as_slice() {
        [] => return Ok(Vec::new()),
        [one] => one,
        many => {
            return Err(bad(format!(
                "{} series returned; the query must return one series (wrap it in sum(...))",
                many.len()
            )));
        }
    };
    let values = one
        .get("values")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the series has no `values` list".to_owned()))?;
    let mut out = Vec::with_capacity(values.len());
    for sample in values {
        let time = sample
            .as_array()
            .and_then(|pair| pair.first())
            .and_then(Value::as_f64)
            .ok_or_else(|| bad(format!("sample {sample} has no time")))?;
        if let Some(v) = sample_value(Some(sample)).map_err(bad)? {
            out.push((time.round() as i64, v));
        }
    }
    Ok(out)
}

/// The `data` of a successful answer; a refused query or an unreachable server is the
/// failure it is (refused: not retried; 429 and 5xx: retried).
fn answer_data(status: u16, body: &[u8], query: &str) -> Result<Value, Failure> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if status == 429 || status >= 500 {
        let message = field("error").unwrap_or_else(|| preview(body));
        return Err(Failure::Retry {
            code: format!("HTTP {status}"),
            message,
            source: None,
        });
    }
    if !(200..300).contains(&status) || field("status").as_deref() == Some("error") {
        let code = field("errorType").unwrap_or_else(|| format!("HTTP {status}"));
        let message = field("error").unwrap_or_else(|| preview(body));
        return Err(Failure::Fatal(MetricsError::Refused {
            operation: OPERATION,
            status,
            code,
            message: format!("{message} (query: {query})"),
            source: None,
        }));
    }
    let mut json =
        json.ok_or_else(|| bad_response(format!("not JSON: {}", preview(body)), query))?;
    json.get_mut("data")
        .map(Value::take)
        .ok_or_else(|| bad_response("no `data` in the answer".to_owned(), query))
}

fn bad_response(message: String, query: &str) -> Failure {
    Failure::Fatal(MetricsError::BadResponse {
        operation: OPERATION,
        message: format!("{message} (query: {query})"),
        source: None,
    })
}

/// The number of a `[timestamp, "value"]` sample; NaN is `None`.
fn sample_value(sample: Option<&Value>) -> Result<Option<f64>, String> {
    let text = sample
        .and_then(Value::as_array)
        .and_then(|pair| pair.get(1))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("sample {sample:?} is not [time, \"value\"]"))?;
    let v: f64 = text
        .parse()
        .map_err(|_| format!("sample value `{text}` is not a number"))?;
    Ok((!v.is_nan()).then_some(v))
}

/// `errors` from the errors query (empty: no datapoints); when `q.need_requests`,
/// `successes` is requests minus errors (empty when the requests query has no
/// datapoints; an empty errors result next to a request count counts as 0 errors, as
/// a service that never failed has no 5xx series).
#[async_trait]
impl MetricsSource for PrometheusMetrics {
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError> {
        let workload = q.version_value();
        let errors_query = self.fill(&self.queries.errors, q, &workload, 0.0)?;
        let errors = self.instant(&errors_query, q.end_secs).await?;
        let successes = if q.need_requests {
            let requests_query = self.fill(&self.queries.requests, q, &workload, 0.0)?;
            let requests = self.instant(&requests_query, q.end_secs).await?;
            Some(
                requests
                    .map(|r| vec![(r - errors.unwrap_or(0.0)).max(0.0)])
                    .unwrap_or_default(),
            )
        } else {
            None
        };
        let latency_ms = match q.latency {
            Some(rule) => self.latency_ms(q, rule.quantile).await?,
            None => None,
        };
        let stable = match q.stable_version {
            Some(v) => Some(
                self.counts(q, v)
                    .await?
                    .map_or(Counts::new(0.0, 0.0), |(r, e)| Counts::new(r, e)),
            ),
            None => None,
        };
        Ok(Observation {
            errors: errors.map(|e| vec![e]).unwrap_or_default(),
            successes,
            latency_ms,
            stable,
        })
    }
}

/// Percent-encodes `s` for a query string (RFC 3986: everything but unreserved
/// characters, upper-case hex), the canonical form SigV4 signs.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Signs `GET url` (its query string included) for Amazon Managed Service for
/// Prometheus (service `aps`) in `region` at `time`: the headers to add
/// (`authorization`, `x-amz-date`, and `x-amz-security-token` with a session token).
pub fn sign_get(
    credentials: &Credentials,
    region: &str,
    url: &str,
    time: SystemTime,
) -> Result<Vec<(String, String)>, MetricsError> {
    let fail = |message: String| setup("request", format!("SigV4 signing of `{url}`: {message}"));
    let uri: http::Uri = url.parse().map_err(|e| fail(format!("{e}")))?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| fail("no host in the URL".to_owned()))?;
    let identity = credentials.clone().into();
    let params: aws_sigv4::http_request::SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(APS_SERVICE)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(e.to_string()))?
        .into();
    let headers = [("host", host.as_str())];
    let signable = SignableRequest::new("GET", url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| fail(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| fail(e.to_string()))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_only_unreserved_characters() {
        assert_eq!(
            encode("sum(x{a=\"b\"}[60s])"),
            "sum%28x%7Ba%3D%22b%22%7D%5B60s%5D%29"
        );
        assert_eq!(encode("a b~c-d_e.f"), "a%20b~c-d_e.f");
    }

    #[test]
    fn range_answers_are_one_series_of_samples_without_nan() {
        let read = |body: &str| match interpret_matrix(200, body.as_bytes(), "q") {
            Ok(v) => v,
            Err(_) => panic!("{body} should parse"),
        };
        assert_eq!(
            read(
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[60,"1"],[120,"NaN"],[180,"2.5"]]}]}}"#
            ),
            [(60, 1.0), (180, 2.5)]
        );
        assert_eq!(
            read(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#),
            []
        );
        let two = r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[]},{"values":[]}]}}"#;
        assert!(matches!(
            interpret_matrix(200, two.as_bytes(), "q"),
            Err(Failure::Fatal(MetricsError::BadResponse { .. }))
        ));
        let refused =
            r#"{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution"}"#;
        match interpret_matrix(400, refused.as_bytes(), "rate(x[1m])") {
            Err(Failure::Fatal(e)) => {
                let text = e.to_string();
                assert!(
                    text.contains("exceeded maximum resolution") && text.contains("rate(x[1m])"),
                    "{text}"
                );
            }
            _ => panic!("400 must be refused"),
        }
        assert!(matches!(
            interpret_matrix(502, b"bad gateway", "q"),
            Err(Failure::Retry { .. })
        ));
    }

    #[test]
    fn answers_are_read_as_one_number_or_no_data() {
        let ok = |body: &str| match interpret(200, body.as_bytes(), "q") {
            Ok(v) => v,
            Err(_) => panic!("{body} should parse"),
        };
        assert_eq!(
            ok(
                r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12.5"]}]}}"#
            ),
            Some(12.5)
        );
        assert_eq!(
            ok(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            None
        );
        assert_eq!(
            ok(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#),
            None
        );
        assert_eq!(
            ok(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#),
            Some(3.0)
        );
        let two = r#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"1"]},{"value":[1,"2"]}]}}"#;
        assert!(matches!(
            interpret(200, two.as_bytes(), "q"),
            Err(Failure::Fatal(MetricsError::BadResponse { .. }))
        ));
        assert!(matches!(
            interpret(503, b"busy", "q"),
            Err(Failure::Retry { .. })
        ));
        assert!(matches!(
            interpret(429, b"slow down", "q"),
            Err(Failure::Retry { .. })
        ));
        let refused = r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        match interpret(400, refused.as_bytes(), "up{") {
            Err(Failure::Fatal(e)) => {
                assert!(!e.is_transient());
                let text = e.to_string();
                assert!(
                    text.contains("parse error")
                        && text.contains("up{")
                        && text.contains("bad_data"),
                    "{text}"
                );
            }
            _ => panic!("400 must be refused"),
        }
    }
}
