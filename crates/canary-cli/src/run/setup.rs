//! `canary run`'s first step: connecting to what the handlers use. The cluster (a
//! kubeconfig, or EKS by `cluster_name`), the record store (S3, or memory for one run,
//! seeded with the stable version the cluster's route serves) and the metrics
//! (CloudWatch, or none, said loudly).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use canary_core::clock::{Clock, SystemClock};
use canary_core::execution::RouteRef;
use canary_core::provider::TrafficProvider;
use canary_core::{DeploySpec, Observation, Rendered, labels};
use canary_kube::{Cluster, RequestPolicy, router_for};
use canary_lambda::{ClusterConnector, EksConnector, FixedCluster, Holders};
use canary_metrics::{HealthQuery, MetricsError, MetricsSource};
use canary_store::{DeploymentStore, ServiceRef};
use serde_json::Value;

use super::{MetricsChoice, RunOptions};
use crate::aws::sdk_config;
use crate::error::CliError;

/// What the run is connected to.
pub(super) struct Connected {
    /// How the handlers reach the cluster.
    pub clusters: Arc<dyn ClusterConnector>,
    /// The cluster itself, when a kubeconfig names it (for its request counters).
    pub cluster: Option<Cluster>,
    /// The service, as the store names it.
    pub svc: ServiceRef,
    /// The record store.
    pub store: DeploymentStore,
    /// Where the records go, for a person.
    pub store_text: String,
    /// Where health numbers come from.
    pub metrics: Arc<dyn MetricsSource>,
    /// The run's lease on the lock, and how another holder is looked up (Step Functions,
    /// when AWS is reachable).
    pub holders: Holders,
}

/// Connects to the cluster, the record store and the metrics `opts` choose.
pub(super) async fn connect(
    opts: &RunOptions,
    spec: &DeploySpec,
    probe: &Rendered,
) -> Result<Connected, CliError> {
    let policy = RequestPolicy::default();
    let needs_aws = opts.kubeconfig.is_none()
        || opts.bucket.is_some()
        || (opts.metrics == MetricsChoice::DeployJson && spec.metrics.source.needs_aws());
    let sdk = if needs_aws {
        Some(sdk_config().await)
    } else {
        None
    };

    let (clusters, cluster): (Arc<dyn ClusterConnector>, Option<Cluster>) =
        match (&opts.kubeconfig, &sdk) {
            (Some(path), _) => {
                let c =
                    Cluster::from_kubeconfig_file(path, opts.context.as_deref(), policy).await?;
                (Arc::new(FixedCluster(c.clone())), Some(c))
            }
            (None, Some(sdk)) => (Arc::new(EksConnector::new(sdk.clone(), policy)), None),
            (None, None) => return Err(CliError::Failed("no way to reach the cluster".into())),
        };

    let svc = ServiceRef::from_spec(spec);
    let (store, store_text) = match (&opts.bucket, &sdk) {
        (Some(bucket), Some(sdk)) => (
            DeploymentStore::s3(sdk, bucket.clone()).with_prefix(&opts.prefix),
            format!("s3://{bucket}/{}/{svc}/", opts.prefix.trim_matches('/')),
        ),
        _ => {
            let store = DeploymentStore::memory();
            let connected = match &cluster {
                Some(c) => c.clone(),
                None => {
                    clusters
                        .connect(&spec.cluster_name, &spec.kubernetes_namespace)
                        .await?
                }
            };
            let seeded =
                seed_from_cluster(&store, &svc, &connected, spec, &probe.route, probe.provider)
                    .await?;
            let from = match seeded {
                Some(v) => format!("stable v{v} read from the cluster's route"),
                None => "no route on the cluster: a first deployment".into(),
            };
            (
                store,
                format!(
                    "in memory, for this run only ({from}); use --bucket to keep records and the lock in S3"
                ),
            )
        }
    };

    let metrics: Arc<dyn MetricsSource> = match opts.metrics {
        MetricsChoice::None => Arc::new(DisabledMetrics),
        MetricsChoice::DeployJson => crate::health::source_for(spec, sdk.as_ref())?,
    };
    let holders = sdk
        .as_ref()
        .map_or_else(Holders::none, Holders::step_functions)
        .with_lease(super::LEASE_SECS);
    Ok(Connected {
        clusters,
        cluster,
        svc,
        store,
        store_text,
        metrics,
        holders,
    })
}

/// `--metrics none`: measures nothing, and says so in every verdict.
#[derive(Debug, Clone, Copy)]
pub struct DisabledMetrics;

#[async_trait]
impl MetricsSource for DisabledMetrics {
    async fn observe(&self, _q: &HealthQuery) -> Result<Observation, MetricsError> {
        Ok(Observation::default())
    }

    fn disabled(&self) -> Option<String> {
        Some("metrics disabled (--metrics none): nothing was measured, the check passes".into())
    }
}

/// With an in-memory store, the stable version is what the cluster's route sends all
/// traffic to: written into the store's state so the run deploys the next version as a
/// canary beside it. Returns the stable version found, if any. Traffic split between
/// versions means another deployment is unfinished: refuse.
async fn seed_from_cluster(
    store: &DeploymentStore,
    svc: &ServiceRef,
    cluster: &Cluster,
    spec: &DeploySpec,
    route: &RouteRef,
    provider: TrafficProvider,
) -> Result<Option<u32>, CliError> {
    let ns = &spec.kubernetes_namespace;
    let setup = CliError::RouteRead;
    if cluster
        .get(&route.api_version, &route.kind, ns, &route.name)
        .await
        .map_err(setup)?
        .is_none()
    {
        return Ok(None);
    }
    // Only read: nothing to confirm.
    let backends = router_for(provider, cluster.clone(), ns, Duration::ZERO)
        .weights(route)
        .await
        .map_err(setup)?;
    let serving: Vec<_> = backends.iter().filter(|b| b.weight > 0).collect();
    let [only] = serving.as_slice() else {
        let shown: Vec<String> = backends
            .iter()
            .map(|b| format!("{}={}", b.name, b.weight))
            .collect();
        return Err(CliError::Failed(format!(
            "{} {} splits traffic ({}): another deployment did not finish; roll it back first",
            route.kind,
            route.name,
            shown.join(", ")
        )));
    };
    let prefix = format!("{}-", spec.microservice_name);
    let Some(version) = only
        .name
        .strip_prefix(&prefix)
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return Err(CliError::Failed(format!(
            "{} {} sends all traffic to `{}`, which is not named <service>-<version>",
            route.kind, route.name, only.name
        )));
    };
    let deployment = cluster
        .get(
            "apps/v1",
            "Deployment",
            ns,
            &labels::versioned_name(&spec.microservice_name, version),
        )
        .await
        .map_err(setup)?;
    let image = deployment
        .as_ref()
        .and_then(|d| d.pointer("/spec/template/spec/containers/0/image"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    store
        .adopt_stable(svc, version, image.as_deref(), SystemClock.now_secs())
        .await?;
    Ok(Some(version))
}
