//! The labels that every rendered object carries, so that later stages can find what
//! belongs to a service and to one version of it without a list of kinds.

/// Marks every object this tool applied.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGER: &str = "eks-canary";
/// The microservice an object belongs to.
pub const SERVICE: &str = "eks-canary.io/service";
/// The version of a per-version object; shared objects do not carry it.
pub const VERSION: &str = "eks-canary.io/version";
/// The field manager used for server-side apply.
pub const FIELD_MANAGER: &str = "eks-canary";

/// Label selector for every object of a service.
pub fn service_selector(service: &str) -> String {
    format!("{MANAGED_BY}={MANAGER},{SERVICE}={service}")
}

/// Label selector for the per-version objects of one version of a service.
pub fn version_selector(service: &str, version: u32) -> String {
    format!("{},{VERSION}={version}", service_selector(service))
}

/// The name of a version's Deployment, Service and VirtualNode: `<service>-<version>`.
pub fn versioned_name(service: &str, version: u32) -> String {
    format!("{service}-{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_name_the_service_and_the_version() {
        assert_eq!(
            version_selector("yelb-ui", 3),
            "app.kubernetes.io/managed-by=eks-canary,eks-canary.io/service=yelb-ui,eks-canary.io/version=3"
        );
        assert_eq!(versioned_name("yelb-ui", 3), "yelb-ui-3");
    }
}
