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

mod dispatch;
mod target;
use {dispatch::*, target::*};

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
