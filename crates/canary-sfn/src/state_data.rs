//! Reading a state's data while an execution runs: the InputPath/OutputPath filters,
//! the moment a Wait state ends, a Fail state's texts, and the time formats of the
//! context object. The errors are the `Cause` of a `States.Runtime` failure, as Step
//! Functions reports it.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::choice;
use crate::definition::{FailText, FilterPath, WaitFor};

pub(crate) fn filter(path: &FilterPath, value: &Value, field: &str) -> Result<Value, String> {
    match path {
        FilterPath::Whole => Ok(value.clone()),
        FilterPath::Empty => Ok(Value::Object(Map::new())),
        FilterPath::Path(p) if p.is_context() => {
            Err(format!("{field} `{p}` cannot read the context object"))
        }
        FilterPath::Path(p) => p
            .get(value)
            .cloned()
            .ok_or_else(|| format!("{field} `{p}` names nothing in the state's data")),
    }
}

pub(crate) fn wait_millis(wait: &WaitFor, input: &Value, now: i64) -> Result<i64, String> {
    let until = |ts: OffsetDateTime| {
        let target = i64::try_from(ts.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        Ok((target - now).max(0))
    };
    match wait {
        WaitFor::Seconds(s) => Ok(seconds_to_millis(*s)),
        WaitFor::SecondsPath(p) => {
            let value = p
                .get(input)
                .ok_or_else(|| format!("SecondsPath `{p}` names nothing in the input"))?;
            let seconds = value
                .as_u64()
                .or_else(|| {
                    value
                        .as_f64()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                        .map(|f| f as u64)
                })
                .ok_or_else(|| {
                    format!("SecondsPath `{p}` must name a non-negative integer, found {value}")
                })?;
            Ok(seconds_to_millis(seconds))
        }
        WaitFor::Timestamp(ts) => until(*ts),
        WaitFor::TimestampPath(p) => {
            let value = p
                .get(input)
                .ok_or_else(|| format!("TimestampPath `{p}` names nothing in the input"))?;
            let ts = choice::timestamp(value).ok_or_else(|| {
                format!("TimestampPath `{p}` must name an RFC 3339 timestamp, found {value}")
            })?;
            until(ts)
        }
    }
}

pub(crate) fn fail_text(text: &FailText, input: &Value, field: &str) -> Result<String, String> {
    match text {
        FailText::None => Ok(String::new()),
        FailText::Static(s) => Ok(s.clone()),
        FailText::Path(p) => match p.get(input) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("{field} `{p}` must name a string, found {other}")),
            None => Err(format!(
                "{field} `{p}` names nothing in the Fail state's input"
            )),
        },
    }
}

pub(crate) fn seconds_to_millis(seconds: u64) -> i64 {
    i64::try_from(seconds)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

pub(crate) fn iso(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}
