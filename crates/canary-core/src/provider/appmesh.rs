//! AWS App Mesh: the weights are the `weightedTargets` of every route of the
//! VirtualRouter (`spec.routes[*].{httpRoute,http2Route,grpcRoute,tcpRoute}.action`).
//! Every route gets exactly the given targets; every other field of the router, of the
//! routes and of a kept target (its `port`, say) stays as it was.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{
    RouteProvider, RouteStatus, ShapeError, Target, TrafficProvider, condition, refusal, weight_of,
};

type Result<T> = std::result::Result<T, ShapeError>;

/// The handle of this provider (`traffic_provider: appmesh`).
pub const APP_MESH: TrafficProvider = TrafficProvider(&AppMesh);

/// The route kinds of an App Mesh VirtualRouter that carry `weightedTargets`.
pub const ROUTE_KINDS: [&str; 4] = ["httpRoute", "http2Route", "grpcRoute", "tcpRoute"];

/// App Mesh's knowledge of its VirtualRouter.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppMesh;

fn shape(route: &Value, message: String) -> ShapeError {
    ShapeError::of(route, "VirtualRouter", message)
}

/// The names of the kinds present in one route entry.
fn kinds_of(entry: &Value) -> Vec<&'static str> {
    ROUTE_KINDS
        .iter()
        .copied()
        .filter(|k| entry.get(*k).is_some_and(Value::is_object))
        .collect()
}

fn routes(router: &Value) -> Result<&Vec<Value>> {
    match router["spec"]["routes"].as_array() {
        Some(r) if !r.is_empty() => Ok(r),
        _ => Err(shape(router, "has no spec.routes".into())),
    }
}

impl RouteProvider for AppMesh {
    fn name(&self) -> &'static str {
        "appmesh"
    }

    fn route_objects(&self) -> &'static str {
        "an App Mesh VirtualRouter (appmesh.k8s.aws)"
    }

    fn owns(&self, api_version: &str, kind: &str) -> bool {
        api_version.split('/').next() == Some("appmesh.k8s.aws") && kind == "VirtualRouter"
    }

    fn target_lists_path(&self) -> &'static str {
        "spec.routes[].<kind>Route.action.weightedTargets"
    }

    fn render_targets(&self, targets: &[Target], _port: Option<u16>) -> String {
        targets
            .iter()
            .map(|t| {
                format!(
                    "{{virtualNodeRef: {{name: {}}}, weight: {}}}",
                    t.name, t.weight
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// App Mesh's CRD has `weight` required; a target without one reads as 0.
    fn read(&self, router: &Value) -> Result<Vec<Vec<Target>>> {
        let mut out = Vec::new();
        for (i, entry) in routes(router)?.iter().enumerate() {
            let kinds = kinds_of(entry);
            if kinds.is_empty() {
                return Err(shape(
                    router,
                    format!("route #{i} has none of {}", ROUTE_KINDS.join(", ")),
                ));
            }
            for kind in kinds {
                let mut list = Vec::new();
                for t in entry[kind]["action"]["weightedTargets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let Some(target) = t["virtualNodeRef"]["name"].as_str() else {
                        return Err(shape(
                            router,
                            format!("route #{i} {kind}: a target has no virtualNodeRef.name"),
                        ));
                    };
                    list.push(Target {
                        name: target.to_owned(),
                        weight: weight_of(router, "VirtualRouter", t, 0)?,
                    });
                }
                out.push(list);
            }
        }
        Ok(out)
    }

    fn rewrite(
        &self,
        router: &Value,
        targets: &[Target],
        _ports: &BTreeMap<String, u16>,
    ) -> Result<Value> {
        let mut out = router.clone();
        let entries = routes(router)?;
        for (i, entry) in entries.iter().enumerate() {
            if kinds_of(entry).is_empty() {
                return Err(shape(
                    router,
                    format!("route #{i} has none of {}", ROUTE_KINDS.join(", ")),
                ));
            }
        }
        let Some(out_entries) = out
            .pointer_mut("/spec/routes")
            .and_then(Value::as_array_mut)
        else {
            return Err(shape(router, "has no spec.routes".into()));
        };
        for entry in out_entries.iter_mut() {
            for kind in kinds_of(entry) {
                let old: Vec<Value> = entry[kind]["action"]["weightedTargets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let new: Vec<Value> = targets.iter().map(|t| target_for(&old, t)).collect();
                let Some(route) = entry.get_mut(kind).and_then(Value::as_object_mut) else {
                    continue;
                };
                let action = route
                    .entry("action")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !action.is_object() {
                    *action = Value::Object(Map::new());
                }
                if let Some(action) = action.as_object_mut() {
                    action.insert("weightedTargets".into(), Value::Array(new));
                }
            }
        }
        Ok(out)
    }

    fn minimal_route(&self, name: &str, namespace: &str, targets: &[Target], port: u16) -> Value {
        minimal_router(name, namespace, targets, port)
    }

    /// The App Mesh controller sets `status.conditions[type=VirtualRouterActive]` and
    /// `status.observedGeneration` once it has programmed the router in App Mesh.
    fn status(&self, router: &Value) -> RouteStatus {
        let status = &router["status"];
        match condition(&status["conditions"], "VirtualRouterActive") {
            Some(("True", ..)) => match status["observedGeneration"].as_i64() {
                Some(observed_generation) => RouteStatus::Accepted {
                    observed_generation,
                },
                None => RouteStatus::Pending,
            },
            Some(("False", reason, message, _)) => RouteStatus::Refused {
                reason: refusal("VirtualRouterActive", reason, message),
                observed_generation: status["observedGeneration"].as_i64(),
            },
            _ => RouteStatus::Pending,
        }
    }
}

/// A VirtualRouter whose one HTTP route sends traffic to `targets`.
fn minimal_router(name: &str, namespace: &str, targets: &[Target], port: u16) -> Value {
    let targets: Vec<Value> = targets.iter().map(|t| target_for(&[], t)).collect();
    json!({
        "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "listeners": [{"portMapping": {"port": port, "protocol": "http"}}],
            "routes": [{"name": "route", "httpRoute": {
                "match": {"prefix": "/"}, "action": {"weightedTargets": targets}}}]
        }
    })
}

/// The target for `b`: the existing one of that name with its weight changed, or a new
/// one that takes the `port` and `virtualNodeRef.namespace` of the first existing target.
fn target_for(old: &[Value], b: &Target) -> Value {
    if let Some(existing) = old
        .iter()
        .find(|t| t["virtualNodeRef"]["name"].as_str() == Some(b.name.as_str()))
    {
        let mut t = existing.clone();
        t["weight"] = json!(b.weight);
        return t;
    }
    let mut t = json!({"virtualNodeRef": {"name": b.name}, "weight": b.weight});
    if let Some(first) = old.first() {
        if let Some(port) = first.get("port") {
            t["port"] = port.clone();
        }
        if let Some(ns) = first["virtualNodeRef"].get("namespace") {
            t["virtualNodeRef"]["namespace"] = ns.clone();
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::GenerationStatus;

    fn target(name: &str, weight: u8) -> Value {
        json!({"virtualNodeRef": {"name": name}, "weight": weight})
    }

    fn router(routes: Value) -> Value {
        json!({
            "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
            "metadata": {"name": "yelb-ui", "namespace": "yelb", "resourceVersion": "7"},
            "spec": {"awsName": "yelb-ui-virtual-router", "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
                     "routes": routes}
        })
    }

    fn route(kind: &str, targets: Value) -> Value {
        let mut r = json!({"name": format!("route-{kind}"), "priority": 1});
        r[kind] = json!({"match": {"prefix": "/"}, "action": {"weightedTargets": targets},
                         "retryPolicy": {"maxRetries": 2}, "x-unknown": {"kept": true}});
        r
    }

    fn b(list: &[(&str, u8)]) -> Vec<Target> {
        list.iter().map(|(n, w)| Target::new(*n, *w)).collect()
    }

    #[test]
    fn every_route_kind_gets_exactly_the_given_targets_and_keeps_its_other_fields() -> Result<()> {
        struct Case {
            name: &'static str,
            old: Value,
            backends: Vec<Target>,
            want: Value,
        }
        let mut cases = Vec::new();
        for kind in ROUTE_KINDS {
            cases.push(Case {
                name: "canary at 10%",
                old: json!([target("yelb-ui-1", 100), target("yelb-ui-2", 0)]),
                backends: b(&[("yelb-ui-1", 90), ("yelb-ui-2", 10)]),
                want: json!([target("yelb-ui-1", 90), target("yelb-ui-2", 10)]),
            });
            cases.push(Case {
                name: "a new version joins a single target",
                old: json!([target("yelb-ui-1", 100)]),
                backends: b(&[("yelb-ui-1", 100), ("yelb-ui-2", 0)]),
                want: json!([target("yelb-ui-1", 100), target("yelb-ui-2", 0)]),
            });
            cases.push(Case {
                name: "rollback drops the canary",
                old: json!([target("yelb-ui-1", 50), target("yelb-ui-2", 50)]),
                backends: b(&[("yelb-ui-1", 100)]),
                want: json!([target("yelb-ui-1", 100)]),
            });
            cases.push(Case {
                name: "several stale targets are replaced",
                old: json!([
                    target("yelb-ui-1", 40),
                    target("yelb-ui-2", 30),
                    target("yelb-ui-3", 30)
                ]),
                backends: b(&[("yelb-ui-3", 80), ("yelb-ui-4", 20)]),
                want: json!([target("yelb-ui-3", 80), target("yelb-ui-4", 20)]),
            });
            cases.push(Case {
                name: "an empty target list is filled",
                old: json!([]),
                backends: b(&[("yelb-ui-1", 100)]),
                want: json!([target("yelb-ui-1", 100)]),
            });
            cases.push(Case {
                name: "a target's port and unknown fields are kept and the port is given to new targets",
                old: json!([{"virtualNodeRef": {"name": "yelb-ui-1"}, "weight": 100, "port": 8080, "x-extra": 1}]),
                backends: b(&[("yelb-ui-1", 75), ("yelb-ui-2", 25)]),
                want: json!([{"virtualNodeRef": {"name": "yelb-ui-1"}, "weight": 75, "port": 8080, "x-extra": 1},
                              {"virtualNodeRef": {"name": "yelb-ui-2"}, "weight": 25, "port": 8080}]),
            });
            for case in cases.drain(..) {
                let old = router(json!([route(kind, case.old.clone())]));
                let got = AppMesh.rewrite(&old, &case.backends, &BTreeMap::new())?;
                let want = router(json!([route(kind, case.want.clone())]));
                assert_eq!(got, want, "{kind}: {}", case.name);
                assert_eq!(
                    AppMesh.read(&got)?,
                    vec![case.backends.clone()],
                    "{kind}: {}",
                    case.name
                );
            }
        }
        Ok(())
    }

    #[test]
    fn a_router_with_routes_of_all_four_kinds_is_rewritten_everywhere() -> Result<()> {
        let old = router(json!([
            route("httpRoute", json!([target("s-1", 100)])),
            route("http2Route", json!([target("s-1", 100)])),
            route("grpcRoute", json!([target("s-1", 100)])),
            route("tcpRoute", json!([target("s-1", 100)])),
        ]));
        let want = b(&[("s-1", 80), ("s-2", 20)]);
        let got = AppMesh.rewrite(&old, &want, &BTreeMap::new())?;
        assert_eq!(AppMesh.read(&got)?, vec![want.clone(); 4]);
        assert_eq!(got["spec"]["awsName"], "yelb-ui-virtual-router");
        assert_eq!(
            got["spec"]["routes"][3]["tcpRoute"]["x-unknown"]["kept"],
            true
        );
        assert_eq!(got["metadata"]["resourceVersion"], "7");
        Ok(())
    }

    #[test]
    fn unchanged_weights_give_back_the_same_object() -> Result<()> {
        let old = router(json!([route(
            "httpRoute",
            json!([target("s-1", 90), target("s-2", 10)])
        )]));
        let got = AppMesh.rewrite(&old, &b(&[("s-1", 90), ("s-2", 10)]), &BTreeMap::new())?;
        assert_eq!(got, old);
        Ok(())
    }

    #[test]
    fn a_router_without_weighted_routes_is_refused() {
        let cases = [
            router(json!([])),
            router(Value::Null),
            router(json!([{"name": "odd", "priority": 1}])),
        ];
        for old in cases {
            let got = AppMesh.rewrite(&old, &b(&[("s-1", 100)]), &BTreeMap::new());
            assert!(matches!(got, Err(ShapeError { .. })), "{old}");
            assert!(AppMesh.read(&old).is_err());
        }
    }

    #[test]
    fn a_route_kind_without_an_action_gets_one() -> Result<()> {
        let old = router(
            json!([{"name": "r", "tcpRoute": {"timeout": {"idle": {"unit": "s", "value": 5}}}}]),
        );
        let got = AppMesh.rewrite(&old, &b(&[("s-1", 100)]), &BTreeMap::new())?;
        assert_eq!(
            got["spec"]["routes"][0]["tcpRoute"]["action"]["weightedTargets"],
            json!([target("s-1", 100)])
        );
        assert_eq!(
            got["spec"]["routes"][0]["tcpRoute"]["timeout"]["idle"]["value"],
            5
        );
        Ok(())
    }

    #[test]
    fn the_controllers_status_says_whether_a_generation_is_active() {
        let mut vr = AppMesh.minimal_route("ui", "shop", &b(&[("ui-1", 100)]), 80);
        assert_eq!(AppMesh.status(&vr), RouteStatus::Pending);
        vr["status"] = json!({"observedGeneration": 3,
            "conditions": [{"type": "VirtualRouterActive", "status": "True"}]});
        let status = AppMesh.status(&vr);
        assert!(status.confirms(3) && status.confirms(2) && !status.confirms(4));
        vr["status"]["conditions"][0] = json!({"type": "VirtualRouterActive", "status": "False",
            "reason": "VirtualNodeNotFound", "message": "ui-9 does not exist"});
        let refused = AppMesh.status(&vr);
        assert_eq!(
            refused,
            RouteStatus::Refused {
                reason: "VirtualRouterActive=False: VirtualNodeNotFound: ui-9 does not exist"
                    .into(),
                observed_generation: Some(3),
            }
        );
        assert_eq!(
            refused.of_generation(3),
            GenerationStatus::Refused(
                "VirtualRouterActive=False: VirtualNodeNotFound: ui-9 does not exist".into()
            )
        );
        // A refusal of generation 3 says nothing yet of generation 4 (a rollback's write).
        assert_eq!(refused.of_generation(4), GenerationStatus::Pending);
        // The controller writes no reason or message on some refusals.
        vr["status"]["conditions"][0] = json!({"type": "VirtualRouterActive", "status": "False"});
        assert!(
            matches!(AppMesh.status(&vr), RouteStatus::Refused { reason, .. } if reason == "VirtualRouterActive=False"),
        );
    }

    #[test]
    fn a_minimal_router_reads_back_its_targets() -> Result<()> {
        let want = b(&[("ui-1", 60), ("ui-2", 40)]);
        let vr = AppMesh.minimal_route("ui", "shop", &want, 80);
        assert_eq!(AppMesh.read(&vr)?, vec![want]);
        assert!(AppMesh.owns("appmesh.k8s.aws/v1beta2", "VirtualRouter"));
        Ok(())
    }
}
