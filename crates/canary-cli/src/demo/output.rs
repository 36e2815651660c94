//! The demo's text for a person: the introductions, each scenario's timeline and
//! summary, and the final table.

use crate::format::mmss;
use crate::harness::fixtures::{CHECK_INTERVAL, READY_DELAY, REQUESTS_PER_SECOND};

use super::scenarios::{Scenario, ScenarioResult};

/// What the demo runs, printed before the scenarios.
pub fn intro_text() -> String {
    format!(
        "eks-canary demo: the real state machine (statemachine/canary-deployment.asl.json, local executor) and the\n\
         real handlers, against a simulated Kubernetes API server on 127.0.0.1 reached through the kube client,\n\
         with {REQUESTS_PER_SECOND} req/s of simulated traffic feeding the health check, an in-memory record store and a\n\
         virtual clock. deploy.json: the seed's yelb-appserver (10% steps, wait_time 60 s, failure_threshold_value 0\n\
         over 300 s) plus check_interval {CHECK_INTERVAL} s; App Mesh VirtualRouter; Deployments ready {} s after a change.\n",
        READY_DELAY.as_secs()
    )
}

/// What the fault matrix runs, printed before it.
pub const FAULT_MATRIX_INTRO: &str = "eks-canary fault matrix: v2 deployed beside a promoted v1 with one fault injected per cell\n\
     (error = KubeError from that call on; timeout = the handler ran, its answer was lost;\n\
     crash = the process died first). Each cell must end with all traffic on one version, no\n\
     other version's objects, the lock released and the record written.\n";

/// The heading of one scenario: its number, title and name, and what was set up first.
pub fn heading_text(number: usize, scenario: Scenario) -> String {
    let mut out = format!("{number}. {} [{}]\n", scenario.title(), scenario.name());
    if !scenario.setup_versions().is_empty() {
        let before: Vec<String> = scenario
            .setup_versions()
            .iter()
            .map(|v| format!("v{v}"))
            .collect();
        out.push_str(&format!(
            "   (set up first: {} deployed and promoted)\n",
            before.join(", ")
        ));
    }
    out
}

/// The last line: whether every scenario ended as expected, and the real time taken.
pub fn closing_text(results: &[ScenarioResult]) -> String {
    let all_passed = results.iter().all(|r| r.passed);
    let real: u128 = results.iter().map(|r| r.real_millis).sum();
    format!(
        "\n{} in {:.1} s of real time.\n",
        if all_passed {
            "Every scenario ended as expected"
        } else {
            "SOME SCENARIOS DID NOT END AS EXPECTED"
        },
        real as f64 / 1000.0
    )
}

/// The timeline of one scenario for a person: time, state, weight, what happened.
/// Consecutive healthy checks at one weight are shown as one line.
pub fn timeline_text(result: &ScenarioResult) -> String {
    let start = result.started_millis;
    let mut out = String::from("    time   state           weight  what happened\n");
    let rows = &result.timeline;
    let mut i = 0;
    while i < rows.len() {
        let row = &rows[i];
        let mut j = i + 1;
        // A check that shifted (its weight is above the row before) keeps its own line.
        let shifted = i > 0 && rows[i - 1].weight < row.weight;
        if row.state == "HealthCheck" && !row.bad && !shifted {
            while j < rows.len()
                && rows[j].state == "HealthCheck"
                && !rows[j].bad
                && rows[j].weight == row.weight
            {
                j += 1;
            }
        }
        let last = &rows[j - 1];
        let state = if j - i > 1 {
            format!("HealthCheck x{}", j - i)
        } else {
            row.state.clone()
        };
        let marker = if last.bad { "!" } else { " " };
        out.push_str(&format!(
            "  {marker} {:>5}  {:<15} {:>4}%   {}\n",
            mmss(last.at_millis - start),
            state,
            last.weight,
            last.note
        ));
        i = j;
    }
    out
}

/// The notifications a scenario sent, one line each: detail-type, weight, reason.
pub fn notifications_text(result: &ScenarioResult) -> String {
    let mut out = format!("    notifications ({}):\n", result.notifications.len());
    for n in &result.notifications {
        let weight = n.weight.map_or_else(|| "-".to_owned(), |w| format!("{w}%"));
        out.push_str(&format!(
            "      {:<24} {weight:>4}  {}\n",
            n.detail_type, n.reason
        ));
    }
    out
}

/// The paragraph under a scenario's timeline.
pub fn summary_text(r: &ScenarioResult) -> String {
    let verdict = if r.passed {
        "as expected"
    } else {
        "NOT as expected"
    };
    let timing = match (r.time_to_full_traffic_secs, r.time_to_rollback_secs) {
        (_, Some(t)) if r.max_weight == 0 => format!(
            "the canary never took traffic; rolled back {} after the start",
            mmss(t * 1000)
        ),
        (_, Some(t)) => format!(
            "all traffic back on v{} {} after the canary first took traffic",
            r.expected.stable_after,
            mmss(t * 1000)
        ),
        (Some(t), None) => format!(
            "full traffic on v{} after {}",
            r.expected.version,
            mmss(t * 1000)
        ),
        (None, None) => "no traffic change".to_owned(),
    };
    let failed: Vec<String> = r
        .cluster_checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{} ({})", c.name, c.detail))
        .collect();
    let checks = if failed.is_empty() {
        format!(
            "final state checked: {}",
            r.cluster_checks
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!("FAILED checks: {}", failed.join("; "))
    };
    format!(
        "  {} ({verdict}): {}.\n  {timing}; {} virtual in {} state transitions ({} health check{}, max weight {}%); \
         {} API requests to the cluster ({} writes, {} to the route); {}; {} ms real time.\n",
        r.outcome.to_uppercase().replace('_', " "),
        r.reason,
        mmss(r.duration_secs * 1000),
        r.transitions,
        r.checks_run,
        if r.checks_run == 1 { "" } else { "s" },
        r.max_weight,
        r.api_requests,
        r.api_writes,
        r.route_writes,
        checks,
        r.real_millis
    )
}

/// The final table of every scenario run.
pub fn table_text(results: &[ScenarioResult]) -> String {
    let mut out = format!(
        "  {:<18} {:<9} {:<12} {:>7} {:>8} {:>11} {:>9}  {}\n",
        "scenario", "version", "outcome", "virtual", "states", "API req/wr", "checks", "result"
    );
    for r in results {
        out.push_str(&format!(
            "  {:<18} {:<9} {:<12} {:>7} {:>8} {:>11} {:>9}  {}\n",
            r.scenario,
            format!("v{}", r.expected.version),
            r.outcome,
            mmss(r.duration_secs * 1000),
            r.transitions,
            format!("{}/{}", r.api_requests, r.api_writes),
            format!(
                "{}/{}",
                r.cluster_checks.iter().filter(|c| c.ok).count(),
                r.cluster_checks.len()
            ),
            if r.passed { "ok" } else { "FAILED" }
        ));
    }
    out
}
