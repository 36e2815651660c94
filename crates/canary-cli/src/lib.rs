//! The library behind the `canary` command. The binary (`main.rs`) only parses
//! arguments ([`cli`]) and hands them to [`commands`], which calls one module per
//! command. The modules import one way: `cli` ← `commands` ← the command modules ←
//! what they share (`harness`, `local`, `progress`, `deploy_json`, `aws`, `format`,
//! `error`); none imports a module above it.
//!
//! - The command line: [`cli`] (the arguments), [`commands`] (dispatch), [`error`].
//! - A deploy.json, offline: [`deploy_json`] (`validate`, `render`, `plan`, `prepare`).
//! - Local runs, the state machine in the local executor (crate canary-sfn) with the
//!   handlers in-process ([`local`]): [`demo`] and its fault matrix ([`faults`]) in the
//!   simulated world of [`harness`], [`run`] against a real cluster with [`progress`]
//!   on the terminal, [`cluster_sim`] serving the simulated cluster, and
//!   [`lambda_proxy`] answering Lambda Invoke calls for moto's Step Functions engine.
//! - AWS Step Functions: [`stepfunctions`] (`start`, `watch`).
//! - A service's records in S3: [`records`] (`history`, `status`, `unlock`, `abort`);
//!   its health in CloudWatch: [`health`] (`check-health`); its health rule replayed
//!   over its past numbers: [`whatif`] (`what-if`).
//! - See it: [`dashboard`] (`dashboard`, `demo --dashboard`, `report --html`).
//! - Shared: [`aws`] (the SDK's configuration), [`format`] (output formatting).

pub mod aws;
pub mod cli;
pub mod cluster_sim;
pub mod commands;
pub mod dashboard;
pub mod demo;
pub mod deploy_json;
pub mod doctor;
pub mod error;
pub mod faults;
pub mod format;
pub mod harness;
pub mod health;
pub mod lambda_proxy;
pub mod local;
pub mod progress;
pub mod records;
pub mod run;
pub mod stepfunctions;
pub mod whatif;
