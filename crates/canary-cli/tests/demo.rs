//! The demo's scenarios: the real definition and handlers against the simulated
//! cluster end as expected, and the final state holds (one version serves all traffic,
//! nothing of the other version is left, the lock is released, the record is written).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use canary_cli::demo::{self, Scenario, run_scenario};

async fn assert_scenario(scenario: Scenario) -> demo::ScenarioResult {
    let r = run_scenario(scenario).await;
    assert!(
        r.passed,
        "{} did not end as expected:\n{}\n{}\n{:#?}",
        r.scenario,
        demo::timeline_text(&r),
        demo::summary_text(&r),
        r.cluster_checks
    );
    assert!(r.cluster_checks.len() >= 5);
    r
}

#[tokio::test]
async fn a_first_deployment_goes_straight_to_full_traffic_and_is_promoted() {
    let r = assert_scenario(Scenario::FirstDeployment).await;
    assert_eq!(r.max_weight, 100);
    assert_eq!(r.checks_run, 0);
    assert_eq!(r.route_writes, 1);
    println!("{}{}", demo::timeline_text(&r), demo::summary_text(&r));
}

#[tokio::test]
async fn a_healthy_canary_goes_through_every_step_and_the_old_version_is_removed() {
    let r = assert_scenario(Scenario::HealthyCanary).await;
    // Every weight in turn, each set by the task that allowed it: the first by
    // DeployCanary once v2 was ready, the others by the HealthCheck that ended a step.
    let mut shifts: Vec<(&str, u8)> = Vec::new();
    for row in &r.timeline {
        if row.weight > shifts.last().map_or(0, |s| s.1) {
            shifts.push((row.state.as_str(), row.weight));
        }
    }
    let weights: Vec<u8> = shifts.iter().map(|s| s.1).collect();
    assert_eq!(weights, vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    assert_eq!(shifts[0].0, "DeployCanary");
    assert!(
        shifts[1..].iter().all(|s| s.0 == "HealthCheck"),
        "{shifts:?}"
    );
    assert!(!r.timeline.iter().any(|row| row.state == "ShiftWeights"));
    // Fewer transitions than the original's 53 for these settings.
    assert!(r.transitions <= 45, "{} transitions", r.transitions);
    // The apply (stable keeps 100%), ten shifts and the promotion: one write each.
    assert_eq!(r.route_writes, 12);
    println!("{}{}", demo::timeline_text(&r), demo::summary_text(&r));
}

#[tokio::test]
async fn a_faulty_canary_is_caught_at_its_first_step_and_rolled_back_with_the_numbers() {
    let r = assert_scenario(Scenario::FaultyCanary).await;
    assert_eq!(r.max_weight, 10);
    let bad = r
        .timeline
        .iter()
        .find(|row| row.state == "HealthCheck" && row.bad)
        .expect("an unhealthy check");
    assert_eq!(bad.weight, 10);
    let verdict = bad.verdict.as_ref().expect("the verdict");
    assert!(verdict.errors > 0.0, "{verdict:?}");
    // Caught within one check interval of the first shift.
    assert!(
        r.time_to_rollback_secs.unwrap()
            <= canary_cli::harness::fixtures::CHECK_INTERVAL as i64 + 5,
        "{r:?}"
    );
    println!("{}{}", demo::timeline_text(&r), demo::summary_text(&r));
}

#[tokio::test]
async fn a_canary_that_never_becomes_ready_is_rolled_back_with_the_pods_reason() {
    let r = assert_scenario(Scenario::CanaryNotReady).await;
    assert_eq!(r.max_weight, 0);
    assert!(r.reason.contains("ImagePullBackOff"), "{}", r.reason);
    println!("{}{}", demo::timeline_text(&r), demo::summary_text(&r));
}

/// The detail-types a scenario's deployment sent, in order.
fn sent(r: &demo::ScenarioResult) -> Vec<&str> {
    r.notifications
        .iter()
        .map(|n| n.detail_type.as_str())
        .collect()
}

#[tokio::test]
async fn each_scenario_notifies_every_decision_in_order_each_with_its_own_id() {
    let shifted = |n: usize| std::iter::repeat_n("Canary Shifted", n);
    let first = assert_scenario(Scenario::FirstDeployment).await;
    assert_eq!(
        sent(&first),
        [
            "Canary Started",
            "Canary Ready",
            "Canary Shifted",
            "Canary Promoted"
        ]
    );
    let healthy = assert_scenario(Scenario::HealthyCanary).await;
    let mut want = vec!["Canary Started", "Canary Ready"];
    want.extend(shifted(10));
    want.push("Canary Promoted");
    assert_eq!(sent(&healthy), want);
    let weights: Vec<Option<u64>> = healthy.notifications[2..12]
        .iter()
        .map(|n| n.weight)
        .collect();
    assert_eq!(weights, (1..=10).map(|w| Some(w * 10)).collect::<Vec<_>>());
    let faulty = assert_scenario(Scenario::FaultyCanary).await;
    assert_eq!(
        sent(&faulty),
        [
            "Canary Started",
            "Canary Ready",
            "Canary Shifted",
            "Canary Unhealthy",
            "Canary Rolled Back"
        ]
    );
    // The unhealthy verdict carries its numbers; the rollback names its weight.
    let unhealthy = &faulty.notifications[3].detail;
    assert!(
        unhealthy["verdict"]["errors"].as_f64().unwrap() > 0.0,
        "{unhealthy}"
    );
    assert_eq!(faulty.notifications[4].weight, Some(10));
    let not_ready = assert_scenario(Scenario::CanaryNotReady).await;
    assert_eq!(
        sent(&not_ready),
        ["Canary Started", "Canary Not Ready", "Canary Rolled Back"]
    );
    assert!(
        not_ready.notifications[1]
            .reason
            .contains("ImagePullBackOff"),
        "{:?}",
        not_ready.notifications[1]
    );
    for r in [&first, &healthy, &faulty, &not_ready] {
        let mut ids: Vec<&str> = r.notifications.iter().map(|n| n.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), r.notifications.len(), "{}", r.scenario);
        for n in &r.notifications {
            assert_eq!(n.detail["service"], "yelb-appserver");
            assert_eq!(n.detail["namespace"], "yelb");
            assert_eq!(n.detail["cluster"], "blogpost");
            assert_eq!(n.detail["id"], n.id.as_str());
        }
    }
}
