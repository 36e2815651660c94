//! The connection to an Amazon EKS cluster: `DescribeCluster` for the API server's
//! endpoint and CA, and the bearer token that EKS accepts from IAM principals.
//!
//! The token is what `aws eks get-token` prints: `k8s-aws-v1.` followed by the
//! unpadded base64url of an STS `GetCallerIdentity` URL, presigned with SigV4 query
//! signing (`X-Amz-Expires=60`) and with the header `x-k8s-aws-id: <cluster>` among the
//! signed headers. The API server's authenticator replays that URL against STS to learn
//! who we are. [`presigned_url`] builds the URL with `aws-sigv4` directly; a test
//! compares it, parameter by parameter, with botocore's for the same inputs.
//!
//! How long a token is good for: the authenticator accepts a token for 15 minutes from
//! its `X-Amz-Date` (the 60 s in the URL only bounds how long STS would accept a bare
//! replay); `aws eks get-token` therefore reports an expiry 14 minutes after signing,
//! and client-go refreshes then. [`TokenCache`] does the same by default
//! ([`TokenPolicy::lifetime`] = 14 min) and signs a new token [`TokenPolicy::margin`]
//! (10 s) before that, so a warm Lambda reuses one token across invocations.
//!
//! The kube client carries the token as a static bearer token (`kube::Config` built
//! from an in-memory kubeconfig); [`crate::client::ClientSource`] builds a new client
//! when the cached token is about to expire, instead of a custom auth layer: the only
//! cost is a new connection every ~14 minutes, and the code stays plain kube-rs.
//!
//! A 401 from the API server means the cached token is no longer accepted (credentials
//! rotated, a clock far off): [`crate::client::Cluster`] then drops it
//! ([`TokenCache::reject`]) and sends the request once more with a freshly signed one; a
//! second 401 is an error naming the cluster, not a loop.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// The prefix of every EKS bearer token.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The signed header that binds a token to one cluster.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// `X-Amz-Expires` of the presigned URL, as `aws eks get-token` sets it.
pub const URL_EXPIRES: Duration = Duration::from_secs(60);

/// The API server of an EKS cluster, as DescribeCluster tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// The cluster name.
    pub name: String,
    /// `https://...eks.amazonaws.com`.
    pub endpoint: String,
    /// The cluster CA bundle: base64 of PEM, exactly as EKS returns it.
    pub ca_data: String,
}

/// Calls EKS `DescribeCluster` and returns the endpoint and CA.
pub async fn describe_cluster(eks: &aws_sdk_eks::Client, name: &str) -> Result<ClusterEndpoint> {
    let out = eks
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(|e| describe_error(name, &e))?;
    let missing = |what: &str| Error::DescribeCluster {
        cluster: name.to_owned(),
        message: format!("the answer has no {what} (is the cluster still being created?)"),
        transient: false,
    };
    let cluster = out.cluster().ok_or_else(|| missing("cluster"))?;
    let endpoint = cluster
        .endpoint()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("endpoint"))?;
    let ca_data = cluster
        .certificate_authority()
        .and_then(|c| c.data())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("certificateAuthority.data"))?;
    Ok(ClusterEndpoint {
        name: name.to_owned(),
        endpoint: endpoint.to_owned(),
        ca_data: ca_data.to_owned(),
    })
}

fn describe_error<E, R>(cluster: &str, e: &aws_sdk_eks::error::SdkError<E, R>) -> Error
where
    E: aws_sdk_eks::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_eks::error::SdkError;
    let (transient, message) = match e {
        SdkError::TimeoutError(_) => (true, "timed out".to_owned()),
        SdkError::DispatchFailure(d) => (true, format!("could not send the request: {d:?}")),
        SdkError::ResponseError(r) => (true, format!("unreadable answer: {r:?}")),
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("unknown");
            let msg = s.err().message().unwrap_or("");
            let busy = matches!(
                code,
                "ThrottlingException"
                    | "ServerException"
                    | "ServiceUnavailableException"
                    | "TooManyRequestsException"
            );
            (busy, format!("{code}: {msg}"))
        }
        other => (false, format!("{other:?}")),
    };
    Error::DescribeCluster {
        cluster: cluster.to_owned(),
        message,
        transient,
    }
}

/// The STS endpoint that signs tokens for `region` (regional, as awscli uses).
pub fn sts_host(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("sts.{region}.{suffix}")
}

/// The presigned STS `GetCallerIdentity` URL for `cluster`, signed at `time`.
pub fn presigned_url(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    time: SystemTime,
) -> Result<String> {
    let fail = |message: String| Error::Signing {
        cluster: cluster.to_owned(),
        message,
    };
    let host = sts_host(region);
    let unsigned = format!("https://{host}/?Action=GetCallerIdentity&Version=2011-06-15");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(URL_EXPIRES);
    let identity = credentials.clone().into();
    let params: aws_sigv4::http_request::SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| fail(e.to_string()))?
        .into();
    let headers = [("host", host.as_str()), (CLUSTER_ID_HEADER, cluster)];
    let signable = SignableRequest::new(
        "GET",
        unsigned.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| fail(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| fail(e.to_string()))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(&unsigned)
        .body(())
        .map_err(|e| fail(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// The EKS bearer token for `cluster`, signed at `time`.
pub fn token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    time: SystemTime,
) -> Result<String> {
    let url = presigned_url(credentials, region, cluster, time)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(url.as_bytes())
    ))
}

/// How long a token is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    /// How long a token is good for after signing (EKS: 15 min; `aws eks get-token`
    /// reports 14 min).
    pub lifetime: Duration,
    /// Sign a new token this long before the old one expires.
    pub margin: Duration,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(14 * 60),
            margin: Duration::from_secs(10),
        }
    }
}

/// A token and when it stops being used. Its `Debug` shows the times and the token's
/// length, never the token: it is a bearer credential (the presigned URL inside carries
/// the access key id and, with temporary credentials, the session token).
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// `k8s-aws-v1.…`.
    pub token: String,
    /// When it was signed.
    pub signed_at: SystemTime,
    /// When it must no longer be sent.
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token", &Redacted(self.token.len()))
            .field("signed_at", &self.signed_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What `Debug` shows in place of a token: its length only.
struct Redacted(usize);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted, {} characters>", self.0)
    }
}

impl Token {
    /// True when `now` is within `margin` of the expiry (or past it).
    pub fn needs_refresh(&self, now: SystemTime, margin: Duration) -> bool {
        match self.expires_at.checked_sub(margin) {
            Some(refresh_at) => now >= refresh_at,
            None => true,
        }
    }
}

/// Signs tokens for one cluster and keeps the current one until shortly before it
/// expires, or until the API server refuses it ([`TokenCache::reject`]). Its `Debug`
/// shows the cluster, the policy and the current token's expiry, never the token.
pub struct TokenCache {
    cluster: String,
    region: String,
    credentials: SharedCredentialsProvider,
    policy: TokenPolicy,
    current: Mutex<Option<Token>>,
}

impl TokenCache {
    /// A cache that signs with `credentials` for `cluster` in `region`.
    pub fn new(
        cluster: &str,
        region: &str,
        credentials: SharedCredentialsProvider,
        policy: TokenPolicy,
    ) -> Self {
        Self {
            cluster: cluster.to_owned(),
            region: region.to_owned(),
            credentials,
            policy,
            current: Mutex::new(None),
        }
    }

    /// Forgets the current token if it is `rejected` (the API server answered 401 to it),
    /// so that the next [`TokenCache::get`] signs a new one. A token signed meanwhile by
    /// another request is kept. True when the token was dropped.
    pub async fn reject(&self, rejected: &str) -> bool {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| t.token == rejected) {
            *current = None;
            tracing::info!(cluster = %self.cluster, "the API server refused the EKS token (401); a new one will be signed");
            true
        } else {
            false
        }
    }

    /// The current token, signing a new one when there is none or it is about to expire.
    /// The second value is true when the token was just signed.
    pub async fn get(&self, now: SystemTime) -> Result<(Token, bool)> {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref()
            && !t.needs_refresh(now, self.policy.margin)
        {
            return Ok((t.clone(), false));
        }
        let creds =
            self.credentials
                .provide_credentials()
                .await
                .map_err(|e| Error::Credentials {
                    message: format!("{e} ({e:?})"),
                })?;
        let mut lifetime = self.policy.lifetime;
        // Temporary credentials that expire sooner bound the token's life too.
        if let Some(creds_expiry) = creds.expiry()
            && let Ok(left) = creds_expiry.duration_since(now)
        {
            lifetime = lifetime.min(left);
        }
        let fresh = Token {
            token: token(&creds, &self.region, &self.cluster, now)?,
            signed_at: now,
            expires_at: now + lifetime,
        };
        tracing::debug!(cluster = %self.cluster, lifetime_s = lifetime.as_secs(), "signed a new EKS token");
        *current = Some(fresh.clone());
        Ok((fresh, true))
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = match self.current.try_lock() {
            Ok(t) => format!("{:?}", t.as_ref().map(|t| t.expires_at)),
            Err(_) => "<in use>".to_owned(),
        };
        f.debug_struct("TokenCache")
            .field("cluster", &self.cluster)
            .field("region", &self.region)
            .field("policy", &self.policy)
            .field("current_expires_at", &current)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(session: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            session.map(str::to_owned),
            None,
            "test",
        )
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_token_is_the_prefixed_unpadded_base64url_of_the_presigned_url() -> Result<()> {
        let url = presigned_url(&creds(None), "eu-west-1", "demo", at(1_714_979_289))?;
        assert!(url.starts_with(
            "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
        ));
        assert!(url.contains("X-Amz-Expires=60"));
        assert!(url.contains("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"));
        let t = token(&creds(None), "eu-west-1", "demo", at(1_714_979_289))?;
        let body = t.strip_prefix(TOKEN_PREFIX).unwrap_or_default();
        assert!(!body.contains('=') && !body.contains('+') && !body.contains('/'));
        let decoded = URL_SAFE_NO_PAD.decode(body).map(String::from_utf8);
        assert_eq!(decoded.ok().and_then(|r| r.ok()), Some(url));
        Ok(())
    }

    #[test]
    fn a_session_token_is_part_of_the_signed_query() -> Result<()> {
        let url = presigned_url(
            &creds(Some("tok/en+")),
            "us-east-1",
            "demo",
            at(1_714_979_289),
        )?;
        assert!(url.contains("X-Amz-Security-Token=tok%2Fen%2B"), "{url}");
        Ok(())
    }

    #[tokio::test]
    async fn debug_output_never_shows_the_token_nor_its_base64_body() -> Result<()> {
        let cache = TokenCache::new(
            "demo",
            "eu-west-1",
            SharedCredentialsProvider::new(creds(Some("SESSIONTOKENSECRET"))),
            TokenPolicy::default(),
        );
        let (token, _) = cache.get(at(1_714_979_289)).await?;
        let body = token.token.strip_prefix(TOKEN_PREFIX).unwrap_or_default();
        assert!(body.len() > 100, "{}", token.token.len());
        for shown in [
            format!("{token:?}"),
            format!("{token:#?}"),
            format!("{cache:?}"),
            format!("{cache:#?}"),
        ] {
            assert!(!shown.contains(&token.token), "{shown}");
            assert!(!shown.contains(&body[..40]), "{shown}");
            assert!(
                !shown.contains("SESSIONTOKENSECRET") && !shown.contains("AKIDEXAMPLE"),
                "{shown}"
            );
        }
        let shown = format!("{token:?}");
        assert!(
            shown.contains("redacted") && shown.contains("expires_at"),
            "{shown}"
        );
        assert!(format!("{cache:?}").contains("current_expires_at: \"Some("));
        Ok(())
    }

    #[tokio::test]
    async fn a_rejected_token_is_dropped_and_only_that_token() -> Result<()> {
        let cache = TokenCache::new(
            "demo",
            "eu-west-1",
            SharedCredentialsProvider::new(creds(None)),
            TokenPolicy::default(),
        );
        let (first, _) = cache.get(at(1_000)).await?;
        assert!(!cache.reject("k8s-aws-v1.someone-else").await);
        let (same, fresh) = cache.get(at(1_001)).await?;
        assert!(!fresh);
        assert_eq!(same, first);
        assert!(cache.reject(&first.token).await);
        let (next, fresh) = cache.get(at(1_002)).await?;
        assert!(fresh, "a new token is signed after a rejection");
        assert_ne!(next.token, first.token);
        Ok(())
    }

    #[test]
    fn a_token_is_refreshed_only_within_the_margin_of_its_expiry() {
        let t = Token {
            token: "t".into(),
            signed_at: at(0),
            expires_at: at(840),
        };
        let margin = Duration::from_secs(10);
        assert!(!t.needs_refresh(at(0), margin));
        assert!(!t.needs_refresh(at(829), margin));
        assert!(t.needs_refresh(at(830), margin));
        assert!(t.needs_refresh(at(900), margin));
    }

    #[tokio::test]
    async fn the_cache_reuses_a_token_until_shortly_before_it_expires() -> Result<()> {
        let cache = TokenCache::new(
            "demo",
            "eu-west-1",
            SharedCredentialsProvider::new(creds(None)),
            TokenPolicy::default(),
        );
        let (first, fresh) = cache.get(at(1_000)).await?;
        assert!(fresh);
        let (again, fresh) = cache.get(at(1_000 + 13 * 60)).await?;
        assert!(!fresh);
        assert_eq!(again, first);
        let (later, fresh) = cache.get(at(1_000 + 14 * 60 - 5)).await?;
        assert!(fresh);
        assert_ne!(later.token, first.token);
        Ok(())
    }
}
