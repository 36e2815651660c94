//! What a request path addresses: a collection or an object of a known resource type,
//! parsed from the Kubernetes URL layout, or the Status error a real API server answers.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What a resource path addresses.
pub(super) enum Target {
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

pub(super) fn unknown_resource(path: &str) -> ApiError {
    ApiError::NotFound {
        message: format!("the server could not find the requested resource ({path})"),
        kind: None,
        name: None,
    }
}

pub(super) fn resource_target(
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

pub(super) fn method_not_allowed(method: &Method, path: &str) -> ApiError {
    ApiError::MethodNotAllowed {
        message: format!(
            "the server does not allow this method on the requested resource ({method} {path})"
        ),
    }
}

/// The resource target of a path under `/api/v1` or `/apis/<group>/<version>`.
pub(super) fn parse_target(path: &str) -> Result<Target, ApiError> {
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
