//! The Prometheus part of the `metrics` section: the server's URL and authentication,
//! the PromQL presets, custom queries and their placeholders.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fields::near;
use super::reader::{Reader, kind};

/// The prefix every `credentials_env` must have.
pub const CREDENTIALS_PREFIX: &str = "CANARY_";

/// The placeholders a PromQL template may use.
pub const PROMQL_PLACEHOLDERS: &[&str] =
    &["namespace", "service", "workload", "window", "quantile"];

/// How to reach a Prometheus server and what to ask it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrometheusSpec {
    /// The server's base URL; `/api/v1/query` is appended. For Amazon Managed Service
    /// for Prometheus, the workspace's URL
    /// (`https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>`).
    pub url: String,
    /// How requests are authenticated.
    pub auth: PrometheusAuth,
    /// The queries, from a preset or given.
    pub queries: PromQueries,
    /// The preset the queries came from, if any.
    pub preset: Option<String>,
}

/// Authentication of Prometheus queries. Secrets never sit in deploy.json: bearer and
/// basic credentials are read from an environment variable of the function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PrometheusAuth {
    /// No authentication.
    None,
    /// `Authorization: Bearer <token>`, the token in environment variable `env`.
    Bearer {
        /// The variable holding the token.
        env: String,
    },
    /// HTTP basic authentication, `user:password` in environment variable `env`.
    Basic {
        /// The variable holding `user:password`.
        env: String,
    },
    /// AWS SigV4 for Amazon Managed Service for Prometheus (service `aps`), with the
    /// function's (or the terminal's) AWS credentials.
    Sigv4 {
        /// The workspace's region.
        region: String,
    },
}

/// PromQL templates, each an instant query over `{window}` returning one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromQueries {
    /// Requests served by the workload over the window.
    pub requests: String,
    /// Failed (5xx) requests over the window.
    pub errors: String,
    /// Latency at `{quantile}`, in milliseconds, if latency is judged.
    pub latency: Option<String>,
}

/// The built-in PromQL presets: (name, requests, errors, latency).
pub const PRESETS: &[(&str, &str, &str, &str)] = &[
    (
        "envoy",
        r#"sum(increase(envoy_http_downstream_rq_total{namespace="{namespace}", pod=~"{workload}-.+"}[{window}]))"#,
        r#"sum(increase(envoy_http_downstream_rq_xx{namespace="{namespace}", pod=~"{workload}-.+", envoy_response_code_class="5"}[{window}]))"#,
        r#"histogram_quantile({quantile}, sum by (le) (rate(envoy_http_downstream_rq_time_bucket{namespace="{namespace}", pod=~"{workload}-.+"}[{window}])))"#,
    ),
    (
        "istio",
        r#"sum(increase(istio_requests_total{reporter="destination", destination_workload_namespace="{namespace}", destination_workload="{workload}"}[{window}]))"#,
        r#"sum(increase(istio_requests_total{reporter="destination", destination_workload_namespace="{namespace}", destination_workload="{workload}", response_code=~"5.."}[{window}]))"#,
        r#"histogram_quantile({quantile}, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination", destination_workload_namespace="{namespace}", destination_workload="{workload}"}[{window}])))"#,
    ),
];

/// Fills a PromQL template. The values are validated names and numbers.
pub fn fill_promql(
    template: &str,
    namespace: &str,
    service: &str,
    workload: &str,
    window_secs: u64,
    quantile: f64,
) -> String {
    template
        .replace("{namespace}", namespace)
        .replace("{service}", service)
        .replace("{workload}", workload)
        .replace("{window}", &format!("{window_secs}s"))
        .replace("{quantile}", &quantile.to_string())
}

pub(super) fn read_prometheus(m: &mut Reader<'_>) -> PrometheusSpec {
    let url_v = m.get("url");
    if url_v.is_none() {
        m.fail(
            "metrics.url",
            None,
            "is required for source `prometheus` (the server's base URL)",
        );
    }
    let url = m
        .string("metrics.url", url_v)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned();
    if url_v.is_some() && !valid_url(&url) {
        m.fail(
            "metrics.url",
            url_v,
            "must be an http:// or https:// URL without spaces, query or fragment",
        );
    }
    let auth = read_auth(m, &url);
    let (queries, preset) = read_queries(m);
    PrometheusSpec {
        url,
        auth,
        queries,
        preset,
    }
}

fn valid_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split('/').next().unwrap_or_default();
            !host.is_empty()
                && !url
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '?' | '#' | '"' | '\\'))
        }
        None => false,
    }
}

/// The region of an Amazon Managed Service for Prometheus URL, if it is one.
pub fn aps_region(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let rest = host.strip_prefix("aps-workspaces.")?;
    let region = rest.strip_suffix(".amazonaws.com")?;
    (!region.is_empty() && !region.contains('.')).then(|| region.to_owned())
}

/// SigV4 in `region` (given, or read from the workspace URL).
fn sigv4(m: &mut Reader<'_>, region: Option<String>, region_v: Option<&Value>) -> PrometheusAuth {
    let valid = |r: &str| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    match region {
        Some(r) if valid(&r) => PrometheusAuth::Sigv4 { region: r },
        Some(_) => {
            m.fail(
                "metrics.region",
                region_v,
                "must be an AWS region such as `us-east-1`",
            );
            PrometheusAuth::None
        }
        None => {
            m.fail(
                "metrics.region",
                None,
                "is required with auth `sigv4` when `url` is not an aps-workspaces URL",
            );
            PrometheusAuth::None
        }
    }
}

fn read_auth(m: &mut Reader<'_>, url: &str) -> PrometheusAuth {
    let v = m.get("auth");
    let default = if aps_region(url).is_some() {
        "sigv4"
    } else {
        "none"
    };
    let name = m.string("metrics.auth", v).unwrap_or(default);
    let env_v = m.get("credentials_env");
    let env = m
        .string("metrics.credentials_env", env_v)
        .map(str::to_owned);
    if let Some(e) = &env
        && (e.is_empty()
            || !e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || e.starts_with(|c: char| c.is_ascii_digit()))
    {
        m.fail(
            "metrics.credentials_env",
            env_v,
            "must be an environment variable name (letters, digits, `_`)",
        );
    } else if let Some(e) = &env
        && !e.starts_with(CREDENTIALS_PREFIX)
    {
        // Any other variable could hand the function's own secrets (AWS_SECRET_ACCESS_KEY,
        // AWS_SESSION_TOKEN) to whichever URL a deploy.json names.
        m.fail(
            "metrics.credentials_env",
            env_v,
            format!("must start with `{CREDENTIALS_PREFIX}` (the shared stack sets CANARY_PROMETHEUS_CREDENTIALS): other variables of the function, such as its AWS credentials, are never sent"),
        );
    }
    let region_v = m.get("region");
    let region = m.string("metrics.region", region_v).map(str::to_owned);
    if region_v.is_some() && name != "sigv4" {
        m.fail(
            "metrics.region",
            region_v,
            "only applies when `auth` is `sigv4`",
        );
    }
    if env_v.is_some() && !matches!(name, "bearer" | "basic") {
        m.fail(
            "metrics.credentials_env",
            env_v,
            "only applies when `auth` is `bearer` or `basic`",
        );
    }
    let need_env = |m: &mut Reader<'_>, what: &str| {
        if env.is_none() {
            m.fail(
                "metrics.credentials_env",
                None,
                format!("is required with auth `{name}`: the environment variable holding {what}"),
            );
        }
        env.clone().unwrap_or_default()
    };
    match name {
        "none" => PrometheusAuth::None,
        "bearer" => PrometheusAuth::Bearer {
            env: need_env(m, "the token"),
        },
        "basic" => PrometheusAuth::Basic {
            env: need_env(m, "`user:password`"),
        },
        "sigv4" => {
            let region = region.or_else(|| aps_region(url));
            sigv4(m, region, region_v)
        }
        other => {
            let choices = ["none", "bearer", "basic", "sigv4"];
            let hint = near(other, &choices);
            m.fail(
                "metrics.auth",
                v,
                format!("must be `none`, `bearer`, `basic` or `sigv4`{hint}"),
            );
            PrometheusAuth::None
        }
    }
}

fn read_queries(m: &mut Reader<'_>) -> (PromQueries, Option<String>) {
    let preset_v = m.get("preset");
    let preset = m.string("metrics.preset", preset_v).map(str::to_owned);
    let queries_v = m.get("queries");
    if preset.is_some() && queries_v.is_some() {
        m.fail(
            "metrics.queries",
            queries_v,
            "must not be given together with `preset`",
        );
    }
    let from_preset = |name: &str| {
        PRESETS.iter().find(|p| p.0 == name).map(|p| PromQueries {
            requests: p.1.to_owned(),
            errors: p.2.to_owned(),
            latency: Some(p.3.to_owned()),
        })
    };
    if let Some(name) = &preset {
        return match from_preset(name) {
            Some(q) => (q, preset),
            None => {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.0).collect();
                let hint = near(name, &names);
                m.fail(
                    "metrics.preset",
                    preset_v,
                    format!("must be one of {}{hint}", names.join(", ")),
                );
                (from_preset("envoy").unwrap_or_else(empty_queries), preset)
            }
        };
    }
    let Some(v) = queries_v else {
        return (
            from_preset("envoy").unwrap_or_else(empty_queries),
            Some("envoy".into()),
        );
    };
    (read_custom_queries(m, v), None)
}

/// `metrics.queries`: PromQL templates given by the user.
fn read_custom_queries(m: &mut Reader<'_>, v: &Value) -> PromQueries {
    let Value::Object(map) = v else {
        m.fail(
            "metrics.queries",
            Some(v),
            format!(
                "must be an object with `requests`, `errors` and optionally `latency`, not {}",
                kind(v)
            ),
        );
        return empty_queries();
    };
    let mut q = Reader {
        map,
        errors: Vec::new(),
    };
    for key in map.keys() {
        if !["requests", "errors", "latency"].contains(&key.as_str()) {
            let hint = near(key, &["requests", "errors", "latency"]);
            q.fail(
                &format!("metrics.queries.{key}"),
                None,
                format!("is not a known query{hint}"),
            );
        }
    }
    let one = |q: &mut Reader<'_>, key: &str, required: bool| -> Option<String> {
        let field = format!("metrics.queries.{key}");
        let v = q.get(key);
        if v.is_none() && required {
            q.fail(
                &field,
                None,
                "is required (a PromQL instant query returning one number)",
            );
        }
        let s = q.string(&field, v)?;
        check_template(q, &field, v, s, PROMQL_PLACEHOLDERS);
        Some(s.to_owned())
    };
    let queries = PromQueries {
        requests: one(&mut q, "requests", true).unwrap_or_default(),
        errors: one(&mut q, "errors", true).unwrap_or_default(),
        latency: one(&mut q, "latency", false),
    };
    m.errors.append(&mut q.errors);
    queries
}

fn empty_queries() -> PromQueries {
    PromQueries {
        requests: String::new(),
        errors: String::new(),
        latency: None,
    }
}

/// Checks a template's placeholders and length.
pub(super) fn check_template(
    r: &mut Reader<'_>,
    field: &str,
    v: Option<&Value>,
    s: &str,
    allowed: &[&str],
) {
    if s.trim().is_empty() || s.len() > 4096 {
        r.fail(field, v, "must be 1 to 4096 characters");
        return;
    }
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let end = after.find('}').unwrap_or(after.len());
        let name = &after[..end];
        let looks_like_placeholder =
            !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        if looks_like_placeholder && !allowed.contains(&name) {
            let hint = near(name, allowed);
            r.fail(
                field,
                v,
                format!(
                    "uses `{{{name}}}`, which is not one of {{{}}}{hint}",
                    allowed.join("}, {")
                ),
            );
        }
        rest = &after[end.min(after.len())..];
    }
}
