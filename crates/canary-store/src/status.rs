//! What `canary status` shows of a service: its state, the lock and the running
//! deployment's record, read together.

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::lock::LockInfo;
use crate::records::Record;
use crate::service::ServiceRef;
use crate::state::State;
use crate::store::DeploymentStore;

/// What `canary status` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub service: String,
    pub state: State,
    /// The lock, when held.
    pub lock: Option<LockInfo>,
    /// The running deployment's record.
    pub in_progress: Option<Record>,
}

impl DeploymentStore {
    /// The state, the lock and the running deployment's record.
    pub async fn status(&self, svc: &ServiceRef) -> Result<Status, StoreError> {
        let state = self.state(svc).await?;
        let lock = self.lock(svc).await?;
        let in_progress = match &state.in_progress {
            Some(p) => self.record(svc, p.version).await?,
            None => None,
        };
        Ok(Status {
            service: svc.to_string(),
            state,
            lock,
            in_progress,
        })
    }
}
