//! `canary lambda-proxy` (hidden): the Lambda API's Invoke call answered by our six
//! handlers in-process, everything else passed on to another endpoint. It lets a
//! third-party Step Functions interpreter run the real definition against our real
//! handler code: moto's engine (`execute_state_machine`) sends its Lambda invocations
//! to `localhost:$MOTO_PORT`, so moto_server runs on another port with `MOTO_PORT`
//! naming this proxy, which forwards every other request to moto unchanged.
//!
//! - `POST /2015-03-31/functions/{name}/invocations`, where `{name}` (a function name or
//!   ARN, percent-encoded) ends with one of the six function names: the handler runs
//!   ([`Function::call`]) with the request body as its input. A result is answered
//!   `200` with the JSON body; a handler error is answered as Lambda answers a function
//!   error: `200`, header `X-Amz-Function-Error: Unhandled`, body
//!   `{"errorType": "...", "errorMessage": "..."}` (Step Functions takes `errorType` as
//!   the error name and the whole body as the cause). `X-Amz-Invocation-Type: Event`
//!   runs the handler in the background and answers `202`; `DryRun` answers `204`.
//! - Anything else (other functions, other services, moto's own API): forwarded to
//!   `--forward` with the same method, path, query, headers and body, and the answer
//!   returned as it came.
//!
//! The handlers' services are the ones a Lambda function has in AWS, pointed at local
//! peers: records and locks in S3 and health numbers from CloudWatch GetMetricData,
//! both through the real AWS SDK to `--aws-endpoint` (default: the `--forward`
//! endpoint, i.e. moto), and one cluster for every `cluster_name`, reached through
//! `--kubeconfig` (the simulated cluster, or any real one). The clock is the system
//! clock. Region and credentials come from the environment (`AWS_REGION`, default
//! `us-east-1`; `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`: moto accepts any).
//!
//! Health numbers come from CloudWatch, as in AWS, so whatever feeds moto's CloudWatch
//! decides the verdicts: the end-to-end test (`tests/moto_sfn.rs`) pumps the simulated
//! cluster's traffic into it, standing in for Container Insights and the metric filters.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use canary_core::clock::SystemClock;
use canary_kube::{Cluster, RequestPolicy};
use canary_lambda::runtime::DEFAULT_STATE_PREFIX;
use canary_lambda::{FixedCluster, Services};
use canary_metrics::cloudwatch::CloudWatchMetrics;
use canary_store::DeploymentStore;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::local::Function;

/// The Lambda API path of Invoke, without the function name.
pub const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

/// The region used when the environment names none.
const DEFAULT_REGION: &str = "us-east-1";

/// Arguments of `canary lambda-proxy`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    /// Where to listen, e.g. `127.0.0.1:5000` (port 0: any free port; the first line on
    /// standard output says which).
    #[arg(long)]
    pub listen: SocketAddr,
    /// Where every request that is not an invocation of our functions goes, e.g.
    /// `http://127.0.0.1:5001` (moto_server).
    #[arg(long)]
    pub forward: String,
    /// The kubeconfig of the cluster every `cluster_name` maps to (its current context).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The state bucket for records and locks (as the functions' `CANARY_STATE_BUCKET`).
    #[arg(long, env = "CANARY_STATE_BUCKET", default_value = "canary-state")]
    pub bucket: String,
    /// The key prefix inside the bucket (as the functions' `CANARY_STATE_PREFIX`).
    #[arg(long, env = "CANARY_STATE_PREFIX", default_value = DEFAULT_STATE_PREFIX)]
    pub prefix: String,
    /// The endpoint of S3 and CloudWatch (default: `--forward`).
    #[arg(long)]
    pub aws_endpoint: Option<String>,
    /// Seconds after an execution stopped before it counts as ended (its last Lambda
    /// task may still be in flight; the functions wait 60).
    #[arg(long, default_value_t = canary_lambda::holders::STOP_GRACE_SECS)]
    pub stop_grace_secs: u64,
}

/// Why the proxy could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// `--forward` or `--aws-endpoint` is not an `http://host:port` URL.
    #[error("invalid endpoint `{url}`: {why}")]
    Endpoint {
        /// The value given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The kubeconfig could not be read or used.
    #[error("cannot reach the cluster: {0}")]
    Cluster(#[from] canary_kube::Error),
    /// The CloudWatch client could not be built.
    #[error("cannot build the CloudWatch client: {0}")]
    Metrics(#[from] canary_metrics::MetricsError),
    /// The listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the proxy stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// The proxy's shared state.
#[derive(Debug, Clone)]
struct Proxy {
    services: Services,
    /// `http://host:port`, without a trailing slash.
    forward: String,
    client: Client<HttpConnector, Body>,
}

/// Runs `canary lambda-proxy` until Ctrl-C; errors are printed. Exit code 1 on failure.
pub async fn main(args: ProxyArgs) -> ExitCode {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    // The functions' filter, with the signing crates capped as in the functions.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(canary_lambda::runtime::log_filter(&spec))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .finish()
        .with(canary_lambda::runtime::CredentialGuard)
        .try_init();
    // As in Lambda: the metrics of each decision as EMF lines on standard output.
    canary_lambda::emf::enable();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the services, binds `--listen`, prints
/// `lambda-proxy listening on http://ADDR, forwarding to URL` and serves until Ctrl-C.
pub async fn run(args: ProxyArgs) -> Result<(), ProxyError> {
    let forward = endpoint(&args.forward)?;
    let services = services(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ProxyError::Listen {
            addr: args.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ProxyError::Listen {
        addr: args.listen,
        source,
    })?;
    println!("lambda-proxy listening on http://{addr}, forwarding to {forward}");
    tracing::info!(%addr, %forward, bucket = %args.bucket, "lambda-proxy started");
    serve(listener, services, &forward, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// The services a Lambda function would have, pointed at the proxy's peers: S3 and
/// CloudWatch through the SDK at `--aws-endpoint` (or `--forward`), the cluster of
/// `--kubeconfig`, the system clock.
pub async fn services(args: &ProxyArgs) -> Result<Services, ProxyError> {
    let aws_endpoint = endpoint(args.aws_endpoint.as_deref().unwrap_or(&args.forward))?;
    // The environment's region, else us-east-1 (no instance metadata lookup: this runs
    // beside moto, not on EC2).
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_REGION.to_owned());
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .endpoint_url(&aws_endpoint)
        .load()
        .await;
    let cluster =
        Cluster::from_kubeconfig_file(&args.kubeconfig, None, RequestPolicy::default()).await?;
    Ok(Services {
        store: DeploymentStore::s3(&sdk, args.bucket.clone()).with_prefix(&args.prefix),
        metrics: Arc::new(CloudWatchMetrics::new(&sdk)?),
        clusters: Arc::new(FixedCluster(cluster)),
        clock: Arc::new(SystemClock),
        // Whether a lock's holder still runs: moto's Step Functions, as AWS's for the
        // Lambda functions.
        holders: canary_lambda::Holders::step_functions_with_grace(&sdk, args.stop_grace_secs),
        notifier: std::sync::Arc::new(canary_lambda::NoNotifier),
    })
}

/// Serves the proxy on `listener` until `shutdown` completes: invocations of our
/// functions go to the handlers with `services`, everything else to `forward`
/// (`http://host:port`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    services: Services,
    forward: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProxyError> {
    axum::serve(listener, router(services, forward)?)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ProxyError::Serve)
}

/// The proxy as an axum router (for tests that serve it themselves).
pub fn router(services: Services, forward: &str) -> Result<Router, ProxyError> {
    let proxy = Proxy {
        services,
        forward: endpoint(forward)?,
        client: Client::builder(TokioExecutor::new()).build_http(),
    };
    Ok(Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .fallback(pass_on)
        .with_state(proxy))
}

/// Checks that `url` is a plain `http://` URL and drops a trailing slash.
fn endpoint(url: &str) -> Result<String, ProxyError> {
    let bad = |why: &str| ProxyError::Endpoint {
        url: url.to_owned(),
        why: why.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// endpoints are supported"));
    }
    if uri.authority().is_none() {
        return Err(bad("no host"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Invoke: ours when the name ends with one of the six functions, else passed on.
async fn invoke(
    State(proxy): State<Proxy>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let Some(function) = Function::from_resource(&name) else {
        return forward(&proxy, request).await;
    };
    let invocation_type = request
        .headers()
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let body = match axum::body::to_bytes(request.into_body(), 6 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            return lambda_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                &format!("cannot read the request body: {e}"),
            );
        }
    };
    let input = match payload(&body) {
        Ok(v) => v,
        Err(e) => {
            return lambda_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                &format!("could not parse the request body as JSON: {e}"),
            );
        }
    };
    match invocation_type.as_str() {
        "DryRun" => StatusCode::NO_CONTENT.into_response(),
        "Event" => {
            let services = proxy.services.clone();
            tokio::spawn(async move {
                let _ = call(function, &services, input).await;
            });
            StatusCode::ACCEPTED.into_response()
        }
        _ => {
            let (status_header, body) = match call(function, &proxy.services, input).await {
                Ok(output) => (None, output),
                Err(error) => (Some("Unhandled"), error),
            };
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(
                "x-amz-executed-version",
                HeaderValue::from_static("$LATEST"),
            );
            if let Some(v) = status_header {
                headers.insert("x-amz-function-error", HeaderValue::from_static(v));
            }
            (StatusCode::OK, headers, body.to_string()).into_response()
        }
    }
}

/// Runs one handler; the error is the body Lambda sends for a function error.
async fn call(function: Function, services: &Services, input: Value) -> Result<Value, Value> {
    let started = Instant::now();
    let result = function.call(services, input).await;
    let millis = started.elapsed().as_millis();
    match result {
        Ok(output) => {
            tracing::info!(function = function.name(), millis, "invoked");
            Ok(output)
        }
        Err(e) => {
            tracing::warn!(function = function.name(), millis, error_type = %e.error_type, message = %e.message, "invoked: function error");
            Err(json!({ "errorType": e.error_type, "errorMessage": e.message }))
        }
    }
}

/// The invocation payload: JSON, or `{}` when the body is empty (as Lambda does).
fn payload(body: &Bytes) -> Result<Value, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
}

/// An error of the Lambda service itself (not of the function).
fn lambda_error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = json!({ "Type": "User", "message": message });
    (status, headers, body.to_string()).into_response()
}

/// Every other request: to `forward`, unchanged.
async fn pass_on(State(proxy): State<Proxy>, request: Request) -> Response {
    forward(&proxy, request).await
}

async fn forward(proxy: &Proxy, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let target = format!("{}{path}", proxy.forward);
    parts.uri = match target.parse() {
        Ok(uri) => uri,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("cannot forward to `{target}`: {e}"),
            )
                .into_response();
        }
    };
    match proxy.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(Body::new),
        Err(e) => {
            tracing::warn!(%target, error = %e, "forwarding failed");
            (
                StatusCode::BAD_GATEWAY,
                format!("cannot forward to `{target}`: {e}"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_is_an_empty_object_and_json_is_parsed() {
        assert_eq!(payload(&Bytes::from_static(b"")).ok(), Some(json!({})));
        assert_eq!(
            payload(&Bytes::from_static(b"{\"a\": 1}")).ok(),
            Some(json!({"a": 1}))
        );
        assert!(payload(&Bytes::from_static(b"{")).is_err());
    }

    #[test]
    fn endpoints_must_be_plain_http_and_lose_a_trailing_slash() {
        assert_eq!(
            endpoint("http://127.0.0.1:5000/").ok().as_deref(),
            Some("http://127.0.0.1:5000")
        );
        assert!(endpoint("https://example.com").is_err());
        assert!(endpoint("not a url").is_err());
    }

    #[test]
    fn function_names_and_arns_map_to_our_handlers() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:health-check";
        assert_eq!(Function::from_resource(arn), Some(Function::HealthCheck));
        assert_eq!(
            Function::from_resource("rollback"),
            Some(Function::Rollback)
        );
        assert_eq!(Function::from_resource("someone-elses"), None);
    }
}
