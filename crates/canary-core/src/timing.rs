//! The fixed timings the pipeline is built around: how often metrics are published and
//! when a datapoint becomes visible, and how often readiness is polled. A leaf module:
//! the spec, the schedule and the decisions all read it, it reads none of them.

/// The period of the metrics the health check reads (CloudWatch metric filters publish
/// one datapoint a minute).
pub const METRIC_PERIOD_SECS: u64 = 60;

/// How long after a failure starts its first datapoint can be read, at worst: the
/// metric period it falls in, and then the period's publication (CloudWatch Logs metric
/// filters publish a minute's datapoint after the minute ends).
pub const METRIC_VISIBILITY_SECS: u64 = 2 * METRIC_PERIOD_SECS;

/// How often the state machine polls a Deployment's readiness, in seconds.
pub const READY_POLL_SECONDS: u64 = 10;

/// How long deploy-canary watches the new Deployment inside one invocation before it
/// leaves the rest of the wait to the state machine's Wait loop, in seconds (the
/// default of `CANARY_READY_WATCH_SECONDS`).
pub const READY_WATCH_SECONDS: u64 = 60;

/// How often deploy-canary reads the new Deployment while it watches, in milliseconds:
/// the first shift follows readiness within this time.
pub const READY_WATCH_POLL_MILLIS: u64 = 500;

/// The longest wait before the next check that health-check makes inside its
/// invocation rather than in the state machine's Wait state, in seconds (the default of
/// `CANARY_CHECK_INLINE_MAX_WAIT_SECONDS`). Below it, a function of 128 MB waiting costs
/// less than the three state transitions of a Wait–check–Choice loop (the break-even is
/// about 45 s at 128 MB on arm64; statemachine/README.md has the numbers).
pub const CHECK_INLINE_MAX_WAIT_SECONDS: u64 = 30;

/// How long one health-check invocation goes on checking, in seconds from its start to
/// its last check (the default of `CANARY_CHECK_INLINE_BUDGET_SECONDS`); it stays well
/// below the function's timeout.
pub const CHECK_INLINE_BUDGET_SECONDS: u64 = 60;

/// The longest any of these settings may be: a Lambda invocation lasts at most 900 s,
/// and the task needs time after its waits.
pub const MAX_IN_INVOCATION_SECONDS: u64 = 840;

/// A number of seconds read from the environment variable `name` (`value` is what it
/// holds, if it is set): `default` when unset, otherwise a whole number from 0 to
/// [`MAX_IN_INVOCATION_SECONDS`]; the error names the variable and the value.
pub fn seconds_setting(name: &str, value: Option<&str>, default: u64) -> Result<u64, String> {
    let Some(raw) = value else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(n) if n <= MAX_IN_INVOCATION_SECONDS => Ok(n),
        _ => Err(format!(
            "environment variable {name} must be a whole number of seconds from 0 to \
             {MAX_IN_INVOCATION_SECONDS}, got `{raw}`"
        )),
    }
}

/// A duration as a person says it: `1h`, `1h 30m`, `45m`, `2m 5s`, `40s`, `2d 1h`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(40), "40s");
        assert_eq!(human_duration(3600), "1h");
        assert_eq!(human_duration(5400), "1h 30m");
        assert_eq!(human_duration(90_061), "1d 1h 1m 1s");
    }

    #[test]
    fn a_seconds_setting_is_its_default_when_unset_and_refuses_what_is_not_seconds() {
        assert_eq!(seconds_setting("X", None, 60), Ok(60));
        assert_eq!(seconds_setting("X", Some("15"), 60), Ok(15));
        assert_eq!(seconds_setting("X", Some(" 0 "), 60), Ok(0));
        for bad in ["", "-1", "1.5", "ten", "841"] {
            let e = seconds_setting("CANARY_X", Some(bad), 60).unwrap_err();
            assert!(
                e.contains("CANARY_X") && e.contains(&format!("`{bad}`")),
                "{e}"
            );
        }
    }
}
