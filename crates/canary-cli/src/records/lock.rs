//! The commands on a service's lock: `canary unlock` breaks a stale lock on purpose;
//! `canary abort` asks the deployment holding it to roll back at its next step.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use canary_store::{Abort, DeploymentStore, ServiceRef};

use super::{ServiceArgs, who};
use crate::error::CliError;
use crate::format::{duration, now_secs, utc};

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

/// `canary unlock`: breaks the lock on purpose.
pub async fn unlock(args: &UnlockArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let who = who(args.by.as_deref())?;
    let store = args.target.store.store().await?;
    let Some(lock) = store.lock(&svc).await? else {
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
    match store.break_lock(&svc, &who, now_secs()).await? {
        Some(held) => println!(
            "{svc}: lock broken by {who} (it was held by execution {} since {} UTC); the next deployment can take it",
            held.execution,
            utc(held.since)
        ),
        None => println!("{svc}: the lock was released meanwhile; nothing to unlock"),
    }
    Ok(ExitCode::SUCCESS)
}

/// What an abort request reached: the execution that will roll back, and what it rolls
/// back ("version 3 (at 20% of the traffic)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortRequested {
    pub execution: String,
    pub what: String,
}

/// Asks the running deployment of `svc` to roll back at its next step (what `canary
/// abort` and the dashboard's Abort button do). A service with no deployment running
/// (the lock not held), or an empty reason, is a usage error.
pub async fn request_abort(
    store: &DeploymentStore,
    svc: &ServiceRef,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<AbortRequested, CliError> {
    if reason.trim().is_empty() {
        return Err(CliError::Usage(
            "reason must not be empty: say why the deployment is aborted".into(),
        ));
    }
    let status = store.status(svc).await?;
    let Some(lock) = &status.lock else {
        return Err(CliError::Usage(format!(
            "{svc}: no deployment is running (the lock is not held); nothing to abort"
        )));
    };
    let request = Abort {
        by: by.to_owned(),
        reason: reason.to_owned(),
        at: now,
    };
    store.request_abort(svc, &request).await?;
    let what = match &status.in_progress {
        Some(r) => format!("version {} (at {}% of the traffic)", r.version, r.weight),
        None => "the deployment".to_owned(),
    };
    Ok(AbortRequested {
        execution: lock.execution.clone(),
        what,
    })
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
    let requested = match request_abort(&store, &svc, &by, &args.reason, now_secs()).await {
        Ok(r) => r,
        Err(CliError::Usage(why)) => {
            eprintln!("{why}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e),
    };
    let AbortRequested { execution, what } = requested;
    println!("{svc}: abort requested by {by}");
    println!(
        "  execution {execution} will roll {what} back at its next step (readiness probe, shift or health check):"
    );
    println!("  all traffic to the stable version, the canary removed, the lock released;");
    println!(
        "  it then ends failed (RolledBack) with a reason that says \"aborted by {by}: {}\".",
        args.reason
    );
    if execution.starts_with("arn:") {
        println!("  follow it with: canary watch {execution}");
    }
    Ok(ExitCode::SUCCESS)
}
