//! The whole simulated cluster as one value: the object store, when each Deployment's
//! generation was written, the images and traffic settings of the simulation, the
//! traffic and weight timelines, and the recorded requests and armed faults.
//!
//! What acts on it lives in modules named for it: `verbs` (the API verbs), `commit`
//! (storing a new version), `controllers` (Deployment status, Pods, traffic timeline).

use std::collections::BTreeMap;
use std::sync::Arc;

use canary_core::clock::Clock;

use crate::faults::{ArmedFault, RequestRecord};
use crate::latency::LatencyModel;
use crate::route_controller::RouteController;
use crate::store::{Key, Store};
use crate::traffic::{TrafficSnapshot, WeightChange};
use crate::workloads::Track;

/// The whole simulated cluster.
#[derive(Debug)]
pub(crate) struct State {
    /// The clock readiness and traffic are measured on.
    pub clock: Arc<dyn Clock>,
    /// How long a Deployment takes to become ready, in ms.
    pub ready_delay_millis: i64,
    /// Every object.
    pub store: Store,
    /// When each Deployment's current generation was written, by (namespace, name).
    pub tracks: BTreeMap<(String, String), Track>,
    /// Images that never become ready, with the waiting reason.
    pub bad_images: BTreeMap<String, String>,
    /// Error fraction per image.
    pub error_rates: BTreeMap<String, f64>,
    /// Response times per image (others: `LatencyModel::default()`).
    pub latencies: BTreeMap<String, LatencyModel>,
    /// Requests per second per (namespace, service).
    pub traffic_rates: BTreeMap<(String, String), f64>,
    /// The traffic timeline.
    pub traffic_history: Vec<(i64, TrafficSnapshot)>,
    /// Every write to a route object.
    pub weight_history: Vec<WeightChange>,
    /// Every request received.
    pub requests: Vec<RequestRecord>,
    /// Injected faults.
    pub faults: Vec<ArmedFault>,
    /// Whether objects may be created in namespaces that do not exist.
    pub implicit_namespaces: bool,
    /// How the route controller answers route changes.
    pub route_controller: RouteController,
    /// Per-route behaviours, by (namespace, name), over `route_controller`.
    pub route_controller_overrides: BTreeMap<(String, String), RouteController>,
    /// When the route controller next processes each route (clock ms, one per event).
    pub route_queue: BTreeMap<Key, Vec<i64>>,
}

impl State {
    /// An empty cluster, without any namespace (see `State::create_initial_namespaces`),
    /// with implicit namespaces and an accepting route controller.
    pub fn new(clock: Arc<dyn Clock>, ready_delay_millis: i64) -> Self {
        Self {
            clock,
            ready_delay_millis,
            store: Store::default(),
            tracks: BTreeMap::new(),
            bad_images: BTreeMap::new(),
            error_rates: BTreeMap::new(),
            latencies: BTreeMap::new(),
            traffic_rates: BTreeMap::new(),
            traffic_history: Vec::new(),
            weight_history: Vec::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            implicit_namespaces: true,
            route_controller: RouteController::default(),
            route_controller_overrides: BTreeMap::new(),
            route_queue: BTreeMap::new(),
        }
    }

    /// Now on the simulator's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> String {
        self.store.resource_version()
    }
}
