//! Recovery of a service whose deployment ended without finishing (the execution was
//! stopped, timed out, failed after taking the lock, or was unlocked under it): is the
//! lock's holder still running, what restores the service, and the sentence the
//! orphaned deployment's record keeps ("recovered from <execution>: stopped at 40%").
//!
//! The rule: the recorded stable version gets all traffic back and the orphaned
//! version's objects go; a stopped first deployment is removed entirely. Recovery never
//! deletes the stable version and never routes to the orphan — with one exception that
//! the orphan's own record justifies: stopped in its cleanup (at 100%, every check
//! passed) after the stable version's Deployment was already removed, the promotion is
//! completed, as the rollback task does (routing to a removed version is an outage).

use crate::labels::versioned_name;

/// What the process that ran an execution says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionState {
    /// It runs.
    Running {
        /// Who says so, as a clause ("Step Functions says it is RUNNING").
        why: String,
    },
    /// It has ended.
    Ended {
        /// How, and who says so, as a clause ("Step Functions says ABORTED").
        how: String,
    },
    /// Nobody can tell (not an execution this process can look up, or the lookup
    /// failed): treated as running, so nothing is taken from it.
    Unknown {
        /// Why not.
        why: String,
    },
}

/// Whether a lock's holder still runs, and how that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HolderState {
    /// It runs (or may: see the reason): its lock is left alone.
    Running {
        /// How that is known, as a clause ("its lease runs for 40 s more").
        why: String,
    },
    /// It has ended: its lock may be taken over and its deployment recovered.
    Ended {
        /// How that is known ("its lease ran out 75 s ago", "Step Functions says
        /// ABORTED").
        how: String,
    },
}

impl HolderState {
    /// Whether the holder has ended.
    pub fn has_ended(&self) -> bool {
        matches!(self, Self::Ended { .. })
    }
}

/// Whether the process that ran the holder must be asked: only a holder without a
/// lease (a lease alone decides).
pub fn needs_lookup(expires_at: Option<i64>) -> bool {
    expires_at.is_none()
}

/// Whether a lock's holder still runs at `now`: a lease decides by itself (a terminal's
/// `canary run` renews it while it runs); without one, what the execution's process
/// said (`looked_up`) decides, and not knowing counts as running.
pub fn holder_state(
    expires_at: Option<i64>,
    now: i64,
    looked_up: Option<&ExecutionState>,
) -> HolderState {
    if let Some(end) = expires_at {
        return if end <= now {
            HolderState::Ended {
                how: format!("its lease ran out {} s ago", now - end),
            }
        } else {
            HolderState::Running {
                why: format!("its lease runs for {} s more", end - now),
            }
        };
    }
    match looked_up {
        Some(ExecutionState::Running { why }) => HolderState::Running { why: why.clone() },
        Some(ExecutionState::Ended { how }) => HolderState::Ended { how: how.clone() },
        Some(ExecutionState::Unknown { why }) => HolderState::Running {
            why: format!("whether it still runs is unknown ({why})"),
        },
        None => HolderState::Running {
            why: "it has no lease and nobody was asked whether it still runs".into(),
        },
    }
}

/// What is known of the service when it is recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryFacts {
    /// The recorded stable version (`None`: the orphan was a first deployment).
    pub stable: Option<u32>,
    /// The orphaned version (`state.json`'s `in_progress`).
    pub orphan: u32,
    /// Its weight when it stopped (its record's progress).
    pub weight: u8,
    /// Whether its manifest was stored (render-template stores it before anything is
    /// applied: without it, nothing of the orphan reached the cluster).
    pub applied: bool,
    /// Whether the stable version's Deployment exists.
    pub stable_alive: bool,
    /// Whether the orphan's Deployment exists.
    pub orphan_alive: bool,
}

/// What recovery does to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryPlan {
    /// Nothing of the orphan reached the cluster: only the records change.
    NothingToUndo,
    /// All traffic to `stable` (one route write), the orphan's objects removed.
    BackToStable {
        /// The stable version.
        stable: u32,
    },
    /// A stopped first deployment: every object of the service removed.
    RemoveFirst,
    /// Stopped in its cleanup at 100% after `stable`'s Deployment was removed: the
    /// orphan keeps all traffic, what is left of `stable` is removed, and it is
    /// promoted.
    CompletePromotion {
        /// The removed stable version.
        stable: u32,
    },
}

impl RecoveryPlan {
    /// The plan for `f`; [`NoSafeVersion`] when the stable version's Deployment is gone
    /// and the orphan had not passed its checks at 100% (a person must choose).
    pub fn choose(f: &RecoveryFacts) -> Result<Self, NoSafeVersion> {
        if !f.applied || f.stable == Some(f.orphan) {
            return Ok(Self::NothingToUndo);
        }
        match f.stable {
            None => Ok(Self::RemoveFirst),
            Some(stable) if f.stable_alive => Ok(Self::BackToStable { stable }),
            Some(stable) if f.weight == 100 && f.orphan_alive => {
                Ok(Self::CompletePromotion { stable })
            }
            Some(stable) => Err(NoSafeVersion {
                stable,
                orphan: f.orphan,
                weight: f.weight,
            }),
        }
    }

    /// Whether the orphan ends promoted (else rolled back).
    pub fn promotes(self) -> bool {
        matches!(self, Self::CompletePromotion { .. })
    }
}

/// The stable version's Deployment is gone and the orphan had not passed its checks:
/// neither is safe to send traffic to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the stable version {stable} has no Deployment, and version {orphan} stopped at {weight}% before passing its checks: neither is safe to send all traffic to; restore a version by hand (`canary status` shows the records)"
)]
pub struct NoSafeVersion {
    /// The recorded stable version.
    pub stable: u32,
    /// The orphaned version.
    pub orphan: u32,
    /// Its weight when it stopped.
    pub weight: u8,
}

/// The orphaned record's reason: "recovered from <execution>: stopped at <weight>%",
/// what was done, and how the execution's end was known (when it was).
pub fn recovered_reason(
    service: &str,
    execution: &str,
    f: &RecoveryFacts,
    plan: RecoveryPlan,
    how: Option<&str>,
) -> String {
    let orphan = versioned_name(service, f.orphan);
    let done = match plan {
        RecoveryPlan::NothingToUndo => "nothing of it had reached the cluster".to_owned(),
        RecoveryPlan::BackToStable { stable } => format!(
            "all traffic back on {}, {orphan} removed",
            versioned_name(service, stable)
        ),
        RecoveryPlan::RemoveFirst => format!("{orphan} (a first deployment) removed"),
        RecoveryPlan::CompletePromotion { stable } => format!(
            "{} was already removed by its cleanup, so {orphan} keeps all traffic and the promotion was completed",
            versioned_name(service, stable)
        ),
    };
    let how = how.map(|h| format!(" ({h})")).unwrap_or_default();
    format!(
        "recovered from {execution}: stopped at {}%; {done}{how}",
        f.weight
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(stable: Option<u32>, weight: u8) -> RecoveryFacts {
        RecoveryFacts {
            stable,
            orphan: 2,
            weight,
            applied: true,
            stable_alive: stable.is_some(),
            orphan_alive: true,
        }
    }

    #[test]
    fn a_lease_decides_alone_and_without_one_the_lookup_does() {
        let ended = ExecutionState::Ended {
            how: "Step Functions says ABORTED".into(),
        };
        let running = ExecutionState::Running {
            why: "Step Functions says it is RUNNING".into(),
        };
        // A lease that ran out ends the holder whatever a lookup says.
        assert_eq!(
            holder_state(Some(100), 175, Some(&running)),
            HolderState::Ended {
                how: "its lease ran out 75 s ago".into()
            }
        );
        assert!(holder_state(Some(100), 100, None).has_ended());
        assert!(!holder_state(Some(100), 99, Some(&ended)).has_ended());
        assert!(!needs_lookup(Some(100)));
        assert!(needs_lookup(None));
        assert_eq!(
            holder_state(None, 0, Some(&ended)),
            HolderState::Ended {
                how: "Step Functions says ABORTED".into()
            }
        );
        assert!(!holder_state(None, 0, Some(&running)).has_ended());
        let unknown = ExecutionState::Unknown {
            why: "AccessDenied".into(),
        };
        match holder_state(None, 0, Some(&unknown)) {
            HolderState::Running { why } => assert!(why.contains("AccessDenied"), "{why}"),
            other => panic!("not knowing must count as running: {other:?}"),
        }
        assert!(!holder_state(None, 0, None).has_ended());
    }

    #[test]
    fn recovery_goes_back_to_stable_removes_a_first_deployment_or_does_nothing() {
        assert_eq!(
            RecoveryPlan::choose(&facts(Some(1), 30)),
            Ok(RecoveryPlan::BackToStable { stable: 1 })
        );
        assert_eq!(
            RecoveryPlan::choose(&facts(None, 100)),
            Ok(RecoveryPlan::RemoveFirst)
        );
        let mut f = facts(Some(1), 30);
        f.applied = false;
        assert_eq!(RecoveryPlan::choose(&f), Ok(RecoveryPlan::NothingToUndo));
        // The orphan's own Deployment being gone changes nothing: stable still serves.
        let mut f = facts(Some(1), 30);
        f.orphan_alive = false;
        assert_eq!(
            RecoveryPlan::choose(&f),
            Ok(RecoveryPlan::BackToStable { stable: 1 })
        );
        assert!(!RecoveryPlan::BackToStable { stable: 1 }.promotes());
    }

    #[test]
    fn without_a_stable_deployment_only_a_canary_that_reached_100_is_kept() {
        let mut f = facts(Some(1), 100);
        f.stable_alive = false;
        let plan = RecoveryPlan::choose(&f);
        assert_eq!(plan, Ok(RecoveryPlan::CompletePromotion { stable: 1 }));
        assert!(plan.is_ok_and(RecoveryPlan::promotes));
        // Below 100% it never routes to the orphan.
        f.weight = 40;
        let e = RecoveryPlan::choose(&f).unwrap_err();
        assert_eq!(
            e,
            NoSafeVersion {
                stable: 1,
                orphan: 2,
                weight: 40
            }
        );
        assert!(e.to_string().contains("stopped at 40%"), "{e}");
        // At 100% but with its own Deployment gone: nothing can serve either.
        f.weight = 100;
        f.orphan_alive = false;
        assert!(RecoveryPlan::choose(&f).is_err());
    }

    #[test]
    fn the_reason_says_from_which_execution_at_which_weight_and_what_was_done() {
        let f = facts(Some(1), 40);
        let plan = RecoveryPlan::BackToStable { stable: 1 };
        assert_eq!(
            recovered_reason(
                "web",
                "arn:x:exec-7",
                &f,
                plan,
                Some("Step Functions says ABORTED")
            ),
            "recovered from arn:x:exec-7: stopped at 40%; all traffic back on web-1, web-2 removed (Step Functions says ABORTED)"
        );
        assert_eq!(
            recovered_reason(
                "web",
                "e",
                &facts(None, 100),
                RecoveryPlan::RemoveFirst,
                None
            ),
            "recovered from e: stopped at 100%; web-2 (a first deployment) removed"
        );
        let r = recovered_reason("web", "e", &f, RecoveryPlan::NothingToUndo, None);
        assert!(r.ends_with("nothing of it had reached the cluster"), "{r}");
        let r = recovered_reason(
            "web",
            "e",
            &facts(Some(1), 100),
            RecoveryPlan::CompletePromotion { stable: 1 },
            None,
        );
        assert!(
            r.contains("web-1 was already removed") && r.contains("promotion was completed"),
            "{r}"
        );
    }
}
