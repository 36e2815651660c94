//! Recovery of a service whose deployment ended without finishing: the execution was
//! stopped (StopExecution, Ctrl-C that could not finish, a killed terminal), timed out,
//! or failed after taking the lock, or was unlocked under it. [`recover`] restores the
//! service from the records alone (the orphaned version's stored manifest names its
//! route and its kinds): all traffic back on the recorded stable version and the
//! orphan's objects removed (a stopped first deployment removed entirely), the orphan's
//! record ended "recovered from <execution>: stopped at 40%", `state.json` cleared, and
//! the lock released, and "Canary Recovered" notified. What to do is
//! `canary_core::decide::recovery`.
//!
//! Who calls it: the rollback function (the state machine's `RecoverService` state after
//! render-template found an ended holder, and the shared stack's EventBridge rule when an
//! execution ends ABORTED or TIMED_OUT), and `canary recover`. It takes the lock first
//! (over from the ended holder, with a conditional write on what it read), so two
//! recoveries never both act, and it refuses a holder that still runs. Idempotent: a
//! retried recovery finds the route on the stable version, the objects gone and the
//! record ended.

use std::time::Duration;

use canary_core::ErrorName;
use canary_core::decide::recovery::{HolderState, RecoveryFacts, RecoveryPlan, recovered_reason};
use canary_core::execution::{OutcomeStatus, RouteRef};
use canary_core::labels::versioned_name;
use canary_core::notify::{Decision, Progress};
use canary_core::provider::{Target, TrafficProvider};
use canary_core::spec::DEFAULT_ROUTE_CONFIRM_TIMEOUT;
use canary_kube::{Cluster, router_for};
use canary_store::{InProgress, LockInfo, RecoveredEnd, ServiceRef, TakeLock};
use serde::Serialize;
use serde_json::Value;

use crate::actions::manifest_objects;
use crate::holders::holder_state;
use crate::{HandlerError, Services};

/// What to recover, and who does it.
#[derive(Debug, Clone)]
pub struct RecoverRequest {
    /// The service.
    pub svc: ServiceRef,
    /// Who recovers: the lock's holder while it does (the next deployment's execution,
    /// `recovery of <execution>`, `canary recover by <who>`).
    pub by: String,
    /// An execution known to have ended (the EventBridge event's): recover only what it
    /// left (its lock, or its deployment in `state.json`), nothing else.
    pub ended: Option<Ended>,
    /// Take the lock from any holder, running or not (`canary recover --force`).
    pub force: bool,
    /// The kinds of the template being deployed now, when there is one: removed too,
    /// beside those of the orphan's stored manifest.
    pub current_kinds: Vec<(String, String)>,
}

/// An execution known to have ended, and how it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The execution.
    pub execution: String,
    /// How it is known ("Step Functions says ABORTED").
    pub how: String,
}

/// What a recovery did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "recovery", rename_all = "snake_case")]
pub enum Recovery {
    /// Nothing was left behind: the lock was free (or held by someone else, for an
    /// ended execution's event) and no deployment was in progress.
    NothingToRecover {
        /// Why.
        why: String,
    },
    /// An ended execution held the lock without a deployment in progress: the lock was
    /// released.
    LockReleased {
        /// The execution.
        execution: String,
        /// How its end was known.
        how: String,
    },
    /// A deployment was recovered.
    Recovered {
        /// The execution that left it.
        execution: String,
        /// Its version.
        version: u32,
        /// How its record ends: rolled back, or promoted (stopped in its cleanup).
        status: OutcomeStatus,
        /// The record's reason.
        reason: String,
    },
}

impl Recovery {
    /// One line for a person.
    pub fn describe(&self, svc: &ServiceRef) -> String {
        match self {
            Self::NothingToRecover { why } => format!("{svc}: nothing to recover: {why}"),
            Self::LockReleased { execution, how } => format!(
                "{svc}: execution {execution} had ended ({how}) holding the lock with no deployment in progress; the lock is released"
            ),
            Self::Recovered { reason, .. } => format!("{svc}: {reason}; the lock is released"),
        }
    }
}

/// Restores the service `req` names (see the module docs). A lock held by an execution
/// that still runs (or may: not knowing counts as running) is `ServiceLocked` without
/// `force`, and nothing is touched.
pub async fn recover(services: &Services, req: &RecoverRequest) -> Result<Recovery, HandlerError> {
    let store = &services.store;
    let svc = &req.svc;
    let lock = store.lock(svc).await?;
    let state = store.state(svc).await?;

    // Whose lock is it, and may it be taken?
    let mut taken_from: Option<Ended> = None;
    match &lock {
        Some(l) if l.execution == req.by => {}
        Some(l) => {
            let how = match &req.ended {
                Some(e) if e.execution == l.execution => e.how.clone(),
                Some(e) => {
                    return Ok(Recovery::NothingToRecover {
                        why: format!(
                            "execution `{}` no longer holds the lock: `{}` does (it is not this recovery's to restore)",
                            e.execution, l.execution
                        ),
                    });
                }
                None => match holder_state(services, l).await {
                    HolderState::Ended { how } => how,
                    HolderState::Running { why } if req.force => {
                        format!("taken by force although {why}")
                    }
                    HolderState::Running { why } => {
                        return Err(still_running(svc, l, &why));
                    }
                },
            };
            taken_from = Some(Ended {
                execution: l.execution.clone(),
                how,
            });
        }
        None => {
            let orphan_of_ended = match (&req.ended, &state.in_progress) {
                (Some(e), Some(p)) => p.execution == e.execution,
                (None, Some(_)) => true,
                (_, None) => false,
            };
            if !orphan_of_ended {
                let why = match (&req.ended, &state.in_progress) {
                    (Some(e), Some(p)) => format!(
                        "execution `{}` holds no lock and the deployment in progress is `{}`'s",
                        e.execution, p.execution
                    ),
                    _ => "the lock is free and no deployment is in progress".to_owned(),
                };
                return Ok(Recovery::NothingToRecover { why });
            }
        }
    }

    let now = services.clock.now_secs();
    let held = store
        .take_lock_as(
            svc,
            &TakeLock {
                execution: &req.by,
                now,
                lease_secs: services.holders.lease_secs,
                replacing: taken_from.as_ref().map(|e| e.execution.as_str()),
            },
        )
        .await?;
    let result = restore_under_lock(services, req, &held, taken_from.as_ref()).await;
    // Whatever happened, the lock is not left with a recovery that has stopped: a
    // failed one leaves the orphan in `state.json` for the next try.
    if let Err(e) = store
        .release_lock(svc, &req.by, &held.token, services.clock.now_secs())
        .await
    {
        tracing::error!(error = %e, "could not release the lock after a recovery");
        if result.is_ok() {
            return Err(e.into());
        }
    }
    result
}

/// The work once the lock is held: read the orphan again (under the lock), restore the
/// cluster, end the record.
async fn restore_under_lock(
    services: &Services,
    req: &RecoverRequest,
    held: &LockInfo,
    taken_from: Option<&Ended>,
) -> Result<Recovery, HandlerError> {
    let store = &services.store;
    let svc = &req.svc;
    let state = store.state(svc).await?;
    let Some(orphan) = state.in_progress.clone() else {
        return Ok(match taken_from {
            Some(e) => Recovery::LockReleased {
                execution: e.execution.clone(),
                how: e.how.clone(),
            },
            None => Recovery::NothingToRecover {
                why: "no deployment is in progress".into(),
            },
        });
    };
    let weight = store
        .record(svc, orphan.version)
        .await?
        .map_or(0, |r| r.weight);
    let objects = manifest_objects(store, svc, orphan.version).await?;
    let mut facts = RecoveryFacts {
        stable: state.stable_version,
        orphan: orphan.version,
        weight,
        applied: objects.is_some(),
        stable_alive: false,
        orphan_alive: false,
    };
    let how = taken_from
        .map(|e| e.how.clone())
        .or_else(|| req.ended.as_ref().map(|e| e.how.clone()));
    let plan = match objects {
        None => RecoveryPlan::choose(&facts)?,
        Some(objects) => {
            let cluster = services
                .clusters
                .connect(&svc.cluster, &svc.namespace)
                .await?
                .with_clock(services.clock.clone());
            // The fence: this recovery still holds the lock.
            store.ensure_lock_held(svc, &req.by, &held.token).await?;
            if let Some(stable) = facts.stable {
                facts.stable_alive = has_deployment(&cluster, svc, stable).await?;
            }
            facts.orphan_alive = has_deployment(&cluster, svc, orphan.version).await?;
            let plan = RecoveryPlan::choose(&facts)?;
            restore_cluster(&cluster, svc, &orphan, plan, &objects, &req.current_kinds).await?;
            plan
        }
    };
    let reason = recovered_reason(
        &svc.service,
        &orphan.execution,
        &facts,
        plan,
        how.as_deref(),
    );
    let status = if plan.promotes() {
        OutcomeStatus::Promoted
    } else {
        OutcomeStatus::RolledBack
    };
    let record = store
        .finish_recovered(
            svc,
            &RecoveredEnd {
                holder: &req.by,
                token: &held.token,
                orphan: &orphan,
                status,
                reason: &reason,
                now: services.clock.now_secs(),
            },
        )
        .await?;
    let outcome = record.outcome.unwrap_or(canary_core::Outcome {
        status,
        reason: reason.clone(),
    });
    tracing::warn!(service = %svc, orphan = %orphan.execution, version = orphan.version, reason = %outcome.reason, "recovered");
    let progress = Progress {
        execution: &orphan.execution,
        canary_version: orphan.version,
        stable_version: state.stable_version,
        schedule: &[],
        step: 0,
        checks: 0,
        weight,
        max_weight: weight,
        verdict: None,
        outcome_reason: Some(&outcome.reason),
    };
    let decision = Decision::Recovered {
        reason: outcome.reason.clone(),
    };
    crate::notify::notify_progress(services, svc, &progress, decision).await;
    Ok(Recovery::Recovered {
        execution: orphan.execution,
        version: orphan.version,
        status: outcome.status,
        reason: outcome.reason,
    })
}

/// Carries out `plan` in the cluster: one route write, then the removal.
async fn restore_cluster(
    cluster: &Cluster,
    svc: &ServiceRef,
    orphan: &InProgress,
    plan: RecoveryPlan,
    objects: &[Value],
    current_kinds: &[(String, String)],
) -> Result<(), HandlerError> {
    let mut kinds = current_kinds.to_vec();
    for (a, k) in kinds_of(objects) {
        if !kinds.contains(&(a.clone(), k.clone())) {
            kinds.push((a, k));
        }
    }
    let ns = &svc.namespace;
    let (keep, remove) = match plan {
        RecoveryPlan::NothingToUndo => return Ok(()),
        RecoveryPlan::RemoveFirst => {
            cluster.delete_service(ns, &svc.service, &kinds).await?;
            return Ok(());
        }
        RecoveryPlan::BackToStable { stable } => (stable, orphan.version),
        RecoveryPlan::CompletePromotion { stable } => (orphan.version, stable),
    };
    if let Some((provider, route)) = route_of(objects) {
        // The route is shared: the stable version's deployment made it, so it exists
        // unless someone removed it by hand, and then there is nothing to rewrite.
        if cluster
            .get(&route.api_version, &route.kind, ns, &route.name)
            .await?
            .is_some()
        {
            // The records keep no deploy.json options: the default confirm timeout.
            router_for(
                provider,
                cluster.clone(),
                ns,
                Duration::from_secs(DEFAULT_ROUTE_CONFIRM_TIMEOUT),
            )
            .set_weights(
                &route,
                &[Target::new(versioned_name(&svc.service, keep), 100)],
            )
            .await?;
        }
    }
    cluster
        .delete_version(ns, &svc.service, remove, &kinds)
        .await?;
    Ok(())
}

/// Whether `version` of the service has a Deployment.
async fn has_deployment(
    cluster: &Cluster,
    svc: &ServiceRef,
    version: u32,
) -> Result<bool, HandlerError> {
    Ok(cluster
        .get(
            "apps/v1",
            "Deployment",
            &svc.namespace,
            &versioned_name(&svc.service, version),
        )
        .await?
        .is_some())
}

/// The route object among a manifest's objects, and its provider.
fn route_of(objects: &[Value]) -> Option<(TrafficProvider, RouteRef)> {
    objects.iter().find_map(|o| {
        let provider = TrafficProvider::of_object(o)?;
        Some((
            provider,
            RouteRef {
                api_version: o["apiVersion"].as_str()?.to_owned(),
                kind: o["kind"].as_str()?.to_owned(),
                name: o["metadata"]["name"].as_str()?.to_owned(),
            },
        ))
    })
}

/// The `(apiVersion, kind)` pairs of a manifest's objects, each once.
pub(crate) fn kinds_of(objects: &[Value]) -> Vec<(String, String)> {
    let mut kinds = Vec::new();
    for d in objects {
        if let (Some(a), Some(k)) = (d["apiVersion"].as_str(), d["kind"].as_str()) {
            let pair = (a.to_owned(), k.to_owned());
            if !kinds.contains(&pair) {
                kinds.push(pair);
            }
        }
    }
    kinds
}

/// `ServiceLocked`: the holder still runs (or may).
fn still_running(svc: &ServiceRef, lock: &LockInfo, why: &str) -> HandlerError {
    HandlerError::new(
        ErrorName::ServiceLocked,
        format!(
            "service `{svc}` is locked by execution `{}` since {}, and {why}: it is not recovered while it may still run (stop it, wait for its lease to run out, or `canary recover --force` once you know it has ended)",
            lock.execution, lock.since
        ),
    )
}

impl From<canary_core::decide::NoSafeVersion> for HandlerError {
    fn from(e: canary_core::decide::NoSafeVersion) -> Self {
        Self::caused_by(ErrorName::KubeError, e)
    }
}
