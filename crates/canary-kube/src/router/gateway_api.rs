//! Kubernetes Gateway API (VPC Lattice, Istio, Envoy Gateway, Cilium, Linkerd): the
//! weights are the `backendRefs` of the HTTPRoute's or GRPCRoute's rules. Every rule
//! that has `backendRefs` gets exactly the given backends; a backend already present
//! keeps its port, group, kind, namespace and any other field; a new one takes the port
//! of the Service of that name (looked up once) or else of an existing backend.
//! Rules without `backendRefs` (redirects) are left alone.

use std::collections::BTreeMap;

use canary_core::spec::TrafficProvider;
use serde_json::{Value, json};

use super::{Backend, RouteEditor, weight_of};
use crate::error::{Error, Result};

/// The Gateway API's default weight of a backendRef without one.
pub const DEFAULT_WEIGHT: u8 = 1;

/// The pure part: reads and rewrites a route's backendRefs.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatewayApiEditor;

fn shape(route: &Value, message: String) -> Error {
    Error::RouteShape {
        kind: route["kind"].as_str().unwrap_or("HTTPRoute").to_owned(),
        name: route["metadata"]["name"].as_str().unwrap_or("?").to_owned(),
        message,
    }
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

impl RouteEditor for GatewayApiEditor {
    fn provider(&self) -> TrafficProvider {
        TrafficProvider::GatewayApi
    }

    fn read(&self, route: &Value) -> Result<Vec<Vec<Backend>>> {
        if !has_weighted_rule(route) {
            return Err(shape(route, "has no rule with backendRefs".into()));
        }
        let kind = route["kind"].as_str().unwrap_or("HTTPRoute");
        let name = route["metadata"]["name"].as_str().unwrap_or("?");
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
                list.push(Backend {
                    name: backend.to_owned(),
                    weight: weight_of(kind, name, r, DEFAULT_WEIGHT)?,
                });
            }
            out.push(list);
        }
        Ok(out)
    }

    fn names_needing_port(&self, route: &Value, backends: &[Backend]) -> Vec<String> {
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
        backends: &[Backend],
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
}

/// The backendRef for `b` in a rule whose refs were `old`.
fn ref_for(
    route: &Value,
    old: &[Value],
    everywhere: &[Value],
    b: &Backend,
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

    fn b(list: &[(&str, u8)]) -> Vec<Backend> {
        list.iter().map(|(n, w)| Backend::new(*n, *w)).collect()
    }

    #[test]
    fn backend_refs_are_rewritten_keeping_ports_and_every_other_field() -> Result<()> {
        struct Case {
            name: &'static str,
            old: Value,
            backends: Vec<Backend>,
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
                let got = GatewayApiEditor.rewrite(&old, &c.backends, &c.ports)?;
                assert_eq!(
                    got,
                    route(kind, json!([rule(c.want.clone())])),
                    "{kind}: {}",
                    c.name
                );
                assert_eq!(
                    GatewayApiEditor.read(&got)?,
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
        let got =
            GatewayApiEditor.rewrite(&old, &b(&[("ui-1", 70), ("ui-2", 30)]), &BTreeMap::new())?;
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
            GatewayApiEditor.names_needing_port(&old, &b(&[("ui-1", 90), ("ui-2", 10)])),
            vec!["ui-2"]
        );
        assert!(
            GatewayApiEditor
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
        assert_eq!(GatewayApiEditor.read(&old)?, vec![b(&[("ui-1", 1)])]);
        Ok(())
    }

    #[test]
    fn a_route_without_weighted_rules_or_known_ports_is_refused() {
        let no_rules = route("HTTPRoute", json!([]));
        assert!(matches!(
            GatewayApiEditor.rewrite(&no_rules, &b(&[("ui-1", 100)]), &BTreeMap::new()),
            Err(Error::RouteShape { .. })
        ));
        let no_port = route("HTTPRoute", json!([rule(json!([]))]));
        let got = GatewayApiEditor.rewrite(&no_port, &b(&[("ui-1", 100)]), &BTreeMap::new());
        assert!(
            matches!(&got, Err(Error::RouteShape { message, .. }) if message.contains("ui-1")),
            "{got:?}"
        );
    }
}
