//! Request and object validation: a body's kind and apiVersion against the URL, its
//! namespace and name against the URL, a stale `metadata.resourceVersion`, names that
//! are not DNS subdomains (DNS labels for namespaces), labels and annotations that are not string maps, and the
//! Deployment fields the simulated controllers rely on. Each failure is the 400 or 422
//! a real API server answers.

use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceType;

/// `metadata.name` of a body, when set and not empty.
pub(crate) fn body_name(body: &Value) -> Option<String> {
    body.pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// A body must be an object whose `kind` and `apiVersion` (when given) match `rt`.
pub(crate) fn check_kind(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    let kind = body.get("kind").and_then(Value::as_str);
    let api_version = body.get("apiVersion").and_then(Value::as_str);
    if kind.is_some_and(|k| k != rt.kind) || api_version.is_some_and(|a| a != rt.api_version()) {
        return Err(ApiError::bad_request(format!(
            "the object's kind `{}` / apiVersion `{}` does not match the resource {} ({} {})",
            kind.unwrap_or_default(),
            api_version.unwrap_or_default(),
            rt.qualified(),
            rt.api_version(),
            rt.kind
        )));
    }
    Ok(())
}

/// A namespace in the body must be the one on the URL.
pub(crate) fn check_namespace(
    rt: &ResourceType,
    namespace: &str,
    body: &Value,
) -> Result<(), ApiError> {
    let in_body = body
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if rt.namespaced && !in_body.is_empty() && in_body != namespace {
        return Err(ApiError::bad_request(format!(
            "the namespace of the provided object (`{in_body}`) does not match the namespace sent on the request (`{namespace}`)"
        )));
    }
    Ok(())
}

/// A name in the body must be the one on the URL.
pub(crate) fn check_name(name: &str, body: &Value) -> Result<(), ApiError> {
    match body_name(body) {
        Some(body_name) if body_name != name => Err(ApiError::bad_request(format!(
            "the name of the object (`{body_name}`) does not match the name on the URL (`{name}`)"
        ))),
        _ => Ok(()),
    }
}

/// A write naming a `metadata.resourceVersion` other than the live one is stale (409).
pub(crate) fn check_resource_version(
    rt: &ResourceType,
    name: &str,
    live: &Value,
    body: &Value,
) -> Result<(), ApiError> {
    let wanted = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let current = live
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str);
    match wanted {
        Some(w) if Some(w) != current => Err(ApiError::stale(&rt.qualified(), name)),
        _ => Ok(()),
    }
}

/// A server-side apply body: an object that sets `apiVersion` and `kind`, sent with a
/// field manager (returned).
pub(crate) fn check_apply(manager: Option<&str>, applied: &Value) -> Result<String, ApiError> {
    let manager = manager.filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests",
        )
    })?;
    if !applied.is_object() {
        return Err(ApiError::bad_request("an apply patch must be an object"));
    }
    if applied.get("apiVersion").and_then(Value::as_str).is_none()
        || applied.get("kind").and_then(Value::as_str).is_none()
    {
        return Err(ApiError::bad_request(
            "an apply patch must set apiVersion and kind",
        ));
    }
    Ok(manager.to_string())
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn check_string_map(
    object: &Value,
    field: &str,
    resource: &str,
    name: &str,
) -> Result<(), ApiError> {
    match object.pointer(&format!("/metadata/{field}")) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) => match m.iter().find(|(_, v)| !v.is_string()) {
            Some((k, v)) => Err(ApiError::invalid(format!(
                "{resource} \"{name}\" is invalid: metadata.{field}.{k}: Invalid value: {v}: must be a string"
            ))),
            None => Ok(()),
        },
        Some(other) => Err(ApiError::invalid(format!(
            "{resource} \"{name}\" is invalid: metadata.{field}: Invalid value: {other}: must be a map of strings"
        ))),
    }
}

/// A Deployment needs containers with a name and an image, and a selector that matches
/// its template's labels.
fn validate_deployment(object: &Value, resource: &str, name: &str) -> Result<(), ApiError> {
    let containers = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array);
    let ok = containers.is_some_and(|c| {
        !c.is_empty()
            && c.iter().all(|c| {
                c.get("name").is_some_and(Value::is_string)
                    && c.get("image").is_some_and(Value::is_string)
            })
    });
    if !ok {
        return Err(ApiError::invalid(format!(
            "{resource} \"{name}\" is invalid: spec.template.spec.containers: Required value: every container needs a name and an image"
        )));
    }
    let selector = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object);
    let labels = object
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object);
    let selects = selector.is_some_and(|s| {
        !s.is_empty()
            && s.iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    });
    if !selects {
        return Err(ApiError::invalid(format!(
            "{resource} \"{name}\" is invalid: spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"
        )));
    }
    Ok(())
}

/// The object about to be stored: a valid name, string maps for labels and
/// annotations, and for Deployments the fields the controllers need (422 otherwise).
pub(crate) fn validate(rt: &ResourceType, object: &Value, name: &str) -> Result<(), ApiError> {
    let resource = rt.qualified();
    if !is_dns_subdomain(name) {
        return Err(ApiError::invalid(format!(
            "{resource} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )));
    }
    if crate::namespaces::is_namespace(rt) && (name.len() > 63 || name.contains('.')) {
        return Err(ApiError::invalid(format!(
            "{resource} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
        )));
    }
    check_string_map(object, "labels", &resource, name)?;
    check_string_map(object, "annotations", &resource, name)?;
    if rt.is_deployment() {
        validate_deployment(object, &resource, name)?;
    }
    Ok(())
}
