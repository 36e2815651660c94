//! The simulated route controllers: the status the AWS Gateway API Controller writes on
//! HTTPRoutes and GRPCRoutes and the App Mesh controller on VirtualRouters, after a
//! delay on the manual clock, never, or refusing; a backendRef to a Service that does
//! not exist; observedGeneration against metadata.generation; and status and spec
//! written apart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use canary_core::clock::ManualClock;
use canary_sim::{LATTICE_CONTROLLER_NAME, RouteController, SimCluster, SimServer};
use serde_json::{Value, json};

const GATEWAY: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/shop";
const APPMESH: &str = "/apis/appmesh.k8s.aws/v1beta2/namespaces/shop";

/// The manual clock's start as Kubernetes writes it.
const T0_STAMP: &str = "2026-01-01T00:00:00Z";

fn stamp(offset_secs: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp(common::T0 / 1000 + offset_secs).unwrap();
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

struct Cluster {
    sim: SimCluster,
    _server: SimServer,
    clock: ManualClock,
    client: kube::Client,
}

impl Cluster {
    async fn start(controller: RouteController) -> Self {
        let (sim, server, clock) =
            common::start_with(|c| c.with_strict_namespaces().with_route_controller(controller))
                .await;
        sim.create_namespace("shop").unwrap();
        let client = common::client(&server, "shop").await;
        Self {
            sim,
            _server: server,
            clock,
            client,
        }
    }

    async fn send(&self, method: &str, path: &str, content_type: &str, body: &Value) -> Value {
        let (code, answer) =
            common::send(&self.client, method, path, content_type, &body.to_string()).await;
        assert!(
            (200..300).contains(&code),
            "{method} {path}: {code} {answer}"
        );
        answer
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        self.send("POST", path, "application/json", body).await
    }

    async fn get(&self, path: &str) -> Value {
        let (code, answer) = common::send(&self.client, "GET", path, "application/json", "").await;
        assert_eq!(code, 200, "GET {path}: {answer}");
        answer
    }

    async fn service(&self, name: &str) {
        self.post(
            "/api/v1/namespaces/shop/services",
            &json!({
                "apiVersion": "v1", "kind": "Service", "metadata": { "name": name },
                "spec": { "ports": [{ "port": 80 }] }
            }),
        )
        .await;
    }

    fn advance(&self, millis: i64) {
        self.clock.set(self.clock_now() + millis);
    }

    fn clock_now(&self) -> i64 {
        use canary_core::clock::Clock;
        self.clock.now_millis()
    }
}

fn http_route(backends: &[(&str, u64)]) -> Value {
    let refs: Vec<Value> = backends
        .iter()
        .map(|(n, w)| json!({ "name": n, "port": 80, "weight": w }))
        .collect();
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": { "name": "web" },
        "spec": {
            "parentRefs": [{ "name": "lattice", "sectionName": "http" }],
            "rules": [{ "backendRefs": refs }]
        }
    })
}

fn condition(
    kind: &str,
    ok: bool,
    reason: &str,
    message: &str,
    generation: i64,
    at: &str,
) -> Value {
    json!({
        "type": kind, "status": if ok { "True" } else { "False" }, "reason": reason,
        "message": message, "observedGeneration": generation, "lastTransitionTime": at,
    })
}

fn parents(conditions: [Value; 2]) -> Value {
    json!({ "parents": [{
        "parentRef": { "name": "lattice", "sectionName": "http" },
        "controllerName": LATTICE_CONTROLLER_NAME,
        "conditions": conditions,
    }]})
}

#[tokio::test]
async fn an_accepted_http_route_shows_the_lattice_controllers_status_after_the_write() {
    let c = Cluster::start(RouteController::default()).await;
    c.service("web-1").await;
    c.service("web-2").await;
    let created = c
        .post(
            &format!("{GATEWAY}/httproutes"),
            &http_route(&[("web-1", 90), ("web-2", 10)]),
        )
        .await;
    assert!(
        created.get("status").is_none(),
        "the write's answer has no status: {created}"
    );
    let writes = c.sim.write_count();

    let route = c.get(&format!("{GATEWAY}/httproutes/web")).await;
    assert_eq!(
        route["status"],
        parents([
            condition("Accepted", true, "Accepted", "", 1, T0_STAMP),
            condition("ResolvedRefs", true, "ResolvedRefs", "", 1, T0_STAMP),
        ])
    );
    assert_eq!(route["metadata"]["generation"], 1);
    assert_eq!(route["spec"], created["spec"]);
    let created_rv: u64 = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let status_rv: u64 = route["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        status_rv > created_rv,
        "the status write moved the resourceVersion"
    );
    assert_eq!(
        c.sim.write_count(),
        writes,
        "the controller's writes are not client requests"
    );

    // A GRPCRoute gets the same shape.
    let mut grpc = http_route(&[("web-1", 100)]);
    grpc["kind"] = json!("GRPCRoute");
    c.post(&format!("{GATEWAY}/grpcroutes"), &grpc).await;
    let got = c
        .sim
        .get_object("gateway.networking.k8s.io/v1", "GRPCRoute", "shop", "web")
        .unwrap();
    assert_eq!(
        got["status"]["parents"][0]["controllerName"],
        LATTICE_CONTROLLER_NAME
    );
    assert_eq!(
        got["status"]["parents"][0]["conditions"][1]["reason"],
        "ResolvedRefs"
    );
}

#[tokio::test]
async fn observed_generation_follows_the_spec_after_the_delay_on_the_clock() {
    let c = Cluster::start(RouteController::Accepting {
        delay: Duration::from_secs(5),
    })
    .await;
    c.service("web-1").await;
    c.service("web-2").await;
    let path = format!("{GATEWAY}/httproutes/web");
    c.post(
        &format!("{GATEWAY}/httproutes"),
        &http_route(&[("web-1", 100)]),
    )
    .await;
    assert!(c.get(&path).await.get("status").is_none());
    c.advance(4_999);
    assert!(
        c.get(&path).await.get("status").is_none(),
        "not before the delay"
    );
    c.advance(1);
    let first = c.get(&path).await;
    assert_eq!(
        first["status"]["parents"][0]["conditions"][0]["observedGeneration"],
        1
    );
    assert_eq!(
        first["status"]["parents"][0]["conditions"][0]["lastTransitionTime"],
        stamp(5)
    );

    // A weight change: generation 2, the status still says 1 until the controller saw it.
    let patched = c
        .send(
            "PATCH",
            &path,
            "application/merge-patch+json",
            &json!({ "spec": { "rules": [{ "backendRefs": [
                { "name": "web-1", "port": 80, "weight": 50 },
                { "name": "web-2", "port": 80, "weight": 50 }
            ]}]}}),
        )
        .await;
    assert_eq!(patched["metadata"]["generation"], 2);
    assert_eq!(
        patched["status"], first["status"],
        "a spec write keeps the status"
    );
    c.advance(4_000);
    let stale = c.get(&path).await;
    assert_eq!(stale["metadata"]["generation"], 2);
    assert_eq!(
        stale["status"]["parents"][0]["conditions"][0]["observedGeneration"],
        1
    );
    // A metadata-only change moves no generation and queues nothing new.
    c.send(
        "PATCH",
        &path,
        "application/merge-patch+json",
        &json!({ "metadata": { "labels": { "a": "b" } } }),
    )
    .await;
    c.advance(1_000);
    let seen = c.get(&path).await;
    assert_eq!(seen["metadata"]["generation"], 2);
    for cond in seen["status"]["parents"][0]["conditions"]
        .as_array()
        .unwrap()
    {
        assert_eq!(cond["observedGeneration"], 2, "{seen}");
        // Still True: the transition time stays that of the first acceptance.
        assert_eq!(cond["lastTransitionTime"], stamp(5), "{seen}");
    }

    // Two writes within one delay: the controller reads the route when it gets to it.
    c.send(
        "PATCH",
        &path,
        "application/merge-patch+json",
        &json!({ "spec": { "hostnames": ["a.example"] } }),
    )
    .await;
    c.advance(2_000);
    c.send(
        "PATCH",
        &path,
        "application/merge-patch+json",
        &json!({ "spec": { "hostnames": ["b.example"] } }),
    )
    .await;
    c.advance(3_000);
    let folded = c.get(&path).await;
    assert_eq!(folded["metadata"]["generation"], 4);
    assert_eq!(
        folded["status"]["parents"][0]["conditions"][0]["observedGeneration"],
        4
    );
}

#[tokio::test]
async fn a_backend_service_that_does_not_exist_is_reported_until_it_appears() {
    let c = Cluster::start(RouteController::default()).await;
    c.service("web-1").await;
    let path = format!("{GATEWAY}/httproutes/web");
    c.post(
        &format!("{GATEWAY}/httproutes"),
        &http_route(&[("web-1", 90), ("web-3", 10)]),
    )
    .await;
    let route = c.get(&path).await;
    assert_eq!(
        route["status"],
        parents([
            condition("Accepted", true, "Accepted", "", 1, T0_STAMP),
            condition(
                "ResolvedRefs",
                false,
                "BackendNotFound",
                "backendRef name: web-3",
                1,
                T0_STAMP
            ),
        ])
    );
    c.advance(7_000);
    c.service("web-3").await;
    let route = c.get(&path).await;
    assert_eq!(
        route["status"],
        parents([
            condition("Accepted", true, "Accepted", "", 1, T0_STAMP),
            condition("ResolvedRefs", true, "ResolvedRefs", "", 1, &stamp(7)),
        ])
    );
    assert_eq!(route["metadata"]["generation"], 1);
    // Deleting it again is seen too; a backendRef of another kind is InvalidKind.
    let (code, _) = common::send(
        &c.client,
        "DELETE",
        "/api/v1/namespaces/shop/services/web-3",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 200);
    let route = c.get(&path).await;
    assert_eq!(
        route["status"]["parents"][0]["conditions"][1]["reason"],
        "BackendNotFound"
    );
    let mut other = http_route(&[("web-1", 100)]);
    other["metadata"]["name"] = json!("bucket");
    other["spec"]["rules"][0]["backendRefs"][0]["kind"] = json!("S3Bucket");
    c.post(&format!("{GATEWAY}/httproutes"), &other).await;
    let route = c.get(&format!("{GATEWAY}/httproutes/bucket")).await;
    assert_eq!(
        route["status"]["parents"][0]["conditions"][1],
        condition(
            "ResolvedRefs",
            false,
            "InvalidKind",
            "S3Bucket",
            1,
            &stamp(7)
        )
    );
}

#[tokio::test]
async fn a_controller_that_never_answers_writes_no_status_and_a_refusing_one_says_why() {
    let c = Cluster::start(RouteController::Never).await;
    c.service("web-1").await;
    let path = format!("{GATEWAY}/httproutes/web");
    c.post(
        &format!("{GATEWAY}/httproutes"),
        &http_route(&[("web-1", 100)]),
    )
    .await;
    c.advance(600_000);
    assert!(c.get(&path).await.get("status").is_none());

    // Refusing through ResolvedRefs (a reason the Gateway API gives that condition).
    c.sim.set_route_controller(RouteController::Refusing {
        reason: "RefNotPermitted".into(),
        message: "no ReferenceGrant allows it".into(),
    });
    let at = stamp(600);
    assert_eq!(
        c.get(&path).await["status"],
        parents([
            condition("Accepted", true, "Accepted", "", 1, &at),
            condition(
                "ResolvedRefs",
                false,
                "RefNotPermitted",
                "no ReferenceGrant allows it",
                1,
                &at
            ),
        ])
    );
    // Through Accepted, for one route only.
    c.sim.set_route_controller(RouteController::default());
    c.sim.set_route_controller_for(
        "shop",
        "web",
        RouteController::Refusing {
            reason: "NoMatchingParent".into(),
            message: "no listener http".into(),
        },
    );
    let mut other = http_route(&[("web-1", 100)]);
    other["metadata"]["name"] = json!("other");
    c.post(&format!("{GATEWAY}/httproutes"), &other).await;
    let refused = c.get(&path).await;
    assert_eq!(
        refused["status"],
        parents([
            condition(
                "Accepted",
                false,
                "NoMatchingParent",
                "no listener http",
                1,
                &at
            ),
            condition("ResolvedRefs", true, "ResolvedRefs", "", 1, &at),
        ])
    );
    let accepted = c.get(&format!("{GATEWAY}/httproutes/other")).await;
    assert_eq!(
        accepted["status"]["parents"][0]["conditions"][0]["status"],
        "True"
    );

    // A stored Gateway whose listeners do not match the ref's sectionName.
    c.post(
        &format!("{GATEWAY}/gateways"),
        &json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": { "name": "lattice" },
            "spec": { "gatewayClassName": "amazon-vpc-lattice",
                      "listeners": [{ "name": "https", "port": 443, "protocol": "HTTPS" }] }
        }),
    )
    .await;
    let unmatched = c.get(&format!("{GATEWAY}/httproutes/other")).await;
    assert_eq!(
        unmatched["status"]["parents"][0]["conditions"][0],
        condition("Accepted", false, "NoMatchingParent", "", 1, &at)
    );
}

fn virtual_router(targets: &[(&str, u64)]) -> Value {
    let targets: Vec<Value> = targets
        .iter()
        .map(|(n, w)| json!({ "virtualNodeRef": { "name": n }, "weight": w }))
        .collect();
    json!({
        "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
        "metadata": { "name": "web" },
        "spec": {
            "listeners": [{ "portMapping": { "port": 80, "protocol": "http" } }],
            "routes": [{ "name": "primary", "httpRoute": {
                "match": { "prefix": "/" }, "action": { "weightedTargets": targets } } }]
        }
    })
}

async fn virtual_node(c: &Cluster, name: &str) {
    c.post(
        &format!("{APPMESH}/virtualnodes"),
        &json!({ "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualNode", "metadata": { "name": name }, "spec": {} }),
    )
    .await;
}

#[tokio::test]
async fn a_virtual_router_shows_the_app_mesh_controllers_status() {
    let c = Cluster::start(RouteController::Accepting {
        delay: Duration::from_secs(2),
    })
    .await;
    virtual_node(&c, "web-1").await;
    let path = format!("{APPMESH}/virtualrouters/web");
    let created = c
        .post(
            &format!("{APPMESH}/virtualrouters"),
            &virtual_router(&[("web-1", 100)]),
        )
        .await;
    assert!(created.get("status").is_none());
    c.advance(2_000);
    let router = c.get(&path).await;
    let arn = "arn:aws:appmesh:us-west-2:111122223333:mesh/mesh/virtualRouter/web_shop";
    assert_eq!(
        router["status"],
        json!({
            "conditions": [{ "type": "VirtualRouterActive", "status": "True", "lastTransitionTime": stamp(2) }],
            "observedGeneration": 1,
            "routeARNs": { "primary": format!("{arn}/route/primary") },
            "virtualRouterARN": arn,
        })
    );

    // A target VirtualNode that does not exist: the controller fails and writes nothing,
    // until the VirtualNode is created.
    c.send("PATCH", &path, "application/merge-patch+json", &json!({ "spec": { "routes": virtual_router(&[("web-1", 50), ("web-2", 50)])["spec"]["routes"] } })).await;
    c.advance(10_000);
    let waiting = c.get(&path).await;
    assert_eq!(
        (
            waiting["metadata"]["generation"].clone(),
            waiting["status"]["observedGeneration"].clone()
        ),
        (json!(2), json!(1))
    );
    virtual_node(&c, "web-2").await;
    c.advance(2_000);
    let router = c.get(&path).await;
    assert_eq!(router["status"]["observedGeneration"], 2);
    assert_eq!(
        router["status"]["conditions"][0]["lastTransitionTime"],
        stamp(2)
    );

    c.sim.set_route_controller(RouteController::Refusing {
        reason: "VirtualNodeNotActive".into(),
        message: "virtualNode is not active yet".into(),
    });
    let refused = c.get(&path).await;
    assert_eq!(
        refused["status"]["conditions"],
        json!([{
            "type": "VirtualRouterActive", "status": "False", "lastTransitionTime": stamp(14),
            "reason": "VirtualNodeNotActive", "message": "virtualNode is not active yet",
        }])
    );
    assert_eq!(refused["status"]["observedGeneration"], 2);
}

#[tokio::test]
async fn status_and_spec_are_written_apart() {
    let c = Cluster::start(RouteController::default()).await;
    virtual_node(&c, "web-1").await;
    let path = format!("{APPMESH}/virtualrouters/web");
    c.post(
        &format!("{APPMESH}/virtualrouters"),
        &virtual_router(&[("web-1", 100)]),
    )
    .await;
    let live = c.get(&path).await;
    let status = live["status"].clone();
    assert_eq!(status["conditions"][0]["status"], "True");

    // A client's PUT of the whole object with another status keeps the controller's.
    let mut replaced = live.clone();
    replaced["status"] = json!({ "observedGeneration": 99 });
    replaced["spec"]["routes"][0]["httpRoute"]["match"]["prefix"] = json!("/v2");
    let stored = c.send("PUT", &path, "application/json", &replaced).await;
    assert_eq!(stored["status"], status);
    assert_eq!(stored["metadata"]["generation"], 2);

    // A client's status write changes neither spec nor generation (and the controller,
    // which only reacts to spec changes, leaves it).
    let written = c
        .send(
            "PATCH",
            &format!("{path}/status"),
            "application/merge-patch+json",
            &json!({ "status": { "observedGeneration": 7 }, "spec": { "routes": [] } }),
        )
        .await;
    assert_eq!(written["status"]["observedGeneration"], 7);
    assert_eq!(written["metadata"]["generation"], 2);
    assert_eq!(
        written["spec"]["routes"][0]["httpRoute"]["match"]["prefix"],
        "/v2"
    );
    assert_eq!(c.get(&path).await["status"]["observedGeneration"], 7);
    // Nor does the controller's own write touch the spec.
    let route = c
        .sim
        .get_object("appmesh.k8s.aws/v1beta2", "VirtualRouter", "shop", "web")
        .unwrap();
    assert_eq!(route["spec"], written["spec"]);
}
