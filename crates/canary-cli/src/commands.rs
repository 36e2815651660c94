//! Dispatch: each subcommand handed to the module that runs it, and its outcome turned
//! into an exit code. Nothing else happens here.

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::{
    cluster_sim, dashboard, demo, deploy_json, health, lambda_proxy, records, run, stepfunctions,
    whatif,
};

/// Runs one subcommand.
pub async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Demo(args) if args.dashboard => dashboard::demo_command(&args).await,
        Command::Demo(args) => Ok(demo::command(&args).await),
        Command::Run(args) => run::command(&args).await,
        Command::ClusterSim(args) => cluster_sim::serve_cluster_sim(&args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Validate {
            deploy_json,
            inputs,
        } => deploy_json::validate(&deploy_json, &inputs),
        Command::Render {
            deploy_json,
            inputs,
            version,
            stable_version,
            weight,
            output,
        } => deploy_json::render_command(
            &deploy_json,
            &inputs,
            version,
            stable_version,
            weight,
            output,
        ),
        Command::Plan {
            deploy_json,
            inputs,
        } => deploy_json::plan_command(&deploy_json, &inputs),
        Command::Prepare {
            spec_dir,
            image,
            output,
            owner,
        } => deploy_json::prepare_command(&spec_dir, &image, &owner, output.as_deref()),
        Command::LambdaProxy(args) => Ok(lambda_proxy::main(args).await),
        Command::History(args) => records::history(&args).await,
        Command::Dashboard(args) => dashboard::command(&args).await,
        Command::Report(args) => dashboard::report(&args).await,
        Command::Status(args) => records::status(&args).await,
        Command::Unlock(args) => records::unlock(&args).await,
        Command::Recover(args) => records::recover(&args).await,
        Command::Abort(args) => records::abort(&args).await,
        Command::Approve(args) => records::approve_command(&args).await,
        Command::Promote(args) => records::promote_command(&args).await,
        Command::CheckHealth(args) => health::check_health(&args).await,
        Command::WhatIf(args) => whatif::what_if(&args).await,
        Command::Start(args) => stepfunctions::start(&args).await,
        Command::Watch(args) => stepfunctions::watch(&args).await,
        Command::Doctor(args) => crate::doctor::doctor(&args).await,
    }
}
