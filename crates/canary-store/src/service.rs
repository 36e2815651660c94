//! Which service a call is about ([`ServiceRef`], the unit of versions and locking) and
//! the checks on the arguments that name it.

use std::fmt;

use canary_core::DeploySpec;

use crate::StoreError;

/// One microservice in one namespace of one cluster: the unit of versions and locking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceRef {
    pub cluster: String,
    pub namespace: String,
    pub service: String,
}

impl ServiceRef {
    /// A reference from its three parts.
    pub fn new(
        cluster: impl Into<String>,
        namespace: impl Into<String>,
        service: impl Into<String>,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            namespace: namespace.into(),
            service: service.into(),
        }
    }

    /// The service a deploy.json deploys.
    pub fn from_spec(spec: &DeploySpec) -> Self {
        Self::new(
            &spec.cluster_name,
            &spec.kubernetes_namespace,
            &spec.microservice_name,
        )
    }

    /// Parses `<cluster>/<namespace>/<service>`.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [c, n, s] if !c.is_empty() && !n.is_empty() && !s.is_empty() => {
                Ok(Self::new(*c, *n, *s))
            }
            _ => Err(StoreError::Invalid {
                what: "service",
                value: text.to_owned(),
                why: "must be `<cluster>/<namespace>/<service>`".into(),
            }),
        }
    }

    /// Refuses a reference whose parts would not make one key segment each.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        for part in [&self.cluster, &self.namespace, &self.service] {
            if part.is_empty() || part.contains('/') || part == "." || part == ".." {
                return Err(StoreError::Invalid {
                    what: "service",
                    value: self.to_string(),
                    why: "each part must be non-empty and contain no `/`".into(),
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.cluster, self.namespace, self.service)
    }
}

/// Refuses an empty execution name (it is what the lock and the records are keyed by).
pub(crate) fn check_execution(execution: &str) -> Result<(), StoreError> {
    if execution.trim().is_empty() {
        return Err(StoreError::Invalid {
            what: "execution",
            value: execution.to_owned(),
            why: "must not be empty".into(),
        });
    }
    Ok(())
}
