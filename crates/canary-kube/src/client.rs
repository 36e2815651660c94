//! Where the kube client comes from, and how every request is sent: with a timeout,
//! retried a few times with backoff when the server is busy or unreachable, and counted.
//!
//! A [`Cluster`] is built once per cold start, either from a kubeconfig (local runs, the
//! simulated cluster) or from EKS (endpoint and CA from DescribeCluster, a bearer token
//! from [`crate::eks::TokenCache`], a new kube client only when the token is renewed).
//! Its operations live in [`crate::ops`] and [`crate::router`].
//!
//! kube-rs' own retry layer is switched off so that every HTTP request is visible here:
//! [`ApiStats`] counts exactly what reached the wire, and retries follow
//! [`RequestPolicy`].

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::SharedCredentialsProvider;
use canary_core::clock::{Clock, SystemClock};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::sync::Mutex;

use crate::eks::{ClusterEndpoint, TokenCache, TokenPolicy, describe_cluster};
use crate::error::{Error, Result};

/// How requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPolicy {
    /// Each HTTP request must be answered within this time.
    pub timeout: Duration,
    /// How many times a request is sent when the server is busy or unreachable (≥ 1).
    pub attempts: u32,
    /// The pause before the first retry; doubled before each further one.
    pub backoff: Duration,
}

impl Default for RequestPolicy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

impl RequestPolicy {
    /// The pause before retry number `retry` (1-based): `backoff`, `2×backoff`, `4×backoff`…
    pub fn pause(&self, retry: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
    }
}

/// Counters of the requests sent to the API server.
#[derive(Debug, Default)]
pub struct ApiStats {
    requests: AtomicU64,
    writes: AtomicU64,
    retries: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct StatsSnapshot {
    /// Every HTTP request sent (reads and writes, retries included).
    pub requests: u64,
    /// Requests that change something: apply, replace, delete.
    pub writes: u64,
    /// Requests that were retries of a failed one.
    pub retries: u64,
}

impl std::ops::Sub for StatsSnapshot {
    type Output = StatsSnapshot;
    fn sub(self, rhs: Self) -> Self {
        Self {
            requests: self.requests.saturating_sub(rhs.requests),
            writes: self.writes.saturating_sub(rhs.writes),
            retries: self.retries.saturating_sub(rhs.retries),
        }
    }
}

impl ApiStats {
    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }

    fn record(&self, write: bool, retry: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if write {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        if retry {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Where the kube client comes from.
#[derive(Clone)]
pub enum ClientSource {
    /// One client for the life of the process (kubeconfig, in-cluster, tests).
    Static(kube::Client),
    /// An EKS cluster: the client is rebuilt whenever the token is renewed.
    Eks(Arc<EksSource>),
}

impl std::fmt::Debug for ClientSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(_) => f.write_str("ClientSource::Static"),
            Self::Eks(e) => f
                .debug_tuple("ClientSource::Eks")
                .field(&e.endpoint.name)
                .finish(),
        }
    }
}

/// An EKS cluster's endpoint and the token cache that authenticates to it.
pub struct EksSource {
    endpoint: ClusterEndpoint,
    namespace: String,
    policy: RequestPolicy,
    tokens: TokenCache,
    /// The client built for the current token, and that token.
    client: Mutex<Option<(kube::Client, String)>>,
}

impl std::fmt::Debug for EksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksSource")
            .field("endpoint", &self.endpoint)
            .field("namespace", &self.namespace)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl ClientSource {
    /// The client to send the next request with.
    pub async fn client(&self) -> Result<kube::Client> {
        Ok(self.client_and_token().await?.0)
    }

    /// The client to send the next request with, and the EKS token it carries (none for a
    /// static client).
    async fn client_and_token(&self) -> Result<(kube::Client, Option<String>)> {
        match self {
            Self::Static(c) => Ok((c.clone(), None)),
            Self::Eks(e) => {
                let mut cached = e.client.lock().await;
                let (token, fresh) = e.tokens.get(SystemTime::now()).await?;
                if let (Some((c, t)), false) = (cached.as_ref(), fresh)
                    && *t == token.token
                {
                    return Ok((c.clone(), Some(token.token)));
                }
                let client =
                    client_for_endpoint(&e.endpoint, &token.token, &e.namespace, &e.policy).await?;
                *cached = Some((client.clone(), token.token.clone()));
                Ok((client, Some(token.token)))
            }
        }
    }

    /// The API server answered 401 to `token`: forget it and the client carrying it, so
    /// that the next request signs a new one.
    async fn token_rejected(&self, token: &str) {
        if let Self::Eks(e) = self {
            let mut cached = e.client.lock().await;
            if cached.as_ref().is_some_and(|(_, t)| t == token) {
                *cached = None;
            }
            e.tokens.reject(token).await;
        }
    }

    /// The cluster's name, for an EKS source.
    fn cluster_name(&self) -> Option<&str> {
        match self {
            Self::Static(_) => None,
            Self::Eks(e) => Some(&e.endpoint.name),
        }
    }
}

/// Adjusts a kube config to our policy: no hidden retries, bounded waits.
fn tune(config: &mut kube::Config, policy: &RequestPolicy) {
    config.default_retry = false;
    config.read_timeout = Some(policy.timeout);
    config.write_timeout = Some(policy.timeout);
    config.connect_timeout = Some(policy.timeout);
}

fn config_error(e: impl std::fmt::Display) -> Error {
    Error::Config {
        message: e.to_string(),
    }
}

async fn client_from_kubeconfig(
    kubeconfig: Kubeconfig,
    context: Option<&str>,
    policy: &RequestPolicy,
) -> Result<(kube::Client, String)> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(config_error)?;
    tune(&mut config, policy);
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(config_error)?;
    Ok((client, namespace))
}

/// A kube client for an EKS endpoint with a bearer token.
pub async fn client_for_endpoint(
    endpoint: &ClusterEndpoint,
    token: &str,
    namespace: &str,
    policy: &RequestPolicy,
) -> Result<kube::Client> {
    check_ca(endpoint)?;
    // An in-memory kubeconfig lets kube-rs parse the CA bundle as it does for files.
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": endpoint.name, "cluster": {
            "server": endpoint.endpoint,
            "certificate-authority-data": endpoint.ca_data,
        }}],
        "users": [{"name": "eks-canary", "user": {"token": token}}],
        "contexts": [{"name": "eks-canary", "context": {
            "cluster": endpoint.name, "user": "eks-canary", "namespace": namespace,
        }}],
        "current-context": "eks-canary",
    });
    let kubeconfig: Kubeconfig = serde_json::from_value(doc).map_err(config_error)?;
    Ok(client_from_kubeconfig(kubeconfig, None, policy).await?.0)
}

/// Refuses a CA bundle that is not base64 of PEM certificates before any connection is
/// tried (kube-rs would otherwise fall back to the system roots).
fn check_ca(endpoint: &ClusterEndpoint) -> Result<()> {
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(endpoint.ca_data.trim())
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if pem.contains("-----BEGIN CERTIFICATE-----") {
        Ok(())
    } else {
        Err(Error::Config {
            message: format!(
                "certificateAuthority.data of EKS cluster `{}` is not base64 of a PEM certificate",
                endpoint.name
            ),
        })
    }
}

/// The pipeline's handle on one cluster: a client source, the request policy, the
/// request counters, and the clock its waits are measured on (the route controller's
/// confirmation, [`crate::router`]). Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct Inner {
    source: ClientSource,
    namespace: String,
    policy: RequestPolicy,
    stats: ApiStats,
}

impl Cluster {
    /// A cluster reached through `client`; `namespace` is used for objects without one.
    pub fn new(client: kube::Client, namespace: &str, policy: RequestPolicy) -> Self {
        Self::from_source(ClientSource::Static(client), namespace, policy)
    }

    /// A cluster reached through `source`.
    pub fn from_source(source: ClientSource, namespace: &str, policy: RequestPolicy) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                namespace: namespace.to_owned(),
                policy,
                stats: ApiStats::default(),
            }),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same cluster (client, counters) whose waits are measured on `clock`: the
    /// handlers give theirs, so that a virtual clock (tests, the demo) moves instead of
    /// sleeping. The system clock otherwise.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock this handle's waits are measured on.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Waits `millis` on this handle's clock: a virtual clock moves, the system clock
    /// sleeps.
    pub async fn pause(&self, millis: u64) {
        let m = i64::try_from(millis).unwrap_or(i64::MAX);
        if !self.clock.advance(m) {
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
    }

    /// A cluster from a kubeconfig file (its current context, or `context`).
    pub async fn from_kubeconfig_file(
        path: &Path,
        context: Option<&str>,
        policy: RequestPolicy,
    ) -> Result<Self> {
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| Error::Config {
            message: format!("kubeconfig `{}`: {e}", path.display()),
        })?;
        let (client, namespace) = client_from_kubeconfig(kubeconfig, context, &policy).await?;
        Ok(Self::new(client, &namespace, policy))
    }

    /// A cluster from kubeconfig text (YAML), e.g. the one the simulated cluster writes.
    pub async fn from_kubeconfig_yaml(
        yaml: &str,
        context: Option<&str>,
        policy: RequestPolicy,
    ) -> Result<Self> {
        let kubeconfig = Kubeconfig::from_yaml(yaml).map_err(|e| Error::Config {
            message: format!("kubeconfig: {e}"),
        })?;
        let (client, namespace) = client_from_kubeconfig(kubeconfig, context, &policy).await?;
        Ok(Self::new(client, &namespace, policy))
    }

    /// An EKS cluster: DescribeCluster through `sdk` (region and credentials from it, so
    /// `AWS_REGION`, `AWS_ENDPOINT_URL` and the Lambda role apply), then a token signed
    /// with the same credentials, renewed as [`TokenPolicy`] says.
    pub async fn connect_eks(
        sdk: &aws_config::SdkConfig,
        cluster_name: &str,
        namespace: &str,
        policy: RequestPolicy,
    ) -> Result<Self> {
        let region = sdk
            .region()
            .ok_or_else(|| Error::Config {
                message: "no AWS region configured (set AWS_REGION)".into(),
            })?
            .to_string();
        let credentials = sdk
            .credentials_provider()
            .ok_or_else(|| Error::Credentials {
                message: "the AWS configuration has no credentials provider".into(),
            })?;
        let eks = aws_sdk_eks::Client::new(sdk);
        let endpoint = describe_cluster(&eks, cluster_name).await?;
        Ok(Self::from_source(
            ClientSource::Eks(Arc::new(EksSource::new(
                endpoint,
                &region,
                credentials,
                namespace,
                policy,
                TokenPolicy::default(),
            ))),
            namespace,
            policy,
        ))
    }

    /// [`Cluster::connect_eks`] with the AWS configuration of the environment
    /// (`AWS_REGION`, `AWS_ENDPOINT_URL`, the credential chain), as a Lambda has it.
    pub async fn connect_eks_from_env(
        cluster_name: &str,
        namespace: &str,
        policy: RequestPolicy,
    ) -> Result<Self> {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::connect_eks(&sdk, cluster_name, namespace, policy).await
    }

    /// The namespace used for objects that name none.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The request policy.
    pub fn policy(&self) -> &RequestPolicy {
        &self.inner.policy
    }

    /// The request counters so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// Sends one logical request: `send` is called with a client for each try; busy
    /// (5xx, 429), silent (timeout) and unreachable servers are retried as the policy
    /// says; a 401 to an EKS token drops the token and is sent once more with a new one
    /// (a second 401 is an error naming the cluster); anything else is returned at once.
    pub(crate) async fn call<T, F, Fut>(&self, what: &str, write: bool, send: F) -> Result<T>
    where
        F: Fn(kube::Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, kube::Error>>,
    {
        let policy = self.inner.policy;
        let mut attempts = policy.attempts.max(1);
        let mut tries = 0;
        let mut reauthenticated = false;
        loop {
            tries += 1;
            let (client, token) = self.inner.source.client_and_token().await?;
            self.inner.stats.record(write, tries > 1);
            let outcome = tokio::time::timeout(policy.timeout, send(client)).await;
            let err = match outcome {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => classify(what, e, tries),
                Err(_) => Error::Timeout {
                    what: what.to_owned(),
                    timeout_ms: u64::try_from(policy.timeout.as_millis()).unwrap_or(u64::MAX),
                    tries,
                },
            };
            if let (Error::ApiRefused { code: 401, .. }, Some(token)) = (&err, &token) {
                if reauthenticated {
                    return Err(unauthorized(err, self.inner.source.cluster_name()));
                }
                // The one extra try does not count against the policy's attempts.
                reauthenticated = true;
                attempts = attempts.saturating_add(1);
                self.inner.source.token_rejected(token).await;
                continue;
            }
            let retry = matches!(
                err,
                Error::ApiTransient { .. } | Error::Timeout { .. } | Error::Connect { .. }
            );
            if !retry || tries >= attempts {
                return Err(err);
            }
            tracing::debug!(request = what, try_number = tries, error = %err, "retrying");
            tokio::time::sleep(policy.pause(tries)).await;
        }
    }
}

impl EksSource {
    /// A source for `endpoint` that signs tokens with `credentials`.
    pub fn new(
        endpoint: ClusterEndpoint,
        region: &str,
        credentials: SharedCredentialsProvider,
        namespace: &str,
        policy: RequestPolicy,
        tokens: TokenPolicy,
    ) -> Self {
        let cache = TokenCache::new(&endpoint.name, region, credentials, tokens);
        Self {
            endpoint,
            namespace: namespace.to_owned(),
            policy,
            tokens: cache,
            client: Mutex::new(None),
        }
    }
}

/// A 401 to a freshly signed token: the credentials themselves are refused.
fn unauthorized(err: Error, cluster: Option<&str>) -> Error {
    let cluster = cluster.unwrap_or("?");
    match err {
        Error::ApiRefused {
            what,
            code,
            reason,
            message,
        } => Error::ApiRefused {
            what,
            code,
            reason,
            message: format!(
                "{message}; EKS cluster `{cluster}` refused a freshly signed token too: does this role have an access entry on the cluster? (scripts/grant-cluster-access --cluster {cluster} --namespace NS)"
            ),
        },
        other => other,
    }
}

/// Maps a kube error to ours.
fn classify(what: &str, e: kube::Error, tries: u32) -> Error {
    match e {
        kube::Error::Api(status) => {
            let code = status.code;
            let reason = status.reason.clone();
            let message = status.message.clone();
            if code == 429 || code >= 500 {
                Error::ApiTransient {
                    what: what.to_owned(),
                    code,
                    reason,
                    message,
                    tries,
                }
            } else {
                Error::ApiRefused {
                    what: what.to_owned(),
                    code,
                    reason,
                    message,
                }
            }
        }
        kube::Error::HyperError(h) => Error::Connect {
            what: what.to_owned(),
            message: chain(&h),
            tries,
        },
        kube::Error::Service(s) => {
            let message = chain(s.as_ref());
            if message.to_ascii_lowercase().contains("timed out") || message.contains("elapsed") {
                Error::Timeout {
                    what: what.to_owned(),
                    timeout_ms: 0,
                    tries,
                }
            } else {
                Error::Connect {
                    what: what.to_owned(),
                    message,
                    tries,
                }
            }
        }
        kube::Error::SerdeError(s) => Error::Decode {
            what: what.to_owned(),
            message: s.to_string(),
        },
        kube::Error::FromUtf8(s) => Error::Decode {
            what: what.to_owned(),
            message: s.to_string(),
        },
        other => Error::Config {
            message: format!("{what}: {}", chain(&other)),
        },
    }
}

/// An error and its sources, one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_pause() {
        let p = RequestPolicy::default();
        assert_eq!(p.pause(1), Duration::from_millis(200));
        assert_eq!(p.pause(2), Duration::from_millis(400));
        assert_eq!(p.pause(3), Duration::from_millis(800));
    }

    #[test]
    fn api_status_codes_split_into_busy_and_refused() {
        let status = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("boom", "Reason")
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(matches!(
            classify("w", status(503), 1),
            Error::ApiTransient { code: 503, .. }
        ));
        assert!(matches!(
            classify("w", status(429), 1),
            Error::ApiTransient { code: 429, .. }
        ));
        assert!(matches!(
            classify("w", status(404), 1),
            Error::ApiRefused { code: 404, .. }
        ));
        assert!(matches!(
            classify("w", status(409), 1),
            Error::ApiRefused { code: 409, .. }
        ));
    }

    #[test]
    fn stats_subtract_to_the_requests_of_one_step() {
        let s = ApiStats::default();
        let before = s.snapshot();
        s.record(false, false);
        s.record(true, false);
        s.record(true, true);
        assert_eq!(
            s.snapshot() - before,
            StatsSnapshot {
                requests: 3,
                writes: 2,
                retries: 1
            }
        );
    }
}
