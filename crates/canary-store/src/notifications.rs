//! Notifications that could not be sent, counted per deployment: a small object next to
//! the record (`<cluster>/<namespace>/<service>/notifications/<version>.json`), so that a
//! failed notification is visible after the fact without touching the record itself.
//! Written by `canary_lambda::notify` when a send fails; read by whoever shows a record.
//!
//! ```json
//! {"failed": 2, "last_id": "9f0c...-shifted-s1-c0-w10", "last_error": "timed out after 3 s", "updated_at": 1767225600}
//! ```

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::objects::{PutCondition, PutResult};
use crate::service::ServiceRef;
use crate::store::{DeploymentStore, MAX_ROUNDS};

/// The notifications of one deployment that were not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationFailures {
    /// How many sends failed.
    pub failed: u32,
    /// The id of the last notification that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<String>,
    /// Why the last one failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When this document was last written, Unix seconds.
    pub updated_at: i64,
}

impl DeploymentStore {
    /// `.../notifications/<version>.json`.
    pub fn notifications_key(&self, svc: &ServiceRef, version: u32) -> String {
        format!("{}notifications/{version}.json", self.base(svc))
    }

    /// Counts one failed notification of `version`'s deployment (a conditional
    /// read-modify-write, safe beside concurrent writers); returns the new count.
    pub async fn record_notification_failure(
        &self,
        svc: &ServiceRef,
        version: u32,
        id: &str,
        error: &str,
        now: i64,
    ) -> Result<u32, StoreError> {
        svc.check()?;
        let key = self.notifications_key(svc, version);
        for _ in 0..MAX_ROUNDS {
            let (mut doc, etag) = match self.read_json::<NotificationFailures>(&key).await? {
                Some((doc, etag)) => (doc, Some(etag)),
                None => (NotificationFailures::default(), None),
            };
            doc.failed = doc.failed.saturating_add(1);
            doc.last_id = Some(id.to_owned());
            doc.last_error = Some(error.to_owned());
            doc.updated_at = now;
            let condition = etag.map_or(PutCondition::IfAbsent, PutCondition::IfMatch);
            if let PutResult::Written(_) = self.write_json(&key, &doc, condition).await? {
                return Ok(doc.failed);
            }
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_ROUNDS,
        })
    }

    /// The failed notifications of `version`'s deployment; `None` when every one was sent.
    pub async fn notification_failures(
        &self,
        svc: &ServiceRef,
        version: u32,
    ) -> Result<Option<NotificationFailures>, StoreError> {
        svc.check()?;
        let key = self.notifications_key(svc, version);
        Ok(self.read_json(&key).await?.map(|(doc, _)| doc))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn svc() -> ServiceRef {
        ServiceRef::new("c1", "yelb", "yelb-appserver")
    }

    #[tokio::test]
    async fn failures_are_counted_per_version_next_to_the_record() {
        let store = DeploymentStore::memory().with_prefix("state");
        assert_eq!(store.notification_failures(&svc(), 4).await.unwrap(), None);
        assert_eq!(
            store
                .record_notification_failure(&svc(), 4, "a", "timed out", 10)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .record_notification_failure(&svc(), 4, "b", "refused", 11)
                .await
                .unwrap(),
            2
        );
        let doc = store
            .notification_failures(&svc(), 4)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(doc.failed, 2);
        assert_eq!(doc.last_id.as_deref(), Some("b"));
        assert_eq!(doc.last_error.as_deref(), Some("refused"));
        assert_eq!(doc.updated_at, 11);
        assert_eq!(store.notification_failures(&svc(), 5).await.unwrap(), None);
        assert_eq!(
            store.notifications_key(&svc(), 4),
            "state/c1/yelb/yelb-appserver/notifications/4.json"
        );
        // The history still lists records only.
        assert!(store.history(&svc()).await.unwrap().is_empty());
    }
}
