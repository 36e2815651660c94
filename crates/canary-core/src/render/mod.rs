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

mod checks;

use checks::{
    check_object, check_objects, check_params, check_route_weights, check_variables,
    detect_provider, service_port,
};

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

/// Renders the spec's template for `params`: finds the route document, renders every
/// document once without routes (to learn the provider, the per-version objects and the
/// backends' port), then renders the route with its targets and checks the result.
pub fn render(spec: &DeploySpec, params: &RenderParams) -> Result<Rendered, RenderError> {
    check_params(params)?;
    check_variables(&spec.template)?;
    let docs = split_documents(&spec.template);
    let route_doc = find_route_document(&docs)?;
    let (first, names_elsewhere) = render_without_routes(spec, params, &docs)?;
    let route_value = &first[route_doc];
    let provider = detect_provider(spec, route_value)?;
    let route = RouteRef {
        api_version: str_field(route_value, "apiVersion"),
        kind: str_field(route_value, "kind"),
        name: str_field(&route_value["metadata"], "name"),
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
    check_objects(&objects, &route, &canary_name)?;
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

/// Renders both shapes a deployment can take — a first deployment alone, and a canary at
/// `canary_weight` beside a stable version — so that a broken template fails before
/// anything is touched; returns the canary's rendering.
pub fn render_both(spec: &DeploySpec, canary_weight: u8) -> Result<Rendered, RenderError> {
    render(
        spec,
        &RenderParams {
            version: 1,
            stable_version: None,
            canary_weight: 100,
        },
    )?;
    render(
        spec,
        &RenderParams {
            version: 2,
            stable_version: Some(1),
            canary_weight,
        },
    )
}

/// The index of the one document that holds `${CANARY_ROUTES}`.
fn find_route_document(docs: &[Doc]) -> Result<usize, RenderError> {
    let route_docs: Vec<&Doc> = docs
        .iter()
        .filter(|d| d.text.contains(ROUTES_VAR))
        .collect();
    match route_docs.as_slice() {
        [one] => Ok(one.index),
        [] => {
            let known: Vec<&str> = provider::REGISTRY
                .iter()
                .map(|p| p.route_objects())
                .collect();
            Err(RenderError::Route(format!(
                "no document contains ${{CANARY_ROUTES}}; the route object ({}) must list its targets with it",
                known.join(" or ")
            )))
        }
        many => {
            let lines: Vec<String> = many.iter().map(|d| d.line.to_string()).collect();
            Err(RenderError::Route(format!(
                "${{CANARY_ROUTES}} appears in {} documents (from lines {}); exactly one route object is allowed",
                many.len(),
                lines.join(", ")
            )))
        }
    }
}

/// Every document rendered with an empty route list, and the name each document has for
/// another version (a document whose name changes belongs to one version).
fn render_without_routes(
    spec: &DeploySpec,
    params: &RenderParams,
    docs: &[Doc],
) -> Result<(Vec<Value>, Vec<Value>), RenderError> {
    let other_version = params
        .version
        .checked_add(1)
        .unwrap_or(params.version.saturating_sub(1));
    let mut first = Vec::with_capacity(docs.len());
    let mut names_elsewhere = Vec::with_capacity(docs.len());
    for doc in docs {
        first.push(parse_doc(
            doc,
            &substitute(&doc.text, spec, params.version, ""),
        )?);
        let other = parse_doc(doc, &substitute(&doc.text, spec, other_version, ""))?;
        names_elsewhere.push(other["metadata"]["name"].clone());
    }
    Ok((first, names_elsewhere))
}

/// The route's versions for `params`: the stable version (if any) then the canary.
pub fn backends(params: &RenderParams) -> Vec<Share> {
    provider::split(params.stable_version, params.version, params.canary_weight)
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

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Version => "version",
            Self::Shared => "shared",
        })
    }
}
