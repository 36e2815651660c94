//! Generated requests to the simulated API server, answered in-process
//! ([`canary_sim::SimCluster::answer`]): any method, path, query string, content type and
//! body gets either a success (JSON that parses, or the text of `/healthz` and
//! `/metrics`) or a Kubernetes `Status` error whose `code` is the HTTP status, with a
//! reason and a message, never a 500 (no fault is injected) and never a panic; each
//! answer comes within a second. Several requests go to one cluster, so that writes
//! meet the objects earlier requests created.
//!
//! Shared by canary-sim's property tests (`tests/properties_requests.rs`) and the
//! `canary-fuzz` runner, which includes this file by path.

use std::time::{Duration, Instant};

use canary_sim::{SimAnswer, SimCluster, SimConfig};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};

/// One request.
#[derive(Debug, Clone)]
pub struct Req {
    /// The method, as sent.
    pub method: String,
    /// The request target: path and query string.
    pub uri: String,
    /// Headers, as sent.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// The resources the simulator serves, as `(group/version prefix, plural, apiVersion,
/// kind, namespaced)`.
const RESOURCES: &[(&str, &str, &str, &str, bool)] = &[
    ("/api/v1", "namespaces", "v1", "Namespace", false),
    ("/api/v1", "services", "v1", "Service", true),
    ("/api/v1", "pods", "v1", "Pod", true),
    ("/api/v1", "configmaps", "v1", "ConfigMap", true),
    ("/api/v1", "events", "v1", "Event", true),
    (
        "/apis/apps/v1",
        "deployments",
        "apps/v1",
        "Deployment",
        true,
    ),
    (
        "/apis/coordination.k8s.io/v1",
        "leases",
        "coordination.k8s.io/v1",
        "Lease",
        true,
    ),
    (
        "/apis/appmesh.k8s.aws/v1beta2",
        "virtualrouters",
        "appmesh.k8s.aws/v1beta2",
        "VirtualRouter",
        true,
    ),
    (
        "/apis/appmesh.k8s.aws/v1beta2",
        "virtualnodes",
        "appmesh.k8s.aws/v1beta2",
        "VirtualNode",
        true,
    ),
    (
        "/apis/appmesh.k8s.aws/v1beta2",
        "virtualservices",
        "appmesh.k8s.aws/v1beta2",
        "VirtualService",
        true,
    ),
    (
        "/apis/appmesh.k8s.aws/v1beta2",
        "meshes",
        "appmesh.k8s.aws/v1beta2",
        "Mesh",
        false,
    ),
    (
        "/apis/gateway.networking.k8s.io/v1",
        "httproutes",
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        true,
    ),
    (
        "/apis/gateway.networking.k8s.io/v1",
        "grpcroutes",
        "gateway.networking.k8s.io/v1",
        "GRPCRoute",
        true,
    ),
    (
        "/apis/gateway.networking.k8s.io/v1",
        "gateways",
        "gateway.networking.k8s.io/v1",
        "Gateway",
        true,
    ),
];

/// The kinds the bodies name.
const KINDS: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("apps/v1", "Deployment"),
    ("coordination.k8s.io/v1", "Lease"),
    ("appmesh.k8s.aws/v1beta2", "VirtualRouter"),
    ("appmesh.k8s.aws/v1beta2", "VirtualNode"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
    ("v1", "Status"),
    ("", ""),
];

const WORDS: &[&str] = &[
    "api",
    "apis",
    "v1",
    "v2",
    "namespaces",
    "yelb",
    "default",
    "kube-system",
    "services",
    "deployments",
    "apps",
    "status",
    "finalize",
    "scale",
    "openapi",
    "v3",
    "version",
    "healthz",
    "readyz",
    "metrics",
    "x",
    "web-1",
    "..",
    ".",
    "%2F",
    "%00",
    "~",
    "é",
    "a:b",
    "*",
];

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_owned),
        2 => "[a-z0-9][a-z0-9.-]{0,10}",
        1 => text(8).prop_map(|s| encode(&s)),
        1 => Just(String::new()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let resource = (
        prop::sample::select(RESOURCES),
        prop::option::of(segment()),
        prop::option::of(segment()),
        prop::option::of(prop_oneof![Just("status".to_owned()), segment()]),
        any::<bool>(),
    )
        .prop_map(|((prefix, plural, ..), ns, name, sub, namespaced)| {
            let mut p = prefix.to_owned();
            if namespaced && let Some(ns) = ns {
                p.push_str("/namespaces/");
                p.push_str(&ns);
            }
            p.push('/');
            p.push_str(plural);
            if let Some(n) = name {
                p.push('/');
                p.push_str(&n);
                if let Some(s) = sub {
                    p.push('/');
                    p.push_str(&s);
                }
            }
            p
        });
    let discovery = prop::sample::select(
        &[
            "/",
            "/api",
            "/apis",
            "/api/v1",
            "/apis/apps",
            "/apis/apps/v1",
            "/apis/nope/v9",
            "/version",
            "/openapi/v3",
            "/openapi/v3/apis/apps/v1",
            "/openapi/v3/nope",
            "/healthz",
            "/livez",
            "/metrics",
            "//api//v1//services",
        ][..],
    )
    .prop_map(str::to_owned);
    let free = (
        proptest::collection::vec(segment(), 0..8),
        prop::sample::select(&["/", "//", "/./"][..]),
    )
        .prop_map(|(segs, lead)| format!("{lead}{}", segs.join("/")));
    prop_oneof![6 => resource, 2 => discovery, 2 => free]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => prop::sample::select(&[
            "labelSelector", "fieldSelector", "watch", "dryRun", "fieldManager", "force",
            "timeoutSeconds", "resourceVersion", "includeObject", "limit", "continue",
        ][..]).prop_map(str::to_owned),
        1 => "[a-zA-Z]{1,8}",
    ];
    let value = prop_oneof![
        3 => prop::sample::select(&[
            "", "true", "1", "All", "app=web", "app!=web,tier", "app in (a,b)", "app notin (x)",
            "!app", "metadata.name=x", "metadata.namespace!=y", "spec.x=y", "a==b", "a=",
            "in (", "a in a,b)", "=", ",,", "(", "app in ()", "Object", "None", "-1", "99999999999999999999",
        ][..]).prop_map(encode),
        2 => text(16).prop_map(|s| encode(&s)),
        1 => "[ -~]{0,12}",
    ];
    proptest::collection::vec((key, value), 0..4).prop_map(|pairs| {
        if pairs.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("?{}", parts.join("&"))
    })
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        6 => prop::sample::select(&[
            "application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
            "application/json-patch+json", "application/merge-patch+json",
            "application/apply-patch+yaml", "application/strategic-merge-patch+json",
            "application/json; charset=utf-8", "APPLICATION/JSON", "text/plain", "", ";",
            "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
        ][..]).prop_map(|s| Some(s.to_owned())),
        1 => text(12).prop_map(Some),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        text(10).prop_map(Value::String),
        prop::sample::select(WORDS).prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    prop::sample::select(
                        &[
                            "metadata",
                            "name",
                            "namespace",
                            "labels",
                            "spec",
                            "status",
                            "op",
                            "path",
                            "value",
                            "from",
                            "resourceVersion",
                            "uid",
                            "generation",
                            "managedFields",
                            "$patch",
                            "$retainKeys",
                            "items",
                            "selector",
                            "replicas",
                            "containers",
                            "dryRun",
                            "preconditions",
                            "kind",
                            "apiVersion",
                        ][..]
                    )
                    .prop_map(str::to_owned),
                    "[a-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object of a known kind, with generated name, labels and spec.
fn object() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(KINDS),
        prop_oneof![3 => prop::sample::select(WORDS).prop_map(str::to_owned), 1 => text(8)],
        prop::option::of(prop::sample::select(WORDS)),
        proptest::collection::btree_map("[a-z]{1,4}", prop_oneof!["[a-z]{0,4}", text(4)], 0..3),
        json_value(),
        prop::option::of(json_value()),
    )
        .prop_map(|((api_version, kind), name, ns, labels, spec, extra)| {
            let mut o = json!({
                "apiVersion": api_version,
                "kind": kind,
                "metadata": { "name": name, "labels": labels },
                "spec": spec,
            });
            if let Some(ns) = ns {
                o["metadata"]["namespace"] = json!(ns);
            }
            if let Some(Value::Object(extra)) = extra
                && let Some(meta) = o["metadata"].as_object_mut()
            {
                meta.extend(extra);
            }
            o
        })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        4 => object().prop_map(|o| o.to_string().into_bytes()),
        2 => object().prop_map(|o| serde_saphyr::to_string(&o).unwrap_or_default().into_bytes()),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(
            (prop::sample::select(&["add", "remove", "replace", "move", "copy", "test", "nope"][..]),
             prop::sample::select(&["/metadata/labels/a", "/spec", "/metadata/name", "/x/0/-", "", "/", "~1", "/spec/replicas"][..]),
             json_value()),
            0..4,
        ).prop_map(|ops| {
            let ops: Vec<Value> = ops.into_iter().map(|(op, path, value)| json!({"op": op, "path": path, "value": value, "from": path})).collect();
            Value::Array(ops).to_string().into_bytes()
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| {
            let mut out = b"k8s\0".to_vec();
            out.extend(b);
            out
        }),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => text(32).prop_map(String::into_bytes),
    ]
}

fn request() -> impl Strategy<Value = Req> {
    let method = prop_oneof![
        8 => prop::sample::select(&["GET", "POST", "PUT", "PATCH", "DELETE"][..]).prop_map(str::to_owned),
        1 => prop::sample::select(&["HEAD", "OPTIONS", "get", "CONNECT", "TRACE", "BREW"][..]).prop_map(str::to_owned),
        1 => text(6),
    ];
    let headers = (
        content_type(),
        prop::option::of(prop::sample::select(
            &[
                "application/json",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                "*/*",
                "application/vnd.kubernetes.protobuf",
            ][..],
        )),
        prop::option::of(prop_oneof!["[a-z]{1,8}/[0-9.]{1,5}", text(8)]),
        prop::option::of((text(6), text(6))),
    )
        .prop_map(|(ct, accept, agent, other)| {
            let mut h = Vec::new();
            if let Some(ct) = ct {
                h.push(("content-type".to_owned(), ct));
            }
            if let Some(a) = accept {
                h.push(("accept".to_owned(), a.to_owned()));
            }
            if let Some(a) = agent {
                h.push(("user-agent".to_owned(), a));
            }
            if let Some(o) = other {
                h.push(o);
            }
            h
        });
    (method, path(), query(), headers, body()).prop_map(|(method, path, query, headers, body)| {
        Req {
            method,
            uri: format!("{path}{query}"),
            headers,
            body,
        }
    })
}

/// A request that makes sense to the API (a body of the kind its path names, in a
/// content type the verb takes), with a generated name, labels and spec, so that the
/// cases reach the writes, selectors and patches and not only the early refusals.
fn coherent() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(RESOURCES),
        prop::sample::select(&["yelb", "default", "shop"][..]),
        prop::sample::select(&["web", "web-1", "db", "a.b", "x"][..]),
        0usize..7,
        json_value(),
        proptest::collection::btree_map(prop::sample::select(&["app", "tier", "version"][..]), prop::sample::select(&["web", "db", "1", "2"][..]), 0..3),
        query(),
        any::<bool>(),
    )
        .prop_map(|((prefix, plural, api_version, kind, namespaced), ns, name, verb, spec, labels, query, status)| {
            let base = if namespaced { format!("{prefix}/namespaces/{ns}/{plural}") } else { format!("{prefix}/{plural}") };
            let object_path = if status { format!("{base}/{name}/status") } else { format!("{base}/{name}") };
            let mut object = json!({
                "apiVersion": api_version,
                "kind": kind,
                "metadata": { "name": name, "labels": labels },
                "spec": spec,
            });
            if namespaced {
                object["metadata"]["namespace"] = json!(ns);
            }
            let (method, uri, content_type, body) = match verb {
                0 => ("POST", base, "application/json", object.to_string()),
                1 => ("PUT", object_path, "application/yaml", serde_saphyr::to_string(&object).unwrap_or_default()),
                2 => ("PATCH", format!("{object_path}?fieldManager=fuzz"), "application/apply-patch+yaml", object.to_string()),
                3 => ("PATCH", object_path, "application/merge-patch+json", json!({"metadata": {"labels": object["metadata"]["labels"]}, "spec": object["spec"]}).to_string()),
                4 => ("PATCH", object_path, "application/strategic-merge-patch+json", json!({"spec": object["spec"]}).to_string()),
                5 => ("DELETE", object_path, "application/json", String::new()),
                _ => ("GET", base, "", String::new()),
            };
            Req {
                method: method.to_owned(),
                uri: if uri.contains('?') { format!("{uri}{}", query.replacen('?', "&", 1)) } else { format!("{uri}{query}") },
                headers: vec![("content-type".to_owned(), content_type.to_owned())],
                body: body.into_bytes(),
            }
        })
}

/// One to five requests to one cluster, most of them sensible, some anything.
pub fn requests() -> impl Strategy<Value = Vec<Req>> {
    proptest::collection::vec(prop_oneof![3 => coherent(), 2 => request()], 1..6)
}

/// Two to four sensible requests (objects created, patched, read), then one to three of
/// anything against the objects they left.
pub fn writes_then_anything() -> impl Strategy<Value = Vec<Req>> {
    (
        proptest::collection::vec(coherent(), 2..5),
        proptest::collection::vec(request(), 1..4),
    )
        .prop_map(|(mut first, then)| {
            first.extend(then);
            first
        })
}

/// What any answer must be.
pub fn check_answer(req: &Req, answer: &SimAnswer) -> Result<(), TestCaseError> {
    let status = answer.status;
    prop_assert!(
        (200..600).contains(&status),
        "status {} for {:?}",
        status,
        req
    );
    prop_assert!(
        status != 500,
        "an internal error for {:?}: {}",
        req,
        String::from_utf8_lossy(&answer.body)
    );
    if status >= 400 {
        prop_assert_eq!(
            answer.content_type.as_str(),
            "application/json",
            "an error that is not JSON for {:?}",
            req
        );
        let v: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            TestCaseError::fail(format!("an error body that is not JSON ({e}) for {req:?}"))
        })?;
        prop_assert_eq!(
            &v["kind"],
            "Status",
            "an error that is not a Status for {:?}: {}",
            req,
            v
        );
        prop_assert_eq!(&v["apiVersion"], "v1");
        prop_assert_eq!(&v["status"], "Failure");
        prop_assert_eq!(
            v["code"].as_u64(),
            Some(u64::from(status)),
            "the Status code is not the HTTP status: {}",
            v
        );
        prop_assert!(
            v["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "a Status without a reason: {}",
            v
        );
        prop_assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "a Status without a message: {}",
            v
        );
    } else if answer.content_type == "application/json" && !answer.body.is_empty() {
        let v: Value = serde_json::from_slice(&answer.body).map_err(|e| {
            TestCaseError::fail(format!("a success that is not JSON ({e}) for {req:?}"))
        })?;
        prop_assert!(
            v.is_object(),
            "a success that is not an object for {:?}: {}",
            req,
            v
        );
    } else {
        prop_assert!(
            answer.body.is_empty() || answer.content_type.starts_with("text/plain"),
            "a success of type `{}` for {:?}",
            answer.content_type,
            req
        );
    }
    Ok(())
}

/// The property: every request of the sequence gets a valid answer within a second.
pub fn check(requests: &[Req]) -> Result<(), TestCaseError> {
    let sim = SimCluster::new(SimConfig::new(
        std::sync::Arc::new(canary_core::clock::ManualClock::starting_at(
            1_767_225_600_000,
        )),
        Duration::from_secs(2),
    ));
    for req in requests {
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let started = Instant::now();
        let answer = sim.answer(&req.method, &req.uri, &headers, &req.body);
        let took = started.elapsed();
        prop_assert!(took < Duration::from_secs(1), "{:?} took {:?}", req, took);
        check_answer(req, &answer)?;
    }
    Ok(())
}
