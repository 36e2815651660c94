//! The I/O sequences the handlers share, as methods of [`Task`]: reach the deployment's
//! cluster, honour an abort request, render the canary again, keep one version (all
//! traffic to it with one route write, then another version's objects removed), remove
//! a failed first deployment, and finish a deployment (record, state, lock). What to do
//! is decided in `canary_core::decide`; these only carry it out.

use std::time::Duration;

use canary_core::execution::OutcomeStatus;
use canary_core::notify::Decision;
use canary_core::provider::Target;
use canary_core::render::{self, RenderParams};
use canary_core::{DeploySpec, Deployment, ErrorName, Rendered};
use canary_kube::{Cluster, TrafficRouter, router_for};
use canary_store::{DeploymentStore, Finish, ServiceRef};
use serde_json::Value;

use crate::{HandlerError, Services, Task};

impl Task {
    /// The canary's objects with the canary at `weight`.
    pub fn render(&self, weight: u8) -> Result<Rendered, HandlerError> {
        rerender(&self.spec, &self.deployment, weight)
    }

    /// The cluster of this deployment, behind the fence: first one read confirms that
    /// this execution still holds the service's lock (holder and token). An execution
    /// whose lock was broken (`canary unlock`) or taken over touches nothing and fails
    /// with `LockLost`, naming who holds it now; the state machine does not roll back on
    /// `LockLost` (the cluster is no longer this execution's to change). Every task that
    /// writes to the cluster gets it here.
    pub async fn cluster(&self, services: &Services) -> Result<Cluster, HandlerError> {
        let d = &self.deployment;
        services
            .store
            .ensure_lock_held(&self.service_ref(), &d.execution, &d.lock_token)
            .await?;
        Ok(services
            .clusters
            .connect(&self.spec.cluster_name, &self.spec.kubernetes_namespace)
            .await?
            .with_clock(services.clock.clone()))
    }

    /// Fails with `Aborted` when someone asked this deployment to stop (`canary abort`),
    /// so that every phase (readiness, shifts, checks) honours it at its next task.
    pub async fn check_abort(&self, services: &Services) -> Result<(), HandlerError> {
        match services.store.abort_requested(&self.service_ref()).await? {
            Some(a) => Err(HandlerError::new(
                ErrorName::Aborted,
                canary_core::errors::aborted_by(&a.by, &a.reason),
            )),
            None => Ok(()),
        }
    }

    /// The router of this deployment's provider: each route write waits for the route
    /// controller's acceptance for up to deploy.json's `route_confirm_timeout`, on the
    /// clock of `cluster` (the services' clock, from [`Task::cluster`]).
    pub fn router(&self, cluster: Cluster) -> Box<dyn TrafficRouter> {
        router_for(
            self.deployment.provider,
            cluster,
            &self.spec.kubernetes_namespace,
            Duration::from_secs(self.spec.route_confirm_timeout),
        )
    }

    /// Whether `version` still has a Deployment in the cluster.
    pub async fn has_deployment(
        &self,
        cluster: &Cluster,
        version: u32,
    ) -> Result<bool, HandlerError> {
        Ok(cluster
            .get(
                "apps/v1",
                "Deployment",
                &self.spec.kubernetes_namespace,
                &self.name_of(version),
            )
            .await?
            .is_some())
    }

    /// Sends all traffic to version `keep` (one route write), then removes version
    /// `remove`'s objects (the kinds of its stored manifest and of this template).
    pub async fn keep_one_version(
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

    /// Removes every object of a failed first deployment, shared ones included (nothing
    /// served before it).
    pub async fn remove_first_deployment(
        &self,
        services: &Services,
        cluster: &Cluster,
    ) -> Result<(), HandlerError> {
        let kinds = kinds_of_version(
            &services.store,
            &self.service_ref(),
            self.deployment.canary_version,
            self.render(0)?.kinds(),
        )
        .await?;
        cluster
            .delete_service(
                &self.spec.kubernetes_namespace,
                &self.spec.microservice_name,
                &kinds,
            )
            .await?;
        Ok(())
    }

    /// Ends the deployment: writes the record and the service's state with `status` and
    /// `reason` (which releases the lock), and returns the task with the outcome,
    /// `next = done` and the weight the canary is left with. Notifies "Canary Promoted"
    /// or "Canary Rolled Back" (with the weight the canary was at).
    pub async fn finish(
        mut self,
        services: &Services,
        status: OutcomeStatus,
        reason: String,
    ) -> Result<Self, HandlerError> {
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
        let at = self.deployment.weight;
        self.deployment.finished(status, reason.clone());
        let word = match status {
            OutcomeStatus::Promoted => "promoted",
            OutcomeStatus::RolledBack => "rolled_back",
        };
        crate::emf::emit(&svc, &self.deployment, word, services.clock.now_millis());
        let decision = match status {
            OutcomeStatus::Promoted => Decision::Promoted,
            OutcomeStatus::RolledBack => Decision::RolledBack { reason, weight: at },
        };
        crate::notify(services, &self, decision).await;
        Ok(self)
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
/// is one, together with `current` (the kinds of the template being deployed now). A
/// stored manifest that is not YAML is a `StoreError` naming its key: deleting "nothing"
/// would leave the version's objects behind without a word.
pub async fn kinds_of_version(
    store: &DeploymentStore,
    service: &ServiceRef,
    version: u32,
    current: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, HandlerError> {
    let mut kinds = current;
    if let Some(docs) = manifest_objects(store, service, version).await? {
        for pair in crate::recover::kinds_of(&docs) {
            if !kinds.contains(&pair) {
                kinds.push(pair);
            }
        }
    }
    Ok(kinds)
}

/// The objects of `version`'s stored manifest (`None`: no manifest was stored). One
/// that is not YAML is a `StoreError` naming its key.
pub(crate) async fn manifest_objects(
    store: &DeploymentStore,
    service: &ServiceRef,
    version: u32,
) -> Result<Option<Vec<Value>>, HandlerError> {
    let Some(manifest) = store.manifest(service, version).await? else {
        return Ok(None);
    };
    let docs: Vec<Value> = serde_saphyr::from_multiple(&manifest).map_err(|e| {
        let key = store.manifest_key(service, version);
        HandlerError::caused_by(ErrorName::StoreError, e).context(&format!(
            "the stored manifest `{key}` of version {version} is not YAML"
        ))
    })?;
    Ok(Some(docs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> ServiceRef {
        ServiceRef::new("c", "ns", "web")
    }

    #[tokio::test]
    async fn a_stored_manifest_that_is_not_yaml_is_a_store_error_naming_its_key() {
        let store = DeploymentStore::memory();
        let key = store.put_manifest(&web(), 3, "a: [unclosed").await.unwrap();
        let e = kinds_of_version(&store, &web(), 3, Vec::new())
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorName::StoreError);
        assert!(e.message.contains(&key), "{e}");
        assert!(e.message.contains("version 3"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[tokio::test]
    async fn the_kinds_of_a_version_add_its_stored_manifest_to_the_current_template() {
        let store = DeploymentStore::memory();
        let manifest =
            "apiVersion: apps/v1\nkind: Deployment\n---\napiVersion: v1\nkind: ConfigMap\n";
        store.put_manifest(&web(), 2, manifest).await.unwrap();
        let current = vec![("apps/v1".to_owned(), "Deployment".to_owned())];
        let kinds = kinds_of_version(&store, &web(), 2, current).await.unwrap();
        assert_eq!(
            kinds,
            vec![
                ("apps/v1".to_owned(), "Deployment".to_owned()),
                ("v1".to_owned(), "ConfigMap".to_owned()),
            ]
        );
        let none = kinds_of_version(&store, &web(), 9, Vec::new())
            .await
            .unwrap();
        assert!(none.is_empty(), "no manifest: only the current kinds");
    }
}
