//! Parsing deploy.json into a [`DeploySpec`]: the top-level fields (names, schedule,
//! timings, the image and the template), every problem collected, and the check that a
//! deployment fits in one Step Functions execution.

use base64::Engine as _;
use serde_json::Value;

use super::fields::{FIELDS, near, near_field};
use super::gates::parse_gates;
use super::health::parse_health;
use super::metrics::parse_metrics;
use super::reader::{Reader, kind};
use super::{
    DEFAULT_FAILURE_THRESHOLD_TIME, DEFAULT_READY_TIMEOUT, DEFAULT_ROUTE_CONFIRM_TIMEOUT,
    DeploySpec, FieldError, MAX_ROUTE_CONFIRM_TIMEOUT, MAX_SECONDS, MAX_VERSION, NO_COUNT_LIMIT,
    ParseOptions, SourceSpec, TrafficProvider, ValidationErrors,
};
use crate::names;

impl DeploySpec {
    /// Parses and validates deploy.json as the state machine receives it. `template`
    /// replaces `config_file` when given (a person keeping the template as a plain file).
    pub fn parse(doc: &Value, template: Option<&str>) -> Result<Self, ValidationErrors> {
        parse(
            doc,
            &ParseOptions {
                template,
                ..ParseOptions::default()
            },
        )
    }

    /// Parses and validates deploy.json with options (see [`ParseOptions`]).
    pub fn parse_with(doc: &Value, options: &ParseOptions<'_>) -> Result<Self, ValidationErrors> {
        parse(doc, options)
    }

    /// Parses deploy.json text.
    pub fn parse_str(text: &str, options: &ParseOptions<'_>) -> Result<Self, ValidationErrors> {
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            ValidationErrors(vec![FieldError::new(
                "deploy.json",
                None,
                format!("is not valid JSON: {e}"),
            )])
        })?;
        parse(&doc, options)
    }
}

/// Reads every field in the order its errors are reported, then builds the spec. It is
/// long because it is the one list of deploy.json's fields and their assembly; each
/// field's rules are in a helper.
fn parse(doc: &Value, options: &ParseOptions<'_>) -> Result<DeploySpec, ValidationErrors> {
    let Value::Object(map) = doc else {
        return Err(ValidationErrors(vec![FieldError::new(
            "deploy.json",
            Some(doc),
            format!("must be a JSON object, not {}", kind(doc)),
        )]));
    };
    let mut r = Reader {
        map,
        errors: Vec::new(),
    };

    unknown_fields(&mut r, map);
    let cluster_name = checked_name(&mut r, "cluster_name", names::check_cluster_name);
    let namespace = checked_name(&mut r, "kubernetes_namespace", |s| {
        names::check_dns_label(s, 63)
    });
    let service = checked_name(&mut r, "microservice_name", |s| {
        names::check_service_name(s, MAX_VERSION)
    });
    let (percentage_step, steps) = read_weights(&mut r);
    let v = r.required("wait_time", " (seconds between traffic shifts)");
    let wait_time = r.integer("wait_time", v, 0, MAX_SECONDS, " seconds");

    let (failure_threshold_value, failure_threshold_time) = read_failure_threshold(&mut r);
    let container_image = read_image(&mut r, options);
    let template = read_template(&mut r, options);
    let traffic_provider = read_provider(&mut r);
    let (check_interval, bake_time, ready_timeout) = read_timings(&mut r, wait_time);
    let v = r.get("route_confirm_timeout");
    let route_confirm_timeout = r
        .integer(
            "route_confirm_timeout",
            v,
            0,
            MAX_ROUTE_CONFIRM_TIMEOUT,
            " seconds (0: do not wait for the route controller)",
        )
        .unwrap_or(DEFAULT_ROUTE_CONFIRM_TIMEOUT);
    let weights = steps
        .clone()
        .or_else(|| percentage_step.map(crate::schedule::from_percentage_step));
    let gates = parse_gates(&mut r, weights.as_deref());
    let health = parse_health(&mut r, service.as_deref());
    let mut metrics = parse_metrics(&mut r);
    if let (Some(rule), Some(min)) = (metrics.compare.as_mut(), health.min_request_count) {
        rule.min_requests = min as f64;
    }
    // Judged on a rate or against the stable version, a count of errors is no rule
    // unless the user asked for one: the default count of 0 would fail a canary on its
    // first error whatever the rate, and a noisy stable version must not fail a good one.
    let rate_rules = metrics.compare.is_some() || health.max_error_rate.is_some();
    let failure_threshold_value = match (rate_rules, r.get("failure_threshold_value")) {
        (true, None) => NO_COUNT_LIMIT,
        _ => failure_threshold_value,
    };

    if metrics.compare.is_some()
        && matches!(metrics.source, SourceSpec::CloudWatch { .. })
        && health.version_dimension.is_none()
    {
        r.fail(
            "metrics.compare_to_stable",
            r.get("metrics").and_then(|m| m.get("compare_to_stable")),
            "needs per-version numbers: set `version_dimension` with source `cloudwatch`",
        );
    }

    if !r.errors.is_empty() {
        return Err(ValidationErrors(r.errors));
    }
    match (
        cluster_name,
        namespace,
        service,
        wait_time,
        container_image,
        template,
    ) {
        (
            Some(cluster_name),
            Some(kubernetes_namespace),
            Some(microservice_name),
            Some(wait_time),
            Some(container_image),
            Some(template),
        ) if percentage_step.is_some() || steps.is_some() => {
            let spec = DeploySpec {
                cluster_name,
                kubernetes_namespace,
                microservice_name,
                percentage_step,
                steps,
                wait_time,
                failure_threshold_value,
                failure_threshold_time,
                container_image,
                template,
                traffic_provider,
                check_interval,
                bake_time,
                ready_timeout,
                route_confirm_timeout,
                health,
                metrics,
                gates,
            };
            check_history_limit(&spec, map.get("check_interval"), map.get("gates"))?;
            Ok(spec)
        }
        _ => Err(ValidationErrors(vec![FieldError::new(
            "deploy.json",
            None,
            "is incomplete",
        )])),
    }
}

/// Every field that deploy.json does not know, with the nearest known name.
fn unknown_fields(r: &mut Reader<'_>, map: &serde_json::Map<String, Value>) {
    for (key, value) in map {
        if FIELDS.contains(&key.as_str()) {
            continue;
        }
        let hint = near_field(key)
            .map(|f| format!(" (did you mean `{f}`?)"))
            .unwrap_or_default();
        r.fail(key, Some(value), format!("is not a known field{hint}"));
    }
}

/// A required name field that must pass `check`.
fn checked_name(
    r: &mut Reader<'_>,
    field: &str,
    check: impl Fn(&str) -> Result<(), names::NameError>,
) -> Option<String> {
    let v = r.required(field, "");
    let name = r.string(field, v).map(str::to_owned);
    if let Some(n) = &name
        && let Err(why) = check(n)
    {
        r.fail(field, v, why.problem);
    }
    name
}

/// `percentage_step` or `steps`: exactly one of the two.
fn read_weights(r: &mut Reader<'_>) -> (Option<u8>, Option<Vec<u8>>) {
    let pv = r.get("percentage_step");
    let sv = r.get("steps");
    let percentage_step = r
        .integer("percentage_step", pv, 1, 100, " (percent)")
        .map(|p| p as u8);
    let steps = sv.and_then(|s| parse_steps(r, s));
    match (pv, sv) {
        (None, None) => r.fail(
            "percentage_step",
            None,
            "is required (or give `steps`, a list of weights)",
        ),
        (Some(p), Some(_)) => r.fail(
            "percentage_step",
            Some(p),
            "cannot be combined with `steps`: `steps` lists every weight, so keep one of the two",
        ),
        _ => {}
    }

    (percentage_step, steps)
}

/// `failure_threshold_value` (a whole number of 5xx responses) and
/// `failure_threshold_time`, with their defaults.
fn read_failure_threshold(r: &mut Reader<'_>) -> (f64, u64) {
    let v = r.get("failure_threshold_value");
    let failure_threshold_value = r
        .number("failure_threshold_value", v, 0.0, NO_COUNT_LIMIT)
        .unwrap_or(0.0);
    if let Some(x) = v.and_then(Value::as_f64)
        && x.fract() != 0.0
    {
        r.fail(
            "failure_threshold_value",
            v,
            "must be a whole number of 5xx responses",
        );
    }
    let v = r.get("failure_threshold_time");
    let failure_threshold_time = r
        .integer("failure_threshold_time", v, 1, MAX_SECONDS, " seconds")
        .unwrap_or(DEFAULT_FAILURE_THRESHOLD_TIME);

    (failure_threshold_value, failure_threshold_time)
}

/// `container_image` (or the image given on the command line).
fn read_image(r: &mut Reader<'_>, options: &ParseOptions<'_>) -> Option<String> {
    let image_override = options.image.map(|i| Value::String(i.to_owned()));
    if options.artifacts_optional && options.image.is_none() && r.get("container_image").is_none() {
        Some(String::new())
    } else {
        let v = match &image_override {
            Some(i) => Some(i),
            None => r.required(
                "container_image",
                " (the pipeline's build step adds it: `canary prepare --image URI`)",
            ),
        };
        let image = r.string("container_image", v).map(str::to_owned);
        if let Some(i) = &image
            && let Err(why) = names::check_image(i)
        {
            r.fail("container_image", v, why.problem);
        }
        image
    }
}

/// The template: given as plain text, or `config_file` decoded.
fn read_template(r: &mut Reader<'_>, options: &ParseOptions<'_>) -> Option<String> {
    match options.template {
        Some(t) => {
            if let Some(v) = r.get("config_file") {
                // A plain template file given on the command line wins; still check the field.
                let _ = decode_config_file(r, v);
            }
            Some(t.to_owned())
        }
        None if options.artifacts_optional && r.get("config_file").is_none() => Some(String::new()),
        None => {
            let v = r.required(
                "config_file",
                " (the base64 template; `canary prepare` adds it, or pass --template FILE)",
            );
            v.and_then(|v| decode_config_file(r, v))
        }
    }
}

/// `traffic_provider`, one of the registered providers' names.
fn read_provider(r: &mut Reader<'_>) -> Option<TrafficProvider> {
    let v = r.get("traffic_provider");
    r.string("traffic_provider", v).and_then(|s| {
        let p = TrafficProvider::named(s);
        if p.is_none() {
            let names = TrafficProvider::names();
            let hint = near(s, &names);
            let mut list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            let last = list.pop().unwrap_or_default();
            let choices = if list.is_empty() {
                last
            } else {
                format!("{} or {last}", list.join(", "))
            };
            r.fail("traffic_provider", v, format!("must be {choices}{hint}"));
        }
        p
    })
}

/// `check_interval` (not longer than `wait_time`), `bake_time` and `ready_timeout`.
fn read_timings(r: &mut Reader<'_>, wait_time: Option<u64>) -> (Option<u64>, Option<u64>, u64) {
    let v = r.get("check_interval");
    let check_interval = r.integer("check_interval", v, 1, MAX_SECONDS, " seconds");
    if let (Some(ci), Some(wt)) = (check_interval, wait_time)
        && ci > wt.max(1)
    {
        r.fail(
            "check_interval",
            v,
            format!("must not be longer than wait_time ({wt} s)"),
        );
    }
    let v = r.get("bake_time");
    let bake_time = r.integer("bake_time", v, 0, MAX_SECONDS, " seconds");
    let v = r.get("ready_timeout");
    let ready_timeout = r
        .integer("ready_timeout", v, 10, MAX_SECONDS, " seconds")
        .unwrap_or(DEFAULT_READY_TIMEOUT);

    (check_interval, bake_time, ready_timeout)
}

/// A deployment must fit in one Step Functions execution's history, its gates waiting
/// until their timeouts included.
fn check_history_limit(
    spec: &DeploySpec,
    check_interval: Option<&Value>,
    gates: Option<&Value>,
) -> Result<(), ValidationErrors> {
    let plan = crate::schedule::plan(spec);
    if plan.history_events <= crate::schedule::MAX_HISTORY_EVENTS {
        return Ok(());
    }
    let limit = crate::schedule::MAX_HISTORY_EVENTS;
    let error = if plan.gates.is_empty() {
        FieldError::new(
            "check_interval",
            check_interval,
            format!(
                "with wait_time {} s, bake_time {} s and checks every {} s, a deployment runs {} health checks (about {} Step Functions history events; an execution may have {limit}): check less often or shorten the steps",
                spec.wait_time,
                spec.bake_time(),
                spec.check_interval(),
                plan.checks,
                plan.history_events,
            ),
        )
    } else {
        let waiting: u64 = plan.gates.iter().map(|g| g.timeout_secs).sum();
        FieldError::new(
            "gates",
            gates,
            format!(
                "the gates may wait {waiting} s in all, checking every {} s: with the steps, a deployment may run {} health checks (about {} Step Functions history events; an execution may have {limit}): shorten the gates' timeouts or check less often",
                spec.check_interval(),
                plan.checks,
                plan.history_events,
            ),
        )
    };
    Err(ValidationErrors(vec![error]))
}

fn parse_steps<'a>(r: &mut Reader<'a>, v: &'a Value) -> Option<Vec<u8>> {
    let Value::Array(items) = v else {
        r.fail(
            "steps",
            Some(v),
            format!(
                "must be a list of weights like [10, 50, 100], not {}",
                kind(v)
            ),
        );
        return None;
    };
    if items.is_empty() {
        r.fail(
            "steps",
            Some(v),
            "must list at least one weight, ending at 100",
        );
        return None;
    }
    let before = r.errors.len();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(w) = r.integer(&format!("steps[{i}]"), Some(item), 1, 100, " (percent)") {
            if let Some(&prev) = out.last()
                && u64::from(prev) >= w
            {
                r.fail(
                    &format!("steps[{i}]"),
                    Some(item),
                    format!("must be greater than the weight before it ({prev})"),
                );
            }
            out.push(w as u8);
        }
    }
    if r.errors.len() == before && out.last() != Some(&100) {
        r.fail(
            "steps",
            Some(v),
            "must end at 100, so that the canary gets all the traffic",
        );
    }
    (r.errors.len() == before).then_some(out)
}

fn decode_config_file<'a>(r: &mut Reader<'a>, v: &'a Value) -> Option<String> {
    let Value::String(s) = v else {
        r.fail(
            "config_file",
            Some(v),
            format!("must be a base64 string, not {}", kind(v)),
        );
        return None;
    };
    let compact: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = match base64::engine::general_purpose::STANDARD.decode(&compact) {
        Ok(b) => b,
        Err(e) => {
            r.fail("config_file", Some(v), format!("is not base64: {e}"));
            return None;
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) if text.trim().is_empty() => {
            r.fail("config_file", Some(v), "decodes to an empty template");
            None
        }
        Ok(text) => Some(text),
        Err(e) => {
            r.fail(
                "config_file",
                Some(v),
                format!("is base64 but not of UTF-8 text: {e}"),
            );
            None
        }
    }
}
