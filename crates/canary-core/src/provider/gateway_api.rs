//! Kubernetes Gateway API (VPC Lattice, Istio, Envoy Gateway, Cilium, Linkerd): the
//! weights are the `backendRefs` of the HTTPRoute's or GRPCRoute's rules. Every rule
//! that has `backendRefs` gets exactly the given backends; a backend already present
//! keeps its port, group, kind, namespace and any other field; a new one takes the port
//! of the Service of that name (looked up once) or else of an existing backend.
//! Rules without `backendRefs` (redirects) are left alone.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{
    RouteProvider, RouteStatus, ShapeError, Target, TrafficProvider, condition, refusal, weight_of,
};

type Result<T> = std::result::Result<T, ShapeError>;

/// The handle of this provider (`traffic_provider: gateway-api`).
pub const GATEWAY_API: TrafficProvider = TrafficProvider(&GatewayApi);

/// The Gateway API's default weight of a backendRef without one.
pub const DEFAULT_WEIGHT: u8 = 1;

/// The Gateway API's knowledge of its HTTPRoute and GRPCRoute.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewayApi;

fn shape(route: &Value, message: String) -> ShapeError {
    ShapeError::of(route, "HTTPRoute", message)
}

/// Every existing backendRef of the route, in order.
fn all_refs(route: &Value) -> Vec<&Value> {
    route["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["backendRefs"].as_array().into_iter().flatten())
        .collect()
}

fn has_weighted_rule(route: &Value) -> bool {
    route["spec"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["backendRefs"].is_array())
}

impl RouteProvider for GatewayApi {
    fn name(&self) -> &'static str {
        "gateway-api"
    }

    fn route_objects(&self) -> &'static str {
        "a Gateway API HTTPRoute/GRPCRoute (gateway.networking.k8s.io)"
    }

    fn owns(&self, api_version: &str, kind: &str) -> bool {
        api_version.split('/').next() == Some("gateway.networking.k8s.io")
            && matches!(kind, "HTTPRoute" | "GRPCRoute")
    }

    fn target_lists_path(&self) -> &'static str {
        "spec.rules[].backendRefs"
    }

    fn needs_port(&self) -> bool {
        true
    }

    fn render_targets(&self, targets: &[Target], port: Option<u16>) -> String {
        targets
            .iter()
            .map(|t| match port {
                Some(p) => format!("{{name: {}, port: {p}, weight: {}}}", t.name, t.weight),
                None => format!("{{name: {}, weight: {}}}", t.name, t.weight),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A backendRef without a weight has weight 1 (the Gateway API's default).
    fn read(&self, route: &Value) -> Result<Vec<Vec<Target>>> {
        if !has_weighted_rule(route) {
            return Err(shape(route, "has no rule with backendRefs".into()));
        }
        let mut out = Vec::new();
        for rule in route["spec"]["rules"].as_array().into_iter().flatten() {
            let Some(refs) = rule["backendRefs"].as_array() else {
                continue;
            };
            let mut list = Vec::with_capacity(refs.len());
            for r in refs {
                let Some(backend) = r["name"].as_str() else {
                    return Err(shape(route, "a backendRef has no name".into()));
                };
                list.push(Target {
                    name: backend.to_owned(),
                    weight: weight_of(route, "HTTPRoute", r, DEFAULT_WEIGHT)?,
                });
            }
            out.push(list);
        }
        Ok(out)
    }

    fn names_needing_port(&self, route: &Value, backends: &[Target]) -> Vec<String> {
        let present = all_refs(route);
        backends
            .iter()
            .filter(|b| {
                !present
                    .iter()
                    .any(|r| r["name"].as_str() == Some(b.name.as_str()))
            })
            .map(|b| b.name.clone())
            .collect()
    }

    fn rewrite(
        &self,
        route: &Value,
        backends: &[Target],
        ports: &BTreeMap<String, u16>,
    ) -> Result<Value> {
        if !has_weighted_rule(route) {
            return Err(shape(route, "has no rule with backendRefs".into()));
        }
        let everywhere: Vec<Value> = all_refs(route).into_iter().cloned().collect();
        let mut out = route.clone();
        let Some(rules) = out.pointer_mut("/spec/rules").and_then(Value::as_array_mut) else {
            return Err(shape(route, "has no spec.rules".into()));
        };
        for rule in rules.iter_mut() {
            let Some(old) = rule["backendRefs"].as_array().cloned() else {
                continue;
            };
            let mut refs = Vec::with_capacity(backends.len());
            for b in backends {
                refs.push(ref_for(route, &old, &everywhere, b, ports)?);
            }
            rule["backendRefs"] = Value::Array(refs);
        }
        Ok(out)
    }

    fn minimal_route(&self, name: &str, namespace: &str, targets: &[Target], port: u16) -> Value {
        minimal_http_route(name, namespace, targets, port)
    }

    /// Every parent (Gateway, or Lattice service network) in `status.parents` must have
    /// `Accepted` and `ResolvedRefs` true; the route is confirmed at the lowest
    /// `observedGeneration` among those conditions. A false condition is a refusal, of
    /// the generation that condition observed (the newest refusal wins when several
    /// parents refuse); a condition missing or Unknown leaves the route pending.
    fn status(&self, route: &Value) -> RouteStatus {
        let parents = route["status"]["parents"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if parents.is_empty() {
            return RouteStatus::Pending;
        }
        let mut observed: Option<i64> = None;
        let mut refused: Option<(Option<i64>, String)> = None;
        let mut pending = false;
        for parent in parents {
            for type_ in ["Accepted", "ResolvedRefs"] {
                match condition(&parent["conditions"], type_) {
                    Some(("True", _, _, generation)) => {
                        let g = generation.unwrap_or(0);
                        observed = Some(observed.map_or(g, |o| o.min(g)));
                    }
                    Some(("False", reason, message, generation)) => {
                        if refused.as_ref().is_none_or(|(g, _)| generation > *g) {
                            refused = Some((generation, refusal(type_, reason, message)));
                        }
                    }
                    _ => pending = true,
                }
            }
        }
        match (refused, observed) {
            (Some((observed_generation, reason)), _) => RouteStatus::Refused {
                reason,
                observed_generation,
            },
            (None, Some(observed_generation)) if !pending => RouteStatus::Accepted {
                observed_generation,
            },
            _ => RouteStatus::Pending,
        }
    }
}

/// An HTTPRoute under a Gateway named `gateway` whose one rule sends traffic to `targets`.
fn minimal_http_route(name: &str, namespace: &str, targets: &[Target], port: u16) -> Value {
    let refs: Vec<Value> = targets
        .iter()
        .map(|t| json!({"name": t.name, "port": port, "weight": t.weight}))
        .collect();
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": refs}]
        }
    })
}

/// The backendRef for `b` in a rule whose refs were `old`.
fn ref_for(
    route: &Value,
    old: &[Value],
    everywhere: &[Value],
    b: &Target,
    ports: &BTreeMap<String, u16>,
) -> Result<Value> {
    let named = |r: &&Value| r["name"].as_str() == Some(b.name.as_str());
    if let Some(existing) = old
        .iter()
        .find(named)
        .or_else(|| everywhere.iter().find(named))
    {
        let mut r = existing.clone();
        r["weight"] = json!(b.weight);
        return Ok(r);
    }
    let port = match ports.get(&b.name) {
        Some(p) => json!(p),
        None => old
            .iter()
            .chain(everywhere)
            .find_map(|r| r.get("port").cloned())
            .ok_or_else(|| shape(route, format!("no port known for new backend `{}`", b.name)))?,
    };
    let mut r = json!({"name": b.name, "port": port, "weight": b.weight});
    if let Some(sibling) = old.first().or(everywhere.first()) {
        for key in ["group", "kind"] {
            if let Some(v) = sibling.get(key) {
                r[key] = v.clone();
            }
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::GenerationStatus;

    fn route(kind: &str, rules: Value) -> Value {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": kind,
            "metadata": {"name": "yelb-ui", "namespace": "yelb", "resourceVersion": "3"},
            "spec": {"parentRefs": [{"name": "lattice", "sectionName": "http"}], "hostnames": ["yelb.example"],
                     "rules": rules}
        })
    }

    fn rule(refs: Value) -> Value {
        json!({"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": refs,
               "timeouts": {"request": "10s"}})
    }

    fn r(name: &str, port: u16, weight: u8) -> Value {
        json!({"name": name, "port": port, "weight": weight})
    }

    fn b(list: &[(&str, u8)]) -> Vec<Target> {
        list.iter().map(|(n, w)| Target::new(*n, *w)).collect()
    }

    #[test]
    fn backend_refs_are_rewritten_keeping_ports_and_every_other_field() -> Result<()> {
        struct Case {
            name: &'static str,
            old: Value,
            backends: Vec<Target>,
            ports: BTreeMap<String, u16>,
            want: Value,
        }
        let svc_ports = BTreeMap::from([("ui-2".to_owned(), 9090u16)]);
        let cases = vec![
            Case {
                name: "canary at 20%",
                old: json!([r("ui-1", 80, 100), r("ui-2", 80, 0)]),
                backends: b(&[("ui-1", 80), ("ui-2", 20)]),
                ports: BTreeMap::new(),
                want: json!([r("ui-1", 80, 80), r("ui-2", 80, 20)]),
            },
            Case {
                name: "a new backend takes its Service's port",
                old: json!([r("ui-1", 80, 100)]),
                backends: b(&[("ui-1", 90), ("ui-2", 10)]),
                ports: svc_ports.clone(),
                want: json!([r("ui-1", 80, 90), r("ui-2", 9090, 10)]),
            },
            Case {
                name: "without a Service a new backend takes an existing backend's port",
                old: json!([r("ui-1", 80, 100)]),
                backends: b(&[("ui-1", 90), ("ui-2", 10)]),
                ports: BTreeMap::new(),
                want: json!([r("ui-1", 80, 90), r("ui-2", 80, 10)]),
            },
            Case {
                name: "group, kind, namespace and unknown fields are kept; new refs copy group and kind",
                old: json!([{"group": "", "kind": "Service", "namespace": "yelb", "name": "ui-1", "port": 80,
                             "weight": 100, "filters": [{"type": "RequestHeaderModifier"}]}]),
                backends: b(&[("ui-1", 50), ("ui-2", 50)]),
                ports: svc_ports.clone(),
                want: json!([{"group": "", "kind": "Service", "namespace": "yelb", "name": "ui-1", "port": 80,
                              "weight": 50, "filters": [{"type": "RequestHeaderModifier"}]},
                             {"group": "", "kind": "Service", "name": "ui-2", "port": 9090, "weight": 50}]),
            },
            Case {
                name: "promotion leaves one backend",
                old: json!([r("ui-1", 80, 0), r("ui-2", 80, 100)]),
                backends: b(&[("ui-2", 100)]),
                ports: BTreeMap::new(),
                want: json!([r("ui-2", 80, 100)]),
            },
            Case {
                name: "several old backends are replaced",
                old: json!([r("ui-1", 80, 30), r("ui-2", 80, 30), r("ui-3", 80, 40)]),
                backends: b(&[("ui-3", 100)]),
                ports: BTreeMap::new(),
                want: json!([r("ui-3", 80, 100)]),
            },
            Case {
                name: "an empty list is filled from the Service's port",
                old: json!([]),
                backends: b(&[("ui-2", 100)]),
                ports: svc_ports.clone(),
                want: json!([r("ui-2", 9090, 100)]),
            },
        ];
        for kind in ["HTTPRoute", "GRPCRoute"] {
            for c in &cases {
                let old = route(kind, json!([rule(c.old.clone())]));
                let got = GatewayApi.rewrite(&old, &c.backends, &c.ports)?;
                assert_eq!(
                    got,
                    route(kind, json!([rule(c.want.clone())])),
                    "{kind}: {}",
                    c.name
                );
                assert_eq!(
                    GatewayApi.read(&got)?,
                    vec![c.backends.clone()],
                    "{kind}: {}",
                    c.name
                );
            }
        }
        Ok(())
    }

    #[test]
    fn every_weighted_rule_is_rewritten_and_redirect_rules_are_left_alone() -> Result<()> {
        let redirect = json!({"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]});
        let old = route(
            "HTTPRoute",
            json!([
                rule(json!([r("ui-1", 80, 100)])),
                redirect.clone(),
                rule(json!([r("ui-1", 8080, 100)]))
            ]),
        );
        let got = GatewayApi.rewrite(&old, &b(&[("ui-1", 70), ("ui-2", 30)]), &BTreeMap::new())?;
        assert_eq!(
            got["spec"]["rules"][0]["backendRefs"],
            json!([r("ui-1", 80, 70), r("ui-2", 80, 30)])
        );
        assert_eq!(got["spec"]["rules"][1], redirect);
        assert_eq!(
            got["spec"]["rules"][2]["backendRefs"],
            json!([r("ui-1", 8080, 70), r("ui-2", 8080, 30)])
        );
        assert_eq!(got["spec"]["hostnames"], json!(["yelb.example"]));
        Ok(())
    }

    #[test]
    fn only_names_absent_from_every_rule_need_a_port_lookup() {
        let old = route("HTTPRoute", json!([rule(json!([r("ui-1", 80, 100)]))]));
        assert_eq!(
            GatewayApi.names_needing_port(&old, &b(&[("ui-1", 90), ("ui-2", 10)])),
            vec!["ui-2"]
        );
        assert!(
            GatewayApi
                .names_needing_port(&old, &b(&[("ui-1", 100)]))
                .is_empty()
        );
    }

    #[test]
    fn a_missing_weight_reads_as_the_gateway_api_default() -> Result<()> {
        let old = route(
            "HTTPRoute",
            json!([rule(json!([{"name": "ui-1", "port": 80}]))]),
        );
        assert_eq!(GatewayApi.read(&old)?, vec![b(&[("ui-1", 1)])]);
        Ok(())
    }

    #[test]
    fn a_route_without_weighted_rules_or_known_ports_is_refused() {
        let no_rules = route("HTTPRoute", json!([]));
        assert!(matches!(
            GatewayApi.rewrite(&no_rules, &b(&[("ui-1", 100)]), &BTreeMap::new()),
            Err(ShapeError { .. })
        ));
        let no_port = route("HTTPRoute", json!([rule(json!([]))]));
        let got = GatewayApi.rewrite(&no_port, &b(&[("ui-1", 100)]), &BTreeMap::new());
        assert!(
            matches!(&got, Err(ShapeError { message, .. }) if message.contains("ui-1")),
            "{got:?}"
        );
    }

    #[test]
    fn every_parent_must_accept_and_resolve_the_generation() {
        let mut hr = GatewayApi.minimal_route("ui", "shop", &b(&[("ui-1", 100)]), 80);
        assert_eq!(GatewayApi.status(&hr), RouteStatus::Pending);
        let parent = |generation: i64| {
            json!({"parentRef": {"name": "gateway"}, "conditions": [
                {"type": "Accepted", "status": "True", "reason": "Accepted", "observedGeneration": generation},
                {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "observedGeneration": generation}]})
        };
        hr["status"] = json!({"parents": [parent(5), parent(4)]});
        let status = GatewayApi.status(&hr);
        assert!(status.confirms(4) && !status.confirms(5), "{status:?}");
        hr["status"]["parents"][1]["conditions"][1] = json!({"type": "ResolvedRefs", "status": "False",
            "reason": "BackendNotFound", "message": "Service shop/ui-2 not found"});
        // A refusal without a generation is of no known generation: never taken as a
        // refusal of the one just written.
        let unknown = GatewayApi.status(&hr);
        assert_eq!(
            unknown,
            RouteStatus::Refused {
                reason: "ResolvedRefs=False: BackendNotFound: Service shop/ui-2 not found".into(),
                observed_generation: None,
            }
        );
        assert_eq!(unknown.of_generation(1), GenerationStatus::Pending);
        hr["status"]["parents"][1]["conditions"][1]["observedGeneration"] = json!(6);
        assert_eq!(
            GatewayApi.status(&hr).of_generation(6),
            GenerationStatus::Refused(
                "ResolvedRefs=False: BackendNotFound: Service shop/ui-2 not found".into()
            )
        );
        // Another parent refusing an older generation does not hide the newer refusal.
        hr["status"]["parents"][0]["conditions"][0] = json!({"type": "Accepted", "status": "False",
            "reason": "NoMatchingParent", "observedGeneration": 2});
        assert!(
            matches!(
                GatewayApi.status(&hr),
                RouteStatus::Refused {
                    observed_generation: Some(6),
                    ..
                }
            ),
            "{:?}",
            GatewayApi.status(&hr)
        );
        hr["status"] = json!({"parents": [parent(7), parent(7)]});
        hr["status"]["parents"][1]["conditions"] = json!([]);
        assert_eq!(GatewayApi.status(&hr), RouteStatus::Pending);
        hr["status"]["parents"][1]["conditions"] = json!([{"type": "Accepted", "status": "Unknown",
            "reason": "Pending", "observedGeneration": 7}, {"type": "ResolvedRefs", "status": "True", "observedGeneration": 7}]);
        assert_eq!(GatewayApi.status(&hr), RouteStatus::Pending);
        hr["status"]["parents"][1] = parent(7);
        assert_eq!(
            GatewayApi.status(&hr).of_generation(7),
            GenerationStatus::Accepted
        );
    }

    #[test]
    fn a_minimal_route_reads_back_its_targets() -> Result<()> {
        let want = b(&[("ui-1", 60), ("ui-2", 40)]);
        let hr = GatewayApi.minimal_route("ui", "shop", &want, 8080);
        assert_eq!(GatewayApi.read(&hr)?, vec![want]);
        assert!(GatewayApi.owns("gateway.networking.k8s.io/v1", "GRPCRoute"));
        assert!(!GatewayApi.owns("appmesh.k8s.aws/v1beta2", "VirtualRouter"));
        Ok(())
    }
}
