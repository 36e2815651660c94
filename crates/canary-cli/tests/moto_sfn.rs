#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End to end in a third-party interpreter: moto's Step Functions engine
//! (`execute_state_machine`) runs the real definition from `statemachine/`, and its
//! Lambda invocations reach our real handlers through `canary lambda-proxy`.
//!
//! Each test starts its own peers, so the tests run in parallel:
//! - the simulated cluster (in-process, real clock, Deployments ready 1 s after a
//!   change), served over HTTP, with a kubeconfig file for the proxy;
//! - moto_server on port Q with `MOTO_PORT=P`: moto's engine sends its Lambda Invoke
//!   calls to `localhost:$MOTO_PORT`;
//! - the built `canary lambda-proxy --listen 127.0.0.1:P --forward http://127.0.0.1:Q`
//!   as a child process: records and locks in moto's S3, health numbers from moto's
//!   CloudWatch (real SDK), the simulated cluster through the kubeconfig;
//! - a metrics pump standing in for Container Insights and the metric filters: every
//!   half second it puts the simulated traffic's 5xx and 2xx counts of the last half
//!   second into moto's CloudWatch (`5xx-<service>`, `2xx-<service>`, no dimensions,
//!   as the seed's health check reads them).
//!
//! The input is the seed's yelb-appserver deploy.json with `container_image` and
//! `config_file` added and short times: `percentage_step` 25 (four steps instead of
//! ten), `wait_time` 2, `check_interval` 1, `bake_time` 2, `ready_timeout` 30. moto's Waits and
//! retry delays are real sleeps; the readiness poll is the definition's fixed 10 s
//! (`canary_core::execution::READY_POLL_SECONDS`), so every deployment spends 10 s there.
//!
//! A stopped execution is recovered as the shared stack's EventBridge rule does it: moto
//! has no delivery from EventBridge to Lambda, so the test sends the rule's target (the
//! rollback function, through the proxy) the event EventBridge would send. The proxy
//! counts a stopped execution as ended 3 s after its stop (60 s in AWS, where a Lambda
//! task may still be in flight for that long; here tasks take milliseconds).
//!
//! Every scenario also runs in the local executor (virtual clock, in-memory records,
//! metrics straight from the simulated traffic): the states entered must be the same,
//! once consecutive repeats of the readiness loop and of the health-check loop are
//! collapsed (how many checks fit in a step depends on real time in moto), and so must
//! the final status and error.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use base64::Engine as _;
use canary_cli::local::{DEFINITION, Function, LocalInvoker, SimMetricsSource};
use canary_core::DeploySpec;
use canary_core::clock::{Clock, ManualClock, SystemClock};
use canary_core::provider::TrafficProvider;
use canary_kube::{Cluster, RequestPolicy};
use canary_lambda::{FixedCluster, Services};
use canary_metrics::cloudwatch::{CloudWatchMetrics, MetricDatum};
use canary_sfn::{Executor, NoopObserver, Status};
use canary_sim::{MetricsQuery, SimCluster, SimConfig, SimServer, kubeconfig_yaml};
use canary_store::{DeploymentStore, S3Objects, ServiceRef};

use canary_testkit::MotoServer;
use serde_json::{Value, json};

const NAMESPACE: &str = "yelb";
const SERVICE: &str = "yelb-appserver";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/yelb-appserver";
const ACCOUNT: &str = "123456789012";
/// The simulated Deployments' readiness delay.
const READY_DELAY: Duration = Duration::from_secs(1);
/// Requests per second the simulated service receives during a canary.
const TRAFFIC: f64 = 40.0;
/// How long one execution may take in moto before the test gives up.
const EXECUTION_DEADLINE: Duration = Duration::from_secs(120);
/// The proxy's `--stop-grace-secs`.
const STOP_GRACE_SECS: u64 = 3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The seed's yelb-appserver deploy.json as the pipeline hands it over (image and
/// template added), with short times.
fn deploy_json(version: u32) -> Value {
    let dir = root().join("tests/fixtures/yelb").join(SERVICE);
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("deploy.json")).unwrap()).unwrap();
    let template = std::fs::read_to_string(dir.join("kubernetes_template.yml")).unwrap();
    let map = doc.as_object_mut().unwrap();
    map.insert(
        "container_image".into(),
        json!(format!("{IMAGE}:{version}")),
    );
    map.insert(
        "config_file".into(),
        json!(base64::engine::general_purpose::STANDARD.encode(template)),
    );
    map.insert("percentage_step".into(), json!(25));
    map.insert("wait_time".into(), json!(2));
    map.insert("check_interval".into(), json!(1));
    // The default bake covers two CloudWatch metric periods (over two minutes); the
    // simulated metrics here are visible at once, so a short bake keeps the test short.
    map.insert("bake_time".into(), json!(2));
    map.insert("ready_timeout".into(), json!(30));
    DeploySpec::parse(&doc, None).expect("the test's deploy.json is valid");
    doc
}

/// The definition with the `${...FunctionArn}` placeholders replaced by Lambda ARNs
/// (what CloudFormation's DefinitionSubstitutions do in AWS; moto ignores them).
fn definition_for_moto() -> String {
    let mut text = DEFINITION.to_owned();
    for f in Function::ALL {
        text = text.replace(
            &format!("${{{}}}", f.arn_variable()),
            &format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{}", f.name()),
        );
    }
    assert!(!text.contains("${"), "a placeholder is left: {text}");
    text
}

/// A free loopback port (free when probed; the proxy binds it right after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The proxy child process; killed when dropped.
struct Proxy {
    child: Child,
    log: PathBuf,
    out: PathBuf,
}

impl Proxy {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The CloudWatch Embedded Metric Format lines the functions wrote to standard
    /// output, as Lambda would send them to CloudWatch Logs.
    fn emf_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One scenario's peers: moto, the proxy, the simulated cluster, the metrics pump.
struct MotoStack {
    sim: SimCluster,
    _sim_server: SimServer,
    _dir: tempfile::TempDir,
    proxy: Proxy,
    proxy_port: u16,
    moto: MotoServer,
    sfn: aws_sdk_sfn::Client,
    store: DeploymentStore,
    pump: tokio::task::JoinHandle<()>,
}

impl Drop for MotoStack {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// What an execution in moto ended with.
#[derive(Debug)]
struct MotoRun {
    status: ExecutionStatus,
    error: Option<String>,
    cause: Option<String>,
    path: Vec<String>,
    seconds: f64,
}

impl MotoStack {
    async fn start() -> Self {
        Self::start_with_function_env(&[]).await
    }

    /// The stack with extra environment variables for the functions (the proxy).
    async fn start_with_function_env(function_env: &[(&str, &str)]) -> Self {
        let sim = SimCluster::new(SimConfig::new(Arc::new(SystemClock), READY_DELAY));
        let sim_server = sim
            .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&sim_server.url, NAMESPACE)).unwrap();

        let port = free_port();
        let moto = MotoServer::start_with_env(&[("MOTO_PORT", &port.to_string())]).unwrap();
        let bucket = canary_testkit::unique_name("canary-e2e");
        let proxy = start_proxy(
            dir.path(),
            port,
            moto.endpoint(),
            &kubeconfig,
            &bucket,
            &moto,
            function_env,
        );

        // Through the proxy: anything that is not an invocation of ours reaches moto.
        post_json(
            &format!("http://127.0.0.1:{port}/moto-api/config"),
            &json!({"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}),
        )
        .await;
        let sdk = moto.sdk_config().await;
        S3Objects::new(&sdk, &bucket).create_bucket().await.unwrap();
        let store = DeploymentStore::s3(&sdk, &bucket).with_prefix("state");
        let sfn = aws_sdk_sfn::Client::new(&sdk);
        let pump = start_pump(sim.clone(), CloudWatchMetrics::new(&sdk).unwrap());
        Self {
            sim,
            _sim_server: sim_server,
            _dir: dir,
            proxy,
            proxy_port: port,
            moto,
            sfn,
            store,
            pump,
        }
    }

    /// Runs one execution with `input` to its end.
    ///
    /// Each execution gets its own state machine (the same definition), deleted once
    /// the execution has ended and its history is read: moto 5.2's StartExecution
    /// deep-copies the state machine, and through it the whole Step Functions backend;
    /// once any execution has run in that backend the copy meets the execution's
    /// `RLock` and StartExecution answers 500 (`TypeError: cannot pickle
    /// '_thread.RLock' object`). AWS has no such limit.
    async fn run(&self, name: &str, input: &Value) -> MotoRun {
        let started = Instant::now();
        let (machine, arn) = self.start_execution(name, input).await;
        self.wait_for(name, &machine, &arn, started).await
    }

    /// Waits for execution `arn` of state machine `machine` to end, reads its path and
    /// deletes the state machine.
    async fn wait_for(&self, name: &str, machine: &str, arn: &str, started: Instant) -> MotoRun {
        let described = loop {
            let d = self
                .sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "DescribeExecution {name}: {e:?}\n--- moto log:\n{}",
                        self.moto.log_tail()
                    )
                });
            if d.status() != &ExecutionStatus::Running {
                break d;
            }
            assert!(
                started.elapsed() < EXECUTION_DEADLINE,
                "execution {name} still running after {:?}; proxy log:\n{}",
                EXECUTION_DEADLINE,
                self.proxy.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let seconds = started.elapsed().as_secs_f64();
        let mut events: Vec<HistoryEvent> = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .sfn
                .get_execution_history()
                .execution_arn(arn)
                .max_results(1000)
                .set_next_token(token)
                .send()
                .await
                .unwrap();
            events.extend(page.events().iter().cloned());
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        self.sfn
            .delete_state_machine()
            .state_machine_arn(machine)
            .send()
            .await
            .unwrap();
        let path = events
            .iter()
            .filter(|e| e.r#type().as_str().ends_with("StateEntered"))
            .filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned()))
            .collect();
        MotoRun {
            status: described.status().clone(),
            error: described.error().map(str::to_owned),
            cause: described.cause().map(str::to_owned),
            path,
            seconds,
        }
    }

    /// Creates a state machine for `name` and starts the execution, without waiting:
    /// (state machine ARN, execution ARN).
    async fn start_execution(&self, name: &str, input: &Value) -> (String, String) {
        let machine = self
            .sfn
            .create_state_machine()
            .name(format!("canary-deployment-{name}"))
            .definition(definition_for_moto())
            .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/canary-state-machine"))
            .send()
            .await
            .expect("moto accepts the definition")
            .state_machine_arn()
            .to_owned();
        let arn = self
            .sfn
            .start_execution()
            .state_machine_arn(&machine)
            .name(name)
            .input(input.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("StartExecution {name}: {e:?}"))
            .execution_arn()
            .to_owned();
        (machine, arn)
    }

    fn svc(&self) -> ServiceRef {
        ServiceRef::from_spec(&DeploySpec::parse(&deploy_json(1), None).unwrap())
    }

    fn failure(&self, what: &str, run: &MotoRun) -> String {
        format!(
            "{what}: {run:?}\n--- proxy log:\n{}\n--- moto log:\n{}",
            self.proxy.log(),
            self.moto.log_tail()
        )
    }
}

fn start_proxy(
    dir: &Path,
    port: u16,
    forward: &str,
    kubeconfig: &Path,
    bucket: &str,
    moto: &MotoServer,
    function_env: &[(&str, &str)],
) -> Proxy {
    let log = dir.join("proxy.log");
    let out = dir.join("proxy.out");
    let child = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["lambda-proxy", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--forward", forward, "--bucket", bucket])
        .args(["--stop-grace-secs", &STOP_GRACE_SECS.to_string()])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .envs(moto.env())
        .envs(function_env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Its first line says it listens; the EMF lines of the functions follow.
    let started = Instant::now();
    let line = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(first) = text.lines().next().filter(|_| text.contains('\n')) {
            break first.to_owned();
        }
        if started.elapsed() > Duration::from_secs(30) {
            break String::new();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let proxy = Proxy { child, log, out };
    assert!(
        line.starts_with("lambda-proxy listening on http://127.0.0.1:"),
        "the proxy did not start: {line:?}\n{}",
        proxy.log()
    );
    proxy
}

/// POSTs JSON and returns the status and the answer's JSON.
async fn post_for_json(url: &str, body: &Value) -> (u16, Value) {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, String> = Client::builder(TokioExecutor::new()).build_http();
    let request = axum::http::Request::post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::Body::new(response.into_body());
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// POSTs JSON and expects a 2xx.
async fn post_json(url: &str, body: &Value) {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, String> = Client::builder(TokioExecutor::new()).build_http();
    let request = axum::http::Request::post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "POST {url}: {}",
        response.status()
    );
}

/// Container Insights and the metric filters, simulated: every half second, the
/// simulated service's 5xx and 2xx counts since the last round go into CloudWatch.
fn start_pump(sim: SimCluster, cloudwatch: CloudWatchMetrics) -> tokio::task::JoinHandle<()> {
    let spec = DeploySpec::parse(&deploy_json(1), None).unwrap();
    let health = spec.health.clone();
    tokio::spawn(async move {
        let mut last = SystemClock.now_millis();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = SystemClock.now_millis();
            let m = sim.metrics(&MetricsQuery {
                namespace: NAMESPACE.into(),
                service: SERVICE.into(),
                controller: None,
                start_millis: last,
                end_millis: now,
                period_secs: 3600,
            });
            last = now;
            if m.timestamps.is_empty() {
                continue;
            }
            let datum = |name: &str, value: f64| MetricDatum {
                name: name.to_owned(),
                dimensions: Vec::new(),
                timestamp_secs: now / 1000,
                value,
            };
            let data = [
                datum(&health.error_metric, m.errors.iter().sum()),
                datum(&health.success_metric, m.successes.iter().sum()),
            ];
            if let Err(e) = cloudwatch
                .put_metric_data(&health.metric_namespace, &data)
                .await
            {
                eprintln!("metrics pump: {e}");
            }
        }
    })
}

/// The same scenario in the local executor: virtual clock, records in memory, metrics
/// straight from the simulated traffic.
struct LocalStack {
    sim: SimCluster,
    _server: SimServer,
    clock: ManualClock,
    invoker: LocalInvoker,
    executor: Executor,
}

impl LocalStack {
    async fn start() -> Self {
        let clock = ManualClock::starting_at(1_700_000_000_000);
        let sim = SimCluster::new(SimConfig::new(Arc::new(clock.clone()), READY_DELAY));
        let server = sim
            .serve(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let cluster = Cluster::from_kubeconfig_yaml(
            &kubeconfig_yaml(&server.url, NAMESPACE),
            None,
            RequestPolicy::default(),
        )
        .await
        .unwrap();
        let services = Services {
            store: DeploymentStore::memory(),
            metrics: Arc::new(SimMetricsSource::new(sim.clone(), NAMESPACE)),
            clusters: Arc::new(FixedCluster(cluster)),
            clock: Arc::new(clock.clone()),
            holders: canary_lambda::Holders::none(),
            notifier: std::sync::Arc::new(canary_lambda::NoNotifier),
        };
        Self {
            sim,
            _server: server,
            clock,
            invoker: LocalInvoker { services },
            executor: Executor::from_json(DEFINITION)
                .unwrap()
                .with_name("canary-deployment"),
        }
    }

    async fn run(&self, name: &str, input: &Value) -> (String, Option<String>, Vec<String>) {
        let run = self
            .executor
            .run_named(
                name,
                input.clone(),
                &self.invoker,
                &self.clock,
                &mut NoopObserver,
            )
            .await;
        let path = run.path().into_iter().map(str::to_owned).collect();
        match run.status {
            Status::Succeeded => ("SUCCEEDED".into(), None, path),
            Status::Failed { error, .. } => ("FAILED".into(), Some(error), path),
        }
    }
}

/// The path with consecutive repeats of the readiness loop and of the health-check
/// loop collapsed into one.
fn collapsed(path: &[String]) -> Vec<String> {
    const LOOPS: [[&str; 3]; 2] = [
        ["WaitForReady", "CheckReadiness", "WhatNext"],
        ["WaitForCheck", "HealthCheck", "WhatNext"],
    ];
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < path.len() {
        let repeat = LOOPS.iter().find(|l| {
            path.len() >= i + 3
                && out.len() >= 3
                && l.iter().zip(&path[i..i + 3]).all(|(a, b)| a == b)
                && l.iter().zip(&out[out.len() - 3..]).all(|(a, b)| a == b)
        });
        if repeat.is_some() {
            i += 3;
        } else {
            out.push(path[i].clone());
            i += 1;
        }
    }
    out
}

/// Asserts that moto's run and the local run took the same (collapsed) path to the
/// same end.
fn assert_same(what: &str, moto: &MotoRun, local: &(String, Option<String>, Vec<String>)) {
    assert_eq!(
        moto.status.as_str(),
        local.0,
        "{what}: status in moto vs local"
    );
    assert_eq!(moto.error, local.1, "{what}: error in moto vs local");
    assert_eq!(
        collapsed(&moto.path),
        collapsed(&local.2),
        "{what}: collapsed paths differ\n moto:  {:?}\n local: {:?}",
        moto.path,
        local.2
    );
}

/// The Deployments of the service in the namespace, by name.
fn deployments(sim: &SimCluster) -> Vec<String> {
    let mut names: Vec<String> = sim
        .list_objects(NAMESPACE)
        .iter()
        .filter(|o| o["kind"] == "Deployment")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Every object labelled with `version` of the service.
fn objects_of_version(sim: &SimCluster, version: u32) -> Vec<String> {
    sim.list_objects(NAMESPACE)
        .iter()
        .filter(|o| {
            o["metadata"]["labels"]["eks-canary.io/version"].as_str()
                == Some(version.to_string().as_str())
        })
        .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
        .collect()
}

/// The VirtualRouter's targets and weights.
fn route(sim: &SimCluster) -> Vec<(String, u64)> {
    let router = sim
        .get_object(
            "appmesh.k8s.aws/v1beta2",
            "VirtualRouter",
            NAMESPACE,
            SERVICE,
        )
        .expect("the VirtualRouter exists");
    let provider = TrafficProvider::of_object(&router).expect("a VirtualRouter has a provider");
    provider.read(&router).unwrap()[0]
        .iter()
        .map(|t| (t.name.clone(), u64::from(t.weight)))
        .collect()
}

/// The end state every scenario must leave: all traffic on `serving`, only its
/// Deployment, nothing of `removed` left, the lock released and `serving` recorded as
/// the stable version.
async fn assert_whole_on(stack: &MotoStack, serving: u32, removed: Option<u32>) {
    let name = format!("{SERVICE}-{serving}");
    assert_eq!(route(&stack.sim), vec![(name.clone(), 100)]);
    assert_eq!(deployments(&stack.sim), vec![name]);
    if let Some(removed) = removed {
        assert!(
            objects_of_version(&stack.sim, removed).is_empty(),
            "objects of v{removed} left: {:?}",
            objects_of_version(&stack.sim, removed)
        );
    }
    let svc = stack.svc();
    assert!(
        stack.store.lock(&svc).await.unwrap().is_none(),
        "the lock is released"
    );
    assert_eq!(
        stack.store.state(&svc).await.unwrap().stable_version,
        Some(serving)
    );
}

async fn first_deployment_in_moto(stack: &MotoStack) -> MotoRun {
    let run = stack.run("yelb-appserver-1", &deploy_json(1)).await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{}",
        stack.failure("the first deployment", &run)
    );
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_deployment_succeeds_in_moto_and_takes_the_local_executors_path() {
    let stack = MotoStack::start().await;
    let run = first_deployment_in_moto(&stack).await;
    eprintln!(
        "first deployment in moto: {:.1} s, {:?}",
        run.seconds, run.path
    );

    assert_whole_on(&stack, 1, None).await;

    let local = LocalStack::start().await;
    let local_run = local.run("yelb-appserver-1", &deploy_json(1)).await;
    assert_same("first deployment", &run, &local_run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_is_promoted_in_moto_and_takes_the_local_executors_path() {
    let stack = MotoStack::start().await;
    first_deployment_in_moto(&stack).await;
    stack.sim.set_traffic(NAMESPACE, SERVICE, TRAFFIC);
    let run = stack.run("yelb-appserver-2", &deploy_json(2)).await;
    eprintln!(
        "healthy canary in moto: {:.1} s, {:?}",
        run.seconds, run.path
    );
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{}",
        stack.failure("the healthy canary", &run)
    );

    assert_whole_on(&stack, 2, Some(1)).await;
    let weights: Vec<u64> = stack
        .sim
        .weight_history(NAMESPACE)
        .iter()
        .filter_map(|w| {
            w.weights
                .iter()
                .find(|(n, _)| n == "yelb-appserver-2")
                .map(|(_, w)| *w)
        })
        .collect();
    assert_eq!(weights.last(), Some(&100), "weights of v2: {weights:?}");
    assert!(weights.contains(&25) && weights.contains(&50) && weights.contains(&75));

    // The functions' logs carry the numbers of each decision as EMF: the weight after
    // each shift and at the end, and each check's canary numbers.
    let emf = stack.proxy.emf_lines();
    let of_v2: Vec<&Value> = emf.iter().filter(|l| l["CanaryVersion"] == 2).collect();
    let weights_logged: Vec<u64> = of_v2
        .iter()
        .filter(|l| l["Decision"] == "shift")
        .filter_map(|l| l["CanaryWeight"].as_f64().map(|w| w as u64))
        .collect();
    assert_eq!(weights_logged, [25, 50, 75, 100], "{of_v2:?}");
    let checks: Vec<&&Value> = of_v2.iter().filter(|l| l["Decision"] == "check").collect();
    assert!(!checks.is_empty(), "{of_v2:?}");
    for c in &checks {
        let metrics = c["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        for m in metrics {
            let name = m["Name"].as_str().unwrap();
            assert!(c[name].is_number(), "{name} has no value in {c}");
        }
        assert!(
            c["CanaryErrors"].is_number() && c["Service"] == SERVICE,
            "{c}"
        );
    }
    assert!(
        of_v2
            .iter()
            .any(|l| l["Decision"] == "promoted" && l["CanaryWeight"] == 100.0)
    );

    let local = LocalStack::start().await;
    local.run("yelb-appserver-1", &deploy_json(1)).await;
    local.sim.set_traffic(NAMESPACE, SERVICE, TRAFFIC);
    let local_run = local.run("yelb-appserver-2", &deploy_json(2)).await;
    assert_same("healthy canary", &run, &local_run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_canary_is_rolled_back_in_moto_and_takes_the_local_executors_path() {
    let stack = MotoStack::start().await;
    first_deployment_in_moto(&stack).await;
    stack.sim.set_traffic(NAMESPACE, SERVICE, TRAFFIC);
    stack.sim.set_error_rate(&format!("{IMAGE}:2"), 0.5);
    let run = stack.run("yelb-appserver-2", &deploy_json(2)).await;
    eprintln!(
        "faulty canary in moto: {:.1} s, {:?}",
        run.seconds, run.path
    );
    assert_eq!(
        run.status,
        ExecutionStatus::Failed,
        "{}",
        stack.failure("the faulty canary", &run)
    );
    assert_eq!(run.error.as_deref(), Some("RolledBack"));
    let cause = run.cause.clone().unwrap_or_default();
    // The cause names what happened and the numbers: errors counted, window, threshold.
    let numbers = cause
        .strip_prefix("yelb-appserver-2 rolled back to yelb-appserver-1 at 25% of traffic: ")
        .unwrap_or_else(|| panic!("cause: {cause}"));
    let errors: f64 = numbers
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cause: {cause}"));
    assert!(errors > 0.0, "cause: {cause}");
    assert!(
        numbers.contains("errors over 300 s") && numbers.contains("failure_threshold_value 0"),
        "cause: {cause}"
    );

    assert_whole_on(&stack, 1, Some(2)).await;
    let svc = stack.svc();
    let record = stack
        .store
        .record(&svc, 2)
        .await
        .unwrap()
        .expect("v2's record");
    assert_eq!(record.weight, 0);
    assert!(
        record.outcome.is_some(),
        "the record says how it ended: {record:?}"
    );

    let local = LocalStack::start().await;
    local.run("yelb-appserver-1", &deploy_json(1)).await;
    local.sim.set_traffic(NAMESPACE, SERVICE, TRAFFIC);
    local.sim.set_error_rate(&format!("{IMAGE}:2"), 0.5);
    let local_run = local.run("yelb-appserver-2", &deploy_json(2)).await;
    assert_same("faulty canary", &run, &local_run);
}

#[test]
fn repeats_of_the_wait_loops_collapse_and_nothing_else_does() {
    let p = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        collapsed(&p(
            "A WaitForCheck HealthCheck WhatNext WaitForCheck HealthCheck WhatNext ShiftWeights WhatNext WaitForCheck HealthCheck WhatNext"
        )),
        p(
            "A WaitForCheck HealthCheck WhatNext ShiftWeights WhatNext WaitForCheck HealthCheck WhatNext"
        )
    );
    assert_eq!(
        collapsed(&p(
            "WaitForReady CheckReadiness WhatNext WaitForReady CheckReadiness WhatNext Cleanup"
        )),
        p("WaitForReady CheckReadiness WhatNext Cleanup")
    );
    assert_eq!(
        collapsed(&p("ShiftWeights WhatNext ShiftWeights WhatNext")),
        p("ShiftWeights WhatNext ShiftWeights WhatNext")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_cannot_become_ready_is_rolled_back_in_moto_and_takes_the_local_executors_path()
 {
    let stack = MotoStack::start().await;
    first_deployment_in_moto(&stack).await;
    stack
        .sim
        .mark_image_bad(&format!("{IMAGE}:2"), "ImagePullBackOff");
    let run = stack.run("yelb-appserver-2", &deploy_json(2)).await;
    eprintln!(
        "unready canary in moto: {:.1} s, {:?}, cause {:?}",
        run.seconds, run.path, run.cause
    );
    assert_eq!(
        run.status,
        ExecutionStatus::Failed,
        "{}",
        stack.failure("the unready canary", &run)
    );
    assert_eq!(run.error.as_deref(), Some("RolledBack"));
    // CheckReadiness failed with a function error (X-Amz-Function-Error through the
    // proxy), which the Catch sent to Rollback; the cause names the error and the reason.
    let cause = run.cause.clone().unwrap_or_default();
    assert!(
        cause.starts_with(
            "yelb-appserver-2 rolled back to yelb-appserver-1 at 0% of traffic: CanaryNotReady: "
        ) && cause.contains("ImagePullBackOff"),
        "cause: {cause}"
    );
    // Step Functions hands the Catch the function's error payload as JSON text; the
    // rollback reason carries only its message.
    assert!(!cause.contains("errorType"), "cause: {cause}");
    assert_whole_on(&stack, 1, Some(2)).await;

    let local = LocalStack::start().await;
    local.run("yelb-appserver-1", &deploy_json(1)).await;
    local
        .sim
        .mark_image_bad(&format!("{IMAGE}:2"), "ImagePullBackOff");
    let local_run = local.run("yelb-appserver-2", &deploy_json(2)).await;
    assert_same("unready canary", &run, &local_run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_deploy_json_fails_in_moto_before_anything_is_touched_as_in_the_local_executor()
{
    let stack = MotoStack::start().await;
    let mut input = deploy_json(1);
    input["percentage_step"] = json!(0);
    input["colour"] = json!("blue");
    let run = stack.run("yelb-appserver-invalid", &input).await;
    eprintln!(
        "invalid deploy.json in moto: {:.1} s, {:?}, cause {:?}",
        run.seconds, run.path, run.cause
    );
    assert_eq!(
        run.status,
        ExecutionStatus::Failed,
        "{}",
        stack.failure("the invalid deploy.json", &run)
    );
    assert_eq!(run.error.as_deref(), Some("InvalidInput"));
    let cause = run.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("percentage_step") && cause.contains("colour"),
        "the cause names every bad field: {cause}"
    );
    assert!(stack.sim.list_objects(NAMESPACE).is_empty());
    let svc = stack.svc();
    assert!(stack.store.lock(&svc).await.unwrap().is_none());

    let local = LocalStack::start().await;
    let local_run = local.run("yelb-appserver-invalid", &input).await;
    assert_same("invalid deploy.json", &run, &local_run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_stopped_at_25_percent_is_recovered_by_the_rule_s_target_in_moto() {
    // moto's Step Functions fails an execution stopped while a task is in flight
    // (States.Runtime "pop from empty list"), where AWS would abort it; with no checks
    // waited for inside health-check, the stop lands in a Wait state, as it usually
    // does in AWS between checks.
    let stack =
        MotoStack::start_with_function_env(&[("CANARY_CHECK_INLINE_MAX_WAIT_SECONDS", "0")]).await;
    first_deployment_in_moto(&stack).await;
    stack.sim.set_traffic(NAMESPACE, SERVICE, TRAFFIC);
    let svc = stack.svc();
    let (machine, arn) = stack
        .start_execution("yelb-appserver-2", &deploy_json(2))
        .await;

    // StopExecution once v2 takes 25% of the traffic (its record says so) and the
    // execution waits between tasks (its last history event entered a Wait state): the
    // record is written inside the task, and moto fails a stop that lands while a task
    // is in flight.
    let started = Instant::now();
    loop {
        let weight = stack.store.record(&svc, 2).await.unwrap().map(|r| r.weight);
        if weight == Some(25) && last_event_is_a_wait(&stack, &arn).await {
            break;
        }
        assert!(
            started.elapsed() < EXECUTION_DEADLINE,
            "v2 never reached 25% (record weight {weight:?}); proxy log:\n{}",
            stack.proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack
        .sfn
        .stop_execution()
        .execution_arn(&arn)
        .cause("stopped from the console")
        .send()
        .await
        .unwrap();
    let described = loop {
        let d = stack
            .sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .unwrap();
        if d.status() != &ExecutionStatus::Running {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        described.status(),
        &ExecutionStatus::Aborted,
        "{:?}: {:?}",
        described.error(),
        described.cause()
    );
    // Traffic is left split and the lock held by the stopped execution.
    let split = route(&stack.sim);
    assert!(
        split.contains(&(format!("{SERVICE}-1"), 75))
            && split.contains(&(format!("{SERVICE}-2"), 25)),
        "{split:?}"
    );
    assert_eq!(
        stack.store.lock(&svc).await.unwrap().map(|l| l.execution),
        Some(arn.clone())
    );

    // The event EventBridge sends the rule's target.
    let millis = |t: &aws_sdk_sfn::primitives::DateTime| {
        t.secs() * 1000 + i64::from(t.subsec_nanos() / 1_000_000)
    };
    let event = json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": machine,
            "name": "yelb-appserver-2",
            "status": described.status().as_str(),
            "startDate": millis(described.start_date()),
            "stopDate": described.stop_date().map(millis),
            "input": described.input().unwrap_or_default(),
            "inputDetails": {"included": true},
            "output": null,
            "outputDetails": null
        }
    });
    let invoke = format!(
        "http://127.0.0.1:{}/2015-03-31/functions/arn:aws:lambda:us-east-1:{ACCOUNT}:function:rollback/invocations",
        stack.proxy_port
    );
    // Right after the stop, the stopped execution's last task may still be in flight:
    // the function refuses (Lambda delivers the event again later).
    let (status, early) = post_for_json(&invoke, &event).await;
    let early_text = early.to_string();
    assert!(
        status == 200
            && early_text.contains("ServiceLocked")
            && early_text.contains("delivered again"),
        "{status}: {early}\n{}",
        stack.proxy.log()
    );
    tokio::time::sleep(Duration::from_secs(STOP_GRACE_SECS + 1)).await;
    let (status, answer) = post_for_json(&invoke, &event).await;
    assert_eq!(status, 200, "{answer}\n{}", stack.proxy.log());
    assert_eq!(
        answer["recovery"],
        "recovered",
        "{answer}\n{}",
        stack.proxy.log()
    );
    let reason = answer["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with(&format!(
            "recovered from {arn}: stopped at 25%; all traffic back on {SERVICE}-1, {SERVICE}-2 removed"
        )) && reason.ends_with("(Step Functions says ABORTED)"),
        "{reason}"
    );

    assert_whole_on(&stack, 1, Some(2)).await;
    let record = stack
        .store
        .record(&svc, 2)
        .await
        .unwrap()
        .expect("v2's record");
    let outcome = record.outcome.expect("v2's record has ended");
    assert_eq!(
        outcome.status,
        canary_core::execution::OutcomeStatus::RolledBack
    );
    assert_eq!(outcome.reason, reason);
    assert_eq!(stack.store.state(&svc).await.unwrap().in_progress, None);

    // Delivered again: nothing left to do.
    let (_, again) = post_for_json(&invoke, &event).await;
    assert_eq!(again["recovery"], "nothing_to_recover", "{again}");
    stack
        .sfn
        .delete_state_machine()
        .state_machine_arn(&machine)
        .send()
        .await
        .unwrap();
}

/// Whether the last history event of execution `arn` is a Wait state being entered
/// (the whole history is read: moto ignores `reverseOrder`).
async fn last_event_is_a_wait(stack: &MotoStack, arn: &str) -> bool {
    let mut last = None;
    let mut token = None;
    loop {
        let page = stack
            .sfn
            .get_execution_history()
            .execution_arn(arn)
            .max_results(1000)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        if let Some(e) = page.events().last() {
            last = Some(e.r#type().as_str().to_owned());
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    last.as_deref() == Some("WaitStateEntered")
}

/// v2's deploy.json with `gates`.
fn gated_deploy_json(gates: Value) -> Value {
    let mut doc = deploy_json(2);
    doc["gates"] = gates;
    DeploySpec::parse(&doc, None).expect("the gated deploy.json is valid");
    doc
}

/// Waits until v2's record says it waits at a gate; returns the gate's name.
async fn wait_for_gate(stack: &MotoStack, svc: &ServiceRef) -> String {
    let started = Instant::now();
    loop {
        let record = stack.store.record(svc, 2).await.unwrap();
        if let Some(g) = record.and_then(|r| r.gate) {
            return g.gate;
        }
        assert!(
            started.elapsed() < EXECUTION_DEADLINE,
            "v2 never paused at its gate; proxy log:\n{}",
            stack.proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_in_moto_waits_for_the_approval_sent_twice_and_refuses_one_after_the_end() {
    use canary_cli::records::gates::approve;
    let stack = MotoStack::start().await;
    first_deployment_in_moto(&stack).await;
    stack.sim.set_traffic(NAMESPACE, SERVICE, TRAFFIC);
    let svc = stack.svc();
    let started = Instant::now();
    let (machine, arn) = stack
        .start_execution(
            "yelb-appserver-2",
            &gated_deploy_json(json!([{"at": 50, "timeout": 600}])),
        )
        .await;
    assert_eq!(wait_for_gate(&stack, &svc).await, "50%");
    // Held at 50% while it waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(route(&stack.sim).contains(&(format!("{SERVICE}-2"), 50)));
    let record = stack.store.record(&svc, 2).await.unwrap().unwrap();
    assert!(record.gate.is_some(), "still waiting: {record:?}");
    let first = approve(&stack.store, &svc, "ana", "first", 1)
        .await
        .unwrap();
    assert!(first.contains("gate at 50% approved by ana"), "{first}");
    approve(&stack.store, &svc, "bo", "second", 2)
        .await
        .unwrap();

    let run = stack
        .wait_for("yelb-appserver-2", &machine, &arn, started)
        .await;
    assert_eq!(
        run.status,
        ExecutionStatus::Succeeded,
        "{}",
        stack.failure("the gated canary", &run)
    );
    assert_whole_on(&stack, 2, Some(1)).await;
    let record = stack.store.record(&svc, 2).await.unwrap().unwrap();
    let approved: Vec<_> = record
        .operator
        .iter()
        .filter(|a| a.kind == canary_core::ActionKind::Approved)
        .collect();
    assert_eq!(
        approved.len(),
        1,
        "one gate, passed once: {:?}",
        record.operator
    );
    let e = approve(&stack.store, &svc, "ana", "late", 3)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no deployment is running"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_nobody_approves_in_moto_rolls_back_at_its_deadline() {
    let stack = MotoStack::start().await;
    first_deployment_in_moto(&stack).await;
    stack.sim.set_traffic(NAMESPACE, SERVICE, TRAFFIC);
    let run = stack
        .run(
            "yelb-appserver-2",
            &gated_deploy_json(json!([{"at": 25, "timeout": 10}])),
        )
        .await;
    assert_eq!(run.status, ExecutionStatus::Failed, "{run:?}");
    assert_eq!(run.error.as_deref(), Some("RolledBack"), "{run:?}");
    let cause = run.cause.clone().unwrap_or_default();
    assert!(
        cause.contains("not approved at the 25% gate within 10s"),
        "{cause}"
    );
    assert_whole_on(&stack, 1, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_while_paused_in_moto_rolls_back_before_the_gate_s_deadline() {
    let stack = MotoStack::start().await;
    first_deployment_in_moto(&stack).await;
    stack.sim.set_traffic(NAMESPACE, SERVICE, TRAFFIC);
    let svc = stack.svc();
    let started = Instant::now();
    let (machine, arn) = stack
        .start_execution(
            "yelb-appserver-2",
            &gated_deploy_json(json!([{"at": 50, "timeout": 600}])),
        )
        .await;
    wait_for_gate(&stack, &svc).await;
    stack.sim.set_error_rate(&format!("{IMAGE}:2"), 0.3);
    let broke = Instant::now();
    let run = stack
        .wait_for("yelb-appserver-2", &machine, &arn, started)
        .await;
    assert_eq!(run.error.as_deref(), Some("RolledBack"), "{run:?}");
    assert!(
        broke.elapsed() < Duration::from_secs(60),
        "rolled back {:?} after the failure, not at the gate's deadline",
        broke.elapsed()
    );
    let cause = run.cause.clone().unwrap_or_default();
    assert!(cause.contains("at 50%"), "{cause}");
    assert_whole_on(&stack, 1, None).await;
}
