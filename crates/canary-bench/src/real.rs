//! The real programs on real peers, side by side on this machine:
//!
//! - **ours**: the six functions' release `bootstrap` binaries, each under its own
//!   [`FunctionProcess`] (a local Lambda Runtime API), driven through whole yelb-appserver
//!   deployments in the state machine's order (render, apply, readiness, ten shifts each
//!   followed by a health check, then cleanup; every other deployment rolls back after
//!   the third check instead) against moto (S3, CloudWatch) and the simulated cluster
//!   served on loopback (`CANARY_KUBECONFIG`). Every generation starts fresh processes,
//!   so each function has cold starts and warm invocations.
//! - **the original** (`bench/baseline/`): its bash step (`aws eks update-kubeconfig`,
//!   `kubectl apply` of the whole template) through whole deployments on the same
//!   simulator, its promotion step, and its Python functions (boto3 against the same
//!   moto) cold and warm.
//!
//! Every run counts the requests the simulated API server received.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_cli::demo::{self, SERVICE};
use canary_core::clock::SystemClock;
use canary_sim::{SimCluster, SimConfig, SimServer, kubeconfig_yaml};
use canary_testkit::MotoServer;
use serde::Serialize;
use serde_json::{Value, json};

use crate::lambda_api::{FunctionProcess, LambdaApiError};

/// The six functions, in flow order.
pub const FUNCTIONS: [&str; 6] = [
    "render-template",
    "deploy-canary",
    "shift-weights",
    "health-check",
    "rollback",
    "cleanup",
];
/// Our namespace on the simulator.
pub const OURS_NAMESPACE: &str = "yelb";
/// The baseline's namespace on the same simulator.
pub const BASELINE_NAMESPACE: &str = "yelb-seed";
/// The state bucket in moto.
pub const BUCKET: &str = "canary-bench-state";
/// The seed's cluster name.
pub const CLUSTER: &str = "blogpost";
/// Simulated requests per second to the service.
pub const REQUESTS_PER_SECOND: f64 = 50.0;

/// What to run and where.
#[derive(Debug, Clone)]
pub struct RealConfig {
    /// Folder with `<function>` binaries (host release builds).
    pub bin_dir: PathBuf,
    /// `bench/baseline`.
    pub baseline_dir: PathBuf,
    /// Scratch folder (logs, kubeconfigs, the baseline's /tmp).
    pub work: PathBuf,
    /// Process generations of ours (each: fresh processes, four deployments).
    pub generations: usize,
    /// Whole baseline canary deployments (10 steps and the promotion each).
    pub baseline_deployments: usize,
    /// Processes per Python function (each: one cold call, then warm calls).
    pub python_processes: usize,
    /// Calls per Python process.
    pub python_calls: usize,
    /// Memory size of each function (MB), for the Lambda variables.
    pub memory_mb: BTreeMap<String, u32>,
}

/// Why the real benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum RealError {
    /// moto did not start.
    #[error("moto_server: {0}")]
    Moto(#[from] canary_testkit::TestkitError),
    /// A file or process problem.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A setup command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command.
        command: String,
        /// What it printed.
        stderr: String,
    },
    /// A function process failed.
    #[error(transparent)]
    Lambda(#[from] LambdaApiError),
    /// A deployment step did not go as the flow needs.
    #[error("{0}")]
    Flow(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RealError {
    let what = what.into();
    move |source| RealError::Io { what, source }
}

/// One invocation of one of our functions.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    /// The function.
    pub function: String,
    /// Whether it was the process's first (a cold start).
    pub cold: bool,
    /// Event handed out to answer received, ms (Lambda's billed duration, warm).
    pub duration_ms: f64,
    /// For a cold start: process spawn to answer received, ms.
    pub cold_start_ms: Option<f64>,
    /// For a cold start: process spawn to its first `next` request (init), ms.
    pub init_ms: Option<f64>,
    /// Whether the function answered without an error.
    pub ok: bool,
    /// The error, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Requests the simulated API server received during the invocation.
    pub requests: usize,
    /// Of which writes.
    pub writes: usize,
}

/// Our functions' measurements.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OursRun {
    /// Every invocation.
    pub invocations: Vec<Invocation>,
    /// Peak RSS (KiB) of every process, per function.
    pub peak_rss_kib: BTreeMap<String, Vec<u64>>,
    /// Deployments run (promoted, rolled back).
    pub deployments: Vec<String>,
}

/// One run of a baseline bash step.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineStep {
    /// `deploy-and-switch` or `remove-old-version`.
    pub function: String,
    /// The deployment (1-based) and step (1-based) within it.
    pub deployment: usize,
    /// The step within the deployment.
    pub step: usize,
    /// The canary's weight after it.
    pub weight: u64,
    /// Wall time of the script, ms.
    pub ms: f64,
    /// Peak RSS of its largest process (GNU time `%M`), KiB.
    pub max_rss_kib: Option<u64>,
    /// Requests to the simulated API server.
    pub requests: usize,
    /// Of which writes.
    pub writes: usize,
    /// Whether kubectl's discovery cache was empty (the first step of the sandbox).
    pub fresh_discovery_cache: bool,
}

/// One process of a baseline Python function.
#[derive(Debug, Clone, Serialize)]
pub struct PythonRun {
    /// `check_version`, `gather_health` or `update_version`.
    pub function: String,
    /// Process start to first result, ms.
    pub cold_start_ms: f64,
    /// Duration of each call, ms (the first is the cold call's handler time).
    pub calls_ms: Vec<f64>,
    /// Time to import the module (boto3 and its clients), ms.
    pub import_ms: f64,
    /// Peak RSS, KiB.
    pub vmhwm_kib: Option<u64>,
    /// The last result.
    pub result: Value,
}

/// The baseline's measurements.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BaselineRun {
    /// Every bash step.
    pub steps: Vec<BaselineStep>,
    /// Every Python process.
    pub python: Vec<PythonRun>,
}

/// Everything measured on real peers.
#[derive(Debug, Clone, Serialize)]
pub struct RealRun {
    /// Our functions.
    pub ours: OursRun,
    /// The original's work.
    pub baseline: BaselineRun,
    /// Versions of the tools the baseline used.
    pub tools: BTreeMap<String, String>,
}

struct Peers {
    moto: MotoServer,
    sim: SimCluster,
    server: SimServer,
    kubeconfig: PathBuf,
}

fn run_command(cmd: &mut Command) -> Result<String, RealError> {
    let out = cmd.output().map_err(io(format!("running {cmd:?}")))?;
    if !out.status.success() {
        return Err(RealError::Command {
            command: format!("{cmd:?}"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn aws(moto: &MotoServer, args: &[&str]) -> Result<String, RealError> {
    run_command(
        Command::new("aws")
            .args(args)
            .envs(moto.env())
            .stdin(Stdio::null()),
    )
}

async fn start_peers(work: &Path) -> Result<Peers, RealError> {
    let moto = MotoServer::start()?;
    aws(&moto, &["s3api", "create-bucket", "--bucket", BUCKET])?;
    aws(
        &moto,
        &[
            "eks",
            "create-cluster",
            "--name",
            CLUSTER,
            "--role-arn",
            "arn:aws:iam::123456789012:role/eks-cluster",
            "--resources-vpc-config",
            "subnetIds=subnet-0000000000000001",
        ],
    )?;
    // A few per-minute 5xx datapoints of 0, so that both health checks read real numbers.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for minutes_ago in 1..=5 {
        let ts = (now - minutes_ago * 60).to_string();
        aws(
            &moto,
            &[
                "cloudwatch",
                "put-metric-data",
                "--namespace",
                "EnvoyPrometheus/ResponseCode",
                "--metric-name",
                &format!("5xx-{SERVICE}"),
                "--value",
                "0",
                "--timestamp",
                &ts,
            ],
        )?;
    }
    let sim = SimCluster::new(SimConfig::new(Arc::new(SystemClock), Duration::ZERO));
    let server = sim
        .serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(io("serving the simulated cluster"))?;
    sim.set_traffic(OURS_NAMESPACE, SERVICE, REQUESTS_PER_SECOND);
    sim.set_traffic(BASELINE_NAMESPACE, SERVICE, REQUESTS_PER_SECOND);
    let kubeconfig = work.join("sim.kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_yaml(&server.url, OURS_NAMESPACE))
        .map_err(io("writing the simulator's kubeconfig"))?;
    Ok(Peers {
        moto,
        sim,
        server,
        kubeconfig,
    })
}

/// Drives our functions' processes; a function's process is spawned at its first
/// invocation of a generation, with the event queued at once.
struct Ours<'a> {
    cfg: &'a RealConfig,
    peers: &'a Peers,
    env: Vec<(String, String)>,
    processes: BTreeMap<String, FunctionProcess>,
    run: OursRun,
}

impl Ours<'_> {
    async fn invoke(&mut self, function: &str, event: Value) -> Result<Value, RealError> {
        let mut cold = false;
        if !self.processes.contains_key(function) {
            let memory = self.cfg.memory_mb.get(function).copied().unwrap_or(256);
            let log = self.cfg.work.join(format!("{function}.log"));
            let p = FunctionProcess::spawn(
                function,
                &self.cfg.bin_dir.join(function),
                memory,
                &self.env,
                &log,
            )
            .await?;
            self.processes.insert(function.to_owned(), p);
            cold = true;
        }
        let Some(process) = self.processes.get_mut(function) else {
            return Err(RealError::Flow(format!("no process for {function}")));
        };
        let before = self.peers.sim.requests().len();
        let writes_before = self.peers.sim.write_count();
        let outcome = process.invoke(event).await?;
        let spawned = process.spawned_at;
        let requests = self.peers.sim.requests().len().saturating_sub(before);
        let writes = self.peers.sim.write_count().saturating_sub(writes_before);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.run.invocations.push(Invocation {
            function: function.to_owned(),
            cold,
            duration_ms: ms(outcome.done_at - outcome.handed_at),
            cold_start_ms: cold.then(|| ms(outcome.done_at - spawned)),
            init_ms: cold.then(|| ms(outcome.handed_at - spawned)),
            ok: outcome.ok,
            error: (!outcome.ok).then(|| outcome.body.to_string()),
            requests,
            writes,
        });
        if outcome.ok {
            Ok(outcome.body)
        } else {
            Err(RealError::Flow(format!(
                "{function} failed: {}",
                outcome.body
            )))
        }
    }

    fn end_generation(&mut self) {
        for (name, p) in std::mem::take(&mut self.processes) {
            if let Some(kib) = p.peak_rss_kib() {
                self.run.peak_rss_kib.entry(name).or_default().push(kib);
            }
            p.stop();
        }
    }

    /// One deployment of `version`: `first` goes straight to 100%; otherwise ten steps
    /// and cleanup, or a rollback after the third check when `roll_back`.
    async fn deployment(&mut self, version: u32, roll_back: bool) -> Result<(), RealError> {
        let mut deploy = demo::deploy_document(&demo::image(version));
        if let Some(m) = deploy.as_object_mut() {
            m.remove("check_interval");
        }
        let execution = format!(
            "arn:aws:states:us-east-1:000000000000:execution:canary-deployment:bench-{version}"
        );
        let mut doc = self
            .invoke(
                "render-template",
                json!({"deploy": deploy, "execution": execution}),
            )
            .await?;
        let first = doc["deployment"]["stable_version"].is_null();
        doc = self.invoke("deploy-canary", doc).await?;
        for _ in 0..50 {
            doc = self.invoke("deploy-canary", doc).await?;
            if doc["deployment"]["next"] != "wait_ready" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if first {
            doc = self.invoke("shift-weights", doc).await?;
            self.invoke("cleanup", doc).await?;
            self.run
                .deployments
                .push(format!("v{version}: first deployment"));
            return Ok(());
        }
        let steps = doc["deployment"]["schedule"].as_array().map_or(0, Vec::len);
        for step in 0..steps {
            doc = self.invoke("shift-weights", doc).await?;
            doc = self.invoke("health-check", doc).await?;
            if roll_back && step == 2 {
                self.invoke("rollback", doc).await?;
                self.run
                    .deployments
                    .push(format!("v{version}: rolled back at 30%"));
                return Ok(());
            }
        }
        self.invoke("cleanup", doc).await?;
        self.run.deployments.push(format!("v{version}: promoted"));
        Ok(())
    }
}

async fn run_ours(cfg: &RealConfig, peers: &Peers) -> Result<OursRun, RealError> {
    let mut env: Vec<(String, String)> = peers
        .moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("CANARY_STATE_BUCKET".into(), BUCKET.into()));
    env.push(("CANARY_STATE_PREFIX".into(), "state".into()));
    env.push((
        "CANARY_KUBECONFIG".into(),
        peers.kubeconfig.display().to_string(),
    ));
    env.push(("RUST_LOG".into(), "info".into()));
    let mut ours = Ours {
        cfg,
        peers,
        env,
        processes: BTreeMap::new(),
        run: OursRun::default(),
    };
    let mut version = 1;
    // The first deployment (v1) makes a stable version to deploy beside.
    ours.deployment(version, false).await?;
    ours.end_generation();
    for _ in 0..cfg.generations {
        for d in 0..4 {
            version += 1;
            // Promoted, rolled back, promoted, rolled back: each function starts cold
            // once per generation and then runs warm.
            let roll_back = d % 2 == 1;
            // A rolled-back version's number is used up; the next deployment gets the
            // next number.
            ours.deployment(version, roll_back).await?;
        }
        ours.end_generation();
    }
    Ok(ours.run)
}

async fn run_script(
    peers: &Peers,
    script: &Path,
    event: &Value,
    work: &Path,
) -> Result<(f64, Option<u64>, usize, usize, String), RealError> {
    std::fs::create_dir_all(work).map_err(io("creating the baseline's /tmp"))?;
    let event_file = work.join("event.json");
    std::fs::write(&event_file, event.to_string()).map_err(io("writing the event"))?;
    let rss_file = work.join("rss.txt");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg("bash")
        .arg(script)
        .arg(&event_file)
        .envs(peers.moto.env())
        .env("WORK", work)
        .env("SIM_SERVER", &peers.server.url)
        .stdin(Stdio::null());
    let before = peers.sim.requests().len();
    let writes_before = peers.sim.write_count();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .map_err(|e| RealError::Flow(format!("the baseline step's thread: {e}")))?
        .map_err(io(format!("running {}", script.display())))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        return Err(RealError::Command {
            command: script.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    Ok((
        ms,
        rss,
        peers.sim.requests().len().saturating_sub(before),
        peers.sim.write_count().saturating_sub(writes_before),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    ))
}

async fn run_baseline(cfg: &RealConfig, peers: &Peers) -> Result<BaselineRun, RealError> {
    let mut run = BaselineRun::default();
    let switch = cfg.baseline_dir.join("deploy_and_switch.sh");
    let remove = cfg.baseline_dir.join("remove_old_version.sh");
    // One sandbox per function: its /tmp (and kubectl's discovery cache) persists
    // between its invocations, as in a warm Lambda sandbox.
    let switch_work = cfg.work.join("baseline-deploy-and-switch");
    let remove_work = cfg.work.join("baseline-remove-old-version");
    let mut fresh_switch = true;
    let mut fresh_remove = true;
    for version in 1..=(cfg.baseline_deployments + 1) {
        let mut event = demo::deploy_document(&demo::image(version as u32));
        if let Some(m) = event.as_object_mut() {
            m.remove("check_interval");
            m.insert(
                "kubernetes_namespace".into(),
                Value::from(BASELINE_NAMESPACE),
            );
        }
        let mut percentage = 0u64;
        let mut step = 0;
        while percentage < 100 {
            step += 1;
            event["deployment"] = json!({"new_version": version, "current_percentage": percentage});
            let (ms, rss, requests, writes, out) =
                run_script(peers, &switch, &event, &switch_work).await?;
            percentage = out.parse().unwrap_or(100);
            run.steps.push(BaselineStep {
                function: "deploy-and-switch".into(),
                deployment: version,
                step,
                weight: percentage,
                ms,
                max_rss_kib: rss,
                requests,
                writes,
                fresh_discovery_cache: std::mem::take(&mut fresh_switch),
            });
        }
        if version > 1 {
            event["deployment"] =
                json!({"new_version": version, "current_percentage": 100, "is_healthy": true});
            let (ms, rss, requests, writes, _) =
                run_script(peers, &remove, &event, &remove_work).await?;
            run.steps.push(BaselineStep {
                function: "remove-old-version".into(),
                deployment: version,
                step: step + 1,
                weight: 100,
                ms,
                max_rss_kib: rss,
                requests,
                writes,
                fresh_discovery_cache: std::mem::take(&mut fresh_remove),
            });
        }
    }
    run.python = run_python(cfg, peers).await?;
    Ok(run)
}

async fn run_python(cfg: &RealConfig, peers: &Peers) -> Result<Vec<PythonRun>, RealError> {
    let mut deploy = demo::deploy_document(&demo::image(2));
    if let Some(m) = deploy.as_object_mut() {
        m.remove("config_file");
        m.remove("check_interval");
    }
    deploy["deployment"] = json!({"new_version": 2, "current_percentage": 10});
    let event_file = cfg.work.join("python-event.json");
    std::fs::write(&event_file, deploy.to_string()).map_err(io("writing the event"))?;
    let mut out = Vec::new();
    for function in ["check_version", "gather_health", "update_version"] {
        for _ in 0..cfg.python_processes {
            let mut cmd = Command::new("python3");
            cmd.arg(cfg.baseline_dir.join("harness.py"))
                .arg(function)
                .arg(&event_file)
                .arg(cfg.python_calls.to_string())
                .current_dir(&cfg.baseline_dir)
                .envs(peers.moto.env())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let function = function.to_owned();
            let run = tokio::task::spawn_blocking(move || python_process(cmd, &function))
                .await
                .map_err(|e| RealError::Flow(format!("the Python harness's thread: {e}")))??;
            out.push(run);
        }
    }
    Ok(out)
}

fn python_process(mut cmd: Command, function: &str) -> Result<PythonRun, RealError> {
    use std::io::BufRead as _;
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(io("starting python3"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| RealError::Flow("python3 has no stdout".into()))?;
    let mut cold_start_ms = None;
    let mut summary = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(io("reading python3's output"))?;
        if line == "first" {
            cold_start_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        } else if let Ok(v) = serde_json::from_str::<Value>(&line) {
            summary = Some(v);
        }
    }
    let output = child
        .wait_with_output()
        .map_err(io("waiting for python3"))?;
    let (Some(cold_start_ms), Some(summary)) = (cold_start_ms, summary) else {
        return Err(RealError::Command {
            command: format!("harness.py {function}"),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    };
    Ok(PythonRun {
        function: function.to_owned(),
        cold_start_ms,
        calls_ms: summary["calls_ms"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default(),
        import_ms: summary["import_ms"].as_f64().unwrap_or(0.0),
        vmhwm_kib: summary["vmhwm_kib"].as_u64(),
        result: summary["result"].clone(),
    })
}

fn version_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|e| format!("not available: {e}"))
}

/// Runs ours and the baseline on the same moto and simulator.
pub async fn run(cfg: &RealConfig) -> Result<RealRun, RealError> {
    std::fs::create_dir_all(&cfg.work).map_err(io("creating the work folder"))?;
    let peers = start_peers(&cfg.work).await?;
    let ours = run_ours(cfg, &peers).await?;
    let baseline = run_baseline(cfg, &peers).await?;
    let mut tools = BTreeMap::new();
    tools.insert("aws".into(), version_of("aws", &["--version"]));
    tools.insert(
        "kubectl".into(),
        version_of("kubectl", &["version", "--client"]),
    );
    tools.insert("python3".into(), version_of("python3", &["--version"]));
    tools.insert(
        "boto3".into(),
        version_of("python3", &["-c", "import boto3; print(boto3.__version__)"]),
    );
    tools.insert(
        "moto".into(),
        version_of("python3", &["-c", "import moto; print(moto.__version__)"]),
    );
    tools.insert("jq".into(), version_of("jq", &["--version"]));
    peers.server.shutdown().await;
    Ok(RealRun {
        ours,
        baseline,
        tools,
    })
}
