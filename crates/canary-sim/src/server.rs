//! The HTTP face of the simulated cluster: one axum fallback handler that records the
//! request, fires injected faults, parses the Kubernetes URL layout
//! (`/api/v1/namespaces/{ns}/{plural}/{name}[/status]`,
//! `/apis/{group}/{version}/...`, discovery, `/version`, `/openapi/v3`) and answers
//! with JSON objects, lists, Tables or `Status` errors. `GET /metrics` is answered
//! first, with the Prometheus exposition of the simulated traffic.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::SimCluster;
use crate::commit::Part;
use crate::error::ApiError;
use crate::faults::FaultAction;
use crate::patch::PatchType;
use crate::protobuf;
use crate::resources::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::State as Cluster;
use crate::table;
use crate::verbs::WriteOptions;
use crate::watcher::Watch;

/// How long a hanging fault holds its request.
const HANG: Duration = Duration::from_secs(3600);

/// Kubernetes protobuf, what kubectl's typed clients send.
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The media types of an object body the simulator reads, as kube-apiserver lists them
/// (protobuf only for the kinds the `protobuf` module reads; for the others the 415
/// lists the first two, as kube-apiserver does for a custom resource).
const OBJECT_MEDIA_TYPES: &[&str] = &["application/json", "application/yaml", PROTOBUF];

/// The patch types, in the order kube-apiserver lists them in its 415 message.
const PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/strategic-merge-patch+json",
];

/// What every request handler shares.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub sim: SimCluster,
    pub server_address: String,
    pub shutdown: watch::Receiver<bool>,
}

/// The router serving the whole API.
pub(crate) fn router(ctx: Ctx) -> Router {
    Router::new().fallback(handle).with_state(ctx)
}

/// A successful answer.
enum Reply {
    Json(StatusCode, Value),
    Text(&'static str),
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(err: &ApiError) -> Response {
    let code = StatusCode::from_u16(err.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(code, &err.status());
    if let ApiError::TooManyRequests {
        retry_after_secs, ..
    } = err
        && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// The resource and object name a path names, for fault messages.
fn describe_path(path: &str) -> (String, String) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let name = segments.last().copied().unwrap_or_default().to_string();
    let resource = segments
        .iter()
        .rev()
        .nth(1)
        .copied()
        .unwrap_or_default()
        .to_string();
    (resource, name)
}

fn fault_error(action: FaultAction, path: &str) -> ApiError {
    let (resource, name) = describe_path(path);
    match action {
        FaultAction::InternalError | FaultAction::Hang => ApiError::Internal {
            message: format!("Internal error occurred: injected fault on {path}"),
        },
        FaultAction::Conflict => ApiError::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            resource,
            name,
        },
        FaultAction::TooManyRequests { retry_after_secs } => ApiError::TooManyRequests {
            message:
                "the server has received too many requests and has asked us to try again later"
                    .into(),
            retry_after_secs,
        },
    }
}

async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match respond(&ctx, &method, &uri, &headers, &body, true) {
        Respond::Now(response) => response,
        Respond::AfterHang(response) => {
            let mut shutdown = ctx.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(HANG) => {}
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
            response
        }
    }
}

/// What [`respond`] decided: answer now, or hold the request first (a hanging fault).
enum Respond {
    Now(Response),
    AfterHang(Response),
}

/// Everything the handler does except waiting: records the request, fires faults,
/// parses the query string and answers. A watch is streamed when `stream_watches`;
/// otherwise (in-process calls) its path and selectors are checked and it is answered
/// with an empty 200.
fn respond(
    ctx: &Ctx,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    stream_watches: bool,
) -> Respond {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    if method == Method::GET && path == "/metrics" {
        let text = ctx.sim.prometheus_text();
        return Respond::Now(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, crate::exposition::CONTENT_TYPE)],
                text,
            )
                .into_response(),
        );
    }
    if let Some(action) = ctx.sim.record_request(method.as_str(), &path, &query) {
        let response = error_response(&fault_error(action, &path));
        return if action == FaultAction::Hang {
            Respond::AfterHang(response)
        } else {
            Respond::Now(response)
        };
    }
    let params: HashMap<String, String> = match Query::try_from_uri(uri) {
        Ok(Query(p)) => p,
        Err(e) => {
            return Respond::Now(error_response(&ApiError::bad_request(format!(
                "invalid query string `{query}`: {e}"
            ))));
        }
    };
    let request = Request {
        method,
        path: &path,
        params: &params,
        headers,
        body,
    };
    let watching = request
        .param("watch")
        .is_some_and(|w| w == "true" || w == "1");
    if method == Method::GET && watching {
        let answer = if stream_watches {
            watch_response(ctx, &request)
        } else {
            check_watch(&request)
        };
        return Respond::Now(answer.unwrap_or_else(|e| error_response(&e)));
    }
    let result = ctx
        .sim
        .with_state(|state| dispatch(state, &request, &ctx.server_address));
    Respond::Now(match result {
        Ok(Reply::Json(code, value)) => json_response(code, &value),
        Ok(Reply::Text(text)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response()
        }
        Err(e) => error_response(&e),
    })
}

/// The answer to one request made in-process ([`crate::SimCluster::answer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimAnswer {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` of the answer (empty when it has none).
    pub content_type: String,
    /// The body: JSON (an object, a list or a `Status`), or text.
    pub body: Vec<u8>,
}

/// Answers one request as the HTTP server would (see [`crate::SimCluster::answer`]).
pub(crate) fn answer(
    sim: &crate::SimCluster,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> SimAnswer {
    let refuse = |message: String| {
        let e = ApiError::bad_request(message);
        SimAnswer {
            status: e.code(),
            content_type: "application/json".into(),
            body: e.status().to_string().into_bytes(),
        }
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return refuse(format!("invalid method `{}`", method.escape_default()));
    };
    let uri: Uri = match uri.parse() {
        Ok(u) => u,
        Err(e) => {
            return refuse(format!(
                "invalid request target `{}`: {e}",
                uri.escape_default()
            ));
        }
    };
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return refuse(format!(
                "invalid header `{}: {}`",
                name.escape_default(),
                value.escape_default()
            ));
        };
        map.append(n, v);
    }
    // A closed channel: nothing here waits on shutdown.
    let (_, shutdown) = watch::channel(true);
    let ctx = Ctx {
        sim: sim.clone(),
        server_address: "127.0.0.1:0".into(),
        shutdown,
    };
    let response = match respond(&ctx, &method, &uri, &map, body, false) {
        Respond::Now(r) | Respond::AfterHang(r) => r,
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // Every answer but a streamed watch is already whole in memory, so this does not wait.
    let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .map(|b| b.to_vec())
        .unwrap_or_default();
    SimAnswer {
        status,
        content_type,
        body,
    }
}

/// The parts of a request the API logic reads.
struct Request<'a> {
    method: &'a Method,
    path: &'a str,
    params: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl Request<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn content_type(&self) -> String {
        self.header(header::CONTENT_TYPE)
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    fn wants_table(&self) -> bool {
        self.header(header::ACCEPT)
            .split(',')
            .any(|part| part.contains("as=Table"))
    }

    fn write_options(&self) -> WriteOptions {
        let agent = self.header(header::USER_AGENT);
        WriteOptions {
            dry_run: self.param("dryRun").is_some_and(|d| !d.is_empty()),
            field_manager: self.param("fieldManager").map(str::to_string),
            force: self.param("force").is_some_and(|f| f == "true" || f == "1"),
            agent: agent
                .split('/')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
        }
    }

    fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        Ok((
            LabelSelector::parse(self.param("labelSelector").unwrap_or_default())?,
            FieldSelector::parse(self.param("fieldSelector").unwrap_or_default())?,
        ))
    }

    /// The body of a create, replace or delete (DeleteOptions): JSON when the
    /// Content-Type is `application/json` (or missing, as kube-apiserver assumes), YAML
    /// when `application/yaml`, protobuf when `application/vnd.kubernetes.protobuf` and
    /// the object is one the `protobuf` module reads (a Namespace, what
    /// `kubectl create namespace` sends). Any other type, or a protobuf object of another
    /// kind, is a 415 naming the types the simulator reads for it; a body it cannot
    /// parse is a 400.
    fn object_body(&self) -> Result<Value, ApiError> {
        let content_type = self.content_type();
        let yaml = match content_type.as_str() {
            "" | "application/json" => false,
            "application/yaml" => true,
            PROTOBUF => {
                return match protobuf::decode(self.body) {
                    Ok(protobuf::Decoded::Object(v)) => Ok(v),
                    Ok(protobuf::Decoded::OtherKind(..)) => Err(ApiError::UnsupportedMediaType {
                        content_type,
                        accepted: &OBJECT_MEDIA_TYPES[..2],
                    }),
                    Err(e) => Err(ApiError::bad_request(e.to_string())),
                };
            }
            _ => {
                return Err(ApiError::UnsupportedMediaType {
                    content_type,
                    accepted: OBJECT_MEDIA_TYPES,
                });
            }
        };
        self.body_value(yaml)
    }

    /// The body as an object: JSON, or YAML when `yaml` (apply patches, YAML uploads).
    fn body_value(&self, yaml: bool) -> Result<Value, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("the request needs a body"));
        }
        match serde_json::from_slice::<Value>(self.body) {
            Ok(v) => Ok(v),
            Err(json_err) if yaml => serde_saphyr::from_slice::<Value>(self.body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the body is neither JSON ({json_err}) nor YAML ({e})"
                ))
            }),
            Err(e) => Err(ApiError::bad_request(format!(
                "the body is not valid JSON: {e}"
            ))),
        }
    }
}

/// What a resource path addresses.
enum Target {
    Collection {
        rt: &'static ResourceType,
        namespace: Option<String>,
    },
    Object {
        rt: &'static ResourceType,
        namespace: String,
        name: String,
        sub: Option<String>,
    },
}

fn unknown_resource(path: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("the server could not find the requested resource ({path})"),
        kind: None,
        name: None,
    }
}

fn resource_target(
    group: &str,
    version: &str,
    rest: &[&str],
    path: &str,
) -> Result<Target, ApiError> {
    let find = |plural: &str| {
        resources::find(group, version, plural).ok_or_else(|| unknown_resource(path))
    };
    let namespaced = |ns: &str, more: &[&str]| -> Result<Target, ApiError> {
        let (plural, more) = more.split_first().ok_or_else(|| unknown_resource(path))?;
        let rt = find(plural)?;
        if !rt.namespaced {
            return Err(unknown_resource(path));
        }
        match more {
            [] => Ok(Target::Collection {
                rt,
                namespace: Some(ns.to_string()),
            }),
            [name] => Ok(Target::Object {
                rt,
                namespace: ns.to_string(),
                name: (*name).to_string(),
                sub: None,
            }),
            [name, sub] => Ok(Target::Object {
                rt,
                namespace: ns.to_string(),
                name: (*name).to_string(),
                sub: Some((*sub).to_string()),
            }),
            _ => Err(unknown_resource(path)),
        }
    };
    match rest {
        ["namespaces", ns, plural, more @ ..]
            if !(more.is_empty() && matches!(*plural, "status" | "finalize")) =>
        {
            let mut all = vec![*plural];
            all.extend_from_slice(more);
            namespaced(ns, &all)
        }
        [plural] => Ok(Target::Collection {
            rt: find(plural)?,
            namespace: None,
        }),
        [plural, name] | [plural, name, _] => {
            let rt = find(plural)?;
            if rt.namespaced {
                return Err(unknown_resource(path));
            }
            let sub = rest.get(2).map(|s| (*s).to_string());
            Ok(Target::Object {
                rt,
                namespace: String::new(),
                name: (*name).to_string(),
                sub,
            })
        }
        _ => Err(unknown_resource(path)),
    }
}

fn method_not_allowed(method: &Method, path: &str) -> ApiError {
    ApiError::MethodNotAllowed {
        message: format!(
            "the server does not allow this method on the requested resource ({method} {path})"
        ),
    }
}

/// The resource target of a path under `/api/v1` or `/apis/<group>/<version>`.
fn parse_target(path: &str) -> Result<Target, ApiError> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["api", version, rest @ ..] if !rest.is_empty() => resource_target("", version, rest, path),
        ["apis", group, version, rest @ ..] if !rest.is_empty() => {
            resource_target(group, version, rest, path)
        }
        _ => Err(unknown_resource(path)),
    }
}

/// `GET <collection>?watch=true`: a streaming response of watch events.
fn watch_response(ctx: &Ctx, req: &Request<'_>) -> Result<Response, ApiError> {
    let Target::Collection { rt, namespace } = parse_target(req.path)? else {
        return Err(ApiError::MethodNotAllowed {
            message: "watch a collection (with fieldSelector=metadata.name=NAME for one object)"
                .into(),
        });
    };
    let (labels, fields) = req.selectors()?;
    let timeout = req
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let stream = Watch::new(
        ctx.sim.clone(),
        rt,
        namespace,
        labels,
        fields,
        req.param("resourceVersion"),
        timeout,
        ctx.shutdown.clone(),
    );
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        stream.into_body(),
    )
        .into_response())
}

/// A watch answered in-process: the same checks as [`watch_response`] (a collection, valid
/// selectors), then an empty 200.
fn check_watch(req: &Request<'_>) -> Result<Response, ApiError> {
    let Target::Collection { .. } = parse_target(req.path)? else {
        return Err(ApiError::MethodNotAllowed {
            message: "watch a collection (with fieldSelector=metadata.name=NAME for one object)"
                .into(),
        });
    };
    req.selectors()?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")]).into_response())
}

fn dispatch(
    state: &mut Cluster,
    req: &Request<'_>,
    server_address: &str,
) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let get = req.method == Method::GET;
    let ok = |v: Value| Ok(Reply::Json(StatusCode::OK, v));
    let found = |v: Option<Value>| v.ok_or_else(|| unknown_resource(req.path));
    match segments.as_slice() {
        ["healthz" | "readyz" | "livez"] if get => return Ok(Reply::Text("ok")),
        ["version"] if get => return ok(resources::version_info()),
        ["api"] if get => return ok(resources::api_versions(server_address)),
        ["apis"] if get => return ok(resources::api_group_list()),
        ["api", version] if get => return ok(found(resources::api_resource_list("", version))?),
        ["apis", group] if get => return ok(found(resources::api_group_doc(group))?),
        ["apis", group, version] if get => {
            return ok(found(resources::api_resource_list(group, version))?);
        }
        ["openapi", "v3"] if get => return ok(resources::openapi_v3_root()),
        ["openapi", "v3", rest @ ..] if get => {
            return ok(found(resources::openapi_v3_group_version(&rest.join("/")))?);
        }
        _ => {}
    }
    let target = parse_target(req.path)?;
    match target {
        Target::Collection { rt, namespace } => collection(state, req, rt, namespace.as_deref()),
        Target::Object {
            rt,
            namespace,
            name,
            sub,
        } => {
            let part = match sub.as_deref() {
                None => Part::Main,
                Some("status") if rt.has_status => Part::Status,
                Some(_) => return Err(unknown_resource(req.path)),
            };
            object(state, req, rt, &namespace, &name, part)
        }
    }
}

fn list_body(rt: &ResourceType, items: Vec<Value>, resource_version: String) -> Value {
    json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": { "resourceVersion": resource_version },
        "items": items,
    })
}

fn collection(
    state: &mut Cluster,
    req: &Request<'_>,
    rt: &'static ResourceType,
    namespace: Option<&str>,
) -> Result<Reply, ApiError> {
    match *req.method {
        Method::GET => {
            let (labels, fields) = req.selectors()?;
            let items = state.list(rt, namespace, &labels, &fields);
            let rv = state.resource_version();
            if req.wants_table() {
                let include = req.param("includeObject").unwrap_or("Metadata");
                return Ok(Reply::Json(
                    StatusCode::OK,
                    table::table(rt, &items, state.now(), &rv, include),
                ));
            }
            Ok(Reply::Json(StatusCode::OK, list_body(rt, items, rv)))
        }
        Method::POST => {
            let ns = match (rt.namespaced, namespace) {
                (true, Some(ns)) => ns,
                (false, _) => "",
                (true, None) => return Err(method_not_allowed(req.method, req.path)),
            };
            let body = req.object_body()?;
            let created = state.create(rt, ns, body, &req.write_options())?;
            Ok(Reply::Json(StatusCode::CREATED, created))
        }
        // Namespaces are deleted one by one (discovery lists no deletecollection).
        Method::DELETE if !crate::namespaces::is_namespace(rt) => {
            let (labels, fields) = req.selectors()?;
            let dry_run = req.write_options().dry_run;
            let items = state.delete_collection(rt, namespace, &labels, &fields, dry_run);
            let rv = state.resource_version();
            Ok(Reply::Json(StatusCode::OK, list_body(rt, items, rv)))
        }
        _ => Err(method_not_allowed(req.method, req.path)),
    }
}

fn object(
    state: &mut Cluster,
    req: &Request<'_>,
    rt: &'static ResourceType,
    namespace: &str,
    name: &str,
    part: Part,
) -> Result<Reply, ApiError> {
    let ok = |v: Value| Ok(Reply::Json(StatusCode::OK, v));
    match *req.method {
        Method::GET => {
            let obj = state.get(rt, namespace, name)?;
            if req.wants_table() && part == Part::Main {
                let include = req.param("includeObject").unwrap_or("Metadata");
                let rv = state.resource_version();
                return ok(table::table(rt, &[obj], state.now(), &rv, include));
            }
            ok(obj)
        }
        Method::PUT => {
            let body = req.object_body()?;
            ok(state.replace(rt, namespace, name, body, part, &req.write_options())?)
        }
        Method::PATCH => patch_object(state, req, rt, namespace, name, part),
        Method::DELETE if part == Part::Main => ok(delete_object(state, req, rt, namespace, name)?),
        _ => Err(method_not_allowed(req.method, req.path)),
    }
}

/// `PATCH` of an object or its status: 201 when an apply created it, 200 otherwise.
fn patch_object(
    state: &mut Cluster,
    req: &Request<'_>,
    rt: &'static ResourceType,
    namespace: &str,
    name: &str,
    part: Part,
) -> Result<Reply, ApiError> {
    let content_type = req.content_type();
    let patch_type = match content_type.as_str() {
        "application/apply-patch+yaml" => PatchType::Apply,
        "application/merge-patch+json" => PatchType::Merge,
        "application/json-patch+json" => PatchType::Json,
        "application/strategic-merge-patch+json" => PatchType::Strategic,
        _ => {
            return Err(ApiError::UnsupportedMediaType {
                content_type,
                accepted: PATCH_MEDIA_TYPES,
            });
        }
    };
    let body = req.body_value(patch_type == PatchType::Apply)?;
    let existed = state.get(rt, namespace, name).is_ok();
    let result = state.patch(
        rt,
        namespace,
        name,
        patch_type,
        body,
        part,
        &req.write_options(),
    )?;
    let code = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(Reply::Json(code, result))
}

/// `DELETE` of an object, with an optional DeleteOptions body (preconditions,
/// `dryRun`); answers a `Success` Status naming what was deleted.
fn delete_object(
    state: &mut Cluster,
    req: &Request<'_>,
    rt: &'static ResourceType,
    namespace: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let options = if req.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(req.object_body()?)
    };
    let dry_run = req.write_options().dry_run
        || options
            .as_ref()
            .and_then(|o| o.get("dryRun"))
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
    let preconditions = options.as_ref().and_then(|o| o.get("preconditions"));
    let deleted = state.delete(rt, namespace, name, preconditions, dry_run)?;
    let mut details = json!({
        "name": name,
        "kind": rt.plural,
        "uid": deleted.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
    });
    if !rt.group.is_empty() {
        details["group"] = json!(rt.group);
    }
    Ok(json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }))
}
