//! The load scenario (issue 15): many services deployed at the same time by the local
//! executor of the shipped state machine with the real handlers, on one simulated
//! cluster served over HTTP and one S3 (moto) for records and locks.
//!
//! The scenario: every service first gets v1 (all at once), then the measured round
//! deploys v2 of every service at the same moment; every fourth service's v2 answers
//! 25% 5xx and must be rolled back, the rest promoted; for a few services a second
//! execution of the same v2 starts at the same moment, and exactly one of the two may
//! proceed while the other ends in `AnotherDeploymentOwnsService` having written
//! nothing.
//!
//! Time is the real clock with short timings (`wait_time` 2 s, checks every second,
//! `bake_time` 1 s, Deployments ready 1 s after a change): a shared virtual clock is
//! not sound here, since every execution's Wait state would move the time of all the
//! others (and a task's timeout is judged on that clock).
//!
//! What is checked, each a [`LoadReport::violations`] entry when it fails:
//! - every execution ends as expected (promoted, rolled back, or refused for the lock);
//! - the lock: every write to S3 is attributed to the execution that made it (a task
//!   local around each execution's future, seen by [`TracedObjects`]); each service's
//!   successful `lock.json` writes, put in order by their ETag chain, never take a held
//!   lock for another execution, and every other write of an execution falls between
//!   its own take and release of its service's lock; a watcher also reads every
//!   `lock.json` over and over while the round runs and records each holder, which must
//!   be an execution of that service, and at most one per service in the round;
//! - isolation: no S3 key of service A is written by an execution of service B; every
//!   record's `execution` is the one that deployed it; every object in the cluster
//!   labelled for a service is named for it; every route write names only that route's
//!   own service's versions;
//! - the end state of each service: its stable version, all traffic on it, only its
//!   objects left, the lock released, no deployment in progress, no leftover S3 keys.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use canary_cli::harness::LocalExecutions;
use canary_cli::harness::fixtures::{DEPLOY_JSON, TEMPLATE};
use canary_cli::local::{DEFINITION, LocalInvoker, MACHINE_NAME, SimMetricsSource, execution_id};
use canary_core::Observation;
use canary_core::clock::{Clock, SystemClock};
use canary_core::execution::OutcomeStatus;
use canary_core::labels;
use canary_core::provider::route_weights;
use canary_kube::{Cluster, RequestPolicy};
use canary_lambda::{FixedCluster, Holders, NoNotifier, Services};
use canary_metrics::{HealthQuery, MetricsError, MetricsSource};
use canary_sfn::{EventKind, Executor, NoopObserver, Status};
use canary_sim::{SimCluster, SimConfig, SimServer, kubeconfig_yaml};
use canary_store::{
    DeploymentStore, Object, ObjectStore, PutCondition, PutResult, S3Objects, ServiceRef,
    StoreError,
};
use canary_testkit::{MotoServer, unique_name};
use serde::Serialize;
use serde_json::Value;

mod checks;
mod traced;
use {checks::*, traced::*};
mod world;
use world::*;

/// The cluster name every service's deploy.json names.
pub const CLUSTER: &str = "load";
/// Share of 5xx answers of a faulty v2.
pub const FAULTY_ERROR_RATE: f64 = 0.25;
/// Simulated requests per second to each service.
pub const REQUESTS_PER_SECOND: f64 = 50.0;

/// The shape of one load run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadConfig {
    /// Services deployed at once.
    pub services: usize,
    /// Namespaces they are spread over (service `i` is in `team-<i % namespaces>`
    /// and named `svc-<i / namespaces>`, so the same name recurs in every namespace).
    pub namespaces: usize,
    /// Services whose v2 gets a second execution started at the same moment.
    pub racing: usize,
    /// deploy.json's `wait_time` (seconds per step).
    pub wait_time: u64,
    /// deploy.json's `percentage_step`.
    pub percentage_step: u64,
    /// Simulated seconds for a Deployment to become ready after a change.
    pub ready_delay_secs: u64,
    /// How often the watcher reads every lock.json, in milliseconds.
    pub watch_every_millis: u64,
}

impl LoadConfig {
    /// The issue's scenario: 50 services in 5 namespaces, 12 faulty, 5 raced.
    pub fn full() -> Self {
        Self::with_services(50, 5)
    }

    /// `services` services (a quarter of them faulty) with `racing` raced.
    pub fn with_services(services: usize, racing: usize) -> Self {
        Self {
            services,
            namespaces: 5,
            racing,
            wait_time: 2,
            percentage_step: 25,
            ready_delay_secs: 1,
            watch_every_millis: 25,
        }
    }

    /// Checks the numbers; the error names the field and its value.
    pub fn validate(&self) -> Result<(), LoadError> {
        let bad = |field: &str, value: usize, why: &str| {
            Err(LoadError::Config(format!("{field} = {value}: {why}")))
        };
        if self.services == 0 {
            return bad("services", self.services, "must be at least 1");
        }
        if self.namespaces == 0 || self.namespaces > self.services {
            return bad(
                "namespaces",
                self.namespaces,
                "must be from 1 to the number of services",
            );
        }
        if self.racing > self.services {
            return bad(
                "racing",
                self.racing,
                "must not exceed the number of services",
            );
        }
        if self.services / self.namespaces > 99 {
            return bad(
                "services",
                self.services,
                "at most 99 services per namespace (names are svc-00 to svc-98)",
            );
        }
        if self.wait_time < 2 {
            return bad(
                "wait_time",
                usize::try_from(self.wait_time).unwrap_or(usize::MAX),
                "must be at least 2 s (checks run every second)",
            );
        }
        Ok(())
    }

    /// Whether service `i`'s v2 is faulty: every fourth service.
    pub fn faulty(&self, i: usize) -> bool {
        i % 4 == 3
    }

    /// The services raced: spread over the range, starting at a faulty one.
    pub fn raced(&self) -> BTreeSet<usize> {
        if self.racing == 0 {
            return BTreeSet::new();
        }
        let step = (self.services / self.racing).max(1);
        (0..self.racing)
            .map(|k| (k * step + 3.min(self.services - 1)) % self.services)
            .collect()
    }
}

/// Why a load run could not be carried out (a failed check is not an error: it is a
/// violation in the report).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A bad [`LoadConfig`].
    #[error("invalid load configuration: {0}")]
    Config(String),
    /// The simulated cluster could not listen.
    #[error("the simulated cluster could not listen on 127.0.0.1: {0}")]
    Listen(#[source] std::io::Error),
    /// The kube client refused the simulator's kubeconfig.
    #[error("the kube client could not use the simulated cluster's kubeconfig: {0}")]
    Kube(#[from] canary_kube::Error),
    /// The state machine definition did not load.
    #[error("the state machine definition did not load: {0}")]
    Definition(#[from] canary_sfn::DefinitionError),
    /// The bucket could not be created or read.
    #[error("S3 (moto): {0}")]
    Store(#[from] StoreError),
    /// An execution's task panicked or was cancelled.
    #[error("an execution's task did not finish: {0}")]
    Join(String),
}

// ---------------------------------------------------------------------------------
// Metrics of any namespace.

/// The simulated traffic's numbers for the namespace each query names (the demo's
/// source reads one namespace).
#[derive(Debug, Clone)]
struct AnyNamespaceMetrics(SimCluster);

#[async_trait]
impl MetricsSource for AnyNamespaceMetrics {
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError> {
        SimMetricsSource::new(self.0.clone(), &q.namespace)
            .observe(q)
            .await
    }
}

// ---------------------------------------------------------------------------------
// The world.

/// One service of the scenario.
#[derive(Debug, Clone)]
pub struct LoadService {
    /// Its position.
    pub index: usize,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Whether its v2 is faulty.
    pub faulty: bool,
    /// Whether its v2 is raced by a second execution.
    pub raced: bool,
}

impl LoadService {
    fn of(config: &LoadConfig, index: usize) -> Self {
        Self {
            index,
            namespace: format!("team-{}", index % config.namespaces),
            name: format!("svc-{:02}", index / config.namespaces),
            faulty: config.faulty(index),
            raced: config.raced().contains(&index),
        }
    }

    /// As the store names it.
    pub fn service_ref(&self) -> ServiceRef {
        ServiceRef::new(CLUSTER, &self.namespace, &self.name)
    }

    /// The image of `version`: one repository per service.
    pub fn image(&self, version: u32) -> String {
        format!(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/{}/{}:{version}",
            self.namespace, self.name
        )
    }

    /// The execution input deploying `version`, as `canary prepare` would hand it over.
    fn document(&self, config: &LoadConfig, version: u32) -> Value {
        let mut doc: Value = serde_json::from_str(DEPLOY_JSON).unwrap_or(Value::Null);
        if let Some(map) = doc.as_object_mut() {
            let mut set = |k: &str, v: Value| {
                map.insert(k.to_owned(), v);
            };
            set("cluster_name", Value::from(CLUSTER));
            set("kubernetes_namespace", Value::from(self.namespace.as_str()));
            set("microservice_name", Value::from(self.name.as_str()));
            set("container_image", Value::from(self.image(version)));
            set(
                "config_file",
                Value::from(base64::engine::general_purpose::STANDARD.encode(TEMPLATE)),
            );
            set("percentage_step", Value::from(config.percentage_step));
            set("wait_time", Value::from(config.wait_time));
            set("check_interval", Value::from(1));
            set("bake_time", Value::from(1));
            set("failure_threshold_time", Value::from(2));
        }
        doc
    }

    /// The expected end of its v2: the stable version and the record's outcome.
    fn expected(&self) -> (u32, OutcomeStatus) {
        if self.faulty {
            (1, OutcomeStatus::RolledBack)
        } else {
            (2, OutcomeStatus::Promoted)
        }
    }
}

/// How one execution ended.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionEnd {
    /// The execution's id.
    pub id: String,
    /// Its service's index.
    pub service: usize,
    /// `promoted`, `rolled back`, `another deployment owns the service`, or what else.
    pub outcome: String,
    /// The Fail or Succeed state it ended in.
    pub end_state: String,
    /// Seconds from its start to its end.
    pub secs: f64,
    /// Its requests to S3.
    pub s3_requests: u64,
}

/// The result of a load run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The shape.
    pub config: LoadConfig,
    /// Faulty services.
    pub faulty: usize,
    /// Wall time of the measured round (all v2 executions, started together), seconds.
    pub wall_secs: f64,
    /// Wall time of the setup round (all v1 executions), seconds.
    pub setup_secs: f64,
    /// Executions of the measured round.
    pub executions: Vec<ExecutionEnd>,
    /// Executions by outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// Requests to the simulated API server in the measured round.
    pub api_requests: usize,
    /// Of which writes.
    pub api_writes: usize,
    /// Requests to S3 by the executions of the measured round.
    pub s3_requests: u64,
    /// Times the watcher read every lock.json during the round.
    pub watch_rounds: u64,
    /// Distinct lock holders the watcher saw per raced service (each must be 1).
    pub raced_holders_seen: BTreeMap<String, usize>,
    /// Every check that failed (empty: the run is correct).
    pub violations: Vec<String>,
}

impl LoadReport {
    /// Executions whose outcome is `outcome`.
    pub fn count(&self, outcome: &str) -> usize {
        self.outcomes.get(outcome).copied().unwrap_or(0)
    }

    /// Mean requests to the simulated API server per execution of the round.
    pub fn api_requests_per_deployment(&self) -> f64 {
        per(self.api_requests as f64, self.executions.len())
    }

    /// Mean S3 requests per execution with `outcome` (all: `None`).
    pub fn s3_requests_per_deployment(&self, outcome: Option<&str>) -> f64 {
        let runs: Vec<u64> = self
            .executions
            .iter()
            .filter(|e| outcome.is_none_or(|o| e.outcome == o))
            .map(|e| e.s3_requests)
            .collect();
        per(runs.iter().sum::<u64>() as f64, runs.len())
    }

    /// Median seconds of the executions with `outcome`.
    pub fn median_secs(&self, outcome: &str) -> f64 {
        let mut s: Vec<f64> = self
            .executions
            .iter()
            .filter(|e| e.outcome == outcome)
            .map(|e| e.secs)
            .collect();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied().unwrap_or(0.0)
    }

    /// The markdown section for results.md.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let c = &self.config;
        let _ = writeln!(
            out,
            "## Load: {} services deployed at once\n\n\
             The local executor of the shipped state machine with the real handlers, {} \
             services in {} namespaces of one simulated cluster (served over HTTP, \
             reached through the real kube client), records and locks in one S3 (moto); \
             real clock, `wait_time` {} s, `percentage_step` {}, checks every 1 s, \
             `bake_time` 1 s, Deployments ready {} s after a change. Every service got \
             v1 first (all at once, {:.1} s); then v2 of every service started at the \
             same moment, {} of them faulty (25% 5xx), and {} of them raced by a second \
             execution of the same v2 started with it.\n",
            c.services,
            c.services,
            c.namespaces,
            c.wait_time,
            c.percentage_step,
            c.ready_delay_secs,
            self.setup_secs,
            self.faulty,
            c.racing
        );
        let _ = writeln!(out, "| measure | value |\n|---|---|");
        let _ = writeln!(
            out,
            "| wall time of the round ({} executions at once) | {:.1} s |",
            self.executions.len(),
            self.wall_secs
        );
        for (outcome, n) in &self.outcomes {
            let _ = writeln!(
                out,
                "| {outcome} | {n} executions, median {:.1} s, {:.1} S3 requests each |",
                self.median_secs(outcome),
                self.s3_requests_per_deployment(Some(outcome))
            );
        }
        let _ = writeln!(
            out,
            "| requests to the API server | {} ({} writes), {:.1} per execution |",
            self.api_requests,
            self.api_writes,
            self.api_requests_per_deployment()
        );
        let _ = writeln!(
            out,
            "| requests to S3 by the executions | {}, {:.1} per execution |",
            self.s3_requests,
            self.s3_requests_per_deployment(None)
        );
        let _ = writeln!(
            out,
            "| lock.json of every service read by the watcher | {} times |",
            self.watch_rounds
        );
        let _ = writeln!(
            out,
            "| violations (lock held twice, a key or object of another service touched, an unexpected end) | {} |\n",
            self.violations.len()
        );
        for v in &self.violations {
            let _ = writeln!(out, "- {v}");
        }
        out
    }
}

fn per(total: f64, n: usize) -> f64 {
    if n == 0 { 0.0 } else { total / n as f64 }
}

/// Runs the scenario against a moto server of its own (the benchmark's entry).
pub async fn bench(config: &LoadConfig) -> Result<LoadReport, Box<dyn std::error::Error>> {
    config.validate()?;
    let moto = MotoServer::start()?;
    Ok(run(config, &moto).await?)
}

/// Runs the scenario against `moto` and checks it (see the module docs).
pub async fn run(config: &LoadConfig, moto: &MotoServer) -> Result<LoadReport, LoadError> {
    let world = Arc::new(World::start(config, moto).await?);
    let mut violations = Vec::new();

    // Setup: v1 of every service, all at once.
    let t0 = Instant::now();
    let v1 = world.executions(1, false);
    let setup = world.run_all(1, &v1).await?;
    let setup_secs = t0.elapsed().as_secs_f64();
    for (s, run, _) in &setup {
        if !run.succeeded() {
            violations.push(format!(
                "setup: {} (v1 of {}) ended {:?}",
                s.id,
                world.services[s.service].service_ref(),
                run.status
            ));
        }
    }
    let v1_writes = world.traced.writes();
    world.traced.reset();
    world.sim.reset_requests();

    // The measured round, watched.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_locks(world.clone(), stop.clone()));
    let v2 = world.executions(2, true);
    let t0 = Instant::now();
    let round = world.run_all(2, &v2).await?;
    let wall_secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let watched = watcher.await.map_err(|e| LoadError::Join(e.to_string()))?;
    let requests = world.sim.requests();
    let api_requests = requests.len();
    let api_writes = requests.iter().filter(|r| r.write).count();
    let writes = world.traced.writes();
    let s3 = world.traced.requests();

    let owner: HashMap<String, usize> = v1
        .iter()
        .chain(v2.iter())
        .map(|s| (s.id.clone(), s.service))
        .collect();

    let mut executions = Vec::new();
    let mut winners: HashMap<usize, String> = HashMap::new();
    for (s, run, secs) in &round {
        let svc = &world.services[s.service];
        let end_state = end_state(run);
        let outcome = match (&run.status, end_state.as_str()) {
            (Status::Succeeded, "Promoted") => "promoted".to_owned(),
            (Status::Failed { .. }, "RolledBack") => "rolled back".to_owned(),
            (Status::Failed { error, .. }, "AnotherDeploymentOwnsService")
                if error == "ServiceLocked" =>
            {
                "another deployment owns the service".to_owned()
            }
            (status, state) => format!("unexpected: {status:?} in {state}"),
        };
        if outcome != "another deployment owns the service" {
            winners
                .entry(s.service)
                .and_modify(|w| {
                    violations.push(format!(
                        "{}: both {w} and {} proceeded",
                        svc.service_ref(),
                        s.id
                    ));
                })
                .or_insert_with(|| s.id.clone());
            let want = if svc.faulty {
                "rolled back"
            } else {
                "promoted"
            };
            if outcome != want {
                violations.push(format!(
                    "{} of {} (faulty: {}) ended `{outcome}`, expected `{want}`",
                    s.id,
                    svc.service_ref(),
                    svc.faulty
                ));
            }
        } else if !svc.raced {
            violations.push(format!(
                "{} of {} was refused the lock though nothing raced it",
                s.id,
                svc.service_ref()
            ));
        }
        executions.push(ExecutionEnd {
            id: s.id.clone(),
            service: s.service,
            outcome,
            end_state,
            secs: *secs,
            s3_requests: s3.get(&Some(s.id.clone())).copied().unwrap_or(0),
        });
    }
    for svc in &world.services {
        if !winners.contains_key(&svc.index) {
            violations.push(format!(
                "{}: no execution of v2 proceeded",
                svc.service_ref()
            ));
        }
    }
    let mut outcomes = BTreeMap::new();
    for e in &executions {
        *outcomes.entry(e.outcome.clone()).or_insert(0) += 1;
    }

    // The lock and isolation, from every write of both rounds.
    let layout = Layout::of(&world);
    for (round_writes, label) in [(&v1_writes, "v1"), (&writes, "v2")] {
        violations.extend(check_writes(&layout, round_writes, &owner, label));
    }
    if let Some(w) = s3.get(&None).filter(|n| **n > 0) {
        violations.push(format!(
            "{w} S3 requests of the round were made outside any execution"
        ));
    }
    violations.extend(watched.errors.iter().cloned());
    let mut raced_holders_seen = BTreeMap::new();
    for (i, holders) in &watched.holders {
        let svc = &world.services[*i];
        for h in holders {
            if owner.get(h) != Some(i) {
                violations.push(format!(
                    "the watcher saw {h} hold the lock of {}, which it does not deploy",
                    svc.service_ref()
                ));
            }
        }
        let distinct: BTreeSet<&String> = holders.iter().collect();
        if distinct.len() > 1 {
            violations.push(format!(
                "the watcher saw {} holders of the lock of {} in one round: {holders:?}",
                distinct.len(),
                svc.service_ref()
            ));
        }
        if svc.raced {
            raced_holders_seen.insert(svc.service_ref().to_string(), distinct.len());
        }
    }

    // The end state of every service.
    for svc in &world.services {
        let winner = winners.get(&svc.index).cloned().unwrap_or_default();
        let v1_id = execution_id(&format!("load-v1-{:02}-a", svc.index));
        violations.extend(check_service(&world, svc, &winner, &v1_id).await);
    }
    violations.extend(check_cluster(&world));

    let report = LoadReport {
        config: config.clone(),
        faulty: world.services.iter().filter(|s| s.faulty).count(),
        wall_secs,
        setup_secs,
        executions,
        outcomes,
        api_requests,
        api_writes,
        s3_requests: s3.iter().filter(|(k, _)| k.is_some()).map(|(_, n)| n).sum(),
        watch_rounds: watched.rounds,
        raced_holders_seen,
        violations,
    };
    if let Ok(w) = Arc::try_unwrap(world) {
        w.server.shutdown().await;
    }
    Ok(report)
}

fn end_state(run: &canary_sfn::Execution) -> String {
    run.history
        .iter()
        .rev()
        .find_map(|e| match &e.kind {
            EventKind::StateEntered { state, .. } => Some(state.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_scenario_has_a_quarter_faulty_and_five_raced_services_of_both_kinds() {
        let c = LoadConfig::full();
        assert!(c.validate().is_ok());
        let faulty = (0..c.services).filter(|i| c.faulty(*i)).count();
        assert_eq!(faulty, 12);
        let raced = c.raced();
        assert_eq!(raced.len(), 5);
        assert!(raced.iter().any(|i| c.faulty(*i)));
        assert!(raced.iter().any(|i| !c.faulty(*i)));
        let names: BTreeSet<(String, String)> = (0..c.services)
            .map(|i| {
                let s = LoadService::of(&c, i);
                (s.namespace, s.name)
            })
            .collect();
        assert_eq!(names.len(), 50, "every service is distinct");
    }

    #[test]
    fn a_bad_configuration_names_the_field_and_value() {
        let mut c = LoadConfig::full();
        c.namespaces = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("namespaces = 0"), "{e}");
        let mut c = LoadConfig::full();
        c.racing = 60;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("racing = 60")
        );
    }

    #[test]
    fn every_service_document_is_valid_and_names_its_own_service() {
        let c = LoadConfig::with_services(8, 2);
        for i in 0..8 {
            let s = LoadService::of(&c, i);
            let doc = s.document(&c, 2);
            let spec = canary_core::DeploySpec::parse(&doc, None).expect("valid");
            assert_eq!(spec.microservice_name, s.name);
            assert_eq!(spec.kubernetes_namespace, s.namespace);
            assert_eq!(spec.container_image, s.image(2));
        }
    }

    fn put(seq: u64, cond: PutCondition, etag: &str, body: &str) -> WriteRecord {
        WriteRecord {
            seq,
            execution: Some("e".into()),
            key: "k/lock.json".into(),
            op: WriteOp::Put {
                condition: cond,
                new_etag: Some(etag.into()),
                body: body.as_bytes().to_vec(),
            },
            error: false,
        }
    }

    fn write(
        seq: u64,
        exec: &str,
        key: &str,
        cond: PutCondition,
        etag: &str,
        body: &str,
    ) -> WriteRecord {
        WriteRecord {
            execution: Some(exec.into()),
            key: key.into(),
            ..put(seq, cond, etag, body)
        }
    }

    fn held(exec: &str) -> String {
        format!(r#"{{"state":"held","execution":"{exec}","since":1,"nonce":"n-{exec}"}}"#)
    }

    fn released(exec: &str) -> String {
        format!(r#"{{"state":"released","execution":"{exec}","at":2,"by":"{exec}"}}"#)
    }

    /// Two services `a` and `b`; executions `a1`, `a2` deploy `a`, `b1` deploys `b`.
    fn layout_and_owners() -> (Layout, HashMap<String, usize>) {
        let layout = Layout {
            bases: vec!["load/team-0/a/".into(), "load/team-0/b/".into()],
            names: vec!["load/team-0/a".into(), "load/team-0/b".into()],
        };
        let owners = [("a1", 0), ("a2", 0), ("b1", 1)]
            .iter()
            .map(|(e, s)| ((*e).to_owned(), *s))
            .collect();
        (layout, owners)
    }

    /// `a1` takes a's lock, writes its record, releases; then `a2` does the same.
    fn clean_log() -> Vec<WriteRecord> {
        let lock = "load/team-0/a/lock.json";
        let rec = "load/team-0/a/history/2.json";
        vec![
            write(0, "a1", lock, PutCondition::IfAbsent, "e1", &held("a1")),
            write(1, "a1", rec, PutCondition::Always, "r1", "{}"),
            write(
                2,
                "a1",
                lock,
                PutCondition::IfMatch("e1".into()),
                "e2",
                &released("a1"),
            ),
            write(
                3,
                "a2",
                lock,
                PutCondition::IfMatch("e2".into()),
                "e3",
                &held("a2"),
            ),
            write(4, "a2", rec, PutCondition::Always, "r2", "{}"),
            write(
                5,
                "a2",
                lock,
                PutCondition::IfMatch("e3".into()),
                "e4",
                &released("a2"),
            ),
        ]
    }

    #[test]
    fn a_clean_log_of_two_tenures_in_turn_has_no_violation() {
        let (layout, owners) = layout_and_owners();
        let v = check_writes(&layout, &clean_log(), &owners, "t");
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn a_lock_taken_while_held_a_cross_service_write_and_a_write_without_the_lock_are_caught() {
        let (layout, owners) = layout_and_owners();
        let lock = "load/team-0/a/lock.json";
        // a2 takes the lock over a1's held lock (an If-Match on a1's ETag).
        let mut log = clean_log();
        log[3] = write(
            3,
            "a2",
            lock,
            PutCondition::IfMatch("e1".into()),
            "e3",
            &held("a2"),
        );
        log.remove(2);
        let v = check_writes(&layout, &log, &owners, "t");
        assert!(
            v.iter().any(|m| m.contains("taken by a2 while a1 held it")),
            "{v:?}"
        );
        // b1 writes a's state.
        let mut log = clean_log();
        log.push(write(
            6,
            "b1",
            "load/team-0/a/state.json",
            PutCondition::Always,
            "s",
            "{}",
        ));
        let v = check_writes(&layout, &log, &owners, "t");
        assert!(
            v.iter()
                .any(|m| m.contains("b1 wrote load/team-0/a/state.json")),
            "{v:?}"
        );
        // a2 writes its record after releasing the lock.
        let mut log = clean_log();
        log.push(write(
            6,
            "a2",
            "load/team-0/a/history/2.json",
            PutCondition::Always,
            "r3",
            "{}",
        ));
        let v = check_writes(&layout, &log, &owners, "t");
        assert!(
            v.iter()
                .any(|m| m.contains("a2 wrote load/team-0/a/history/2.json without holding")),
            "{v:?}"
        );
        // The log ends with the lock held.
        let mut log = clean_log();
        log.pop();
        let v = check_writes(&layout, &log, &owners, "t");
        assert!(v.iter().any(|m| m.contains("still held by a2")), "{v:?}");
    }

    #[test]
    fn lock_writes_are_ordered_by_their_etag_chain_not_by_the_log() {
        let a = put(5, PutCondition::IfMatch("r".into()), "b", "2");
        let b = put(4, PutCondition::IfMatch("a".into()), "r", "1");
        let c = put(3, PutCondition::IfAbsent, "a", "0");
        let chain = etag_chain(&[&a, &b, &c]).expect("one chain");
        let seqs: Vec<u64> = chain.iter().map(|w| w.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        // Two writes over the same ETag: not one chain (a lock taken twice).
        let d = put(6, PutCondition::IfMatch("a".into()), "x", "3");
        assert!(etag_chain(&[&a, &b, &c, &d]).is_none());
    }
}
