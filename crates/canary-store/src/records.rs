//! The history of deployments (`history/<version>.json`, one [`Record`] per version):
//! `begin` counts a new version and writes its record, `record_progress` notes each
//! shift and check, `finish_*` end it (record, state, abort marker, lock), `history`
//! lists them.

use canary_core::{GateWait, OperatorAction, Outcome, OutcomeStatus, Verdict};
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::objects::PutCondition;
use crate::service::{ServiceRef, check_execution};
use crate::state::{InProgress, State};
use crate::store::DeploymentStore;

/// How many verdicts a record keeps (the last ones).
pub const MAX_VERDICTS: usize = 10;

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
    /// The gate the deployment waits at now, if it waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateWait>,
    /// What people did (approve, promote, abort) and what gates did (paused, timed
    /// out), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator: Vec<OperatorAction>,
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

/// The end of a stopped deployment, for [`DeploymentStore::finish_recovered`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecoveredEnd<'a> {
    /// Who recovers: the lock's holder now.
    pub holder: &'a str,
    /// Its lock token.
    pub token: &'a str,
    /// The deployment `state.json` says was in progress.
    pub orphan: &'a InProgress,
    /// Rolled back (the stable version serves again), or promoted (its cleanup had
    /// already removed the stable version).
    pub status: OutcomeStatus,
    /// One sentence: "recovered from <execution>: stopped at 40% ...".
    pub reason: &'a str,
    /// Unix seconds.
    pub now: i64,
}

impl Record {
    /// The record of a deployment that starts now: nothing shifted, no verdict yet.
    fn started(
        version: u32,
        execution: &str,
        image: &str,
        stable: &State,
        started_at: i64,
        manifest_key: String,
    ) -> Self {
        Self {
            version,
            execution: execution.to_owned(),
            image: image.to_owned(),
            previous_version: stable.stable_version,
            previous_image: stable.stable_image.clone(),
            started_at,
            ended_at: None,
            outcome: None,
            weight: 0,
            max_weight: 0,
            verdicts: Vec::new(),
            manifest_key,
            updated_at: started_at,
            gate: None,
            operator: Vec::new(),
        }
    }

    /// Ends the record with `status` as `f` says.
    fn end(&mut self, f: &Finish, status: OutcomeStatus) {
        self.ended_at = Some(f.ended_at);
        self.gate = None;
        self.outcome = Some(Outcome {
            status,
            reason: f.reason.clone(),
        });
        self.max_weight = self.max_weight.max(f.max_weight);
        self.weight = if status == OutcomeStatus::Promoted {
            100
        } else {
            0
        };
        if !f.verdicts.is_empty() {
            let skip = f.verdicts.len().saturating_sub(MAX_VERDICTS);
            self.verdicts = f.verdicts[skip..].to_vec();
        }
        self.updated_at = f.ended_at;
    }
}

impl DeploymentStore {
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
        let state_key = self.state_key(svc);
        let mut bumped = false;
        let state = self
            .update_state(svc, started_at, |s| {
                bumped = false;
                if s.in_progress
                    .as_ref()
                    .is_some_and(|p| p.execution == execution)
                {
                    return Ok(false);
                }
                let version =
                    s.version_counter
                        .checked_add(1)
                        .ok_or_else(|| StoreError::Inconsistent {
                            key: state_key.clone(),
                            problem: format!("version_counter {} cannot grow", s.version_counter),
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
            .ok_or_else(|| StoreError::Inconsistent {
                key: state_key.clone(),
                problem: "no in_progress after begin".into(),
            })?;
        let record_key = self.record_key(svc, ip.version);
        let manifest_key = self.manifest_key(svc, ip.version);
        let record = Record::started(
            ip.version,
            execution,
            &ip.image,
            &state,
            ip.started_at,
            manifest_key.clone(),
        );
        // A retry finds the record already there and leaves it as it is.
        self.write_json(&record_key, &record, PutCondition::IfAbsent)
            .await?;
        if bumped {
            // An abort asked before this deployment started is not for it.
            self.clear_requests(svc).await?;
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

    /// The record of `version`, if any; a corrupt one is an error naming its key.
    pub async fn record(
        &self,
        svc: &ServiceRef,
        version: u32,
    ) -> Result<Option<Record>, StoreError> {
        Ok(self
            .read_json(&self.record_key(svc, version))
            .await?
            .map(|(record, _)| record))
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
        self.update_record(svc, execution, version, now, |record| {
            record.weight = weight;
            record.max_weight = record.max_weight.max(weight);
            if let Some(v) = verdict {
                push_verdict(&mut record.verdicts, v.clone());
            }
        })
        .await
    }

    /// Notes a health check with what it did at a gate: the verdict, the gate waiting
    /// now (`None`: none), and the actions (paused, approved, promoted, timed out,
    /// aborted) appended to the record's `operator`.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_check(
        &self,
        svc: &ServiceRef,
        execution: &str,
        version: u32,
        verdict: &Verdict,
        gate: Option<&GateWait>,
        actions: &[OperatorAction],
        now: i64,
    ) -> Result<Record, StoreError> {
        self.update_record(svc, execution, version, now, |record| {
            push_verdict(&mut record.verdicts, verdict.clone());
            record.gate = gate.cloned();
            for a in actions {
                if !record.operator.contains(a) {
                    record.operator.push(a.clone());
                }
            }
        })
        .await
    }

    /// Reads the record of `version`, which `execution` must own, changes it and writes
    /// it back.
    async fn update_record(
        &self,
        svc: &ServiceRef,
        execution: &str,
        version: u32,
        now: i64,
        change: impl FnOnce(&mut Record),
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
            return Err(not_its_version(execution, version, &record));
        }
        change(&mut record);
        record.updated_at = now;
        self.write_json(&key, &record, PutCondition::Always).await?;
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
        let existing = self.record(svc, f.version).await?;
        if let Some(r) = &existing
            && r.execution == f.execution
            && r.outcome.is_some()
        {
            // Already finished: a retried call. The lock may have been taken since.
            return match self
                .release_lock(svc, &f.execution, &f.lock_token, f.ended_at)
                .await
            {
                Ok(()) | Err(StoreError::LockLost { .. }) => Ok(r.clone()),
                Err(e) => Err(e),
            };
        }
        self.ensure_holder(svc, &f.execution, Some(&f.lock_token))
            .await?;
        let mut record = match existing {
            Some(r) if r.execution == f.execution => r,
            Some(r) => return Err(not_its_version(&f.execution, f.version, &r)),
            None => {
                let state = self.state(svc).await?;
                let mut r = Record::started(
                    f.version,
                    &f.execution,
                    &f.image,
                    &state,
                    f.started_at,
                    self.manifest_key(svc, f.version),
                );
                r.previous_version = r.previous_version.filter(|v| *v != f.version);
                r.updated_at = f.ended_at;
                r
            }
        };
        let image = record.image.clone();
        self.update_state(svc, f.ended_at, |s| Ok(end_state(s, f, status, &image)))
            .await?;
        record.end(f, status);
        let key = self.record_key(svc, f.version);
        self.write_json(&key, &record, PutCondition::Always).await?;
        self.clear_requests(svc).await?;
        self.release_lock(svc, &f.execution, &f.lock_token, f.ended_at)
            .await?;
        tracing::info!(service = %svc, execution = %f.execution, version = f.version, ?status, "deployment finished");
        Ok(record)
    }

    /// Ends the deployment of an execution that stopped without finishing (recovery):
    /// `end.orphan` is what `state.json` remembered of it. `end.holder` must hold the
    /// lock with `end.token` (the recovery took it over); the lock is left to the caller. The
    /// orphan's record is ended with `status` and `reason` (written first, so that a
    /// retry finds it), then `state.json` forgets it (a promotion makes it stable). A
    /// record that already has an outcome is left as it is: a retried recovery.
    pub async fn finish_recovered(
        &self,
        svc: &ServiceRef,
        end: &RecoveredEnd<'_>,
    ) -> Result<Record, StoreError> {
        let RecoveredEnd {
            holder,
            token,
            orphan,
            status,
            reason,
            now,
        } = *end;
        svc.check()?;
        self.ensure_holder(svc, holder, Some(token)).await?;
        let key = self.record_key(svc, orphan.version);
        let record = match self.record(svc, orphan.version).await? {
            Some(r) if r.execution != orphan.execution => {
                return Err(StoreError::Inconsistent {
                    key,
                    problem: format!(
                        "state.json says execution `{}` deploys version {}, but its record belongs to `{}`",
                        orphan.execution, orphan.version, r.execution
                    ),
                });
            }
            Some(r) if r.outcome.is_some() => r,
            existing => {
                let mut r = match existing {
                    Some(r) => r,
                    None => {
                        let state = self.state(svc).await?;
                        let mut r = Record::started(
                            orphan.version,
                            &orphan.execution,
                            &orphan.image,
                            &state,
                            orphan.started_at,
                            self.manifest_key(svc, orphan.version),
                        );
                        r.previous_version = r.previous_version.filter(|v| *v != orphan.version);
                        r
                    }
                };
                let f = Finish {
                    execution: orphan.execution.clone(),
                    lock_token: token.to_owned(),
                    version: orphan.version,
                    image: orphan.image.clone(),
                    started_at: orphan.started_at,
                    ended_at: now,
                    max_weight: r.max_weight,
                    verdicts: Vec::new(),
                    reason: reason.to_owned(),
                };
                r.end(&f, status);
                self.write_json(&key, &r, PutCondition::Always).await?;
                r
            }
        };
        let f = Finish {
            execution: orphan.execution.clone(),
            lock_token: token.to_owned(),
            version: orphan.version,
            image: record.image.clone(),
            started_at: orphan.started_at,
            ended_at: now,
            max_weight: record.max_weight,
            verdicts: Vec::new(),
            reason: reason.to_owned(),
        };
        let ended = record.outcome.as_ref().map_or(status, |o| o.status);
        let image = record.image.clone();
        self.update_state(svc, now, |s| Ok(end_state(s, &f, ended, &image)))
            .await?;
        self.clear_requests(svc).await?;
        tracing::info!(service = %svc, orphan = %orphan.execution, version = orphan.version, by = holder, ?ended, "stopped deployment recovered");
        Ok(record)
    }

    /// Every record of the service, newest (highest version) first. A key under
    /// `history/` that is not `<version>.json`, or a record that is listed but cannot
    /// be read, is an error naming the key.
    pub async fn history(&self, svc: &ServiceRef) -> Result<Vec<Record>, StoreError> {
        let prefix = self.history_prefix(svc);
        let mut versions = Vec::new();
        for key in self.objects.list(&prefix).await? {
            let version = key
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".json"))
                .and_then(|v| v.parse::<u32>().ok())
                .ok_or_else(|| StoreError::Inconsistent {
                    key: key.clone(),
                    problem: format!("only `{prefix}<version>.json` records belong here"),
                })?;
            versions.push(version);
        }
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            let record = self
                .record(svc, v)
                .await?
                .ok_or_else(|| StoreError::Missing {
                    key: self.record_key(svc, v),
                    why: "it was listed a moment ago, and records are never deleted".into(),
                })?;
            out.push(record);
        }
        Ok(out)
    }
}

/// The state after a deployment of `image` ended with `status`: a promotion makes it
/// stable, the deployment is no longer in progress, and the counter is at least its
/// version. Returns whether anything changed.
fn end_state(s: &mut State, f: &Finish, status: OutcomeStatus, image: &str) -> bool {
    let mut changed = false;
    if status == OutcomeStatus::Promoted
        && (s.stable_version != Some(f.version) || s.stable_image.as_deref() != Some(image))
    {
        s.stable_version = Some(f.version);
        s.stable_image = Some(image.to_owned());
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
    changed
}

/// `execution` asked about a version that another execution deployed.
fn not_its_version(execution: &str, version: u32, record: &Record) -> StoreError {
    StoreError::Invalid {
        what: "execution",
        value: execution.to_owned(),
        why: format!(
            "version {version} belongs to execution `{}`",
            record.execution
        ),
    }
}

/// Appends a verdict unless it repeats the last one (a retried call); keeps the last
/// [`MAX_VERDICTS`].
fn push_verdict(verdicts: &mut Vec<Verdict>, v: Verdict) {
    if verdicts.last() == Some(&v) {
        return;
    }
    verdicts.push(v);
    let extra = verdicts.len().saturating_sub(MAX_VERDICTS);
    verdicts.drain(..extra);
}
