//! The simulator's one error type: every failure of an API request, each of which is
//! answered to the client as a Kubernetes `Status` object with the matching HTTP code
//! and `reason`.

use serde_json::{Value, json};

/// A refused or failed API request. Each variant becomes a `Status` body whose `reason`
/// and `code` are those a real API server uses for the same failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The object, collection or resource type does not exist (404 `NotFound`).
    #[error("{message}")]
    NotFound {
        /// The message for the client, e.g. `deployments.apps "web-1" not found`.
        message: String,
        /// The resource (plural, with group), e.g. `deployments.apps`, if known.
        kind: Option<String>,
        /// The object's name, if the request named one.
        name: Option<String>,
    },
    /// Creating an object whose name is taken (409 `AlreadyExists`).
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// The resource (plural, with group), e.g. `deployments.apps`.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// A write whose preconditions (resourceVersion, uid) or server-side apply
    /// ownership do not hold (409 `Conflict`).
    #[error("{message}")]
    Conflict {
        /// The message for the client.
        message: String,
        /// The resource (plural, with group).
        resource: String,
        /// The object's name.
        name: String,
    },
    /// The object failed validation, or a JSON patch could not be applied (422 `Invalid`).
    #[error("{message}")]
    Invalid {
        /// The message for the client.
        message: String,
    },
    /// The request itself is malformed: bad body, bad selector, missing parameter
    /// (400 `BadRequest`).
    #[error("{message}")]
    BadRequest {
        /// The message for the client.
        message: String,
    },
    /// The verb is not supported on this path (405 `MethodNotAllowed`).
    #[error("{message}")]
    MethodNotAllowed {
        /// The message for the client.
        message: String,
    },
    /// The body's content type is not one the server reads for this request (415
    /// `UnsupportedMediaType`): a patch type it does not know, or an object body that is
    /// neither JSON nor YAML (protobuf, for one). The message lists what it accepts, in
    /// the words kube-apiserver uses.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {}",
        accepted.join(", ")
    )]
    UnsupportedMediaType {
        /// The content type the client sent.
        content_type: String,
        /// The media types the request could have used.
        accepted: &'static [&'static str],
    },
    /// The request is refused whatever its body says (403 `Forbidden`), e.g. deleting a
    /// namespace every cluster keeps (`default`, `kube-system`, `kube-public`).
    #[error("{resource} \"{name}\" is forbidden: {reason}")]
    Forbidden {
        /// The resource (plural, with group), e.g. `namespaces`.
        resource: String,
        /// The object's name.
        name: String,
        /// Why, e.g. `this namespace may not be deleted`.
        reason: String,
    },
    /// An injected or internal server failure (500 `InternalError`).
    #[error("{message}")]
    Internal {
        /// The message for the client.
        message: String,
    },
    /// An injected throttling answer (429 `TooManyRequests`, with `Retry-After`).
    #[error("{message}")]
    TooManyRequests {
        /// The message for the client.
        message: String,
        /// Seconds the client should wait, sent as `Retry-After` and in `details`.
        retry_after_secs: u64,
    },
}

impl ApiError {
    /// A 404 for a named object of a resource.
    pub(crate) fn not_found(resource: &str, name: &str) -> Self {
        Self::NotFound {
            message: format!("{resource} \"{name}\" not found"),
            kind: Some(resource.to_string()),
            name: Some(name.to_string()),
        }
    }

    /// A 409 for a stale write.
    pub(crate) fn stale(resource: &str, name: &str) -> Self {
        Self::Conflict {
            message: format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            resource: resource.to_string(),
            name: name.to_string(),
        }
    }

    /// A 400 with a message.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
        }
    }

    /// A 422 with a message.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
        }
    }

    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::Invalid { .. } => 422,
            Self::BadRequest { .. } => 400,
            Self::MethodNotAllowed { .. } => 405,
            Self::Forbidden { .. } => 403,
            Self::UnsupportedMediaType { .. } => 415,
            Self::Internal { .. } => 500,
            Self::TooManyRequests { .. } => 429,
        }
    }

    /// The Kubernetes `Status.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Invalid { .. } => "Invalid",
            Self::BadRequest { .. } => "BadRequest",
            Self::MethodNotAllowed { .. } => "MethodNotAllowed",
            Self::Forbidden { .. } => "Forbidden",
            Self::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            Self::Internal { .. } => "InternalError",
            Self::TooManyRequests { .. } => "TooManyRequests",
        }
    }

    /// The Kubernetes `Status` object for this error.
    pub fn status(&self) -> Value {
        let details = match self {
            Self::NotFound { kind, name, .. } => {
                let mut d = serde_json::Map::new();
                if let Some(name) = name {
                    d.insert("name".into(), json!(name));
                }
                if let Some(kind) = kind {
                    let (plural, group) = kind.split_once('.').unwrap_or((kind.as_str(), ""));
                    d.insert("kind".into(), json!(plural));
                    if !group.is_empty() {
                        d.insert("group".into(), json!(group));
                    }
                }
                Some(Value::Object(d))
            }
            Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name, .. }
            | Self::Forbidden { resource, name, .. } => {
                let (plural, group) = resource.split_once('.').unwrap_or((resource.as_str(), ""));
                let mut d = json!({ "name": name, "kind": plural });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            Self::TooManyRequests {
                retry_after_secs, ..
            } => Some(json!({ "retryAfterSeconds": retry_after_secs })),
            _ => None,
        };
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Some(details) = details {
            status["details"] = details;
        }
        status
    }
}
