//! The per-service lock (`lock.json`): take it, read it, release it, break it, and
//! check that an execution still holds it. How the lock works is in the crate docs.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::objects::{PutCondition, PutResult};
use crate::service::{ServiceRef, check_execution};
use crate::store::{DeploymentStore, MAX_ROUNDS};

/// Who holds a service's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The execution holding it.
    pub execution: String,
    /// Since when, Unix seconds.
    pub since: i64,
    /// The lock token: the lock object's ETag, which release compares against.
    pub token: String,
}

/// `lock.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum LockDoc {
    Held {
        execution: String,
        since: i64,
        nonce: String,
    },
    Released {
        execution: String,
        at: i64,
        by: String,
    },
}

impl DeploymentStore {
    /// Takes the service's lock for `execution` with a conditional write. Taking it
    /// again with the same execution returns the same lock (a retried call). Held by
    /// another execution: [`StoreError::Locked`], and nothing is written.
    pub async fn take_lock(
        &self,
        svc: &ServiceRef,
        execution: &str,
        now: i64,
    ) -> Result<LockInfo, StoreError> {
        svc.check()?;
        check_execution(execution)?;
        let key = self.lock_key(svc);
        let held = LockDoc::Held {
            execution: execution.to_owned(),
            since: now,
            nonce: nonce(),
        };
        let mut condition = PutCondition::IfAbsent;
        for _ in 0..MAX_ROUNDS {
            if let PutResult::Written(token) = self.write_json(&key, &held, condition).await? {
                tracing::info!(service = %svc, execution, "lock taken");
                return Ok(LockInfo {
                    execution: execution.to_owned(),
                    since: now,
                    token,
                });
            }
            match self.read_lock(&key).await? {
                None => condition = PutCondition::IfAbsent,
                Some((
                    LockDoc::Held {
                        execution: holder,
                        since,
                        ..
                    },
                    etag,
                )) => {
                    if holder == execution {
                        return Ok(LockInfo {
                            execution: holder,
                            since,
                            token: etag,
                        });
                    }
                    return Err(StoreError::Locked {
                        service: svc.to_string(),
                        holder,
                        since,
                    });
                }
                Some((LockDoc::Released { .. }, etag)) => condition = PutCondition::IfMatch(etag),
            }
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_ROUNDS,
        })
    }

    /// The lock's holder, when it is held.
    pub async fn lock(&self, svc: &ServiceRef) -> Result<Option<LockInfo>, StoreError> {
        Ok(match self.read_lock(&self.lock_key(svc)).await? {
            Some((
                LockDoc::Held {
                    execution, since, ..
                },
                etag,
            )) => Some(LockInfo {
                execution,
                since,
                token: etag,
            }),
            Some((LockDoc::Released { .. }, _)) | None => None,
        })
    }

    /// Releases the lock with a conditional write that only succeeds while `token`
    /// still holds it. Releasing again after a successful release is fine; a lock that
    /// was broken or taken by another execution is [`StoreError::LockLost`].
    pub async fn release_lock(
        &self,
        svc: &ServiceRef,
        execution: &str,
        token: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let key = self.lock_key(svc);
        let released = LockDoc::Released {
            execution: execution.to_owned(),
            at: now,
            by: execution.to_owned(),
        };
        if let PutResult::Written(_) = self
            .write_json(&key, &released, PutCondition::IfMatch(token.to_owned()))
            .await?
        {
            tracing::info!(service = %svc, execution, "lock released");
            return Ok(());
        }
        match self.read_lock(&key).await? {
            Some((
                LockDoc::Released {
                    execution: last,
                    by,
                    ..
                },
                _,
            )) if last == execution && by == execution => Ok(()),
            other => Err(lock_lost(svc, execution, other.map(|(doc, _)| doc))),
        }
    }

    /// Breaks the lock on purpose (`canary unlock`): marks it released by `who`.
    /// Returns who held it, or `None` when it was not held.
    pub async fn break_lock(
        &self,
        svc: &ServiceRef,
        who: &str,
        now: i64,
    ) -> Result<Option<LockInfo>, StoreError> {
        svc.check()?;
        let key = self.lock_key(svc);
        for _ in 0..MAX_ROUNDS {
            let Some((
                LockDoc::Held {
                    execution, since, ..
                },
                etag,
            )) = self.read_lock(&key).await?
            else {
                return Ok(None);
            };
            let broken = LockDoc::Released {
                execution: execution.clone(),
                at: now,
                by: format!("unlock by {who}"),
            };
            if let PutResult::Written(_) = self
                .write_json(&key, &broken, PutCondition::IfMatch(etag.clone()))
                .await?
            {
                tracing::warn!(service = %svc, holder = %execution, by = who, "lock broken");
                return Ok(Some(LockInfo {
                    execution,
                    since,
                    token: etag,
                }));
            }
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_ROUNDS,
        })
    }

    /// The fence before a write to the cluster (one read): `Ok` when `execution` still
    /// holds the service's lock with `token`, or released it itself (a retried last
    /// task whose first attempt finished the deployment and whose answer was lost: it
    /// finds its work done, and nobody else holds the service). Otherwise `LockLost`,
    /// saying who holds it now (after `canary unlock`, or another execution since).
    pub async fn ensure_lock_held(
        &self,
        svc: &ServiceRef,
        execution: &str,
        token: &str,
    ) -> Result<(), StoreError> {
        match self.read_lock(&self.lock_key(svc)).await? {
            Some((
                LockDoc::Held {
                    execution: holder, ..
                },
                etag,
            )) if holder == execution && etag == token => Ok(()),
            Some((
                LockDoc::Released {
                    execution: last,
                    by,
                    ..
                },
                _,
            )) if last == execution && by == execution => Ok(()),
            other => Err(lock_lost(svc, execution, other.map(|(doc, _)| doc))),
        }
    }

    /// Fails with `LockLost` unless `execution` holds the lock (with `token`, when given).
    pub(crate) async fn ensure_holder(
        &self,
        svc: &ServiceRef,
        execution: &str,
        token: Option<&str>,
    ) -> Result<(), StoreError> {
        match self.read_lock(&self.lock_key(svc)).await? {
            Some((
                LockDoc::Held {
                    execution: holder, ..
                },
                etag,
            )) if holder == execution && token.is_none_or(|t| t == etag) => Ok(()),
            other => Err(lock_lost(svc, execution, other.map(|(doc, _)| doc))),
        }
    }

    /// `lock.json` and its ETag; a corrupt one is an error naming its key.
    async fn read_lock(&self, key: &str) -> Result<Option<(LockDoc, String)>, StoreError> {
        self.read_json(key).await
    }
}

/// The `LockLost` error, saying what the lock says now.
fn lock_lost(svc: &ServiceRef, execution: &str, doc: Option<LockDoc>) -> StoreError {
    let now = match doc {
        None => "there is no lock".to_owned(),
        Some(LockDoc::Held {
            execution: holder,
            since,
            ..
        }) if holder == execution => {
            format!("it was taken again by the same execution at {since} with another token")
        }
        Some(LockDoc::Held {
            execution: holder,
            since,
            ..
        }) => format!("execution `{holder}` holds it since {since}"),
        Some(LockDoc::Released { by, at, .. }) => format!("it was released by `{by}` at {at}"),
    };
    StoreError::LockLost {
        service: svc.to_string(),
        execution: execution.to_owned(),
        now,
    }
}

/// A value that makes each taken lock's body unique (so its ETag is new), even for two
/// takes in the same nanosecond: the time, the process and a counter. A clock before
/// 1970 only loses the first part; the other two still tell takes apart.
fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos:x}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
