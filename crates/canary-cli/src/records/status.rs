//! `canary status`: what runs now for a service (version, weight, last verdict), its
//! stable version, its lock and a pending abort request.

use std::process::ExitCode;

use canary_store::{Abort, ServiceRef, Status};

use super::{Output, ServiceArgs};
use crate::error::CliError;
use crate::format::{duration, now_secs, pretty, utc, verdict_numbers};

/// `canary status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `canary status`: what runs now, the stable version, the lock and a pending abort.
pub async fn status(args: &StatusArgs) -> Result<ExitCode, CliError> {
    let svc = args.target.service_ref()?;
    let store = args.target.store.store().await?;
    let status = store.status(&svc).await?;
    let abort = store.abort_requested(&svc).await?;
    let now = now_secs();
    match args.output {
        Output::Json => {
            let serialize = |source| CliError::Serialize {
                what: "the status",
                source,
            };
            let mut v = serde_json::to_value(&status).map_err(serialize)?;
            if let Some(map) = v.as_object_mut() {
                map.insert(
                    "abort".into(),
                    serde_json::to_value(&abort).map_err(serialize)?,
                );
            }
            println!("{}", pretty(&v));
        }
        Output::Text => print!("{}", status_text(&svc, &status, abort.as_ref(), now)),
    }
    Ok(ExitCode::SUCCESS)
}

/// "12:03:00 UTC approved by ana at 50%: dashboards look fine".
pub fn action_line(a: &canary_core::OperatorAction) -> String {
    format!("{} UTC {}", utc(a.at), action_words(a))
}

/// "approved by ana at 50%: dashboards look fine".
pub fn action_words(a: &canary_core::OperatorAction) -> String {
    use canary_core::ActionKind;
    let what = match a.kind {
        ActionKind::Paused => "paused",
        ActionKind::Approved => "approved",
        ActionKind::Promoted => "promoted (rest of the step skipped)",
        ActionKind::PromotedFull => "promoted fully (remaining steps skipped)",
        ActionKind::TimedOut => "gate timed out",
        ActionKind::Aborted => "aborted",
    };
    let by = match a.kind {
        ActionKind::Paused | ActionKind::TimedOut => String::new(),
        _ => format!(" by {}", a.by),
    };
    format!(
        "{} UTC {what}{by} at {}%: {}",
        utc(a.at),
        a.weight,
        a.reason
    )
}

/// The status for a person.
fn status_text(svc: &ServiceRef, status: &Status, abort: Option<&Abort>, now: i64) -> String {
    let s = &status.state;
    let mut out = format!("{svc}\n");
    match (s.stable_version, &s.stable_image) {
        (Some(v), Some(image)) => out.push_str(&format!("  stable:    v{v}  {image}\n")),
        (Some(v), None) => out.push_str(&format!("  stable:    v{v}\n")),
        _ => out.push_str("  stable:    none (never promoted)\n"),
    }
    match (&s.in_progress, &status.in_progress) {
        (Some(p), Some(r)) => {
            out.push_str(&format!(
                "  running:   v{}  {}  at {}% (highest {}%), started {} UTC ({} ago), last update {} UTC\n",
                r.version,
                r.image,
                r.weight,
                r.max_weight,
                utc(r.started_at),
                duration(now.saturating_sub(r.started_at)),
                utc(r.updated_at),
            ));
            out.push_str(&format!("             execution {}\n", p.execution));
            if let Some(g) = &r.gate {
                out.push_str(&format!(
                    "             {}
",
                    super::gates::gate_line(g, now)
                ));
            }
            for a in r.operator.iter().rev().take(3).rev() {
                out.push_str(&format!(
                    "             {}
",
                    action_line(a)
                ));
            }
            match r.verdicts.last() {
                Some(v) => out.push_str(&format!(
                    "             last verdict: {}\n             {}\n",
                    verdict_numbers(v),
                    v.reason
                )),
                None => out.push_str("             no health check yet\n"),
            }
        }
        (Some(p), None) => out.push_str(&format!(
            "  running:   v{}  {}, started {} UTC by execution {} (no record yet)\n",
            p.version,
            p.image,
            utc(p.started_at),
            p.execution
        )),
        (None, _) => out.push_str("  running:   no deployment\n"),
    }
    match &status.lock {
        Some(l) => out.push_str(&format!(
            "  lock:      held by {} since {} UTC ({})\n",
            l.execution,
            utc(l.since),
            duration(now.saturating_sub(l.since))
        )),
        None => out.push_str("  lock:      free\n"),
    }
    if let Some(a) = abort {
        out.push_str(&format!(
            "  abort:     requested by {} at {} UTC: {}\n",
            a.by,
            utc(a.at),
            a.reason
        ));
    }
    out.push_str(&format!("  versions:  {} handed out\n", s.version_counter));
    out
}
