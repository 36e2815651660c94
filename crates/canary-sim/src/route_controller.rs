//! The simulated route controllers: what the AWS Gateway API Controller (VPC Lattice)
//! writes into an HTTPRoute's or GRPCRoute's status, and the App Mesh controller into a
//! VirtualRouter's, after each change, in the shapes those controllers write.
//!
//! When it acts. A route's spec change (a new generation), and a change to what it
//! refers to (a Service or Gateway for Gateway API routes, a VirtualNode for
//! VirtualRouters: the controllers watch those), queue the route for processing the
//! controller's `delay` later on the cluster's clock. Processing happens on the next
//! request (or read through [`crate::SimCluster`]) at or after that time, never in the
//! answer to the write itself, and reads the route as it is then: `observedGeneration`
//! is the generation the controller saw when it processed the route, which is newer
//! than the write that queued it if another write came in between (as a real
//! controller's work queue folds events together).
//!
//! What it writes (straight to the status, as through the `status` subresource: the
//! spec and `metadata.generation` stay, `metadata.resourceVersion` moves):
//!
//! - Gateway API: `status.parents`, one per `spec.parentRefs` entry (a route without
//!   parentRefs gets no status, as Lattice ignores it): the `parentRef` as written,
//!   `controllerName` [`LATTICE_CONTROLLER_NAME`], and the conditions `Accepted` and
//!   `ResolvedRefs`, each with `status`, `reason`, `message`, `observedGeneration` and
//!   `lastTransitionTime`. `Accepted` is False with `NoMatchingParent` when the parent
//!   Gateway is stored and none of its listeners matches the ref's `sectionName` /
//!   `port` (a Gateway the simulator does not hold is taken to exist outside it).
//!   `ResolvedRefs` is False with `InvalidKind` (message: the kind) for a backendRef of
//!   a kind other than Service or ServiceImport, and with `BackendNotFound` (message
//!   `backendRef name: NAME`) for one naming a Service that does not exist — the first
//!   such backendRef, as Lattice reports it.
//! - App Mesh: `status.observedGeneration`, `virtualRouterARN`, `routeARNs` (one per
//!   route name) and the condition `VirtualRouterActive` (`type`, `status`,
//!   `lastTransitionTime`; `reason` and `message` only on a refusal). A
//!   `virtualNodeRef` naming a VirtualNode that does not exist makes the controller
//!   write nothing (the real one fails the reconcile and retries), until the
//!   VirtualNode appears.
//!
//! A condition keeps its `lastTransitionTime` while its `status` stays the same.
//!
//! [`RouteController::Refusing`] refuses whatever the route says: App Mesh with
//! `VirtualRouterActive=False`, Gateway API with `Accepted=False` when the reason is one
//! the Gateway API defines for `Accepted` (see [`ACCEPTED_REASONS`]) and
//! `ResolvedRefs=False` otherwise. [`RouteController::Never`] writes nothing.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::resources::{self, ResourceType};
use crate::state::State;
use crate::store::Key;
use crate::util::rfc3339;

/// The `controllerName` of the AWS Gateway API Controller for VPC Lattice.
pub const LATTICE_CONTROLLER_NAME: &str = "application-networking.k8s.aws/gateway-api-controller";

/// The reasons the Gateway API defines for `Accepted=False` on a route (and Lattice's
/// `Conflicted`); a [`RouteController::Refusing`] reason among them refuses through
/// `Accepted`, any other through `ResolvedRefs`.
pub const ACCEPTED_REASONS: &[&str] = &[
    "NotAllowedByListeners",
    "NoMatchingListenerHostname",
    "NoMatchingParent",
    "UnsupportedValue",
    "Pending",
    "Conflicted",
];

/// The fake account and region the simulated App Mesh ARNs are in.
const APPMESH_ARN_PREFIX: &str = "arn:aws:appmesh:us-west-2:111122223333";

/// How the simulated route controller answers changes to route objects (VirtualRouter,
/// HTTPRoute, GRPCRoute); see the `route_controller` rules in the crate docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteController {
    /// Accepts each change `delay` after it is written, on the cluster's clock (a route
    /// whose backends do not resolve is still reported as such).
    Accepting {
        /// How long the controller takes to process a change.
        delay: Duration,
    },
    /// Writes no status at all: no controller runs, or it ignores the route.
    Never,
    /// Processes each change at once and refuses it with this reason and message.
    Refusing {
        /// The condition's reason, e.g. `BackendNotFound` or `NoMatchingParent`.
        reason: String,
        /// The condition's message.
        message: String,
    },
}

impl Default for RouteController {
    /// Accepting without delay: the status shows on the first request after a write.
    fn default() -> Self {
        Self::Accepting {
            delay: Duration::ZERO,
        }
    }
}

impl RouteController {
    fn delay_millis(&self) -> i64 {
        match self {
            Self::Accepting { delay } => i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
            Self::Never | Self::Refusing { .. } => 0,
        }
    }
}

/// A condition as the controller decides it: status, reason, message.
struct Verdict {
    ok: bool,
    reason: String,
    message: String,
}

impl Verdict {
    fn yes(reason: &str) -> Self {
        Self {
            ok: true,
            reason: reason.into(),
            message: String::new(),
        }
    }

    fn no(reason: &str, message: impl Into<String>) -> Self {
        Self {
            ok: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

fn text<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn items<'v>(v: &'v Value, pointer: &str) -> impl Iterator<Item = &'v Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn condition_status(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// The `lastTransitionTime` a condition keeps: the old one when its status is the same.
fn transition_time(old: Option<&Value>, status: &str, now: &str) -> Value {
    match old {
        Some(c) if c.get("status").and_then(Value::as_str) == Some(status) => c
            .get("lastTransitionTime")
            .cloned()
            .unwrap_or_else(|| json!(now)),
        _ => json!(now),
    }
}

/// A route's status without the transition times, to tell a real change from a rewrite.
fn without_times(status: &Value) -> Value {
    let mut s = status.clone();
    fn strip(conditions: Option<&mut Value>) {
        for c in conditions
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastTransitionTime");
            }
        }
    }
    for p in s
        .get_mut("parents")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        strip(p.get_mut("conditions"));
    }
    strip(s.get_mut("conditions"));
    s
}

impl State {
    /// The controller behaviour for one route: its own, or the cluster's.
    fn controller_for(&self, namespace: &str, name: &str) -> &RouteController {
        self.route_controller_overrides
            .get(&(namespace.to_string(), name.to_string()))
            .unwrap_or(&self.route_controller)
    }

    /// Queues a route for processing its controller's delay from now.
    pub(crate) fn queue_route(&mut self, k: &Key) {
        let due = self
            .now()
            .saturating_add(self.controller_for(&k.2, &k.3).delay_millis());
        self.route_queue.entry(k.clone()).or_default().push(due);
    }

    /// Queues every stored route of one (group, plural).
    fn queue_routes_of(&mut self, group: &str, plural: &str) {
        let keys: Vec<Key> = self
            .store
            .of_type(group, plural)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.queue_route(&k);
        }
    }

    /// Queues every route (after the controller's behaviour changed: it looks again).
    pub(crate) fn queue_all_routes(&mut self) {
        for (g, p) in [
            ("appmesh.k8s.aws", "virtualrouters"),
            ("gateway.networking.k8s.io", "httproutes"),
            ("gateway.networking.k8s.io", "grpcroutes"),
        ] {
            self.queue_routes_of(g, p);
        }
    }

    /// What a stored change to an object of `rt` queues: the route itself when its
    /// generation moved (`spec_changed`), the routes that may refer to it otherwise.
    pub(crate) fn route_event(&mut self, rt: &ResourceType, k: &Key, spec_changed: bool) {
        match (rt.group, rt.plural) {
            _ if rt.is_route() && spec_changed => self.queue_route(k),
            _ if rt.is_route() => {}
            ("", "services") | ("gateway.networking.k8s.io", "gateways") => {
                self.queue_routes_of("gateway.networking.k8s.io", "httproutes");
                self.queue_routes_of("gateway.networking.k8s.io", "grpcroutes");
            }
            ("appmesh.k8s.aws", "virtualnodes") => {
                self.queue_routes_of("appmesh.k8s.aws", "virtualrouters");
            }
            _ => {}
        }
    }

    /// Forgets a deleted route's queued work.
    pub(crate) fn forget_route(&mut self, k: &Key) {
        self.route_queue.remove(k);
    }

    /// Processes every route whose queued time has come, writing the status its
    /// controller would.
    pub(crate) fn reconcile_routes(&mut self) {
        let now = self.now();
        let mut due: Vec<Key> = Vec::new();
        self.route_queue.retain(|k, times| {
            let before = times.len();
            times.retain(|t| *t > now);
            if times.len() < before {
                due.push(k.clone());
            }
            !times.is_empty()
        });
        for k in due {
            self.process_route(&k, now);
        }
    }

    fn process_route(&mut self, k: &Key, now: i64) {
        let Some(route) = self.store.get(k).cloned() else {
            return;
        };
        let mode = self.controller_for(&k.2, &k.3).clone();
        let stamp = rfc3339(now);
        let status = match (k.0.as_str(), mode) {
            (_, RouteController::Never) => None,
            ("appmesh.k8s.aws", mode) => self.virtual_router_status(&route, &k.2, &mode, &stamp),
            (_, mode) => self.gateway_route_status(&route, &k.2, &mode, &stamp),
        };
        let Some(status) = status else { return };
        let unchanged = route
            .get("status")
            .is_some_and(|old| without_times(old) == without_times(&status));
        if unchanged {
            return;
        }
        let rv = self.store.next_rv();
        if let Some(obj) = self.store.get_mut(k) {
            obj["status"] = status;
            obj["metadata"]["resourceVersion"] = json!(rv);
        }
    }

    /// The status the Lattice controller writes on an HTTPRoute or GRPCRoute.
    fn gateway_route_status(
        &self,
        route: &Value,
        namespace: &str,
        mode: &RouteController,
        now: &str,
    ) -> Option<Value> {
        let parent_refs: Vec<&Value> = items(route, "/spec/parentRefs").collect();
        if parent_refs.is_empty() {
            return None;
        }
        let generation = route.pointer("/metadata/generation").cloned();
        let refused = match mode {
            RouteController::Refusing { reason, message } => {
                Some(Verdict::no(reason, message.clone()))
            }
            _ => None,
        };
        let (refused_accepted, refused_refs) = match refused {
            Some(v) if ACCEPTED_REASONS.contains(&v.reason.as_str()) => (Some(v), None),
            other => (None, other),
        };
        let resolved = refused_refs.unwrap_or_else(|| self.resolve_backends(route, namespace));
        let old_parents: Vec<&Value> = items(route, "/status/parents").collect();
        let mut parents = Vec::new();
        for parent_ref in parent_refs {
            let accepted = match &refused_accepted {
                Some(v) => Verdict::no(&v.reason, v.message.clone()),
                None => self.match_parent(parent_ref, namespace),
            };
            let old = old_parents
                .iter()
                .find(|p| p.get("parentRef") == Some(parent_ref));
            let condition = |kind: &str, v: &Verdict| {
                let status = condition_status(v.ok);
                let old_condition = old.and_then(|p| {
                    items(p, "/conditions").find(|c| c.get("type") == Some(&json!(kind)))
                });
                json!({
                    "type": kind,
                    "status": status,
                    "reason": v.reason,
                    "message": v.message,
                    "observedGeneration": generation,
                    "lastTransitionTime": transition_time(old_condition, status, now),
                })
            };
            parents.push(json!({
                "parentRef": parent_ref,
                "controllerName": LATTICE_CONTROLLER_NAME,
                "conditions": [condition("Accepted", &accepted), condition("ResolvedRefs", &resolved)],
            }));
        }
        Some(json!({ "parents": parents }))
    }

    /// `Accepted` for one parentRef: `NoMatchingParent` when its Gateway is stored and no
    /// listener matches the ref's sectionName and port.
    fn match_parent(&self, parent_ref: &Value, namespace: &str) -> Verdict {
        let gateways = resources::by_plural("gateway.networking.k8s.io", "gateways");
        let ns = text(parent_ref, "/namespace").unwrap_or(namespace);
        let gateway = text(parent_ref, "/name")
            .zip(gateways)
            .and_then(|(name, rt)| self.store.peek(rt, ns, name));
        let Some(gateway) = gateway else {
            return Verdict::yes("Accepted");
        };
        let section = text(parent_ref, "/sectionName");
        let port = parent_ref.get("port").and_then(Value::as_u64);
        let matches = items(gateway, "/spec/listeners").any(|l| {
            section.is_none_or(|s| text(l, "/name") == Some(s))
                && port.is_none_or(|p| l.get("port").and_then(Value::as_u64) == Some(p))
        });
        if matches {
            Verdict::yes("Accepted")
        } else {
            Verdict::no("NoMatchingParent", "")
        }
    }

    /// `ResolvedRefs`: the first backendRef of a kind Lattice does not route to, or
    /// naming a Service (or ServiceImport, which the simulator does not hold) that does
    /// not exist, makes it False.
    fn resolve_backends(&self, route: &Value, namespace: &str) -> Verdict {
        let services = resources::by_plural("", "services");
        for rule in items(route, "/spec/rules") {
            for backend in items(rule, "/backendRefs") {
                let kind = text(backend, "/kind").unwrap_or("Service");
                if kind != "Service" && kind != "ServiceImport" {
                    return Verdict::no("InvalidKind", kind);
                }
                let name = text(backend, "/name").unwrap_or_default();
                let ns = text(backend, "/namespace").unwrap_or(namespace);
                let exists = kind == "Service"
                    && services.is_some_and(|rt| self.store.peek(rt, ns, name).is_some());
                if !exists {
                    return Verdict::no("BackendNotFound", format!("backendRef name: {name}"));
                }
            }
        }
        Verdict::yes("ResolvedRefs")
    }

    /// The status the App Mesh controller writes on a VirtualRouter, or `None` when a
    /// VirtualNode it routes to does not exist (the controller fails and retries).
    fn virtual_router_status(
        &self,
        router: &Value,
        namespace: &str,
        mode: &RouteController,
        now: &str,
    ) -> Option<Value> {
        let nodes = resources::by_plural("appmesh.k8s.aws", "virtualnodes")?;
        let routes: Vec<&Value> = items(router, "/spec/routes").collect();
        for route in &routes {
            for kind in ["httpRoute", "http2Route", "grpcRoute", "tcpRoute"] {
                for target in items(route, &format!("/{kind}/action/weightedTargets")) {
                    if let Some(name) = text(target, "/virtualNodeRef/name") {
                        let ns = text(target, "/virtualNodeRef/namespace").unwrap_or(namespace);
                        self.store.peek(nodes, ns, name)?;
                    }
                }
            }
        }
        let (ok, reason, message) = match mode {
            RouteController::Refusing { reason, message } => (false, Some(reason), Some(message)),
            _ => (true, None, None),
        };
        let status = condition_status(ok);
        let old = items(router, "/status/conditions")
            .find(|c| c.get("type") == Some(&json!("VirtualRouterActive")));
        let mut condition = Map::new();
        condition.insert("type".into(), json!("VirtualRouterActive"));
        condition.insert("status".into(), json!(status));
        condition.insert(
            "lastTransitionTime".into(),
            transition_time(old, status, now),
        );
        if let Some(r) = reason {
            condition.insert("reason".into(), json!(r));
        }
        if let Some(m) = message {
            condition.insert("message".into(), json!(m));
        }
        let name = text(router, "/metadata/name").unwrap_or_default();
        let mesh = text(router, "/spec/meshRef/name").unwrap_or("mesh");
        let aws_name = text(router, "/spec/awsName")
            .map_or_else(|| format!("{name}_{namespace}"), str::to_string);
        let router_arn = format!("{APPMESH_ARN_PREFIX}:mesh/{mesh}/virtualRouter/{aws_name}");
        let route_arns: Map<String, Value> = routes
            .iter()
            .filter_map(|r| text(r, "/name"))
            .map(|r| (r.to_string(), json!(format!("{router_arn}/route/{r}"))))
            .collect();
        Some(json!({
            "conditions": [Value::Object(condition)],
            "observedGeneration": router.pointer("/metadata/generation"),
            "routeARNs": route_arns,
            "virtualRouterARN": router_arn,
        }))
    }
}
