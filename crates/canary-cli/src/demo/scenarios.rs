//! The demo's five scenarios (a first deployment, a healthy canary promoted, a faulty
//! one rolled back, one that never becomes ready, one that pauses at a gate until a
//! person approves): what each deploys, how it must end,
//! and running one in the harness ([`run_scenario`]) into a [`ScenarioResult`].

use std::time::Instant;

use canary_core::Deployment;
use canary_core::execution::OutcomeStatus;
use canary_sfn::{Execution, Status};
use serde::Serialize;

use crate::format::outcome_word;
use crate::harness::approver::Approver;
use crate::harness::fixtures::{
    FAULTY_ERROR_RATE, NAMESPACE, START_MILLIS, deploy_document, image,
};
use crate::harness::{Check, DemoEnv};
use crate::progress::{Row, Tracker};

/// The demo's scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// v1 on an empty cluster: straight to 100%, promoted.
    FirstDeployment,
    /// v2 with no errors beside v1: every step, promoted, v1 removed.
    HealthyCanary,
    /// v3 answering 25% 5xx beside v2: caught at the first step, rolled back.
    FaultyCanary,
    /// v3 whose image cannot be pulled: never ready, rolled back with the reason.
    CanaryNotReady,
    /// v3 with a gate at 50%: it pauses there, checks going on, until a person
    /// approves five minutes later on the virtual clock; then every step, promoted.
    GateApproved,
}

/// The gate of the gate scenario, and how long its person takes to approve.
pub const DEMO_GATE: u8 = 50;
/// Seconds between the pause and the approval in the gate scenario.
pub const DEMO_APPROVAL_AFTER_SECS: i64 = 300;
/// Who approves in the gate scenario.
pub const DEMO_APPROVER: &str = "demo-operator";

/// How a scenario must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expectation {
    /// The version the scenario deploys.
    pub version: u32,
    /// Promoted or rolled back.
    pub outcome: OutcomeStatus,
    /// The version serving all traffic at the end.
    pub stable_after: u32,
    /// A word the reason must contain (the evidence: the numbers, the pods' reason).
    pub reason_contains: &'static str,
}

impl Scenario {
    /// Every scenario, in the order the demo runs them.
    pub const ALL: [Scenario; 5] = [
        Self::FirstDeployment,
        Self::HealthyCanary,
        Self::FaultyCanary,
        Self::CanaryNotReady,
        Self::GateApproved,
    ];

    /// The name `--scenario` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::FirstDeployment => "first-deployment",
            Self::HealthyCanary => "healthy-canary",
            Self::FaultyCanary => "faulty-canary",
            Self::CanaryNotReady => "canary-not-ready",
            Self::GateApproved => "gate-approved",
        }
    }

    /// The scenario named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// One line: what happens.
    pub fn title(self) -> String {
        match self {
            Self::FirstDeployment => "first deployment of v1 on an empty cluster".into(),
            Self::HealthyCanary => "healthy canary: v2 (0% errors) beside v1".into(),
            Self::FaultyCanary => format!(
                "faulty canary: v3 answers {:.0}% of its requests with 5xx, beside v2",
                FAULTY_ERROR_RATE * 100.0
            ),
            Self::CanaryNotReady => {
                "canary that never becomes ready: v3's image is in ImagePullBackOff".into()
            }
            Self::GateApproved => format!(
                "gate: v3 pauses at {DEMO_GATE}% beside v2 until {DEMO_APPROVER} approves {} min later",
                DEMO_APPROVAL_AFTER_SECS / 60
            ),
        }
    }

    /// The versions deployed (and promoted) before the scenario's own deployment.
    pub fn setup_versions(self) -> &'static [u32] {
        match self {
            Self::FirstDeployment => &[],
            Self::HealthyCanary => &[1],
            Self::FaultyCanary | Self::CanaryNotReady | Self::GateApproved => &[1, 2],
        }
    }

    /// How it must end.
    pub fn expectation(self) -> Expectation {
        match self {
            Self::FirstDeployment => Expectation {
                version: 1,
                outcome: OutcomeStatus::Promoted,
                stable_after: 1,
                reason_contains: "first deployment",
            },
            Self::HealthyCanary => Expectation {
                version: 2,
                outcome: OutcomeStatus::Promoted,
                stable_after: 2,
                reason_contains: "promoted",
            },
            Self::FaultyCanary => Expectation {
                version: 3,
                outcome: OutcomeStatus::RolledBack,
                stable_after: 2,
                reason_contains: "errors",
            },
            Self::CanaryNotReady => Expectation {
                version: 3,
                outcome: OutcomeStatus::RolledBack,
                stable_after: 2,
                reason_contains: "ImagePullBackOff",
            },
            Self::GateApproved => Expectation {
                version: 3,
                outcome: OutcomeStatus::Promoted,
                stable_after: 3,
                reason_contains: "promoted",
            },
        }
    }
}

/// How one scenario went.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    /// `first-deployment`, ...
    pub scenario: String,
    /// What happens in it.
    pub title: String,
    /// How it had to end.
    pub expected: Expectation,
    /// `promoted`, `rolled_back`, or the execution's error when it ended otherwise.
    pub outcome: String,
    /// Why, in one sentence (the record's reason, or the execution's cause).
    pub reason: String,
    /// The execution's final status (`Succeeded`, or the Fail state's error).
    pub execution: String,
    /// When the deployment's execution started, on the virtual clock (Unix ms).
    pub started_millis: i64,
    /// The deployment's timeline, one row per task.
    pub timeline: Vec<Row>,
    /// State transitions, as Step Functions counts them.
    pub transitions: usize,
    /// Virtual seconds from start to end.
    pub duration_secs: i64,
    /// Virtual seconds from start until the canary took all traffic (promotions).
    pub time_to_full_traffic_secs: Option<i64>,
    /// Virtual seconds from the canary's first traffic (or, if it never had any, from
    /// the start) until all traffic was back on the stable version (rollbacks).
    pub time_to_rollback_secs: Option<i64>,
    /// The highest weight the canary reached.
    pub max_weight: u8,
    /// Health checks run.
    pub checks_run: u32,
    /// Requests the simulated API server received during the deployment.
    pub api_requests: usize,
    /// Of which writes (POST, PUT, PATCH, DELETE).
    pub api_writes: usize,
    /// Writes to the route object.
    pub route_writes: usize,
    /// The final-state checks.
    pub cluster_checks: Vec<Check>,
    /// The notifications the scenario's deployment sent, in order.
    pub notifications: Vec<SentNotification>,
    /// Whether the scenario ended as expected and every check holds.
    pub passed: bool,
    /// Real milliseconds the scenario took, setup included.
    pub real_millis: u128,
}

/// A notification a scenario sent, as the demo shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentNotification {
    /// Its stable id.
    pub id: String,
    /// The EventBridge `detail-type`.
    pub detail_type: String,
    /// The canary's weight it reports.
    pub weight: Option<u64>,
    /// Its reason.
    pub reason: String,
    /// The whole EventBridge `detail`.
    pub detail: serde_json::Value,
}

impl SentNotification {
    fn of(n: &canary_core::notify::Notification) -> Self {
        Self {
            id: n.id.clone(),
            detail_type: n.detail_type.clone(),
            weight: n.weight(),
            reason: n.reason().to_owned(),
            detail: n.detail.clone(),
        }
    }
}

/// Whether the notifications tell the deployment's story: "Canary Started" first,
/// its end last, and no id twice.
fn notifications_tell(sent: &[SentNotification], outcome: OutcomeStatus) -> bool {
    let types: Vec<&str> = sent.iter().map(|n| n.detail_type.as_str()).collect();
    let last = match outcome {
        OutcomeStatus::Promoted => "Canary Promoted",
        OutcomeStatus::RolledBack => "Canary Rolled Back",
    };
    let mut ids: Vec<&str> = sent.iter().map(|n| n.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    types.first() == Some(&"Canary Started")
        && types.last() == Some(&last)
        && ids.len() == sent.len()
}

/// Runs `scenario` in a fresh [`DemoEnv`] and checks how it ended.
pub async fn run_scenario(scenario: Scenario) -> ScenarioResult {
    let started = Instant::now();
    let mut result = match DemoEnv::start().await {
        Ok(env) => {
            let r = run_scenario_in(&env, scenario).await;
            env.shutdown().await;
            r
        }
        Err(e) => failed_to_start(scenario, &e.to_string()),
    };
    result.real_millis = started.elapsed().as_millis();
    result
}

fn failed_to_start(scenario: Scenario, why: &str) -> ScenarioResult {
    ScenarioResult {
        scenario: scenario.name().into(),
        title: scenario.title(),
        expected: scenario.expectation(),
        outcome: "not run".into(),
        reason: why.to_owned(),
        execution: "not run".into(),
        started_millis: START_MILLIS,
        timeline: Vec::new(),
        transitions: 0,
        duration_secs: 0,
        time_to_full_traffic_secs: None,
        time_to_rollback_secs: None,
        max_weight: 0,
        checks_run: 0,
        api_requests: 0,
        api_writes: 0,
        route_writes: 0,
        cluster_checks: Vec::new(),
        notifications: Vec::new(),
        passed: false,
        real_millis: 0,
    }
}

/// What the simulated API server has counted so far.
#[derive(Debug, Clone, Copy)]
struct Counters {
    requests: usize,
    writes: usize,
    route_writes: usize,
}

impl Counters {
    fn of(env: &DemoEnv) -> Self {
        Self {
            requests: env.sim.requests().len(),
            writes: env.sim.write_count(),
            route_writes: env.sim.weight_history(NAMESPACE).len(),
        }
    }

    /// The counts since `before`.
    fn since(self, before: Self) -> Self {
        Self {
            requests: self.requests.saturating_sub(before.requests),
            writes: self.writes.saturating_sub(before.writes),
            route_writes: self.route_writes.saturating_sub(before.route_writes),
        }
    }
}

/// The outcome word (or the execution's error), the reason and the execution's status.
fn ending(run: &Execution, deployment: Option<&Deployment>) -> (String, String, String) {
    let (outcome, reason) = match (&run.status, deployment.and_then(|d| d.outcome.as_ref())) {
        (_, Some(o)) => (outcome_word(o.status).to_owned(), o.reason.clone()),
        (Status::Failed { error, cause }, None) => (
            format!("failed: {error}"),
            canary_core::errors::readable_cause(cause),
        ),
        (Status::Succeeded, None) => ("succeeded without an outcome".into(), String::new()),
    };
    let execution = match &run.status {
        Status::Succeeded => "Succeeded".to_owned(),
        Status::Failed { error, .. } => format!("Failed: {error}"),
    };
    (outcome, reason, execution)
}

/// Runs `scenario` in `env`, which must be fresh (nothing deployed yet): deploys the
/// versions it needs first, then its own, then checks the final state.
pub async fn run_scenario_in(env: &DemoEnv, scenario: Scenario) -> ScenarioResult {
    let started = Instant::now();
    let expect = scenario.expectation();
    let invoker = env.invoker();
    if let Err(why) = env.deploy_versions(scenario.setup_versions()).await {
        let mut r = failed_to_start(scenario, &format!("setting up: {why}"));
        r.outcome = "setup failed".into();
        return r;
    }
    // The setup's notifications are not the scenario's.
    env.notifications.take();
    let new_image = image(expect.version);
    match scenario {
        Scenario::FaultyCanary => env.sim.set_error_rate(&new_image, FAULTY_ERROR_RATE),
        Scenario::CanaryNotReady => env.sim.mark_image_bad(&new_image, "ImagePullBackOff"),
        Scenario::FirstDeployment | Scenario::HealthyCanary | Scenario::GateApproved => {}
    }
    let before = Counters::of(env);
    let mut tracker = Tracker::new();
    let mut approvals = 1;
    let run = if scenario == Scenario::GateApproved {
        let mut doc = deploy_document(&new_image);
        doc["gates"] = serde_json::json!([{"at": DEMO_GATE, "timeout": 3600}]);
        let approver = Approver::new(
            &invoker,
            &env.services,
            env.service_ref(),
            DEMO_APPROVAL_AFTER_SECS,
            DEMO_APPROVER,
        );
        let run = env.deploy_doc(doc, &approver, &mut tracker).await;
        approvals = approver.approved().len();
        run
    } else {
        env.deploy(&new_image, &invoker, &mut tracker).await
    };
    let counted = Counters::of(env).since(before);
    let notifications: Vec<SentNotification> = env
        .notifications
        .take()
        .iter()
        .map(SentNotification::of)
        .collect();

    let start = tracker.started_millis().unwrap_or(START_MILLIS);
    let rows = tracker.rows().to_vec();
    let deployment: Option<Deployment> = run
        .output
        .get("deployment")
        .and_then(|d| serde_json::from_value(d.clone()).ok());
    let (outcome, reason, execution) = ending(&run, deployment.as_ref());
    let end = start + run.duration_millis;
    // The tasks that shift (deploy-canary's first shift, health-check's after a step,
    // shift-weights) end with the canary at its new weight.
    let full_at = rows
        .iter()
        .find(|r| r.weight >= 100)
        .map(|r| (r.at_millis - start) / 1000);
    let first_traffic = rows
        .iter()
        .find(|r| r.weight > 0)
        .map_or(start, |r| r.at_millis);
    let rolled_back = outcome == outcome_word(OutcomeStatus::RolledBack);
    let cluster_checks = env
        .verify(expect.version, expect.stable_after, expect.outcome)
        .await;
    let passed = outcome == outcome_word(expect.outcome)
        && approvals == 1
        && reason.contains(expect.reason_contains)
        && cluster_checks.iter().all(|c| c.ok)
        && notifications_tell(&notifications, expect.outcome);
    ScenarioResult {
        scenario: scenario.name().into(),
        title: scenario.title(),
        expected: expect,
        outcome,
        reason,
        execution,
        started_millis: start,
        timeline: rows,
        transitions: run.transitions,
        duration_secs: run.duration_millis / 1000,
        time_to_full_traffic_secs: if rolled_back { None } else { full_at },
        time_to_rollback_secs: rolled_back.then_some((end - first_traffic) / 1000),
        max_weight: deployment.as_ref().map_or(0, |d| d.max_weight),
        checks_run: deployment.as_ref().map_or(0, |d| d.checks),
        api_requests: counted.requests,
        api_writes: counted.writes,
        route_writes: counted.route_writes,
        cluster_checks,
        notifications,
        passed,
        real_millis: started.elapsed().as_millis(),
    }
}
