//! `state.json`, a service's versions: the stable version and image, the counter that
//! never goes back and the deployment in progress. Read it, change it with a
//! conditional read-modify-write, and adopt a stable version found running in a cluster.

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::objects::{PutCondition, PutResult};
use crate::service::ServiceRef;
use crate::store::{DeploymentStore, MAX_ROUNDS};

/// `state.json`: the service's versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The version serving traffic; `None` before the first promotion.
    pub stable_version: Option<u32>,
    /// Its image.
    pub stable_image: Option<String>,
    /// The last version number handed out. Never goes back.
    pub version_counter: u32,
    /// When this document was last written, Unix seconds.
    pub updated_at: i64,
    /// The deployment that counted the last version and has not finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<InProgress>,
}

/// The running deployment, as `state.json` remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    pub execution: String,
    pub version: u32,
    pub image: String,
    pub started_at: i64,
}

impl DeploymentStore {
    /// The service's state (the default when it was never deployed).
    pub async fn state(&self, svc: &ServiceRef) -> Result<State, StoreError> {
        Ok(self.read_state(svc).await?.0)
    }

    /// Records that `version` (of `image`, when known) already serves all traffic of
    /// the service, as found in a cluster that this store has no record of (`canary
    /// run` with an in-memory store). The counter rules hold: it never goes back, so
    /// the next deployment gets a version above both the counter and `version`.
    /// Refused while a deployment is in progress ([`StoreError::Invalid`]); adopting
    /// the same version and image again writes nothing.
    pub async fn adopt_stable(
        &self,
        svc: &ServiceRef,
        version: u32,
        image: Option<&str>,
        now: i64,
    ) -> Result<State, StoreError> {
        svc.check()?;
        let state = self
            .update_state(svc, now, |s| {
                if let Some(p) = &s.in_progress {
                    return Err(StoreError::Invalid {
                        what: "version",
                        value: version.to_string(),
                        why: format!(
                            "cannot adopt it as stable while execution `{}` deploys version {}",
                            p.execution, p.version
                        ),
                    });
                }
                let image = image.map(str::to_owned);
                let changed = s.stable_version != Some(version)
                    || s.stable_image != image
                    || s.version_counter < version;
                s.stable_version = Some(version);
                s.stable_image = image;
                s.version_counter = s.version_counter.max(version);
                Ok(changed)
            })
            .await?;
        tracing::info!(service = %svc, version, "stable version adopted from the cluster");
        Ok(state)
    }

    /// `state.json` and its ETag (`None`: never written); a corrupt one is an error
    /// naming its key.
    pub(crate) async fn read_state(
        &self,
        svc: &ServiceRef,
    ) -> Result<(State, Option<String>), StoreError> {
        Ok(match self.read_json(&self.state_key(svc)).await? {
            None => (State::default(), None),
            Some((state, etag)) => (state, Some(etag)),
        })
    }

    /// Read-modify-write of `state.json` with a conditional put. `change` returns
    /// whether it changed anything; nothing is written when it did not.
    pub(crate) async fn update_state<F>(
        &self,
        svc: &ServiceRef,
        now: i64,
        mut change: F,
    ) -> Result<State, StoreError>
    where
        F: FnMut(&mut State) -> Result<bool, StoreError>,
    {
        let key = self.state_key(svc);
        for _ in 0..MAX_ROUNDS {
            let (mut state, etag) = self.read_state(svc).await?;
            if !change(&mut state)? {
                return Ok(state);
            }
            state.updated_at = now;
            let condition = etag.map_or(PutCondition::IfAbsent, PutCondition::IfMatch);
            if let PutResult::Written(_) = self.write_json(&key, &state, condition).await? {
                return Ok(state);
            }
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_ROUNDS,
        })
    }
}
