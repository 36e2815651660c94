//! The pure decisions of the flow: verdicts from numbers, and what the state machine does
//! after a readiness probe, a shift and a health check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_core::execution::{Deployment, Next, RouteRef};
use canary_core::provider::appmesh::APP_MESH;
use canary_core::verdict::judge;
use canary_core::{DeploySpec, NoDataPolicy, Observation, Verdict, VerdictStatus, schedule};
use common::*;
use serde_json::json;

fn spec(extra: serde_json::Value) -> DeploySpec {
    let mut doc = seed_doc("yelb-appserver");
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    DeploySpec::parse(&doc, None).unwrap()
}

fn obs(errors: &[f64], successes: Option<&[f64]>) -> Observation {
    Observation {
        errors: errors.to_vec(),
        successes: successes.map(<[f64]>::to_vec),
        ..Observation::default()
    }
}

/// The original design's rule: the sum of the 5xx datapoints above the threshold.
fn original_rule(threshold: f64, errors: &[f64]) -> bool {
    errors.iter().sum::<f64>() > threshold
}

#[test]
fn seed_settings_judge_exactly_as_the_original_rule() {
    let s = spec(json!({}));
    for threshold in [0.0, 1.0, 5.0] {
        for errors in [
            vec![],
            vec![0.0],
            vec![0.0, 0.0, 1.0],
            vec![2.0, 3.0],
            vec![5.0],
            vec![6.0],
        ] {
            let v = judge(&s.health, threshold, 300, None, &obs(&errors, None));
            assert_eq!(
                v.status == VerdictStatus::Unhealthy,
                original_rule(threshold, &errors),
                "{threshold} {errors:?}"
            );
            assert!(v.reason.contains("errors over 300 s"), "{}", v.reason);
        }
    }
}

#[test]
fn the_error_rate_is_errors_over_errors_plus_successes() {
    let s = spec(json!({"max_error_rate": 2.0, "failure_threshold_value": 1000}));
    let v = judge(&s.health, 1000.0, 60, None, &obs(&[3.0], Some(&[97.0])));
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.requests, Some(100.0));
    assert_eq!(v.error_rate, Some(3.0));
    assert!(
        v.reason
            .contains("error rate 3% is above max_error_rate 2%"),
        "{}",
        v.reason
    );
    let v = judge(&s.health, 1000.0, 60, None, &obs(&[1.0], Some(&[99.0])));
    assert_eq!(v.status, VerdictStatus::Healthy);
}

#[test]
fn too_little_traffic_follows_the_no_data_policy_and_says_how_much_it_saw() {
    for (policy, want) in [
        ("fail", VerdictStatus::Unhealthy),
        ("pass", VerdictStatus::Healthy),
        ("hold", VerdictStatus::Hold),
    ] {
        let s = spec(json!({"min_request_count": 100, "no_data": policy}));
        let v = judge(&s.health, 0.0, 300, None, &obs(&[0.0], Some(&[12.0])));
        assert_eq!(v.status, want, "{policy}");
        assert!(
            v.reason.contains("in 12 requests") && v.reason.contains("min_request_count 100"),
            "{}",
            v.reason
        );
    }
    let s = spec(json!({"min_request_count": 100}));
    assert_eq!(s.health.no_data, NoDataPolicy::Fail);
    let v = judge(&s.health, 0.0, 300, None, &obs(&[], Some(&[])));
    assert_eq!(
        v.status,
        VerdictStatus::Unhealthy,
        "silence is never healthy once a minimum is set"
    );
}

#[test]
fn errors_above_the_threshold_fail_even_with_too_little_traffic() {
    let s = spec(json!({"min_request_count": 100, "no_data": "pass"}));
    let v = judge(&s.health, 0.0, 300, None, &obs(&[4.0], Some(&[1.0])));
    assert_eq!(v.status, VerdictStatus::Unhealthy);
}

fn deployment(spec: &DeploySpec, first: bool) -> Deployment {
    Deployment {
        execution: "exec-1".into(),
        canary_version: 2,
        stable_version: (!first).then_some(1),
        stable_image: None,
        provider: APP_MESH,
        route: RouteRef {
            api_version: "appmesh.k8s.aws/v1beta2".into(),
            kind: "VirtualRouter".into(),
            name: "yelb-appserver".into(),
        },
        schedule: schedule::schedule(spec, first),
        step: 0,
        weight: 0,
        max_weight: 0,
        lock_token: "t".into(),
        manifest_key: None,
        record_key: None,
        started_at: 0,
        ready_deadline: 600,
        step_started_at: None,
        checks: 0,
        holds: 0,
        verdict: None,
        next: Next::Apply,
        wait_seconds: 0,
        outcome: None,
        gate: None,
        skip_gates: false,
        rollback_reason: None,
        actions: Vec::new(),
    }
}

fn verdict(status: VerdictStatus) -> Verdict {
    Verdict {
        status,
        errors: 0.0,
        requests: None,
        error_rate: None,
        window_seconds: 60,
        datapoints: 0,
        version: None,
        latency_ms: None,
        comparison: None,
        stable: None,
        reason: "r".into(),
    }
}

#[test]
fn a_first_deployment_is_promoted_right_after_its_only_shift() {
    let s = spec(json!({}));
    let mut d = deployment(&s, true);
    d.after_apply();
    assert_eq!((d.next, d.wait_seconds), (Next::WaitReady, 10));
    d.after_ready_probe(true);
    assert_eq!(d.next, Next::Shift);
    d.after_shift(&s, 100);
    assert_eq!((d.weight, d.next), (100, Next::Promote));
}

#[test]
fn a_healthy_canary_checks_every_interval_and_shifts_when_the_step_is_over() {
    let s = spec(json!({"wait_time": 60, "check_interval": 20, "bake_time": 30}));
    let mut d = deployment(&s, false);
    let mut now = 1_000;
    let mut shifts = vec![];
    let mut checks = 0;
    loop {
        match d.next {
            Next::Apply | Next::WaitReady => d.after_ready_probe(true),
            Next::Shift => {
                d.after_shift(&s, now);
                shifts.push(d.weight);
            }
            Next::Check => {
                now += i64::try_from(d.wait_seconds).unwrap();
                checks += 1;
                d.after_check(&s, verdict(VerdictStatus::Healthy), now);
            }
            Next::Promote => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(shifts, vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    assert_eq!(
        checks,
        9 * 3 + 2,
        "three checks per 60 s step, two in the 30 s bake"
    );
    assert_eq!(d.max_weight, 100);
}

#[test]
fn an_unhealthy_verdict_rolls_back_at_once() {
    let s = spec(json!({}));
    let mut d = deployment(&s, false);
    d.after_shift(&s, 0);
    d.after_check(&s, verdict(VerdictStatus::Unhealthy), 30);
    assert_eq!((d.next, d.wait_seconds), (Next::Rollback, 0));
}

#[test]
fn holds_are_bounded_by_max_holds_and_reset_by_a_healthy_check() {
    let s = spec(
        json!({"min_request_count": 10, "no_data": "hold", "max_holds": 2, "check_interval": 10}),
    );
    let mut d = deployment(&s, false);
    d.after_shift(&s, 0);
    d.after_check(&s, verdict(VerdictStatus::Hold), 10);
    assert_eq!(d.next, Next::Check);
    d.after_check(&s, verdict(VerdictStatus::Healthy), 20);
    assert_eq!(d.holds, 0);
    d.after_check(&s, verdict(VerdictStatus::Hold), 30);
    d.after_check(&s, verdict(VerdictStatus::Hold), 40);
    assert_eq!(d.next, Next::Check);
    d.after_check(&s, verdict(VerdictStatus::Hold), 50);
    assert_eq!(d.next, Next::Rollback);
}

#[test]
fn a_hold_never_advances_even_when_the_step_is_over() {
    let s = spec(json!({"min_request_count": 10, "no_data": "hold", "check_interval": 60}));
    let mut d = deployment(&s, false);
    d.after_shift(&s, 0);
    d.after_check(&s, verdict(VerdictStatus::Hold), 600);
    assert_eq!(d.next, Next::Check);
    assert_eq!(d.weight, 10);
}

#[test]
fn the_plan_counts_checks_and_warns_when_a_deployment_cannot_fit_one_execution() {
    let p = schedule::plan(&spec(json!({})));
    assert_eq!(
        p.checks,
        9 + 3,
        "one check per 60 s step, three in the 180 s bake"
    );
    assert_eq!(p.steps.last().map(|s| s.hold_secs), Some(180));
    assert!(p.history_events < schedule::MAX_HISTORY_EVENTS);
    let mut doc = seed_doc("yelb-appserver");
    doc["percentage_step"] = json!(1);
    doc["wait_time"] = json!(7200);
    doc["check_interval"] = json!(10);
    let err = DeploySpec::parse(&doc, None).unwrap_err().to_string();
    assert!(
        err.contains("`check_interval` = 10") && err.contains("history events"),
        "{err}"
    );
}
