//! Operator requests to a running deployment, kept beside its state: `abort.json`
//! (`canary abort`), which the next health check turns into a rollback; `approve.json`
//! (`canary approve`), which passes the gate it names at the next passing check; and
//! `promote.json` (`canary promote`), which ends the current step (or, `full`, every
//! remaining step) at the next passing check. The approval and the promotion name the
//! execution they are for, so that one left behind never acts on a later deployment;
//! all three are removed when a deployment begins and when it ends.

use canary_core::decide::{Approval, PromoteRequest};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::objects::PutCondition;
use crate::service::ServiceRef;
use crate::store::DeploymentStore;

/// `abort.json`: someone asked the running deployment to roll back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    pub by: String,
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

impl DeploymentStore {
    /// Asks the running deployment to roll back at its next health check.
    pub async fn request_abort(&self, svc: &ServiceRef, abort: &Abort) -> Result<(), StoreError> {
        svc.check()?;
        self.write_json(&self.abort_key(svc), abort, PutCondition::Always)
            .await?;
        Ok(())
    }

    /// The pending abort request, if any; a corrupt one is an error naming its key.
    pub async fn abort_requested(&self, svc: &ServiceRef) -> Result<Option<Abort>, StoreError> {
        Ok(self
            .read_json(&self.abort_key(svc))
            .await?
            .map(|(abort, _)| abort))
    }

    /// Asks the running deployment to pass the gate it waits at.
    pub async fn request_approval(
        &self,
        svc: &ServiceRef,
        approval: &Approval,
    ) -> Result<(), StoreError> {
        svc.check()?;
        self.write_json(&self.approve_key(svc), approval, PutCondition::Always)
            .await?;
        Ok(())
    }

    /// Asks the running deployment to skip the rest of its step (or every step).
    pub async fn request_promotion(
        &self,
        svc: &ServiceRef,
        promotion: &PromoteRequest,
    ) -> Result<(), StoreError> {
        svc.check()?;
        self.write_json(&self.promote_key(svc), promotion, PutCondition::Always)
            .await?;
        Ok(())
    }

    /// The pending approval, if any (a corrupt one is an error naming its key).
    pub async fn approval_requested(
        &self,
        svc: &ServiceRef,
    ) -> Result<Option<Approval>, StoreError> {
        Ok(self
            .read_json(&self.approve_key(svc))
            .await?
            .map(|(a, _)| a))
    }

    /// The pending promotion, if any (a corrupt one is an error naming its key).
    pub async fn promotion_requested(
        &self,
        svc: &ServiceRef,
    ) -> Result<Option<PromoteRequest>, StoreError> {
        Ok(self
            .read_json(&self.promote_key(svc))
            .await?
            .map(|(p, _)| p))
    }

    /// Removes the approval request (once a check has used it).
    pub async fn clear_approval(&self, svc: &ServiceRef) -> Result<(), StoreError> {
        self.objects.delete(&self.approve_key(svc)).await
    }

    /// Removes the promotion request (once a check has used it).
    pub async fn clear_promotion(&self, svc: &ServiceRef) -> Result<(), StoreError> {
        self.objects.delete(&self.promote_key(svc)).await
    }

    /// Removes every request (`begin` and the finish calls do this).
    pub async fn clear_requests(&self, svc: &ServiceRef) -> Result<(), StoreError> {
        self.objects.delete(&self.abort_key(svc)).await?;
        self.clear_approval(svc).await?;
        self.clear_promotion(svc).await
    }
}
