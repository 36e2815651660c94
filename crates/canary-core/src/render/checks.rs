//! The checks of a rendering: the request, the template's variables, each rendered
//! object, the set of objects, and the route's weights read back through its provider.

use serde_json::Value;

use super::{Doc, RenderError, RenderParams, RenderedObject, Scope, VARIABLES};
use crate::execution::RouteRef;
use crate::provider::{self, Share, TrafficProvider};
use crate::spec::DeploySpec;

/// The whole set: a shared route object, the canary's Deployment, no object twice.
pub(super) fn check_objects(
    objects: &[RenderedObject],
    route: &RouteRef,
    canary_name: &str,
) -> Result<(), RenderError> {
    if objects
        .iter()
        .any(|o| o.is_route && o.scope == Scope::Version)
    {
        return Err(RenderError::Route(format!(
            "the route object `{}` is named after ${{CANARY_VERSION}}; it must be shared by all versions",
            route.name
        )));
    }
    if !objects
        .iter()
        .any(|o| o.scope == Scope::Version && o.kind() == "Deployment" && o.name() == canary_name)
    {
        return Err(RenderError::Route(format!(
            "the template has no Deployment named `{canary_name}` (metadata.name: ${{MICROSERVICE_NAME}}-${{CANARY_VERSION}})"
        )));
    }
    let mut names = std::collections::HashSet::new();
    for o in objects {
        if !names.insert((
            o.api_version().to_owned(),
            o.kind().to_owned(),
            o.name().to_owned(),
        )) {
            return Err(RenderError::Route(format!(
                "two documents define {} `{}`",
                o.kind(),
                o.name()
            )));
        }
    }
    Ok(())
}

pub(super) fn check_params(p: &RenderParams) -> Result<(), RenderError> {
    if p.version == 0 {
        return Err(RenderError::Params("versions start at 1".into()));
    }
    if p.canary_weight > 100 {
        return Err(RenderError::Params(format!(
            "canary weight {} is above 100",
            p.canary_weight
        )));
    }
    match p.stable_version {
        None if p.canary_weight != 100 => Err(RenderError::Params(format!(
            "without a stable version the canary takes all traffic; weight {} was asked",
            p.canary_weight
        ))),
        Some(s) if s == p.version => Err(RenderError::Params(format!(
            "the stable version and the canary are both {s}"
        ))),
        _ => Ok(()),
    }
}

pub(super) fn check_variables(template: &str) -> Result<(), RenderError> {
    for (i, line) in template.lines().enumerate() {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(RenderError::Unterminated { line: i + 1 });
            };
            let name = &after[..end];
            if !VARIABLES.contains(&name) {
                return Err(RenderError::UnknownVariable {
                    name: name.to_owned(),
                    line: i + 1,
                });
            }
            rest = &after[end + 1..];
        }
    }
    Ok(())
}

pub(super) fn check_object(doc: &Doc, value: &Value, spec: &DeploySpec) -> Result<(), RenderError> {
    let fail = |message: String| RenderError::Object {
        document: doc.index + 1,
        line: doc.line,
        message,
    };
    for key in ["apiVersion", "kind"] {
        match &value[key] {
            Value::String(s) if !s.is_empty() => {}
            Value::Null => return Err(fail(format!("has no `{key}`"))),
            other => return Err(fail(format!("`{key}` must be a string, not {other}"))),
        }
    }
    let Some(meta) = value["metadata"].as_object() else {
        return Err(fail("has no `metadata` mapping".into()));
    };
    match meta.get("name") {
        Some(Value::String(s)) if !s.is_empty() => {
            if s.len() > 253 {
                return Err(fail(format!(
                    "metadata.name `{s}` is longer than 253 characters"
                )));
            }
        }
        Some(other) => return Err(fail(format!("metadata.name must be a string, not {other}"))),
        None => return Err(fail("has no metadata.name".into())),
    }
    match meta.get("namespace") {
        Some(Value::String(ns)) if *ns == spec.kubernetes_namespace => Ok(()),
        Some(other) => Err(fail(format!(
            "metadata.namespace is {other}, not the deployment's namespace `{}` (use ${{KUBERNETES_NAMESPACE}})",
            spec.kubernetes_namespace
        ))),
        None => Err(fail(format!(
            "has no metadata.namespace; set it to ${{KUBERNETES_NAMESPACE}} (`{}`)",
            spec.kubernetes_namespace
        ))),
    }
}

pub(super) fn detect_provider(
    spec: &DeploySpec,
    route: &Value,
) -> Result<TrafficProvider, RenderError> {
    let api = route["apiVersion"].as_str().unwrap_or_default();
    let kind = route["kind"].as_str().unwrap_or_default();
    let Some(detected) = TrafficProvider::for_route(api, kind) else {
        let known: Vec<&str> = provider::REGISTRY
            .iter()
            .map(|p| p.route_objects())
            .collect();
        return Err(RenderError::Route(format!(
            "the document with ${{CANARY_ROUTES}} is a `{kind}` ({api}); expected {}",
            known.join(" or ")
        )));
    };
    match spec.traffic_provider {
        Some(p) if p != detected => Err(RenderError::Route(format!(
            "traffic_provider is `{p}` but the route object is a {kind}, which is `{detected}`"
        ))),
        _ => Ok(detected),
    }
}

pub(super) fn service_port(objects: &[Value], name: &str) -> Result<u16, RenderError> {
    let svc = objects
        .iter()
        .find(|o| o["kind"] == "Service" && o["apiVersion"] == "v1" && o["metadata"]["name"] == name)
        .ok_or_else(|| {
            RenderError::Route(format!(
                "the Gateway API route needs the port of Service `{name}`, but the template has no Service of that name"
            ))
        })?;
    let port = svc["spec"]["ports"][0]["port"].as_u64().ok_or_else(|| {
        RenderError::Route(format!(
            "Service `{name}` has no spec.ports[0].port for the route's targets"
        ))
    })?;
    u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
        RenderError::Route(format!(
            "Service `{name}` has port {port}, outside 1..=65535"
        ))
    })
}

/// Checks that every target list of the rendered route is exactly `backends`.
pub(super) fn check_route_weights(
    provider: TrafficProvider,
    route: &Value,
    backends: &[Share],
    service: &str,
) -> Result<(), RenderError> {
    let not_a_list = || {
        RenderError::Route(format!(
            "${{CANARY_ROUTES}} is not inside a {} list of the route object",
            provider.target_lists_path()
        ))
    };
    let lists = provider.read(route).map_err(|_| not_a_list())?;
    if lists.is_empty() {
        return Err(not_a_list());
    }
    for list in lists {
        for (t, b) in list.iter().zip(backends) {
            let want = b.target(service);
            if *t != want {
                return Err(RenderError::Route(format!(
                    "the route's target {}={} does not match `{}` at {}",
                    t.name, t.weight, want.name, want.weight
                )));
            }
        }
        let sum: u64 = list.iter().map(|t| u64::from(t.weight)).sum();
        if list.len() != backends.len() || sum != 100 {
            return Err(RenderError::Route(format!(
                "a target list of the route holds {} entries weighing {sum} in all; it must be exactly ${{CANARY_ROUTES}} (weights summing to 100)",
                list.len()
            )));
        }
    }
    Ok(())
}
