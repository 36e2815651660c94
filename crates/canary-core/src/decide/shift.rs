//! After a shift: which weight comes next, how long a weight is held, and what follows
//! a shift (a health check, or the promotion of a first deployment).

use crate::execution::{Deployment, Next};
use crate::spec::DeploySpec;

impl Deployment {
    /// The weight the next shift applies, or `None` when the schedule is done.
    pub fn next_weight(&self) -> Option<u8> {
        self.schedule.get(self.step).copied()
    }

    /// After shift-weights applied `self.schedule[self.step]` at time `now`.
    pub fn after_shift(&mut self, spec: &DeploySpec, now: i64) {
        self.weight = self.next_weight().unwrap_or(100);
        self.max_weight = self.max_weight.max(self.weight);
        self.step += 1;
        self.step_started_at = Some(now);
        self.holds = 0;
        if self.is_first() {
            // Nothing to compare with and nothing to roll back to: a first deployment
            // is promoted once it is ready and routed.
            self.next = Next::Promote;
            self.wait_seconds = 0;
            return;
        }
        self.next = Next::Check;
        self.wait_seconds = spec.check_interval().min(self.step_duration(spec));
    }

    /// How long the canary stays at the current weight: `wait_time`, or `bake_time` at 100%.
    pub fn step_duration(&self, spec: &DeploySpec) -> u64 {
        if self.weight >= 100 {
            spec.bake_time()
        } else {
            spec.wait_time
        }
    }
}
