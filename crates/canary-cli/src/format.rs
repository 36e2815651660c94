//! Output formatting shared by the commands: times, durations, numbers, JSON, a
//! verdict's numbers and long text cut short. Pure functions of their arguments (only
//! [`now_secs`] reads the clock); no command logic.

use std::time::{SystemTime, UNIX_EPOCH};

use canary_core::execution::OutcomeStatus;
use canary_core::{Verdict, VerdictStatus};
use serde_json::Value;

/// Now, Unix seconds.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A point in time given on the command line: RFC 3339 (`2026-12-01T10:00:00Z`) or
/// Unix seconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|e| format!("`{text}` is not an RFC 3339 time or Unix seconds ({e})"))
}

/// `2026-01-01 00:00:00` (UTC).
pub fn utc(secs: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}

/// `2026-01-01T00:00:00Z`.
pub fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// `15:04:05` (UTC): the events of one execution are minutes apart, not days.
pub fn time_of_day(secs: i64) -> String {
    let (h, m, s) = (
        secs.rem_euclid(86_400) / 3600,
        secs.rem_euclid(3600) / 60,
        secs.rem_euclid(60),
    );
    format!("{h:02}:{m:02}:{s:02}")
}

/// `1h 2m 3s`, `4m 5s`, `6s`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// `m:ss` or `h:mm:ss` of a number of seconds (the plan's times).
pub fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `mm:ss` (or `h:mm:ss`) of a duration in milliseconds.
pub fn mmss(millis: i64) -> String {
    let secs = millis.max(0) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// A count or a rate without a trailing `.0`, at most two decimals.
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// JSON for a person: indented.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// `text`, cut at `max` characters with a note saying how much was left out.
pub fn shorten(text: &str, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max).collect();
    format!(
        "{head}… ({} more characters; `aws stepfunctions describe-execution` has it all)",
        total - max
    )
}

/// `healthy: 0 errors, 120 requests, error rate 0%, window 600 s, 3 datapoints`.
pub fn verdict_numbers(v: &Verdict) -> String {
    let status = match v.status {
        VerdictStatus::Healthy => "healthy",
        VerdictStatus::Unhealthy => "unhealthy",
        VerdictStatus::Hold => "hold",
    };
    let mut parts = vec![format!("{} errors", num(v.errors))];
    if let Some(r) = v.requests {
        parts.push(format!("{} requests", num(r)));
    }
    if let Some(r) = v.error_rate {
        parts.push(format!("error rate {}%", num(r)));
    }
    if let Some(ms) = v.latency_ms {
        parts.push(format!("latency {} ms", num(ms)));
    }
    if let Some(c) = &v.comparison {
        parts.push(format!("stable {}% errors", num(c.stable_rate_percent)));
    }
    parts.push(format!("window {} s", v.window_seconds));
    parts.push(format!("{} datapoints", v.datapoints));
    format!("{status}: {}", parts.join(", "))
}

/// `promoted` or `rolled_back`.
pub fn outcome_word(status: OutcomeStatus) -> &'static str {
    match status {
        OutcomeStatus::Promoted => "promoted",
        OutcomeStatus::RolledBack => "rolled_back",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_read_well() {
        assert_eq!(duration(3), "3s");
        assert_eq!(duration(125), "2m 5s");
        assert_eq!(duration(3725), "1h 2m 5s");
        assert_eq!(utc(1_767_225_600), "2026-01-01 00:00:00");
        assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00Z");
    }
}
