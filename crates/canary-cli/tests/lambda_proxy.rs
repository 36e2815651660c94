#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `canary lambda-proxy` as the Lambda API's Invoke: our functions answered in-process
//! (a function error the way Lambda reports it), everything else passed on unchanged.
//! The proxy runs in-process here, in front of a small echo server; the end-to-end runs
//! through moto are in `moto_sfn.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use canary_cli::lambda_proxy;
use canary_cli::local::SimMetricsSource;
use canary_core::clock::SystemClock;
use canary_kube::{Cluster, RequestPolicy};
use canary_lambda::{FixedCluster, Services};
use canary_sim::{SimCluster, SimConfig, kubeconfig_yaml};
use canary_store::DeploymentStore;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A server that answers every request with its method, path, query and body.
async fn echo() -> String {
    let app = axum::Router::new().fallback(|method: Method, uri: Uri, body: Bytes| async move {
        axum::Json(json!({
            "method": method.as_str(),
            "uri": uri.to_string(),
            "body": String::from_utf8_lossy(&body),
        }))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The proxy in front of an echo server; returns the proxy's URL.
async fn proxy() -> String {
    let sim = SimCluster::new(SimConfig::default());
    let server = sim
        .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let cluster = Cluster::from_kubeconfig_yaml(
        &kubeconfig_yaml(&server.url, "default"),
        None,
        RequestPolicy::default(),
    )
    .await
    .unwrap();
    let services = Services {
        store: DeploymentStore::memory(),
        metrics: Arc::new(SimMetricsSource::new(sim.clone(), "default")),
        clusters: Arc::new(FixedCluster(cluster)),
        clock: Arc::new(SystemClock),
        holders: canary_lambda::Holders::none(),
        notifier: std::sync::Arc::new(canary_lambda::NoNotifier),
    };
    let forward = echo().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _server = server;
        lambda_proxy::serve(listener, services, &forward, std::future::pending()).await
    });
    url
}

async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = client
        .request(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

const RENDER_TEMPLATE_ARN: &str =
    "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Arender-template";

#[tokio::test]
async fn a_handler_error_is_answered_as_a_lambda_function_error() {
    let url = proxy().await;
    let answer = send(
        Method::POST,
        &format!("{url}/2015-03-31/functions/{RENDER_TEMPLATE_ARN}/invocations"),
        &[],
        r#"{"deploy": {"cluster_name": "c"}}"#,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["x-amz-function-error"], "Unhandled");
    let body = answer.json();
    assert_eq!(body["errorType"], "InvalidInput");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("execution"),
        "{body}"
    );
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_by_the_lambda_api_not_the_function() {
    let url = proxy().await;
    let answer = send(
        Method::POST,
        &format!("{url}/2015-03-31/functions/health-check/invocations"),
        &[],
        "{not json",
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.headers["x-amzn-errortype"],
        "InvalidRequestContentException"
    );
    assert!(answer.headers.get("x-amz-function-error").is_none());
}

#[tokio::test]
async fn a_dry_run_is_answered_without_running_the_handler() {
    let url = proxy().await;
    let answer = send(
        Method::POST,
        &format!("{url}/2015-03-31/functions/cleanup/invocations"),
        &[("x-amz-invocation-type", "DryRun")],
        "{}",
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn other_functions_and_other_requests_are_passed_on_unchanged() {
    let url = proxy().await;
    let other = send(
        Method::POST,
        &format!("{url}/2015-03-31/functions/someone-elses/invocations?Qualifier=1"),
        &[],
        r#"{"x": 1}"#,
    )
    .await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(
        other.json(),
        json!({"method": "POST", "uri": "/2015-03-31/functions/someone-elses/invocations?Qualifier=1", "body": "{\"x\": 1}"})
    );
    let config = send(Method::GET, &format!("{url}/moto-api/config"), &[], "").await;
    assert_eq!(
        config.json(),
        json!({"method": "GET", "uri": "/moto-api/config", "body": ""})
    );
}
