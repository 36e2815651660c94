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
