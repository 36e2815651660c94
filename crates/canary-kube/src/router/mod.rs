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
//!
//! A weight written is not yet a weight applied: the route's controller (the AWS
//! Gateway API Controller for VPC Lattice, the App Mesh controller) must accept it. So
//! after the write — and when the weights were already in place, since a retried task
//! must not take an earlier refused write for done — the router waits, reading the
//! route at most [`CONFIRM_POLL_MAX`] apart on the cluster's clock, until the
//! provider's reading of its status ([`RouteProvider::status`]) accepts the stored
//! `metadata.generation` or a newer one, for up to the router's confirm timeout
//! (deploy.json's `route_confirm_timeout`). A refusal of that generation ends the wait
//! at once; no acceptance in time ends it too: both are [`Error::RouteNotConfirmed`]
//! with what the controller said. A timeout of zero turns the wait off (a controller
//! that writes no status). The report says how long the confirmation took, so that the
//! caller starts its step's clock after it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use canary_core::execution::RouteRef;
use canary_core::provider::{self, GenerationStatus, RouteProvider, TrafficProvider};
use serde_json::Value;

use crate::client::Cluster;
use crate::error::{Error, Result};

pub use canary_core::provider::{Target, describe};

/// How many read-modify-write rounds a weight change may take before giving up.
pub const MAX_ROUTE_ATTEMPTS: u32 = 5;

/// The first pause between two readings of the route while waiting for its controller;
/// each further one doubles, up to [`CONFIRM_POLL_MAX`].
pub const CONFIRM_POLL_FIRST: Duration = Duration::from_millis(200);

/// The longest pause between two readings of the route while waiting for its controller.
pub const CONFIRM_POLL_MAX: Duration = Duration::from_secs(1);

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
    /// `metadata.generation` of the route after the change: what the controller was
    /// asked to accept.
    pub generation: Option<i64>,
    /// How long the controller took to accept it, in milliseconds on the cluster's
    /// clock; `None` when it was not waited for (confirm timeout 0, or a route without a
    /// generation).
    pub confirm_millis: Option<u64>,
}

/// Shifts traffic between the versions of a service.
#[async_trait]
pub trait TrafficRouter: Send + Sync + Debug {
    /// The provider this router speaks.
    fn provider(&self) -> TrafficProvider;

    /// The route's current weights (its first target list).
    async fn weights(&self, route: &RouteRef) -> Result<Vec<Target>>;

    /// Makes every target list of the route exactly `targets` (weights summing to 100),
    /// with at most one successful write, then waits until the route's controller has
    /// accepted it ([`Error::RouteNotConfirmed`] when it refuses, or says nothing within
    /// the confirm timeout).
    async fn set_weights(&self, route: &RouteRef, targets: &[Target]) -> Result<SetWeightsReport>;
}

/// The router for `provider`, working on routes in `namespace`, which waits up to
/// `confirm_timeout` (on the cluster's clock) for the route controller to accept each
/// change; zero: no wait.
pub fn router_for(
    provider: TrafficProvider,
    cluster: Cluster,
    namespace: &str,
    confirm_timeout: Duration,
) -> Box<dyn TrafficRouter> {
    Box::new(EditingRouter::new(cluster, namespace, provider).confirming_within(confirm_timeout))
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
    confirm_timeout: Duration,
}

impl EditingRouter {
    /// A router for `provider`'s route objects in `namespace` that does not wait for
    /// the controller ([`EditingRouter::confirming_within`] turns the wait on).
    pub fn new(cluster: Cluster, namespace: &str, provider: TrafficProvider) -> Self {
        Self {
            cluster,
            namespace: namespace.to_owned(),
            editor: provider,
            confirm_timeout: Duration::ZERO,
        }
    }

    /// The same router, waiting up to `timeout` for the controller after each change.
    #[must_use]
    pub fn confirming_within(mut self, timeout: Duration) -> Self {
        self.confirm_timeout = timeout;
        self
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
        let mut report = rewrite_route(
            &self.cluster,
            &self.namespace,
            route,
            backends,
            &*self.editor,
        )
        .await?;
        if self.confirm_timeout.is_zero() {
            return Ok(report);
        }
        let Some(generation) = report.generation else {
            tracing::warn!(route = %route.name, "the route has no metadata.generation: its controller's acceptance cannot be told, not waiting for it");
            return Ok(report);
        };
        let waited = confirm_route(
            &self.cluster,
            &self.namespace,
            route,
            &*self.editor,
            Confirm {
                generation,
                weights: &report.current,
                timeout: self.confirm_timeout,
            },
        )
        .await?;
        report.confirm_millis = Some(waited);
        Ok(report)
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
                generation: generation(&current),
                confirm_millis: None,
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
                    generation: generation(&stored),
                    confirm_millis: None,
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

fn generation(v: &Value) -> Option<i64> {
    v["metadata"]["generation"].as_i64()
}

/// What [`confirm_route`] waits for.
struct Confirm<'a> {
    /// The route's generation that must be accepted (or a newer one).
    generation: i64,
    /// The weights stored at that generation, for messages.
    weights: &'a [Target],
    /// How long to wait.
    timeout: Duration,
}

/// Reads the route until its controller accepts `c.generation` (the milliseconds that
/// took, on the cluster's clock), refuses it, or `c.timeout` has passed (both
/// [`Error::RouteNotConfirmed`]). Readings are at most [`CONFIRM_POLL_MAX`] apart.
async fn confirm_route(
    cluster: &Cluster,
    namespace: &str,
    route: &RouteRef,
    editor: &dyn RouteProvider,
    c: Confirm<'_>,
) -> Result<u64> {
    let clock = cluster.clock();
    let started = clock.now_millis();
    let timeout_ms = u64::try_from(c.timeout.as_millis()).unwrap_or(u64::MAX);
    let max_pause = u64::try_from(CONFIRM_POLL_MAX.as_millis()).unwrap_or(1_000);
    let mut pause = u64::try_from(CONFIRM_POLL_FIRST.as_millis()).unwrap_or(200);
    let not_confirmed = |why: String, waited_ms: u64| Error::RouteNotConfirmed {
        route: format!("{} `{namespace}/{}`", route.kind, route.name),
        weights: describe(c.weights),
        generation: c.generation,
        why,
        waited_ms,
    };
    loop {
        let object = read_route(cluster, namespace, route).await?;
        let status = editor.status(&object);
        let waited = u64::try_from(clock.now_millis().saturating_sub(started)).unwrap_or(0);
        match status.of_generation(c.generation) {
            GenerationStatus::Accepted => {
                tracing::info!(route = %route.name, generation = c.generation, waited_ms = waited, "the route controller accepted the route");
                return Ok(waited);
            }
            GenerationStatus::Refused(reason) => {
                tracing::warn!(route = %route.name, generation = c.generation, %reason, "the route controller refused the route");
                return Err(not_confirmed(
                    format!("the controller refused it: {reason}"),
                    waited,
                ));
            }
            GenerationStatus::Pending if waited >= timeout_ms => {
                return Err(not_confirmed(
                    format!(
                        "the controller did not accept it within {} (route_confirm_timeout); its status: {}",
                        seconds(timeout_ms),
                        status.describe()
                    ),
                    waited,
                ));
            }
            GenerationStatus::Pending => {
                cluster.pause(pause.min(timeout_ms - waited)).await;
                pause = (pause * 2).min(max_pause);
            }
        }
    }
}

/// `60 s`, `1.5 s`.
fn seconds(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        format!("{} s", millis / 1000)
    } else {
        format!("{:.1} s", millis as f64 / 1000.0)
    }
}
