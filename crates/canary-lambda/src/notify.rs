//! Sending the notification of a decision ([`canary_core::notify`] builds it): the
//! [`Notifier`] trait, [`NoNotifier`] (nothing is sent), [`RecordedNotifier`] (kept in
//! memory: the local harness, the demo, tests) and the AWS one (an EventBridge event,
//! and an SNS message for AWS Chatbot when a topic is configured; `aws_notifier.rs`).
//!
//! [`notify`] is what a handler calls: it never fails the deployment. A send that fails
//! or outlasts [`NOTIFY_TIMEOUT`] is logged (with the notification's id) and counted
//! next to the deployment's record (`canary_store`'s `notifications/<version>.json`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use canary_core::notify::{Decision, Notification, notification};

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
/// [`NOTIFY_TIMEOUT`] plus one write to the store: a failed or late send is logged with
/// the notification's id and counted in `notifications/<version>.json`.
pub async fn notify(services: &Services, task: &Task, decision: Decision) {
    let n = notification_of(services, task, &decision);
    let error = match tokio::time::timeout(NOTIFY_TIMEOUT, services.notifier.send(&n)).await {
        Ok(Ok(())) => {
            tracing::info!(id = %n.id, detail_type = %n.detail_type, "notified");
            return;
        }
        Ok(Err(e)) => e,
        Err(_) => format!(
            "not sent within {} s (the notification bound)",
            NOTIFY_TIMEOUT.as_secs()
        ),
    };
    tracing::warn!(id = %n.id, detail_type = %n.detail_type, error = %error, "notification not sent");
    let counted = tokio::time::timeout(
        NOTIFY_TIMEOUT,
        services.store.record_notification_failure(
            &task.service_ref(),
            task.deployment.canary_version,
            &n.id,
            &error,
            services.clock.now_secs(),
        ),
    )
    .await;
    match counted {
        Ok(Ok(count)) => tracing::warn!(id = %n.id, failed = count, "notification failure counted"),
        Ok(Err(e)) => tracing::warn!(id = %n.id, error = %e, "notification failure not counted"),
        Err(_) => tracing::warn!(id = %n.id, "notification failure not counted in time"),
    }
}
