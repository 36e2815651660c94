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
