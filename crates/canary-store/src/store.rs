//! The deployment store: versions, records, manifests, the per-service lock and the
//! abort marker, written as JSON objects (see the crate docs for the layout) through an
//! [`ObjectStore`].
//!
//! Every write is idempotent for a retried call with the same arguments: records are
//! keyed by version, `begin` remembers which execution it counted a version for, and the
//! lock is re-entrant for the execution that holds it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_config::SdkConfig;
use canary_core::{DeploySpec, Outcome, OutcomeStatus, Verdict};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::objects::{MemoryObjects, Object, ObjectStore, PutCondition, PutResult};
use crate::{S3Objects, StoreError};

/// How many verdicts a record keeps (the last ones).
pub const MAX_VERDICTS: usize = 10;
/// Rounds of a contended read-modify-write before giving up.
const MAX_ROUNDS: u32 = 5;
const JSON: &str = "application/json";
const YAML: &str = "application/yaml";

/// One microservice in one namespace of one cluster: the unit of versions and locking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceRef {
    pub cluster: String,
    pub namespace: String,
    pub service: String,
}

impl ServiceRef {
    /// A reference from its three parts.
    pub fn new(
        cluster: impl Into<String>,
        namespace: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            namespace: namespace.into(),
            service: service.into(),
        }
    }

    /// The service a deploy.json deploys.
    pub fn from_spec(spec: &DeploySpec) -> Self {
        Self::new(
            &spec.cluster_name,
            &spec.kubernetes_namespace,
            &spec.microservice_name,
        )
    }

    /// Parses `<cluster>/<namespace>/<service>`.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [c, n, s] if !c.is_empty() && !n.is_empty() && !s.is_empty() => {
                Ok(Self::new(*c, *n, *s))
            }
            _ => Err(StoreError::Invalid {
                what: "service",
                value: text.to_owned(),
                why: "must be `<cluster>/<namespace>/<service>`".into(),
            }),
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        for part in [&self.cluster, &self.namespace, &self.service] {
            if part.is_empty() || part.contains('/') || part == "." || part == ".." {
                return Err(StoreError::Invalid {
                    what: "service",
                    value: self.to_string(),
                    why: "each part must be non-empty and contain no `/`".into(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.cluster, self.namespace, self.service)
    }
}

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

/// `history/<version>.json`: one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The version this deployment introduced.
    pub version: u32,
    /// The execution that ran it.
    pub execution: String,
    /// The image of `version`.
    pub image: String,
    /// The stable version when it started (`None`: a first deployment).
    pub previous_version: Option<u32>,
    /// The stable image when it started.
    pub previous_image: Option<String>,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; `None` while it runs.
    pub ended_at: Option<i64>,
    /// How it ended; `None` while it runs.
    pub outcome: Option<Outcome>,
    /// The canary's current weight (100 after promotion, 0 after rollback).
    pub weight: u8,
    /// The highest weight the canary reached.
    pub max_weight: u8,
    /// The last verdicts, oldest first, at most [`MAX_VERDICTS`].
    pub verdicts: Vec<Verdict>,
    /// The rendered manifest of `version`.
    pub manifest_key: String,
    /// When this record was last written, Unix seconds.
    pub updated_at: i64,
}

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

/// What `begin` decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Begin {
    /// The new version: the counter plus one.
    pub canary_version: u32,
    /// The version serving traffic now (`None`: a first deployment).
    pub stable_version: Option<u32>,
    /// Its image.
    pub stable_image: Option<String>,
    /// Where the record is.
    pub record_key: String,
    /// Where the rendered manifest goes ([`DeploymentStore::put_manifest`]).
    pub manifest_key: String,
}

/// The end of a deployment, for [`DeploymentStore::finish_promoted`] and
/// [`DeploymentStore::finish_rolled_back`].
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub execution: String,
    /// The token `take_lock` returned.
    pub lock_token: String,
    pub version: u32,
    /// The image of `version` (used when `begin` never wrote the record).
    pub image: String,
    pub started_at: i64,
    pub ended_at: i64,
    pub max_weight: u8,
    /// The last verdicts (replace the record's when not empty).
    pub verdicts: Vec<Verdict>,
    /// One sentence: why it ended this way.
    pub reason: String,
}

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

/// `abort.json`: someone asked the running deployment to roll back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    pub by: String,
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

/// Deployment state of every service, in one bucket (or in memory).
#[derive(Debug, Clone)]
pub struct DeploymentStore {
    objects: Arc<dyn ObjectStore>,
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

    fn base(&self, svc: &ServiceRef) -> String {
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

    /// `.../history/<version>.json`.
    pub fn record_key(&self, svc: &ServiceRef, version: u32) -> String {
        format!("{}history/{version}.json", self.base(svc))
    }

    /// `.../manifests/<version>.yaml`.
    pub fn manifest_key(&self, svc: &ServiceRef, version: u32) -> String {
        format!("{}manifests/{version}.yaml", self.base(svc))
    }

    // ----- the lock -------------------------------------------------------------

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
        let body = to_json(&key, &held)?;
        let mut condition = PutCondition::IfAbsent;
        for _ in 0..MAX_ROUNDS {
            if let PutResult::Written(token) = self
                .objects
                .put(&key, body.clone(), JSON, condition)
                .await?
            {
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
                    obj,
                )) => {
                    if holder == execution {
                        return Ok(LockInfo {
                            execution: holder,
                            since,
                            token: obj.etag,
                        });
                    }
                    return Err(StoreError::Locked {
                        service: svc.to_string(),
                        holder,
                        since,
                    });
                }
                Some((LockDoc::Released { .. }, obj)) => {
                    condition = PutCondition::IfMatch(obj.etag)
                }
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
                obj,
            )) => Some(LockInfo {
                execution,
                since,
                token: obj.etag,
            }),
            _ => None,
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
        let body = to_json(&key, &released)?;
        if let PutResult::Written(_) = self
            .objects
            .put(&key, body, JSON, PutCondition::IfMatch(token.to_owned()))
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
                obj,
            )) = self.read_lock(&key).await?
            else {
                return Ok(None);
            };
            let broken = LockDoc::Released {
                execution: execution.clone(),
                at: now,
                by: format!("unlock by {who}"),
            };
            let body = to_json(&key, &broken)?;
            if let PutResult::Written(_) = self
                .objects
                .put(&key, body, JSON, PutCondition::IfMatch(obj.etag.clone()))
                .await?
            {
                tracing::warn!(service = %svc, holder = %execution, by = who, "lock broken");
                return Ok(Some(LockInfo {
                    execution,
                    since,
                    token: obj.etag,
                }));
            }
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_ROUNDS,
        })
    }

    async fn read_lock(&self, key: &str) -> Result<Option<(LockDoc, Object)>, StoreError> {
        match self.objects.get(key).await? {
            None => Ok(None),
            Some(obj) => Ok(Some((from_json(key, &obj.body)?, obj))),
        }
    }

    /// Fails with `LockLost` unless `execution` holds the lock (with `token`, when given).
    async fn ensure_holder(
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
                obj,
            )) if holder == execution && token.is_none_or(|t| t == obj.etag) => Ok(()),
            other => Err(lock_lost(svc, execution, other.map(|(doc, _)| doc))),
        }
    }

    // ----- versions and records ---------------------------------------------------

    /// The service's state (the default when it was never deployed).
    pub async fn state(&self, svc: &ServiceRef) -> Result<State, StoreError> {
        Ok(self.read_state(svc).await?.0)
    }

    async fn read_state(&self, svc: &ServiceRef) -> Result<(State, Option<String>), StoreError> {
        let key = self.state_key(svc);
        match self.objects.get(&key).await? {
            None => Ok((State::default(), None)),
            Some(obj) => Ok((from_json(&key, &obj.body)?, Some(obj.etag))),
        }
    }

    /// Read-modify-write of `state.json` with a conditional put. `change` returns
    /// whether it changed anything; nothing is written when it did not.
    async fn update_state<F>(
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
            if let PutResult::Written(_) = self
                .objects
                .put(&key, to_json(&key, &state)?, JSON, condition)
                .await?
            {
                return Ok(state);
            }
        }
        Err(StoreError::Contended {
            key,
            attempts: MAX_ROUNDS,
        })
    }

    /// Starts a deployment of `image` by `execution`, which must hold the lock: the new
    /// version is the counter plus one, the counter is bumped and the running record
    /// is written. A retried call by the same execution gets the same version without
    /// a second bump.
    pub async fn begin(
        &self,
        svc: &ServiceRef,
        execution: &str,
        image: &str,
        started_at: i64,
    ) -> Result<Begin, StoreError> {
        svc.check()?;
        check_execution(execution)?;
        self.ensure_holder(svc, execution, None).await?;
        let mut bumped = false;
        let state = self
            .update_state(svc, started_at, |s| {
                if s.in_progress
                    .as_ref()
                    .is_some_and(|p| p.execution == execution)
                {
                    bumped = false;
                    return Ok(false);
                }
                let version =
                    s.version_counter
                        .checked_add(1)
                        .ok_or_else(|| StoreError::Corrupt {
                            key: "state.json".into(),
                            message: format!("version_counter {} cannot grow", s.version_counter),
                        })?;
                s.version_counter = version;
                s.in_progress = Some(InProgress {
                    execution: execution.to_owned(),
                    version,
                    image: image.to_owned(),
                    started_at,
                });
                bumped = true;
                Ok(true)
            })
            .await?;
        let ip = state
            .in_progress
            .clone()
            .ok_or_else(|| StoreError::Corrupt {
                key: self.state_key(svc),
                message: "no in_progress after begin".into(),
            })?;
        let record_key = self.record_key(svc, ip.version);
        let manifest_key = self.manifest_key(svc, ip.version);
        let record = Record {
            version: ip.version,
            execution: execution.to_owned(),
            image: ip.image.clone(),
            previous_version: state.stable_version,
            previous_image: state.stable_image.clone(),
            started_at: ip.started_at,
            ended_at: None,
            outcome: None,
            weight: 0,
            max_weight: 0,
            verdicts: Vec::new(),
            manifest_key: manifest_key.clone(),
            updated_at: started_at,
        };
        // A retry finds the record already there and leaves it as it is.
        self.objects
            .put(
                &record_key,
                to_json(&record_key, &record)?,
                JSON,
                PutCondition::IfAbsent,
            )
            .await?;
        if bumped {
            // An abort asked before this deployment started is not for it.
            self.objects.delete(&self.abort_key(svc)).await?;
            tracing::info!(service = %svc, execution, version = ip.version, "deployment begun");
        }
        Ok(Begin {
            canary_version: ip.version,
            stable_version: state.stable_version,
            stable_image: state.stable_image,
            record_key,
            manifest_key,
        })
    }

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

    /// The rendered manifest of `version`, if stored.
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
                .map_err(|e| StoreError::Corrupt {
                    key,
                    message: format!("not UTF-8: {e}"),
                }),
        }
    }

    /// The record of `version`, if any.
    pub async fn record(
        &self,
        svc: &ServiceRef,
        version: u32,
    ) -> Result<Option<Record>, StoreError> {
        let key = self.record_key(svc, version);
        match self.objects.get(&key).await? {
            None => Ok(None),
            Some(obj) => Ok(Some(from_json(&key, &obj.body)?)),
        }
    }

    /// Notes progress on the running record: the current weight and, when given, a
    /// verdict (a retried call with the same verdict adds it once).
    pub async fn record_progress(
        &self,
        svc: &ServiceRef,
        execution: &str,
        version: u32,
        weight: u8,
        verdict: Option<&Verdict>,
        now: i64,
    ) -> Result<Record, StoreError> {
        let key = self.record_key(svc, version);
        let mut record = self
            .record(svc, version)
            .await?
            .ok_or_else(|| StoreError::Missing {
                key: key.clone(),
                why: format!("`begin` writes it for version {version}"),
            })?;
        if record.execution != execution {
            return Err(StoreError::Invalid {
                what: "execution",
                value: execution.to_owned(),
                why: format!(
                    "version {version} belongs to execution `{}`",
                    record.execution
                ),
            });
        }
        record.weight = weight;
        record.max_weight = record.max_weight.max(weight);
        if let Some(v) = verdict {
            push_verdict(&mut record.verdicts, v.clone());
        }
        record.updated_at = now;
        self.objects
            .put(&key, to_json(&key, &record)?, JSON, PutCondition::Always)
            .await?;
        Ok(record)
    }

    /// Ends a deployment with its version promoted to stable: writes the record,
    /// updates the state, clears the abort marker and releases the lock, in that order.
    /// A retried call (the record already ended) only makes sure the lock is released.
    /// The lock must still be ours ([`StoreError::LockLost`] otherwise, and nothing is
    /// written).
    pub async fn finish_promoted(
        &self,
        svc: &ServiceRef,
        f: &Finish,
    ) -> Result<Record, StoreError> {
        self.finish(svc, f, OutcomeStatus::Promoted).await
    }

    /// Ends a deployment that was rolled back: the stable version stays; otherwise as
    /// [`DeploymentStore::finish_promoted`].
    pub async fn finish_rolled_back(
        &self,
        svc: &ServiceRef,
        f: &Finish,
    ) -> Result<Record, StoreError> {
        self.finish(svc, f, OutcomeStatus::RolledBack).await
    }

    async fn finish(
        &self,
        svc: &ServiceRef,
        f: &Finish,
        status: OutcomeStatus,
    ) -> Result<Record, StoreError> {
        svc.check()?;
        check_execution(&f.execution)?;
        let key = self.record_key(svc, f.version);
        let existing = self.record(svc, f.version).await?;
        if let Some(r) = &existing
            && r.execution == f.execution
            && r.outcome.is_some()
        {
            // Already finished: a retried call. The lock may have been taken since.
            match self
                .release_lock(svc, &f.execution, &f.lock_token, f.ended_at)
                .await
            {
                Ok(()) | Err(StoreError::LockLost { .. }) => return Ok(r.clone()),
                Err(e) => return Err(e),
            }
        }
        self.ensure_holder(svc, &f.execution, Some(&f.lock_token))
            .await?;
        let mut record = match existing {
            Some(r) if r.execution == f.execution => r,
            Some(r) => {
                return Err(StoreError::Invalid {
                    what: "execution",
                    value: f.execution.clone(),
                    why: format!(
                        "version {} belongs to execution `{}`",
                        f.version, r.execution
                    ),
                });
            }
            None => {
                let state = self.state(svc).await?;
                Record {
                    version: f.version,
                    execution: f.execution.clone(),
                    image: f.image.clone(),
                    previous_version: state.stable_version.filter(|v| *v != f.version),
                    previous_image: state.stable_image.clone(),
                    started_at: f.started_at,
                    ended_at: None,
                    outcome: None,
                    weight: 0,
                    max_weight: 0,
                    verdicts: Vec::new(),
                    manifest_key: self.manifest_key(svc, f.version),
                    updated_at: f.ended_at,
                }
            }
        };
        let image = record.image.clone();
        self.update_state(svc, f.ended_at, |s| {
            let mut changed = false;
            if status == OutcomeStatus::Promoted
                && (s.stable_version != Some(f.version)
                    || s.stable_image.as_deref() != Some(image.as_str()))
            {
                s.stable_version = Some(f.version);
                s.stable_image = Some(image.clone());
                changed = true;
            }
            if s.in_progress
                .as_ref()
                .is_some_and(|p| p.execution == f.execution)
            {
                s.in_progress = None;
                changed = true;
            }
            if s.version_counter < f.version {
                s.version_counter = f.version;
                changed = true;
            }
            Ok(changed)
        })
        .await?;
        record.ended_at = Some(f.ended_at);
        record.outcome = Some(Outcome {
            status,
            reason: f.reason.clone(),
        });
        record.max_weight = record.max_weight.max(f.max_weight);
        record.weight = if status == OutcomeStatus::Promoted {
            100
        } else {
            0
        };
        if !f.verdicts.is_empty() {
            let skip = f.verdicts.len().saturating_sub(MAX_VERDICTS);
            record.verdicts = f.verdicts[skip..].to_vec();
        }
        record.updated_at = f.ended_at;
        self.objects
            .put(&key, to_json(&key, &record)?, JSON, PutCondition::Always)
            .await?;
        self.objects.delete(&self.abort_key(svc)).await?;
        self.release_lock(svc, &f.execution, &f.lock_token, f.ended_at)
            .await?;
        tracing::info!(service = %svc, execution = %f.execution, version = f.version, ?status, "deployment finished");
        Ok(record)
    }

    /// Every record of the service, newest (highest version) first.
    pub async fn history(&self, svc: &ServiceRef) -> Result<Vec<Record>, StoreError> {
        let prefix = format!("{}history/", self.base(svc));
        let mut versions: Vec<u32> = self
            .objects
            .list(&prefix)
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix)?.strip_suffix(".json")?.parse().ok())
            .collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            if let Some(r) = self.record(svc, v).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

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

    // ----- abort ----------------------------------------------------------------

    /// Asks the running deployment to roll back at its next health check.
    pub async fn request_abort(&self, svc: &ServiceRef, abort: &Abort) -> Result<(), StoreError> {
        svc.check()?;
        let key = self.abort_key(svc);
        self.objects
            .put(&key, to_json(&key, abort)?, JSON, PutCondition::Always)
            .await?;
        Ok(())
    }

    /// The pending abort request, if any.
    pub async fn abort_requested(&self, svc: &ServiceRef) -> Result<Option<Abort>, StoreError> {
        let key = self.abort_key(svc);
        match self.objects.get(&key).await? {
            None => Ok(None),
            Some(obj) => Ok(Some(from_json(&key, &obj.body)?)),
        }
    }

    /// Removes the abort request (the finish calls do this).
    pub async fn clear_abort(&self, svc: &ServiceRef) -> Result<(), StoreError> {
        self.objects.delete(&self.abort_key(svc)).await
    }
}

fn push_verdict(verdicts: &mut Vec<Verdict>, v: Verdict) {
    if verdicts.last() == Some(&v) {
        return;
    }
    verdicts.push(v);
    let extra = verdicts.len().saturating_sub(MAX_VERDICTS);
    verdicts.drain(..extra);
}

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

fn check_execution(execution: &str) -> Result<(), StoreError> {
    if execution.trim().is_empty() {
        return Err(StoreError::Invalid {
            what: "execution",
            value: execution.to_owned(),
            why: "must not be empty".into(),
        });
    }
    Ok(())
}

fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{nanos:x}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn to_json<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(value).map_err(|e| StoreError::Invalid {
        what: "document",
        value: key.to_owned(),
        why: e.to_string(),
    })
}

fn from_json<T: DeserializeOwned>(key: &str, body: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(body).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        message: e.to_string(),
    })
}
