//! `canary history`: a service's deployments, newest first, from its records.

use std::process::ExitCode;

use canary_core::OutcomeStatus;
use canary_store::{Record, ServiceRef};
use serde_json::{Value, json};

use super::{Output, ServiceArgs};
use crate::error::CliError;
use crate::format::{duration, now_secs, pretty, rfc3339, utc, verdict_numbers};

/// `canary history`.
#[derive(Debug, Clone, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `canary history`: every deployment, newest first.
pub async fn history(args: &HistoryArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let store = args.target.store.store().await?;
    let records = store.history(&svc).await?;
    let state = store.state(&svc).await?;
    let running = state.in_progress.as_ref().map(|p| p.version);
    let now = now_secs();
    match args.output {
        Output::Json => {
            let list = records
                .iter()
                .map(|r| record_json(r, running, now))
                .collect::<Result<Vec<Value>, CliError>>()?;
            println!(
                "{}",
                pretty(&json!({"service": svc.to_string(), "deployments": list}))
            );
        }
        Output::Text => print!("{}", history_text(&svc, &records, running, now)),
    }
    Ok(ExitCode::SUCCESS)
}

fn history_text(svc: &ServiceRef, records: &[Record], running: Option<u32>, now: i64) -> String {
    if records.is_empty() {
        return format!("{svc}: no deployments recorded\n");
    }
    let mut out = format!(
        "{svc}: {} deployment{}, newest first\n\n",
        records.len(),
        if records.len() == 1 { "" } else { "s" }
    );
    out.push_str(&format!(
        "  {:<8} {:<12} {:<20} {:<20} {:>10} {:>6}  {}\n",
        "VERSION", "OUTCOME", "STARTED (UTC)", "ENDED (UTC)", "DURATION", "MAX %", "IMAGE"
    ));
    for r in records {
        let ended = r.ended_at.map_or_else(|| "-".to_owned(), utc);
        out.push_str(&format!(
            "  {:<8} {:<12} {:<20} {:<20} {:>10} {:>5}%  {}\n",
            format!("v{}", r.version),
            outcome_label(r, running),
            utc(r.started_at),
            ended,
            duration(r.ended_at.unwrap_or(now).saturating_sub(r.started_at)),
            r.max_weight,
            r.image
        ));
        if let Some(o) = &r.outcome {
            out.push_str(&format!("           reason: {}\n", o.reason));
        }
        if let Some(v) = r.verdicts.last() {
            out.push_str(&format!(
                "           last verdict: {}\n",
                verdict_numbers(v)
            ));
        }
    }
    out
}

/// `promoted`, `rolled back`, `running` (the deployment the state names) or
/// `unfinished` (no outcome and not running: its execution died or its lock was broken).
fn outcome_label(r: &Record, running: Option<u32>) -> &'static str {
    match &r.outcome {
        Some(o) if o.status == OutcomeStatus::Promoted => "promoted",
        Some(_) => "rolled back",
        None if running == Some(r.version) => "running",
        None => "unfinished",
    }
}

/// One record for a script: the record with its status, times and duration added.
fn record_json(r: &Record, running: Option<u32>, now: i64) -> Result<Value, CliError> {
    let mut v = serde_json::to_value(r).map_err(|source| CliError::Serialize {
        what: "a record",
        source,
    })?;
    if let Some(map) = v.as_object_mut() {
        map.insert(
            "status".into(),
            Value::from(outcome_label(r, running).replace(' ', "_")),
        );
        map.insert("started".into(), Value::from(rfc3339(r.started_at)));
        map.insert(
            "ended".into(),
            r.ended_at.map_or(Value::Null, |t| Value::from(rfc3339(t))),
        );
        map.insert(
            "duration_seconds".into(),
            Value::from(r.ended_at.unwrap_or(now).saturating_sub(r.started_at)),
        );
    }
    Ok(v)
}
