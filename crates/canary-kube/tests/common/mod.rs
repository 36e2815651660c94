//! Test support: a simulated cluster served on loopback with a manual clock, a
//! [`Cluster`] pointed at it with short timeouts, and small fixtures that render what a
//! template would (per-version Deployment, Service and VirtualNode; a shared route).
#![allow(dead_code, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use canary_core::clock::{Clock, ManualClock};
use canary_core::execution::RouteRef;
use canary_core::labels;
use canary_core::provider::TrafficProvider;
use canary_core::provider::appmesh::APP_MESH;
use canary_core::provider::gateway_api::GATEWAY_API;
use canary_kube::{Cluster, RequestPolicy, Target};
use canary_sim::{RequestRecord, SimCluster, SimConfig, SimServer};
use serde_json::{Value, json};

/// How long a Deployment takes to become ready on the simulator's clock.
pub const READY_DELAY: Duration = Duration::from_secs(5);

/// Short timeouts and backoff, so failure tests take well under a second.
pub fn fast_policy() -> RequestPolicy {
    RequestPolicy {
        timeout: Duration::from_millis(300),
        attempts: 3,
        backoff: Duration::from_millis(10),
    }
}

/// A served simulated cluster and our client for it.
pub struct Harness {
    pub sim: SimCluster,
    pub server: SimServer,
    pub cluster: Cluster,
    pub clock: ManualClock,
}

impl Harness {
    /// Moves the simulator's clock past the ready delay.
    pub fn let_deployments_become_ready(&self) {
        self.clock
            .advance(i64::try_from(READY_DELAY.as_millis()).unwrap_or(0) + 1_000);
    }

    /// Requests received since the last reset, as `METHOD path`.
    pub fn request_lines(&self) -> Vec<String> {
        self.sim
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// Writes that the server carried out (no injected fault answered them).
    pub fn successful_writes(&self) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r: &&RequestRecord| r.write && r.fault.is_none())
            .count()
    }
}

/// Starts a simulated cluster whose kubeconfig namespace is `namespace`.
pub async fn harness(namespace: &str) -> Result<Harness, Box<dyn std::error::Error>> {
    harness_with(namespace, fast_policy()).await
}

/// Starts a simulated cluster and a client with `policy`.
pub async fn harness_with(
    namespace: &str,
    policy: RequestPolicy,
) -> Result<Harness, Box<dyn std::error::Error>> {
    harness_configured(namespace, policy, |c| c).await
}

/// Starts a simulated cluster configured by `configure` (strict namespaces, a route
/// controller) and a client with `policy` whose waits run on the simulator's clock.
pub async fn harness_configured(
    namespace: &str,
    policy: RequestPolicy,
    configure: impl FnOnce(SimConfig) -> SimConfig,
) -> Result<Harness, Box<dyn std::error::Error>> {
    let clock = ManualClock::starting_at(1_767_225_600_000);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let sim = SimCluster::new(configure(SimConfig::new(shared.clone(), READY_DELAY)));
    let server = sim.serve("127.0.0.1:0".parse()?).await?;
    let kubeconfig = canary_sim::kubeconfig_yaml(&server.url, namespace);
    let cluster = Cluster::from_kubeconfig_yaml(&kubeconfig, None, policy)
        .await?
        .with_clock(shared);
    Ok(Harness {
        sim,
        server,
        cluster,
        clock,
    })
}

/// How the fixture routes traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// App Mesh: a VirtualRouter with one route of each of these kinds.
    AppMesh(Vec<&'static str>),
    /// Gateway API: an HTTPRoute or a GRPCRoute.
    Gateway(&'static str),
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AppMesh(kinds) => write!(f, "appmesh[{}]", kinds.join(",")),
            Self::Gateway(kind) => write!(f, "gateway-api[{kind}]"),
        }
    }
}

/// Every flavor the integration tests run over: each App Mesh route kind alone, all four
/// together, and both Gateway API route kinds.
pub fn all_flavors() -> Vec<Flavor> {
    vec![
        Flavor::AppMesh(vec!["httpRoute"]),
        Flavor::AppMesh(vec!["http2Route"]),
        Flavor::AppMesh(vec!["grpcRoute"]),
        Flavor::AppMesh(vec!["tcpRoute"]),
        Flavor::AppMesh(vec!["httpRoute", "http2Route", "grpcRoute", "tcpRoute"]),
        Flavor::Gateway("HTTPRoute"),
        Flavor::Gateway("GRPCRoute"),
    ]
}

/// A microservice as its template would render it.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub service: String,
    pub namespace: String,
    pub flavor: Flavor,
    pub port: u16,
}

impl Fixture {
    pub fn new(service: &str, namespace: &str, flavor: Flavor) -> Self {
        Self {
            service: service.into(),
            namespace: namespace.into(),
            flavor,
            port: 8080,
        }
    }

    pub fn name(&self, version: u32) -> String {
        labels::versioned_name(&self.service, version)
    }

    pub fn image(&self, version: u32) -> String {
        format!("registry.example/{}:{version}", self.service)
    }

    fn labels(&self, version: Option<u32>) -> Value {
        let mut l = json!({labels::MANAGED_BY: labels::MANAGER, labels::SERVICE: self.service});
        if let Some(v) = version {
            l[labels::VERSION] = json!(v.to_string());
        }
        l
    }

    fn meta(&self, name: &str, version: Option<u32>) -> Value {
        json!({"name": name, "namespace": self.namespace, "labels": self.labels(version)})
    }

    /// The objects named after `version`: Deployment, Service and (App Mesh) VirtualNode.
    pub fn version_objects(&self, version: u32) -> Vec<Value> {
        let name = self.name(version);
        let pod_labels = json!({"app": self.service, "version": version.to_string()});
        let mut out = Vec::new();
        if let Flavor::AppMesh(_) = self.flavor {
            out.push(json!({
                "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode",
                "metadata": self.meta(&name, Some(version)),
                "spec": {"awsName": format!("{name}-virtual-node"), "podSelector": {"matchLabels": pod_labels},
                         "listeners": [{"portMapping": {"port": self.port, "protocol": "http"}}],
                         "serviceDiscovery": {"dns": {"hostname": format!("{name}.{}.svc.cluster.local", self.namespace)}}}
            }));
        }
        out.push(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": self.meta(&name, Some(version)),
            "spec": {"ports": [{"port": self.port, "name": "http"}], "selector": pod_labels}
        }));
        out.push(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": self.meta(&name, Some(version)),
            "spec": {"replicas": 2, "selector": {"matchLabels": pod_labels},
                     "template": {"metadata": {"labels": pod_labels},
                                  "spec": {"containers": [{"name": self.service, "image": self.image(version),
                                                           "ports": [{"containerPort": self.port}]}]}}}
        }));
        out
    }

    /// The shared objects: the route with `weights` (version, weight), the
    /// VirtualService (App Mesh) and the apex Service.
    pub fn shared_objects(&self, weights: &[(u32, u8)]) -> Vec<Value> {
        let mut out = vec![self.route_object(weights)];
        if let Flavor::AppMesh(_) = self.flavor {
            out.push(json!({
                "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualService",
                "metadata": self.meta(&self.service, None),
                "spec": {"awsName": self.service,
                         "provider": {"virtualRouter": {"virtualRouterRef": {"name": self.service}}}}
            }));
        }
        out.push(json!({
            "apiVersion": "v1", "kind": "Service", "metadata": self.meta(&self.service, None),
            "spec": {"ports": [{"port": self.port, "name": "http"}]}
        }));
        out
    }

    /// What deploying `version` applies, with the route at `weights`.
    pub fn objects(&self, version: u32, weights: &[(u32, u8)]) -> Vec<Value> {
        let mut out = self.version_objects(version);
        out.extend(self.shared_objects(weights));
        out
    }

    fn route_object(&self, weights: &[(u32, u8)]) -> Value {
        let targets = self.backends(weights);
        let meta = self.meta(&self.service, None);
        match &self.flavor {
            Flavor::AppMesh(kinds) => {
                // Routes of every asked kind with their own fields; the provider fills in
                // the targets.
                let routes: Vec<Value> = kinds
                    .iter()
                    .enumerate()
                    .map(|(i, kind)| {
                        let spec = match *kind {
                            "httpRoute" | "http2Route" => json!({"match": {"prefix": "/"},
                                "retryPolicy": {"maxRetries": 2,
                                    "perRetryTimeout": {"unit": "ms", "value": 2000}, "httpRetryEvents": ["server-error"]}}),
                            "grpcRoute" => json!({"match": {"serviceName": "demo.Greeter"}}),
                            _ => json!({"timeout": {"idle": {"unit": "s", "value": 30}}}),
                        };
                        let mut r = json!({"name": format!("route-{i}-{kind}"), "priority": i + 1});
                        r[*kind] = spec;
                        r
                    })
                    .collect();
                let mut router =
                    APP_MESH.minimal_route(&self.service, &self.namespace, &[], self.port);
                router["metadata"] = meta;
                router["spec"]["awsName"] = json!(format!("{}-virtual-router", self.service));
                router["spec"]["routes"] = json!(routes);
                APP_MESH
                    .rewrite(&router, &targets, &Default::default())
                    .expect("the App Mesh provider fills the fixture's routes")
            }
            Flavor::Gateway(kind) => {
                let mut route =
                    GATEWAY_API.minimal_route(&self.service, &self.namespace, &targets, self.port);
                route["kind"] = json!(kind);
                route["metadata"] = meta;
                route["spec"]["parentRefs"] =
                    json!([{"name": "lattice-gateway", "sectionName": "http"}]);
                route
            }
        }
    }

    /// The route object's reference.
    pub fn route(&self) -> RouteRef {
        let (api_version, kind) = match &self.flavor {
            Flavor::AppMesh(_) => ("appmesh.k8s.aws/v1beta2", "VirtualRouter"),
            Flavor::Gateway(kind) => ("gateway.networking.k8s.io/v1", *kind),
        };
        RouteRef {
            api_version: api_version.into(),
            kind: kind.into(),
            name: self.service.clone(),
        }
    }

    /// The `(apiVersion, kind)` pairs the template renders, in template order.
    pub fn kinds(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for o in self.objects(1, &[(1, 100)]) {
            let k = (
                o["apiVersion"].as_str().unwrap_or_default().into(),
                o["kind"].as_str().unwrap_or_default().into(),
            );
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// Backends for `(version, weight)` pairs.
    pub fn backends(&self, weights: &[(u32, u8)]) -> Vec<Target> {
        weights
            .iter()
            .map(|(v, w)| Target::new(self.name(*v), *w))
            .collect()
    }

    /// The weights of every target list of the route as stored by the simulator.
    pub fn stored_weights(&self, sim: &SimCluster) -> Vec<Vec<(String, u64)>> {
        let route = self.route();
        let Some(obj) = sim.get_object(
            &route.api_version,
            &route.kind,
            &self.namespace,
            &route.name,
        ) else {
            return Vec::new();
        };
        let provider = TrafficProvider::of_object(&obj).expect("the route object has a provider");
        provider
            .read(&obj)
            .expect("the stored route can be read")
            .into_iter()
            .map(|list| {
                list.into_iter()
                    .map(|t| (t.name, u64::from(t.weight)))
                    .collect()
            })
            .collect()
    }

    /// The number of target lists the route has.
    pub fn route_lists(&self) -> usize {
        match &self.flavor {
            Flavor::AppMesh(kinds) => kinds.len(),
            Flavor::Gateway(_) => 1,
        }
    }

    /// Whether an object of this fixture exists on the simulator.
    pub fn exists(&self, sim: &SimCluster, api_version: &str, kind: &str, name: &str) -> bool {
        sim.get_object(api_version, kind, &self.namespace, name)
            .is_some()
    }

    /// The names (kind/name) of this service's objects on the simulator, sorted.
    pub fn objects_on(&self, sim: &SimCluster) -> Vec<String> {
        let mut out: Vec<String> = sim
            .list_objects(&self.namespace)
            .iter()
            .filter(|o| o["metadata"]["labels"][labels::SERVICE] == self.service.as_str())
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect();
        out.sort();
        out
    }
}
