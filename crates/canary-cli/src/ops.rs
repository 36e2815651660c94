//! Operator commands on a service's deployment records (canary-store, in the shared
//! stack's S3 bucket) and on its health: `canary history`, `canary status`,
//! `canary unlock`, `canary abort` and `canary check-health`.
//!
//! # Naming the service
//!
//! Records are kept per cluster, namespace and microservice, so every records command
//! takes one of:
//! - `<service> --cluster C --namespace N` (the `microservice_name`),
//! - `<cluster>/<namespace>/<service>` as the one positional argument,
//! - `--deploy-json FILE`: the three names are read from that deploy.json
//!   (`cluster_name`, `kubernetes_namespace`, `microservice_name`; the image and the
//!   template need not be there yet).
//!
//! The bucket is `--bucket`, else `$CANARY_STATE_BUCKET`; the key prefix is `--prefix`,
//! else `$CANARY_STATE_PREFIX`, else `state/` (what the shared stack gives the Lambda
//! functions). AWS settings come from the standard chain (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, credentials), so the commands work against moto too.
//!
//! # Exit codes
//!
//! 0 done, 1 an AWS failure (or an unhealthy verdict), 2 bad input (and `abort` when no
//! deployment is running), 3 `check-health` held (too little traffic to judge and
//! `no_data` is `hold`: not unhealthy, not healthy yet).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use canary_core::{OutcomeStatus, Verdict, VerdictStatus};
use canary_metrics::HealthQuery;
use canary_metrics::cloudwatch::CloudWatchMetrics;
use canary_store::{Abort, DeploymentStore, Record, ServiceRef, StoreError};
use clap::ValueEnum;
use serde_json::{Value, json};

use crate::cli::Inputs;
use crate::commands;
use crate::error::CliError;

/// The default key prefix of the records (the shared stack's `CANARY_STATE_PREFIX`).
pub const DEFAULT_PREFIX: &str = "state/";
/// `check-health`'s exit code for a held verdict.
pub const EXIT_HOLD: u8 = 3;

/// How a records command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For a person.
    Text,
    /// For a script.
    Json,
}

/// Where the records are.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The state bucket (the shared stack's artifacts bucket).
    #[arg(long, env = "CANARY_STATE_BUCKET")]
    pub bucket: Option<String>,
    /// The key prefix of the records in the bucket.
    #[arg(long, env = "CANARY_STATE_PREFIX", default_value = DEFAULT_PREFIX)]
    pub prefix: String,
}

/// Which service, and where its records are.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// The microservice (`microservice_name`, with --cluster and --namespace), or
    /// `<cluster>/<namespace>/<service>`.
    #[arg(conflicts_with = "deploy_json")]
    pub service: Option<String>,
    /// The EKS cluster (`cluster_name`).
    #[arg(long, conflicts_with = "deploy_json")]
    pub cluster: Option<String>,
    /// The Kubernetes namespace (`kubernetes_namespace`).
    #[arg(long, conflicts_with = "deploy_json")]
    pub namespace: Option<String>,
    /// Read cluster, namespace and service from this deploy.json instead.
    #[arg(long, value_name = "FILE")]
    pub deploy_json: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `canary history`.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `canary status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `canary unlock`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Do not ask for confirmation (required when standard input is not a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Who breaks the lock, for the record (default `$USER@<hostname>`).
    #[arg(long)]
    pub by: Option<String>,
}

/// `canary abort`.
#[derive(Debug, Clone, clap::Args)]
pub struct AbortArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Why, for the record and the execution's failure cause.
    #[arg(long, default_value = "no reason given")]
    pub reason: String,
    /// Who asks (default `$USER@<hostname>`).
    #[arg(long)]
    pub by: Option<String>,
}

/// `canary check-health`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckHealthArgs {
    /// The deploy.json whose metric settings to use.
    pub deploy_json: PathBuf,
    #[command(flatten)]
    pub inputs: Inputs,
    /// The version to judge (only matters with `version_dimension`). Default: the
    /// running deployment's canary version, else the stable version, from the records
    /// when a bucket is known; else 1.
    #[arg(long)]
    pub version: Option<u32>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

impl ServiceArgs {
    /// The service these arguments name (no AWS call).
    pub fn service_ref(&self) -> Result<ServiceRef, CliError> {
        if let Some(path) = &self.deploy_json {
            let inputs = Inputs {
                template: None,
                image: None,
            };
            let spec = commands::load(path, &inputs, true)?;
            return Ok(ServiceRef::from_spec(&spec));
        }
        let Some(name) = self.service.as_deref() else {
            return Err(CliError::Usage(
                "name the service: `<service> --cluster C --namespace N`, `<cluster>/<namespace>/<service>`, or `--deploy-json FILE`".into(),
            ));
        };
        if name.contains('/') {
            if self.cluster.is_some() || self.namespace.is_some() {
                return Err(CliError::Usage(format!(
                    "service `{name}` already names its cluster and namespace: drop --cluster and --namespace"
                )));
            }
            return ServiceRef::parse(name).map_err(|e| CliError::Usage(e.to_string()));
        }
        let cluster = self.cluster.as_deref().ok_or_else(|| {
            CliError::Usage(format!(
                "--cluster is required for service `{name}` (or write `<cluster>/<namespace>/{name}`, or pass --deploy-json)"
            ))
        })?;
        let namespace = self.namespace.as_deref().ok_or_else(|| {
            CliError::Usage(format!(
                "--namespace is required for service `{name}` (or write `<cluster>/<namespace>/{name}`, or pass --deploy-json)"
            ))
        })?;
        for (what, value) in [
            ("--cluster", cluster),
            ("--namespace", namespace),
            ("service", name),
        ] {
            if value.trim().is_empty() || value == "." || value == ".." {
                return Err(CliError::Usage(format!(
                    "invalid {what} `{value}`: must be a name"
                )));
            }
            if value.contains('/') {
                return Err(CliError::Usage(format!(
                    "invalid {what} `{value}`: must not contain `/`"
                )));
            }
        }
        Ok(ServiceRef::new(cluster, namespace, name))
    }
}

impl StoreArgs {
    /// The bucket, or a usage error saying how to give it.
    fn bucket(&self) -> Result<&str, CliError> {
        match self.bucket.as_deref() {
            Some(b) if !b.trim().is_empty() => Ok(b),
            _ => Err(CliError::Usage(
                "no state bucket: pass --bucket or set CANARY_STATE_BUCKET".into(),
            )),
        }
    }

    async fn store(&self) -> Result<DeploymentStore, CliError> {
        let bucket = self.bucket()?.to_owned();
        let sdk = sdk_config().await;
        Ok(DeploymentStore::s3(&sdk, bucket).with_prefix(&self.prefix))
    }
}

/// The AWS configuration from the standard chain (`AWS_REGION`, `AWS_ENDPOINT_URL`,
/// credentials, profiles).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// A store failure as the command reports it: bad arguments exit 2, the rest 1.
fn store_error(e: StoreError) -> CliError {
    match e {
        StoreError::Invalid { .. } => CliError::Usage(e.to_string()),
        other => CliError::Aws(other.to_string()),
    }
}

/// `canary history`: every deployment, newest first.
pub async fn history(args: &HistoryArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let store = args.target.store.store().await?;
    let records = store.history(&svc).await.map_err(store_error)?;
    let state = store.state(&svc).await.map_err(store_error)?;
    let running = state.in_progress.as_ref().map(|p| p.version);
    let now = now_secs();
    match args.output {
        Output::Json => {
            let list: Vec<Value> = records
                .iter()
                .map(|r| record_json(r, running, now))
                .collect();
            println!(
                "{}",
                pretty(&json!({"service": svc.to_string(), "deployments": list}))
            );
        }
        Output::Text => print!("{}", history_text(&svc, &records, running, now)),
    }
    Ok(ExitCode::SUCCESS)
}

fn history_text(svc: &ServiceRef, records: &[Record], running: Option<u32>, now: i64) -> String {
    if records.is_empty() {
        return format!("{svc}: no deployments recorded\n");
    }
    let mut out = format!(
        "{svc}: {} deployment{}, newest first\n\n",
        records.len(),
        if records.len() == 1 { "" } else { "s" }
    );
    out.push_str(&format!(
        "  {:<8} {:<12} {:<20} {:<20} {:>10} {:>6}  {}\n",
        "VERSION", "OUTCOME", "STARTED (UTC)", "ENDED (UTC)", "DURATION", "MAX %", "IMAGE"
    ));
    for r in records {
        let ended = r.ended_at.map_or_else(|| "-".to_owned(), utc);
        out.push_str(&format!(
            "  {:<8} {:<12} {:<20} {:<20} {:>10} {:>5}%  {}\n",
            format!("v{}", r.version),
            outcome_label(r, running),
            utc(r.started_at),
            ended,
            duration(r.ended_at.unwrap_or(now).saturating_sub(r.started_at)),
            r.max_weight,
            r.image
        ));
        if let Some(o) = &r.outcome {
            out.push_str(&format!("           reason: {}\n", o.reason));
        }
        if let Some(v) = r.verdicts.last() {
            out.push_str(&format!(
                "           last verdict: {}\n",
                verdict_numbers(v)
            ));
        }
    }
    out
}

/// `promoted`, `rolled back`, `running` (the deployment the state names) or
/// `unfinished` (no outcome and not running: its execution died or its lock was broken).
fn outcome_label(r: &Record, running: Option<u32>) -> &'static str {
    match &r.outcome {
        Some(o) if o.status == OutcomeStatus::Promoted => "promoted",
        Some(_) => "rolled back",
        None if running == Some(r.version) => "running",
        None => "unfinished",
    }
}

fn record_json(r: &Record, running: Option<u32>, now: i64) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert(
            "status".into(),
            Value::from(outcome_label(r, running).replace(' ', "_")),
        );
        map.insert("started".into(), Value::from(rfc3339(r.started_at)));
        map.insert(
            "ended".into(),
            r.ended_at.map_or(Value::Null, |t| Value::from(rfc3339(t))),
        );
        map.insert(
            "duration_seconds".into(),
            Value::from(r.ended_at.unwrap_or(now).saturating_sub(r.started_at)),
        );
    }
    v
}

/// `canary status`: what runs now, the stable version, the lock and a pending abort.
pub async fn status(args: &StatusArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let store = args.target.store.store().await?;
    let status = store.status(&svc).await.map_err(store_error)?;
    let abort = store.abort_requested(&svc).await.map_err(store_error)?;
    let now = now_secs();
    match args.output {
        Output::Json => {
            let mut v = serde_json::to_value(&status).unwrap_or(Value::Null);
            if let Some(map) = v.as_object_mut() {
                map.insert(
                    "abort".into(),
                    serde_json::to_value(&abort).unwrap_or(Value::Null),
                );
            }
            println!("{}", pretty(&v));
        }
        Output::Text => {
            let s = &status.state;
            let mut out = format!("{svc}\n");
            match (s.stable_version, &s.stable_image) {
                (Some(v), Some(image)) => out.push_str(&format!("  stable:    v{v}  {image}\n")),
                (Some(v), None) => out.push_str(&format!("  stable:    v{v}\n")),
                _ => out.push_str("  stable:    none (never promoted)\n"),
            }
            match (&s.in_progress, &status.in_progress) {
                (Some(p), Some(r)) => {
                    out.push_str(&format!(
                        "  running:   v{}  {}  at {}% (highest {}%), started {} UTC ({} ago), last update {} UTC\n",
                        r.version,
                        r.image,
                        r.weight,
                        r.max_weight,
                        utc(r.started_at),
                        duration(now.saturating_sub(r.started_at)),
                        utc(r.updated_at),
                    ));
                    out.push_str(&format!("             execution {}\n", p.execution));
                    match r.verdicts.last() {
                        Some(v) => out.push_str(&format!(
                            "             last verdict: {}\n             {}\n",
                            verdict_numbers(v),
                            v.reason
                        )),
                        None => out.push_str("             no health check yet\n"),
                    }
                }
                (Some(p), None) => out.push_str(&format!(
                    "  running:   v{}  {}, started {} UTC by execution {} (no record yet)\n",
                    p.version,
                    p.image,
                    utc(p.started_at),
                    p.execution
                )),
                (None, _) => out.push_str("  running:   no deployment\n"),
            }
            match &status.lock {
                Some(l) => out.push_str(&format!(
                    "  lock:      held by {} since {} UTC ({})\n",
                    l.execution,
                    utc(l.since),
                    duration(now.saturating_sub(l.since))
                )),
                None => out.push_str("  lock:      free\n"),
            }
            if let Some(a) = &abort {
                out.push_str(&format!(
                    "  abort:     requested by {} at {} UTC: {}\n",
                    a.by,
                    utc(a.at),
                    a.reason
                ));
            }
            out.push_str(&format!("  versions:  {} handed out\n", s.version_counter));
            print!("{out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `canary unlock`: breaks the lock on purpose.
pub async fn unlock(args: &UnlockArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let who = who(args.by.as_deref())?;
    let store = args.target.store.store().await?;
    let Some(lock) = store.lock(&svc).await.map_err(store_error)? else {
        println!("{svc}: the lock is not held; nothing to unlock");
        return Ok(ExitCode::SUCCESS);
    };
    let now = now_secs();
    println!(
        "{svc}: locked by execution {} since {} UTC ({} ago)",
        lock.execution,
        utc(lock.since),
        duration(now.saturating_sub(lock.since))
    );
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage(
                "refusing to break the lock without confirmation: pass --yes".into(),
            ));
        }
        print!(
            "Break it? Only do this when that execution has ended; a running one would lose its lock and fail with LockLost. [y/N] "
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| CliError::Usage(format!("cannot read the answer: {e}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            println!("left as it is");
            return Ok(ExitCode::SUCCESS);
        }
    }
    match store
        .break_lock(&svc, &who, now_secs())
        .await
        .map_err(store_error)?
    {
        Some(held) => println!(
            "{svc}: lock broken by {who} (it was held by execution {} since {} UTC); the next deployment can take it",
            held.execution,
            utc(held.since)
        ),
        None => println!("{svc}: the lock was released meanwhile; nothing to unlock"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `canary abort`: asks the running deployment to roll back at its next task (readiness
/// probe, weight shift or health check; every task after render-template honours it).
pub async fn abort(args: &AbortArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let by = who(args.by.as_deref())?;
    if args.reason.trim().is_empty() {
        return Err(CliError::Usage("--reason must not be empty".into()));
    }
    let store = args.target.store.store().await?;
    let status = store.status(&svc).await.map_err(store_error)?;
    let Some(lock) = &status.lock else {
        eprintln!("{svc}: no deployment is running (the lock is not held); nothing to abort");
        return Ok(ExitCode::from(2));
    };
    let request = Abort {
        by: by.clone(),
        reason: args.reason.clone(),
        at: now_secs(),
    };
    store
        .request_abort(&svc, &request)
        .await
        .map_err(store_error)?;
    let what = match &status.in_progress {
        Some(r) => format!("version {} (at {}% of the traffic)", r.version, r.weight),
        None => "the deployment".to_owned(),
    };
    println!("{svc}: abort requested by {by}");
    println!(
        "  execution {} will roll {what} back at its next step (readiness probe, shift or health check):",
        lock.execution
    );
    println!("  all traffic to the stable version, the canary removed, the lock released;");
    println!(
        "  it then ends failed (RolledBack) with a reason that says \"aborted by {by}: {}\".",
        args.reason
    );
    if lock.execution.starts_with("arn:") {
        println!("  follow it with: canary watch {}", lock.execution);
    }
    Ok(ExitCode::SUCCESS)
}

/// `canary check-health`: one health check now.
pub async fn check_health(args: &CheckHealthArgs) -> Result<ExitCode, CliError> {
    let spec = commands::load(&args.deploy_json, &args.inputs, true)?;
    if args.version == Some(0) {
        return Err(CliError::Usage(
            "invalid --version `0`: versions start at 1".into(),
        ));
    }
    let svc = ServiceRef::from_spec(&spec);
    let (version, from) = match (args.version, args.store.bucket.is_some()) {
        (Some(v), _) => (v, "--version"),
        (None, true) => {
            let state = args
                .store
                .store()
                .await?
                .state(&svc)
                .await
                .map_err(store_error)?;
            match (&state.in_progress, state.stable_version) {
                (Some(p), _) => (p.version, "the running deployment"),
                (None, Some(v)) => (v, "the stable version"),
                (None, None) => (1, "no version recorded"),
            }
        }
        (None, false) => (1, "the default"),
    };
    let sdk = sdk_config().await;
    let metrics = CloudWatchMetrics::new(&sdk).map_err(|e| CliError::Aws(e.to_string()))?;
    let now = now_secs();
    let query = HealthQuery::for_check(&spec, version, now);
    let verdict = canary_metrics::check(&metrics, &spec, version, now)
        .await
        .map_err(|e| CliError::Aws(e.to_string()))?;
    match args.output {
        Output::Json => {
            let v = json!({
                "service": svc.to_string(),
                "version": version,
                "namespace": query.health.metric_namespace,
                "error_metric": query.health.error_metric,
                "success_metric": query.need_requests.then_some(&query.health.success_metric),
                "dimensions": query.dimensions().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                "start": rfc3339(query.start_secs),
                "end": rfc3339(query.end_secs),
                "verdict": verdict,
            });
            println!("{}", pretty(&v));
        }
        Output::Text => print!("{}", verdict_text(&svc, version, from, &query, &verdict)),
    }
    Ok(match verdict.status {
        VerdictStatus::Healthy => ExitCode::SUCCESS,
        VerdictStatus::Unhealthy => ExitCode::from(1),
        VerdictStatus::Hold => ExitCode::from(EXIT_HOLD),
    })
}

fn verdict_text(
    svc: &ServiceRef,
    version: u32,
    from: &str,
    q: &HealthQuery,
    v: &Verdict,
) -> String {
    let status = match v.status {
        VerdictStatus::Healthy => "healthy",
        VerdictStatus::Unhealthy => "unhealthy",
        VerdictStatus::Hold => "hold (too little traffic to judge yet)",
    };
    let scope = match &q.health.version_dimension {
        Some(dim) => format!(
            "version {version} only ({dim}={}; version from {from})",
            q.version_value()
        ),
        None => "the whole service (no version_dimension)".to_owned(),
    };
    let dims = q
        .dimensions()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format!("{status}: {svc}, {scope}\n");
    out.push_str(&format!(
        "  metrics     {} in {}{}{}\n",
        q.health.error_metric,
        q.health.metric_namespace,
        if q.need_requests {
            format!(" (and {})", q.health.success_metric)
        } else {
            String::new()
        },
        if dims.is_empty() {
            String::new()
        } else {
            format!(" where {dims}")
        }
    ));
    out.push_str(&format!("  errors      {}\n", num(v.errors)));
    out.push_str(&format!(
        "  requests    {}\n",
        v.requests
            .map_or_else(|| "not counted (no rate or minimum set)".to_owned(), num)
    ));
    out.push_str(&format!(
        "  error rate  {}\n",
        v.error_rate
            .map_or_else(|| "-".to_owned(), |r| format!("{}%", num(r)))
    ));
    out.push_str(&format!(
        "  window      {} s, {} to {} UTC\n",
        v.window_seconds,
        utc(q.start_secs),
        utc(q.end_secs)
    ));
    out.push_str(&format!("  datapoints  {}\n", v.datapoints));
    out.push_str(&format!("  reason      {}\n", v.reason));
    out
}

/// `healthy: 0 errors, 120 requests, error rate 0%, window 600 s, 3 datapoints`.
pub fn verdict_numbers(v: &Verdict) -> String {
    let status = match v.status {
        VerdictStatus::Healthy => "healthy",
        VerdictStatus::Unhealthy => "unhealthy",
        VerdictStatus::Hold => "hold",
    };
    let mut parts = vec![format!("{} errors", num(v.errors))];
    if let Some(r) = v.requests {
        parts.push(format!("{} requests", num(r)));
    }
    if let Some(r) = v.error_rate {
        parts.push(format!("error rate {}%", num(r)));
    }
    parts.push(format!("window {} s", v.window_seconds));
    parts.push(format!("{} datapoints", v.datapoints));
    format!("{status}: {}", parts.join(", "))
}

/// `--by`, else `$USER@<hostname>`.
fn who(by: Option<&str>) -> Result<String, CliError> {
    if let Some(by) = by {
        if by.trim().is_empty() {
            return Err(CliError::Usage("--by must not be empty".into()));
        }
        return Ok(by.to_owned());
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    Ok(format!("{user}@{}", hostname()))
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Now, Unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `2026-01-01 00:00:00` (UTC).
pub fn utc(secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}

/// `2026-01-01T00:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// `1h 2m 3s`, `4m 5s`, `6s`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// A count or a rate without a trailing `.0`, at most two decimals.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(service: Option<&str>, cluster: Option<&str>, namespace: Option<&str>) -> ServiceArgs {
        ServiceArgs {
            service: service.map(str::to_owned),
            cluster: cluster.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
            deploy_json: None,
            store: StoreArgs {
                bucket: None,
                prefix: DEFAULT_PREFIX.into(),
            },
        }
    }

    #[test]
    fn a_service_is_named_by_flags_or_by_one_path() {
        let a = args(Some("web"), Some("c1"), Some("shop"))
            .service_ref()
            .map_err(|e| e.to_string());
        assert_eq!(a, Ok(ServiceRef::new("c1", "shop", "web")));
        let b = args(Some("c1/shop/web"), None, None)
            .service_ref()
            .map_err(|e| e.to_string());
        assert_eq!(b, Ok(ServiceRef::new("c1", "shop", "web")));
    }

    #[test]
    fn a_bare_service_without_its_cluster_is_refused_naming_the_flag() {
        let err = args(Some("web"), None, Some("shop"))
            .service_ref()
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(matches!(&err, Err(m) if m.contains("--cluster")), "{err:?}");
        let err = args(Some("c1/shop/web"), Some("c1"), None)
            .service_ref()
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            matches!(&err, Err(m) if m.contains("drop --cluster")),
            "{err:?}"
        );
    }

    #[test]
    fn durations_and_times_read_well() {
        assert_eq!(duration(3), "3s");
        assert_eq!(duration(125), "2m 5s");
        assert_eq!(duration(3725), "1h 2m 5s");
        assert_eq!(utc(1_767_225_600), "2026-01-01 00:00:00");
        assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
    }
}
