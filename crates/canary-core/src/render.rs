//! Template rendering: from the microservice's `kubernetes_template.yml` to the exact
//! Kubernetes objects for one version at one traffic weight.
//!
//! The template is the original design's: `${KUBERNETES_NAMESPACE}`,
//! `${MICROSERVICE_NAME}`, `${CONTAINER_IMAGE}`, `${CANARY_VERSION}` and
//! `${CANARY_ROUTES}`. Any other `${...}` is an error that names it and its line.
//!
//! Safety: the values come from a validated [`DeploySpec`] (DNS labels, an image
//! reference, a number), none of which can hold a character that changes YAML structure,
//! and the result is parsed back and checked: every document is an object with
//! `apiVersion`, `kind`, `metadata.name` and the deployment's namespace, exactly one
//! document is the route, and its weights sum to 100.
//!
//! Which objects belong to one version is decided by the template itself: a document
//! whose `metadata.name` changes with `CANARY_VERSION` is per-version (Deployment,
//! Service, VirtualNode named `<service>-<version>`); the others are shared (router,
//! virtual service, apex Service, HTTPRoute).

use std::fmt;

use serde_json::{Map, Value, json};

use crate::execution::RouteRef;
use crate::labels;
use crate::provider::{self, Share, TrafficProvider};
use crate::spec::DeploySpec;

/// The variables a template may use.
pub const VARIABLES: &[&str] = &[
    "KUBERNETES_NAMESPACE",
    "MICROSERVICE_NAME",
    "CONTAINER_IMAGE",
    "CANARY_VERSION",
    "CANARY_ROUTES",
];

const ROUTES_VAR: &str = "${CANARY_ROUTES}";

/// What to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderParams {
    /// The version being rendered (the canary).
    pub version: u32,
    /// The version serving traffic now, if any.
    pub stable_version: Option<u32>,
    /// The canary's share of traffic, 0..=100. Without a stable version it must be 100.
    pub canary_weight: u8,
}

/// Whether an object belongs to one version or is shared by all versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Named after the version (`<service>-<version>`): created with it, removed with it.
    Version,
    /// Shared by all versions: the route, the virtual service, the apex Service.
    Shared,
}

/// One rendered Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedObject {
    /// The object, labelled.
    pub value: Value,
    /// Per-version or shared.
    pub scope: Scope,
    /// True for the one object that carries the weights.
    pub is_route: bool,
}

impl RenderedObject {
    /// `apiVersion` of the object.
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }

    /// `kind` of the object.
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    /// `metadata.name` of the object.
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
}

/// The objects for one version at one weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Every object, in template order.
    pub objects: Vec<RenderedObject>,
    /// The traffic provider, from deploy.json or detected from the route object.
    pub provider: TrafficProvider,
    /// The route object.
    pub route: RouteRef,
    /// The route's versions and their weights.
    pub backends: Vec<Share>,
    /// For the Gateway API: the port of the per-version Service.
    pub backend_port: Option<u16>,
}

impl Rendered {
    /// The route object.
    pub fn route_object(&self) -> Option<&RenderedObject> {
        self.objects.iter().find(|o| o.is_route)
    }

    /// The `(apiVersion, kind)` pairs of the objects, each once, in template order.
    pub fn kinds(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for o in &self.objects {
            let k = (o.api_version().to_owned(), o.kind().to_owned());
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }

    /// The objects as a YAML stream (`---` between documents).
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for o in &self.objects {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(&o.value).unwrap_or_default());
        }
        out
    }

    /// The objects as a JSON array.
    pub fn to_json(&self) -> Value {
        Value::Array(self.objects.iter().map(|o| o.value.clone()).collect())
    }
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template uses a `${...}` that is not one of [`VARIABLES`].
    #[error("template line {line}: unknown variable `${{{name}}}`; the variables are {}", VARIABLES.join(", "))]
    UnknownVariable { name: String, line: usize },
    /// A `${` without its closing `}`.
    #[error("template line {line}: `${{` is not closed by `}}`")]
    Unterminated { line: usize },
    /// A document is not valid YAML after rendering.
    #[error(
        "template document {document} (from line {line}) is not valid YAML after rendering: {message}"
    )]
    Yaml {
        document: usize,
        line: usize,
        message: String,
    },
    /// A document is not a Kubernetes object.
    #[error("template document {document} (from line {line}): {message}")]
    Object {
        document: usize,
        line: usize,
        message: String,
    },
    /// The route object is missing, duplicated or not a known kind.
    #[error("template: {0}")]
    Route(String),
    /// The request itself is inconsistent (a weight without a stable version, ...).
    #[error("render: {0}")]
    Params(String),
}

/// Renders the spec's template for `params`.
pub fn render(spec: &DeploySpec, params: &RenderParams) -> Result<Rendered, RenderError> {
    check_params(params)?;
    check_variables(&spec.template)?;
    let docs = split_documents(&spec.template);
    let route_docs: Vec<&Doc> = docs
        .iter()
        .filter(|d| d.text.contains(ROUTES_VAR))
        .collect();
    let route_doc = match route_docs.as_slice() {
        [one] => one.index,
        [] => {
            return Err(RenderError::Route(
                "no document contains ${CANARY_ROUTES}; the route object (an App Mesh VirtualRouter or a Gateway API HTTPRoute/GRPCRoute) must list its targets with it".into(),
            ));
        }
        many => {
            let lines: Vec<String> = many.iter().map(|d| d.line.to_string()).collect();
            return Err(RenderError::Route(format!(
                "${{CANARY_ROUTES}} appears in {} documents (from lines {}); exactly one route object is allowed",
                many.len(),
                lines.join(", ")
            )));
        }
    };

    // First pass: every document with an empty route list, to find the provider, the
    // per-version objects and the backends' port.
    let mut first = Vec::new();
    let other_version = params
        .version
        .checked_add(1)
        .unwrap_or(params.version.saturating_sub(1));
    let mut names_elsewhere = Vec::new();
    for doc in &docs {
        first.push(parse_doc(
            doc,
            &substitute(&doc.text, spec, params.version, ""),
        )?);
        let other = parse_doc(doc, &substitute(&doc.text, spec, other_version, ""))?;
        names_elsewhere.push(other["metadata"]["name"].clone());
    }
    let route_value = &first[route_doc];
    let provider = detect_provider(spec, route_value)?;
    let route = RouteRef {
        api_version: str_field(route_value, "apiVersion"),
        kind: str_field(route_value, "kind"),
        name: route_value["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };

    let service = &spec.microservice_name;
    let canary_name = labels::versioned_name(service, params.version);
    let backend_port = if provider.needs_port() {
        Some(service_port(&first, &canary_name)?)
    } else {
        None
    };
    let backends = backends(params);
    let targets: Vec<_> = backends.iter().map(|b| b.target(service)).collect();
    let routes = provider.render_targets(&targets, backend_port);

    let mut objects = Vec::with_capacity(docs.len());
    for (i, doc) in docs.iter().enumerate() {
        let mut value = if i == route_doc {
            parse_doc(doc, &substitute(&doc.text, spec, params.version, &routes))?
        } else {
            first[i].clone()
        };
        let scope = if value["metadata"]["name"] != names_elsewhere[i] {
            Scope::Version
        } else {
            Scope::Shared
        };
        check_object(doc, &value, spec)?;
        label(
            &mut value,
            service,
            (scope == Scope::Version).then_some(params.version),
        );
        objects.push(RenderedObject {
            value,
            scope,
            is_route: i == route_doc,
        });
    }

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
    for o in &objects {
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
    let rendered = Rendered {
        objects,
        provider,
        route,
        backends,
        backend_port,
    };
    if let Some(route) = rendered.route_object() {
        check_route_weights(provider, &route.value, &rendered.backends, service)?;
    }
    Ok(rendered)
}

fn check_params(p: &RenderParams) -> Result<(), RenderError> {
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

/// The route's versions for `params`: the stable version (if any) then the canary.
pub fn backends(params: &RenderParams) -> Vec<Share> {
    provider::split(params.stable_version, params.version, params.canary_weight)
}

fn check_variables(template: &str) -> Result<(), RenderError> {
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

/// One YAML document of the template, with the line it starts on (1-based).
#[derive(Debug)]
struct Doc {
    index: usize,
    line: usize,
    text: String,
}

/// Splits a YAML stream at `---` lines. Documents holding only comments are dropped.
fn split_documents(template: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    let flush = |current: &mut String, start: usize, docs: &mut Vec<Doc>| {
        let has_content = current.lines().any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && t != "..."
        });
        if has_content {
            docs.push(Doc {
                index: docs.len(),
                line: start,
                text: std::mem::take(current),
            });
        }
        current.clear();
    };
    for (i, line) in template.lines().enumerate() {
        let is_separator = line == "---"
            || line.starts_with("--- ")
            || line.starts_with("---\t")
            || line.starts_with("---#");
        if is_separator {
            flush(&mut current, start, &mut docs);
            start = i + 2;
            let rest = line[3..].trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                // Content after the marker (`--- {a: 1}`) belongs to the new document.
                start = i + 1;
                current.push_str(rest);
                current.push('\n');
            }
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    flush(&mut current, start, &mut docs);
    docs
}

/// Replaces the variables in one document. `${CANARY_ROUTES}` inside `[...]` becomes the
/// entries; anywhere else it becomes a whole flow sequence.
fn substitute(text: &str, spec: &DeploySpec, version: u32, routes: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        while let Some(start) = rest.find("${") {
            let (before, after) = rest.split_at(start);
            out.push_str(before);
            let Some(end) = after.find('}') else {
                out.push_str(after);
                rest = "";
                break;
            };
            let name = &after[2..end];
            match name {
                "KUBERNETES_NAMESPACE" => out.push_str(&spec.kubernetes_namespace),
                "MICROSERVICE_NAME" => out.push_str(&spec.microservice_name),
                "CONTAINER_IMAGE" => out.push_str(&spec.container_image),
                "CANARY_VERSION" => out.push_str(&version.to_string()),
                "CANARY_ROUTES" => {
                    let inside_brackets = before.trim_end().ends_with('[');
                    if inside_brackets {
                        out.push_str(routes);
                    } else {
                        out.push('[');
                        out.push_str(routes);
                        out.push(']');
                    }
                }
                other => {
                    // check_variables rejected unknown names before; keep the text as is.
                    out.push_str("${");
                    out.push_str(other);
                    out.push('}');
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    out
}

fn parse_doc(doc: &Doc, text: &str) -> Result<Value, RenderError> {
    let value: Value = serde_saphyr::from_str(text).map_err(|e| RenderError::Yaml {
        document: doc.index + 1,
        line: doc.line,
        message: first_line(&e.to_string()),
    })?;
    if !value.is_object() {
        return Err(RenderError::Object {
            document: doc.index + 1,
            line: doc.line,
            message: "is not a mapping (a Kubernetes object)".into(),
        });
    }
    Ok(value)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

fn str_field(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn check_object(doc: &Doc, value: &Value, spec: &DeploySpec) -> Result<(), RenderError> {
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

fn label(value: &mut Value, service: &str, version: Option<u32>) {
    let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Some(map) = labels.as_object_mut() {
        map.insert(labels::MANAGED_BY.into(), json!(labels::MANAGER));
        map.insert(labels::SERVICE.into(), json!(service));
        match version {
            Some(v) => {
                map.insert(labels::VERSION.into(), json!(v.to_string()));
            }
            None => {
                map.remove(labels::VERSION);
            }
        }
    }
}

fn detect_provider(spec: &DeploySpec, route: &Value) -> Result<TrafficProvider, RenderError> {
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

fn service_port(objects: &[Value], name: &str) -> Result<u16, RenderError> {
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
            "Service `{name}` has no spec.ports[0].port for the route's backendRefs"
        ))
    })?;
    u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
        RenderError::Route(format!(
            "Service `{name}` has port {port}, outside 1..=65535"
        ))
    })
}

/// Checks that every target list of the rendered route is exactly `backends`.
fn check_route_weights(
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

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Version => "version",
            Self::Shared => "shared",
        })
    }
}
