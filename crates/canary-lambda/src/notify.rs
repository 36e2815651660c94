//! Sending the notification of a decision ([`canary_core::notify`] builds it): the
//! [`Notifier`] trait, [`NoNotifier`] (nothing is sent), [`RecordedNotifier`] (kept in
//! memory: the local harness, the demo, tests) and [`AwsNotifier`] (an EventBridge
//! event, and an SNS message for AWS Chatbot when a topic is configured).
//!
//! [`notify`] is what a handler calls: it never fails the deployment. A send that fails
//! or outlasts [`NOTIFY_TIMEOUT`] is logged (with the notification's id) and counted
//! next to the deployment's record (`canary_store`'s `notifications/<version>.json`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use canary_core::notify::{
    Decision, Notification, Progress, notification, notification_of_progress,
};
use canary_store::{DeploymentStore, ServiceRef};

use crate::{Services, Task};

/// The longest a handler waits for one notification to be sent (every destination
/// together); past it the send is abandoned, logged and counted.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(3);

/// Somewhere notifications go.
#[async_trait]
pub trait Notifier: Send + Sync + std::fmt::Debug {
    /// Sends `n` to every destination; the error says which one failed and why.
    async fn send(&self, n: &Notification) -> Result<(), String>;

    /// The AWS region the console links point to (empty when unknown: a local run).
    fn region(&self) -> &str {
        ""
    }
}

/// Sends nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNotifier;

#[async_trait]
impl Notifier for NoNotifier {
    async fn send(&self, _n: &Notification) -> Result<(), String> {
        Ok(())
    }
}

/// Keeps every notification in memory, in the order sent. Clones share the list.
#[derive(Debug, Clone, Default)]
pub struct RecordedNotifier {
    sent: Arc<Mutex<Vec<Notification>>>,
}

impl RecordedNotifier {
    /// An empty one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every notification sent so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Empties the list and returns what it held.
    pub fn take(&self) -> Vec<Notification> {
        self.sent
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

#[async_trait]
impl Notifier for RecordedNotifier {
    async fn send(&self, n: &Notification) -> Result<(), String> {
        self.sent
            .lock()
            .map_err(|_| "the recorded notifications' lock is poisoned".to_owned())?
            .push(n.clone());
        Ok(())
    }
}

/// A notifier that always fails (tests of the failure path).
#[derive(Debug, Clone, Default)]
pub struct FailingNotifier(pub String);

#[async_trait]
impl Notifier for FailingNotifier {
    async fn send(&self, _n: &Notification) -> Result<(), String> {
        Err(self.0.clone())
    }
}

/// The environment variable naming the EventBridge bus (default `default`).
pub const EVENT_BUS_ENV: &str = "CANARY_EVENT_BUS";
/// The environment variable naming the SNS topic for AWS Chatbot (none: no SNS message).
pub const TOPIC_ARN_ENV: &str = "CANARY_TOPIC_ARN";

/// Sends an EventBridge event (`PutEvents`, one entry) and, when a topic is set, an SNS
/// message whose body is the AWS Chatbot custom notification, both at once. Each SDK
/// call is bounded by [`NOTIFY_TIMEOUT`] too, retries included.
#[derive(Debug, Clone)]
pub struct AwsNotifier {
    events: aws_sdk_eventbridge::Client,
    sns: aws_sdk_sns::Client,
    bus: String,
    topic: Option<String>,
    region: String,
}

impl AwsNotifier {
    /// A notifier on the bus `bus` (a name or an ARN) and, if given, the topic `topic`.
    pub fn new(sdk: &aws_config::SdkConfig, bus: impl Into<String>, topic: Option<String>) -> Self {
        let timeouts = aws_sdk_eventbridge::config::timeout::TimeoutConfig::builder()
            .operation_timeout(NOTIFY_TIMEOUT)
            .connect_timeout(Duration::from_secs(1))
            .build();
        let events = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(sdk)
                .timeout_config(timeouts.clone())
                .build(),
        );
        let sns = aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(sdk)
                .timeout_config(timeouts)
                .build(),
        );
        Self {
            events,
            sns,
            bus: bus.into(),
            topic: topic.filter(|t| !t.is_empty()),
            region: sdk.region().map(ToString::to_string).unwrap_or_default(),
        }
    }

    /// The notifier `CANARY_EVENT_BUS` and `CANARY_TOPIC_ARN` describe.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        let bus = std::env::var(EVENT_BUS_ENV)
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        Self::new(sdk, bus, std::env::var(TOPIC_ARN_ENV).ok())
    }

    async fn put_event(&self, n: &Notification) -> Result<(), String> {
        let mut entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(&n.source)
            .detail_type(&n.detail_type)
            .detail(n.detail.to_string())
            .event_bus_name(&self.bus)
            .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(n.time));
        if let Some(arn) = n
            .detail
            .get("execution")
            .and_then(serde_json::Value::as_str)
            && arn.starts_with("arn:")
        {
            entry = entry.resources(arn);
        }
        let out = self
            .events
            .put_events()
            .entries(entry.build())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "EventBridge PutEvents on bus {}: {}",
                    self.bus,
                    aws_sdk_eventbridge::error::DisplayErrorContext(&e)
                )
            })?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .find_map(|e| {
                    e.error_code()
                        .map(|c| format!("{c}: {}", e.error_message().unwrap_or_default()))
                })
                .unwrap_or_else(|| "no reason given".to_owned());
            return Err(format!(
                "EventBridge PutEvents on bus {} refused the event: {why}",
                self.bus
            ));
        }
        Ok(())
    }

    async fn publish(&self, topic: &str, n: &Notification) -> Result<(), String> {
        let mut publish = self
            .sns
            .publish()
            .topic_arn(topic)
            .message(n.chatbot.to_string());
        if topic.ends_with(".fifo") {
            // A FIFO topic drops a retried task's second message with the same id.
            let group = n.chatbot["metadata"]["threadId"]
                .as_str()
                .unwrap_or("eks-canary")
                .to_owned();
            publish = publish
                .message_group_id(group)
                .message_deduplication_id(n.id.chars().take(128).collect::<String>());
        }
        publish.send().await.map_err(|e| {
            format!(
                "SNS Publish to {topic}: {}",
                aws_sdk_sns::error::DisplayErrorContext(&e)
            )
        })?;
        Ok(())
    }
}

/// The notifier of a command run from a terminal (`canary run`, `canary recover`): the
/// AWS one when `CANARY_EVENT_BUS` or `CANARY_TOPIC_ARN` is set (the functions'
/// settings), so that a person's deployment or recovery is told where the pipeline's
/// are; none otherwise (a terminal sends nothing nobody asked for).
pub async fn terminal_notifier() -> std::sync::Arc<dyn Notifier> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    if set(EVENT_BUS_ENV) || set(TOPIC_ARN_ENV) {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        std::sync::Arc::new(AwsNotifier::from_env(&sdk))
    } else {
        std::sync::Arc::new(NoNotifier)
    }
}

#[async_trait]
impl Notifier for AwsNotifier {
    async fn send(&self, n: &Notification) -> Result<(), String> {
        let (event, message) = match &self.topic {
            Some(topic) => tokio::join!(self.put_event(n), async { self.publish(topic, n).await }),
            None => (self.put_event(n).await, Ok(())),
        };
        match (event, message) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Err(a), Err(b)) => Err(format!("{a}; {b}")),
        }
    }

    fn region(&self) -> &str {
        &self.region
    }
}

/// The notification of `decision` in `task`'s deployment, as it will be sent.
pub fn notification_of(services: &Services, task: &Task, decision: &Decision) -> Notification {
    let spec = &task.spec;
    notification(
        &spec.microservice_name,
        &spec.kubernetes_namespace,
        &spec.cluster_name,
        &task.deployment,
        decision,
        services.notifier.region(),
        services.clock.now_secs(),
    )
}

/// Sends the notification of `decision`. Never fails and never takes longer than
/// [`NOTIFY_TIMEOUT`] plus one bounded write to the store: a failed or late send is
/// logged with the notification's id and counted in `notifications/<version>.json`.
pub async fn notify(services: &Services, task: &Task, decision: Decision) {
    let n = notification_of(services, task, &decision);
    send_bounded(
        services.notifier.as_ref(),
        &services.store,
        &task.service_ref(),
        task.deployment.canary_version,
        &n,
        NOTIFY_TIMEOUT,
        services.clock.now_secs(),
    )
    .await;
}

/// [`notify`] for a deployment known from the records only (a recovery): `progress`
/// says what the notification reports of it.
pub async fn notify_progress(
    services: &Services,
    svc: &ServiceRef,
    progress: &Progress<'_>,
    decision: Decision,
) {
    let n = notification_of_progress(
        &svc.service,
        &svc.namespace,
        &svc.cluster,
        progress,
        &decision,
        services.notifier.region(),
        services.clock.now_secs(),
    );
    send_bounded(
        services.notifier.as_ref(),
        &services.store,
        svc,
        progress.canary_version,
        &n,
        NOTIFY_TIMEOUT,
        services.clock.now_secs(),
    )
    .await;
}

/// Sends `n` within `bound`; on failure logs and counts it in the store (that write
/// bounded too). Returns the error when the send failed.
pub async fn send_bounded(
    notifier: &dyn Notifier,
    store: &DeploymentStore,
    svc: &ServiceRef,
    version: u32,
    n: &Notification,
    bound: Duration,
    now: i64,
) -> Option<String> {
    let error = match tokio::time::timeout(bound, notifier.send(n)).await {
        Ok(Ok(())) => {
            tracing::info!(id = %n.id, detail_type = %n.detail_type, "notified");
            return None;
        }
        Ok(Err(e)) => e,
        Err(_) => format!(
            "not sent within {} ms (the notification bound)",
            bound.as_millis()
        ),
    };
    tracing::warn!(id = %n.id, detail_type = %n.detail_type, error = %error, "notification not sent");
    let counted = tokio::time::timeout(
        bound,
        store.record_notification_failure(svc, version, &n.id, &error, now),
    )
    .await;
    match counted {
        Ok(Ok(count)) => tracing::warn!(id = %n.id, failed = count, "notification failure counted"),
        Ok(Err(e)) => tracing::warn!(id = %n.id, error = %e, "notification failure not counted"),
        Err(_) => tracing::warn!(id = %n.id, "notification failure not counted in time"),
    }
    Some(error)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Instant;

    use canary_core::Deployment;
    use serde_json::json;

    use super::*;

    /// Never answers.
    #[derive(Debug)]
    struct Stuck;

    #[async_trait]
    impl Notifier for Stuck {
        async fn send(&self, _n: &Notification) -> Result<(), String> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
    }

    fn sample() -> Notification {
        let d: Deployment = serde_json::from_value(json!({
            "execution": "x", "canary_version": 4, "stable_version": 3, "provider": "appmesh",
            "route": {"api_version": "v1", "kind": "Route", "name": "r"},
            "schedule": [10, 100], "step": 1, "weight": 10, "max_weight": 10,
            "lock_token": "t", "started_at": 0, "ready_deadline": 0, "checks": 0,
            "holds": 0, "next": "check", "wait_seconds": 0
        }))
        .expect("deployment");
        notification(
            "svc",
            "ns",
            "c",
            &d,
            &Decision::Shifted { from: 0, to: 10 },
            "",
            0,
        )
    }

    fn svc() -> ServiceRef {
        ServiceRef::new("c", "ns", "svc")
    }

    #[tokio::test]
    async fn a_sent_notification_is_recorded_and_nothing_is_counted() {
        let store = DeploymentStore::memory();
        let recorded = RecordedNotifier::new();
        let n = sample();
        let e = send_bounded(&recorded, &store, &svc(), 4, &n, NOTIFY_TIMEOUT, 1).await;
        assert_eq!(e, None);
        assert_eq!(recorded.sent(), vec![n]);
        assert_eq!(store.notification_failures(&svc(), 4).await.unwrap(), None);
        assert_eq!(recorded.take().len(), 1);
        assert!(recorded.sent().is_empty());
    }

    #[tokio::test]
    async fn a_failed_send_is_counted_with_its_id_and_error() {
        let store = DeploymentStore::memory();
        let n = sample();
        let failing = FailingNotifier("EventBridge PutEvents: connection refused".into());
        for _ in 0..2 {
            let e = send_bounded(&failing, &store, &svc(), 4, &n, NOTIFY_TIMEOUT, 7).await;
            assert_eq!(
                e.as_deref(),
                Some("EventBridge PutEvents: connection refused")
            );
        }
        let doc = store
            .notification_failures(&svc(), 4)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(doc.failed, 2);
        assert_eq!(doc.last_id.as_deref(), Some(n.id.as_str()));
        assert_eq!(doc.updated_at, 7);
    }

    #[tokio::test]
    async fn a_send_that_hangs_is_abandoned_at_the_bound_and_counted() {
        let store = DeploymentStore::memory();
        let n = sample();
        let started = Instant::now();
        let e = send_bounded(&Stuck, &store, &svc(), 4, &n, Duration::from_millis(200), 7).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(e.unwrap().contains("not sent within 200 ms"));
        assert_eq!(
            store
                .notification_failures(&svc(), 4)
                .await
                .unwrap()
                .unwrap()
                .failed,
            1
        );
    }
}
