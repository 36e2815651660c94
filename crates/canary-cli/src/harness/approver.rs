//! A person at a gate, on the virtual clock: wraps the handlers' invoker and, once a
//! task returns with the deployment waiting at a gate for at least `after_secs`, asks
//! for the approval the way `canary approve` does (the same store call). The demo's
//! gate scenario and the gate tests use it.

use std::sync::Mutex;

use async_trait::async_trait;
use canary_core::Deployment;
use canary_core::execution::DEPLOYMENT_KEY;
use canary_sfn::{TaskError, TaskInvoker};
use canary_store::{DeploymentStore, ServiceRef};
use serde_json::Value;

use crate::records::gates::approve;

/// Approves each gate `after_secs` after it began waiting.
pub struct Approver<'a> {
    inner: &'a dyn TaskInvoker,
    store: DeploymentStore,
    svc: ServiceRef,
    clock: std::sync::Arc<dyn canary_core::clock::Clock>,
    after_secs: i64,
    by: String,
    /// The gates approved so far (their names), and the sentences `approve` returned.
    approved: Mutex<Vec<(String, String)>>,
}

impl std::fmt::Debug for Approver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approver")
            .field("svc", &self.svc)
            .field("after_secs", &self.after_secs)
            .field("by", &self.by)
            .finish_non_exhaustive()
    }
}

impl<'a> Approver<'a> {
    pub fn new(
        inner: &'a dyn TaskInvoker,
        services: &canary_lambda::Services,
        svc: ServiceRef,
        after_secs: i64,
        by: &str,
    ) -> Self {
        Self {
            inner,
            store: services.store.clone(),
            svc,
            clock: services.clock.clone(),
            after_secs,
            by: by.to_owned(),
            approved: Mutex::new(Vec::new()),
        }
    }

    /// The gates approved, with what `canary approve` said each time.
    pub fn approved(&self) -> Vec<(String, String)> {
        self.approved.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl TaskInvoker for Approver<'_> {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let output = self.inner.invoke(resource, input).await?;
        let gate = output
            .get(DEPLOYMENT_KEY)
            .and_then(|d| serde_json::from_value::<Deployment>(d.clone()).ok())
            .and_then(|d| d.gate);
        let now = self.clock.now_secs();
        if let Some(g) = gate
            && now >= g.since + self.after_secs
        {
            let done = self
                .approved
                .lock()
                .map(|a| a.iter().any(|(name, _)| *name == g.gate))
                .unwrap_or(true);
            if !done {
                let said = approve(
                    &self.store,
                    &self.svc,
                    &self.by,
                    "checked the dashboards at the gate",
                    now,
                )
                .await
                .map_err(|e| TaskError::new("States.TaskFailed", e.to_string()))?;
                if let Ok(mut a) = self.approved.lock() {
                    a.push((g.gate.clone(), said));
                }
            }
        }
        Ok(output)
    }
}
