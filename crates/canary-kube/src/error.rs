//! The one error type of this crate. Every variant carries the facts a person needs to
//! act on it (which object, which request, what the server said), and maps to one of
//! the fixed `errorType` names of [`canary_core::errors`] through [`Error::error_type`],
//! so the state machine's Retry and Catch clauses can tell a busy API server from a
//! refusal.

use canary_core::errors;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while talking to the cluster or to AWS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server answered 5xx or 429 on every try.
    #[error("{what}: the API server answered {code} ({reason}) {tries} time(s): {message}")]
    ApiTransient {
        /// The request, e.g. `PUT appmesh.k8s.aws/v1beta2 VirtualRouter demo/yelb-ui`.
        what: String,
        /// The HTTP status of the last answer.
        code: u16,
        /// The Kubernetes `Status.reason` of the last answer.
        reason: String,
        /// The Kubernetes `Status.message` of the last answer.
        message: String,
        /// How many times the request was sent.
        tries: u32,
    },

    /// The API server refused the request (4xx other than 429; 409 outside the route).
    #[error("{what}: the API server refused it with {code} ({reason}): {message}")]
    ApiRefused {
        /// The request.
        what: String,
        /// The HTTP status.
        code: u16,
        /// The Kubernetes `Status.reason`.
        reason: String,
        /// The Kubernetes `Status.message`.
        message: String,
    },

    /// No answer within the request timeout, on every try.
    #[error("{what}: no answer within {timeout_ms} ms, {tries} time(s)")]
    Timeout {
        /// The request.
        what: String,
        /// The per-request timeout.
        timeout_ms: u64,
        /// How many times the request was sent.
        tries: u32,
    },

    /// The API server could not be reached (connection refused, reset, TLS, DNS).
    #[error("{what}: cannot reach the API server ({tries} time(s)): {message}")]
    Connect {
        /// The request.
        what: String,
        /// The transport error of the last try.
        message: String,
        /// How many times the request was sent.
        tries: u32,
    },

    /// The route object kept changing under us: every replace answered 409.
    #[error(
        "route {kind} `{namespace}/{name}` changed under us on each of {attempts} attempts (409 Conflict)"
    )]
    RouteConflict {
        /// The route's kind.
        kind: String,
        /// The route's namespace.
        namespace: String,
        /// The route's name.
        name: String,
        /// How many read-modify-write rounds were tried.
        attempts: u32,
    },

    /// The route controller refused the route as written, or did not accept its
    /// generation in time: the weights are stored but not applied.
    #[error(
        "route {route} with {weights} (generation {generation}) is not confirmed by its controller: {why}"
    )]
    RouteNotConfirmed {
        /// The route: its kind, namespace and name (``VirtualRouter `shop/ui` ``).
        route: String,
        /// The weights stored in the route, e.g. `[ui-1=90, ui-2=10]`.
        weights: String,
        /// The route's `metadata.generation` that was waited for.
        generation: i64,
        /// What the controller said, or that it said nothing in time.
        why: String,
        /// How long it was waited for, in milliseconds.
        waited_ms: u64,
    },

    /// The deployment's namespace does not exist (404), or this role may not read it
    /// (403: with per-namespace RBAC, a namespace that does not exist has no binding
    /// either).
    #[error("{}", namespace_message(namespace, cluster, *forbidden))]
    NamespaceMissing {
        /// The namespace.
        namespace: String,
        /// The cluster, as deploy.json names it.
        cluster: String,
        /// The API server answered 403 rather than 404.
        forbidden: bool,
    },

    /// The route object does not have the shape its provider expects.
    #[error(transparent)]
    RouteShape(#[from] canary_core::provider::ShapeError),

    /// The weights asked for are not a valid traffic split.
    #[error(transparent)]
    InvalidWeights(#[from] canary_core::provider::SplitError),

    /// The stored route does not carry the weights that were just written.
    #[error("route {kind} `{name}`: wrote {wanted} but the server stored {stored}")]
    VerifyFailed {
        /// The route's kind.
        kind: String,
        /// The route's name.
        name: String,
        /// The weights written.
        wanted: String,
        /// The weights the server's answer carries.
        stored: String,
    },

    /// An object handed to `apply` (or a kind given to removal) is not usable.
    #[error("object #{index} ({name}): {message}")]
    InvalidObject {
        /// Its position in the list.
        index: usize,
        /// `kind/name` as far as known.
        name: String,
        /// What is wrong with it.
        message: String,
    },

    /// The server's answer could not be understood.
    #[error("{what}: unexpected answer from the API server: {message}")]
    Decode {
        /// The request.
        what: String,
        /// What could not be decoded.
        message: String,
    },

    /// The kube client could not be configured (kubeconfig, CA, token, TLS).
    #[error("kubernetes client configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },

    /// EKS DescribeCluster failed.
    #[error("EKS DescribeCluster `{cluster}` failed: {message}")]
    DescribeCluster {
        /// The cluster name.
        cluster: String,
        /// The SDK's message.
        message: String,
        /// Throttling, 5xx or a network error (worth retrying).
        transient: bool,
    },

    /// No AWS credentials to sign the EKS token with.
    #[error("AWS credentials for the EKS token: {message}")]
    Credentials {
        /// The provider's message.
        message: String,
    },

    /// Presigning the STS GetCallerIdentity URL failed.
    #[error("signing the EKS token for cluster `{cluster}`: {message}")]
    Signing {
        /// The cluster name.
        cluster: String,
        /// The signer's message.
        message: String,
    },
}

impl Error {
    /// The fixed `errorType` name of [`canary_core::errors`] for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::ApiTransient { .. } | Self::Timeout { .. } | Self::Connect { .. } => {
                errors::KUBE_TRANSIENT
            }
            Self::DescribeCluster {
                transient: true, ..
            } => errors::KUBE_TRANSIENT,
            Self::RouteConflict { .. } => errors::ROUTE_CONFLICT,
            Self::RouteNotConfirmed { .. } => errors::ROUTE_NOT_CONFIRMED,
            Self::NamespaceMissing { .. } => errors::NAMESPACE_MISSING,
            Self::ApiRefused { .. }
            | Self::RouteShape(_)
            | Self::VerifyFailed { .. }
            | Self::Decode { .. }
            | Self::Config { .. }
            | Self::DescribeCluster {
                transient: false, ..
            }
            | Self::Credentials { .. }
            | Self::Signing { .. } => errors::KUBE_ERROR,
            Self::InvalidWeights(_) | Self::InvalidObject { .. } => errors::INTERNAL,
        }
    }

    /// True for errors worth retrying later (the state machine's Retry).
    pub fn is_transient(&self) -> bool {
        self.error_type() == errors::KUBE_TRANSIENT || self.error_type() == errors::ROUTE_CONFLICT
    }

    /// The HTTP status the API server answered, when it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::ApiTransient { code, .. } | Self::ApiRefused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// What a missing (or unreadable) namespace says, with the command that fixes it.
fn namespace_message(namespace: &str, cluster: &str, forbidden: bool) -> String {
    if forbidden {
        format!(
            "namespace {namespace} on cluster {cluster} cannot be read (403 Forbidden): either it does not exist \
             (create it first: kubectl create namespace {namespace}) or eks-canary was not given access to it \
             (scripts/grant-cluster-access --cluster {cluster} --namespace {namespace})"
        )
    } else {
        format!(
            "namespace {namespace} does not exist on cluster {cluster}: create it first (kubectl create namespace {namespace})"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: u16) -> Error {
        Error::ApiRefused {
            what: "GET x".into(),
            code,
            reason: "r".into(),
            message: "m".into(),
        }
    }

    #[test]
    fn every_variant_maps_to_a_name_the_state_machine_knows() {
        let all = [
            Error::ApiTransient {
                what: "w".into(),
                code: 503,
                reason: "r".into(),
                message: "m".into(),
                tries: 3,
            },
            refused(403),
            Error::Timeout {
                what: "w".into(),
                timeout_ms: 10,
                tries: 3,
            },
            Error::Connect {
                what: "w".into(),
                message: "refused".into(),
                tries: 3,
            },
            Error::RouteConflict {
                kind: "k".into(),
                namespace: "n".into(),
                name: "x".into(),
                attempts: 5,
            },
            Error::RouteShape(canary_core::provider::ShapeError {
                kind: "k".into(),
                name: "x".into(),
                message: "m".into(),
            }),
            Error::InvalidWeights(canary_core::provider::SplitError {
                targets: "b".into(),
                message: "m".into(),
            }),
            Error::VerifyFailed {
                kind: "k".into(),
                name: "x".into(),
                wanted: "a".into(),
                stored: "b".into(),
            },
            Error::InvalidObject {
                index: 0,
                name: "x".into(),
                message: "m".into(),
            },
            Error::Decode {
                what: "w".into(),
                message: "m".into(),
            },
            Error::Config {
                message: "m".into(),
            },
            Error::DescribeCluster {
                cluster: "c".into(),
                message: "m".into(),
                transient: true,
            },
            Error::DescribeCluster {
                cluster: "c".into(),
                message: "m".into(),
                transient: false,
            },
            Error::Credentials {
                message: "m".into(),
            },
            Error::Signing {
                cluster: "c".into(),
                message: "m".into(),
            },
            Error::RouteNotConfirmed {
                route: "k `n/x`".into(),
                weights: "[a=100]".into(),
                generation: 2,
                why: "w".into(),
                waited_ms: 0,
            },
            Error::NamespaceMissing {
                namespace: "shop".into(),
                cluster: "c".into(),
                forbidden: false,
            },
        ];
        for e in &all {
            assert!(
                errors::ALL.contains(&e.error_type()),
                "{e} maps to {}",
                e.error_type()
            );
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn busy_servers_are_transient_and_refusals_are_not() {
        let busy = Error::ApiTransient {
            what: "w".into(),
            code: 429,
            reason: "r".into(),
            message: "m".into(),
            tries: 3,
        };
        assert_eq!(busy.error_type(), errors::KUBE_TRANSIENT);
        assert!(busy.is_transient());
        assert_eq!(refused(422).error_type(), errors::KUBE_ERROR);
        assert!(!refused(422).is_transient());
        assert_eq!(refused(422).status_code(), Some(422));
    }
}
