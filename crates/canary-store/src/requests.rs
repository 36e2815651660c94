//! Operator requests to a running deployment, kept beside its state: `abort.json`
//! (`canary abort`), which the next health check turns into a rollback.

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

    /// Removes the abort request (`begin` and the finish calls do this).
    pub async fn clear_abort(&self, svc: &ServiceRef) -> Result<(), StoreError> {
        self.objects.delete(&self.abort_key(svc)).await
    }
}
