//! The narrow object-storage interface the store is written against: get, conditional
//! put, delete, list. [`crate::S3Objects`] is the real one; [`MemoryObjects`] keeps
//! objects in memory with the same conditional semantics, for tests and local runs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::StoreError;

/// When a put may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Always (plain overwrite).
    Always,
    /// Only when no object has the key (`If-None-Match: *`).
    IfAbsent,
    /// Only when the object's current ETag is this one (`If-Match`).
    IfMatch(String),
}

/// The result of a conditional put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutResult {
    /// Written; the new object's ETag.
    Written(String),
    /// The condition did not hold; nothing was written.
    ConditionFailed,
}

/// An object and its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The content.
    pub body: Vec<u8>,
    /// The ETag (compare with [`PutCondition::IfMatch`]).
    pub etag: String,
}

/// Object storage with conditional writes.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// The object at `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError>;
    /// Writes `body` at `key` if `condition` holds.
    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<PutResult, StoreError>;
    /// Deletes `key` (no error when it is absent).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Every key that starts with `prefix`, in lexicographic order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// Objects in memory. Clones do not share objects; wrap in an `Arc` to share.
#[derive(Debug, Default)]
pub struct MemoryObjects {
    objects: Mutex<BTreeMap<String, Object>>,
    next_etag: AtomicU64,
}

impl MemoryObjects {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Object>> {
        // A poisoned map is still consistent: every operation replaces whole entries.
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ObjectStore for MemoryObjects {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
        condition: PutCondition,
    ) -> Result<PutResult, StoreError> {
        let mut objects = self.lock();
        let current = objects.get(key).map(|o| o.etag.as_str());
        let allowed = match (&condition, current) {
            (PutCondition::Always, _) => true,
            (PutCondition::IfAbsent, current) => current.is_none(),
            (PutCondition::IfMatch(want), Some(have)) => want == have,
            (PutCondition::IfMatch(_), None) => false,
        };
        if !allowed {
            return Ok(PutResult::ConditionFailed);
        }
        let etag = format!("\"m{}\"", self.next_etag.fetch_add(1, Ordering::Relaxed));
        objects.insert(
            key.to_owned(),
            Object {
                body,
                etag: etag.clone(),
            },
        );
        Ok(PutResult::Written(etag))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .lock()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}
