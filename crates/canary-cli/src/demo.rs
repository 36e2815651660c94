//! `canary demo`: the real state machine definition (local executor) and the real
//! handlers against the simulated cluster, served over HTTP on loopback and reached
//! through the real kube client, with simulated traffic feeding the health check and a
//! virtual clock shared by the executor, the simulator and the services, so a
//! ten-minute rollout takes a fraction of a second.
//!
//! Every scenario starts from a fresh environment ([`DemoEnv`]): the versions it needs
//! are deployed first (quietly), then the scenario's deployment runs and the cluster's
//! final state is checked ([`DemoEnv::verify`]): all traffic on one version, no canary
//! objects left, the lock released, the record written. [`run_scenario`] does all of
//! it; the tests and the fault matrix reuse [`DemoEnv`] with their own invokers.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use canary_core::clock::{Clock, ManualClock};
use canary_core::execution::OutcomeStatus;
use canary_core::{Deployment, labels};
use canary_kube::{Cluster, RequestPolicy};
use canary_lambda::{FixedCluster, Services};
use canary_sfn::{Executor, Observer, Status, TaskInvoker};
use canary_sim::{SimCluster, SimConfig, SimServer, kubeconfig_yaml};
use canary_store::{DeploymentStore, ServiceRef};
use serde::Serialize;
use serde_json::Value;

use crate::local::{DEFINITION, LocalInvoker, SimMetricsSource};
use crate::progress::{Row, Tracker, mmss};

/// The seed's yelb-appserver deploy.json.
pub const DEPLOY_JSON: &str =
    include_str!("../../../tests/fixtures/yelb/yelb-appserver/deploy.json");
/// The seed's yelb-appserver template (App Mesh).
pub const TEMPLATE: &str =
    include_str!("../../../tests/fixtures/yelb/yelb-appserver/kubernetes_template.yml");
/// The service's namespace in the seed.
pub const NAMESPACE: &str = "yelb";
/// The service.
pub const SERVICE: &str = "yelb-appserver";
/// The image repository the demo's versions come from.
pub const IMAGE_REPOSITORY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/yelb-appserver";
/// Simulated requests per second to the service.
pub const REQUESTS_PER_SECOND: f64 = 50.0;
/// Health checks every 20 s inside each 60 s step (the one field the demo adds to the
/// seed's deploy.json), so a bad canary is caught a third of the way into its step.
pub const CHECK_INTERVAL: u64 = 20;
/// Share of 5xx answers of the faulty version.
pub const FAULTY_ERROR_RATE: f64 = 0.25;
/// Simulated time for a Deployment to become ready after a change.
pub const READY_DELAY: Duration = Duration::from_secs(15);
/// Where the virtual clock starts: 2026-01-01T00:00:00Z.
pub const START_MILLIS: i64 = 1_767_225_600_000;

/// The image of `version`.
pub fn image(version: u32) -> String {
    format!("{IMAGE_REPOSITORY}:{version}")
}

/// The execution input for `image`: the seed's deploy.json with `container_image`,
/// `config_file` (the template, base64) and `check_interval` added, as the pipeline's
/// build step (`canary prepare`) would hand it to the state machine.
pub fn deploy_document(image: &str) -> Value {
    let mut doc: Value = serde_json::from_str(DEPLOY_JSON).unwrap_or(Value::Null);
    if let Some(map) = doc.as_object_mut() {
        map.insert("container_image".into(), Value::from(image));
        map.insert(
            "config_file".into(),
            Value::from(base64::engine::general_purpose::STANDARD.encode(TEMPLATE)),
        );
        map.insert("check_interval".into(), Value::from(CHECK_INTERVAL));
    }
    doc
}

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
}

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
    pub const ALL: [Scenario; 4] = [
        Self::FirstDeployment,
        Self::HealthyCanary,
        Self::FaultyCanary,
        Self::CanaryNotReady,
    ];

    /// The name `--scenario` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::FirstDeployment => "first-deployment",
            Self::HealthyCanary => "healthy-canary",
            Self::FaultyCanary => "faulty-canary",
            Self::CanaryNotReady => "canary-not-ready",
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
        }
    }

    /// The versions deployed (and promoted) before the scenario's own deployment.
    pub fn setup_versions(self) -> &'static [u32] {
        match self {
            Self::FirstDeployment => &[],
            Self::HealthyCanary => &[1],
            Self::FaultyCanary | Self::CanaryNotReady => &[1, 2],
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
        }
    }
}

/// Why the demo's environment could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The simulated API server could not listen on loopback.
    #[error("the simulated cluster could not listen on 127.0.0.1: {0}")]
    Listen(#[source] std::io::Error),
    /// The kube client did not accept the simulator's kubeconfig.
    #[error("the kube client could not use the simulated cluster's kubeconfig: {0}")]
    Kube(#[from] canary_kube::Error),
    /// The shipped state machine definition did not load.
    #[error("the state machine definition did not load: {0}")]
    Definition(#[from] canary_sfn::DefinitionError),
}

/// One check of the cluster's (and the store's) final state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Whether it holds.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

impl Check {
    fn new(name: &str, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        }
    }
}

/// The simulated cluster served on loopback, a virtual clock, an in-memory store, the
/// services the handlers use, and the executor of the shipped definition.
#[derive(Debug)]
pub struct DemoEnv {
    /// The simulated cluster (its state, traffic, faults, request log).
    pub sim: SimCluster,
    /// The virtual clock shared by the executor, the simulator and the services.
    pub clock: ManualClock,
    /// What the handlers use.
    pub services: Services,
    /// The kube client's handle on the simulated cluster (request counters).
    pub cluster: Cluster,
    /// The executor of `statemachine/canary-deployment.asl.json`.
    pub executor: Executor,
    /// The kubeconfig of the served simulator.
    pub kubeconfig: String,
    server: SimServer,
    executions: AtomicU32,
}

impl DemoEnv {
    /// Starts the simulated cluster on an ephemeral loopback port with traffic on the
    /// demo's service, and connects the real kube client to it through its kubeconfig.
    pub async fn start() -> Result<Self, DemoError> {
        let clock = ManualClock::starting_at(START_MILLIS);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let sim = SimCluster::new(SimConfig::new(shared.clone(), READY_DELAY));
        let server = sim
            .serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(DemoError::Listen)?;
        let kubeconfig = kubeconfig_yaml(&server.url, NAMESPACE);
        let policy = RequestPolicy {
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(50),
        };
        let cluster = Cluster::from_kubeconfig_yaml(&kubeconfig, None, policy).await?;
        sim.set_traffic(NAMESPACE, SERVICE, REQUESTS_PER_SECOND);
        let services = Services {
            store: DeploymentStore::memory(),
            metrics: Arc::new(SimMetricsSource::new(sim.clone(), NAMESPACE)),
            clusters: Arc::new(FixedCluster(cluster.clone())),
            clock: shared,
        };
        let executor = Executor::from_json(DEFINITION)?.with_name("canary-deployment");
        Ok(Self {
            sim,
            clock,
            services,
            cluster,
            executor,
            kubeconfig,
            server,
            executions: AtomicU32::new(0),
        })
    }

    /// The base URL of the served simulator.
    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// The invoker of the real handlers with this environment's services.
    pub fn invoker(&self) -> LocalInvoker {
        LocalInvoker {
            services: self.services.clone(),
        }
    }

    /// The demo's service, as the store names it.
    pub fn service_ref(&self) -> ServiceRef {
        ServiceRef::new("blogpost", NAMESPACE, SERVICE)
    }

    /// Runs one deployment of `image` through the whole state machine.
    pub async fn deploy(
        &self,
        image: &str,
        invoker: &dyn TaskInvoker,
        observer: &mut dyn Observer,
    ) -> canary_sfn::Execution {
        let n = self.executions.fetch_add(1, Ordering::SeqCst) + 1;
        let name = format!("demo-{n}");
        self.executor
            .run_named(
                &name,
                deploy_document(image),
                invoker,
                &self.clock,
                observer,
            )
            .await
    }

    /// Deploys `versions` one after the other with the plain handlers (each must be
    /// promoted): the state a scenario starts from.
    pub async fn deploy_versions(&self, versions: &[u32]) -> Result<(), String> {
        let invoker = self.invoker();
        for &v in versions {
            let run = self
                .deploy(&image(v), &invoker, &mut canary_sfn::NoopObserver)
                .await;
            if !run.succeeded() {
                return Err(format!("deploying v{v} failed: {:?}", run.status));
            }
        }
        Ok(())
    }

    /// Checks the final state after a deployment of `version` that should have left
    /// `stable` serving all traffic with the given outcome.
    pub async fn verify(&self, version: u32, stable: u32, outcome: OutcomeStatus) -> Vec<Check> {
        let mut checks = Vec::new();
        let stable_name = labels::versioned_name(SERVICE, stable);

        // 1. All traffic on one version: the route object, read from the simulator.
        let route = self.sim.get_object(
            "appmesh.k8s.aws/v1beta2",
            "VirtualRouter",
            NAMESPACE,
            SERVICE,
        );
        let targets = route.as_ref().map(route_targets).unwrap_or_default();
        let serving: Vec<&(String, u64)> = targets.iter().filter(|(_, w)| *w > 0).collect();
        let one = serving.len() == 1 && serving.iter().all(|(n, w)| *n == stable_name && *w == 100);
        checks.push(Check::new(
            "all traffic on one version",
            one,
            if route.is_none() {
                "no VirtualRouter yelb-appserver".to_owned()
            } else {
                format!("route targets {}", show_targets(&targets))
            },
        ));

        // 2. No canary objects left, and the stable version's objects are there.
        let objects = self.sim.list_objects(NAMESPACE);
        let mut leftovers = Vec::new();
        let mut stable_objects = 0;
        for o in &objects {
            let labels_of = &o["metadata"]["labels"];
            if labels_of[labels::SERVICE].as_str() != Some(SERVICE) {
                continue;
            }
            match labels_of[labels::VERSION].as_str() {
                Some(v) if v == stable.to_string() => stable_objects += 1,
                Some(_) => leftovers.push(format!(
                    "{} {}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                )),
                None => {}
            }
        }
        checks.push(Check::new(
            "no other version's objects left",
            leftovers.is_empty(),
            if leftovers.is_empty() {
                "none".to_owned()
            } else {
                leftovers.join(", ")
            },
        ));
        let deployment = self
            .sim
            .get_object("apps/v1", "Deployment", NAMESPACE, &stable_name);
        checks.push(Check::new(
            "the serving version's objects exist",
            deployment.is_some() && stable_objects > 0,
            format!("{stable_objects} objects labelled version {stable}"),
        ));

        // 3. The lock is released and 4. the record is written, from the store.
        let svc = self.service_ref();
        match self.services.store.status(&svc).await {
            Ok(status) => {
                checks.push(Check::new(
                    "lock released",
                    status.lock.is_none(),
                    match &status.lock {
                        Some(l) => format!("held by {}", l.execution),
                        None => "released".to_owned(),
                    },
                ));
                checks.push(Check::new(
                    "store's stable version",
                    status.state.stable_version == Some(stable),
                    format!("{:?}", status.state.stable_version),
                ));
            }
            Err(e) => checks.push(Check::new("lock released", false, e.to_string())),
        }
        match self.services.store.record(&svc, version).await {
            Ok(Some(record)) => {
                let ok = record.ended_at.is_some()
                    && record.outcome.as_ref().map(|o| o.status) == Some(outcome);
                checks.push(Check::new(
                    "record written",
                    ok,
                    match &record.outcome {
                        Some(o) => format!("{:?}: {}", o.status, o.reason),
                        None => "no outcome".to_owned(),
                    },
                ));
            }
            Ok(None) => checks.push(Check::new("record written", false, "no record")),
            Err(e) => checks.push(Check::new("record written", false, e.to_string())),
        }
        checks
    }

    /// Stops the simulated API server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Targets and weights of a route object, read by its provider and added up per target
/// (nothing for an object no provider can read).
pub fn route_targets(route: &Value) -> Vec<(String, u64)> {
    canary_core::provider::TrafficProvider::of_object(route)
        .and_then(|p| p.read(route).ok())
        .map(|lists| canary_core::provider::total_weights(&lists))
        .unwrap_or_default()
}

fn show_targets(targets: &[(String, u64)]) -> String {
    if targets.is_empty() {
        return "none".to_owned();
    }
    targets
        .iter()
        .map(|(n, w)| format!("{n}={w}"))
        .collect::<Vec<_>>()
        .join(", ")
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
    /// Whether the scenario ended as expected and every check holds.
    pub passed: bool,
    /// Real milliseconds the scenario took, setup included.
    pub real_millis: u128,
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
        passed: false,
        real_millis: 0,
    }
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
    let new_image = image(expect.version);
    match scenario {
        Scenario::FaultyCanary => env.sim.set_error_rate(&new_image, FAULTY_ERROR_RATE),
        Scenario::CanaryNotReady => env.sim.mark_image_bad(&new_image, "ImagePullBackOff"),
        Scenario::FirstDeployment | Scenario::HealthyCanary => {}
    }
    let requests_before = env.sim.requests();
    let writes_before = env.sim.write_count();
    let routes_before = env.sim.weight_history(NAMESPACE).len();

    let mut tracker = Tracker::new();
    let run = env.deploy(&new_image, &invoker, &mut tracker).await;

    let requests = env
        .sim
        .requests()
        .len()
        .saturating_sub(requests_before.len());
    let writes = env.sim.write_count().saturating_sub(writes_before);
    let route_writes = env
        .sim
        .weight_history(NAMESPACE)
        .len()
        .saturating_sub(routes_before);
    let start = tracker.started_millis().unwrap_or(START_MILLIS);
    let rows = tracker.rows().to_vec();
    let deployment: Option<Deployment> = run
        .output
        .get("deployment")
        .and_then(|d| serde_json::from_value(d.clone()).ok());
    let (outcome, reason) = match (
        &run.status,
        deployment.as_ref().and_then(|d| d.outcome.as_ref()),
    ) {
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
    let end = start + run.duration_millis;
    let full_at = rows
        .iter()
        .find(|r| r.state == "ShiftWeights" && r.weight >= 100)
        .map(|r| (r.at_millis - start) / 1000);
    let first_traffic = rows
        .iter()
        .find(|r| r.state == "ShiftWeights" && r.weight > 0)
        .map_or(start, |r| r.at_millis);
    let rolled_back = outcome == outcome_word(OutcomeStatus::RolledBack);
    let cluster_checks = env
        .verify(expect.version, expect.stable_after, expect.outcome)
        .await;
    let passed = outcome == outcome_word(expect.outcome)
        && reason.contains(expect.reason_contains)
        && cluster_checks.iter().all(|c| c.ok);
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
        api_requests: requests,
        api_writes: writes,
        route_writes,
        cluster_checks,
        passed,
        real_millis: started.elapsed().as_millis(),
    }
}

/// `promoted` or `rolled_back`.
pub fn outcome_word(status: OutcomeStatus) -> &'static str {
    match status {
        OutcomeStatus::Promoted => "promoted",
        OutcomeStatus::RolledBack => "rolled_back",
    }
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
        if row.state == "HealthCheck" && !row.bad {
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

/// `canary demo`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Run only this scenario: first-deployment, healthy-canary, faulty-canary or
    /// canary-not-ready.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// Print the scenarios' results as JSON instead of the timelines.
    #[arg(long)]
    pub json: bool,
    /// Run the fault matrix instead: every task state x {error, timeout, crash}, and
    /// two deployments racing for the lock; each must end whole on one version.
    #[arg(long, conflicts_with = "scenario")]
    pub fault_matrix: bool,
}

/// Runs the demo and prints it. Exit 0 when every scenario ended as expected, 1
/// otherwise, 2 for an unknown scenario name.
pub async fn command(args: &DemoArgs) -> std::process::ExitCode {
    if args.fault_matrix {
        let cells = crate::faults::run_matrix().await;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&cells).unwrap_or_default()
            );
        } else {
            println!(
                "eks-canary fault matrix: v2 deployed beside a promoted v1 with one fault injected per cell\n\
                 (error = KubeError from that call on; timeout = the handler ran, its answer was lost;\n\
                 crash = the process died first). Each cell must end with all traffic on one version, no\n\
                 other version's objects, the lock released and the record written.\n"
            );
            print!("{}", crate::faults::matrix_text(&cells));
        }
        let all = cells.iter().all(|c| c.passed);
        if !args.json {
            let green = cells.iter().filter(|c| c.passed).count();
            println!("\n{green} of {} cells green", cells.len());
        }
        return if all {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::from(1)
        };
    }
    let scenarios: Vec<Scenario> = match &args.scenario {
        None => Scenario::ALL.to_vec(),
        Some(name) => match Scenario::from_name(name) {
            Some(s) => vec![s],
            None => {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                eprintln!(
                    "error: no scenario `{name}`; the scenarios are {}",
                    names.join(", ")
                );
                return std::process::ExitCode::from(2);
            }
        },
    };
    if !args.json {
        println!(
            "eks-canary demo: the real state machine (statemachine/canary-deployment.asl.json, local executor) and the\n\
             real handlers, against a simulated Kubernetes API server on 127.0.0.1 reached through the kube client,\n\
             with {REQUESTS_PER_SECOND} req/s of simulated traffic feeding the health check, an in-memory record store and a\n\
             virtual clock. deploy.json: the seed's yelb-appserver (10% steps, wait_time 60 s, failure_threshold_value 0\n\
             over 300 s) plus check_interval {CHECK_INTERVAL} s; App Mesh VirtualRouter; Deployments ready {} s after a change.\n",
            READY_DELAY.as_secs()
        );
    }
    let mut results = Vec::with_capacity(scenarios.len());
    for (i, scenario) in scenarios.iter().enumerate() {
        let r = run_scenario(*scenario).await;
        if !args.json {
            println!("{}. {} [{}]", i + 1, scenario.title(), scenario.name());
            if !scenario.setup_versions().is_empty() {
                let before: Vec<String> = scenario
                    .setup_versions()
                    .iter()
                    .map(|v| format!("v{v}"))
                    .collect();
                println!(
                    "   (set up first: {} deployed and promoted)",
                    before.join(", ")
                );
            }
            print!("{}", timeline_text(&r));
            println!("{}", summary_text(&r));
        }
        results.push(r);
    }
    let all_passed = results.iter().all(|r| r.passed);
    if args.json {
        let doc = serde_json::json!({ "passed": all_passed, "scenarios": results });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
    } else {
        print!("{}", table_text(&results));
        let real: u128 = results.iter().map(|r| r.real_millis).sum();
        println!(
            "\n{} in {:.1} s of real time.",
            if all_passed {
                "Every scenario ended as expected"
            } else {
                "SOME SCENARIOS DID NOT END AS EXPECTED"
            },
            real as f64 / 1000.0
        );
    }
    if all_passed {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}

/// `canary cluster-sim`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterSimArgs {
    /// Where to listen (loopback; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Where to write the kubeconfig for kubectl and `canary run --kubeconfig`.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: std::path::PathBuf,
    /// Seconds for a Deployment to become ready after a change.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub ready_delay: f64,
    /// The kubeconfig context's default namespace.
    #[arg(long, default_value = "default")]
    pub namespace: String,
}

/// Serves the simulated cluster on the real clock until Ctrl-C (or SIGTERM).
pub async fn serve_cluster_sim(args: &ClusterSimArgs) -> Result<(), String> {
    if !args.ready_delay.is_finite() || args.ready_delay < 0.0 {
        return Err(format!(
            "invalid --ready-delay `{}`: must be a number of seconds, 0 or more",
            args.ready_delay
        ));
    }
    let config = SimConfig::new(
        Arc::new(canary_core::clock::SystemClock),
        Duration::from_secs_f64(args.ready_delay),
    );
    let sim = SimCluster::new(config);
    let server = sim
        .serve(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let yaml = kubeconfig_yaml(&server.url, &args.namespace);
    let path = &args.kubeconfig_out;
    // Written whole, then renamed: whoever waits for the file never reads half of it.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, yaml).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("simulated cluster serving at {}", server.url);
    println!("kubeconfig written to {}", path.display());
    println!(
        "  kubectl --kubeconfig {} get deployments -A",
        path.display()
    );
    println!("Press Ctrl-C to stop.");
    let stop = async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| e.to_string())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.map_err(|e| e.to_string()),
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.map_err(|e| e.to_string())
        }
    };
    let result = stop.await;
    server.shutdown().await;
    println!("stopped ({} requests served)", sim.requests().len());
    result
}
