//! Verdict → next step: after a health check, check again, shift to the next weight,
//! promote, or roll back.

use crate::execution::{Deployment, Next};
use crate::spec::DeploySpec;
use crate::verdict::{Verdict, VerdictStatus};

use super::gates::{GateEvents, Requests};
use super::holds::too_many_holds;

/// Which checks health-check makes inside one invocation: the next check is waited for
/// there (rather than in the state machine's Wait state) when it is due within
/// `max_wait_secs`, as long as it falls within `budget_secs` of the invocation's start.
/// A Wait state costs three state transitions per check (Wait, the task, the Choice); a
/// function waiting costs its memory size times the wait, which is less for short waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineChecks {
    /// The longest wait made inside the invocation, in seconds (0: none).
    pub max_wait_secs: u64,
    /// From the invocation's start to its last check, at most, in seconds.
    pub budget_secs: u64,
}

impl Default for InlineChecks {
    fn default() -> Self {
        Self {
            max_wait_secs: crate::timing::CHECK_INLINE_MAX_WAIT_SECONDS,
            budget_secs: crate::timing::CHECK_INLINE_BUDGET_SECONDS,
        }
    }
}

impl Deployment {
    /// After a health check at time `now` with `verdict`, with no request waiting.
    pub fn after_check(&mut self, spec: &DeploySpec, verdict: Verdict, now: i64) {
        self.after_check_with(spec, verdict, now, &Requests::default());
    }

    /// After a health check at time `now` with `verdict`, given the requests a person
    /// left (`decide/gates.rs`): check again, shift, pause at a gate, promote or roll
    /// back. Returns what happened at gates and which requests were used.
    pub fn after_check_with(
        &mut self,
        spec: &DeploySpec,
        verdict: Verdict,
        now: i64,
        requests: &Requests,
    ) -> GateEvents {
        let mut events = GateEvents::default();
        self.checks += 1;
        let status = verdict.status;
        self.verdict = Some(verdict);
        match status {
            VerdictStatus::Unhealthy => {
                self.roll_back_now();
                return events;
            }
            VerdictStatus::Hold => {
                self.holds += 1;
                if too_many_holds(self.holds, &spec.health) {
                    // The verdict's reason already says why; the rollback's reason
                    // (decide/rollback.rs) says how many holds.
                    self.roll_back_now();
                    return events;
                }
            }
            VerdictStatus::Healthy => self.holds = 0,
        }
        let passed = status == VerdictStatus::Healthy;
        if self.gates_after_check(spec, passed, now, requests, &mut events) {
            return events;
        }
        let elapsed = now
            .saturating_sub(self.step_started_at.unwrap_or(now))
            .max(0) as u64;
        let duration = self.step_duration(spec);
        if passed && elapsed >= duration {
            if self.pause_at_gate(spec, now, &mut events) {
                return events;
            }
            self.next = if self.weight >= 100 {
                Next::Promote
            } else {
                Next::Shift
            };
            self.wait_seconds = 0;
        } else {
            self.next = Next::Check;
            let left = duration.saturating_sub(elapsed).max(1);
            self.wait_seconds = spec.check_interval().min(left).max(1);
        }
        events
    }

    /// After [`Deployment::after_check`] at `now` in an invocation that started at
    /// `started`: `Some(seconds)` when the function waits for the next check itself
    /// (the document says check again after a wait short enough for `inline`, and that
    /// check still falls within the invocation's budget), `None` when the state
    /// machine's Wait state takes over (or something other than a check comes next).
    pub fn check_again_inside(&self, started: i64, now: i64, inline: &InlineChecks) -> Option<u64> {
        if self.next != Next::Check || self.wait_seconds > inline.max_wait_secs {
            return None;
        }
        let due = now.saturating_add(i64::try_from(self.wait_seconds).unwrap_or(i64::MAX));
        let budget = i64::try_from(inline.budget_secs).unwrap_or(i64::MAX);
        (due.saturating_sub(started) <= budget).then_some(self.wait_seconds)
    }

    pub(super) fn roll_back_now(&mut self) {
        self.gate = None;
        self.next = Next::Rollback;
        self.wait_seconds = 0;
    }
}
