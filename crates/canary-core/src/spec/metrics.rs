//! The optional `metrics` section of deploy.json: where the health numbers come from
//! (CloudWatch as in the original design, Prometheus / Amazon Managed Service for
//! Prometheus, or VPC Lattice's own metrics), and the rules that need more than a 5xx
//! count: latency at a quantile, and the canary judged against the stable version.
//!
//! Without the section nothing changes: CloudWatch with the top-level metric fields and
//! the original rule. The verdict rules at the top level (`failure_threshold_value`,
//! `max_error_rate`, `min_request_count`, `no_data`, `max_holds`) apply to every source.
//!
//! PromQL templates may use `{namespace}`, `{service}`, `{workload}` (the version's
//! Deployment, `<service>-<version>`), `{window}` (e.g. `600s`) and `{quantile}` (latency
//! only). The values come from validated fields (DNS labels, numbers), so none can
//! change a query's shape; any other `{...}` is an error naming the query.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::fields::near;
pub use super::prometheus::{
    PRESETS, PROMQL_PLACEHOLDERS, PromQueries, PrometheusAuth, PrometheusSpec, aps_region,
    fill_promql,
};
use super::prometheus::{check_template, read_prometheus};
use super::reader::{Reader, kind};
use crate::compare::CompareRule;

/// The keys of the `metrics` section that belong to one source only.
const CLOUDWATCH_KEYS: &[&str] = &["latency_metric_name"];
const PROMETHEUS_KEYS: &[&str] = &[
    "url",
    "auth",
    "credentials_env",
    "region",
    "preset",
    "queries",
];
const LATTICE_KEYS: &[&str] = &["target_group_names"];

/// The keys of the `metrics` section that apply to every source.
const COMMON_KEYS: &[&str] = &[
    "source",
    "max_latency_ms",
    "latency_quantile",
    "compare_to_stable",
];

/// Every key the `metrics` section may hold: the common ones and each source's own.
fn metrics_fields() -> Vec<&'static str> {
    [COMMON_KEYS, CLOUDWATCH_KEYS, PROMETHEUS_KEYS, LATTICE_KEYS].concat()
}

/// Default quantile of `max_latency_ms`.
pub const DEFAULT_LATENCY_QUANTILE: f64 = 0.99;
/// Default margin of `compare_to_stable`, in percentage points.
pub const DEFAULT_COMPARE_MARGIN: f64 = 1.0;
/// Default confidence of `compare_to_stable`.
pub const DEFAULT_COMPARE_CONFIDENCE: f64 = 0.95;
/// Fewest requests per version for a comparison when `min_request_count` is not set.
pub const DEFAULT_COMPARE_MIN_REQUESTS: f64 = 50.0;

/// The `metrics` section, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSpec {
    /// Where the numbers come from.
    pub source: SourceSpec,
    /// Unhealthy when the canary's latency at `quantile` is above `max_ms`.
    pub latency: Option<LatencyRule>,
    /// Judge the canary's error rate against the stable version's.
    pub compare: Option<CompareRule>,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        Self {
            source: SourceSpec::CloudWatch {
                latency_metric: None,
            },
            latency: None,
            compare: None,
        }
    }
}

/// A metrics source and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum SourceSpec {
    /// CloudWatch GetMetricData with the top-level metric fields (the original design).
    CloudWatch {
        /// A CloudWatch metric of request latency in milliseconds, same namespace and
        /// dimensions (for `max_latency_ms`).
        latency_metric: Option<String>,
    },
    /// The Prometheus HTTP API (`/api/v1/query`), self-managed or Amazon Managed
    /// Service for Prometheus.
    Prometheus(PrometheusSpec),
    /// VPC Lattice's CloudWatch metrics per target group (`AWS/VpcLattice`).
    Lattice(LatticeSpec),
}

impl SourceSpec {
    /// The source's name in deploy.json.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CloudWatch { .. } => "cloudwatch",
            Self::Prometheus(_) => "prometheus",
            Self::Lattice(_) => "lattice",
        }
    }

    /// Whether reading it needs AWS credentials (CloudWatch, VPC Lattice, and Amazon
    /// Managed Service for Prometheus).
    pub fn needs_aws(&self) -> bool {
        match self {
            Self::Prometheus(p) => matches!(p.auth, PrometheusAuth::Sigv4 { .. }),
            Self::CloudWatch { .. } | Self::Lattice(_) => true,
        }
    }
}

/// How to find each version's VPC Lattice target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatticeSpec {
    /// A target group name template with `{namespace}`, `{service}` and `{workload}`,
    /// when the target groups are not the AWS Gateway API Controller's (which are found
    /// by their tags).
    pub target_group_names: Option<String>,
}

/// The latency rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyRule {
    /// Highest accepted latency, in milliseconds.
    pub max_ms: f64,
    /// The quantile it is measured at (0.99 = p99).
    pub quantile: f64,
}

/// Validates a `metrics` section on its own (the value of deploy.json's `metrics`).
pub fn parse_metrics_section(section: &Value) -> Result<MetricsSpec, super::ValidationErrors> {
    let mut map = Map::new();
    map.insert("metrics".into(), section.clone());
    let mut r = Reader {
        map: &map,
        errors: Vec::new(),
    };
    let spec = parse_metrics(&mut r);
    if r.errors.is_empty() {
        Ok(spec)
    } else {
        Err(super::ValidationErrors(r.errors))
    }
}

/// Reads the `metrics` section (absent: CloudWatch, no extra rules).
pub(super) fn parse_metrics(r: &mut Reader<'_>) -> MetricsSpec {
    let Some(v) = r.get("metrics") else {
        return MetricsSpec::default();
    };
    let Value::Object(map) = v else {
        r.fail(
            "metrics",
            Some(v),
            format!("must be an object, not {}", kind(v)),
        );
        return MetricsSpec::default();
    };
    let mut m = Reader {
        map,
        errors: Vec::new(),
    };
    let known = metrics_fields();
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            let hint = near(key, &known);
            m.fail(
                &format!("metrics.{key}"),
                None,
                format!("is not a known field{hint}"),
            );
        }
    }
    let source_v = m.get("source");
    let source_name = m.string("metrics.source", source_v).unwrap_or("cloudwatch");
    let source = match source_name {
        "cloudwatch" => read_cloudwatch(&mut m),
        "prometheus" => SourceSpec::Prometheus(read_prometheus(&mut m)),
        "lattice" => SourceSpec::Lattice(LatticeSpec {
            target_group_names: read_template_field(
                &mut m,
                "target_group_names",
                &["namespace", "service", "workload"],
            ),
        }),
        other => {
            let choices = ["cloudwatch", "prometheus", "lattice"];
            let hint = near(other, &choices);
            m.fail(
                "metrics.source",
                source_v,
                format!("must be `cloudwatch`, `prometheus` or `lattice`{hint}"),
            );
            SourceSpec::CloudWatch {
                latency_metric: None,
            }
        }
    };
    refuse_foreign_keys(&mut m, &source);
    let latency = read_latency(&mut m, &source);
    let compare = read_compare(&mut m);
    r.errors.append(&mut m.errors);
    MetricsSpec {
        source,
        latency,
        compare,
    }
}

/// Keys that belong to another source are errors, not silently ignored settings.
fn refuse_foreign_keys(m: &mut Reader<'_>, source: &SourceSpec) {
    let own = match source {
        SourceSpec::CloudWatch { .. } => CLOUDWATCH_KEYS,
        SourceSpec::Prometheus(_) => PROMETHEUS_KEYS,
        SourceSpec::Lattice(_) => LATTICE_KEYS,
    };
    for key in [CLOUDWATCH_KEYS, PROMETHEUS_KEYS, LATTICE_KEYS].concat() {
        if !own.contains(&key)
            && let Some(v) = m.get(key)
        {
            m.fail(
                &format!("metrics.{key}"),
                Some(v),
                format!("does not apply to source `{}`", source.name()),
            );
        }
    }
}

fn read_cloudwatch(m: &mut Reader<'_>) -> SourceSpec {
    let v = m.get("latency_metric_name");
    let latency_metric = m.string("metrics.latency_metric_name", v).and_then(|s| {
        if s.is_empty() || s.len() > 255 {
            m.fail(
                "metrics.latency_metric_name",
                v,
                "must be 1 to 255 characters",
            );
            None
        } else {
            Some(s.to_owned())
        }
    });
    SourceSpec::CloudWatch { latency_metric }
}

fn read_template_field(m: &mut Reader<'_>, key: &str, allowed: &[&str]) -> Option<String> {
    let v = m.get(key);
    let field = format!("metrics.{key}");
    let s = m.string(&field, v)?;
    check_template(m, &field, v, s, allowed);
    Some(s.to_owned())
}

fn read_latency(m: &mut Reader<'_>, source: &SourceSpec) -> Option<LatencyRule> {
    let v = m.get("max_latency_ms");
    let max_ms = m.number("metrics.max_latency_ms", v, 0.001, 3_600_000.0);
    let qv = m.get("latency_quantile");
    let quantile = m.number("metrics.latency_quantile", qv, 0.5, 0.999);
    if qv.is_some() && v.is_none() {
        m.fail("metrics.latency_quantile", qv, "needs `max_latency_ms`");
    }
    let max_ms = max_ms?;
    match source {
        SourceSpec::CloudWatch { latency_metric: None } => m.fail(
            "metrics.max_latency_ms",
            v,
            "needs `latency_metric_name` with source `cloudwatch` (the metric of request latency in milliseconds)",
        ),
        SourceSpec::Prometheus(p) if p.queries.latency.is_none() => m.fail(
            "metrics.max_latency_ms",
            v,
            "needs `queries.latency` (or a preset) with source `prometheus`",
        ),
        _ => {}
    }
    Some(LatencyRule {
        max_ms,
        quantile: quantile.unwrap_or(DEFAULT_LATENCY_QUANTILE),
    })
}

fn read_compare(m: &mut Reader<'_>) -> Option<CompareRule> {
    let v = m.get("compare_to_stable")?;
    let default = CompareRule {
        margin_percent: DEFAULT_COMPARE_MARGIN,
        confidence: DEFAULT_COMPARE_CONFIDENCE,
        min_requests: DEFAULT_COMPARE_MIN_REQUESTS,
    };
    match v {
        Value::Bool(true) => Some(default),
        Value::Bool(false) => None,
        Value::Object(map) => Some(read_compare_object(m, v, map, default)),
        other => {
            m.fail(
                "metrics.compare_to_stable",
                Some(other),
                format!("must be true, false or an object with `margin_percent` and `confidence`, not {}", kind(other)),
            );
            None
        }
    }
}

fn read_compare_object(
    m: &mut Reader<'_>,
    v: &Value,
    map: &Map<String, Value>,
    default: CompareRule,
) -> CompareRule {
    let keys = ["margin_percent", "confidence"];
    for key in map.keys() {
        if !keys.contains(&key.as_str()) {
            let hint = near(key, &keys);
            m.fail(
                &format!("metrics.compare_to_stable.{key}"),
                Some(v),
                format!("is not a known field{hint}"),
            );
        }
    }
    let mut c = Reader {
        map,
        errors: Vec::new(),
    };
    let margin = c.number(
        "metrics.compare_to_stable.margin_percent",
        c.get("margin_percent"),
        0.0,
        100.0,
    );
    let confidence = c.number(
        "metrics.compare_to_stable.confidence",
        c.get("confidence"),
        0.5,
        0.9999,
    );
    m.errors.append(&mut c.errors);
    CompareRule {
        margin_percent: margin.unwrap_or(default.margin_percent),
        confidence: confidence.unwrap_or(default.confidence),
        min_requests: default.min_requests,
    }
}
