//! The rules of the `metrics` section in the verdict: latency at a quantile, and the
//! canary judged against the stable version (a noisy stable version does not fail a
//! good canary; a canary worse than its stable is caught under an absolute threshold;
//! too few requests to compare go to `no_data`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_core::compare::Counts;
use canary_core::verdict::judge_rules;
use canary_core::{DeploySpec, Observation, Rules, VerdictStatus};
use common::seed_doc;
use serde_json::{Value, json};

fn spec(extra: Value) -> DeploySpec {
    let mut doc = seed_doc("yelb-appserver");
    let obj = doc.as_object_mut().unwrap();
    obj.remove("failure_threshold_value");
    for (k, v) in extra.as_object().unwrap() {
        obj.insert(k.clone(), v.clone());
    }
    DeploySpec::parse(&doc, None).unwrap()
}

fn obs(requests: f64, errors: f64) -> Observation {
    Observation {
        errors: vec![errors],
        successes: Some(vec![requests - errors]),
        ..Observation::default()
    }
}

fn prometheus(extra: Value) -> Value {
    let mut m = json!({"source": "prometheus", "url": "http://p:9090", "preset": "istio"});
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

#[test]
fn a_canary_slower_than_max_latency_ms_is_unhealthy_and_the_reason_names_the_quantile() {
    let s = spec(json!({"metrics": prometheus(json!({"max_latency_ms": 250}))}));
    let mut o = obs(1000.0, 0.0);
    o.latency_ms = Some(412.5);
    let v = judge_rules(&Rules::of(&s), 300, Some(2), &o);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.latency_ms, Some(412.5));
    assert!(
        v.reason
            .contains("latency p99 412.5 ms is above max_latency_ms 250 ms"),
        "{}",
        v.reason
    );
    o.latency_ms = Some(120.0);
    let v = judge_rules(&Rules::of(&s), 300, Some(2), &o);
    assert_eq!(v.status, VerdictStatus::Healthy);
    assert!(v.reason.contains("latency p99 120 ms"), "{}", v.reason);
}

#[test]
fn a_latency_rule_at_another_quantile_says_which() {
    let s = spec(
        json!({"metrics": prometheus(json!({"max_latency_ms": 100, "latency_quantile": 0.95}))}),
    );
    let mut o = obs(100.0, 0.0);
    o.latency_ms = Some(101.0);
    let v = judge_rules(&Rules::of(&s), 60, None, &o);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert!(v.reason.contains("p95"), "{}", v.reason);
}

#[test]
fn a_noisy_stable_version_does_not_fail_a_canary_that_is_no_worse() {
    // 1% errors on both sides: an absolute max_error_rate of 0.5% fails the canary,
    // the comparison does not.
    let absolute = spec(json!({"max_error_rate": 0.5, "metrics": prometheus(json!({}))}));
    let v = judge_rules(&Rules::of(&absolute), 300, Some(2), &obs(5000.0, 50.0));
    assert_eq!(v.status, VerdictStatus::Unhealthy, "{}", v.reason);

    let relative = spec(json!({"metrics": prometheus(json!({"compare_to_stable": true}))}));
    let mut o = obs(5000.0, 50.0);
    o.stable = Some(Counts::new(45_000.0, 450.0));
    let v = judge_rules(&Rules::of(&relative), 300, Some(2), &o);
    assert_eq!(v.status, VerdictStatus::Healthy, "{}", v.reason);
    let c = v.comparison.unwrap();
    assert!(c.conclusive() && !c.canary_worse);
    assert_eq!(v.stable, Some(Counts::new(45_000.0, 450.0)));
    assert!(
        v.reason.contains("canary 1.00% vs stable 1.00% errors"),
        "{}",
        v.reason
    );
}

#[test]
fn a_canary_worse_than_its_stable_is_caught_under_an_absolute_threshold() {
    // 3% against 0.2%: within max_error_rate 5%, but clearly worse than the stable.
    let s = spec(json!({"max_error_rate": 5,
        "metrics": prometheus(json!({"compare_to_stable": {"margin_percent": 1}}))}));
    let mut o = obs(2000.0, 60.0);
    o.stable = Some(Counts::new(20_000.0, 40.0));
    let v = judge_rules(&Rules::of(&s), 300, Some(2), &o);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert!(
        v.reason
            .contains("the canary is worse by more than 1 percentage point"),
        "{}",
        v.reason
    );
    assert!(v.reason.contains("two-proportion z-test"), "{}", v.reason);
}

#[test]
fn too_few_requests_to_compare_go_to_the_no_data_policy() {
    for (policy, status) in [
        ("fail", VerdictStatus::Unhealthy),
        ("pass", VerdictStatus::Healthy),
        ("hold", VerdictStatus::Hold),
    ] {
        let s = spec(json!({"no_data": policy,
            "metrics": prometheus(json!({"compare_to_stable": true}))}));
        let mut o = obs(20.0, 0.0);
        o.stable = Some(Counts::new(10_000.0, 5.0));
        let v = judge_rules(&Rules::of(&s), 300, Some(2), &o);
        assert_eq!(v.status, status, "{policy}: {}", v.reason);
        assert!(
            v.reason.contains("too few requests to compare"),
            "{}",
            v.reason
        );
    }
}

#[test]
fn a_given_count_of_errors_still_applies_when_comparing() {
    let s = spec(json!({"failure_threshold_value": 10,
        "metrics": prometheus(json!({"compare_to_stable": true}))}));
    let mut o = obs(100_000.0, 1000.0);
    o.stable = Some(Counts::new(100_000.0, 1000.0));
    let v = judge_rules(&Rules::of(&s), 300, Some(2), &o);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert!(
        v.reason.contains("failure_threshold_value 10"),
        "{}",
        v.reason
    );
}

#[test]
fn small_counts_are_compared_with_the_exact_test() {
    let s =
        spec(json!({"metrics": prometheus(json!({"compare_to_stable": {"margin_percent": 0}}))}));
    let mut o = obs(60.0, 9.0);
    o.stable = Some(Counts::new(60.0, 0.0));
    let v = judge_rules(&Rules::of(&s), 300, Some(2), &o);
    assert_eq!(v.status, VerdictStatus::Unhealthy, "{}", v.reason);
    assert!(v.reason.contains("Fisher's exact test"), "{}", v.reason);
}

#[test]
fn at_100_percent_the_canary_is_compared_with_the_stable_versions_last_window() {
    let s = spec(json!({"metrics": prometheus(json!({"compare_to_stable": true}))}));
    // During the bake the stable version serves nothing.
    let mut o = obs(3000.0, 240.0);
    o.stable = Some(Counts::new(0.0, 0.0));
    let without = judge_rules(&Rules::of(&s), 60, Some(2), &o);
    assert_eq!(without.status, VerdictStatus::Hold, "{}", without.reason);
    let baseline = Some(Counts::new(12_000.0, 120.0));
    let v = judge_rules(&Rules::of(&s).with_baseline(baseline), 60, Some(2), &o);
    assert_eq!(v.status, VerdictStatus::Unhealthy, "{}", v.reason);
    assert!(
        v.reason.contains("last window with enough requests"),
        "{}",
        v.reason
    );
    // The verdict carries the baseline on, for the next check.
    assert_eq!(v.stable, baseline);
    // A canary as good as the baseline passes.
    let good = obs(3000.0, 30.0);
    let mut g = good.clone();
    g.stable = Some(Counts::new(0.0, 0.0));
    let v = judge_rules(&Rules::of(&s).with_baseline(baseline), 60, Some(2), &g);
    assert_eq!(v.status, VerdictStatus::Healthy, "{}", v.reason);
}

#[test]
fn rate_rules_lift_the_default_count_and_comparisons_hold_by_default() {
    let rate = spec(json!({"max_error_rate": 2}));
    assert_eq!(
        rate.failure_threshold_value,
        canary_core::spec::NO_COUNT_LIMIT
    );
    let v = judge_rules(&Rules::of(&rate), 60, None, &obs(1000.0, 5.0));
    assert_eq!(v.status, VerdictStatus::Healthy, "{}", v.reason);
    let compared =
        spec(json!({"metrics": prometheus(json!({"compare_to_stable": true})), "max_holds": 5}));
    assert_eq!(compared.health.no_data, canary_core::NoDataPolicy::Hold);
    assert_eq!(compared.health.max_holds, 5);
    let plain = spec(json!({}));
    assert_eq!(plain.health.no_data, canary_core::NoDataPolicy::Fail);
    assert_eq!(plain.failure_threshold_value, 0.0);
}
