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
use std::time::Duration;

use canary_cli::harness::fixtures::{self, SERVICE};
use canary_core::clock::SystemClock;
use canary_sim::{SimCluster, SimConfig, SimServer, kubeconfig_yaml};
use canary_testkit::MotoServer;
use serde::Serialize;
use serde_json::Value;

use crate::lambda_api::LambdaApiError;

mod baseline;
mod ours;

use baseline::{run_baseline, version_of};
use ours::run_ours;

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
