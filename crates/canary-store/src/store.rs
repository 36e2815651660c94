//! [`DeploymentStore`], the facade: where it keeps objects (S3, memory), the key of each
//! object (the layout is in the crate docs), and reading and writing JSON documents with
//! an error that names the key. What it stores is in the modules named for it: `lock`,
//! `state`, `records`, `manifests`, `requests`, `status`.
//!
//! Every write is idempotent for a retried call with the same arguments: records are
//! keyed by version, `begin` remembers which execution it counted a version for, and the
//! lock is re-entrant for the execution that holds it.

use std::sync::Arc;

use aws_config::SdkConfig;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::objects::{MemoryObjects, ObjectStore, PutCondition, PutResult};
use crate::service::ServiceRef;
use crate::{S3Objects, StoreError};

/// Rounds of a contended read-modify-write before giving up.
pub(crate) const MAX_ROUNDS: u32 = 5;
/// The content type of every JSON document.
const JSON: &str = "application/json";

/// Deployment state of every service, in one bucket (or in memory).
#[derive(Debug, Clone)]
pub struct DeploymentStore {
    pub(crate) objects: Arc<dyn ObjectStore>,
    prefix: String,
}

impl DeploymentStore {
    /// A store on any object storage.
    pub fn new(objects: Arc<dyn ObjectStore>) -> Self {
        Self {
            objects,
            prefix: String::new(),
        }
    }

    /// A store in an S3 bucket, with a client built from `sdk`.
    pub fn s3(sdk: &SdkConfig, bucket: impl Into<String>) -> Self {
        Self::new(Arc::new(S3Objects::new(sdk, bucket)))
    }

    /// A store in memory (tests, local runs).
    pub fn memory() -> Self {
        Self::new(Arc::new(MemoryObjects::new()))
    }

    /// The same store with every key under `prefix` (`deployments/` ...).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        let p = prefix.trim_matches('/');
        self.prefix = if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        };
        self
    }

    /// `<prefix><cluster>/<namespace>/<service>/`.
    pub(crate) fn base(&self, svc: &ServiceRef) -> String {
        format!("{}{svc}/", self.prefix)
    }

    /// `<prefix><cluster>/<namespace>/<service>/state.json`.
    pub fn state_key(&self, svc: &ServiceRef) -> String {
        format!("{}state.json", self.base(svc))
    }

    /// `.../lock.json`.
    pub fn lock_key(&self, svc: &ServiceRef) -> String {
        format!("{}lock.json", self.base(svc))
    }

    /// `.../abort.json`.
    pub fn abort_key(&self, svc: &ServiceRef) -> String {
        format!("{}abort.json", self.base(svc))
    }

    /// `.../approve.json`.
    pub fn approve_key(&self, svc: &ServiceRef) -> String {
        format!("{}approve.json", self.base(svc))
    }

    /// `.../promote.json`.
    pub fn promote_key(&self, svc: &ServiceRef) -> String {
        format!("{}promote.json", self.base(svc))
    }

    /// `.../history/`, the prefix of every record.
    pub(crate) fn history_prefix(&self, svc: &ServiceRef) -> String {
        format!("{}history/", self.base(svc))
    }

    /// `.../history/<version>.json`.
    pub fn record_key(&self, svc: &ServiceRef, version: u32) -> String {
        format!("{}{version}.json", self.history_prefix(svc))
    }

    /// `.../manifests/<version>.yaml`.
    pub fn manifest_key(&self, svc: &ServiceRef, version: u32) -> String {
        format!("{}manifests/{version}.yaml", self.base(svc))
    }

    /// The JSON document at `key` and its ETag, or `None` when there is no object.
    /// An object that does not parse is [`StoreError::Corrupt`], never "nothing".
    pub(crate) async fn read_json<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, String)>, StoreError> {
        match self.objects.get(key).await? {
            None => Ok(None),
            Some(obj) => {
                let doc =
                    serde_json::from_slice(&obj.body).map_err(|source| StoreError::Corrupt {
                        key: key.to_owned(),
                        source,
                    })?;
                Ok(Some((doc, obj.etag)))
            }
        }
    }

    /// Writes `value` as JSON at `key` if `condition` holds. A value that does not
    /// serialize is [`StoreError::Serialize`], and nothing is written.
    pub(crate) async fn write_json<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        condition: PutCondition,
    ) -> Result<PutResult, StoreError> {
        let body = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Serialize {
            key: key.to_owned(),
            source,
        })?;
        self.objects.put(key, body, JSON, condition).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use std::collections::BTreeMap;

    use super::*;

    #[tokio::test]
    async fn a_document_that_cannot_be_serialized_is_an_error_naming_the_key_and_nothing_is_written()
     {
        let store = DeploymentStore::memory();
        // JSON object keys must be strings: a map keyed by pairs does not serialize.
        let doc: BTreeMap<(u8, u8), u8> = BTreeMap::from([((1, 2), 3)]);
        let err = store
            .write_json("c/n/s/state.json", &doc, PutCondition::Always)
            .await
            .expect_err("cannot serialize");
        assert!(
            matches!(&err, StoreError::Serialize { key, .. } if key == "c/n/s/state.json"),
            "{err:?}"
        );
        assert!(err.to_string().contains("c/n/s/state.json"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
        assert_eq!(
            store.objects.get("c/n/s/state.json").await.expect("get"),
            None
        );
    }
}
