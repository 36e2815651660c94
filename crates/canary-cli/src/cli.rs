//! The command line's arguments (clap types); each command's own arguments live in
//! the module that runs it.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::deploy_json::{Format, Inputs};
use crate::{
    cluster_sim, dashboard, demo, health, lambda_proxy, records, run, stepfunctions, whatif,
};

/// Canary deployments for microservices on Amazon EKS.
#[derive(Debug, Parser)]
#[command(name = "canary", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start here: the real state machine and handlers against a simulated cluster with
    /// simulated traffic, on a virtual clock (a first deployment, a healthy canary
    /// promoted, a faulty one rolled back, one that never becomes ready), in seconds.
    Demo(demo::DemoArgs),
    /// Run one real deployment from this terminal (the state machine locally, the
    /// handlers in-process) against a cluster and CloudWatch; Ctrl-C rolls back.
    Run(run::RunArgs),
    /// Serve the simulated cluster on loopback until Ctrl-C and write its kubeconfig
    /// (for kubectl and `canary run --kubeconfig`).
    ClusterSim(cluster_sim::ClusterSimArgs),
    /// Check a deploy.json (and its template) without touching anything.
    Validate {
        /// The deploy.json to check.
        deploy_json: PathBuf,
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Print the objects the cluster will receive for one version at one weight.
    Render {
        deploy_json: PathBuf,
        #[command(flatten)]
        inputs: Inputs,
        /// The version to render (the canary).
        #[arg(long, default_value_t = 1)]
        version: u32,
        /// The version serving traffic now; without it, this is a first deployment.
        #[arg(long)]
        stable_version: Option<u32>,
        /// The canary's share of traffic in percent (default: 0 with a stable version, else 100).
        #[arg(long)]
        weight: Option<u8>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
        output: Format,
    },
    /// Show the steps, their times, and how long a failure can go unnoticed.
    Plan {
        deploy_json: PathBuf,
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Write the deploy.json a pipeline's build step produces: adds `container_image`
    /// and `config_file` (the template, base64) to the spec directory's deploy.json.
    /// Refuses (exit 2) a deploy.json for another service, namespace or cluster than the
    /// build owns (--service/--namespace/--cluster, or CANARY_* in the pipeline's build).
    Prepare {
        /// The directory holding deploy.json and kubernetes_template.yml.
        #[arg(long, default_value = "specfiles")]
        spec_dir: PathBuf,
        /// The image just pushed (for example the ECR URI with its tag).
        #[arg(long)]
        image: String,
        /// Where to write the result (default: standard output).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        owner: crate::deploy_json::Owner,
    },
    /// (testing) Answer Lambda Invoke calls with the handlers in-process and forward
    /// everything else, so that moto's Step Functions engine runs the real definition.
    #[command(hide = true)]
    LambdaProxy(lambda_proxy::ProxyArgs),
    /// A service's deployments, newest first (from the records in S3).
    History(records::HistoryArgs),
    /// A live web page of every service in the bucket: what runs, each deployment's
    /// timeline (weight, checks, verdicts, gates), history, and approve/promote/abort
    /// buttons (none with --read-only). Loopback only by default.
    Dashboard(dashboard::DashboardArgs),
    /// One deployment's timeline as a self-contained HTML file (--html FILE).
    Report(dashboard::ReportArgs),
    /// What runs now for a service: version, weight, last verdict, stable version, lock.
    Status(records::StatusArgs),
    /// Break a service's stale lock on purpose (asks first unless --yes).
    Unlock(records::UnlockArgs),
    /// Restore a service that a deployment left behind when it ended without finishing
    /// (stopped, timed out, killed, unlocked): all traffic on the stable version, the
    /// orphaned version removed, its record "recovered from ...", the lock released.
    /// Refuses while the lock's holder may still run (exit 1) unless --force.
    Recover(records::RecoverArgs),
    /// Ask the running deployment to roll back at its next step (it ends failed,
    /// "aborted by <who>: <reason>"; never a bare StopExecution).
    Abort(records::AbortArgs),
    /// Pass the gate the running deployment waits at: its next passing health check
    /// goes on to the next weight (or, at the promotion gate, to the promotion). An
    /// error when no deployment runs or none waits at a gate (exit 2).
    Approve(records::ApproveArgs),
    /// Skip the rest of the current step (and pass a waiting gate) at the next passing
    /// health check; --full skips every remaining step and gate: the next passing check
    /// shifts to 100%, whose bake and checks still come before the old version goes.
    Promote(records::PromoteArgs),
    /// Run one health check now and print the verdict with its numbers
    /// (exit 0 healthy, 1 unhealthy, 3 hold, 2 bad input).
    CheckHealth(health::CheckHealthArgs),
    /// Replay the health rule over the service's real past metrics, as if a canary had
    /// run at every check: how often it would have rolled back a healthy service, and
    /// (with --inject-error-rate / --inject-latency) how soon it catches a failure.
    WhatIf(whatif::WhatIfArgs),
    /// Start the state machine in AWS with a deploy.json as its input.
    Start(stepfunctions::StartArgs),
    /// Follow a Step Functions execution until it ends (exit 0 succeeded, 1 otherwise).
    Watch(stepfunctions::WatchArgs),
    /// Check every endpoint and permission the functions use (STS, S3, Step Functions,
    /// CloudWatch, EKS and the API server, the metrics source), one line each: ok, or
    /// what is missing and how to fix it (exit 1 when anything is).
    Doctor(crate::doctor::DoctorArgs),
}
