//! The source each deploy.json names: one [`MetricsSource`] for a function that checks
//! many services, each with its own `metrics` section. CloudWatch is built once; a
//! Prometheus server (or AMP workspace) is built on first use and kept for the next
//! checks of any service that names the same settings; VPC Lattice likewise.
//!
//! [`described_queries`] says in words what a check asks for (`canary check-health`,
//! `canary plan`).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_config::SdkConfig;
use canary_core::Observation;
use canary_core::compare::Counts;
use canary_core::spec::{LatticeSpec, PrometheusSpec, SourceSpec, fill_promql};

use crate::cloudwatch::{CloudWatchMetrics, percentile};
use crate::lattice::LatticeMetrics;
use crate::prometheus::PrometheusMetrics;
use crate::{HealthQuery, MetricsError, MetricsSource};

/// Health numbers from whichever source each query's deploy.json names.
#[derive(Debug)]
pub struct DeployJsonMetrics {
    sdk: SdkConfig,
    cloudwatch: CloudWatchMetrics,
    prometheus: Mutex<HashMap<String, PrometheusMetrics>>,
    lattice: LatticeMetrics,
}

impl DeployJsonMetrics {
    /// Sources that reach AWS with `sdk` (CloudWatch, AMP's SigV4 credentials, VPC
    /// Lattice).
    pub fn new(sdk: &SdkConfig) -> Result<Self, MetricsError> {
        Ok(Self {
            sdk: sdk.clone(),
            cloudwatch: CloudWatchMetrics::new(sdk)?,
            prometheus: Mutex::new(HashMap::new()),
            lattice: LatticeMetrics::new(sdk)?,
        })
    }

    /// The Prometheus source of `spec`, built on first use. The key is the whole
    /// spec, so two services with different credentials never share a client.
    fn prometheus(&self, spec: &PrometheusSpec) -> Result<PrometheusMetrics, MetricsError> {
        let key = serde_json::to_string(spec).unwrap_or_else(|_| spec.url.clone());
        let mut built = self
            .prometheus
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = built.get(&key) {
            return Ok(p.clone());
        }
        let p = PrometheusMetrics::new(spec, Some(&self.sdk))?;
        built.insert(key, p.clone());
        Ok(p)
    }
}

#[async_trait]
impl MetricsSource for DeployJsonMetrics {
    async fn observe(&self, q: &HealthQuery) -> Result<Observation, MetricsError> {
        match &q.source {
            SourceSpec::CloudWatch { .. } => self.cloudwatch.observe(q).await,
            SourceSpec::Prometheus(spec) => self.prometheus(spec)?.observe(q).await,
            SourceSpec::Lattice(spec) => observe_lattice(&self.lattice, spec, q).await,
        }
    }
}

/// One check's numbers from VPC Lattice: the canary's target group (requests and 5xx;
/// latency when judged) and, when compared, the stable version's over the same window.
async fn observe_lattice(
    lattice: &LatticeMetrics,
    spec: &LatticeSpec,
    q: &HealthQuery,
) -> Result<Observation, MetricsError> {
    let counts = |version: u32| {
        lattice.counts(
            spec,
            &q.namespace,
            &q.service,
            version,
            q.start_secs,
            q.end_secs,
            q.period_secs,
        )
    };
    let canary = counts(q.canary_version).await?;
    let latency_ms = match q.latency {
        Some(rule) => {
            lattice
                .latency_ms(
                    spec,
                    &q.namespace,
                    &q.service,
                    q.canary_version,
                    q.start_secs,
                    q.end_secs,
                    q.period_secs,
                    rule.quantile,
                )
                .await?
        }
        None => None,
    };
    let stable = match q.stable_version {
        Some(v) => Some(counts(v).await?.unwrap_or(Counts::new(0.0, 0.0))),
        None => None,
    };
    Ok(Observation {
        errors: canary.map(|c| vec![c.errors]).unwrap_or_default(),
        successes: q.need_requests.then(|| {
            canary
                .map(|c| vec![(c.requests - c.errors).max(0.0)])
                .unwrap_or_default()
        }),
        latency_ms,
        stable,
    })
}

/// What a check asks its source, one `(what, query)` per line: CloudWatch metrics with
/// their statistic and dimensions, filled PromQL, or the Lattice target groups.
pub fn described_queries(q: &HealthQuery) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let versions: Vec<(&str, u32)> = std::iter::once(("canary", q.canary_version))
        .chain(q.stable_version.map(|v| ("stable", v)))
        .collect();
    match &q.source {
        SourceSpec::CloudWatch { latency_metric } => {
            for (who, v) in &versions {
                let dims = q
                    .dimensions_of(*v)
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let metric = |name: &str, stat: &str| {
                    format!(
                        "{}/{name} {stat} per {} s [{dims}]",
                        q.health.metric_namespace, q.period_secs
                    )
                };
                out.push((
                    format!("{who} errors"),
                    metric(&q.health.error_metric, "Sum"),
                ));
                if q.need_requests {
                    out.push((
                        format!("{who} successes"),
                        metric(&q.health.success_metric, "Sum"),
                    ));
                }
                if *who == "canary"
                    && let (Some(rule), Some(name)) = (q.latency, latency_metric)
                {
                    out.push((
                        "canary latency".into(),
                        metric(name, &percentile(rule.quantile)),
                    ));
                }
            }
        }
        SourceSpec::Prometheus(spec) => {
            for (who, v) in &versions {
                let fill = |t: &str, quantile: f64| {
                    fill_promql(
                        t,
                        &q.namespace,
                        &q.service,
                        &q.workload(*v),
                        q.window_seconds(),
                        quantile,
                    )
                };
                out.push((format!("{who} requests"), fill(&spec.queries.requests, 0.0)));
                out.push((format!("{who} errors"), fill(&spec.queries.errors, 0.0)));
                if *who == "canary"
                    && let (Some(rule), Some(t)) = (q.latency, &spec.queries.latency)
                {
                    out.push(("canary latency".into(), fill(t, rule.quantile)));
                }
            }
        }
        SourceSpec::Lattice(spec) => {
            for (who, v) in &versions {
                let tg = match &spec.target_group_names {
                    Some(t) => format!("target group named from `{t}`"),
                    None => format!(
                        "the target group the AWS Gateway API Controller made for Service {}/{}",
                        q.namespace,
                        q.workload(*v)
                    ),
                };
                out.push((
                    format!("{who} requests, 5xx"),
                    format!("AWS/VpcLattice per {} s, {tg}", q.period_secs),
                ));
            }
            if let Some(rule) = q.latency {
                out.push((
                    "canary latency".into(),
                    format!("AWS/VpcLattice request time {}", percentile(rule.quantile)),
                ));
            }
        }
    }
    out
}
