//! The end of a deployment: the document once the record is written and the lock
//! released — the outcome, the weight the canary is left with, and `next = done`.

use crate::execution::{Deployment, Next, Outcome, OutcomeStatus};

impl Deployment {
    /// Marks the deployment ended with `status` and `reason`: a promoted canary holds
    /// all traffic, a rolled-back one none.
    pub fn finished(&mut self, status: OutcomeStatus, reason: String) {
        self.weight = if status == OutcomeStatus::Promoted {
            100
        } else {
            0
        };
        self.next = Next::Done;
        self.wait_seconds = 0;
        self.outcome = Some(Outcome { status, reason });
    }
}
