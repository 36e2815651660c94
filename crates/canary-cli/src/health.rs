//! `canary check-health`: one health check now, from the source deploy.json's `metrics`
//! section names (CloudWatch without one), printed with its queries and numbers.
//!
//! Exit codes: 0 healthy, 1 unhealthy (or an AWS failure), 2 bad input, 3 held (too
//! little traffic to judge and `no_data` is `hold`: not unhealthy, not healthy yet).

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use aws_config::SdkConfig;
use canary_core::spec::SourceSpec;
use canary_core::{DeploySpec, Verdict, VerdictStatus};
use canary_metrics::prometheus::PrometheusMetrics;
use canary_metrics::{DeployJsonMetrics, HealthQuery, MetricsSource, described_queries};
use canary_store::ServiceRef;
use serde_json::json;

use crate::aws::sdk_config;
use crate::deploy_json::{self, Inputs};
use crate::error::CliError;
use crate::format::{now_secs, num, pretty, rfc3339, utc};
use crate::records::{Output, StoreArgs};

/// The metrics source `spec` names: what the health-check function would build.
/// `sdk` is needed for CloudWatch, VPC Lattice and AMP (SigV4); a plain Prometheus
/// server needs none.
pub fn source_for(
    spec: &DeploySpec,
    sdk: Option<&SdkConfig>,
) -> Result<Arc<dyn MetricsSource>, CliError> {
    Ok(match (sdk, &spec.metrics.source) {
        (Some(sdk), _) => Arc::new(DeployJsonMetrics::new(sdk)?),
        (None, SourceSpec::Prometheus(p)) => Arc::new(PrometheusMetrics::new(p, None)?),
        (None, other) => {
            return Err(CliError::Failed(format!(
                "metrics source `{}` needs AWS credentials",
                other.name()
            )));
        }
    })
}

/// `check-health`'s exit code for a held verdict.
pub const EXIT_HOLD: u8 = 3;

/// `canary check-health`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckHealthArgs {
    /// The deploy.json whose metric settings to use.
    pub deploy_json: PathBuf,
    #[command(flatten)]
    pub inputs: Inputs,
    /// The version to judge (only matters with `version_dimension`). Default: the
    /// running deployment's canary version, else the stable version, from the records
    /// when a bucket is known; else 1.
    #[arg(long)]
    pub version: Option<u32>,
    /// The stable version to judge against (with `metrics.compare_to_stable`). Default:
    /// the stable version in the records, when a bucket is known.
    #[arg(long)]
    pub stable_version: Option<u32>,
    /// Judge the window ending at this time instead of now (RFC 3339 or Unix seconds):
    /// what a check would have said then.
    #[arg(long, value_parser = crate::format::parse_time)]
    pub at: Option<i64>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `canary check-health`: one health check now.
pub async fn check_health(args: &CheckHealthArgs) -> Result<ExitCode, CliError> {
    let spec = deploy_json::load(&args.deploy_json, &args.inputs, true)?;
    if args.version == Some(0) {
        return Err(CliError::Usage(
            "invalid --version `0`: versions start at 1".into(),
        ));
    }
    let svc = ServiceRef::from_spec(&spec);
    let (version, from) = match (args.version, args.store.bucket.is_some()) {
        (Some(v), _) => (v, "--version"),
        (None, true) => {
            let state = args.store.store().await?.state(&svc).await?;
            match (&state.in_progress, state.stable_version) {
                (Some(p), _) => (p.version, "the running deployment"),
                (None, Some(v)) => (v, "the stable version"),
                (None, None) => (1, "no version recorded"),
            }
        }
        (None, false) => (1, "the default"),
    };
    let stable = match (&spec.metrics.compare, args.stable_version) {
        (None, _) => None,
        (Some(_), Some(v)) => Some(v),
        (Some(_), None) if args.store.bucket.is_some() => {
            args.store.store().await?.state(&svc).await?.stable_version
        }
        (Some(_), None) => {
            return Err(CliError::Usage(
                "metrics.compare_to_stable needs the stable version: give --stable-version (or --bucket to read it from the records)".into(),
            ));
        }
    };
    let sdk = if spec.metrics.source.needs_aws() {
        Some(sdk_config().await)
    } else {
        None
    };
    let metrics = source_for(&spec, sdk.as_ref())?;
    let now = args.at.unwrap_or_else(now_secs);
    let query = HealthQuery::for_check(&spec, version, now).with_stable(&spec, stable);
    let verdict = canary_metrics::check(metrics.as_ref(), &spec, version, stable, now).await?;
    match args.output {
        Output::Json => {
            let v = json!({
                "service": svc.to_string(),
                "version": version,
                "namespace": query.health.metric_namespace,
                "error_metric": query.health.error_metric,
                "success_metric": query.need_requests.then_some(&query.health.success_metric),
                "dimensions": query.dimensions().into_iter().collect::<std::collections::BTreeMap<_, _>>(),
                "source": query.source.name(),
                "queries": described_queries(&query).into_iter().map(|(what, q)| json!({"what": what, "query": q})).collect::<Vec<_>>(),
                "start": rfc3339(query.start_secs),
                "end": rfc3339(query.end_secs),
                "verdict": verdict,
            });
            println!("{}", pretty(&v));
        }
        Output::Text => print!("{}", verdict_text(&svc, version, from, &query, &verdict)),
    }
    Ok(match verdict.status {
        VerdictStatus::Healthy => ExitCode::SUCCESS,
        VerdictStatus::Unhealthy => ExitCode::from(1),
        VerdictStatus::Hold => ExitCode::from(EXIT_HOLD),
    })
}

fn verdict_text(
    svc: &ServiceRef,
    version: u32,
    from: &str,
    q: &HealthQuery,
    v: &Verdict,
) -> String {
    let status = match v.status {
        VerdictStatus::Healthy => "healthy",
        VerdictStatus::Unhealthy => "unhealthy",
        VerdictStatus::Hold => "hold (too little traffic to judge yet)",
    };
    let scope = match &q.health.version_dimension {
        Some(dim) => format!(
            "version {version} only ({dim}={}; version from {from})",
            q.version_value()
        ),
        None => "the whole service (no version_dimension)".to_owned(),
    };
    let mut out = format!("{status}: {svc}, {scope}\n");
    out.push_str(&format!("  source      {}\n", q.source.name()));
    for (what, query) in described_queries(q) {
        out.push_str(&format!("  query       {what}: {query}\n"));
    }
    out.push_str(&format!("  errors      {}\n", num(v.errors)));
    out.push_str(&format!(
        "  requests    {}\n",
        v.requests
            .map_or_else(|| "not counted (no rate or minimum set)".to_owned(), num)
    ));
    out.push_str(&format!(
        "  error rate  {}\n",
        v.error_rate
            .map_or_else(|| "-".to_owned(), |r| format!("{}%", num(r)))
    ));
    out.push_str(&format!(
        "  window      {} s, {} to {} UTC\n",
        v.window_seconds,
        utc(q.start_secs),
        utc(q.end_secs)
    ));
    if let Some(ms) = v.latency_ms {
        out.push_str(&format!("  latency     {} ms\n", num(ms)));
    }
    if let Some(s) = v.stable {
        out.push_str(&format!(
            "  stable      {} errors in {} requests\n",
            num(s.errors),
            num(s.requests)
        ));
    }
    out.push_str(&format!("  datapoints  {}\n", v.datapoints));
    out.push_str(&format!("  reason      {}\n", v.reason));
    out
}
