//! Verdict → next step: after a health check, check again, shift to the next weight,
//! promote, or roll back.

use crate::execution::{Deployment, Next};
use crate::spec::DeploySpec;
use crate::verdict::{Verdict, VerdictStatus};

use super::holds::too_many_holds;

impl Deployment {
    /// After a health check at time `now` with `verdict`.
    pub fn after_check(&mut self, spec: &DeploySpec, verdict: Verdict, now: i64) {
        self.checks += 1;
        let status = verdict.status;
        self.verdict = Some(verdict);
        match status {
            VerdictStatus::Unhealthy => {
                self.roll_back_now();
                return;
            }
            VerdictStatus::Hold => {
                self.holds += 1;
                if too_many_holds(self.holds, &spec.health) {
                    // The verdict's reason already says why; the rollback's reason
                    // (decide/rollback.rs) says how many holds.
                    self.roll_back_now();
                    return;
                }
            }
            VerdictStatus::Healthy => self.holds = 0,
        }
        let elapsed = now
            .saturating_sub(self.step_started_at.unwrap_or(now))
            .max(0) as u64;
        let duration = self.step_duration(spec);
        if status == VerdictStatus::Healthy && elapsed >= duration {
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
    }

    fn roll_back_now(&mut self) {
        self.next = Next::Rollback;
        self.wait_seconds = 0;
    }
}
