//! The per-service lock (`lock.json`): take it (or take it over from an execution that
//! has ended), renew a terminal's lease, read it, release it, break it, and check that
//! an execution still holds it. How the lock works is in the crate docs.

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
    /// The lock token: what identifies this take of the lock (its `nonce`), which the
    /// fence and release compare against. It survives lease renewals.
    pub token: String,
    /// When the holder's lease ends, Unix seconds: only a holder that can die without a
    /// word (`canary run` in a terminal) has one, and renews it while it runs. `None`:
    /// the holder's end is known elsewhere (a Step Functions execution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl LockInfo {
    /// Whether the holder's lease has run out at `now` (never, without a lease).
    pub fn lease_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// How [`DeploymentStore::take_lock_as`] takes a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeLock<'a> {
    /// The execution that takes it.
    pub execution: &'a str,
    /// Now, Unix seconds.
    pub now: i64,
    /// A lease of this many seconds (renewed with [`DeploymentStore::renew_lock`]), or
    /// none.
    pub lease_secs: Option<u64>,
    /// The execution that holds it now and is known to have ended: the lock is taken
    /// over from it with a conditional write (recovery). Any other holder still makes
    /// the take fail with [`StoreError::Locked`].
    pub replacing: Option<&'a str>,
}

/// `lock.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum LockDoc {
    Held {
        execution: String,
        since: i64,
        nonce: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
    },
    Released {
        execution: String,
        at: i64,
        by: String,
    },
}

impl LockDoc {
    fn held(execution: &str, now: i64, lease_secs: Option<u64>) -> Self {
        LockDoc::Held {
            execution: execution.to_owned(),
            since: now,
            nonce: nonce(),
            expires_at: lease_secs
                .map(|l| now.saturating_add(i64::try_from(l).unwrap_or(i64::MAX))),
        }
    }

    /// The holder's view, when held.
    fn info(&self) -> Option<LockInfo> {
        match self {
            LockDoc::Held {
                execution,
                since,
                nonce,
                expires_at,
            } => Some(LockInfo {
                execution: execution.clone(),
                since: *since,
                token: nonce.clone(),
                expires_at: *expires_at,
            }),
            LockDoc::Released { .. } => None,
        }
    }

    /// Held by `execution` under `token`. A token is the take's nonce; locks taken
    /// before the nonce was the token handed out their ETag, which still passes.
    fn held_by(&self, etag: &str, execution: &str, token: &str) -> bool {
        matches!(self, LockDoc::Held { execution: holder, nonce, .. }
            if holder == execution && (nonce == token || etag == token))
    }

    /// Released by `execution` itself (not broken by someone else).
    fn released_by_itself(&self, execution: &str) -> bool {
        matches!(self, LockDoc::Released { execution: last, by, .. }
            if last == execution && by == execution)
    }
}

impl DeploymentStore {
    /// Takes the service's lock for `execution` with a conditional write, without a
    /// lease. Taking it again with the same execution returns the same lock (a retried
    /// call). Held by another execution: [`StoreError::Locked`], and nothing is written.
    pub async fn take_lock(
        &self,
        svc: &ServiceRef,
        execution: &str,
        now: i64,
    ) -> Result<LockInfo, StoreError> {
        self.take_lock_as(
            svc,
            &TakeLock {
                execution,
                now,
                lease_secs: None,
                replacing: None,
            },
        )
        .await
    }

    /// Takes the service's lock as `req` says: free or released, it is taken; held by
    /// `req.execution`, the same lock is returned (a retried call); held by
    /// `req.replacing` (an execution known to have ended), it is taken over with a
    /// conditional write on what was read; held by anyone else, [`StoreError::Locked`]
    /// and nothing is written.
    pub async fn take_lock_as(
        &self,
        svc: &ServiceRef,
        req: &TakeLock<'_>,
    ) -> Result<LockInfo, StoreError> {
        svc.check()?;
        check_execution(req.execution)?;
        let key = self.lock_key(svc);
        let held = LockDoc::held(req.execution, req.now, req.lease_secs);
        let mut condition = PutCondition::IfAbsent;
        for _ in 0..MAX_ROUNDS {
            if let PutResult::Written(_) = self.write_json(&key, &held, condition).await? {
                let info = held.info().ok_or_else(|| StoreError::Inconsistent {
                    key: key.clone(),
                    problem: "a held lock without a holder".into(),
                })?;
                tracing::info!(service = %svc, execution = req.execution, expires_at = ?info.expires_at, "lock taken");
                return Ok(info);
            }
            match self.read_lock(&key).await? {
                None => condition = PutCondition::IfAbsent,
                Some((
                    LockDoc::Held {
                        execution: holder,
                        since,
                        nonce,
                        expires_at,
                    },
                    etag,
                )) => {
                    if holder == req.execution {
                        return Ok(LockInfo {
                            execution: holder,
                            since,
                            token: nonce,
                            expires_at,
                        });
                    }
                    if req.replacing != Some(holder.as_str()) {
                        return Err(StoreError::Locked {
                            service: svc.to_string(),
                            holder,
                            since,
                        });
                    }
                    tracing::warn!(service = %svc, ended = %holder, execution = req.execution, "taking over the lock of an execution that has ended");
                    condition = PutCondition::IfMatch(etag);
                }
                Some((LockDoc::Released { .. }, etag)) => condition = PutCondition::IfMatch(etag),
            }
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_ROUNDS,
        })
    }

    /// Renews the lease of `execution`'s lock to `now + lease_secs` (the token stays).
    /// `None` when the lock is no longer held by `execution` (released, broken, taken
    /// over): nothing is written then.
    pub async fn renew_lock(
        &self,
        svc: &ServiceRef,
        execution: &str,
        now: i64,
        lease_secs: u64,
    ) -> Result<Option<LockInfo>, StoreError> {
        let key = self.lock_key(svc);
        for _ in 0..MAX_ROUNDS {
            let Some((
                LockDoc::Held {
                    execution: holder,
                    since,
                    nonce,
                    ..
                },
                etag,
            )) = self.read_lock(&key).await?
            else {
                return Ok(None);
            };
            if holder != execution {
                return Ok(None);
            }
            let renewed = LockDoc::Held {
                execution: holder,
                since,
                nonce,
                expires_at: Some(now.saturating_add(i64::try_from(lease_secs).unwrap_or(i64::MAX))),
            };
            if let PutResult::Written(_) = self
                .write_json(&key, &renewed, PutCondition::IfMatch(etag))
                .await?
            {
                return Ok(renewed.info());
            }
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_ROUNDS,
        })
    }

    /// The lock's holder, when it is held.
    pub async fn lock(&self, svc: &ServiceRef) -> Result<Option<LockInfo>, StoreError> {
        Ok(self
            .read_lock(&self.lock_key(svc))
            .await?
            .and_then(|(doc, _)| doc.info()))
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
        for _ in 0..MAX_ROUNDS {
            match self.read_lock(&key).await? {
                Some((doc, etag)) if doc.held_by(&etag, execution, token) => {
                    if let PutResult::Written(_) = self
                        .write_json(&key, &released, PutCondition::IfMatch(etag))
                        .await?
                    {
                        tracing::info!(service = %svc, execution, "lock released");
                        return Ok(());
                    }
                    // Renewed or broken in between: read again.
                }
                Some((doc, _)) if doc.released_by_itself(execution) => return Ok(()),
                other => return Err(lock_lost(svc, execution, other.map(|(doc, _)| doc))),
            }
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_ROUNDS,
        })
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
            let Some((doc, etag)) = self.read_lock(&key).await? else {
                return Ok(None);
            };
            let Some(info) = doc.info() else {
                return Ok(None);
            };
            let broken = LockDoc::Released {
                execution: info.execution.clone(),
                at: now,
                by: format!("unlock by {who}"),
            };
            if let PutResult::Written(_) = self
                .write_json(&key, &broken, PutCondition::IfMatch(etag))
                .await?
            {
                tracing::warn!(service = %svc, holder = %info.execution, by = who, "lock broken");
                return Ok(Some(info));
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
            Some((doc, etag)) if doc.held_by(&etag, execution, token) => Ok(()),
            Some((doc, _)) if doc.released_by_itself(execution) => Ok(()),
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
            Some((doc, etag))
                if match token {
                    Some(t) => doc.held_by(&etag, execution, t),
                    None => doc.info().is_some_and(|i| i.execution == execution),
                } =>
            {
                Ok(())
            }
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

/// A value that makes each taken lock unique (it is the lock token, and its body's
/// ETag is new), even for two takes in the same nanosecond: the time, the process and
/// a counter. A clock before 1970 only loses the first part; the other two still tell
/// takes apart.
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
