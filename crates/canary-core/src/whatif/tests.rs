//! The replay on known series: which checks are false alarms, how deployments are
//! counted, and how soon injected failures are caught.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use serde_json::{Value, json};

use super::*;

const T0: i64 = 1_767_225_600;

fn spec(extra: Value) -> DeploySpec {
    let mut doc = json!({
        "cluster_name": "c1",
        "kubernetes_namespace": "shop",
        "microservice_name": "web",
        "percentage_step": 50,
        "wait_time": 60,
        "container_image": "repo/web:2",
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    DeploySpec::parse(&doc, Some("kind: Deployment\n")).expect("valid deploy.json")
}

/// A minute-period history of `errors` and `successes` (same length).
fn history(errors: &[f64], successes: &[f64]) -> History {
    History {
        from: T0,
        period_secs: 60,
        errors: errors.iter().map(|e| Some(*e)).collect(),
        successes: Some(successes.iter().map(|s| Some(*s)).collect()),
        latency_ms: None,
        latency_samples: LatencySamples::PerPeriod,
    }
}

fn alarm_times(r: &Report) -> Vec<i64> {
    r.false_alarms.iter().map(|a| a.at - T0).collect()
}

#[test]
fn a_burst_is_a_false_alarm_at_every_check_whose_window_holds_it() {
    let s = spec(
        json!({"failure_threshold_value": 1, "failure_threshold_time": 120,
                        "version_dimension": "pod_controller_name"}),
    );
    let replay = Replay::of(&s, 4);
    let h = history(&[0., 0., 0., 4., 0., 0., 0., 0.], &[100.; 8]);
    let r = replay.run(&h, None).unwrap();
    // Checks every 60 s from one window (120 s) in to the end (480 s).
    assert_eq!(r.checks, 7);
    assert_eq!(r.canary_weight_percent, 50);
    // The burst (period [180, 240)) is in the windows ending at 240 and 300; the canary
    // holds half the traffic, so it sees 2 errors, more than 1.
    assert_eq!(alarm_times(&r), [240, 300]);
    assert_eq!(r.episodes, 1);
    assert_eq!((r.healthy, r.holds), (5, 0));
    let v = &r.false_alarms[0].verdict;
    assert_eq!(v.errors, 2.0);
    assert_eq!(v.version, Some(4));
    assert!(
        v.reason.contains("more than failure_threshold_value 1"),
        "{}",
        v.reason
    );
    assert!((r.false_alarm_rate_per_check - 2.0 / 7.0).abs() < 1e-12);
}

#[test]
fn whole_service_numbers_are_not_scaled_by_the_canarys_share() {
    let h = history(&[0., 0., 2., 0.], &[50.; 4]);
    let whole = spec(json!({"failure_threshold_value": 1, "failure_threshold_time": 60}));
    let r = Replay::of(&whole, 4).run(&h, None).unwrap();
    assert!(!r.per_version);
    assert_eq!(alarm_times(&r), [180]);
    assert_eq!(r.false_alarms[0].verdict.errors, 2.0);
    assert_eq!(r.false_alarms[0].verdict.version, None);

    let own = spec(
        json!({"failure_threshold_value": 1, "failure_threshold_time": 60,
                          "version_dimension": "pod_controller_name"}),
    );
    let r = Replay::of(&own, 4).run(&h, None).unwrap();
    assert!(r.per_version);
    assert!(r.false_alarms.is_empty(), "{:?}", r.false_alarms);
}

#[test]
fn periods_without_datapoints_are_judged_by_no_data() {
    let s = spec(
        json!({"min_request_count": 10, "no_data": "hold", "max_holds": 1,
                        "failure_threshold_time": 60, "failure_threshold_value": 100}),
    );
    let mut h = history(&[0.; 6], &[40.; 6]);
    for i in [2, 3] {
        h.errors[i] = None;
        h.successes.as_mut().unwrap()[i] = None;
    }
    let replay = Replay::of(&s, 1);
    let r = replay.run(&h, None).unwrap();
    assert_eq!(r.checks, 6);
    assert_eq!(r.holds, 2);
    assert!(r.false_alarms.is_empty());
    // A deployment: 1 check at 50%, 3 at 100% (bake: one interval + 120 s).
    assert_eq!(r.checks_per_deployment, 4);
    assert_eq!(r.deployments, 3);
    // Two holds in a row are more than max_holds 1: every run holding both rolls back.
    assert_eq!(r.deployments_rolled_back, 3);

    let fail = spec(json!({"min_request_count": 10, "no_data": "fail",
                           "failure_threshold_time": 60, "failure_threshold_value": 100}));
    let r = Replay::of(&fail, 1).run(&h, None).unwrap();
    assert_eq!(alarm_times(&r), [180, 240]);
    assert!(
        r.false_alarms[0]
            .verdict
            .reason
            .contains("fewer than min_request_count 10")
    );
}

#[test]
fn a_deployment_judges_each_check_at_its_own_steps_share() {
    // Three errors: at 50% the canary sees 1.5 (not above 2), at 100% it sees 3.
    let s = spec(
        json!({"failure_threshold_value": 2, "failure_threshold_time": 120,
                        "version_dimension": "pod_controller_name"}),
    );
    let mut errors = [0.; 12];
    errors[5] = 3.0;
    let h = history(&errors, &[100.; 12]);
    let r = Replay::of(&s, 2).run(&h, None).unwrap();
    assert!(r.false_alarms.is_empty());
    assert_eq!(r.checks, 11);
    assert_eq!(r.checks_per_deployment, 4);
    assert_eq!(r.deployments, 8);
    // The errors' minute [300, 360) is in the windows of checks 4 and 5. A run starting
    // at check k began at 60 + 60k s: for k = 1, 2, 3 that minute is in a 100% step and
    // one of those checks is in the run; for k = 4 it is the 50% step's minute; for
    // k = 0 the run ends before.
    assert_eq!(r.deployments_rolled_back, 3);
    assert_eq!(r.false_rollback_rate_per_deployment, Some(0.375));
}

#[test]
fn an_injected_error_rate_is_caught_when_the_windows_rate_crosses_the_limit() {
    let s = spec(json!({"max_error_rate": 5, "failure_threshold_value": 1e6,
                        "percentage_step": 10, "version_dimension": "pod_controller_name"}));
    let h = history(&[0.; 60], &[100.; 60]);
    let replay = Replay::of(&s, 2);
    let inj = Injection {
        error_rate: 0.12,
        latency_ms: 0.0,
    };
    let r = replay.run(&h, Some(inj)).unwrap();
    assert!(r.false_alarms.is_empty());
    let c = r.catch.clone().expect("catch times");
    // A deployment: 9 checks at 10%..90%, 3 during the bake at 100%.
    assert_eq!(r.checks_per_deployment, 12);
    // After j minutes of a 600 s window, 1.2j% of the canary's requests failed: 6% > 5%.
    assert_eq!(c.onsets, r.checks - r.checks_per_deployment);
    assert_eq!(c.caught, c.onsets);
    assert_eq!(c.not_caught, 0);
    assert_eq!(
        (c.median_secs, c.p90_secs, c.max_secs),
        (Some(300), Some(300), Some(300))
    );
    // The observation five minutes in: 50 canary requests a minute, 6 of them failed.
    let t = T0 + 1200;
    let obs = replay.observe(&h, t, 0.5, Some((t - 300, inj)));
    assert!((obs.errors.iter().sum::<f64>() - 30.0).abs() < 1e-9);
    assert!((obs.successes.unwrap().iter().sum::<f64>() - 470.0).abs() < 1e-9);
}

#[test]
fn an_onset_first_caught_by_a_false_alarm_is_counted_apart() {
    let s = spec(json!({"max_error_rate": 5, "failure_threshold_value": 1e6,
                        "percentage_step": 10, "version_dimension": "pod_controller_name"}));
    let mut errors = [0.; 60];
    errors[40] = 80.0;
    let h = history(&errors, &[100.; 60]);
    let inj = Injection {
        error_rate: 0.02,
        latency_ms: 0.0,
    };
    let r = Replay::of(&s, 2).run(&h, Some(inj)).unwrap();
    // At 10%, 8 errors in 108 requests (7.4%) in the windows ending 41..=50 minutes in
    // (checks 31..=40): 10 alarms.
    assert_eq!(r.false_alarms.len(), 10);
    let c = r.catch.unwrap();
    assert_eq!(c.onsets, 39);
    // 2% never crosses 5% alone; the onsets whose 12 checks reach the alarms (19..=38)
    // are masked, not caught.
    assert_eq!(c.caught, 0);
    assert_eq!(c.masked_by_false_alarms, 20);
    assert_eq!(c.not_caught, 19);
    assert_eq!(c.median_secs, None);
}

#[test]
fn a_failure_too_small_for_the_rule_is_never_caught() {
    let s = spec(json!({"max_error_rate": 5, "failure_threshold_value": 1e6,
                        "version_dimension": "pod_controller_name"}));
    let h = history(&[0.; 40], &[100.; 40]);
    let inj = Injection {
        error_rate: 0.02,
        latency_ms: 0.0,
    };
    let c = Replay::of(&s, 2).run(&h, Some(inj)).unwrap().catch.unwrap();
    assert!(c.onsets > 0);
    assert_eq!(c.caught, 0);
    assert_eq!(c.not_caught, c.onsets);
    assert_eq!(c.median_secs, None);
}

fn latency_spec(quantile: f64) -> DeploySpec {
    spec(
        json!({"failure_threshold_value": 1e6, "percentage_step": 10, "metrics": {
        "source": "cloudwatch", "latency_metric_name": "latency-web",
        "max_latency_ms": 250, "latency_quantile": quantile}}),
    )
}

#[test]
fn injected_latency_per_period_is_caught_at_the_first_slowed_minute() {
    let s = latency_spec(0.99);
    let mut h = history(&[0.; 30], &[100.; 30]);
    h.latency_ms = Some(vec![Some(100.0); 30]);
    let inj = Injection {
        error_rate: 0.0,
        latency_ms: 200.0,
    };
    let r = Replay::of(&s, 2).run(&h, Some(inj)).unwrap();
    assert!(r.false_alarms.is_empty());
    let c = r.catch.unwrap();
    // Whole-service latency, the canary at 10%: a wholly failed minute is 10% slow,
    // more than the 1% above p99.
    assert_eq!(c.max_secs, Some(60));
    assert_eq!(c.caught, c.onsets);
}

#[test]
fn latency_over_the_whole_window_shifts_once_the_failed_part_passes_the_tail() {
    let s = spec(
        json!({"failure_threshold_value": 1e6, "percentage_step": 10, "metrics": {
        "source": "prometheus", "url": "http://127.0.0.1:9090", "preset": "istio",
        "max_latency_ms": 250, "latency_quantile": 0.5}}),
    );
    let mut h = history(&[0.; 30], &[100.; 30]);
    h.latency_ms = Some(vec![Some(100.0); 30]);
    h.latency_samples = LatencySamples::WindowEnding;
    let inj = Injection {
        error_rate: 0.0,
        latency_ms: 200.0,
    };
    let c = Replay::of(&s, 2).run(&h, Some(inj)).unwrap().catch.unwrap();
    // p50 over 600 s moves once more than half the window failed: 6 minutes.
    assert_eq!((c.median_secs, c.max_secs), (Some(360), Some(360)));
    // A latency above the limit in the data is a false alarm of its own.
    let mut slow = h.clone();
    slow.latency_ms.as_mut().unwrap()[20] = Some(300.0);
    let r = Replay::of(&s, 2).run(&slow, None).unwrap();
    assert_eq!(alarm_times(&r), [21 * 60]);
    assert!(
        r.false_alarms[0]
            .verdict
            .reason
            .contains("latency p50 300 ms")
    );
}

#[test]
fn a_canary_that_behaves_like_stable_is_not_called_worse_and_a_worse_one_is() {
    let s = spec(
        json!({"metrics": {"source": "cloudwatch", "compare_to_stable": true},
                        "version_dimension": "pod_controller_name"}),
    );
    // 1% background errors, 1000 requests a minute.
    let h = history(&[10.; 40], &[990.; 40]);
    let replay = Replay::of(&s, 3);
    let inj = Injection {
        error_rate: 0.05,
        latency_ms: 0.0,
    };
    let r = replay.run(&h, Some(inj)).unwrap();
    assert!(r.false_alarms.is_empty(), "{:?}", r.false_alarms.first());
    assert_eq!(r.deployments_rolled_back, 0);
    let obs = replay.observe(&h, T0 + 600, 0.5, None);
    assert_eq!(obs.stable, Some(Counts::new(5000.0, 50.0)));
    let c = r.catch.unwrap();
    assert_eq!(c.caught, c.onsets);
    // After j minutes the canary's rate is 1 + 0.5j %: at 3 minutes 2.5% against 1% is
    // more than the 1-point margin, z = 1.91, p = 0.028 < 0.05.
    assert_eq!((c.median_secs, c.max_secs), (Some(180), Some(180)), "{c:?}");
}

#[test]
fn a_history_that_does_not_fit_is_an_error() {
    let s = spec(json!({"failure_threshold_time": 600}));
    let replay = Replay::of(&s, 1);
    let h = history(&[0.; 5], &[1.; 5]);
    assert_eq!(
        replay.run(&h, None),
        Err(WhatIfError::TooShort {
            range_secs: 300,
            window_secs: 600
        })
    );
    let mut h = history(&[0.; 20], &[1.; 20]);
    h.successes.as_mut().unwrap().pop();
    assert_eq!(
        replay.run(&h, None),
        Err(WhatIfError::Mismatch {
            series: "successes",
            len: 19,
            expected: 20
        })
    );
}

#[test]
fn the_worst_false_alarms_come_first() {
    let s = spec(json!({"failure_threshold_time": 60}));
    let h = history(&[1., 0., 5., 0., 3.], &[10.; 5]);
    let r = Replay::of(&s, 1).run(&h, None).unwrap();
    let worst: Vec<i64> = r.worst(2).iter().map(|a| a.at - T0).collect();
    assert_eq!(worst, [180, 300]);
}
