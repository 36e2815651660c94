//! `canary what-if`: the health rule of a deploy.json replayed over the service's real
//! past numbers, as if a canary had run at every check time. It says how often the
//! rule would have rolled back a healthy service (false alarms, with the numbers of
//! each), and, with an injected failure, how long the rule takes to catch it.
//!
//! The numbers are fetched once for the whole range (canary-metrics `history`) and
//! the checks are replayed locally (canary-core `whatif`, which documents the model).
//! The replayed canary is the running version: `--version`, else the stable version
//! in the records when a bucket is known, else 1. With `compare_to_stable` its stable
//! side is the same version's numbers (the rest of the traffic), so the comparison
//! asks whether a canary that behaves exactly like stable is called worse; there is no
//! other version to name.
//!
//! Exit codes: 0 the replay ran (whatever it found), 1 the source failed, 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use canary_core::DeploySpec;
use canary_core::whatif::{CatchTimes, Injection, Replay, Report};
use canary_metrics::history::{HistoryRequest, history, history_queries};
use canary_store::ServiceRef;
use serde_json::json;

use crate::aws::sdk_config;
use crate::deploy_json::{self, Inputs};
use crate::error::CliError;
use crate::format::{duration, now_secs, num, pretty, rfc3339, utc};
use crate::records::{Output, StoreArgs};

/// The range replayed when neither `--since` nor `--from`/`--to` is given: a week.
pub const DEFAULT_SINCE_SECS: i64 = 7 * 86_400;
/// How many false alarms the text output lists.
const WORST_SHOWN: usize = 5;
/// Above this rate of rolled-back deployments of a healthy service, the output advises.
const ADVICE_ABOVE: f64 = 0.05;

/// `canary what-if`.
#[derive(Debug, Clone, clap::Args)]
pub struct WhatIfArgs {
    /// The deploy.json whose health rule and metrics source to replay.
    pub deploy_json: PathBuf,
    #[command(flatten)]
    pub inputs: Inputs,
    /// Replay this far back from now: `90m`, `12h`, `7d`, `2w` (default 7d). CloudWatch
    /// keeps one-minute datapoints for 15 days.
    #[arg(long, value_parser = parse_since, conflicts_with_all = ["from", "to"])]
    pub since: Option<i64>,
    /// Start of the range, RFC 3339 (`2026-01-01T00:00:00Z`); needs --to.
    #[arg(long, value_parser = parse_time, requires = "to")]
    pub from: Option<i64>,
    /// End of the range, RFC 3339; needs --from.
    #[arg(long, value_parser = parse_time, requires = "from")]
    pub to: Option<i64>,
    /// The version whose numbers to replay (with per-version metrics). Default: the
    /// stable version in the records when a bucket is known, else 1.
    #[arg(long)]
    pub version: Option<u32>,
    /// Inject a failure of this error rate into the canary (`2%`) and report how long
    /// the rule takes to catch it.
    #[arg(long, value_parser = parse_rate, value_name = "PERCENT")]
    pub inject_error_rate: Option<f64>,
    /// Inject this much latency into the canary (`200ms`, `1.5s`) and report how long
    /// the rule takes to catch it (needs metrics.max_latency_ms).
    #[arg(long, value_parser = parse_latency, value_name = "DURATION")]
    pub inject_latency: Option<f64>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `90m`, `12h`, `7d`, `2w`, `3600s` → seconds.
pub fn parse_since(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "`{s}` is not a duration: give a whole number and a unit (s, m, h, d or w), e.g. 7d"
        )
    };
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(unit_at);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    match n.checked_mul(unit) {
        Some(secs) if secs > 0 && secs <= 366 * 86_400 => Ok(secs),
        _ => Err(format!("`{s}` must be more than 0 and at most a year")),
    }
}

/// RFC 3339 → Unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|e| format!("`{s}` is not an RFC 3339 time like 2026-01-01T00:00:00Z: {e}"))
}

/// `2%` (or `2`) → 0.02; more than 0, at most 100%.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let n: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage like 2%"))?;
    if n.is_finite() && n > 0.0 && n <= 100.0 {
        Ok(n / 100.0)
    } else {
        Err(format!("`{s}` must be more than 0% and at most 100%"))
    }
}

/// `200ms`, `1.5s` (or `200`, milliseconds) → milliseconds; more than 0, at most an hour.
pub fn parse_latency(s: &str) -> Result<f64, String> {
    let (n, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (s, 1.0)
    };
    let n: f64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 200ms or 1.5s"))?;
    let ms = n * scale;
    if ms.is_finite() && ms > 0.0 && ms <= 3_600_000.0 {
        Ok(ms)
    } else {
        Err(format!("`{s}` must be more than 0 and at most an hour"))
    }
}

/// `canary what-if`.
pub async fn what_if(args: &WhatIfArgs) -> Result<ExitCode, CliError> {
    let spec = deploy_json::load(&args.deploy_json, &args.inputs, true)?;
    let now = now_secs();
    let (from, to) = match (args.since, args.from, args.to) {
        (_, Some(from), Some(to)) => (from, to),
        (since, _, _) => (now - since.unwrap_or(DEFAULT_SINCE_SECS), now),
    };
    if from >= to {
        return Err(CliError::Usage(format!(
            "--from `{}` must be before --to `{}`",
            rfc3339(from),
            rfc3339(to)
        )));
    }
    if args.version == Some(0) {
        return Err(CliError::Usage(
            "invalid --version `0`: versions start at 1".into(),
        ));
    }
    if let Some(ms) = args.inject_latency
        && spec.metrics.latency.is_none()
    {
        return Err(CliError::Usage(format!(
            "--inject-latency `{}ms` needs metrics.max_latency_ms in deploy.json: without a latency rule no check reads latency",
            num(ms)
        )));
    }
    let svc = ServiceRef::from_spec(&spec);
    let version = match (args.version, &args.store.bucket) {
        (Some(v), _) => v,
        (None, Some(_)) => args
            .store
            .store()
            .await?
            .state(&svc)
            .await?
            .stable_version
            .unwrap_or(1),
        (None, None) => 1,
    };
    let injection =
        (args.inject_error_rate.is_some() || args.inject_latency.is_some()).then(|| Injection {
            error_rate: args.inject_error_rate.unwrap_or(0.0),
            latency_ms: args.inject_latency.unwrap_or(0.0),
        });
    let req = HistoryRequest::of(&spec, version, from, to, args.inject_error_rate.is_some());
    let sdk = if spec.metrics.source.needs_aws() {
        Some(sdk_config().await)
    } else {
        None
    };
    let past = history(&spec, sdk.as_ref(), &req).await?;
    let report = Replay::of(&spec, version)
        .run(&past, injection)
        .map_err(|e| CliError::Usage(format!("cannot replay {}: {e}", svc)))?;
    let queries = history_queries(&spec, &req);
    match args.output {
        Output::Json => {
            let v = json!({
                "service": svc.to_string(),
                "version": version,
                "source": spec.metrics.source.name(),
                "queries": queries.iter().map(|(what, q)| json!({"what": what, "query": q})).collect::<Vec<_>>(),
                "start": rfc3339(report.from),
                "end": rfc3339(report.to),
                "report": report,
                "advice": advice(&report),
            });
            println!("{}", pretty(&v));
        }
        Output::Text => print!("{}", report_text(&spec, &svc, version, &queries, &report)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The report for a person.
pub fn report_text(
    spec: &DeploySpec,
    svc: &ServiceRef,
    version: u32,
    queries: &[(String, String)],
    r: &Report,
) -> String {
    let scope = if r.per_version {
        format!("version {version}")
    } else {
        "the whole service (no version_dimension)".to_owned()
    };
    let mut out = format!(
        "what-if: {svc}, {scope}, {} to {} UTC\n",
        utc(r.from),
        utc(r.to)
    );
    out.push_str(&format!("  source      {}\n", spec.metrics.source.name()));
    for (what, q) in queries {
        out.push_str(&format!("  query       {what}: {q}\n"));
    }
    out.push_str(&format!(
        "  checks      {} replayed, one every {} s over a {} s window: {} healthy, {} held, {} unhealthy (false alarms) in {} episode(s)\n",
        r.checks, r.interval_secs, r.window_secs, r.healthy, r.holds, r.false_alarms.len(), r.episodes
    ));
    let share = if r.per_version {
        format!(
            "the canary holds {}% of the traffic (the first step): its counts are the version's times {}%",
            r.canary_weight_percent, r.canary_weight_percent
        )
    } else {
        format!(
            "the canary holds {}% of the traffic (the first step); the checks read the whole service's numbers, as a real check would",
            r.canary_weight_percent
        )
    };
    out.push_str(&format!("  canary      {share}\n"));
    out.push_str(&format!(
        "  per check   {}% of checks were false alarms\n",
        num(r.false_alarm_rate_per_check * 100.0)
    ));
    match r.false_rollback_rate_per_deployment {
        Some(rate) => out.push_str(&format!(
            "  per deploy  {} of {} deployments ({} checks each, one starting at every check) would have rolled back a healthy service: {}%\n",
            r.deployments_rolled_back,
            r.deployments,
            r.checks_per_deployment,
            num(rate * 100.0)
        )),
        None => out.push_str(&format!(
            "  per deploy  the range is shorter than one deployment ({} checks)\n",
            r.checks_per_deployment
        )),
    }
    for a in r.worst(WORST_SHOWN) {
        out.push_str(&format!(
            "  alarm       {} UTC: {}\n",
            utc(a.at),
            a.verdict.reason
        ));
    }
    if r.false_alarms.len() > WORST_SHOWN {
        out.push_str(&format!(
            "              ({} more; -o json lists them all)\n",
            r.false_alarms.len() - WORST_SHOWN
        ));
    }
    if let Some(c) = &r.catch {
        out.push_str(&catch_text(c, r));
    }
    if let Some(a) = advice(r) {
        out.push_str(&format!("advice: {a}\n"));
    }
    out
}

fn catch_text(c: &CatchTimes, r: &Report) -> String {
    let mut what = Vec::new();
    if c.injection.error_rate > 0.0 {
        what.push(format!(
            "{}% of the canary's requests failing",
            num(c.injection.error_rate * 100.0)
        ));
    }
    if c.injection.latency_ms > 0.0 {
        what.push(format!("{} ms more latency", num(c.injection.latency_ms)));
    }
    let mut out = format!(
        "  injected    {}, from {} onsets (right after each check a deployment's checks follow)\n",
        what.join(" and "),
        c.onsets
    );
    let secs = |s: Option<u64>| s.map_or_else(|| "-".to_owned(), |s| duration(s as i64));
    out.push_str(&format!(
        "  caught      {} of {} within a deployment's {} checks: median {}, p90 {}, max {}\n",
        c.caught,
        c.onsets,
        r.checks_per_deployment,
        secs(c.median_secs),
        secs(c.p90_secs),
        secs(c.max_secs)
    ));
    if c.masked_by_false_alarms > 0 {
        out.push_str(&format!(
            "  masked      {} first rolled back by a false alarm of the data (not counted as caught)\n",
            c.masked_by_false_alarms
        ));
    }
    out.push_str(&format!("  never       {} never caught\n", c.not_caught));
    out.push_str(
        "  note        add the source's publication delay to each time (CloudWatch metric filters: about a minute)\n",
    );
    out
}

/// One sentence when a healthy service would be rolled back too often.
pub fn advice(r: &Report) -> Option<String> {
    let rate = r.false_rollback_rate_per_deployment?;
    if rate <= ADVICE_ABOVE {
        return None;
    }
    let one_in = (1.0 / rate).round().max(1.0);
    let decided_by = |needle: &str| {
        r.false_alarms
            .iter()
            .filter(|a| a.verdict.reason.contains(needle))
            .count()
    };
    let counts = [
        (
            decided_by("failure_threshold_value"),
            "most were decided by the count of errors (failure_threshold_value): a rate (max_error_rate with min_request_count) grows with traffic, and compare_to_stable judges the canary against the stable version's own noise",
        ),
        (
            decided_by("max_error_rate"),
            "most were decided by max_error_rate: raise it, or set compare_to_stable so the stable version's own errors set the bar",
        ),
        (
            decided_by("max_latency_ms"),
            "most were decided by latency: raise max_latency_ms or judge a lower latency_quantile",
        ),
        (
            decided_by("min_request_count"),
            "most were too little traffic: lower min_request_count, or set no_data to `hold`",
        ),
        (
            decided_by("worse by more than"),
            "most were the comparison with stable: raise compare_to_stable's margin_percent or confidence",
        ),
    ];
    let hint = counts
        .iter()
        .max_by_key(|(n, _)| *n)
        .filter(|(n, _)| *n > 0)
        .map_or(
            "too few requests held the checks too long: lower min_request_count, raise max_holds, or set no_data to `pass`",
            |(_, h)| h,
        );
    Some(format!(
        "your thresholds would roll back about 1 deployment in {} of a healthy service; {hint}.",
        num(one_in)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_rates_and_latencies_parse_or_name_the_value() {
        assert_eq!(parse_since("7d"), Ok(7 * 86_400));
        assert_eq!(parse_since("90m"), Ok(5400));
        assert!(parse_since("7x").unwrap_err().contains("`7x`"));
        assert!(parse_since("0h").is_err());
        assert!(parse_since("d").is_err());
        assert_eq!(parse_rate("2%"), Ok(0.02));
        assert_eq!(parse_rate("50"), Ok(0.5));
        assert!(parse_rate("150%").unwrap_err().contains("`150%`"));
        assert!(parse_rate("0%").is_err());
        assert_eq!(parse_latency("200ms"), Ok(200.0));
        assert_eq!(parse_latency("1.5s"), Ok(1500.0));
        assert!(parse_latency("fast").unwrap_err().contains("`fast`"));
        assert_eq!(parse_time("2026-01-01T00:00:00Z"), Ok(1_767_225_600));
        assert!(parse_time("yesterday").unwrap_err().contains("`yesterday`"));
    }
}
