//! The Lambda side: JSON logs, services built once per cold start from the
//! environment, and the `lambda_runtime` loop around one handler.
//!
//! Environment:
//! - `CANARY_STATE_BUCKET` (required): the shared stack's bucket for records and locks.
//! - `CANARY_STATE_PREFIX` (optional): a key prefix inside it (default `state`).
//! - `RUST_LOG` (optional): log filter (default `info`); the targets that print
//!   credentials stay capped whatever it says ([`CREDENTIAL_TARGETS`]).
//! - `CANARY_KUBECONFIG` (optional): reach the cluster through this kubeconfig instead
//!   of EKS (for running the functions locally against any cluster, e.g. the simulated
//!   one under a local Lambda Runtime API).
//! - `CANARY_EVENT_BUS` (optional): the EventBridge bus that receives the notification of
//!   each decision (default `default`).
//! - `CANARY_TOPIC_ARN` (optional): an SNS topic that also receives it, as an AWS Chatbot
//!   custom notification (unset: no SNS message).
//! - the standard AWS variables (`AWS_REGION`, `AWS_ENDPOINT_URL`, ...).

use std::future::Future;
use std::sync::Arc;

use canary_core::clock::SystemClock;
use std::path::Path;

use canary_kube::{Cluster, RequestPolicy};
use canary_metrics::DeployJsonMetrics;
use canary_store::DeploymentStore;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::{ClusterConnector, EksConnector, FixedCluster, HandlerError, Holders, Services};

/// The default key prefix of the records in the state bucket.
pub const DEFAULT_STATE_PREFIX: &str = "state";

/// Log targets that print credentials at their most verbose levels, and the most
/// verbose level each may log at whatever `RUST_LOG` (the stack's `LogLevel`) says:
/// aws-sigv4 logs the canonical request and the string to sign at trace (for a presigned
/// URL, such as the EKS token's, the canonical request holds `X-Amz-Security-Token`);
/// aws-smithy-runtime and its HTTP client log whole requests and responses at trace
/// (an STS or IMDS answer holds credentials); aws-config logs a credential process's
/// command line unredacted at trace.
pub const CREDENTIAL_TARGETS: &[(&str, LevelFilter)] = &[
    ("aws_sigv4", LevelFilter::INFO),
    ("aws_smithy_runtime", LevelFilter::DEBUG),
    ("aws_smithy_http_client", LevelFilter::DEBUG),
    ("aws_config", LevelFilter::DEBUG),
];

/// The most verbose level `target` may log at: its cap from [`CREDENTIAL_TARGETS`]
/// (the target itself or a module under it), else no cap.
pub fn log_cap(target: &str) -> LevelFilter {
    CREDENTIAL_TARGETS
        .iter()
        .find(|(t, _)| {
            target
                .strip_prefix(t)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
        .map_or(LevelFilter::TRACE, |(_, cap)| *cap)
}

/// A layer that turns off every event and span of [`CREDENTIAL_TARGETS`] above its cap,
/// for the whole subscriber. A filter directive cannot be a cap on its own: a span
/// directive (`[request]=trace`) enables events of any target inside the span.
#[derive(Debug, Clone, Copy, Default)]
pub struct CredentialGuard;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CredentialGuard {
    fn enabled(
        &self,
        metadata: &tracing::Metadata<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        *metadata.level() <= log_cap(metadata.target())
    }
}

/// The log filter for `spec` (a `RUST_LOG` value; `info` when it is not a valid one).
/// It is no cap on its own: [`json_subscriber`] adds [`CredentialGuard`], which only
/// lowers levels (a directive `aws_sigv4=info` would raise `warn` to `info`, and would
/// match every target starting with the same letters).
pub fn log_filter(spec: &str) -> EnvFilter {
    EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The subscriber of the functions: JSON lines to `writer`, filtered by
/// [`log_filter`]`(spec)` and capped by [`CredentialGuard`] whatever `spec` says.
pub fn json_subscriber<W>(spec: &str, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry()
        .with(CredentialGuard)
        .with(log_filter(spec))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .with_ansi(false)
                .without_time()
                .with_target(false)
                .with_writer(writer),
        )
}

/// Structured JSON logs on stderr, filtered by `RUST_LOG` (default `info`), never
/// printing credentials ([`CREDENTIAL_TARGETS`]).
pub fn init_tracing() {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let _ = json_subscriber(&spec, std::io::stderr).try_init();
}

/// Services from the environment, as a Lambda function has them.
pub async fn services_from_env() -> Result<Services, HandlerError> {
    let bucket = std::env::var("CANARY_STATE_BUCKET").map_err(|_| {
        HandlerError::internal("the CANARY_STATE_BUCKET environment variable is not set")
    })?;
    let prefix =
        std::env::var("CANARY_STATE_PREFIX").unwrap_or_else(|_| DEFAULT_STATE_PREFIX.to_owned());
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let metrics = DeployJsonMetrics::new(&sdk)?;
    let clusters: Arc<dyn ClusterConnector> = match std::env::var_os("CANARY_KUBECONFIG") {
        Some(path) => {
            let cluster =
                Cluster::from_kubeconfig_file(Path::new(&path), None, RequestPolicy::default())
                    .await?;
            Arc::new(FixedCluster(cluster))
        }
        None => Arc::new(EksConnector::new(sdk.clone(), RequestPolicy::default())),
    };
    Ok(Services {
        store: DeploymentStore::s3(&sdk, bucket).with_prefix(&prefix),
        metrics: Arc::new(metrics),
        clusters,
        clock: Arc::new(SystemClock),
        holders: Holders::step_functions(&sdk),
        notifier: Arc::new(crate::notify::AwsNotifier::from_env(&sdk)),
    })
}

/// Runs `handler` as a Lambda function until the runtime stops it.
pub async fn serve<F, Fut>(name: &'static str, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(Services, Value) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<Value, HandlerError>> + Send,
{
    init_tracing();
    crate::emf::enable();
    let services = services_from_env().await?;
    tracing::info!(function = name, "cold start");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let services = services.clone();
        let handler = handler.clone();
        async move {
            let result = handler(services, event.payload).await;
            if let Err(e) = &result {
                tracing::error!(function = name, error_type = e.error_type.as_str(), message = %e.message, "failed");
            }
            result
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            self.0
                .lock()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        }
    }

    /// Logs what each target would log at every level, under the subscriber for `spec`.
    fn logged(spec: &str) -> String {
        let out = Captured::default();
        let subscriber = json_subscriber(spec, out.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request");
            let _in = span.enter();
            tracing::trace!(target: "aws_sigv4::http_request::sign", canonical_request = "X-Amz-Security-Token=SESSION-SECRET", "calculated signing parameters");
            tracing::debug!(target: "aws_sigv4::http_request::sign", "sigv4-debug");
            tracing::info!(target: "aws_sigv4", "sigv4-info");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "smithy-trace");
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "smithy-debug");
            tracing::trace!(target: "aws_config::credential_process", "config-trace");
            tracing::trace!(target: "aws_sigv4_lookalike", "lookalike-trace");
            tracing::trace!(target: "canary_kube::client", "ours-trace");
        });
        out.text()
    }

    #[test]
    fn trace_logging_never_enables_the_signing_crates_trace() {
        let text = logged("trace");
        assert!(!text.contains("SESSION-SECRET"), "{text}");
        assert!(!text.contains("calculated signing parameters"), "{text}");
        assert!(
            !text.contains("sigv4-debug") && text.contains("sigv4-info"),
            "{text}"
        );
        assert!(
            !text.contains("smithy-trace") && text.contains("smithy-debug"),
            "{text}"
        );
        assert!(!text.contains("config-trace"), "{text}");
        // Other targets, ours and one merely named alike, log at trace as asked.
        assert!(
            text.contains("ours-trace") && text.contains("lookalike-trace"),
            "{text}"
        );
    }

    #[test]
    fn signing_an_eks_token_at_trace_logs_no_session_token() {
        let creds = aws_sdk_sfn::config::Credentials::new(
            "AKIDEXAMPLE",
            "secret",
            Some("SESSION-TOKEN-SECRET".to_owned()),
            None,
            "test",
        );
        let sign = || {
            canary_kube::eks::token(&creds, "eu-west-1", "demo", std::time::SystemTime::now())
                .map(|_| ())
        };
        // Without the guard, aws-sigv4 prints the canonical request with the session token.
        let bare = Captured::default();
        let subscriber = tracing_subscriber::registry()
            .with(log_filter("trace"))
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(bare.clone()),
            );
        tracing::subscriber::with_default(subscriber, sign).ok();
        assert!(
            bare.text().contains("SESSION-TOKEN-SECRET"),
            "{}",
            bare.text()
        );

        let out = Captured::default();
        let signed = tracing::subscriber::with_default(json_subscriber("trace", out.clone()), sign);
        assert!(signed.is_ok());
        assert!(
            !out.text().contains("SESSION-TOKEN-SECRET"),
            "{}",
            out.text()
        );
    }

    #[test]
    fn no_directive_lifts_the_cap_not_even_a_target_or_span_directive() {
        for spec in [
            "aws_sigv4=trace",
            "trace,aws_sigv4=trace",
            "[request]=trace",
            "info,[request]=trace",
            "aws_sigv4::http_request=trace",
        ] {
            let text = logged(spec);
            assert!(!text.contains("SESSION-SECRET"), "{spec}: {text}");
            assert!(!text.contains("sigv4-debug"), "{spec}: {text}");
        }
    }

    #[test]
    fn a_cap_lowers_a_level_and_never_raises_one() {
        let text = logged("warn");
        assert!(
            !text.contains("sigv4-info") && !text.contains("smithy-debug"),
            "{text}"
        );
        assert_eq!(log_cap("aws_sigv4"), LevelFilter::INFO);
        assert_eq!(log_cap("aws_sigv4::sign::v4"), LevelFilter::INFO);
        assert_eq!(log_cap("aws_sigv4x"), LevelFilter::TRACE);
        assert_eq!(log_cap("canary_lambda"), LevelFilter::TRACE);
    }

    #[test]
    fn an_invalid_filter_logs_at_info() {
        let text = logged("not a [filter");
        assert!(
            text.contains("sigv4-info") && !text.contains("ours-trace"),
            "{text}"
        );
    }
}
