//! A simulated Kubernetes cluster for tests, the demo and `canary cluster-sim`.
//!
//! [`SimCluster`] holds the cluster; [`SimCluster::serve`] serves a Kubernetes API
//! subset over real HTTP on loopback, so kube-rs and kubectl talk to it as to a real
//! API server (write a kubeconfig with [`kubeconfig_yaml`]). What it serves:
//!
//! - discovery (`/api`, `/apis`, group versions), `/version`, and a minimal
//!   `/openapi/v3` (enough for `kubectl apply`), for core/v1 (namespaces, services,
//!   pods, configmaps, events), apps/v1 (deployments), coordination.k8s.io/v1 (leases),
//!   appmesh.k8s.aws/v1beta2 (meshes, virtualnodes, virtualrouters, virtualservices,
//!   virtualgateways, gatewayroutes) and gateway.networking.k8s.io/v1 (gatewayclasses,
//!   gateways, httproutes, grpcroutes);
//! - get, list (label selectors `=`, `==`, `!=`, `in`, `notin`, exists, `!`; field
//!   selectors on `metadata.name` / `metadata.namespace`; `kubectl get` tables), create,
//!   replace (409 on a stale `metadata.resourceVersion`), patch (server-side apply with
//!   field managers and conflicts, merge patch, JSON patch, a simplified strategic merge
//!   patch), delete and deletecollection, `dryRun`, the `status` subresource;
//! - `Status` error bodies; uid, a global monotonic resourceVersion, generation.
//!
//! - watch on collections (polled every 50 ms; see the `watcher` module for what is
//!   simplified).
//!
//! Bodies: JSON, YAML, and protobuf for the Namespaces `kubectl create namespace`
//! sends (the `protobuf` module); another content type is a 415 and a body that does not
//! parse a 400, each with a `Status`.
//!
//! Namespaces are objects (create, get, list, delete, which deletes what is in them);
//! the cluster starts with `default`, `kube-system`, `kube-public` and
//! `kube-node-lease`, and refuses to delete the first three (403) as kube-apiserver's
//! NamespaceLifecycle admission does. With [`SimConfig::implicit_namespaces`] off it
//! also refuses, as that plugin does, objects created in a namespace that does not
//! exist (404 `namespaces "shop" not found`); on (the library default), they are
//! accepted as they always were.
//!
//! A route controller ([`RouteController`]) writes the status the AWS Gateway API
//! Controller writes on HTTPRoutes and GRPCRoutes (`status.parents` with `Accepted` and
//! `ResolvedRefs`, `BackendNotFound` for a Service that does not exist) and the App
//! Mesh controller on VirtualRouters (`VirtualRouterActive`, `observedGeneration`),
//! after a delay on the clock, never, or refusing; see the `route_controller` module.
//!
//! Not served: authentication (any token is accepted), admission other than the
//! namespace rules.
//!
//! Deployments become ready `ready_delay` after each spec change, measured on the
//! configured [`Clock`]; an image marked bad keeps them unready, with Pods that say why.
//! Traffic is simulated per service and split by the route weights over time (see
//! [`MetricsQuery`] and the `traffic` rules), each version answering with its image's
//! latency ([`LatencyModel`]). Faults can be injected per request.
//!
//! `GET /metrics` makes the cluster a Prometheus target (text format 0.0.4, from
//! [`SimCluster::prometheus_text`]): per version, the Istio series
//! (`istio_requests_total`, `istio_request_duration_milliseconds`) and Envoy series
//! (`envoy_http_downstream_rq_total`, `envoy_http_downstream_rq_xx`,
//! `envoy_http_downstream_rq_time`) that the `istio` and `envoy` PromQL presets query,
//! as exact fractional counters of the simulated traffic. Scrapes of `/metrics` are not
//! recorded as API requests and no fault fires on them.

#![warn(missing_docs)]

mod commit;
mod controllers;
mod error;
mod exposition;
mod faults;
mod kubeconfig;
mod latency;
mod managed_fields;
mod namespaces;
mod patch;
mod protobuf;
mod resources;
mod route_controller;
mod selector;
mod server;
mod state;
mod store;
mod table;
mod traffic;
mod util;
mod validate;
mod verbs;
mod watcher;
mod workloads;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use canary_core::clock::{Clock, SystemClock};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use error::ApiError;
pub use faults::{Fault, FaultAction, RequestRecord};
pub use kubeconfig::kubeconfig_yaml;
pub use latency::{
    DEFAULT_MEDIAN_MS, DEFAULT_SIGMA, InvalidLatency, LATENCY_BUCKETS_MS, LatencyModel,
};
pub use route_controller::{ACCEPTED_REASONS, LATTICE_CONTROLLER_NAME, RouteController};
pub use server::SimAnswer;
pub use traffic::{MetricsQuery, SimMetrics, WeightChange};

use faults::ArmedFault;
use state::State;

/// How the simulated cluster behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How long after a Deployment's spec is written it becomes ready (on `clock`).
    pub ready_delay: Duration,
    /// The clock readiness, traffic and the route controller's delay are measured on. A
    /// `ManualClock` makes a test deterministic: nothing becomes ready until the test
    /// advances it.
    pub clock: Arc<dyn Clock>,
    /// Whether objects may be created in a namespace that does not exist (true, the
    /// default, as the simulator always allowed). False makes the cluster refuse them
    /// as kube-apiserver does: 404 `namespaces "shop" not found`. `canary cluster-sim`
    /// turns it off.
    pub implicit_namespaces: bool,
    /// How the route controller answers route changes (default: accepting at once).
    pub route_controller: RouteController,
}

impl Default for SimConfig {
    /// The system clock; Deployments ready after 2 s; implicit namespaces; routes
    /// accepted on the first request after each change.
    fn default() -> Self {
        Self::new(Arc::new(SystemClock), Duration::from_secs(2))
    }
}

impl SimConfig {
    /// A configuration with this clock and ready delay, implicit namespaces and an
    /// accepting route controller.
    pub fn new(clock: Arc<dyn Clock>, ready_delay: Duration) -> Self {
        Self {
            ready_delay,
            clock,
            implicit_namespaces: true,
            route_controller: RouteController::default(),
        }
    }

    /// This configuration with objects refused in namespaces that do not exist
    /// (`implicit_namespaces: false`), as a real cluster does.
    #[must_use]
    pub fn with_strict_namespaces(mut self) -> Self {
        self.implicit_namespaces = false;
        self
    }

    /// This configuration with this route controller behaviour.
    #[must_use]
    pub fn with_route_controller(mut self, controller: RouteController) -> Self {
        self.route_controller = controller;
        self
    }
}

/// The simulated cluster. Clones share the same state.
#[derive(Debug, Clone)]
pub struct SimCluster {
    state: Arc<Mutex<State>>,
}

/// A running API server for a [`SimCluster`]. It serves until dropped or shut down.
#[derive(Debug)]
pub struct SimServer {
    /// The address it listens on (with the real port when asked for port 0).
    pub addr: SocketAddr,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Stops accepting connections, releases hanging requests, and waits for the
    /// server task to end.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl SimCluster {
    /// An empty cluster, with the namespaces every cluster has (`default`,
    /// `kube-system`, `kube-public`, `kube-node-lease`).
    pub fn new(config: SimConfig) -> Self {
        let delay = i64::try_from(config.ready_delay.as_millis()).unwrap_or(i64::MAX);
        let mut state = State::new(config.clock, delay);
        state.implicit_namespaces = config.implicit_namespaces;
        state.route_controller = config.route_controller;
        // Creating fixed, valid objects cannot fail; an error would only leave the
        // cluster without some of its first namespaces.
        let _ = state.create_initial_namespaces();
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Creates a namespace, as `kubectl create namespace NAME` does (409 `AlreadyExists`
    /// when it exists, 422 when the name is not a DNS label).
    pub fn create_namespace(&self, name: &str) -> Result<Value, ApiError> {
        self.lock().create_namespace(name)
    }

    /// Sets how the route controller answers from now on, for every route without a
    /// behaviour of its own; the controller looks at every route again (as one that
    /// restarts does), after the new behaviour's delay.
    pub fn set_route_controller(&self, controller: RouteController) {
        let mut s = self.lock();
        s.route_controller = controller;
        s.queue_all_routes();
    }

    /// Sets how the route controller answers for the routes named `name` in
    /// `namespace` (of any route kind), over the cluster's behaviour; the route is
    /// looked at again after the new behaviour's delay.
    pub fn set_route_controller_for(
        &self,
        namespace: &str,
        name: &str,
        controller: RouteController,
    ) {
        let mut s = self.lock();
        s.route_controller_overrides
            .insert((namespace.to_string(), name.to_string()), controller);
        s.queue_all_routes();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on the locked state.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.lock())
    }

    /// Serves the API on `addr` (use port 0 for any free port) in a background task.
    pub async fn serve(&self, addr: SocketAddr) -> std::io::Result<SimServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let url = format!("http://{addr}");
        let (stop, stopped) = watch::channel(false);
        let ctx = server::Ctx {
            sim: self.clone(),
            server_address: addr.to_string(),
            shutdown: stopped.clone(),
        };
        let app = server::router(ctx);
        let mut signal = stopped;
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = signal.wait_for(|stop| *stop).await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(SimServer {
            addr,
            url,
            stop,
            task: Some(task),
        })
    }

    /// The clock the cluster measures time on.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.lock().clock.clone()
    }

    /// Makes every Deployment using `image` unready for good; its Pods show `reason`
    /// (e.g. `ImagePullBackOff`) as the containers' waiting reason.
    pub fn mark_image_bad(&self, image: &str, reason: &str) {
        let mut s = self.lock();
        s.bad_images.insert(image.to_string(), reason.to_string());
        s.after_change();
    }

    /// Undoes [`SimCluster::mark_image_bad`]; the readiness delay counts from the last
    /// spec change as usual.
    pub fn mark_image_good(&self, image: &str) {
        let mut s = self.lock();
        s.bad_images.remove(image);
        s.after_change();
    }

    /// Adds a fault; faults stay armed (and count matches) until cleared.
    pub fn inject_fault(&self, fault: Fault) {
        self.lock().faults.push(ArmedFault { fault, seen: 0 });
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Records a request and returns the action of the fault that fires on it, if any.
    pub(crate) fn record_request(
        &self,
        method: &str,
        path: &str,
        query: &str,
    ) -> Option<FaultAction> {
        let mut s = self.lock();
        let fault = faults::check(&mut s.faults, method, path);
        let at_millis = s.now();
        s.requests.push(RequestRecord {
            at_millis,
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            write: faults::is_write(method),
            fault,
        });
        fault
    }

    /// Answers one request in-process, exactly as the HTTP server answers it (recorded,
    /// faults fired, the same parsing of path, query string, headers and body), without
    /// a socket: for property tests and fuzzing of the request parsing. `uri` is the
    /// request target (`/api/v1/namespaces/yelb/services?labelSelector=a%3Db`). Two
    /// differences: a hanging fault answers at once, and a watch is checked (collection,
    /// selectors) and answered with an empty 200 instead of a stream. A method, target
    /// or header that HTTP itself could not carry is a 400 `Status`.
    pub fn answer(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> SimAnswer {
        server::answer(self, method, uri, headers, body)
    }

    /// Every request received since the start or the last [`SimCluster::reset_requests`].
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// How many of those requests were writes (POST, PUT, PATCH, DELETE).
    pub fn write_count(&self) -> usize {
        self.lock().requests.iter().filter(|r| r.write).count()
    }

    /// Forgets the recorded requests.
    pub fn reset_requests(&self) {
        self.lock().requests.clear();
    }

    /// Sets the requests per second that `service` in `namespace` receives from now on.
    pub fn set_traffic(&self, namespace: &str, service: &str, requests_per_second: f64) {
        let mut s = self.lock();
        s.traffic_rates.insert(
            (namespace.to_string(), service.to_string()),
            requests_per_second.max(0.0),
        );
        s.record_traffic();
    }

    /// Sets the fraction (0 to 1) of requests that containers running `image` answer with
    /// 5xx, from now on.
    pub fn set_error_rate(&self, image: &str, fraction: f64) {
        let mut s = self.lock();
        s.error_rates
            .insert(image.to_string(), fraction.clamp(0.0, 1.0));
        s.record_traffic();
    }

    /// Sets how long containers running `image` take to answer, from now on (a
    /// Deployment answers as slowly as its slowest image; images never set answer
    /// with `LatencyModel::default()`, a 20 ms median).
    pub fn set_latency(&self, image: &str, latency: LatencyModel) {
        let mut s = self.lock();
        s.latencies.insert(image.to_string(), latency);
        s.record_traffic();
    }

    /// The traffic so far as Prometheus metrics (text exposition format 0.0.4), what
    /// the server answers on `GET /metrics`: Istio-style and Envoy-style request
    /// counters and latency histograms per version, computed from the traffic timeline
    /// up to the clock's now (see the `exposition` rules in the crate docs).
    pub fn prometheus_text(&self) -> String {
        let mut s = self.lock();
        s.after_change();
        exposition::exposition(&s.traffic_history, s.now())
    }

    /// Per-period request sums for a service (or one version of it), like CloudWatch
    /// `GetMetricData` with `Sum`; see [`SimMetrics`] for the shape and the `traffic`
    /// rules in the crate docs.
    pub fn metrics(&self, query: &MetricsQuery) -> SimMetrics {
        let mut s = self.lock();
        s.after_change();
        traffic::metrics(&s.traffic_history, query)
    }

    /// Every write to a route object (VirtualRouter, HTTPRoute, GRPCRoute) in a
    /// namespace, oldest first, with the target weights it left.
    pub fn weight_history(&self, namespace: &str) -> Vec<WeightChange> {
        self.lock()
            .weight_history
            .iter()
            .filter(|w| w.namespace == namespace)
            .cloned()
            .collect()
    }

    /// One object by `apiVersion` (`apps/v1`), kind or plural (`Deployment`,
    /// `deployments`, `deploy`), namespace (ignored for cluster-scoped types) and name.
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let rt = resources::lookup(api_version, kind)?;
        self.lock().get(rt, namespace, name).ok()
    }

    /// Every object in a namespace, of every type (`""`: the cluster-scoped ones).
    pub fn list_objects(&self, namespace: &str) -> Vec<Value> {
        self.lock().list_namespace(namespace)
    }
}
