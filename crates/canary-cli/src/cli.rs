//! Command-line arguments.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Canary deployments for microservices on Amazon EKS.
#[derive(Debug, Parser)]
#[command(name = "canary", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

/// What a person adds to a deploy.json that the pipeline's build step has not prepared.
#[derive(Debug, Clone, clap::Args)]
pub struct Inputs {
    /// The Kubernetes template as a plain file, instead of `config_file`.
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// The image, instead of `container_image`.
    #[arg(long)]
    pub image: Option<String>,
}
