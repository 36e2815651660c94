//! Gates: deploy.json's `gates` validated, shown in the plan, and the decisions at a
//! gate — pause with the weight held and checks going on, approval, promotion by hand,
//! the timeout either way, and a failure while paused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_core::decide::{Approval, PromoteRequest, Requests};
use canary_core::execution::{ActionKind, Deployment, Next, RouteRef, Start};
use canary_core::provider::appmesh::APP_MESH;
use canary_core::spec::{GateAt, OnTimeout};
use canary_core::{DeploySpec, Verdict, VerdictStatus, schedule};
use common::*;
use serde_json::{Value, json};

fn doc(extra: Value) -> Value {
    let mut doc = seed_doc("yelb-appserver");
    doc["percentage_step"] = json!(25);
    doc["wait_time"] = json!(60);
    doc["check_interval"] = json!(20);
    doc["bake_time"] = json!(60);
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    doc
}

fn spec(extra: Value) -> DeploySpec {
    DeploySpec::parse(&doc(extra), None).unwrap()
}

fn refused(extra: Value) -> String {
    DeploySpec::parse(&doc(extra), None)
        .unwrap_err()
        .to_string()
}

fn deployment(spec: &DeploySpec) -> Deployment {
    let start = Start {
        execution: "exec-1".into(),
        canary_version: 2,
        stable_version: Some(1),
        stable_image: None,
        provider: APP_MESH,
        route: RouteRef {
            api_version: "appmesh.k8s.aws/v1beta2".into(),
            kind: "VirtualRouter".into(),
            name: "yelb-appserver".into(),
        },
        lock_token: "t".into(),
        manifest_key: None,
        record_key: None,
    };
    Deployment::start(spec, start, 0)
}

fn verdict(status: VerdictStatus) -> Verdict {
    Verdict {
        status,
        errors: 0.0,
        requests: Some(100.0),
        error_rate: Some(0.0),
        window_seconds: 60,
        datapoints: 1,
        version: Some(2),
        latency_ms: None,
        comparison: None,
        stable: None,
        reason: "0 errors in 100 requests".into(),
    }
}

fn healthy() -> Verdict {
    verdict(VerdictStatus::Healthy)
}

fn approval(gate: &str) -> Requests {
    Requests {
        approve: Some(Approval {
            execution: "exec-1".into(),
            gate: gate.into(),
            by: "ana".into(),
            reason: "dashboards look fine".into(),
            at: 0,
        }),
        promote: None,
    }
}

fn promotion(full: bool) -> Requests {
    Requests {
        approve: None,
        promote: Some(PromoteRequest {
            execution: "exec-1".into(),
            full,
            by: "bo".into(),
            reason: "hotfix".into(),
            at: 0,
        }),
    }
}

/// Shifts `d` to the next weight at `now`, then checks healthily until the step is over.
fn through_step(s: &DeploySpec, d: &mut Deployment, now: &mut i64) {
    assert_eq!(d.next, Next::Shift, "{d:?}");
    d.after_shift(s, *now);
    while d.next == Next::Check && d.gate.is_none() {
        *now += d.wait_seconds as i64;
        d.after_check(s, healthy(), *now);
    }
}

fn at_gate(extra: Value) -> (DeploySpec, Deployment, i64) {
    let s = spec(extra);
    let mut d = deployment(&s);
    d.next = Next::Shift;
    let mut now = 1_000;
    through_step(&s, &mut d, &mut now); // 25%
    if d.gate.is_none() {
        through_step(&s, &mut d, &mut now); // 50%
    }
    (s, d, now)
}

#[test]
fn gates_validate_and_are_kept_in_the_order_they_are_reached() {
    let s = spec(json!({"gates": [
        {"at": "promotion", "timeout": 7200, "on_timeout": "continue"},
        {"at": 50}
    ]}));
    assert_eq!(s.gates.len(), 2);
    assert_eq!(s.gates[0].at, GateAt::Weight(50));
    assert_eq!(s.gates[0].timeout, 3600, "one hour by default");
    assert_eq!(
        s.gates[0].on_timeout,
        OnTimeout::Rollback,
        "rollback by default"
    );
    assert_eq!(s.gates[1].at, GateAt::Promotion);
    assert_eq!(s.gates[1].on_timeout, OnTimeout::Continue);
}

#[test]
fn a_nonsense_gate_is_refused_naming_its_field_and_value() {
    for (gates, field, words) in [
        (json!("50"), "gates", "must be a list of gates"),
        (json!([50]), "gates[0]", "must be an object"),
        (
            json!([{"at": 40}]),
            "gates[0].at",
            "is not a weight of the schedule (25, 50, 75, 100)",
        ),
        (json!([{"at": 100}]), "gates[0].at", "use \"promotion\""),
        (json!([{"at": 0}]), "gates[0].at", "between 1 and 100"),
        (
            json!([{"at": "promotoin"}]),
            "gates[0].at",
            "did you mean `promotion`",
        ),
        (json!([{"timeout": 60}]), "gates[0].at", "is required"),
        (
            json!([{"at": 50, "timeout": 5}]),
            "gates[0].timeout",
            "between 10 and 604800",
        ),
        (
            json!([{"at": 50, "on_timeout": "abort"}]),
            "gates[0].on_timeout",
            "must be `rollback` or `continue`",
        ),
        (
            json!([{"at": 50, "timout": 600}]),
            "gates[0].timout",
            "did you mean `timeout`",
        ),
        (
            json!([{"at": 50}, {"at": 50}]),
            "gates[1].at",
            "repeats the gate at 50%",
        ),
    ] {
        let e = refused(json!({ "gates": gates }));
        assert!(e.contains(field) && e.contains(words), "{gates}: {e}");
    }
    let e = refused(json!({"gats": []}));
    assert!(e.contains("did you mean `gates`"), "{e}");
}

#[test]
fn gates_that_could_outlast_an_execution_history_are_refused() {
    let e = refused(json!({
        "wait_time": 10, "check_interval": 1,
        "gates": [{"at": 50, "timeout": 604800}]
    }));
    assert!(e.contains("gates") && e.contains("history events"), "{e}");
}

#[test]
fn the_plan_shows_each_gate_where_it_is_reached_and_its_longest_wait() {
    let s = spec(json!({"gates": [{"at": 50, "timeout": 1800}, {"at": "promotion"}]}));
    let p = schedule::plan(&s);
    assert_eq!(p.gates.len(), 2);
    assert_eq!(
        (p.gates[0].at, p.gates[0].reached_secs),
        (GateAt::Weight(50), 120)
    );
    assert_eq!(p.gates[1].reached_secs, p.total_secs);
    assert_eq!(p.longest_secs, p.total_secs + 1800 + 3600);
    let without = schedule::plan(&spec(json!({})));
    assert_eq!(p.checks, without.checks + 1800 / 20 + 3600 / 20);
}

#[test]
fn a_gate_pauses_with_the_weight_held_and_checks_going_on_until_approved() {
    let (s, mut d, mut now) = at_gate(json!({"gates": [{"at": 50, "timeout": 600}]}));
    let gate = d.gate.clone().expect("paused at 50%");
    assert_eq!((gate.gate.as_str(), gate.weight, d.weight), ("50%", 50, 50));
    assert_eq!(gate.deadline, gate.since + 600);
    assert_eq!((d.next, d.wait_seconds), (Next::Check, 20));
    let checks = d.checks;
    for _ in 0..5 {
        now += 20;
        let ev = d.after_check_with(&s, healthy(), now, &Requests::default());
        assert!(ev.actions.is_empty() && !ev.used_approval);
        assert_eq!((d.next, d.weight), (Next::Check, 50), "still waiting");
    }
    assert_eq!(d.checks, checks + 5, "checks go on while paused");
    // An approval for another gate, or another execution, passes nothing.
    let mut other = approval("75%");
    now += 20;
    d.after_check_with(&s, healthy(), now, &other);
    assert_eq!(d.next, Next::Check);
    other = approval("50%");
    other.approve.as_mut().unwrap().execution = "exec-0".into();
    d.after_check_with(&s, healthy(), now, &other);
    assert_eq!(d.next, Next::Check);

    now += 20;
    let ev = d.after_check_with(&s, healthy(), now, &approval("50%"));
    assert!(ev.used_approval);
    assert_eq!(ev.actions.len(), 1);
    let a = &ev.actions[0];
    assert_eq!(
        (a.kind, a.by.as_str(), a.gate.as_deref()),
        (ActionKind::Approved, "ana", Some("50%"))
    );
    assert_eq!(a.reason, "dashboards look fine");
    assert_eq!((d.next, d.gate.is_none()), (Next::Shift, true));
    through_step(&s, &mut d, &mut now);
    assert_eq!(d.weight, 75, "the next weight, and no second pause at 50%");
}

#[test]
fn a_failure_while_paused_rolls_back_at_once() {
    let (s, mut d, now) = at_gate(json!({"gates": [{"at": 50}]}));
    assert!(d.gate.is_some());
    // Even with an approval waiting: the failing check wins.
    d.after_check_with(
        &s,
        verdict(VerdictStatus::Unhealthy),
        now + 20,
        &approval("50%"),
    );
    assert_eq!((d.next, d.wait_seconds), (Next::Rollback, 0));
    assert!(d.gate.is_none());
}

#[test]
fn an_approval_waits_for_a_passing_check() {
    let (s, mut d, now) =
        at_gate(json!({"gates": [{"at": 50}], "min_request_count": 10, "no_data": "hold"}));
    let ev = d.after_check_with(&s, verdict(VerdictStatus::Hold), now + 20, &approval("50%"));
    assert!(!ev.used_approval, "a hold is not a passing check");
    assert_eq!(d.next, Next::Check);
}

#[test]
fn a_timed_out_gate_rolls_back_or_goes_on_as_deploy_json_says() {
    let (s, mut d, _) = at_gate(json!({"gates": [{"at": 50, "timeout": 120}]}));
    let deadline = d.gate.as_ref().unwrap().deadline;
    let mut now = deadline - 20;
    d.after_check(&s, healthy(), now);
    assert_eq!(
        (d.next, d.wait_seconds),
        (Next::Check, 20),
        "never waits past the deadline"
    );
    now = deadline;
    let ev = d.after_check_with(&s, healthy(), now, &Requests::default());
    assert_eq!(ev.actions[0].kind, ActionKind::TimedOut);
    assert_eq!(d.next, Next::Rollback);
    let why = canary_core::decide::rollback::rolled_back_reason("yelb-appserver", &d, None);
    assert!(
        why.contains("rolled back to yelb-appserver-1 at 50%")
            && why.contains("not approved at the 50% gate within 2m"),
        "{why}"
    );

    let (s, mut d, _) =
        at_gate(json!({"gates": [{"at": 50, "timeout": 120, "on_timeout": "continue"}]}));
    let deadline = d.gate.as_ref().unwrap().deadline;
    let ev = d.after_check_with(&s, healthy(), deadline + 1, &Requests::default());
    assert_eq!(ev.actions[0].kind, ActionKind::TimedOut);
    assert!(ev.actions[0].reason.contains("going on"));
    assert_eq!((d.next, d.gate.is_none()), (Next::Shift, true));
}

#[test]
fn the_promotion_gate_waits_at_100_percent_after_the_bake() {
    let s = spec(json!({"gates": [{"at": "promotion"}]}));
    let mut d = deployment(&s);
    d.next = Next::Shift;
    let mut now = 1_000;
    for _ in 0..4 {
        through_step(&s, &mut d, &mut now);
    }
    assert_eq!(d.weight, 100);
    assert_eq!(d.gate.as_ref().map(|g| g.gate.as_str()), Some("promotion"));
    assert_eq!(d.next, Next::Check, "cleanup waits for the approval");
    d.after_check_with(&s, healthy(), now + 20, &approval("promotion"));
    assert_eq!(d.next, Next::Promote);
}

#[test]
fn promote_ends_the_step_and_full_goes_to_100_percent_with_its_bake_still_to_come() {
    // Not full: the next passing check ends the current step, gate or not.
    let s = spec(json!({"gates": [{"at": 50}, {"at": "promotion"}]}));
    let mut d = deployment(&s);
    d.next = Next::Shift;
    d.after_shift(&s, 1_000); // 25%, step just begun
    let ev = d.after_check_with(&s, healthy(), 1_020, &promotion(false));
    assert!(ev.used_promotion);
    assert_eq!(ev.actions[0].kind, ActionKind::Promoted);
    assert_eq!(d.next, Next::Shift);
    assert_eq!(d.next_weight(), Some(50));

    // A failing check does not use the request.
    let mut d = deployment(&s);
    d.next = Next::Shift;
    d.after_shift(&s, 1_000);
    let ev = d.after_check_with(
        &s,
        verdict(VerdictStatus::Unhealthy),
        1_020,
        &promotion(true),
    );
    assert!(!ev.used_promotion);
    assert_eq!(d.next, Next::Rollback);

    // Full: the next shift is to 100%, then the bake's checks, and no gate pauses.
    let mut d = deployment(&s);
    d.next = Next::Shift;
    d.after_shift(&s, 1_000);
    let ev = d.after_check_with(&s, healthy(), 1_020, &promotion(true));
    assert_eq!(ev.actions[0].kind, ActionKind::PromotedFull);
    assert_eq!(d.next_weight(), Some(100));
    d.after_shift(&s, 1_030);
    assert_eq!(
        (d.weight, d.next),
        (100, Next::Check),
        "a check at 100% comes first"
    );
    let mut now = 1_030;
    while d.next == Next::Check {
        assert!(d.gate.is_none(), "promote --full skips the promotion gate");
        now += d.wait_seconds as i64;
        d.after_check(&s, healthy(), now);
    }
    assert_eq!(d.next, Next::Promote);
    assert!(now - 1_030 >= s.bake_time() as i64, "the bake is kept");
}

#[test]
fn a_first_deployment_has_no_gates() {
    let s = spec(json!({"gates": [{"at": "promotion"}]}));
    let mut d = deployment(&s);
    d.stable_version = None;
    d.weight = 100;
    assert!(d.gate_here(&s).is_none());
}

#[test]
fn the_document_round_trips_a_waiting_gate() {
    let (_, d, _) = at_gate(json!({"gates": [{"at": 50}]}));
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["gate"]["gate"], "50%");
    assert_eq!(v["gate"]["on_timeout"], "rollback");
    let back: Deployment = serde_json::from_value(v).unwrap();
    assert_eq!(back, d);
    // Older documents (no gate fields) still read.
    let mut old = serde_json::to_value(deployment(&spec(json!({})))).unwrap();
    old.as_object_mut().unwrap().remove("gate");
    assert!(serde_json::from_value::<Deployment>(old).is_ok());
}
