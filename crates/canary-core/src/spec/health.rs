//! The health-check fields of deploy.json: thresholds, the no-data policy and the
//! metrics to query.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fields::near;
use super::reader::{Reader, kind};
use super::{DEFAULT_MAX_HOLDS, DEFAULT_METRIC_NAMESPACE, HealthSpec, NoDataPolicy};

pub(super) fn parse_health(r: &mut Reader<'_>, service: Option<&str>) -> HealthSpec {
    let v = r.get("max_error_rate");
    let max_error_rate = r.number("max_error_rate", v, 0.0, 100.0);
    let v = r.get("min_request_count");
    let min_request_count = r.integer("min_request_count", v, 1, 1_000_000_000_000, " requests");

    let compares = r
        .get("metrics")
        .and_then(|m| m.get("compare_to_stable"))
        .is_some_and(|c| c != &Value::Bool(false));
    let v = r.get("no_data");
    let no_data = match r.string("no_data", v) {
        // Too few requests to compare is usual in a step's first checks at low
        // traffic: without a `no_data` of their own, comparisons wait for more.
        None if compares => NoDataPolicy::Hold,
        None => NoDataPolicy::default(),
        Some(s) => match s {
            "fail" => NoDataPolicy::Fail,
            "pass" => NoDataPolicy::Pass,
            "hold" => NoDataPolicy::Hold,
            other => {
                let hint = near(other, &["fail", "pass", "hold"]);
                r.fail(
                    "no_data",
                    v,
                    format!("must be `fail`, `pass` or `hold`{hint}"),
                );
                NoDataPolicy::default()
            }
        },
    };
    if v.is_some()
        && min_request_count.is_none()
        && r.get("min_request_count").is_none()
        && !compares
    {
        r.fail(
            "no_data",
            v,
            "needs `min_request_count` or `metrics.compare_to_stable`: it says what too few requests mean",
        );
    }
    let v = r.get("max_holds");
    let max_holds = r
        .integer("max_holds", v, 1, 1000, " checks")
        .map(|n| n as u32);
    if v.is_some() && no_data != NoDataPolicy::Hold {
        r.fail("max_holds", v, "only applies when `no_data` is `hold`");
    }

    let metric_name = |r: &mut Reader<'_>, field: &str, default: String| -> String {
        let v = r.get(field);
        match r.string(field, v) {
            Some(s) if s.is_empty() || s.len() > 255 => {
                r.fail(field, v, "must be 1 to 255 characters");
                default
            }
            Some(s) => s.to_owned(),
            None => default,
        }
    };
    let svc = service.unwrap_or_default();
    let metric_namespace = metric_name(r, "metric_namespace", DEFAULT_METRIC_NAMESPACE.into());
    let error_metric = metric_name(r, "error_metric_name", format!("5xx-{svc}"));
    let success_metric = metric_name(r, "success_metric_name", format!("2xx-{svc}"));
    let version_dimension = r.get("version_dimension").and_then(|v| {
        let s = r.string("version_dimension", Some(v))?;
        if s.is_empty() || s.len() > 255 {
            r.fail("version_dimension", Some(v), "must be 1 to 255 characters");
            return None;
        }
        Some(s.to_owned())
    });

    let dimensions = read_dimensions(r, version_dimension.as_deref());

    HealthSpec {
        max_error_rate,
        min_request_count,
        no_data,
        max_holds: max_holds.unwrap_or(DEFAULT_MAX_HOLDS),
        metric_namespace,
        error_metric,
        success_metric,
        dimensions,
        version_dimension,
    }
}

/// `metric_dimensions`: at most 29 name/value strings, not including
/// `version_dimension` (which is filled per version).
fn read_dimensions(
    r: &mut Reader<'_>,
    version_dimension: Option<&str>,
) -> BTreeMap<String, String> {
    let mut dimensions = BTreeMap::new();
    if let Some(v) = r.get("metric_dimensions") {
        match v {
            Value::Object(m) => {
                if m.len() > 29 {
                    r.fail("metric_dimensions", Some(v), "may hold at most 29 dimensions (CloudWatch allows 30, one is kept for version_dimension)");
                }
                for (k, val) in m {
                    let field = format!("metric_dimensions.{k}");
                    match val {
                        Value::String(s)
                            if !k.is_empty()
                                && !s.is_empty()
                                && k.len() <= 255
                                && s.len() <= 1024 =>
                        {
                            dimensions.insert(k.clone(), s.clone());
                        }
                        Value::String(_) => r.fail(
                            &field,
                            Some(val),
                            "names must be 1-255 and values 1-1024 characters",
                        ),
                        other => r.fail(
                            &field,
                            Some(other),
                            format!("must be a string, not {}", kind(other)),
                        ),
                    }
                }
                if let Some(vd) = version_dimension
                    && m.contains_key(vd)
                {
                    r.fail(
                        "metric_dimensions",
                        Some(v),
                        format!("must not also set `{vd}`: version_dimension fills it"),
                    );
                }
            }
            other => r.fail(
                "metric_dimensions",
                Some(other),
                format!("must be an object of name: value, not {}", kind(other)),
            ),
        }
    }

    dimensions
}
