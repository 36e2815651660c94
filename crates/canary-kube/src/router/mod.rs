//! The traffic router: the one trait that shifts traffic between versions
//! ([`TrafficRouter`]) and its one implementation, the read-modify-write loop over a
//! provider's pure rewrite (`canary_core::provider`, one file per provider there).
//!
//! Every provider changes weights the same way: GET the route object, compute the new
//! object in pure code ([`RouteProvider::rewrite`]), and — only when it differs — PUT it
//! back with the `metadata.resourceVersion` that was read (optimistic concurrency). A 409
//! means someone else wrote in between: re-read and retry, up to [`MAX_ROUTE_ATTEMPTS`]
//! rounds, then [`Error::RouteConflict`]. The PUT's answer is the stored object, so the
//! weights are verified from it without another GET. One weight change is thus one GET
//! and one PUT; unchanged weights are one GET and no write.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use canary_core::execution::RouteRef;
use canary_core::provider::{self, RouteProvider, TrafficProvider};
use serde_json::Value;

use crate::client::Cluster;
use crate::error::{Error, Result};

pub use canary_core::provider::{Target, describe};

/// How many read-modify-write rounds a weight change may take before giving up.
pub const MAX_ROUTE_ATTEMPTS: u32 = 5;

/// What a weight change did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetWeightsReport {
    /// The weights found before the change (the first target list of the route).
    pub previous: Vec<Target>,
    /// The weights stored now.
    pub current: Vec<Target>,
    /// Whether the route object was written.
    pub written: bool,
    /// How many writes answered 409 and were redone after re-reading.
    pub conflicts: u32,
    /// `metadata.resourceVersion` of the route after the change.
    pub resource_version: Option<String>,
}

/// Shifts traffic between the versions of a service.
#[async_trait]
pub trait TrafficRouter: Send + Sync + Debug {
    /// The provider this router speaks.
    fn provider(&self) -> TrafficProvider;

    /// The route's current weights (its first target list).
    async fn weights(&self, route: &RouteRef) -> Result<Vec<Target>>;

    /// Makes every target list of the route exactly `targets` (weights summing to 100),
    /// with at most one successful write.
    async fn set_weights(&self, route: &RouteRef, targets: &[Target]) -> Result<SetWeightsReport>;
}

/// The router for `provider`, working on routes in `namespace`.
pub fn router_for(
    provider: TrafficProvider,
    cluster: Cluster,
    namespace: &str,
) -> Box<dyn TrafficRouter> {
    Box::new(EditingRouter::new(cluster, namespace, provider))
}

/// The provider that owns a route object of `api_version` / `kind`.
pub fn provider_of(route: &RouteRef) -> Option<TrafficProvider> {
    TrafficProvider::for_route(&route.api_version, &route.kind)
}

/// Checks that `targets` is a traffic split: at least one, distinct non-empty names,
/// weights summing to 100.
pub fn validate_backends(targets: &[Target]) -> Result<()> {
    provider::check_split(targets).map_err(Error::InvalidWeights)
}

/// A provider's router: its pure rewrite around the shared read-modify-write loop, on
/// routes in one namespace.
#[derive(Debug, Clone)]
pub struct EditingRouter {
    cluster: Cluster,
    namespace: String,
    editor: TrafficProvider,
}

impl EditingRouter {
    /// A router for `provider`'s route objects in `namespace`.
    pub fn new(cluster: Cluster, namespace: &str, provider: TrafficProvider) -> Self {
        Self {
            cluster,
            namespace: namespace.to_owned(),
            editor: provider,
        }
    }
}

#[async_trait]
impl TrafficRouter for EditingRouter {
    fn provider(&self) -> TrafficProvider {
        self.editor
    }

    async fn weights(&self, route: &RouteRef) -> Result<Vec<Target>> {
        let object = read_route(&self.cluster, &self.namespace, route).await?;
        Ok(self
            .editor
            .read(&object)?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    async fn set_weights(&self, route: &RouteRef, backends: &[Target]) -> Result<SetWeightsReport> {
        rewrite_route(
            &self.cluster,
            &self.namespace,
            route,
            backends,
            &*self.editor,
        )
        .await
    }
}

fn sorted(mut v: Vec<Target>) -> Vec<Target> {
    v.sort();
    v
}

/// The read-modify-write loop shared by the providers.
pub(crate) async fn rewrite_route(
    cluster: &Cluster,
    namespace: &str,
    route: &RouteRef,
    backends: &[Target],
    editor: &dyn RouteProvider,
) -> Result<SetWeightsReport> {
    validate_backends(backends)?;
    let mut ports: BTreeMap<String, u16> = BTreeMap::new();
    let mut previous: Option<Vec<Target>> = None;
    let mut conflicts = 0;
    for _ in 0..MAX_ROUTE_ATTEMPTS {
        let current = read_route(cluster, namespace, route).await?;
        let lists = editor.read(&current)?;
        let first_list = lists.first().cloned().unwrap_or_default();
        let before = previous.get_or_insert_with(|| first_list.clone()).clone();
        for name in editor.names_needing_port(&current, backends) {
            if !ports.contains_key(&name)
                && let Some(port) = service_port(cluster, namespace, &name).await?
            {
                ports.insert(name, port);
            }
        }
        let desired = editor.rewrite(&current, backends, &ports)?;
        if desired == current {
            tracing::info!(route = %route.name, weights = %describe(backends), "weights already in place");
            return Ok(SetWeightsReport {
                previous: before,
                current: first_list,
                written: false,
                conflicts,
                resource_version: resource_version(&current),
            });
        }
        match cluster.replace(&desired).await {
            Ok(stored) => {
                let stored_lists = editor.read(&stored)?;
                let want = sorted(backends.to_vec());
                if stored_lists.is_empty() || stored_lists.iter().any(|l| sorted(l.clone()) != want)
                {
                    return Err(Error::VerifyFailed {
                        kind: route.kind.clone(),
                        name: route.name.clone(),
                        wanted: describe(backends),
                        stored: stored_lists
                            .iter()
                            .map(|l| describe(l))
                            .collect::<Vec<_>>()
                            .join(" "),
                    });
                }
                tracing::info!(
                    route = %route.name, from = %describe(&before), to = %describe(backends), conflicts,
                    "weights shifted"
                );
                return Ok(SetWeightsReport {
                    previous: before,
                    current: stored_lists.into_iter().next().unwrap_or_default(),
                    written: true,
                    conflicts,
                    resource_version: resource_version(&stored),
                });
            }
            Err(e) if e.status_code() == Some(409) => {
                conflicts += 1;
                tracing::warn!(route = %route.name, conflicts, "route changed under us; re-reading");
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::RouteConflict {
        kind: route.kind.clone(),
        namespace: namespace.to_owned(),
        name: route.name.clone(),
        attempts: MAX_ROUTE_ATTEMPTS,
    })
}

/// GETs the route object; a missing one is an error.
pub(crate) async fn read_route(
    cluster: &Cluster,
    namespace: &str,
    route: &RouteRef,
) -> Result<Value> {
    cluster
        .get(&route.api_version, &route.kind, namespace, &route.name)
        .await?
        .ok_or_else(|| Error::ApiRefused {
            what: format!(
                "GET {} {} {namespace}/{}",
                route.api_version, route.kind, route.name
            ),
            code: 404,
            reason: "NotFound".into(),
            message: "the route object does not exist; was the template applied?".into(),
        })
}

/// The first port of Service `namespace/name`, if it exists.
async fn service_port(cluster: &Cluster, namespace: &str, name: &str) -> Result<Option<u16>> {
    let svc = cluster.get("v1", "Service", namespace, name).await?;
    Ok(svc
        .and_then(|s| s["spec"]["ports"][0]["port"].as_u64())
        .and_then(|p| u16::try_from(p).ok()))
}

fn resource_version(v: &Value) -> Option<String> {
    v["metadata"]["resourceVersion"].as_str().map(str::to_owned)
}
