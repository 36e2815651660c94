//! `canary demo`: the real state machine definition (local executor) and the real
//! handlers against the simulated cluster ([`crate::harness`]), in four scenarios
//! ([`scenarios`]) printed for a person ([`output`]) or as JSON; with `--fault-matrix`,
//! the fault matrix ([`crate::faults`]) instead.
//!
//! Every scenario starts from a fresh environment ([`DemoEnv`](crate::harness::DemoEnv)):
//! the versions it needs are deployed first (quietly), then the scenario's deployment
//! runs and the cluster's final state is checked: all traffic on one version, no canary
//! objects left, the lock released, the record written.

pub mod output;
pub mod scenarios;

use std::process::ExitCode;

use crate::faults;
pub use crate::format::outcome_word;
pub use output::{notifications_text, summary_text, table_text, timeline_text};
pub use scenarios::{
    Expectation, Scenario, ScenarioResult, SentNotification, run_scenario, run_scenario_in,
};

/// `canary demo`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Run only this scenario: first-deployment, healthy-canary, faulty-canary or
    /// canary-not-ready.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// Print the scenarios' results as JSON instead of the timelines.
    #[arg(long)]
    pub json: bool,
    /// Run the fault matrix instead: every task state x {error, timeout, crash}, and
    /// two deployments racing for the lock; each must end whole on one version.
    #[arg(long, conflicts_with = "scenario")]
    pub fault_matrix: bool,
    /// Then serve the scenarios in the dashboard (`canary dashboard`'s page, a group per
    /// scenario) on loopback until Ctrl-C.
    #[arg(long, conflicts_with_all = ["json", "fault_matrix"])]
    pub dashboard: bool,
    /// Where the dashboard listens (with --dashboard).
    #[arg(long, requires = "dashboard", default_value = "127.0.0.1:8377")]
    pub listen: std::net::SocketAddr,
}

/// Runs the demo and prints it. Exit 0 when every scenario ended as expected, 1
/// otherwise, 2 for an unknown scenario name.
pub async fn command(args: &DemoArgs) -> ExitCode {
    if args.fault_matrix {
        return fault_matrix(args.json).await;
    }
    let scenarios: Vec<Scenario> = match &args.scenario {
        None => Scenario::ALL.to_vec(),
        Some(name) => match Scenario::from_name(name) {
            Some(s) => vec![s],
            None => {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                eprintln!(
                    "error: no scenario `{name}`; the scenarios are {}",
                    names.join(", ")
                );
                return ExitCode::from(2);
            }
        },
    };
    if !args.json {
        println!("{}", output::intro_text());
    }
    let mut results = Vec::with_capacity(scenarios.len());
    for (i, scenario) in scenarios.iter().enumerate() {
        let r = run_scenario(*scenario).await;
        if !args.json {
            print!("{}", output::heading_text(i + 1, *scenario));
            print!("{}", timeline_text(&r));
            print!("{}", output::notifications_text(&r));
            println!("{}", summary_text(&r));
        }
        results.push(r);
    }
    let all_passed = results.iter().all(|r| r.passed);
    if args.json {
        let doc = serde_json::json!({ "passed": all_passed, "scenarios": results });
        println!("{}", crate::format::pretty(&doc));
    } else {
        print!("{}", table_text(&results));
        print!("{}", output::closing_text(&results));
    }
    exit_code(all_passed)
}

/// `canary demo --fault-matrix`: every cell run, printed, and exit 0 when all are green.
async fn fault_matrix(json: bool) -> ExitCode {
    let cells = faults::run_matrix().await;
    if json {
        match serde_json::to_string_pretty(&cells) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot write the fault matrix as JSON: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        println!("{}", output::FAULT_MATRIX_INTRO);
        print!("{}", faults::matrix_text(&cells));
        let green = cells.iter().filter(|c| c.passed).count();
        println!("\n{green} of {} cells green", cells.len());
    }
    exit_code(cells.iter().all(|c| c.passed))
}

fn exit_code(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
