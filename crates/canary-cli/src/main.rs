//! The `canary` command. `main` only parses arguments and maps the outcome to an exit
//! code: 0 success, 1 a failure (an unhealthy canary, a failed deployment), 2 bad input.

use std::process::ExitCode;

use canary_cli::{cli, commands};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
