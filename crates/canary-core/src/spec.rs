//! deploy.json: the contract a microservice's pipeline hands to the state machine.
//!
//! Every field of the original design keeps its name, meaning and default. New fields
//! are optional. Parsing reports every problem at once, each naming the field and
//! quoting the value, and rejects unknown fields with the nearest known name.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::names;

/// The CloudWatch namespace of the original design's metric filters.
pub const DEFAULT_METRIC_NAMESPACE: &str = "EnvoyPrometheus/ResponseCode";
/// The original's default for `failure_threshold_time`, in seconds.
pub const DEFAULT_FAILURE_THRESHOLD_TIME: u64 = 600;
/// Default time for the new Deployment to become ready, in seconds.
pub const DEFAULT_READY_TIMEOUT: u64 = 600;
/// Default number of consecutive `hold` verdicts before the canary is rolled back.
pub const DEFAULT_MAX_HOLDS: u32 = 3;
/// The longest wait, window or bake this tool accepts: one day, in seconds.
pub const MAX_SECONDS: u64 = 86_400;
/// The highest version number that names are checked to fit with.
pub const MAX_VERSION: u32 = 99_999;

pub use crate::provider::TrafficProvider;

/// What a health check does when it saw fewer requests than `min_request_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NoDataPolicy {
    /// Too little traffic is a failure: roll back.
    #[default]
    Fail,
    /// Too little traffic passes.
    Pass,
    /// Do not advance; check again, and roll back after `max_holds` holds in a row.
    Hold,
}

/// How the canary's health is judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthSpec {
    /// Largest accepted 5xx share of requests, in percent.
    pub max_error_rate: Option<f64>,
    /// Fewest requests a window must hold to be judged on its numbers.
    pub min_request_count: Option<u64>,
    /// What too little traffic means.
    pub no_data: NoDataPolicy,
    /// Holds in a row before rolling back.
    pub max_holds: u32,
    /// CloudWatch namespace of the metrics.
    pub metric_namespace: String,
    /// Metric that counts 5xx responses.
    pub error_metric: String,
    /// Metric that counts 2xx responses.
    pub success_metric: String,
    /// Dimensions added to every query.
    pub dimensions: BTreeMap<String, String>,
    /// A dimension whose value is the pod's controller name (`<service>-<version>`), so
    /// the canary is judged on its own numbers.
    pub version_dimension: Option<String>,
}

/// A validated deploy.json.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploySpec {
    pub cluster_name: String,
    pub kubernetes_namespace: String,
    pub microservice_name: String,
    /// Canary increment in percent (`steps` replaces it).
    pub percentage_step: Option<u8>,
    /// Explicit canary weights, strictly increasing, ending at 100.
    pub steps: Option<Vec<u8>>,
    /// Seconds between traffic shifts.
    pub wait_time: u64,
    /// Most 5xx responses accepted in the window (default 0).
    pub failure_threshold_value: f64,
    /// The window of a health check, in seconds (default 600).
    pub failure_threshold_time: u64,
    /// The image of the new version.
    pub container_image: String,
    /// The decoded Kubernetes template (`config_file`, or a file given on the command line).
    pub template: String,
    /// The provider, if deploy.json names one; otherwise it comes from the template.
    pub traffic_provider: Option<TrafficProvider>,
    check_interval: Option<u64>,
    bake_time: Option<u64>,
    /// Seconds the new Deployment has to become ready.
    pub ready_timeout: u64,
    pub health: HealthSpec,
}

impl DeploySpec {
    /// Seconds between health checks within a step (default: `wait_time`, at most 60).
    pub fn check_interval(&self) -> u64 {
        self.check_interval
            .unwrap_or_else(|| self.wait_time.clamp(1, 60))
            .max(1)
    }

    /// Seconds the canary stays at 100% before the old version is removed. The default
    /// is `wait_time`, but at least one check interval plus the time a metric datapoint
    /// takes to become visible (two periods: the minute it covers, and its publication),
    /// so that a failure that starts near the end of the rollout is still seen before
    /// the old version goes.
    pub fn bake_time(&self) -> u64 {
        self.bake_time.unwrap_or_else(|| {
            self.wait_time
                .max(self.check_interval() + crate::schedule::METRIC_VISIBILITY_SECS)
        })
    }

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

/// How to read a deploy.json that a person holds, before the pipeline's build step has
/// added the image and the template.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions<'a> {
    /// The template as plain text; replaces `config_file`.
    pub template: Option<&'a str>,
    /// The image; replaces `container_image`.
    pub image: Option<&'a str>,
    /// Accept a deploy.json without `container_image` and `config_file` (for `canary
    /// plan`, which needs only the timings); they are then empty strings.
    pub artifacts_optional: bool,
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field (`percentage_step`, `steps[2]`, `config_file`, ...).
    pub field: String,
    /// The offending value as JSON, when there is one.
    pub value: Option<String>,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        value: Option<&Value>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: value.map(quote),
            message: message.into(),
        }
    }
}

fn quote(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "`{}` = {v}: {}", self.field, self.message),
            None => write!(f, "`{}`: {}", self.field, self.message),
        }
    }
}

/// Every problem found in one deploy.json.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "deploy.json has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

/// Every field deploy.json may hold.
pub const FIELDS: &[&str] = &[
    "cluster_name",
    "kubernetes_namespace",
    "microservice_name",
    "percentage_step",
    "steps",
    "wait_time",
    "failure_threshold_value",
    "failure_threshold_time",
    "container_image",
    "config_file",
    "traffic_provider",
    "check_interval",
    "bake_time",
    "ready_timeout",
    "max_error_rate",
    "min_request_count",
    "no_data",
    "max_holds",
    "metric_namespace",
    "error_metric_name",
    "success_metric_name",
    "metric_dimensions",
    "version_dimension",
];

struct Reader<'a> {
    map: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    fn fail(&mut self, field: &str, value: Option<&Value>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, value, message));
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn required(&mut self, field: &str, hint: &str) -> Option<&'a Value> {
        let v = self.get(field);
        if v.is_none() {
            self.fail(field, None, format!("is required{hint}"));
        }
        v
    }

    fn string<'b>(&mut self, field: &str, v: Option<&'b Value>) -> Option<&'b str> {
        match v? {
            Value::String(s) => Some(s),
            other => {
                self.fail(
                    field,
                    Some(other),
                    format!("must be a string, not {}", kind(other)),
                );
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    fn integer(
        &mut self,
        field: &str,
        v: Option<&Value>,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Option<u64> {
        let v = v?;
        let n = match v {
            Value::Number(n) => n,
            other => {
                self.fail(
                    field,
                    Some(other),
                    format!("must be a whole number{unit}, not {}", kind(other)),
                );
                return None;
            }
        };
        let Some(i) = n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
        else {
            self.fail(field, Some(v), format!("must be a whole number{unit}"));
            return None;
        };
        if i < i128::from(min) || i > i128::from(max) {
            self.fail(
                field,
                Some(v),
                format!("must be between {min} and {max}{unit}"),
            );
            return None;
        }
        u64::try_from(i).ok()
    }

    fn number(&mut self, field: &str, v: Option<&Value>, min: f64, max: f64) -> Option<f64> {
        let v = v?;
        let Some(x) = v.as_f64() else {
            self.fail(field, Some(v), format!("must be a number, not {}", kind(v)));
            return None;
        };
        if !(min..=max).contains(&x) {
            self.fail(field, Some(v), format!("must be between {min} and {max}"));
            return None;
        }
        Some(x)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The known field nearest to an unknown one, if it is near enough to be a typo.
pub fn near_field(unknown: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|f| (strsim::damerau_levenshtein(unknown, f), *f))
        .filter(|(d, f)| *d <= 3.max(f.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
        .or_else(|| {
            FIELDS
                .iter()
                .map(|f| (strsim::jaro_winkler(unknown, f), *f))
                .filter(|(s, _)| *s >= 0.9)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, f)| f)
        })
}

fn parse(doc: &Value, options: &ParseOptions<'_>) -> Result<DeploySpec, ValidationErrors> {
    let template = options.template;
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

    for (key, value) in map {
        if FIELDS.contains(&key.as_str()) {
            continue;
        }
        let hint = near_field(key)
            .map(|f| format!(" (did you mean `{f}`?)"))
            .unwrap_or_default();
        r.fail(key, Some(value), format!("is not a known field{hint}"));
    }

    let v = r.required("cluster_name", "");
    let cluster_name = r.string("cluster_name", v).map(str::to_owned);
    if let Some(name) = &cluster_name
        && let Err(why) = names::check_cluster_name(name)
    {
        r.fail("cluster_name", v, why);
    }

    let v = r.required("kubernetes_namespace", "");
    let namespace = r.string("kubernetes_namespace", v).map(str::to_owned);
    if let Some(ns) = &namespace
        && let Err(why) = names::check_dns_label(ns, 63)
    {
        r.fail("kubernetes_namespace", v, why);
    }

    let v = r.required("microservice_name", "");
    let service = r.string("microservice_name", v).map(str::to_owned);
    if let Some(name) = &service
        && let Err(why) = names::check_service_name(name, MAX_VERSION)
    {
        r.fail("microservice_name", v, why);
    }

    let pv = r.get("percentage_step");
    let sv = r.get("steps");
    let percentage_step = r
        .integer("percentage_step", pv, 1, 100, " (percent)")
        .map(|p| p as u8);
    let steps = sv.and_then(|s| parse_steps(&mut r, s));
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

    let v = r.required("wait_time", " (seconds between traffic shifts)");
    let wait_time = r.integer("wait_time", v, 0, MAX_SECONDS, " seconds");

    let v = r.get("failure_threshold_value");
    let failure_threshold_value = r
        .number("failure_threshold_value", v, 0.0, 1e12)
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

    let image_override = options.image.map(|i| Value::String(i.to_owned()));
    let container_image = if options.artifacts_optional
        && options.image.is_none()
        && r.get("container_image").is_none()
    {
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
            r.fail("container_image", v, why);
        }
        image
    };

    let template = match template {
        Some(t) => {
            if let Some(v) = r.get("config_file") {
                // A plain template file given on the command line wins; still check the field.
                let _ = decode_config_file(&mut r, v);
            }
            Some(t.to_owned())
        }
        None if options.artifacts_optional && r.get("config_file").is_none() => Some(String::new()),
        None => {
            let v = r.required(
                "config_file",
                " (the base64 template; `canary prepare` adds it, or pass --template FILE)",
            );
            v.and_then(|v| decode_config_file(&mut r, v))
        }
    };

    let v = r.get("traffic_provider");
    let traffic_provider = r.string("traffic_provider", v).and_then(|s| {
        let p = TrafficProvider::named(s);
        if p.is_none() {
            let names = TrafficProvider::names();
            let hint = near(s, &names);
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            r.fail(
                "traffic_provider",
                v,
                format!("must be one of {}{hint}", list.join(", ")),
            );
        }
        p
    });

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

    let health = parse_health(&mut r, service.as_deref());

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
                health,
            };
            check_history_limit(&spec, map.get("check_interval"))?;
            Ok(spec)
        }
        _ => Err(ValidationErrors(vec![FieldError::new(
            "deploy.json",
            None,
            "is incomplete",
        )])),
    }
}

/// A deployment must fit in one Step Functions execution's history.
fn check_history_limit(
    spec: &DeploySpec,
    check_interval: Option<&Value>,
) -> Result<(), ValidationErrors> {
    let plan = crate::schedule::plan(spec);
    if plan.history_events <= crate::schedule::MAX_HISTORY_EVENTS {
        return Ok(());
    }
    Err(ValidationErrors(vec![FieldError::new(
        "check_interval",
        check_interval,
        format!(
            "with wait_time {} s, bake_time {} s and checks every {} s, a deployment runs {} health checks (about {} Step Functions history events; an execution may have {}): check less often or shorten the steps",
            spec.wait_time,
            spec.bake_time(),
            spec.check_interval(),
            plan.checks,
            plan.history_events,
            crate::schedule::MAX_HISTORY_EVENTS
        ),
    )]))
}

fn near(value: &str, choices: &[&str]) -> String {
    choices
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&value.to_ascii_lowercase(), c),
                *c,
            )
        })
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
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

fn parse_health(r: &mut Reader<'_>, service: Option<&str>) -> HealthSpec {
    let v = r.get("max_error_rate");
    let max_error_rate = r.number("max_error_rate", v, 0.0, 100.0);
    let v = r.get("min_request_count");
    let min_request_count = r.integer("min_request_count", v, 1, 1_000_000_000_000, " requests");

    let v = r.get("no_data");
    let no_data = match r.string("no_data", v) {
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
    if v.is_some() && min_request_count.is_none() && r.get("min_request_count").is_none() {
        r.fail(
            "no_data",
            v,
            "needs `min_request_count`: it says what fewer requests than that mean",
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
                if let Some(vd) = &version_dimension
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
