//! Retry and Catch: which error names a clause matches, and how long a retrier waits
//! before the next attempt.
//!
//! Matching follows Step Functions: `States.ALL` matches every error except
//! `States.Runtime` (which nothing can retry or catch); `States.TaskFailed` matches
//! every task error except `States.Timeout`; any other name matches itself.

use serde_json::{Map, Value};

use crate::result_path::{ResultPath, ResultPathError};

/// Why a Retry or Catch clause was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClauseError {
    /// A field the clause does not have.
    #[error("unknown field `{key}`")]
    UnknownField { key: String },
    /// `ErrorEquals` is missing or not an array.
    #[error("`ErrorEquals` must be a non-empty array of error names")]
    ErrorEqualsNotArray,
    /// An error name that is not a string.
    #[error("error name {got} is not a string")]
    ErrorNameNotString { got: String },
    /// `ErrorEquals: []`.
    #[error("`ErrorEquals` must not be empty")]
    ErrorEqualsEmpty,
    /// `States.ALL` beside other names.
    #[error("`States.ALL` must be the only name in its ErrorEquals")]
    AllNotAlone,
    /// `States.ALL` in a clause that is not the last.
    #[error("clause {index} matches `States.ALL` but is not the last clause")]
    AllNotLast { index: usize },
    /// A field that must be a positive integer.
    #[error("{field} must be a positive integer, got {got}")]
    NotPositive { field: &'static str, got: String },
    /// A bad `MaxAttempts`.
    #[error("MaxAttempts must be a non-negative integer, got {got}")]
    MaxAttempts { got: String },
    /// A bad `BackoffRate`.
    #[error("BackoffRate must be a number of at least 1.0, got {got}")]
    BackoffRate { got: String },
    /// A bad `JitterStrategy`.
    #[error("JitterStrategy must be \"FULL\" or \"NONE\", got {got}")]
    JitterStrategy { got: String },
    /// A Catch clause without `Next`.
    #[error("a Catch clause needs a `Next` string")]
    NoNext,
    /// A bad `ResultPath` in a Catch clause.
    #[error(transparent)]
    ResultPath(#[from] ResultPathError),
}

/// The wildcard name.
pub(crate) const ALL: &str = "States.ALL";
/// Matches every task failure except a timeout.
pub(crate) const TASK_FAILED: &str = "States.TaskFailed";
/// A task ran longer than its TimeoutSeconds.
pub(crate) const TIMEOUT: &str = "States.Timeout";
/// An error in the execution itself (bad path, bad type): never retried or caught.
pub(crate) const RUNTIME: &str = "States.Runtime";

/// Whether a clause's `ErrorEquals` list matches `error`.
pub(crate) fn matches(error_equals: &[String], error: &str) -> bool {
    if error == RUNTIME {
        return false;
    }
    error_equals.iter().any(|name| match name.as_str() {
        ALL => true,
        TASK_FAILED => error != TIMEOUT,
        other => other == error,
    })
}

/// One Retry clause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Retrier {
    pub(crate) error_equals: Vec<String>,
    pub(crate) interval_seconds: f64,
    pub(crate) max_attempts: u32,
    pub(crate) backoff_rate: f64,
    pub(crate) max_delay_seconds: Option<f64>,
}

impl Retrier {
    /// The delay before retry number `retry` (1 for the first retry):
    /// `IntervalSeconds × BackoffRate^(retry-1)`, capped by `MaxDelaySeconds`.
    /// `JitterStrategy: FULL` would pick a random delay up to this one; the executor
    /// always waits the full delay so that runs are reproducible.
    pub(crate) fn delay_millis(&self, retry: u32) -> i64 {
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let mut seconds = self.interval_seconds * self.backoff_rate.powi(exponent);
        if let Some(max) = self.max_delay_seconds {
            seconds = seconds.min(max);
        }
        // Step Functions' own ceiling for a delay: one year.
        seconds = seconds.clamp(0.0, 31_622_400.0);
        (seconds * 1000.0).round() as i64
    }

    /// Parses one Retry clause.
    pub(crate) fn parse(map: &Map<String, Value>) -> Result<Self, ClauseError> {
        for key in map.keys() {
            if !matches!(
                key.as_str(),
                "ErrorEquals"
                    | "IntervalSeconds"
                    | "MaxAttempts"
                    | "BackoffRate"
                    | "MaxDelaySeconds"
                    | "JitterStrategy"
                    | "Comment"
            ) {
                return Err(ClauseError::UnknownField { key: key.clone() });
            }
        }
        let error_equals = error_equals(map)?;
        let interval_seconds = match map.get("IntervalSeconds") {
            None => 1.0,
            Some(v) => positive_integer(v, "IntervalSeconds")? as f64,
        };
        let max_attempts = match map.get("MaxAttempts") {
            None => 3,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ClauseError::MaxAttempts { got: v.to_string() })?,
        };
        let backoff_rate = match map.get("BackoffRate") {
            None => 2.0,
            Some(v) => match v.as_f64() {
                Some(rate) if rate >= 1.0 => rate,
                _ => {
                    return Err(ClauseError::BackoffRate { got: v.to_string() });
                }
            },
        };
        let max_delay_seconds = match map.get("MaxDelaySeconds") {
            None => None,
            Some(v) => Some(positive_integer(v, "MaxDelaySeconds")? as f64),
        };
        match map.get("JitterStrategy") {
            None => {}
            Some(Value::String(s)) if s == "FULL" || s == "NONE" => {}
            Some(v) => {
                return Err(ClauseError::JitterStrategy { got: v.to_string() });
            }
        }
        Ok(Self {
            error_equals,
            interval_seconds,
            max_attempts,
            backoff_rate,
            max_delay_seconds,
        })
    }
}

/// One Catch clause.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Catcher {
    pub(crate) error_equals: Vec<String>,
    pub(crate) result_path: ResultPath,
    pub(crate) next: String,
}

impl Catcher {
    /// Parses one Catch clause (the caller checks that `Next` exists).
    pub(crate) fn parse(map: &Map<String, Value>) -> Result<Self, ClauseError> {
        for key in map.keys() {
            if !matches!(
                key.as_str(),
                "ErrorEquals" | "ResultPath" | "Next" | "Comment"
            ) {
                return Err(ClauseError::UnknownField { key: key.clone() });
            }
        }
        let error_equals = error_equals(map)?;
        let Some(Value::String(next)) = map.get("Next") else {
            return Err(ClauseError::NoNext);
        };
        let result_path = ResultPath::parse(map.get("ResultPath"))?;
        Ok(Self {
            error_equals,
            result_path,
            next: next.clone(),
        })
    }
}

fn error_equals(map: &Map<String, Value>) -> Result<Vec<String>, ClauseError> {
    let Some(Value::Array(items)) = map.get("ErrorEquals") else {
        return Err(ClauseError::ErrorEqualsNotArray);
    };
    let names = items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| ClauseError::ErrorNameNotString { got: v.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if names.is_empty() {
        return Err(ClauseError::ErrorEqualsEmpty);
    }
    if names.iter().any(|n| n == ALL) && names.len() > 1 {
        return Err(ClauseError::AllNotAlone);
    }
    Ok(names)
}

fn positive_integer(v: &Value, field: &'static str) -> Result<u64, ClauseError> {
    match v.as_u64() {
        Some(n) if n >= 1 => Ok(n),
        _ => Err(ClauseError::NotPositive {
            field,
            got: v.to_string(),
        }),
    }
}

/// Checks that `States.ALL`, where present, is in the last clause of a list.
pub(crate) fn all_is_last<'a>(
    lists: impl Iterator<Item = &'a [String]>,
) -> Result<(), ClauseError> {
    let lists: Vec<&[String]> = lists.collect();
    for (i, names) in lists.iter().enumerate() {
        if names.iter().any(|n| n == ALL) && i + 1 != lists.len() {
            return Err(ClauseError::AllNotLast { index: i });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn error_names_match_as_step_functions_matches_them() {
        let cases = [
            (vec!["States.ALL"], "KubeError", true),
            (vec!["States.ALL"], "States.Timeout", true),
            (vec!["States.ALL"], "States.Runtime", false),
            (vec!["States.TaskFailed"], "Lambda.Unknown", true),
            (vec!["States.TaskFailed"], "States.Timeout", false),
            (
                vec!["KubeTransient", "StoreTransient"],
                "StoreTransient",
                true,
            ),
            (vec!["KubeTransient"], "KubeError", false),
            (vec!["States.Timeout"], "States.Timeout", true),
        ];
        for (list, error, expected) in cases {
            assert_eq!(
                matches(&names(&list), error),
                expected,
                "{list:?} vs {error}"
            );
        }
    }

    #[test]
    fn retry_delays_grow_by_the_backoff_rate_up_to_the_cap() {
        let Value::Object(m) = json!({
            "ErrorEquals": ["X"], "IntervalSeconds": 2, "BackoffRate": 2.0,
            "MaxAttempts": 6, "MaxDelaySeconds": 10, "JitterStrategy": "FULL"
        }) else {
            unreachable!()
        };
        let r = Retrier::parse(&m).unwrap();
        let delays: Vec<i64> = (1..=5).map(|n| r.delay_millis(n)).collect();
        assert_eq!(delays, vec![2_000, 4_000, 8_000, 10_000, 10_000]);
    }

    #[test]
    fn a_retrier_without_fields_uses_the_step_functions_defaults() {
        let Value::Object(m) = json!({"ErrorEquals": ["X"]}) else {
            unreachable!()
        };
        let r = Retrier::parse(&m).unwrap();
        assert_eq!(
            (r.interval_seconds, r.max_attempts, r.backoff_rate),
            (1.0, 3, 2.0)
        );
        assert_eq!(r.delay_millis(3), 4_000);
    }

    #[test]
    fn malformed_clauses_are_rejected() {
        for bad in [
            json!({"ErrorEquals": []}),
            json!({"ErrorEquals": ["States.ALL", "X"]}),
            json!({"ErrorEquals": ["X"], "BackoffRate": 0.5}),
            json!({"ErrorEquals": ["X"], "IntervalSeconds": 0}),
            json!({"ErrorEquals": ["X"], "MaxAttempts": -1}),
            json!({"ErrorEquals": ["X"], "JitterStrategy": "SOME"}),
            json!({"ErrorEquals": ["X"], "Intervalseconds": 1}),
        ] {
            let Value::Object(m) = &bad else {
                unreachable!()
            };
            assert!(Retrier::parse(m).is_err(), "{bad}");
        }
        let Value::Object(m) = json!({"ErrorEquals": ["X"]}) else {
            unreachable!()
        };
        assert!(Catcher::parse(&m).is_err(), "a Catch without Next");
    }

    #[test]
    fn states_all_must_be_in_the_last_clause() {
        let all = names(&["States.ALL"]);
        let x = names(&["X"]);
        assert!(all_is_last([x.as_slice(), all.as_slice()].into_iter()).is_ok());
        assert!(all_is_last([all.as_slice(), x.as_slice()].into_iter()).is_err());
    }
}
