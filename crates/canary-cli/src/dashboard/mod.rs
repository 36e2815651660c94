//! See it: `canary dashboard` (a live page over the records in a bucket), `canary demo
//! --dashboard` (the demo's scenarios in the same page) and `canary report --html` (one
//! deployment's timeline as a self-contained file).
//!
//! - [`model`]: what is shown, read from the records, and each deployment's timeline
//!   from the best source there is (the local executor's rows, the execution history in
//!   Step Functions ([`sfn`]), what the dashboard saw while polling, the record alone).
//! - [`views`]: the HTML and the inline SVG chart, every value escaped.
//! - [`server`]: the axum server (page, fragment, JSON, actions).
//! - [`actions`]: approve, promote, abort, as the commands do them.
//!
//! The page polls its JSON every 2 s and swaps the board in when it changed; the style
//! and the script are compiled into the binary, so nothing is fetched from elsewhere.

pub mod actions;
pub mod model;
pub mod server;
pub mod sfn;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use canary_store::{DeploymentStore, ObjectStore, S3Objects};

use crate::aws::sdk_config;
use crate::demo::{Scenario, run_scenario_in};
use crate::error::CliError;
use crate::format::{now_secs, outcome_word};
use crate::harness::DemoEnv;
use crate::records::{ServiceArgs, StoreArgs, who};
pub use model::{Board, Group, Listing};
pub use server::{Served, serve};

/// The default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8377";

/// Groups of services, and who acts from the page.
#[derive(Debug)]
pub struct Dashboard {
    pub title: String,
    pub groups: Vec<Group>,
    /// No buttons, and the actions refused.
    pub read_only: bool,
    /// Who the actions are recorded as.
    pub by: String,
}

impl Dashboard {
    /// Everything, read now.
    pub async fn board(&self, now: i64) -> Board {
        let mut groups = Vec::with_capacity(self.groups.len());
        for (i, g) in self.groups.iter().enumerate() {
            groups.push(g.read(i, now).await);
        }
        Board {
            title: self.title.clone(),
            read_only: self.read_only,
            read_at: now,
            groups,
        }
    }
}

/// `canary dashboard`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The state machine whose executions run the deployments: their histories give
    /// each timeline's exact times and the next check.
    #[arg(long, value_name = "ARN")]
    pub state_machine: Option<String>,
    /// Where to listen. Only a loopback address, unless --read-only (the buttons act on
    /// deployments without asking who you are).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// No approve, promote or abort buttons (and the server refuses those actions).
    #[arg(long)]
    pub read_only: bool,
    /// Who the actions are recorded as (default: $USER@<hostname>).
    #[arg(long)]
    pub by: Option<String>,
}

/// `canary report`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// The version (default: the newest deployment).
    #[arg(value_name = "VERSION")]
    pub version: Option<u32>,
    /// Where to write the report: one HTML file, no external requests.
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// The state machine that ran it: its execution history gives exact times.
    #[arg(long, value_name = "ARN")]
    pub state_machine: Option<String>,
}

/// A non-loopback address is refused unless read-only.
fn check_listen(addr: SocketAddr, read_only: bool) -> Result<(), CliError> {
    if addr.ip().is_loopback() || read_only {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "invalid --listen `{addr}`: not a loopback address, and the buttons act on deployments without asking who you are; listen on 127.0.0.1, or add --read-only"
    )))
}

/// The store of `args` and a listing of its services.
async fn bucket_group(
    store_args: &StoreArgs,
    state_machine: Option<&str>,
) -> Result<Group, CliError> {
    let bucket = store_args.bucket()?.to_owned();
    let sdk = sdk_config().await;
    let objects: Arc<dyn ObjectStore> = Arc::new(S3Objects::new(&sdk, bucket.clone()));
    let store = DeploymentStore::new(objects.clone()).with_prefix(&store_args.prefix);
    let listing = Listing::Objects {
        objects,
        prefix: store_args.prefix.clone(),
    };
    let mut group = Group::new(format!("bucket {bucket}"), store, listing);
    if let Some(arn) = state_machine {
        let client = aws_sdk_sfn::Client::new(&sdk);
        group = group.with_timelines(Arc::new(sfn::StepFunctionsTimelines::new(client, arn)?));
        group = group.with_note(format!("timelines from the executions of {arn}"));
    }
    Ok(group)
}

/// `canary dashboard`: serves the page until Ctrl-C.
pub async fn command(args: &DashboardArgs) -> Result<ExitCode, CliError> {
    check_listen(args.listen, args.read_only)?;
    let group = bucket_group(&args.store, args.state_machine.as_deref()).await?;
    let title = format!("eks-canary: {}", group.label);
    // Fail now on a bucket that cannot be read, rather than on the page.
    group.listing.services().await?;
    let dashboard = Arc::new(Dashboard {
        title,
        groups: vec![group],
        read_only: args.read_only,
        by: who(args.by.as_deref())?,
    });
    serve_until_stopped(dashboard, args.listen).await
}

async fn serve_until_stopped(
    dashboard: Arc<Dashboard>,
    listen: SocketAddr,
) -> Result<ExitCode, CliError> {
    let served = serve(dashboard.clone(), listen).await?;
    println!("dashboard: {}", served.url());
    if dashboard.read_only {
        println!("  read-only: no approve, promote or abort buttons");
    } else {
        println!("  actions are recorded as {}", dashboard.by);
    }
    println!("Press Ctrl-C to stop.");
    let stopped = wait_for_stop().await;
    served.shutdown().await;
    stopped.map(|()| ExitCode::SUCCESS)
}

async fn wait_for_stop() -> Result<(), CliError> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(CliError::Signal)?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(CliError::Signal),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map_err(CliError::Signal)
    }
}

/// `canary demo --dashboard [--scenario NAME] [--listen ADDR]`.
pub async fn demo_command(args: &crate::demo::DemoArgs) -> Result<ExitCode, CliError> {
    let scenarios = match &args.scenario {
        None => Scenario::ALL.to_vec(),
        Some(name) => vec![Scenario::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            CliError::Usage(format!(
                "no scenario `{name}`; the scenarios are {}",
                names.join(", ")
            ))
        })?],
    };
    demo(&scenarios, args.listen, false).await
}

/// `canary demo --dashboard`: runs `scenarios`, each in its own simulated world, then
/// serves them in one page (a group per scenario) until Ctrl-C. Exit 1 when a scenario
/// did not end as expected (after serving).
pub async fn demo(
    scenarios: &[Scenario],
    listen: SocketAddr,
    read_only: bool,
) -> Result<ExitCode, CliError> {
    check_listen(listen, read_only)?;
    let (dashboard, all_passed) = demo_dashboard(scenarios, read_only).await?;
    let code = serve_until_stopped(Arc::new(dashboard), listen).await?;
    Ok(if all_passed { code } else { ExitCode::from(1) })
}

/// The demo's dashboard: every scenario run, a group each with its store and its rows;
/// and whether all ended as expected.
pub async fn demo_dashboard(
    scenarios: &[Scenario],
    read_only: bool,
) -> Result<(Dashboard, bool), CliError> {
    let mut groups = Vec::with_capacity(scenarios.len());
    let mut all_passed = true;
    for scenario in scenarios {
        let env = DemoEnv::start().await?;
        let r = run_scenario_in(&env, *scenario).await;
        let svc = env.service_ref();
        let store = env.services.store.clone();
        env.shutdown().await;
        all_passed &= r.passed;
        let word = match r.outcome.as_str() {
            o if o == outcome_word(canary_core::execution::OutcomeStatus::RolledBack) => {
                "rolled back".to_owned()
            }
            o => o.to_owned(),
        };
        println!(
            "{}: {} {} — {}",
            r.scenario,
            svc,
            word,
            if r.passed {
                "as expected"
            } else {
                "NOT as expected"
            }
        );
        let mut rows = model::FixedRows::default();
        rows.0
            .insert((svc.to_string(), r.expected.version), r.timeline.clone());
        let note = format!("{}: {word}. {}", r.title, r.reason);
        groups.push(
            Group::new(r.scenario.clone(), store, Listing::Fixed(vec![svc]))
                .with_note(note)
                .with_timelines(Arc::new(rows)),
        );
    }
    Ok((
        Dashboard {
            title: format!(
                "eks-canary demo: {} deployments on a simulated cluster",
                scenarios.len()
            ),
            groups,
            read_only,
            by: who(None)?,
        },
        all_passed,
    ))
}

/// `canary report`: one deployment's timeline as a self-contained HTML file.
pub async fn report(args: &ReportArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let group = bucket_group(&args.target.store, args.state_machine.as_deref()).await?;
    let now = now_secs();
    let record = match args.version {
        Some(v) => group.store.record(&svc, v).await?.ok_or_else(|| {
            CliError::Usage(format!(
                "invalid version `{v}`: {svc} has no record of version {v}"
            ))
        })?,
        None => group
            .store
            .history(&svc)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Usage(format!("{svc} has no deployments in this bucket")))?,
    };
    let html = report_html(&group, &svc, &record, now).await;
    std::fs::write(&args.html, html).map_err(|source| CliError::Written {
        path: args.html.clone(),
        source,
    })?;
    println!(
        "{}: v{} written to {}",
        svc,
        record.version,
        args.html.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The report of `record` as one HTML document.
pub async fn report_html(
    group: &Group,
    svc: &canary_store::ServiceRef,
    record: &canary_store::Record,
    now: i64,
) -> String {
    let view = group.deployment(svc, record, now).await;
    views::report_page(&svc.to_string(), &view, now)
}
