//! Traffic routers: the one trait that shifts traffic between versions, one file per
//! provider, and one factory.
//!
//! Every provider changes weights the same way: GET the route object, compute the new
//! object in pure code ([`RouteEditor`]), and — only when it differs — PUT it back with
//! the `metadata.resourceVersion` that was read (optimistic concurrency). A 409 means
//! someone else wrote in between: re-read and retry, up to [`MAX_ROUTE_ATTEMPTS`] rounds,
//! then [`Error::RouteConflict`]. The PUT's answer is the stored object, so the weights
//! are verified from it without another GET. One weight change is thus one GET and one
//! PUT; unchanged weights are one GET and no write.

pub mod appmesh;
pub mod gateway_api;

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use canary_core::execution::RouteRef;
use canary_core::spec::TrafficProvider;
use serde_json::Value;

use crate::client::Cluster;
use crate::error::{Error, Result};

/// How many read-modify-write rounds a weight change may take before giving up.
pub const MAX_ROUTE_ATTEMPTS: u32 = 5;

/// One weighted destination of the route.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Backend {
    /// `<service>-<version>`: the VirtualNode or Service that takes this share.
    pub name: String,
    /// The share of traffic, in percent.
    pub weight: u8,
}

impl Backend {
    /// A backend named `name` with `weight`.
    pub fn new(name: impl Into<String>, weight: u8) -> Self {
        Self {
            name: name.into(),
            weight,
        }
    }
}

/// `a=90, b=10`.
pub fn describe(backends: &[Backend]) -> String {
    let parts: Vec<String> = backends
        .iter()
        .map(|b| format!("{}={}", b.name, b.weight))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// What a weight change did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetWeightsReport {
    /// The weights found before the change (the first target list of the route).
    pub previous: Vec<Backend>,
    /// The weights stored now.
    pub current: Vec<Backend>,
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
    async fn weights(&self, route: &RouteRef) -> Result<Vec<Backend>>;

    /// Makes every target list of the route exactly `backends` (weights summing to 100),
    /// with at most one successful write.
    async fn set_weights(&self, route: &RouteRef, backends: &[Backend])
    -> Result<SetWeightsReport>;
}

/// The router for `provider`, working on routes in `namespace`.
pub fn router_for(
    provider: TrafficProvider,
    cluster: Cluster,
    namespace: &str,
) -> Box<dyn TrafficRouter> {
    match provider {
        TrafficProvider::AppMesh => Box::new(EditingRouter::new(
            cluster,
            namespace,
            appmesh::AppMeshEditor,
        )),
        TrafficProvider::GatewayApi => Box::new(EditingRouter::new(
            cluster,
            namespace,
            gateway_api::GatewayApiEditor,
        )),
    }
}

/// The provider that owns a route object of `api_version` / `kind`.
pub fn provider_of(route: &RouteRef) -> Option<TrafficProvider> {
    let group = route.api_version.split('/').next().unwrap_or_default();
    match (group, route.kind.as_str()) {
        ("appmesh.k8s.aws", "VirtualRouter") => Some(TrafficProvider::AppMesh),
        ("gateway.networking.k8s.io", "HTTPRoute" | "GRPCRoute") => {
            Some(TrafficProvider::GatewayApi)
        }
        _ => None,
    }
}

/// Checks that `backends` is a traffic split: at least one, distinct non-empty names,
/// weights summing to 100.
pub fn validate_backends(backends: &[Backend]) -> Result<()> {
    let fail = |message: String| Error::InvalidWeights {
        backends: describe(backends),
        message,
    };
    if backends.is_empty() {
        return Err(fail("at least one backend is needed".into()));
    }
    let mut names: Vec<&str> = backends.iter().map(|b| b.name.as_str()).collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(fail("a backend has an empty name".into()));
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(fail(format!("backend `{}` appears twice", w[0])));
    }
    let sum: u32 = backends.iter().map(|b| u32::from(b.weight)).sum();
    if sum != 100 {
        return Err(fail(format!("the weights sum to {sum}, not 100")));
    }
    Ok(())
}

/// The pure part of a provider: read and rewrite the target lists of a route object.
pub trait RouteEditor: Send + Sync + Debug {
    /// The provider whose route objects this editor understands.
    fn provider(&self) -> TrafficProvider;

    /// Every target list of the route object, in order.
    fn read(&self, route: &Value) -> Result<Vec<Vec<Backend>>>;

    /// Backend names that need a port looked up before [`RouteEditor::rewrite`]
    /// (Gateway API names not present in the route yet). Empty by default.
    fn names_needing_port(&self, _route: &Value, _backends: &[Backend]) -> Vec<String> {
        Vec::new()
    }

    /// The route object with every target list replaced by `backends`; every other field
    /// kept. `ports` holds the ports looked up for [`RouteEditor::names_needing_port`].
    fn rewrite(
        &self,
        route: &Value,
        backends: &[Backend],
        ports: &BTreeMap<String, u16>,
    ) -> Result<Value>;
}

/// A provider's router: its [`RouteEditor`] (the pure rewrite) around the shared
/// read-modify-write loop, on routes in one namespace.
#[derive(Debug, Clone)]
pub struct EditingRouter<E> {
    cluster: Cluster,
    namespace: String,
    editor: E,
}

impl<E: RouteEditor> EditingRouter<E> {
    /// A router for `editor`'s route objects in `namespace`.
    pub fn new(cluster: Cluster, namespace: &str, editor: E) -> Self {
        Self {
            cluster,
            namespace: namespace.to_owned(),
            editor,
        }
    }
}

#[async_trait]
impl<E: RouteEditor> TrafficRouter for EditingRouter<E> {
    fn provider(&self) -> TrafficProvider {
        self.editor.provider()
    }

    async fn weights(&self, route: &RouteRef) -> Result<Vec<Backend>> {
        let object = read_route(&self.cluster, &self.namespace, route).await?;
        Ok(self
            .editor
            .read(&object)?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    async fn set_weights(
        &self,
        route: &RouteRef,
        backends: &[Backend],
    ) -> Result<SetWeightsReport> {
        rewrite_route(
            &self.cluster,
            &self.namespace,
            route,
            backends,
            &self.editor,
        )
        .await
    }
}

fn sorted(mut v: Vec<Backend>) -> Vec<Backend> {
    v.sort();
    v
}

/// The read-modify-write loop shared by the providers.
pub(crate) async fn rewrite_route(
    cluster: &Cluster,
    namespace: &str,
    route: &RouteRef,
    backends: &[Backend],
    editor: &dyn RouteEditor,
) -> Result<SetWeightsReport> {
    validate_backends(backends)?;
    let mut ports: BTreeMap<String, u16> = BTreeMap::new();
    let mut previous: Option<Vec<Backend>> = None;
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

/// A weight read from a route, as a percentage.
pub(crate) fn weight_of(kind: &str, name: &str, target: &Value, default: u8) -> Result<u8> {
    match &target["weight"] {
        Value::Null => Ok(default),
        w => w
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .ok_or_else(|| Error::RouteShape {
                kind: kind.to_owned(),
                name: name.to_owned(),
                message: format!("weight {w} is not a number in 0..=255"),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_must_be_distinct_names_summing_to_100() {
        let ok = [
            vec![Backend::new("a-1", 100)],
            vec![Backend::new("a-1", 90), Backend::new("a-2", 10)],
        ];
        for b in ok {
            assert!(validate_backends(&b).is_ok(), "{}", describe(&b));
        }
        let bad = [
            vec![],
            vec![Backend::new("a-1", 90)],
            vec![Backend::new("a-1", 50), Backend::new("a-1", 50)],
            vec![Backend::new("", 100)],
            vec![Backend::new("a-1", 100), Backend::new("a-2", 100)],
        ];
        for b in bad {
            assert!(
                matches!(validate_backends(&b), Err(Error::InvalidWeights { .. })),
                "{}",
                describe(&b)
            );
        }
    }

    #[test]
    fn route_kinds_select_their_provider() {
        let r = |api: &str, kind: &str| RouteRef {
            api_version: api.into(),
            kind: kind.into(),
            name: "x".into(),
        };
        assert_eq!(
            provider_of(&r("appmesh.k8s.aws/v1beta2", "VirtualRouter")),
            Some(TrafficProvider::AppMesh)
        );
        assert_eq!(
            provider_of(&r("gateway.networking.k8s.io/v1", "HTTPRoute")),
            Some(TrafficProvider::GatewayApi)
        );
        assert_eq!(
            provider_of(&r("gateway.networking.k8s.io/v1", "GRPCRoute")),
            Some(TrafficProvider::GatewayApi)
        );
        assert_eq!(provider_of(&r("v1", "Service")), None);
    }
}
