//! From `apiVersion` and `kind` to the REST resource (`plural`) without a discovery
//! round-trip: the kinds a template renders are known; any other kind falls back to the
//! usual rule (lowercase kind + `s`), which is what most CRDs use.

use kube::core::{ApiResource, GroupVersionKind};

use crate::error::{Error, Result};

/// The kinds whose plural and scope are known: `(group, kind, plural, namespaced)`.
const KNOWN: &[(&str, &str, &str, bool)] = &[
    ("apps", "Deployment", "deployments", true),
    ("apps", "ReplicaSet", "replicasets", true),
    ("", "Service", "services", true),
    ("", "Pod", "pods", true),
    ("", "ConfigMap", "configmaps", true),
    ("", "Secret", "secrets", true),
    ("", "ServiceAccount", "serviceaccounts", true),
    ("", "Namespace", "namespaces", false),
    ("appmesh.k8s.aws", "VirtualNode", "virtualnodes", true),
    ("appmesh.k8s.aws", "VirtualRouter", "virtualrouters", true),
    ("appmesh.k8s.aws", "VirtualService", "virtualservices", true),
    ("appmesh.k8s.aws", "VirtualGateway", "virtualgateways", true),
    ("appmesh.k8s.aws", "GatewayRoute", "gatewayroutes", true),
    ("appmesh.k8s.aws", "Mesh", "meshes", false),
    ("gateway.networking.k8s.io", "HTTPRoute", "httproutes", true),
    ("gateway.networking.k8s.io", "GRPCRoute", "grpcroutes", true),
    ("gateway.networking.k8s.io", "Gateway", "gateways", true),
    (
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
];

/// A resource and whether it lives in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The REST resource.
    pub api: ApiResource,
    /// False for cluster-scoped kinds.
    pub namespaced: bool,
}

/// The resource of `api_version` / `kind`.
pub fn resource(api_version: &str, kind: &str) -> Result<Resource> {
    let invalid = |message: String| Error::InvalidObject {
        index: 0,
        name: format!("{kind} ({api_version})"),
        message,
    };
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(format!("kind `{kind}` is not a Kubernetes kind")));
    }
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    if version.is_empty() || group.contains('/') || version.contains('/') {
        return Err(invalid(format!(
            "apiVersion `{api_version}` is not `group/version` or `version`"
        )));
    }
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (plural, namespaced) = KNOWN
        .iter()
        .find(|(g, k, _, _)| *g == group && *k == kind)
        .map(|(_, _, p, n)| ((*p).to_owned(), *n))
        .unwrap_or_else(|| (format!("{}s", kind.to_ascii_lowercase()), true));
    Ok(Resource {
        api: ApiResource::from_gvk_with_plural(&gvk, &plural),
        namespaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_map_to_their_plural_without_discovery() -> Result<()> {
        let cases = [
            ("apps/v1", "Deployment", "apps", "v1", "deployments"),
            ("v1", "Service", "", "v1", "services"),
            (
                "appmesh.k8s.aws/v1beta2",
                "VirtualNode",
                "appmesh.k8s.aws",
                "v1beta2",
                "virtualnodes",
            ),
            (
                "appmesh.k8s.aws/v1beta2",
                "VirtualRouter",
                "appmesh.k8s.aws",
                "v1beta2",
                "virtualrouters",
            ),
            (
                "appmesh.k8s.aws/v1beta2",
                "VirtualService",
                "appmesh.k8s.aws",
                "v1beta2",
                "virtualservices",
            ),
            (
                "gateway.networking.k8s.io/v1",
                "HTTPRoute",
                "gateway.networking.k8s.io",
                "v1",
                "httproutes",
            ),
            (
                "gateway.networking.k8s.io/v1",
                "GRPCRoute",
                "gateway.networking.k8s.io",
                "v1",
                "grpcroutes",
            ),
            (
                "example.com/v1alpha1",
                "Widget",
                "example.com",
                "v1alpha1",
                "widgets",
            ),
        ];
        for (api_version, kind, group, version, plural) in cases {
            let r = resource(api_version, kind)?;
            assert_eq!(
                (
                    r.api.group.as_str(),
                    r.api.version.as_str(),
                    r.api.plural.as_str()
                ),
                (group, version, plural),
                "{api_version} {kind}"
            );
            assert_eq!(r.api.api_version, api_version);
            assert!(r.namespaced);
        }
        assert!(!resource("v1", "Namespace")?.namespaced);
        Ok(())
    }

    #[test]
    fn malformed_api_versions_and_kinds_are_refused() {
        assert!(resource("a/b/c", "Deployment").is_err());
        assert!(resource("", "Deployment").is_err());
        assert!(resource("apps/v1", "").is_err());
        assert!(resource("apps/v1", "Deploy ment").is_err());
    }
}
