//! The rendered manifest of each version (`manifests/<version>.yaml`), kept so that a
//! later run can delete exactly what a version applied.

use crate::StoreError;
use crate::objects::PutCondition;
use crate::service::ServiceRef;
use crate::store::DeploymentStore;

const YAML: &str = "application/yaml";

impl DeploymentStore {
    /// Stores the rendered manifest of `version` (overwrites: same version, same text).
    pub async fn put_manifest(
        &self,
        svc: &ServiceRef,
        version: u32,
        manifest: &str,
    ) -> Result<String, StoreError> {
        let key = self.manifest_key(svc, version);
        self.objects
            .put(
                &key,
                manifest.as_bytes().to_vec(),
                YAML,
                PutCondition::Always,
            )
            .await?;
        Ok(key)
    }

    /// The rendered manifest of `version`, if stored; one that is not UTF-8 text is
    /// [`StoreError::NotText`] naming its key.
    pub async fn manifest(
        &self,
        svc: &ServiceRef,
        version: u32,
    ) -> Result<Option<String>, StoreError> {
        let key = self.manifest_key(svc, version);
        match self.objects.get(&key).await? {
            None => Ok(None),
            Some(obj) => String::from_utf8(obj.body)
                .map(Some)
                .map_err(|source| StoreError::NotText { key, source }),
        }
    }
}
