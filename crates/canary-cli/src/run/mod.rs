//! `canary run`: one real deployment from a terminal. The shipped state machine
//! definition runs in the local executor with the real clock; the handlers run
//! in-process against a cluster (a kubeconfig, or EKS by `cluster_name`), CloudWatch (or
//! no metrics at all, said loudly) and a record store (S3, or memory for one run).
//!
//! The run holds the service's lock with a lease of [`LEASE_SECS`], renewed every third
//! of it while the run lasts: a terminal that is killed (or loses its network) leaves a
//! lock that runs out a minute later, and the next deployment (or `canary recover`)
//! then restores the service.
//!
//! Ctrl-C rolls back cleanly. The first one marks the run aborted: an abort request is
//! written to the store (as `canary abort` does), and from then on the invoker refuses
//! every task but Rollback, so the state machine's own Catch sends the deployment to
//! Rollback at the next task. When the executor is waiting (a Wait state or a retry
//! delay) it is stopped there, at a state boundary with no handler running, and the
//! rollback handler is called directly with the current document, retried as the
//! definition retries it. So traffic is never left split and the lock is released,
//! whatever the phase. Later Ctrl-Cs only say that the rollback is being finished.
//!
//! On a terminal, a typed line acts on the deployment as the commands do ([`keys`]):
//! `approve [reason]` passes the gate it waits at, `promote [--full] [reason]` skips the
//! rest of the step (or every step).
//!
//! The steps, one file each: [`setup`] connects to the cluster, the record store and
//! the metrics; [`execute`] runs the state machine with its progress shown and handles
//! Ctrl-C (and, [`keys`], the lines typed on the terminal); [`summary`] says how it
//! ended.

mod execute;
mod keys;
mod setup;
mod summary;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_core::clock::{Clock, SystemClock};
use canary_core::render::{self, RenderParams};
use canary_core::{Deployment, errors};
use canary_lambda::Services;
use canary_sfn::Executor;

use crate::deploy_json::{self, Inputs};
use crate::error::CliError;
use crate::local::{DEFINITION, MACHINE_NAME};
use crate::progress::{Printer, ProgressDisplay, SharedTracker};

pub use execute::interrupter;
pub use setup::DisabledMetrics;
pub use summary::summary_text;

/// The lease (seconds) a run holds the service's lock with: renewed every third of it
/// while the run lasts, so the lock of a killed terminal is free to be recovered a
/// minute later (the next deployment, or `canary recover`).
pub const LEASE_SECS: u64 = 60;

/// The error name of a task refused because the person pressed Ctrl-C.
pub const ABORTED: &str = errors::ABORTED;

/// Where health numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsChoice {
    /// The source deploy.json's `metrics` section names (CloudWatch without one), as
    /// the Lambda functions query it.
    DeployJson,
    /// Nothing: every check passes with the reason "metrics disabled".
    None,
}

/// What `canary run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The deploy.json.
    pub deploy_json: PathBuf,
    /// The template as a plain file (instead of `config_file`).
    pub template: Option<PathBuf>,
    /// The image (instead of `container_image`).
    pub image: Option<String>,
    /// A kubeconfig; without it, the EKS cluster `cluster_name` is reached with the
    /// AWS credentials of the environment.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig's context (default: its current context).
    pub context: Option<String>,
    /// The S3 bucket for records and the lock; without it, an in-memory store.
    pub bucket: Option<String>,
    /// The key prefix in the bucket (the Lambda functions' default is `state`).
    pub prefix: String,
    /// Where health numbers come from.
    pub metrics: MetricsChoice,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The new version serves all traffic; the old one is removed.
    Promoted,
    /// Rolled back by the state machine (a failed check, a task error).
    RolledBack,
    /// Rolled back because the person pressed Ctrl-C.
    Interrupted,
    /// Ended otherwise (invalid input, another deployment owns the service, the
    /// rollback failed...): see the report's error and reason.
    Failed,
}

impl RunOutcome {
    /// 0 promoted, 1 rolled back or failed, 130 (as for SIGINT) interrupted and rolled
    /// back.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Promoted => 0,
            Self::RolledBack | Self::Failed => 1,
            Self::Interrupted => 130,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// How it ended.
    pub outcome: RunOutcome,
    /// The execution's error name when it failed (`RolledBack`, `ServiceLocked`, ...).
    pub error: Option<String>,
    /// Why, in one sentence.
    pub reason: String,
    /// The deployment as it ended (`None` when render-template never ran).
    pub deployment: Option<Deployment>,
    /// State transitions.
    pub transitions: usize,
    /// Real time taken.
    pub elapsed: Duration,
    /// API requests sent to the cluster (when the cluster handle is known).
    pub api: Option<canary_kube::StatsSnapshot>,
    /// Whether the service's lock is held after the run (`None`: could not tell).
    pub lock_held: Option<bool>,
    /// Where the records went.
    pub store: String,
}

/// Runs one deployment to its end (or to a clean rollback on Ctrl-C).
pub async fn run(opts: RunOptions) -> Result<RunReport, CliError> {
    let inputs = Inputs {
        template: opts.template.clone(),
        image: opts.image.clone(),
    };
    let (doc, spec) = deploy_json::pipeline_document(&opts.deploy_json, &inputs)?;
    let probe = render::render(
        &spec,
        &RenderParams {
            version: 2,
            stable_version: Some(1),
            canary_weight: 0,
        },
    )?;
    let connected = setup::connect(&opts, &spec, &probe).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let services = Services {
        store: connected.store.clone(),
        metrics: connected.metrics.clone(),
        clusters: connected.clusters.clone(),
        clock: clock.clone(),
        holders: connected.holders.clone(),
        notifier: canary_lambda::notify::terminal_notifier().await,
    };
    let executor = Executor::from_json(DEFINITION)?.with_name(MACHINE_NAME);

    let tracker = SharedTracker::new();
    let display = ProgressDisplay::new(tracker.clone(), clock.clone());
    announce(
        &display.printer(),
        &opts,
        &spec,
        probe.provider,
        &connected.store_text,
    );

    let started = Instant::now();
    let name = format!("{}-local-{}", spec.microservice_name, clock.now_secs());
    let ended = execute::execute(
        &executor,
        &name,
        doc,
        &services,
        &connected.svc,
        &tracker,
        display,
    )
    .await;

    let store = &connected.store;
    let lock_held =
        match tokio::time::timeout(Duration::from_secs(10), store.status(&connected.svc)).await {
            Ok(Ok(status)) => Some(status.lock.is_some()),
            _ => None,
        };
    Ok(RunReport {
        outcome: ended.outcome,
        error: ended.error,
        reason: ended.reason,
        deployment: ended.deployment,
        transitions: ended.transitions,
        elapsed: started.elapsed(),
        api: connected.cluster.map(|c| c.stats()),
        lock_held,
        store: connected.store_text,
    })
}

/// What the run is about to do, before it starts: the service, the cluster, where the
/// records go, a loud warning when nothing is measured, and how to stop it.
fn announce(
    printer: &Printer,
    opts: &RunOptions,
    spec: &canary_core::DeploySpec,
    provider: canary_core::provider::TrafficProvider,
    store_text: &str,
) {
    printer.println(&format!(
        "canary run: {} ({}) in {} on {}, image {}",
        spec.microservice_name,
        provider,
        spec.kubernetes_namespace,
        match &opts.kubeconfig {
            Some(p) => format!("the cluster of {}", p.display()),
            None => format!("EKS cluster {}", spec.cluster_name),
        },
        spec.container_image
    ));
    printer.println(&format!("records: {store_text}"));
    if opts.metrics == MetricsChoice::None {
        printer.println(
            "WARNING: --metrics none: health checks are DISABLED. Every check passes with the reason \
             \"metrics disabled\"; a bad canary will NOT be rolled back automatically.",
        );
    }
    printer.println("Press Ctrl-C to roll back.");
}

/// `canary run`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The deploy.json.
    pub deploy_json: PathBuf,
    /// The Kubernetes template as a plain file, instead of `config_file`.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// The image, instead of `container_image`.
    #[arg(long, value_name = "URI")]
    pub image: Option<String>,
    /// Reach the cluster through this kubeconfig (default: EKS, by deploy.json's
    /// `cluster_name`, with the AWS credentials of the environment).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
    /// Keep the records and the lock in this S3 bucket (the pipeline's state bucket).
    /// Default: in memory for this run only, starting from the version the cluster's
    /// route serves.
    #[arg(long, value_name = "NAME")]
    pub bucket: Option<String>,
    /// The key prefix in the bucket.
    #[arg(long, default_value = canary_lambda::runtime::DEFAULT_STATE_PREFIX, requires = "bucket")]
    pub prefix: String,
    /// Where health numbers come from: cloudwatch, or none (every check passes: for a
    /// cluster without metrics; said loudly).
    #[arg(long, value_name = "SOURCE", default_value = "cloudwatch", value_parser = ["cloudwatch", "none"])]
    pub metrics: String,
}

/// Runs `canary run` and prints the summary; the exit code says how it ended (see
/// [`RunOutcome::exit_code`]).
pub async fn command(args: &RunArgs) -> Result<std::process::ExitCode, CliError> {
    let opts = RunOptions {
        deploy_json: args.deploy_json.clone(),
        template: args.template.clone(),
        image: args.image.clone(),
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        bucket: args.bucket.clone(),
        prefix: args.prefix.clone(),
        metrics: if args.metrics == "none" {
            MetricsChoice::None
        } else {
            MetricsChoice::DeployJson
        },
    };
    let report = run(opts).await?;
    print!("{}", summary_text(&report));
    Ok(std::process::ExitCode::from(report.outcome.exit_code()))
}
