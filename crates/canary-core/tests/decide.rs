//! The decisions of `canary_core::decide` that the handlers call: the deployment a
//! render starts, readiness → wait/shift/give up, how a rollback is done and the
//! sentences the record keeps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_core::decide::promotion::promoted_reason;
use canary_core::decide::rollback::{
    RollbackPlan, completed_promotion_reason, error_rolls_back, rolled_back_reason,
};
use canary_core::decide::{NotReady, ReadyProbe};
use canary_core::execution::{Next, OutcomeStatus, RouteRef, Start};
use canary_core::provider::appmesh::APP_MESH;
use canary_core::{CaughtError, DeploySpec, Deployment, ErrorName, Verdict, VerdictStatus};
use common::seed_doc;

fn spec() -> DeploySpec {
    DeploySpec::parse(&seed_doc("yelb-appserver"), None).unwrap()
}

fn started(first: bool) -> Deployment {
    let start = Start {
        execution: "exec-1".into(),
        canary_version: 8,
        stable_version: (!first).then_some(7),
        stable_image: None,
        provider: APP_MESH,
        route: RouteRef {
            api_version: "appmesh.k8s.aws/v1beta2".into(),
            kind: "VirtualRouter".into(),
            name: "web".into(),
        },
        lock_token: "t".into(),
        manifest_key: Some("m".into()),
        record_key: Some("r".into()),
    };
    Deployment::start(&spec(), start, 1_000)
}

#[test]
fn a_started_deployment_has_its_schedule_and_deadline_and_applies_next() {
    let s = spec();
    let d = started(false);
    assert_eq!(d.next, Next::Apply);
    assert_eq!(d.schedule, canary_core::schedule::schedule(&s, false));
    assert_eq!(d.ready_deadline, 1_000 + s.ready_timeout as i64);
    assert_eq!((d.step, d.weight, d.checks, d.holds), (0, 0, 0, 0));
    assert_eq!(started(true).schedule, vec![100]);
}

#[test]
fn readiness_shifts_when_ready_waits_while_progressing_and_gives_up_with_the_reason() {
    let s = spec();
    let mut d = started(false);
    d.applied(&s, 2_000);
    assert_eq!(d.next, Next::WaitReady);
    let progressing = || ReadyProbe::Progressing {
        detail: "1/2 ready".into(),
    };
    d.after_readiness(&s, progressing(), 2_010).unwrap();
    assert_eq!(d.next, Next::WaitReady);
    let late = d.ready_deadline;
    let e = d
        .clone()
        .after_readiness(&s, progressing(), late)
        .unwrap_err();
    assert!(matches!(e, NotReady::Timeout { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "yelb-appserver-8 was not ready within ready_timeout ({} s): 1/2 ready",
            s.ready_timeout
        )
    );
    let failed = ReadyProbe::Failed {
        reason: "ImagePullBackOff".into(),
    };
    let e = d.clone().after_readiness(&s, failed, 2_020).unwrap_err();
    assert_eq!(
        e.to_string(),
        "yelb-appserver-8 cannot become ready: ImagePullBackOff"
    );
    d.after_readiness(&s, ReadyProbe::Ready, 2_030).unwrap();
    assert_eq!(d.next, Next::Shift);
}

#[test]
fn a_rollback_goes_back_to_stable_completes_a_promotion_or_removes_a_first_deployment() {
    let d = started(false);
    assert_eq!(
        RollbackPlan::choose(&d, true),
        RollbackPlan::BackToStable { stable: 7 }
    );
    assert_eq!(
        RollbackPlan::choose(&d, false),
        RollbackPlan::CompletePromotion { stable: 7 }
    );
    assert_eq!(
        RollbackPlan::choose(&started(true), false),
        RollbackPlan::RemoveFirst
    );
}

#[test]
fn only_the_hands_off_errors_do_not_roll_back() {
    for name in ErrorName::ALL {
        assert_eq!(error_rolls_back(name), !name.is_hands_off(), "{name}");
    }
}

#[test]
fn the_rollback_reason_names_the_versions_and_the_cause() {
    let mut d = started(false);
    d.weight = 30;
    let aborted = CaughtError {
        error: "Aborted".into(),
        cause: "aborted by ana: slow".into(),
    };
    assert_eq!(
        rolled_back_reason("web", &d, Some(&aborted)),
        "web-8 rolled back to web-7 at 30% of traffic: aborted by ana: slow"
    );
    let other = CaughtError {
        error: "KubeError".into(),
        cause: "403".into(),
    };
    assert_eq!(
        rolled_back_reason("web", &d, Some(&other)),
        "web-8 rolled back to web-7 at 30% of traffic: KubeError: 403"
    );
    d.verdict = Some(Verdict::aborted(8, "bob", "why"));
    assert_eq!(
        rolled_back_reason("web", &d, None),
        "web-8 rolled back to web-7 at 30% of traffic: aborted by bob: why"
    );
    let mut hold = Verdict::checks_disabled(Some(8), "too few requests");
    hold.status = VerdictStatus::Hold;
    d.verdict = Some(hold);
    d.holds = 4;
    assert_eq!(
        rolled_back_reason("web", &d, None),
        "web-8 rolled back to web-7 at 30% of traffic: too little traffic after 4 checks in a row: too few requests"
    );
    assert_eq!(
        rolled_back_reason("web", &started(true), None),
        "web-8 (a first deployment) removed: rollback requested"
    );
    assert_eq!(
        completed_promotion_reason("web", &d, 7, "x"),
        "web-8 kept all traffic because web-7 was already removed, so the promotion was completed (x)"
    );
}

#[test]
fn a_finished_deployment_records_its_outcome_and_final_weight() {
    let mut d = started(false);
    assert_eq!(promoted_reason("web", &d), "web-8 promoted, web-7 removed");
    assert_eq!(
        promoted_reason("web", &started(true)),
        "web-8 deployed (first deployment, all traffic)"
    );
    d.finished(OutcomeStatus::Promoted, "ok".into());
    assert_eq!((d.weight, d.next), (100, Next::Done));
    d.finished(OutcomeStatus::RolledBack, "no".into());
    assert_eq!((d.weight, d.next), (0, Next::Done));
    assert_eq!(d.outcome.unwrap().reason, "no");
}

#[test]
fn a_readiness_watch_reads_every_poll_until_its_time_or_the_deadline_is_up() {
    use canary_core::decide::ReadyWatch;
    let w = ReadyWatch {
        max_secs: 60,
        poll_millis: 500,
    };
    let far = 10_000;
    // Started at 1 000 000 ms: the last reading may be at 1 060 000.
    assert_eq!(w.wait_before_next(1_000_000, 1_000_000, far), Some(500));
    assert_eq!(w.wait_before_next(1_000_000, 1_059_500, far), Some(500));
    assert_eq!(w.wait_before_next(1_000_000, 1_059_501, far), None);
    // Never past the readiness deadline (Unix seconds).
    assert_eq!(w.wait_before_next(1_000_000, 1_009_000, 1_010), Some(500));
    assert_eq!(w.wait_before_next(1_000_000, 1_009_600, 1_010), None);
    // 0 s: one reading, then the Wait loop.
    let once = ReadyWatch {
        max_secs: 0,
        poll_millis: 500,
    };
    assert_eq!(once.wait_before_next(1_000_000, 1_000_000, far), None);
    assert_eq!(ReadyWatch::default().max_secs, 60);
    assert!(ReadyWatch::default().poll_millis <= 1_000);
}

fn spec_checking_every(interval: u64) -> DeploySpec {
    let mut doc = seed_doc("yelb-appserver");
    doc["check_interval"] = serde_json::json!(interval);
    DeploySpec::parse(&doc, None).unwrap()
}

fn healthy() -> Verdict {
    Verdict {
        status: VerdictStatus::Healthy,
        errors: 0.0,
        requests: None,
        error_rate: None,
        window_seconds: 300,
        datapoints: 5,
        version: Some(8),
        latency_ms: None,
        comparison: None,
        stable: None,
        reason: "0 errors over 300 s".into(),
    }
}

#[test]
fn short_waits_between_checks_are_made_inside_the_invocation_within_its_budget() {
    use canary_core::decide::InlineChecks;
    let inline = InlineChecks {
        max_wait_secs: 30,
        budget_secs: 60,
    };
    let s = spec_checking_every(10);
    let mut d = started(false);
    d.applied(&s, 1_000);
    d.after_readiness(&s, ReadyProbe::Ready, 1_001).unwrap();
    d.after_shift(&s, 1_001);
    assert_eq!((d.next, d.wait_seconds), (Next::Check, 10));
    // The invocation starts at 1 011 (after the Wait state): checks at 1 011, 1 021, ...
    d.after_check(&s, healthy(), 1_011);
    assert_eq!(d.check_again_inside(1_011, 1_011, &inline), Some(10));
    d.after_check(&s, healthy(), 1_051);
    assert_eq!(d.check_again_inside(1_011, 1_051, &inline), Some(10));
    // The step of 60 s ends at 1 061: the check then says shift, never a wait.
    d.after_check(&s, healthy(), 1_061);
    assert_eq!(d.next, Next::Shift);
    assert_eq!(d.check_again_inside(1_011, 1_061, &inline), None);
    // Past the budget: the Wait state takes over.
    let mut late = started(false);
    late.applied(&s, 1_000);
    late.after_shift(&s, 1_000);
    late.after_check(&s, healthy(), 1_030);
    assert_eq!(late.check_again_inside(1_000, 1_030, &inline), Some(10));
    assert_eq!(late.check_again_inside(975, 1_030, &inline), None);
    // 60 s checks are waited for in the Wait state.
    let s60 = spec_checking_every(60);
    let mut slow = started(false);
    slow.applied(&s60, 1_000);
    slow.after_shift(&s60, 1_000);
    slow.weight = 100;
    slow.after_check(&s60, healthy(), 1_060);
    assert_eq!(slow.next, Next::Check);
    assert_eq!(slow.check_again_inside(1_060, 1_060, &inline), None);
    // An unhealthy verdict is never followed by another check.
    let mut bad = started(false);
    bad.applied(&s, 1_000);
    bad.after_shift(&s, 1_000);
    let mut v = healthy();
    v.status = VerdictStatus::Unhealthy;
    bad.after_check(&s, v, 1_010);
    assert_eq!(bad.check_again_inside(1_010, 1_010, &inline), None);
}
