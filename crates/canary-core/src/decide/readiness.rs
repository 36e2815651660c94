//! Readiness → wait, shift or give up: after deploy-canary applied the objects, and
//! after each probe of the new Deployment's readiness; and how long one invocation
//! watches the Deployment before it leaves the rest to the state machine's Wait loop.

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

/// How deploy-canary watches the new Deployment inside one invocation: it reads it
/// every `poll_millis` for at most `max_secs` from the invocation's start (never past
/// the readiness deadline) and stops at the first reading that is ready or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyWatch {
    /// The longest watch in one invocation, in seconds (0: one reading only).
    pub max_secs: u64,
    /// Between two readings, in milliseconds.
    pub poll_millis: u64,
}

impl Default for ReadyWatch {
    fn default() -> Self {
        Self {
            max_secs: crate::timing::READY_WATCH_SECONDS,
            poll_millis: crate::timing::READY_WATCH_POLL_MILLIS,
        }
    }
}

impl ReadyWatch {
    /// After a reading at `now_millis` that found the Deployment still progressing, in
    /// an invocation that started at `started_millis`: `Some(ms)` to wait before reading
    /// again, or `None` when the watch is over (its time is up, or the next reading
    /// would come after `ready_deadline`, Unix seconds) and the decision is taken on
    /// this reading.
    pub fn wait_before_next(
        &self,
        started_millis: i64,
        now_millis: i64,
        ready_deadline: i64,
    ) -> Option<u64> {
        let poll = i64::try_from(self.poll_millis.max(1)).unwrap_or(i64::MAX);
        let max = i64::try_from(self.max_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let until = started_millis
            .saturating_add(max)
            .min(ready_deadline.saturating_mul(1000));
        (now_millis.saturating_add(poll) <= until).then_some(self.poll_millis.max(1))
    }
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
