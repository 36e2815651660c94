//! The virtual-clock benchmarks: the real state machine definition and the real handlers
//! on the simulated cluster (served over HTTP, reached through the real kube client),
//! built on the demo's harness (`canary_cli::harness::DemoEnv`).
//!
//! - [`calibrate`]: one healthy yelb-appserver canary deployment (v2 beside v1): its
//!   state transitions, each task's API requests to the cluster, the shift times.
//! - [`reaction`]: the same deployment with the canary starting to answer 5xx at a
//!   chosen moment; how long until all traffic is back on the stable version.
//!
//! Health numbers come from [`DelayedMetrics`]: per-minute datapoints published one
//! period (by default) after their minute ends, as CloudWatch metric filters publish them;
//! or, for a configuration with a Prometheus scrape interval, from [`ScrapedMetrics`]:
//! counters scraped every 15 s, read as `increase` over the window.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use canary_cli::harness::fixtures::{self, NAMESPACE, SERVICE};
use canary_cli::harness::{DemoEnv, HarnessError};
use canary_cli::local::{Function, LocalInvoker};
use canary_core::clock::{Clock, ManualClock};
use canary_core::decide::InlineChecks;
use canary_metrics::MetricsSource;
use canary_sfn::{NoopObserver, TaskError, TaskInvoker};
use canary_sim::SimCluster;
use serde::Serialize;
use serde_json::Value;

use crate::delayed::DelayedMetrics;
use crate::scraped::ScrapedMetrics;

/// Share of 5xx answers of the faulty canary after the onset.
pub const ONSET_ERROR_RATE: f64 = 0.25;

/// The health-check settings a run adds to the seed's yelb-appserver deploy.json
/// (10% steps, `wait_time` 60 s, `failure_threshold_time` 300 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckConfig {
    /// A short name for the tables.
    pub name: String,
    /// `check_interval`; `None`: the default (`wait_time`, at most 60 s).
    pub check_interval: Option<u64>,
    /// `bake_time`; `None`: the default (`wait_time`, at least `check_interval` + 120 s).
    pub bake_time: Option<u64>,
    /// `failure_threshold_time`; `None`: the seed's (300 s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_threshold_time: Option<u64>,
    /// `Some(interval)`: the numbers come from Prometheus scraping every `interval`
    /// seconds ([`ScrapedMetrics`], and deploy.json names source `prometheus`);
    /// `None`: from CloudWatch's delayed per-minute datapoints ([`DelayedMetrics`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prometheus_scrape_secs: Option<i64>,
    /// `Some(n)`: health-check waits inside its invocation only for checks due within
    /// `n` s (0: every wait is a Wait state); `None`: the handler's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline_max_wait_secs: Option<u64>,
}

impl CheckConfig {
    /// A configuration.
    pub fn new(name: &str, check_interval: Option<u64>, bake_time: Option<u64>) -> Self {
        Self {
            name: name.to_owned(),
            check_interval,
            bake_time,
            failure_threshold_time: None,
            prometheus_scrape_secs: None,
            inline_max_wait_secs: None,
        }
    }

    /// The same settings with health-check waiting inside its invocation only for
    /// checks due within `secs` (0: the state machine's Wait states for every check).
    pub fn with_inline_max_wait(mut self, secs: u64) -> Self {
        self.inline_max_wait_secs = Some(secs);
        self
    }

    /// The inline checks health-check makes in this configuration.
    pub fn inline_checks(&self) -> InlineChecks {
        let mut inline = InlineChecks::default();
        if let Some(secs) = self.inline_max_wait_secs {
            inline.max_wait_secs = secs;
        }
        inline
    }

    /// The same settings with a Prometheus source scraped every `scrape_secs` and a
    /// window of `failure_threshold_time` seconds.
    pub fn with_prometheus(mut self, scrape_secs: i64, failure_threshold_time: u64) -> Self {
        self.prometheus_scrape_secs = Some(scrape_secs);
        self.failure_threshold_time = Some(failure_threshold_time);
        self
    }

    /// The metrics source of a run on `sim`: [`ScrapedMetrics`] (scrapes aligned to the
    /// Unix epoch) or [`DelayedMetrics`] with `delay_secs`.
    pub fn source(&self, sim: SimCluster, delay_secs: i64) -> Arc<dyn MetricsSource> {
        match self.prometheus_scrape_secs {
            Some(interval) => Arc::new(ScrapedMetrics::new(sim, NAMESPACE, interval, 0)),
            None => Arc::new(DelayedMetrics::new(sim, NAMESPACE, delay_secs)),
        }
    }

    /// The execution input for `image`: the demo's document (the seed's deploy.json plus
    /// `container_image` and `config_file`) with these settings instead of the demo's.
    pub fn document(&self, image: &str) -> Value {
        let mut doc = fixtures::deploy_document(image);
        if let Some(map) = doc.as_object_mut() {
            map.remove("check_interval");
            if let Some(i) = self.check_interval {
                map.insert("check_interval".into(), Value::from(i));
            }
            if let Some(b) = self.bake_time {
                map.insert("bake_time".into(), Value::from(b));
            }
            if let Some(w) = self.failure_threshold_time {
                map.insert("failure_threshold_time".into(), Value::from(w));
            }
            if self.prometheus_scrape_secs.is_some() {
                // The address is never reached: the benchmark's source answers instead.
                map.insert(
                    "metrics".into(),
                    serde_json::json!({"source": "prometheus", "url": "http://prometheus.invalid:9090", "preset": "envoy"}),
                );
            }
        }
        doc
    }
}

/// Why a scenario could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The demo environment did not start.
    #[error("the simulated environment did not start: {0}")]
    Env(#[from] HarnessError),
    /// A deployment that had to succeed did not.
    #[error("{what} did not succeed: {status}")]
    Deployment {
        /// Which deployment.
        what: String,
        /// How it ended.
        status: String,
    },
}

/// One task invocation with the API requests it made.
#[derive(Debug, Clone, Serialize)]
pub struct Call {
    /// The function.
    pub function: String,
    /// Virtual time of the call (Unix ms).
    pub at_millis: i64,
    /// Requests the simulated API server received during the call.
    pub requests: usize,
    /// Of which writes.
    pub writes: usize,
    /// Whether the function returned an error.
    pub failed: bool,
    /// Reads (GET) and writes (PUT) of the route object (`virtualrouters`) by the
    /// call: a shift reads the route and writes it once.
    pub route_requests: usize,
    /// Of which writes (PUT).
    pub route_puts: usize,
    /// Virtual time when the call began (Unix ms).
    pub started_millis: i64,
    /// Virtual time the call spent waiting inside (readiness reads, inline checks), ms.
    pub waited_millis: i64,
    /// Real time of the call in-process (the handler's work against the served
    /// simulator, without its waits), µs.
    pub wall_micros: u64,
}

impl Call {
    /// Milliseconds Lambda would bill: the work plus the waits, rounded up to 1 ms.
    pub fn billed_ms(&self) -> f64 {
        (self.wall_micros as f64 / 1000.0 + self.waited_millis as f64)
            .ceil()
            .max(1.0)
    }
}

/// Calls the handlers in-process and notes each call's API requests.
#[derive(Debug)]
pub struct CountingInvoker {
    inner: LocalInvoker,
    sim: SimCluster,
    clock: ManualClock,
    calls: Mutex<Vec<Call>>,
    inline: Option<InlineChecks>,
}

impl CountingInvoker {
    /// Counts the calls of `inner` against `sim`.
    pub fn new(inner: LocalInvoker, sim: SimCluster, clock: ManualClock) -> Self {
        Self {
            inner,
            sim,
            clock,
            calls: Mutex::new(Vec::new()),
            inline: None,
        }
    }

    /// Calls health-check with `inline` instead of its environment's settings.
    pub fn with_inline(mut self, inline: InlineChecks) -> Self {
        self.inline = Some(inline);
        self
    }

    async fn call(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let function = Function::from_resource(resource);
        match (function, self.inline) {
            (Some(Function::HealthCheck), Some(inline)) => {
                let services = &self.inner.services;
                let task = canary_lambda::Task::from_value(input)
                    .map_err(|e| TaskError::new(e.error_type.as_str(), e.message.clone()))?;
                health_check::run_with(services, task, inline)
                    .await
                    .and_then(canary_lambda::Task::into_value)
                    .map_err(|e| {
                        TaskError::new(
                            e.error_type.as_str(),
                            canary_core::errors::lambda_cause(e.error_type, &e.message),
                        )
                    })
            }
            _ => self.inner.invoke(resource, input).await,
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl TaskInvoker for CountingInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let before = self.sim.requests().len();
        let writes_before = self.sim.write_count();
        let route_before = route_traffic(&self.sim);
        let started_millis = self.clock.now_millis();
        let wall = std::time::Instant::now();
        let result = self.call(resource, input).await;
        let wall_micros = u64::try_from(wall.elapsed().as_micros()).unwrap_or(u64::MAX);
        let call = Call {
            function: Function::from_resource(resource)
                .map_or_else(|| resource.to_owned(), |f| f.name().to_owned()),
            at_millis: self.clock.now_millis(),
            requests: self.sim.requests().len().saturating_sub(before),
            writes: self.sim.write_count().saturating_sub(writes_before),
            failed: result.is_err(),
            route_requests: route_traffic(&self.sim).0 - route_before.0,
            route_puts: route_traffic(&self.sim).1 - route_before.1,
            started_millis,
            waited_millis: self.clock.now_millis() - started_millis,
            wall_micros,
        };
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
        result
    }
}

/// GETs and PUTs of the route object (the demo's App Mesh VirtualRouter) so far, and of
/// those the PUTs.
fn route_traffic(sim: &SimCluster) -> (usize, usize) {
    let route: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/virtualrouters/") && (r.method == "GET" || r.method == "PUT"))
        .collect();
    let puts = route.iter().filter(|r| r.method == "PUT").count();
    (route.len(), puts)
}

/// A virtual clock that makes the canary's image start answering 5xx at `onset_millis`:
/// when a wait crosses the onset, time moves to the onset, the error rate is set on the
/// simulated cluster, and time moves on.
#[derive(Debug)]
pub struct OnsetClock {
    inner: ManualClock,
    sim: SimCluster,
    image: String,
    onset_millis: i64,
    fired: AtomicBool,
}

impl OnsetClock {
    /// Errors of `image` from `onset_millis` on.
    pub fn new(inner: ManualClock, sim: SimCluster, image: &str, onset_millis: i64) -> Self {
        Self {
            inner,
            sim,
            image: image.to_owned(),
            onset_millis,
            fired: AtomicBool::new(false),
        }
    }

    fn fire(&self) {
        if !self.fired.swap(true, Ordering::SeqCst) {
            self.sim.set_error_rate(&self.image, ONSET_ERROR_RATE);
        }
    }
}

impl Clock for OnsetClock {
    fn now_millis(&self) -> i64 {
        self.inner.now_millis()
    }

    fn advance(&self, millis: i64) -> bool {
        let now = self.inner.now_millis();
        if !self.fired.load(Ordering::SeqCst) && now + millis.max(0) >= self.onset_millis {
            let before = (self.onset_millis - now).max(0);
            self.inner.advance(before);
            self.fire();
            self.inner.advance(millis.max(0) - before)
        } else {
            self.inner.advance(millis)
        }
    }
}

/// A fresh environment with v1 deployed (a first deployment) and the metrics source of
/// `config`.
async fn env_with_stable(config: &CheckConfig, delay_secs: i64) -> Result<DemoEnv, ScenarioError> {
    let mut env = DemoEnv::start().await?;
    env.services.metrics = config.source(env.sim.clone(), delay_secs);
    let invoker = env.invoker();
    let run = env
        .executor
        .run_named(
            "bench-v1",
            CheckConfig::new("default", None, None).document(&fixtures::image(1)),
            &invoker,
            &env.clock,
            &mut NoopObserver,
        )
        .await;
    if !run.succeeded() {
        return Err(ScenarioError::Deployment {
            what: "the first deployment (v1)".into(),
            status: format!("{:?}", run.status),
        });
    }
    Ok(env)
}

/// The canary target's name.
fn canary_target() -> String {
    format!("{SERVICE}-2")
}

/// The weight of the canary (v2) in a route write.
fn canary_weight(weights: &[(String, u64)]) -> u64 {
    let canary = canary_target();
    weights
        .iter()
        .filter(|(n, _)| *n == canary)
        .map(|(_, w)| *w)
        .sum()
}

/// A healthy canary deployment, counted.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// The settings.
    pub config: CheckConfig,
    /// Whether it was promoted.
    pub succeeded: bool,
    /// State transitions (Step Functions bills each).
    pub transitions: usize,
    /// Estimated AWS history events.
    pub aws_history_events: usize,
    /// Virtual seconds from start to end.
    pub duration_secs: i64,
    /// Virtual time of the first shift (the canary's first traffic), Unix ms.
    pub first_shift_millis: i64,
    /// Seconds after the first shift of each route write with the canary's weight.
    pub shifts: Vec<(i64, u64)>,
    /// Every task call with its API requests.
    pub calls: Vec<Call>,
    /// Invocations per function.
    pub invocations: BTreeMap<String, usize>,
    /// API requests per function (all its calls).
    pub requests_by_function: BTreeMap<String, usize>,
    /// API writes per function (all its calls).
    pub writes_by_function: BTreeMap<String, usize>,
    /// API requests of the whole deployment (tasks of v2 only).
    pub requests: usize,
    /// Of which writes.
    pub writes: usize,
    /// Writes to the route object.
    pub route_writes: usize,
    /// Health checks made (several may share one health-check invocation).
    pub health_checks: u32,
    /// Shifts to a higher canary weight (route writes that raised it).
    pub shift_count: usize,
    /// Route reads and writes of the tasks that shift (deploy-canary, health-check,
    /// shift-weights; the apply's server-side apply is a PATCH and not counted).
    pub shift_route_requests: usize,
    /// Of which writes.
    pub shift_route_writes: usize,
    /// Milliseconds Lambda would bill per function (all its calls: work and waits).
    pub billed_ms_by_function: BTreeMap<String, f64>,
    /// From the new Deployment becoming ready (the simulator's ready delay after the
    /// apply) to the first route write with the canary's weight, ms.
    pub ready_to_first_shift_millis: Option<i64>,
}

/// The calls of the functions that shift.
fn shifting(calls: &[Call]) -> impl Iterator<Item = &Call> {
    let names = [
        Function::DeployCanary.name(),
        Function::HealthCheck.name(),
        Function::ShiftWeights.name(),
    ];
    calls
        .iter()
        .filter(move |c| names.contains(&c.function.as_str()))
}

/// Runs one healthy canary deployment (v2 beside v1) with `config`.
pub async fn calibrate(
    config: &CheckConfig,
    delay_secs: i64,
) -> Result<Calibration, ScenarioError> {
    let env = env_with_stable(config, delay_secs).await?;
    let routes_before = env.sim.weight_history(NAMESPACE).len();
    let invoker = CountingInvoker::new(env.invoker(), env.sim.clone(), env.clock.clone())
        .with_inline(config.inline_checks());
    let run = env
        .executor
        .run_named(
            "bench-v2",
            config.document(&fixtures::image(2)),
            &invoker,
            &env.clock,
            &mut NoopObserver,
        )
        .await;
    let history: Vec<_> = env
        .sim
        .weight_history(NAMESPACE)
        .into_iter()
        .skip(routes_before)
        .collect();
    let first_shift_millis = history
        .iter()
        .find(|w| canary_weight(&w.weights) > 0)
        .map_or(0, |w| w.at_millis);
    let calls = invoker.calls();
    let mut invocations = BTreeMap::new();
    let mut requests_by_function = BTreeMap::new();
    let mut writes_by_function = BTreeMap::new();
    let mut billed_ms_by_function = BTreeMap::new();
    for c in &calls {
        *billed_ms_by_function
            .entry(c.function.clone())
            .or_insert(0.0) += c.billed_ms();
        *invocations.entry(c.function.clone()).or_insert(0) += 1;
        *requests_by_function.entry(c.function.clone()).or_insert(0) += c.requests;
        *writes_by_function.entry(c.function.clone()).or_insert(0) += c.writes;
    }
    // The apply is deploy-canary's first call; the simulator makes the Deployment ready
    // READY_DELAY after it.
    let ready_to_first_shift_millis = calls
        .iter()
        .find(|c| c.function == Function::DeployCanary.name())
        .filter(|_| first_shift_millis > 0)
        .map(|c| {
            let delay = i64::try_from(fixtures::READY_DELAY.as_millis()).unwrap_or(i64::MAX);
            first_shift_millis - (c.started_millis + delay)
        });
    let shift_route_requests = shifting(&calls).map(|c| c.route_requests).sum();
    let shift_route_writes = shifting(&calls).map(|c| c.route_puts).sum();
    let result = Calibration {
        config: config.clone(),
        succeeded: run.succeeded(),
        transitions: run.transitions,
        aws_history_events: run.aws_history_events,
        duration_secs: run.duration_millis / 1000,
        first_shift_millis,
        shifts: history
            .iter()
            .map(|w| {
                (
                    (w.at_millis - first_shift_millis) / 1000,
                    canary_weight(&w.weights),
                )
            })
            .collect(),
        requests: calls.iter().map(|c| c.requests).sum(),
        writes: calls.iter().map(|c| c.writes).sum(),
        route_writes: history.len(),
        calls,
        invocations,
        requests_by_function,
        writes_by_function,
        billed_ms_by_function,
        ready_to_first_shift_millis,
        shift_count: history
            .iter()
            .scan(0, |max, w| {
                let weight = canary_weight(&w.weights);
                let up = weight > *max;
                *max = (*max).max(weight);
                Some(up)
            })
            .filter(|up| *up)
            .count(),
        shift_route_requests,
        shift_route_writes,
        health_checks: run
            .output
            .pointer("/deployment/checks")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
    };
    env.shutdown().await;
    Ok(result)
}

/// What happened after an error onset.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Reaction {
    /// Seconds after the canary's first traffic that the errors began.
    pub onset_secs: i64,
    /// Seconds from the onset until all traffic was back on the stable version; `None`
    /// when the faulty canary was promoted.
    pub reaction_secs: Option<i64>,
    /// The canary's weight when the errors began.
    pub weight_at_onset: u64,
}

/// Runs the canary deployment with errors from `first_shift_millis + onset_secs` on.
pub async fn reaction(
    config: &CheckConfig,
    delay_secs: i64,
    first_shift_millis: i64,
    onset_secs: i64,
) -> Result<Reaction, ScenarioError> {
    let env = env_with_stable(config, delay_secs).await?;
    let routes_before = env.sim.weight_history(NAMESPACE).len();
    let onset_millis = first_shift_millis + onset_secs * 1000;
    let image = fixtures::image(2);
    let clock = Arc::new(OnsetClock::new(
        env.clock.clone(),
        env.sim.clone(),
        &image,
        onset_millis,
    ));
    // The handlers wait on the same clock (readiness reads, checks inside an
    // invocation), so an onset inside their waits starts the errors on time too.
    let mut invoker = env.invoker();
    invoker.services.clock = clock.clone();
    let _run = env
        .executor
        .run_named(
            "bench-v2",
            config.document(&image),
            &invoker,
            clock.as_ref(),
            &mut NoopObserver,
        )
        .await;
    let history: Vec<_> = env
        .sim
        .weight_history(NAMESPACE)
        .into_iter()
        .skip(routes_before)
        .collect();
    let weight_at_onset = history
        .iter()
        .rev()
        .find(|w| w.at_millis <= onset_millis)
        .map_or(0, |w| canary_weight(&w.weights));
    let back = history.iter().find(|w| {
        w.at_millis >= onset_millis && !w.weights.is_empty() && canary_weight(&w.weights) == 0
    });
    env.shutdown().await;
    Ok(Reaction {
        onset_secs,
        reaction_secs: back.map(|w| (w.at_millis - onset_millis) / 1000),
        weight_at_onset,
    })
}
