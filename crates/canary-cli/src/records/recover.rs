//! `canary recover`: restores a service that a deployment left behind when it ended
//! without finishing (StopExecution, an execution timeout, a killed `canary run`, or
//! `canary unlock` under a running one): all traffic back on the recorded stable
//! version, the orphaned version's objects removed (a stopped first deployment removed
//! entirely), its record "recovered from <execution>: stopped at N%", the lock released.
//! The work is `canary_lambda::recover`, the same the state machine and the shared
//! stack's EventBridge rule run.
//!
//! It refuses (exit 1) while the lock's holder may still run: a lease that has not run
//! out, or a Step Functions execution that is RUNNING (asked with DescribeExecution; the
//! lock names the execution's ARN). A holder nobody can answer for (no lease, not a Step
//! Functions execution, or DescribeExecution refused) needs `--force`, which takes the
//! lock anyway, as `canary unlock` does: an execution that still runs then fails with
//! LockLost at its next task, having written nothing more.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use canary_core::clock::SystemClock;
use canary_core::decide::HolderState;
use canary_kube::{Cluster, RequestPolicy};
use canary_lambda::holders::holder_state;
use canary_lambda::{
    ClusterConnector, EksConnector, FixedCluster, Holders, RecoverRequest, Recovery, Services,
};

use super::{ServiceArgs, who};
use crate::aws::sdk_config;
use crate::error::CliError;
use crate::format::{duration, now_secs, utc};
use crate::run::{DisabledMetrics, LEASE_SECS};

/// `canary recover`.
#[derive(Debug, Clone, clap::Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Reach the cluster through this kubeconfig (default: EKS, by the service's
    /// cluster name, with the AWS credentials of the environment).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME", requires = "kubeconfig")]
    pub context: Option<String>,
    /// Take the lock even when nobody can tell whether its holder has ended (or says it
    /// still runs): that execution, if it runs, then fails with LockLost.
    #[arg(long)]
    pub force: bool,
    /// Who recovers, for the lock and the logs (default `$USER@<hostname>`).
    #[arg(long)]
    pub by: Option<String>,
}

/// `canary recover`: restores the service now, or says why not.
pub async fn recover(args: &RecoverArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let who = who(args.by.as_deref())?;
    let store = args.target.store.store().await?;
    let sdk = sdk_config().await;
    let clusters: Arc<dyn ClusterConnector> = match &args.kubeconfig {
        Some(path) => Arc::new(FixedCluster(
            Cluster::from_kubeconfig_file(path, args.context.as_deref(), RequestPolicy::default())
                .await?,
        )),
        None => Arc::new(EksConnector::new(sdk.clone(), RequestPolicy::default())),
    };
    let services = Services {
        store: store.clone(),
        metrics: Arc::new(DisabledMetrics),
        clusters,
        clock: Arc::new(SystemClock),
        holders: Holders::step_functions(&sdk).with_lease(LEASE_SECS),
        notifier: canary_lambda::notify::terminal_notifier().await,
    };

    let now = now_secs();
    if let Some(lock) = store.lock(&svc).await? {
        println!(
            "{svc}: locked by execution {} since {} UTC ({} ago)",
            lock.execution,
            utc(lock.since),
            duration(now.saturating_sub(lock.since))
        );
        match holder_state(&services, &lock).await {
            HolderState::Ended { how } => println!("  it has ended: {how}"),
            HolderState::Running { why } if args.force => eprintln!(
                "WARNING: --force: taking the lock although {why}. If that execution still runs, it fails with LockLost at its next task, having written nothing more."
            ),
            HolderState::Running { why } => {
                eprintln!(
                    "{svc}: not recovered: {why}. Stop it first (`aws stepfunctions stop-execution --execution-arn <arn>`, or Ctrl-C in its terminal), or pass --force once you know it has ended."
                );
                return Ok(ExitCode::from(1));
            }
        }
    }
    let request = RecoverRequest {
        svc: svc.clone(),
        by: format!("canary recover by {who}"),
        ended: None,
        force: args.force,
        current_kinds: Vec::new(),
    };
    let recovery = canary_lambda::recover(&services, &request).await?;
    println!("{}", recovery.describe(&svc));
    if let Recovery::Recovered { version, .. } = &recovery {
        println!("  `canary history {svc}` shows version {version}'s record");
    }
    Ok(ExitCode::SUCCESS)
}
