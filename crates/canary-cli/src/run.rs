//! `canary run`: one real deployment from a terminal. The shipped state machine
//! definition runs in the local executor with the real clock; the handlers run
//! in-process against a cluster (a kubeconfig, or EKS by `cluster_name`), CloudWatch (or
//! no metrics at all, said loudly) and a record store (S3, or memory for one run).
//!
//! Ctrl-C rolls back cleanly. The first one marks the run aborted: an abort request is
//! written to the store (as `canary abort` does), and from then on the invoker refuses
//! every task but Rollback, so the state machine's own Catch sends the deployment to
//! Rollback at the next task. When the executor is waiting (a Wait state or a retry
//! delay) it is stopped there, at a state boundary with no handler running, and the
//! rollback handler is called directly with the current document, retried as the
//! definition retries it. So traffic is never left split and the lock is released,
//! whatever the phase. Later Ctrl-Cs only say that the rollback is being finished.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use canary_core::clock::{Clock, SystemClock};
use canary_core::execution::{OutcomeStatus, RouteRef};
use canary_core::render::{self, RenderParams};
use canary_core::spec::TrafficProvider;
use canary_core::{DeploySpec, Deployment, Observation, errors, labels};
use canary_kube::{Cluster, RequestPolicy, router_for};
use canary_lambda::{ClusterConnector, EksConnector, FixedCluster, Services};
use canary_metrics::{HealthQuery, MetricsError, MetricsSource};
use canary_sfn::{Event, EventKind, Executor, Observer, Status, TaskError, TaskInvoker};
use canary_store::{Abort, DeploymentStore, ServiceRef};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use crate::local::{DEFINITION, Function, LocalInvoker};
use crate::progress::{Printer, ProgressDisplay, SharedTracker, mmss};

/// The error name of a task refused because the person pressed Ctrl-C.
pub const ABORTED: &str = errors::ABORTED;

/// Where health numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsChoice {
    /// CloudWatch `GetMetricData`, as the Lambda functions query it.
    CloudWatch,
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

/// Why `canary run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// deploy.json, the template or an argument is invalid; nothing was touched.
    #[error("{0}")]
    Input(String),
    /// The cluster, the store or the metrics could not be reached or used.
    #[error("{0}")]
    Setup(String),
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

/// Refuses every task but Rollback once the run is aborted; otherwise the handlers.
#[derive(Debug)]
struct AbortableInvoker {
    inner: LocalInvoker,
    aborted: Arc<AtomicBool>,
    by: String,
}

#[async_trait]
impl TaskInvoker for AbortableInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        if self.aborted.load(Ordering::SeqCst)
            && Function::from_resource(resource) != Some(Function::Rollback)
        {
            return Err(TaskError::new(
                ABORTED,
                format!("interrupted by {}", self.by),
            ));
        }
        self.inner.invoke(resource, input).await
    }
}

/// `--metrics none`: measures nothing, and says so in every verdict.
#[derive(Debug, Clone, Copy)]
pub struct DisabledMetrics;

#[async_trait]
impl MetricsSource for DisabledMetrics {
    async fn observe(&self, _q: &HealthQuery) -> Result<Observation, MetricsError> {
        Ok(Observation::default())
    }

    fn disabled(&self) -> Option<String> {
        Some("metrics disabled (--metrics none): nothing was measured, the check passes".into())
    }
}

/// The observer of a run: the progress display, plus a nudge to the driver when the
/// executor starts waiting after an abort (a safe place to stop it).
struct RunObserver {
    display: ProgressDisplay,
    aborted: Arc<AtomicBool>,
    waiting: Arc<Notify>,
}

impl Observer for RunObserver {
    fn on_event(&mut self, event: &Event) {
        self.display.on_event(event);
        if matches!(event.kind, EventKind::WaitStarted { .. })
            && self.aborted.load(Ordering::SeqCst)
        {
            self.waiting.notify_one();
        }
    }
}

/// `<user>@<host> (Ctrl-C)`.
pub fn interrupter() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host} (Ctrl-C)")
}

/// deploy.json with the template and image from the command line, validated.
pub fn load_document(opts: &RunOptions) -> Result<(Value, DeploySpec), RunError> {
    let path = &opts.deploy_json;
    let text = std::fs::read_to_string(path)
        .map_err(|e| RunError::Input(format!("{}: {e}", path.display())))?;
    let mut doc: Value = serde_json::from_str(&text)
        .map_err(|e| RunError::Input(format!("{}: not valid JSON: {e}", path.display())))?;
    let Some(map) = doc.as_object_mut() else {
        return Err(RunError::Input(format!(
            "{}: must be a JSON object",
            path.display()
        )));
    };
    if let Some(t) = &opts.template {
        let template = std::fs::read_to_string(t)
            .map_err(|e| RunError::Input(format!("{}: {e}", t.display())))?;
        map.insert(
            "config_file".into(),
            Value::from(base64::engine::general_purpose::STANDARD.encode(template)),
        );
    }
    if let Some(image) = &opts.image {
        map.insert("container_image".into(), Value::from(image.as_str()));
    }
    let spec = DeploySpec::parse(&doc, None).map_err(|e| RunError::Input(e.to_string()))?;
    Ok((doc, spec))
}

/// Runs one deployment to its end (or to a clean rollback on Ctrl-C).
pub async fn run(opts: RunOptions) -> Result<RunReport, RunError> {
    let (doc, spec) = load_document(&opts)?;
    let probe = render::render(
        &spec,
        &RenderParams {
            version: 2,
            stable_version: Some(1),
            canary_weight: 0,
        },
    )
    .map_err(|e| RunError::Input(e.to_string()))?;
    let policy = RequestPolicy::default();
    let needs_aws = opts.kubeconfig.is_none()
        || opts.bucket.is_some()
        || opts.metrics == MetricsChoice::CloudWatch;
    let sdk = if needs_aws {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
    };

    // The cluster.
    let (clusters, cluster): (Arc<dyn ClusterConnector>, Option<Cluster>) =
        match (&opts.kubeconfig, &sdk) {
            (Some(path), _) => {
                let c = Cluster::from_kubeconfig_file(path, opts.context.as_deref(), policy)
                    .await
                    .map_err(|e| RunError::Setup(e.to_string()))?;
                (Arc::new(FixedCluster(c.clone())), Some(c))
            }
            (None, Some(sdk)) => (Arc::new(EksConnector::new(sdk.clone(), policy)), None),
            (None, None) => return Err(RunError::Setup("no way to reach the cluster".into())),
        };

    // The store.
    let svc = ServiceRef::from_spec(&spec);
    let (store, store_text) = match (&opts.bucket, &sdk) {
        (Some(bucket), Some(sdk)) => (
            DeploymentStore::s3(sdk, bucket.clone()).with_prefix(&opts.prefix),
            format!("s3://{bucket}/{}/{svc}/", opts.prefix.trim_matches('/')),
        ),
        _ => {
            let store = DeploymentStore::memory();
            let connected = match &cluster {
                Some(c) => c.clone(),
                None => clusters
                    .connect(&spec.cluster_name, &spec.kubernetes_namespace)
                    .await
                    .map_err(|e| RunError::Setup(e.to_string()))?,
            };
            let seeded = seed_from_cluster(
                &store,
                &svc,
                &connected,
                &spec,
                &probe.route,
                probe.provider,
            )
            .await?;
            let from = match seeded {
                Some(v) => format!("stable v{v} read from the cluster's route"),
                None => "no route on the cluster: a first deployment".into(),
            };
            (
                store,
                format!(
                    "in memory, for this run only ({from}); use --bucket to keep records and the lock in S3"
                ),
            )
        }
    };

    // The metrics.
    let metrics: Arc<dyn MetricsSource> = match (opts.metrics, &sdk) {
        (MetricsChoice::CloudWatch, Some(sdk)) => Arc::new(
            canary_metrics::cloudwatch::CloudWatchMetrics::new(sdk)
                .map_err(|e| RunError::Setup(e.to_string()))?,
        ),
        _ => Arc::new(DisabledMetrics),
    };

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let services = Services {
        store: store.clone(),
        metrics,
        clusters,
        clock: clock.clone(),
    };
    let executor = Executor::from_json(DEFINITION)
        .map_err(|e| RunError::Setup(e.to_string()))?
        .with_name("canary-deployment");

    let tracker = SharedTracker::new();
    let display = ProgressDisplay::new(tracker.clone(), clock.clone());
    let printer = display.printer();
    printer.println(&format!(
        "canary run: {} ({}) in {} on {}, image {}",
        spec.microservice_name,
        probe.provider,
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

    let aborted = Arc::new(AtomicBool::new(false));
    let by = interrupter();
    let invoker = AbortableInvoker {
        inner: LocalInvoker {
            services: services.clone(),
        },
        aborted: aborted.clone(),
        by: by.clone(),
    };
    let waiting = Arc::new(Notify::new());
    let mut observer = RunObserver {
        display,
        aborted: aborted.clone(),
        waiting: waiting.clone(),
    };

    let (sigint_tx, mut sigint) = mpsc::unbounded_channel::<()>();
    let signals = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if sigint_tx.send(()).is_err() {
                break;
            }
        }
    });

    let started = Instant::now();
    let name = format!("{}-local-{}", spec.microservice_name, clock.now_secs());
    let mut execution =
        Box::pin(executor.run_named(&name, doc, &invoker, clock.as_ref(), &mut observer));
    let mut interrupts = 0u32;
    let finished = loop {
        tokio::select! {
            run = &mut execution => break Some(run),
            Some(()) = sigint.recv() => {
                interrupts += 1;
                if interrupts == 1 {
                    aborted.store(true, Ordering::SeqCst);
                    printer.println(&format!("Ctrl-C: rolling back ({by}). Traffic goes back to the stable version; the lock will be released."));
                    if tracker.lock().snapshot().rollback_document().is_some() {
                        let abort = Abort { by: by.clone(), reason: "interrupted from the terminal".into(), at: clock.now_secs() };
                        match tokio::time::timeout(Duration::from_secs(10), store.request_abort(&svc, &abort)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => printer.println(&format!("could not record the abort request ({e}); rolling back anyway")),
                            Err(_) => printer.println("recording the abort request timed out; rolling back anyway"),
                        }
                    }
                    if safe_to_stop(&tracker) {
                        break None;
                    }
                } else {
                    printer.println("Still rolling back: finishing the rollback so that no traffic is left on the canary and the lock is released. Please wait.");
                }
            }
            () = waiting.notified(), if aborted.load(Ordering::SeqCst) => {
                if safe_to_stop(&tracker) {
                    break None;
                }
            }
        }
    };
    drop(execution);

    let (outcome, error, reason, deployment, transitions) = match finished {
        Some(run) => {
            let deployment: Option<Deployment> = run
                .output
                .get("deployment")
                .and_then(|d| serde_json::from_value(d.clone()).ok());
            let interrupted = aborted.load(Ordering::SeqCst);
            match &run.status {
                Status::Succeeded => {
                    let mut reason = outcome_reason(&deployment);
                    if interrupted {
                        reason = format!(
                            "Ctrl-C came while the promotion was already being finished: {reason}"
                        );
                    }
                    (
                        RunOutcome::Promoted,
                        None,
                        reason,
                        deployment,
                        run.transitions,
                    )
                }
                Status::Failed { error, cause } => {
                    let outcome = match error.as_str() {
                        "RolledBack" if interrupted => RunOutcome::Interrupted,
                        "RolledBack" => RunOutcome::RolledBack,
                        // Refused before render-template ran: nothing was touched.
                        ABORTED if interrupted => RunOutcome::Interrupted,
                        _ => RunOutcome::Failed,
                    };
                    let reason = if cause.is_empty() {
                        outcome_reason(&deployment)
                    } else {
                        canary_core::errors::readable_cause(cause)
                    };
                    (
                        outcome,
                        Some(error.clone()),
                        reason,
                        deployment,
                        run.transitions,
                    )
                }
            }
        }
        None => {
            let snapshot = tracker.lock().snapshot().clone();
            let transitions = tracker.lock().transitions();
            match snapshot.rollback_document() {
                None => (
                    RunOutcome::Interrupted,
                    Some(ABORTED.into()),
                    "interrupted before the deployment began: nothing was applied".to_owned(),
                    None,
                    transitions,
                ),
                Some(doc) => {
                    let result = direct_rollback(&services, doc, &by, &printer, &mut sigint).await;
                    match result {
                        Ok(out) => {
                            let deployment: Option<Deployment> = out
                                .get("deployment")
                                .and_then(|d| serde_json::from_value(d.clone()).ok());
                            (
                                RunOutcome::Interrupted,
                                Some("RolledBack".into()),
                                outcome_reason(&deployment),
                                deployment,
                                transitions + 1,
                            )
                        }
                        Err(e) => (
                            RunOutcome::Failed,
                            Some("RollbackFailed".into()),
                            format!(
                                "the rollback did not finish: {e}. Traffic may still be split and the lock is held; \
                                 run `canary run` again after fixing the cause, or roll back by hand"
                            ),
                            snapshot.deployment,
                            transitions,
                        ),
                    }
                }
            }
        }
    };
    signals.abort();
    observer.display.finish();

    let lock_held = match tokio::time::timeout(Duration::from_secs(10), store.status(&svc)).await {
        Ok(Ok(status)) => Some(status.lock.is_some()),
        _ => None,
    };
    Ok(RunReport {
        outcome,
        error,
        reason,
        deployment,
        transitions,
        elapsed: started.elapsed(),
        api: cluster.map(|c| c.stats()),
        lock_held,
        store: store_text,
    })
}

/// Whether the executor can be dropped now: it is waiting (no handler running), the
/// deployment is not already in its rollback, and it has not ended.
fn safe_to_stop(tracker: &SharedTracker) -> bool {
    let t = tracker.lock();
    let s = t.snapshot();
    !s.finished && !s.in_task && s.waiting_until.is_some() && s.state != "Rollback"
}

/// Calls the rollback handler with `doc` plus the abort as `error`, retried as the
/// definition's Rollback state is (6 retries, 5 s doubling, at most 60 s), except when
/// another deployment owns the service.
async fn direct_rollback(
    services: &Services,
    mut doc: Value,
    by: &str,
    printer: &Printer,
    sigint: &mut mpsc::UnboundedReceiver<()>,
) -> Result<Value, String> {
    if let Some(map) = doc.as_object_mut() {
        map.insert(
            "error".into(),
            json!({ "Error": ABORTED, "Cause": format!("interrupted by {by}") }),
        );
    }
    let mut delay = Duration::from_secs(5);
    let mut attempt = 0;
    loop {
        attempt += 1;
        printer.println(&format!("Rollback (attempt {attempt})..."));
        let call = Function::Rollback.call(services, doc.clone());
        tokio::pin!(call);
        let result = loop {
            tokio::select! {
                r = &mut call => break r,
                Some(()) = sigint.recv() => printer.println("Still rolling back: finishing the rollback so that no traffic is left on the canary and the lock is released. Please wait."),
            }
        };
        match result {
            Ok(out) => return Ok(out),
            Err(e)
                if e.error_type == errors::SERVICE_LOCKED || e.error_type == errors::LOCK_LOST =>
            {
                return Err(format!("{}: {}", e.error_type, e.message));
            }
            Err(e) if attempt > 6 => return Err(format!("{}: {}", e.error_type, e.message)),
            Err(e) => {
                printer.println(&format!(
                    "rollback failed ({}: {}); retrying in {} s",
                    e.error_type,
                    e.message,
                    delay.as_secs()
                ));
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        () = &mut sleep => break,
                        Some(()) = sigint.recv() => printer.println("Still rolling back: please wait."),
                    }
                }
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
    }
}

fn outcome_reason(deployment: &Option<Deployment>) -> String {
    deployment
        .as_ref()
        .and_then(|d| d.outcome.as_ref())
        .map(|o| o.reason.clone())
        .unwrap_or_default()
}

/// With an in-memory store, the stable version is what the cluster's route sends all
/// traffic to: written into the store's state so the run deploys the next version as a
/// canary beside it. Returns the stable version found, if any. Traffic split between
/// versions means another deployment is unfinished: refuse.
async fn seed_from_cluster(
    store: &DeploymentStore,
    svc: &ServiceRef,
    cluster: &Cluster,
    spec: &DeploySpec,
    route: &RouteRef,
    provider: TrafficProvider,
) -> Result<Option<u32>, RunError> {
    let ns = &spec.kubernetes_namespace;
    let setup =
        |e: canary_kube::Error| RunError::Setup(format!("reading the route from the cluster: {e}"));
    if cluster
        .get(&route.api_version, &route.kind, ns, &route.name)
        .await
        .map_err(setup)?
        .is_none()
    {
        return Ok(None);
    }
    let backends = router_for(provider, cluster.clone(), ns)
        .weights(route)
        .await
        .map_err(setup)?;
    let serving: Vec<_> = backends.iter().filter(|b| b.weight > 0).collect();
    let [only] = serving.as_slice() else {
        let shown: Vec<String> = backends
            .iter()
            .map(|b| format!("{}={}", b.name, b.weight))
            .collect();
        return Err(RunError::Setup(format!(
            "{} {} splits traffic ({}): another deployment did not finish; roll it back first",
            route.kind,
            route.name,
            shown.join(", ")
        )));
    };
    let prefix = format!("{}-", spec.microservice_name);
    let Some(version) = only
        .name
        .strip_prefix(&prefix)
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return Err(RunError::Setup(format!(
            "{} {} sends all traffic to `{}`, which is not named <service>-<version>",
            route.kind, route.name, only.name
        )));
    };
    let deployment = cluster
        .get(
            "apps/v1",
            "Deployment",
            ns,
            &labels::versioned_name(&spec.microservice_name, version),
        )
        .await
        .map_err(setup)?;
    let image = deployment
        .as_ref()
        .and_then(|d| d.pointer("/spec/template/spec/containers/0/image"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    store
        .adopt_stable(svc, version, image.as_deref(), SystemClock.now_secs())
        .await
        .map_err(|e| RunError::Setup(e.to_string()))?;
    Ok(Some(version))
}

/// The summary printed at the end of a run.
pub fn summary_text(r: &RunReport) -> String {
    let headline = match r.outcome {
        RunOutcome::Promoted => "PROMOTED".to_owned(),
        RunOutcome::RolledBack => "ROLLED BACK".to_owned(),
        RunOutcome::Interrupted => "ROLLED BACK (interrupted with Ctrl-C)".to_owned(),
        RunOutcome::Failed => format!("FAILED ({})", r.error.as_deref().unwrap_or("unknown error")),
    };
    let mut out = format!("\nSummary: {headline}\n  reason:      {}\n", r.reason);
    if let Some(d) = &r.deployment {
        let stable = d
            .stable_version
            .map_or("none (first deployment)".to_owned(), |s| format!("v{s}"));
        let serving = match d.outcome.as_ref().map(|o| o.status) {
            Some(OutcomeStatus::Promoted) => format!("v{} serves all traffic", d.canary_version),
            Some(OutcomeStatus::RolledBack) => match d.stable_version {
                Some(s) => format!("v{s} serves all traffic"),
                None => "nothing deployed (the first deployment was removed)".to_owned(),
            },
            None => "unknown: check the route".to_owned(),
        };
        out.push_str(&format!(
            "  versions:    v{} over stable {stable}; now {serving}\n  progress:    reached {}% (step {}/{}), {} health checks\n",
            d.canary_version,
            d.max_weight,
            d.step,
            d.schedule.len(),
            d.checks
        ));
        if let Some(v) = &d.verdict {
            out.push_str(&format!("  last check:  {:?}: {}\n", v.status, v.reason));
        }
    }
    out.push_str(&format!(
        "  took:        {} real time, {} state transitions\n",
        mmss(i64::try_from(r.elapsed.as_millis()).unwrap_or(i64::MAX)),
        r.transitions
    ));
    if let Some(api) = &r.api {
        out.push_str(&format!(
            "  cluster API: {} requests ({} writes)\n",
            api.requests, api.writes
        ));
    }
    out.push_str(&format!(
        "  lock:        {}\n  records:     {}\n",
        match r.lock_held {
            Some(false) => "released",
            Some(true) => "STILL HELD",
            None => "unknown (the store did not answer)",
        },
        r.store
    ));
    out
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
pub async fn command(args: &RunArgs) -> Result<std::process::ExitCode, RunError> {
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
            MetricsChoice::CloudWatch
        },
    };
    let report = run(opts).await?;
    print!("{}", summary_text(&report));
    Ok(std::process::ExitCode::from(report.outcome.exit_code()))
}
