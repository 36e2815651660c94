//! Readiness → wait, shift or give up: after deploy-canary applied the objects, and
//! after each probe of the new Deployment's readiness.

use crate::execution::{Deployment, Next, READY_POLL_SECONDS};
use crate::spec::DeploySpec;

/// What a probe of the new Deployment found (the kube adapter's reading, without I/O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyProbe {
    /// Every desired replica is updated, ready and available.
    Ready,
    /// Not yet; `detail` says how far it is.
    Progressing {
        /// Replica counts and the pods' waiting reasons.
        detail: String,
    },
    /// It will not become ready without a change.
    Failed {
        /// The pods' reasons.
        reason: String,
    },
}

/// The new version will not become ready: the deployment rolls back (`CanaryNotReady`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The Deployment cannot become ready (ImagePullBackOff, CrashLoopBackOff, ...).
    #[error("{name} cannot become ready: {reason}")]
    Failed {
        /// `<service>-<version>`.
        name: String,
        /// The pods' reasons.
        reason: String,
    },
    /// `ready_timeout` passed.
    #[error("{name} was not ready within ready_timeout ({ready_timeout} s): {detail}")]
    Timeout {
        /// `<service>-<version>`.
        name: String,
        /// deploy.json's `ready_timeout`.
        ready_timeout: u64,
        /// How far it got.
        detail: String,
    },
}

impl Deployment {
    /// After deploy-canary applied the objects: wait for readiness.
    pub fn after_apply(&mut self) {
        self.next = Next::WaitReady;
        self.wait_seconds = READY_POLL_SECONDS;
    }

    /// After deploy-canary applied the objects at `now`: the readiness deadline starts
    /// now, then wait for readiness.
    pub fn applied(&mut self, spec: &DeploySpec, now: i64) {
        self.ready_deadline = spec.ready_deadline(now);
        self.after_apply();
    }

    /// After a readiness probe. `ready` is whether the new Deployment is ready now.
    pub fn after_ready_probe(&mut self, ready: bool) {
        if ready {
            self.next = Next::Shift;
            self.wait_seconds = 0;
        } else {
            self.after_apply();
        }
    }

    /// After a readiness probe at `now` that found `probe`: shift when ready, wait when
    /// progressing before the deadline, and give up when it failed or the deadline passed.
    pub fn after_readiness(
        &mut self,
        spec: &DeploySpec,
        probe: ReadyProbe,
        now: i64,
    ) -> Result<(), NotReady> {
        let name = self.canary_name(&spec.microservice_name);
        match probe {
            ReadyProbe::Ready => self.after_ready_probe(true),
            ReadyProbe::Failed { reason } => return Err(NotReady::Failed { name, reason }),
            ReadyProbe::Progressing { detail } if now >= self.ready_deadline => {
                return Err(NotReady::Timeout {
                    name,
                    ready_timeout: spec.ready_timeout,
                    detail,
                });
            }
            ReadyProbe::Progressing { .. } => self.after_ready_probe(false),
        }
        Ok(())
    }
}
