//! The verbs on a target: list, create, get, replace, patch and delete of collections
//! and objects, answered as a real API server answers them.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn dispatch(
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

pub(super) fn list_body(rt: &ResourceType, items: Vec<Value>, resource_version: String) -> Value {
    json!({
        "kind": format!("{}List", rt.kind),
        "apiVersion": rt.api_version(),
        "metadata": { "resourceVersion": resource_version },
        "items": items,
    })
}

pub(super) fn collection(
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

pub(super) fn object(
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
pub(super) fn patch_object(
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
pub(super) fn delete_object(
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
