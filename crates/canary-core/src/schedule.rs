//! The weight schedule: which canary weights a deployment goes through, and the plan
//! (when each weight is applied, how many checks run, the worst reaction time).

use crate::spec::{DeploySpec, GateAt, OnTimeout};

/// The canary weights to apply in order, ending at 100.
///
/// From `steps` when given, else every multiple of `percentage_step` below 100 and then
/// 100 (10 -> 10, 20, ..., 100; 30 -> 30, 60, 90, 100). A first deployment has nothing
/// to share traffic with and goes straight to 100.
pub fn schedule(spec: &DeploySpec, first_deployment: bool) -> Vec<u8> {
    if first_deployment {
        return vec![100];
    }
    if let Some(steps) = &spec.steps {
        return steps.clone();
    }
    from_percentage_step(spec.percentage_step.unwrap_or(100))
}

/// Every multiple of `step` below 100, then 100. A step of 0 is treated as 100.
pub fn from_percentage_step(step: u8) -> Vec<u8> {
    let step = if step == 0 { 100 } else { step.min(100) };
    let mut out: Vec<u8> = (1..)
        .map(|i: u16| i * u16::from(step))
        .take_while(|w| *w < 100)
        .map(|w| w as u8)
        .collect();
    out.push(100);
    out
}

pub use crate::timing::{METRIC_PERIOD_SECS, METRIC_VISIBILITY_SECS};

/// One step of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanStep {
    /// The canary weight of this step.
    pub weight: u8,
    /// Seconds after the new version became ready that this weight is applied.
    pub at_secs: u64,
    /// How long the canary stays at this weight.
    pub hold_secs: u64,
    /// Health checks run at this weight.
    pub checks: u64,
}

/// A gate of a plan: where the deployment pauses for an approval, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanGate {
    pub at: GateAt,
    /// Seconds after the new version became ready that the gate is reached, when no
    /// gate before it waited.
    pub reached_secs: u64,
    /// The longest the gate waits.
    pub timeout_secs: u64,
    /// What the wait running out means.
    pub on_timeout: OnTimeout,
    /// Health checks run while it waits, at most.
    pub checks: u64,
}

/// What a canary deployment of this spec will do, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<PlanStep>,
    /// Seconds from ready to 100% of traffic on the canary.
    pub time_to_full_secs: u64,
    /// Seconds from ready to promotion (including the bake at 100%).
    pub total_secs: u64,
    /// Seconds between health checks.
    pub check_interval_secs: u64,
    /// Worst case from a failure starting to its rollback: one check interval plus
    /// [`METRIC_VISIBILITY_SECS`] (the datapoint must be visible before a check can see it).
    pub worst_unnoticed_secs: u64,
    /// The original design's worst case at the same settings: a whole `wait_time` plus
    /// [`METRIC_VISIBILITY_SECS`], and a failure after the shift to 100% was never noticed.
    pub original_worst_unnoticed_secs: u64,
    /// The gates, in the order they are reached.
    pub gates: Vec<PlanGate>,
    /// Seconds from ready to promotion when every gate waits until its timeout.
    pub longest_secs: u64,
    /// Health checks in the whole deployment (gates waiting until their timeouts).
    pub checks: u64,
    /// Step Functions history events of the longest successful run (every readiness poll
    /// until `ready_timeout`, every check), an upper estimate.
    pub history_events: u64,
}

/// Step Functions history events per loop of the state machine: a Wait state (entered,
/// exited), a Lambda task (entered, scheduled, started, succeeded, exited) and the
/// Choice after it (entered, exited).
pub const EVENTS_PER_LOOP: u64 = 9;

/// Step Functions' limit of history events per Standard execution.
pub const MAX_HISTORY_EVENTS: u64 = 25_000;

/// The plan of a canary deployment (not a first deployment, which goes straight to 100%).
pub fn plan(spec: &DeploySpec) -> Plan {
    let weights = schedule(spec, false);
    let interval = spec.check_interval();
    let mut steps = Vec::with_capacity(weights.len());
    let mut at = 0;
    for &weight in &weights {
        let hold = if weight >= 100 {
            spec.bake_time()
        } else {
            spec.wait_time
        };
        steps.push(PlanStep {
            weight,
            at_secs: at,
            hold_secs: hold,
            checks: hold.div_ceil(interval).max(1),
        });
        at += hold;
    }
    let time_to_full_secs = steps.last().map_or(0, |s| s.at_secs);
    let gates: Vec<PlanGate> = spec
        .gates
        .iter()
        .map(|g| PlanGate {
            at: g.at,
            reached_secs: steps
                .iter()
                .find(|s| s.weight == g.at.weight())
                .map_or(at, |s| s.at_secs + s.hold_secs),
            timeout_secs: g.timeout,
            on_timeout: g.on_timeout,
            checks: g.timeout.div_ceil(interval).max(1),
        })
        .collect();
    let longest_secs = at + gates.iter().map(|g| g.timeout_secs).sum::<u64>();
    let checks: u64 =
        steps.iter().map(|s| s.checks).sum::<u64>() + gates.iter().map(|g| g.checks).sum::<u64>();
    let ready_polls = spec
        .ready_timeout
        .div_ceil(crate::timing::READY_POLL_SECONDS);
    let shifts = steps.len() as u64;
    // Start, render, deploy, the loops, cleanup, end: a fixed part and a part per loop.
    let history_events = 20 + EVENTS_PER_LOOP * (checks + ready_polls + shifts);
    Plan {
        checks,
        history_events,
        steps,
        gates,
        longest_secs,
        time_to_full_secs,
        total_secs: at,
        check_interval_secs: interval,
        worst_unnoticed_secs: interval + METRIC_VISIBILITY_SECS,
        original_worst_unnoticed_secs: spec.wait_time + METRIC_VISIBILITY_SECS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentage_step_ten_gives_ten_steps() {
        assert_eq!(
            from_percentage_step(10),
            vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
        );
    }

    #[test]
    fn percentage_step_thirty_ends_with_a_short_step_to_100() {
        assert_eq!(from_percentage_step(30), vec![30, 60, 90, 100]);
    }

    #[test]
    fn percentage_step_of_100_or_more_is_one_step() {
        assert_eq!(from_percentage_step(100), vec![100]);
        assert_eq!(from_percentage_step(0), vec![100]);
    }

    #[test]
    fn every_step_size_is_strictly_increasing_and_ends_at_100() {
        for step in 1..=100u8 {
            let s = from_percentage_step(step);
            assert_eq!(s.last(), Some(&100));
            assert!(s.windows(2).all(|w| w[0] < w[1]), "{step}: {s:?}");
            assert_eq!(s.len(), 100usize.div_ceil(step as usize));
        }
    }
}
