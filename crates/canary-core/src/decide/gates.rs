//! Gates and a person's hand: when a deployment pauses for an approval, what an
//! approval, a promotion by hand or a gate's timeout does, and the requests a person
//! leaves for the running deployment (`canary approve`, `canary promote`).
//!
//! The rules:
//! - a gate at a weight pauses once that weight has been held for `wait_time` with a
//!   passing check; the gate at `promotion` once the bake at 100% is over. While a gate
//!   waits the weight holds and checks go on every `check_interval`: an unhealthy one
//!   rolls back at once (the rest of `after_check` is unchanged by a gate);
//! - an approval (for this execution and this gate) passes the gate at the next
//!   passing check: the next weight, or the promotion;
//! - a promotion by hand, at the next passing check, ends the current step now (and
//!   passes a waiting gate); `full` also skips every remaining weight and gate, so the
//!   next step is 100% — whose bake and check still come before the old version is
//!   removed (at 100% already, the passing check is the check at 100%);
//! - past the gate's deadline, `on_timeout` says: roll back, or go on as if approved.
//!
//! A request that does not name this execution is not for this deployment and is
//! ignored (the store clears requests when a deployment begins and ends).

use serde::{Deserialize, Serialize};

use crate::execution::{ActionKind, Deployment, GateWait, Next, OperatorAction};
use crate::spec::{DeploySpec, GateAt, OnTimeout};

/// `canary approve`: pass the gate `gate` of `execution`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub execution: String,
    /// The gate's name (`50%`, `promotion`).
    pub gate: String,
    pub by: String,
    pub reason: String,
    /// When it was asked (Unix seconds).
    pub at: i64,
}

/// `canary promote`: skip the rest of the step (and, `full`, every remaining step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteRequest {
    pub execution: String,
    pub full: bool,
    pub by: String,
    pub reason: String,
    /// When it was asked (Unix seconds).
    pub at: i64,
}

/// The requests waiting when a check runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    pub approve: Option<Approval>,
    pub promote: Option<PromoteRequest>,
}

/// What a check did with gates and requests: the actions for the record, and which
/// requests it used up (the handler removes those).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateEvents {
    pub actions: Vec<OperatorAction>,
    pub used_approval: bool,
    pub used_promotion: bool,
}

impl Deployment {
    /// The gate this deployment pauses at when its current step is over, if any.
    pub fn gate_here(&self, spec: &DeploySpec) -> Option<crate::spec::GateSpec> {
        if self.is_first() || self.skip_gates {
            return None;
        }
        let at = if self.weight >= 100 {
            GateAt::Promotion
        } else {
            GateAt::Weight(self.weight)
        };
        spec.gate(at).copied()
    }

    /// After a passing (or holding) check at `now`, with no rollback decided: a
    /// promotion by hand, a waiting gate's approval or timeout, or a new pause. Returns
    /// `true` when it decided what comes next (the caller's usual step logic must not
    /// run).
    pub(super) fn gates_after_check(
        &mut self,
        spec: &DeploySpec,
        passed: bool,
        now: i64,
        requests: &Requests,
        events: &mut GateEvents,
    ) -> bool {
        let promote = requests
            .promote
            .as_ref()
            .filter(|p| p.execution == self.execution);
        if passed && let Some(p) = promote {
            self.promote_by_hand(p, now, events);
            return true;
        }
        if let Some(wait) = self.gate.clone() {
            let approval = requests
                .approve
                .as_ref()
                .filter(|a| a.execution == self.execution && a.gate == wait.gate);
            if passed && let Some(a) = approval {
                events.used_approval = true;
                events
                    .actions
                    .push(self.action(ActionKind::Approved, &a.by, &a.reason, now));
                self.pass_gate();
                return true;
            }
            if now >= wait.deadline {
                self.gate_timed_out(&wait, now, events);
                return true;
            }
            self.next = Next::Check;
            self.wait_seconds = wait_until(spec, now, wait.deadline);
            return true;
        }
        false
    }

    /// The current step is over with a passing check: pause at its gate, if it has one.
    pub(super) fn pause_at_gate(
        &mut self,
        spec: &DeploySpec,
        now: i64,
        events: &mut GateEvents,
    ) -> bool {
        let Some(g) = self.gate_here(spec) else {
            return false;
        };
        let deadline = now.saturating_add(i64::try_from(g.timeout).unwrap_or(i64::MAX / 2));
        self.gate = Some(GateWait {
            gate: g.at.label(),
            weight: self.weight,
            since: now,
            deadline,
            on_timeout: g.on_timeout,
        });
        let why = format!(
            "waiting for approval at {} (canary approve); {} after {}",
            g.at,
            g.on_timeout.verb(),
            crate::timing::human_duration(g.timeout)
        );
        events
            .actions
            .push(self.action(ActionKind::Paused, "deploy.json", &why, now));
        self.next = Next::Check;
        self.wait_seconds = wait_until(spec, now, deadline);
        true
    }

    fn promote_by_hand(&mut self, p: &PromoteRequest, now: i64, events: &mut GateEvents) {
        events.used_promotion = true;
        let kind = if p.full {
            ActionKind::PromotedFull
        } else {
            ActionKind::Promoted
        };
        events
            .actions
            .push(self.action(kind, &p.by, &p.reason, now));
        if p.full {
            self.skip_gates = true;
            if self.weight < 100 {
                // The next shift goes to 100%; its bake and checks still follow.
                self.schedule.truncate(self.step);
                self.schedule.push(100);
            }
        }
        self.pass_gate();
    }

    fn gate_timed_out(&mut self, wait: &GateWait, now: i64, events: &mut GateEvents) {
        let waited = crate::timing::human_duration(
            u64::try_from(wait.deadline.saturating_sub(wait.since)).unwrap_or(0),
        );
        match wait.on_timeout {
            OnTimeout::Rollback => {
                let why = format!("not approved at the {} gate within {waited}", wait.gate);
                events
                    .actions
                    .push(self.action(ActionKind::TimedOut, "deploy.json", &why, now));
                self.gate = None;
                self.rollback_reason = Some(why);
                self.next = Next::Rollback;
                self.wait_seconds = 0;
            }
            OnTimeout::Continue => {
                let why = format!(
                    "not approved at the {} gate within {waited}: going on (on_timeout continue)",
                    wait.gate
                );
                events
                    .actions
                    .push(self.action(ActionKind::TimedOut, "deploy.json", &why, now));
                self.pass_gate();
            }
        }
    }

    /// Leaves the gate (if any) and ends the current step: the next weight, or the
    /// promotion at 100%.
    fn pass_gate(&mut self) {
        self.gate = None;
        self.next = if self.weight >= 100 {
            Next::Promote
        } else {
            Next::Shift
        };
        self.wait_seconds = 0;
    }

    fn action(&self, kind: ActionKind, by: &str, reason: &str, now: i64) -> OperatorAction {
        OperatorAction {
            kind,
            by: by.to_owned(),
            reason: reason.to_owned(),
            at: now,
            gate: self.gate.as_ref().map(|g| g.gate.clone()),
            weight: self.weight,
        }
    }
}

/// The wait before the next check while a gate waits: a check interval, and never past
/// the deadline (so the timeout is acted on when it comes).
fn wait_until(spec: &DeploySpec, now: i64, deadline: i64) -> u64 {
    let left = u64::try_from(deadline.saturating_sub(now)).unwrap_or(0);
    spec.check_interval().min(left).max(1)
}
