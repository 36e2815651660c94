//! The execution document as a handler sees it: deploy.json (validated again, which is
//! cheap and keeps every handler honest), the `deployment` state, and the `error` that a
//! Catch clause added, if any.

use canary_core::execution::{DEPLOYMENT_KEY, ERROR_KEY, Next, Outcome, OutcomeStatus};
use canary_core::render::{self, RenderParams};
use canary_core::{DeploySpec, Deployment, ExecutionDocument, Rendered, labels};
use canary_kube::{Cluster, Target, TrafficRouter, router_for};
use canary_store::{DeploymentStore, Finish, ServiceRef};
use serde_json::{Map, Value};

use crate::{HandlerError, HandlerResult, Services};

/// A task's input, parsed.
#[derive(Debug, Clone)]
pub struct Task {
    /// deploy.json, validated.
    pub spec: DeploySpec,
    /// deploy.json as given (returned unchanged).
    pub raw: Map<String, Value>,
    /// The deployment state.
    pub deployment: Deployment,
    /// `{Error, Cause}` from a Catch clause, when the state machine caught an error.
    pub error: Option<(String, String)>,
}

impl Task {
    /// Parses a task input that must already hold a `deployment` (every task after
    /// render-template).
    pub fn from_value(value: Value) -> Result<Self, HandlerError> {
        let error = value.get(ERROR_KEY).map(|e| {
            let text = |k: &str| {
                e.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            (
                text("Error"),
                canary_core::errors::readable_cause(&text("Cause")),
            )
        });
        let doc = ExecutionDocument::from_value(value).map_err(HandlerError::invalid)?;
        let Some(deployment) = doc.deployment else {
            return Err(HandlerError::invalid(format!(
                "the execution document has no `{DEPLOYMENT_KEY}`: render-template must run first"
            )));
        };
        let spec = DeploySpec::parse(&Value::Object(doc.spec.clone()), None)?;
        Ok(Self {
            spec,
            raw: doc.spec,
            deployment,
            error,
        })
    }

    /// The document for the next state.
    pub fn into_value(self) -> Value {
        ExecutionDocument {
            spec: self.raw,
            deployment: Some(self.deployment),
        }
        .to_value()
    }

    /// The service, as the record store names it.
    pub fn service_ref(&self) -> ServiceRef {
        ServiceRef::from_spec(&self.spec)
    }

    /// The canary's objects with the canary at `weight`.
    pub fn render(&self, weight: u8) -> Result<Rendered, HandlerError> {
        rerender(&self.spec, &self.deployment, weight)
    }

    /// The cluster of this deployment.
    pub async fn cluster(&self, services: &Services) -> Result<Cluster, HandlerError> {
        services
            .clusters
            .connect(&self.spec.cluster_name, &self.spec.kubernetes_namespace)
            .await
    }

    /// Fails with `Aborted` when someone asked this deployment to stop (`canary abort`),
    /// so that every phase (readiness, shifts, checks) honours it at its next task.
    pub async fn check_abort(&self, services: &Services) -> Result<(), HandlerError> {
        match services.store.abort_requested(&self.service_ref()).await? {
            Some(a) => Err(HandlerError::new(
                canary_core::errors::ABORTED,
                format!("aborted by {}: {}", a.by, a.reason),
            )),
            None => Ok(()),
        }
    }

    /// Sends all traffic to version `keep` (one route write), then removes version
    /// `remove`'s objects (the kinds of its stored manifest and of this template).
    pub async fn keep_only(
        &self,
        services: &Services,
        cluster: &Cluster,
        keep: u32,
        remove: u32,
    ) -> Result<(), HandlerError> {
        let backends = vec![Target::new(self.name_of(keep), 100)];
        self.router(cluster.clone())
            .set_weights(&self.deployment.route, &backends)
            .await?;
        let kinds = kinds_of_version(
            &services.store,
            &self.service_ref(),
            remove,
            self.render(100)?.kinds(),
        )
        .await?;
        cluster
            .delete_version(
                &self.spec.kubernetes_namespace,
                &self.spec.microservice_name,
                remove,
                &kinds,
            )
            .await?;
        Ok(())
    }

    /// Ends the deployment: writes the record and the service's state with `status` and
    /// `reason` (which releases the lock), and returns the document with the outcome,
    /// `next = done` and the weight the canary is left with.
    pub async fn finish(
        mut self,
        services: &Services,
        status: OutcomeStatus,
        reason: String,
    ) -> HandlerResult {
        let svc = self.service_ref();
        let d = &self.deployment;
        let finish = Finish {
            execution: d.execution.clone(),
            lock_token: d.lock_token.clone(),
            version: d.canary_version,
            image: self.spec.container_image.clone(),
            started_at: d.started_at,
            ended_at: services.clock.now_secs(),
            max_weight: d.max_weight,
            verdicts: d.verdict.iter().cloned().collect(),
            reason: reason.clone(),
        };
        match status {
            OutcomeStatus::Promoted => services.store.finish_promoted(&svc, &finish).await?,
            OutcomeStatus::RolledBack => services.store.finish_rolled_back(&svc, &finish).await?,
        };
        tracing::info!(?status, %reason, "deployment finished");
        let d = &mut self.deployment;
        d.weight = if status == OutcomeStatus::Promoted {
            100
        } else {
            0
        };
        d.next = Next::Done;
        d.wait_seconds = 0;
        d.outcome = Some(Outcome { status, reason });
        Ok(self.into_value())
    }

    /// The router of this deployment's provider.
    pub fn router(&self, cluster: Cluster) -> Box<dyn TrafficRouter> {
        router_for(
            self.deployment.provider,
            cluster,
            &self.spec.kubernetes_namespace,
        )
    }

    /// `<service>-<version>`.
    pub fn name_of(&self, version: u32) -> String {
        labels::versioned_name(&self.spec.microservice_name, version)
    }

    /// The route's targets with the canary at `weight` (the stable version takes the
    /// rest; a first deployment has only the canary).
    pub fn backends(&self, weight: u8) -> Vec<Target> {
        let d = &self.deployment;
        canary_core::provider::split_targets(
            &self.spec.microservice_name,
            d.stable_version,
            d.canary_version,
            weight,
        )
    }
}

/// Renders the canary of `deployment` at `weight` from deploy.json's template.
pub fn rerender(
    spec: &DeploySpec,
    deployment: &Deployment,
    weight: u8,
) -> Result<Rendered, HandlerError> {
    let params = RenderParams {
        version: deployment.canary_version,
        stable_version: deployment.stable_version,
        canary_weight: if deployment.stable_version.is_some() {
            weight
        } else {
            100
        },
    };
    Ok(render::render(spec, &params)?)
}

/// The kinds of objects that `version` was made of: from its stored manifest when there
/// is one, together with `current` (the kinds of the template being deployed now).
pub async fn kinds_of_version(
    store: &DeploymentStore,
    service: &ServiceRef,
    version: u32,
    current: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, HandlerError> {
    let mut kinds = current;
    if let Some(manifest) = store.manifest(service, version).await? {
        let docs: Vec<Value> = serde_saphyr::from_multiple(&manifest).unwrap_or_default();
        for d in docs {
            if let (Some(a), Some(k)) = (d["apiVersion"].as_str(), d["kind"].as_str()) {
                let pair = (a.to_owned(), k.to_owned());
                if !kinds.contains(&pair) {
                    kinds.push(pair);
                }
            }
        }
    }
    Ok(kinds)
}
