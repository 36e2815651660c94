//! The resource types the simulated cluster serves, and the discovery and OpenAPI
//! documents that describe them to kubectl and kube-rs.

use serde_json::{Value, json};

/// One resource type served by the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Plural, lower-case resource name as it appears in URLs, e.g. `deployments`.
    pub plural: &'static str,
    /// Singular, lower-case name, e.g. `deployment`.
    pub singular: &'static str,
    /// The object kind, e.g. `Deployment`.
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts, e.g. `deploy`.
    pub short_names: &'static [&'static str],
    /// Whether the type has a `status` subresource (writes to the main resource keep
    /// the live status).
    pub has_status: bool,
}

impl ResourceType {
    /// `apiVersion` of objects of this type, e.g. `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource as Kubernetes names it in messages: `deployments.apps`, `services`.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The URL prefix of this type's group version: `/api/v1` or `/apis/apps/v1`.
    pub fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// Whether objects of this type are Deployments (the simulated controllers run them).
    pub fn is_deployment(&self) -> bool {
        self.group == "apps" && self.plural == "deployments"
    }

    /// Whether objects of this type are route objects whose writes are recorded in the
    /// weight history (VirtualRouter, HTTPRoute, GRPCRoute).
    pub fn is_route(&self) -> bool {
        is_route(self.group, self.plural)
    }

    /// Whether `name` (plural, singular, kind or short name, any case) names this type.
    pub fn answers_to(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        lower == self.plural
            || lower == self.singular
            || lower == self.kind.to_ascii_lowercase()
            || self.short_names.contains(&lower.as_str())
    }
}

/// Whether (group, plural) names a route object type: an App Mesh VirtualRouter or a
/// Gateway API HTTPRoute / GRPCRoute.
pub fn is_route(group: &str, plural: &str) -> bool {
    matches!(
        (group, plural),
        (APPMESH, "virtualrouters") | (GATEWAY, "httproutes" | "grpcroutes")
    )
}

/// Builds a table entry (positional, to keep the table one line per type).
#[allow(clippy::too_many_arguments)]
const fn rt(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    has_status: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        has_status,
    }
}

const APPMESH: &str = "appmesh.k8s.aws";
const GATEWAY: &str = "gateway.networking.k8s.io";
const COORDINATION: &str = "coordination.k8s.io";

/// Every resource type the simulator serves.
pub const RESOURCES: &[ResourceType] = &[
    rt(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
        true,
    ),
    rt(
        "",
        "v1",
        "services",
        "service",
        "Service",
        true,
        &["svc"],
        true,
    ),
    rt("", "v1", "pods", "pod", "Pod", true, &["po"], true),
    rt(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
        false,
    ),
    rt("", "v1", "events", "event", "Event", true, &["ev"], false),
    rt(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
        true,
    ),
    rt(
        COORDINATION,
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
        false,
    ),
    rt(
        APPMESH,
        "v1beta2",
        "meshes",
        "mesh",
        "Mesh",
        false,
        &[],
        true,
    ),
    rt(
        APPMESH,
        "v1beta2",
        "virtualnodes",
        "virtualnode",
        "VirtualNode",
        true,
        &["vn"],
        true,
    ),
    rt(
        APPMESH,
        "v1beta2",
        "virtualrouters",
        "virtualrouter",
        "VirtualRouter",
        true,
        &["vr"],
        true,
    ),
    rt(
        APPMESH,
        "v1beta2",
        "virtualservices",
        "virtualservice",
        "VirtualService",
        true,
        &["vs"],
        true,
    ),
    rt(
        APPMESH,
        "v1beta2",
        "virtualgateways",
        "virtualgateway",
        "VirtualGateway",
        true,
        &["vg"],
        true,
    ),
    rt(
        APPMESH,
        "v1beta2",
        "gatewayroutes",
        "gatewayroute",
        "GatewayRoute",
        true,
        &["gr"],
        true,
    ),
    rt(
        GATEWAY,
        "v1",
        "gatewayclasses",
        "gatewayclass",
        "GatewayClass",
        false,
        &["gc"],
        true,
    ),
    rt(
        GATEWAY,
        "v1",
        "gateways",
        "gateway",
        "Gateway",
        true,
        &["gtw"],
        true,
    ),
    rt(
        GATEWAY,
        "v1",
        "httproutes",
        "httproute",
        "HTTPRoute",
        true,
        &[],
        true,
    ),
    rt(
        GATEWAY,
        "v1",
        "grpcroutes",
        "grpcroute",
        "GRPCRoute",
        true,
        &[],
        true,
    ),
];

/// The group versions served, in discovery order: `(group, version)`.
pub const GROUP_VERSIONS: &[(&str, &str)] = &[
    ("", "v1"),
    ("apps", "v1"),
    (COORDINATION, "v1"),
    (APPMESH, "v1beta2"),
    (GATEWAY, "v1"),
];

/// The resource type with this group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource type with this group and plural (any version).
pub fn by_plural(group: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
}

/// The resource type for an `apiVersion` and a plural, singular, kind or short name.
pub fn lookup(api_version: &str, kind_or_plural: &str) -> Option<&'static ResourceType> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.answers_to(kind_or_plural))
}

fn verbs(has_deletecollection: bool) -> Value {
    let mut v = vec![
        "create", "delete", "get", "list", "patch", "update", "watch",
    ];
    if has_deletecollection {
        v.insert(2, "deletecollection");
    }
    json!(v)
}

fn categories(r: &ResourceType) -> Option<Value> {
    match (r.group, r.plural) {
        ("", "services" | "pods") | ("apps", "deployments") => Some(json!(["all"])),
        (APPMESH, _) => Some(json!(["all", "appmesh"])),
        (GATEWAY, _) => Some(json!(["gateway-api"])),
        _ => None,
    }
}

/// `GET /api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn api_group(group: &str) -> Option<Value> {
    let versions: Vec<Value> = GROUP_VERSIONS
        .iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({ "groupVersion": format!("{g}/{v}"), "version": v }))
        .collect();
    let preferred = versions.first()?.clone();
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions,
        "preferredVersion": preferred,
    }))
}

/// `GET /apis/<group>`.
pub fn api_group_doc(group: &str) -> Option<Value> {
    api_group(group)
}

/// `GET /apis`.
pub fn api_group_list() -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in GROUP_VERSIONS {
        if !g.is_empty() && !groups.contains(g) {
            groups.push(g);
        }
    }
    let groups: Vec<Value> = groups.into_iter().filter_map(api_group).collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `GET /api/v1` or `/apis/<group>/<version>`: the resources of one group version.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    if !GROUP_VERSIONS.contains(&(group, version)) {
        return None;
    }
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs(r.namespaced),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if let Some(c) = categories(r) {
            entry["categories"] = c;
        }
        resources.push(entry);
        if r.has_status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `GET /version`.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-canary-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.23",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn openapi_path_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: the index of per-group-version documents.
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in GROUP_VERSIONS {
        let key = openapi_path_key(g, v);
        paths.insert(
            key.clone(),
            json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash=canary-sim-1") }),
        );
    }
    json!({ "paths": paths })
}

/// `GET /openapi/v3/<api/v1 | apis/group/version>`: a minimal document that lists each
/// object path with its PATCH operation, its group-version-kind and the query
/// parameters the simulator understands (so kubectl sees that the server validates
/// fields itself and sends `fieldValidation` instead of validating client-side).
pub fn openapi_v3_group_version(key: &str) -> Option<Value> {
    let (group, version) = GROUP_VERSIONS
        .iter()
        .copied()
        .find(|(g, v)| openapi_path_key(g, v) == key)?;
    let params = json!([
        { "name": "dryRun", "in": "query", "schema": { "type": "string" } },
        { "name": "fieldManager", "in": "query", "schema": { "type": "string" } },
        { "name": "fieldValidation", "in": "query", "schema": { "type": "string" } },
        { "name": "force", "in": "query", "schema": { "type": "boolean" } },
    ]);
    let mut paths = serde_json::Map::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let gvk = json!({ "group": r.group, "version": r.version, "kind": r.kind });
        let object_path = if r.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}/{{name}}",
                r.prefix(),
                r.plural
            )
        } else {
            format!("{}/{}/{{name}}", r.prefix(), r.plural)
        };
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", r.kind),
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": { "200": { "description": "OK" } },
            })
        };
        let mut patch = op("patch");
        patch["requestBody"] = json!({ "content": {
            "application/apply-patch+yaml": { "schema": { "type": "object" } },
            "application/json-patch+json": { "schema": { "type": "object" } },
            "application/merge-patch+json": { "schema": { "type": "object" } },
        }});
        paths.insert(
            object_path,
            json!({ "get": op("get"), "put": op("put"), "patch": patch, "delete": op("delete") }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes (canary-sim)", "version": "v1.32.0" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_accepts_kind_plural_and_short_name() {
        assert_eq!(
            lookup("apps/v1", "Deployment").map(|r| r.plural),
            Some("deployments")
        );
        assert_eq!(
            lookup("apps/v1", "deploy").map(|r| r.plural),
            Some("deployments")
        );
        assert_eq!(lookup("v1", "svc").map(|r| r.plural), Some("services"));
        assert_eq!(
            lookup("appmesh.k8s.aws/v1beta2", "virtualrouters").map(|r| r.kind),
            Some("VirtualRouter")
        );
        assert!(lookup("apps/v1", "virtualrouters").is_none());
    }

    #[test]
    fn every_group_version_has_a_resource_list_and_openapi_document() {
        for (g, v) in GROUP_VERSIONS {
            assert!(api_resource_list(g, v).is_some());
            assert!(openapi_v3_group_version(&openapi_path_key(g, v)).is_some());
        }
    }
}
