//! The real AWS Step Functions side of the `canary` command (not to be confused with
//! the crate `canary-sfn`, the local executor): `canary start` starts the shared state
//! machine with a deploy.json as its input (what a pipeline's Deploy stage sends), and
//! `canary watch` follows an execution until it ends ([`watch`](mod@watch) has how).

mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata};
use serde_json::Value;

use render_template::owner;

use crate::aws::sdk_config;
use crate::deploy_json::{self, Inputs};
use crate::error::CliError;
use crate::format::{now_secs, rfc3339};

/// The longest execution name Step Functions accepts.
const MAX_NAME: usize = 80;

/// `canary start`.
#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// The deploy.json to deploy (as `canary prepare` writes it, or with --template/--image).
    pub deploy_json: PathBuf,
    #[command(flatten)]
    pub inputs: Inputs,
    /// The state machine's ARN (the shared stack's output).
    #[arg(long, env = "CANARY_STATE_MACHINE_ARN")]
    pub state_machine: String,
    /// The end of the execution's name, after the owner prefix
    /// `<namespace>_<service>_` (default: the UTC time, `yyyymmddThhmmssZ`); the whole
    /// name is unique per state machine and at most 80 characters.
    #[arg(long)]
    pub name: Option<String>,
    /// Follow the execution until it ends (as `canary watch`).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between two polls while watching.
    #[arg(long, default_value_t = 5.0)]
    pub interval: f64,
}

/// `canary watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// The execution's ARN (`canary start` prints it).
    pub execution_arn: String,
    /// Seconds between two polls.
    #[arg(long, default_value_t = 5.0)]
    pub interval: f64,
}

/// `canary start`: validates, then starts one execution.
pub async fn start(args: &StartArgs) -> Result<ExitCode, CliError> {
    let input = deploy_json::pipeline_input(&args.deploy_json, &args.inputs)?;
    check_arn(&args.state_machine, ":stateMachine:", "--state-machine")?;
    let interval = poll_interval(args.interval)?;
    let field = |name: &str| input.get(name).and_then(Value::as_str).unwrap_or("");
    let service = field("microservice_name");
    let name = execution_name(
        field("kubernetes_namespace"),
        service,
        args.name.as_deref(),
        now_secs(),
    )?;
    let body = serde_json::to_string(&input)
        .map_err(|e| CliError::Usage(format!("deploy.json cannot be serialized: {e}")))?;
    let client = client().await;
    let out = client
        .start_execution()
        .state_machine_arn(&args.state_machine)
        .name(&name)
        .input(body)
        .send()
        .await
        .map_err(|e| sfn_error("StartExecution", e))?;
    let arn = out.execution_arn().to_owned();
    println!("started {arn}");
    println!(
        "  {service} on {} / {}, image {}",
        input
            .get("cluster_name")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        input
            .get("kubernetes_namespace")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        input
            .get("container_image")
            .and_then(Value::as_str)
            .unwrap_or("?"),
    );
    if !args.watch {
        println!("  follow it with: canary watch {arn}");
        return Ok(ExitCode::SUCCESS);
    }
    watch::follow(&client, &arn, interval).await
}

/// `canary watch`: follows an execution until it ends.
pub async fn watch(args: &WatchArgs) -> Result<ExitCode, CliError> {
    check_arn(&args.execution_arn, ":execution:", "execution ARN")?;
    let interval = poll_interval(args.interval)?;
    let client = client().await;
    watch::follow(&client, &args.execution_arn, interval).await
}

async fn client() -> Client {
    Client::new(&sdk_config().await)
}

fn poll_interval(secs: f64) -> Result<Duration, CliError> {
    if !(0.05..=300.0).contains(&secs) {
        return Err(CliError::Usage(format!(
            "invalid --interval `{secs}`: must be between 0.05 and 300 seconds"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn check_arn(arn: &str, kind: &str, what: &str) -> Result<(), CliError> {
    if arn.starts_with("arn:") && arn.contains(":states:") && arn.contains(kind) {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "invalid {what} `{arn}`: expected `arn:aws:states:<region>:<account>{kind}...`"
    )))
}

fn check_name(name: &str) -> Result<(), CliError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars {
        return Err(CliError::Usage(format!(
            "invalid execution name `{name}`: 1 to {MAX_NAME} characters among letters, digits, `-` and `_`"
        )));
    }
    Ok(())
}

/// `<namespace>_<service>_<suffix>`, the owner prefix that pipelines give too (see
/// `render_template::owner`), so render-template can tell which service the execution
/// belongs to; the suffix is `--name` or the UTC time (`yyyymmddThhmmssZ`).
fn execution_name(
    namespace: &str,
    service: &str,
    suffix: Option<&str>,
    now: i64,
) -> Result<String, CliError> {
    let stamp: String;
    let suffix = match suffix {
        Some(s) => s,
        None => {
            stamp = rfc3339(now)
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            &stamp
        }
    };
    let name = format!("{}{suffix}", owner::prefix(namespace, service));
    check_name(&name).map_err(|e| match e {
        CliError::Usage(m) => CliError::Usage(format!(
            "{m} (the owner prefix `{}` and the suffix `{suffix}`; a shorter --name may fit)",
            owner::prefix(namespace, service)
        )),
        other => other,
    })?;
    match owner::parse(&name) {
        Ok(owner::NameOwner::Owned { .. }) => Ok(name),
        _ => Err(CliError::Usage(format!(
            "namespace `{namespace}` and service `{service}` do not make an owner prefix (DNS labels)"
        ))),
    }
}

/// Bad input (an unknown state machine or execution, a bad name or ARN) exits 2; the
/// rest is an AWS failure.
pub(crate) fn sfn_error<E, R>(op: &'static str, e: aws_sdk_sfn::error::SdkError<E, R>) -> CliError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = e.code().unwrap_or("").to_owned();
    let message = e.message().unwrap_or("").to_owned();
    match code.as_str() {
        "InvalidArn"
        | "InvalidName"
        | "InvalidExecutionInput"
        | "StateMachineDoesNotExist"
        | "StateMachineDeleting"
        | "ExecutionDoesNotExist"
        | "ExecutionAlreadyExists" => CliError::Usage(format!("{op}: {code}: {message}")),
        _ => CliError::StepFunctions {
            operation: op,
            detail: DisplayErrorContext(&e).to_string(),
            source: Box::new(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executions_are_named_with_the_owner_prefix() {
        let name = execution_name("yelb", "yelb-appserver", None, 1_767_225_600);
        assert_eq!(
            name.ok().as_deref(),
            Some("yelb_yelb-appserver_20260101T000000Z")
        );
        let name = execution_name("yelb", "yelb-appserver", Some("try-2"), 0)
            .ok()
            .unwrap_or_default();
        assert_eq!(name, "yelb_yelb-appserver_try-2");
        assert!(owner::check(&name, "yelb", "yelb-appserver").is_ok());
        assert!(owner::check(&name, "yelb", "yelb-ui").is_err());
        // too long, or a suffix with characters Step Functions refuses
        assert!(execution_name("yelb", &"s".repeat(63), None, 0).is_err());
        assert!(execution_name("yelb", "yelb-ui", Some("bad name"), 0).is_err());
        assert!(check_name("bad name").is_err());
    }
}
