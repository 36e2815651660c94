//! `canary run`'s last step: the summary of how the run ended, for a person.

use canary_core::execution::OutcomeStatus;

use super::{RunOutcome, RunReport};
use crate::format::mmss;

/// The summary printed at the end of a run.
pub fn summary_text(r: &RunReport) -> String {
    let headline = match r.outcome {
        RunOutcome::Promoted => "PROMOTED".to_owned(),
        RunOutcome::RolledBack => "ROLLED BACK".to_owned(),
        RunOutcome::Interrupted => "ROLLED BACK (interrupted with Ctrl-C)".to_owned(),
        RunOutcome::Failed => format!("FAILED ({})", r.error.as_deref().unwrap_or("unknown error")),
    };
    let mut out = format!("\nSummary: {headline}\n  reason:      {}\n", r.reason);
    if let Some(d) = &r.deployment {
        let stable = d
            .stable_version
            .map_or("none (first deployment)".to_owned(), |s| format!("v{s}"));
        let serving = match d.outcome.as_ref().map(|o| o.status) {
            Some(OutcomeStatus::Promoted) => format!("v{} serves all traffic", d.canary_version),
            Some(OutcomeStatus::RolledBack) => match d.stable_version {
                Some(s) => format!("v{s} serves all traffic"),
                None => "nothing deployed (the first deployment was removed)".to_owned(),
            },
            None => "unknown: check the route".to_owned(),
        };
        out.push_str(&format!(
            "  versions:    v{} over stable {stable}; now {serving}\n  progress:    reached {}% (step {}/{}), {} health checks\n",
            d.canary_version,
            d.max_weight,
            d.step,
            d.schedule.len(),
            d.checks
        ));
        if let Some(v) = &d.verdict {
            out.push_str(&format!("  last check:  {:?}: {}\n", v.status, v.reason));
        }
    }
    out.push_str(&format!(
        "  took:        {} real time, {} state transitions\n",
        mmss(i64::try_from(r.elapsed.as_millis()).unwrap_or(i64::MAX)),
        r.transitions
    ));
    if let Some(api) = &r.api {
        out.push_str(&format!(
            "  cluster API: {} requests ({} writes)\n",
            api.requests, api.writes
        ));
    }
    out.push_str(&format!(
        "  lock:        {}\n  records:     {}\n",
        match r.lock_held {
            Some(false) => "released",
            Some(true) => "STILL HELD",
            None => "unknown (the store did not answer)",
        },
        r.store
    ));
    out
}
