//! Operator commands on a service's deployment records (canary-store, in the shared
//! stack's S3 bucket): `canary history` ([`history`]), `canary status` ([`status`]),
//! `canary unlock` and `canary abort` ([`lock`]), `canary approve` and `canary promote`
//! ([`gates`]), `canary recover` ([`recover`], which also reaches the cluster). This module names the service and finds its records.
//!
//! # Naming the service
//!
//! Records are kept per cluster, namespace and microservice, so every records command
//! takes one of:
//! - `<service> --cluster C --namespace N` (the `microservice_name`),
//! - `<cluster>/<namespace>/<service>` as the one positional argument,
//! - `--deploy-json FILE`: the three names are read from that deploy.json
//!   (`cluster_name`, `kubernetes_namespace`, `microservice_name`; the image and the
//!   template need not be there yet).
//!
//! The bucket is `--bucket`, else `$CANARY_STATE_BUCKET`; the key prefix is `--prefix`,
//! else `$CANARY_STATE_PREFIX`, else `state/` (what the shared stack gives the Lambda
//! functions). AWS settings come from the standard chain (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, credentials), so the commands work against moto too.
//!
//! # Exit codes
//!
//! 0 done, 1 an AWS failure, 2 bad input (and `abort`, `approve`, `promote` when no
//! deployment is running; `approve` when it waits at no gate).

pub mod gates;
pub mod history;
pub mod lock;
pub mod recover;
pub mod status;

use std::path::PathBuf;

use canary_store::{DeploymentStore, ServiceRef};
use clap::ValueEnum;

use crate::aws::sdk_config;
use crate::deploy_json::{self, Inputs};
use crate::error::CliError;

pub use gates::{ApproveArgs, PromoteArgs, approve_command, promote_command};
pub use history::{HistoryArgs, history};
pub use lock::{AbortArgs, UnlockArgs, abort, unlock};
pub use recover::{RecoverArgs, recover};
pub use status::{StatusArgs, status};

/// The default key prefix of the records (the shared stack's `CANARY_STATE_PREFIX`).
pub const DEFAULT_PREFIX: &str = "state/";

/// How a records command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For a person.
    Text,
    /// For a script.
    Json,
}

/// Where the records are.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The state bucket (the shared stack's artifacts bucket).
    #[arg(long, env = "CANARY_STATE_BUCKET")]
    pub bucket: Option<String>,
    /// The key prefix of the records in the bucket.
    #[arg(long, env = "CANARY_STATE_PREFIX", default_value = DEFAULT_PREFIX)]
    pub prefix: String,
}

/// Which service, and where its records are.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// The microservice (`microservice_name`, with --cluster and --namespace), or
    /// `<cluster>/<namespace>/<service>`.
    #[arg(conflicts_with = "deploy_json")]
    pub service: Option<String>,
    /// The EKS cluster (`cluster_name`).
    #[arg(long, conflicts_with = "deploy_json")]
    pub cluster: Option<String>,
    /// The Kubernetes namespace (`kubernetes_namespace`).
    #[arg(long, conflicts_with = "deploy_json")]
    pub namespace: Option<String>,
    /// Read cluster, namespace and service from this deploy.json instead.
    #[arg(long, value_name = "FILE")]
    pub deploy_json: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
}

impl ServiceArgs {
    /// The service these arguments name (no AWS call).
    pub fn service_ref(&self) -> Result<ServiceRef, CliError> {
        if let Some(path) = &self.deploy_json {
            let inputs = Inputs::default();
            let spec = deploy_json::load(path, &inputs, true)?;
            return Ok(ServiceRef::from_spec(&spec));
        }
        let Some(name) = self.service.as_deref() else {
            return Err(CliError::Usage(
                "name the service: `<service> --cluster C --namespace N`, `<cluster>/<namespace>/<service>`, or `--deploy-json FILE`".into(),
            ));
        };
        if name.contains('/') {
            if self.cluster.is_some() || self.namespace.is_some() {
                return Err(CliError::Usage(format!(
                    "service `{name}` already names its cluster and namespace: drop --cluster and --namespace"
                )));
            }
            return ServiceRef::parse(name).map_err(|e| CliError::Usage(e.to_string()));
        }
        let cluster = self.cluster.as_deref().ok_or_else(|| {
            CliError::Usage(format!(
                "--cluster is required for service `{name}` (or write `<cluster>/<namespace>/{name}`, or pass --deploy-json)"
            ))
        })?;
        let namespace = self.namespace.as_deref().ok_or_else(|| {
            CliError::Usage(format!(
                "--namespace is required for service `{name}` (or write `<cluster>/<namespace>/{name}`, or pass --deploy-json)"
            ))
        })?;
        for (what, value) in [
            ("--cluster", cluster),
            ("--namespace", namespace),
            ("service", name),
        ] {
            if value.trim().is_empty() || value == "." || value == ".." {
                return Err(CliError::Usage(format!(
                    "invalid {what} `{value}`: must be a name"
                )));
            }
            if value.contains('/') {
                return Err(CliError::Usage(format!(
                    "invalid {what} `{value}`: must not contain `/`"
                )));
            }
        }
        Ok(ServiceRef::new(cluster, namespace, name))
    }
}

impl StoreArgs {
    /// The bucket, or a usage error saying how to give it.
    pub fn bucket(&self) -> Result<&str, CliError> {
        match self.bucket.as_deref() {
            Some(b) if !b.trim().is_empty() => Ok(b),
            _ => Err(CliError::Usage(
                "no state bucket: pass --bucket or set CANARY_STATE_BUCKET".into(),
            )),
        }
    }

    /// The store in the bucket, under the prefix.
    pub async fn store(&self) -> Result<DeploymentStore, CliError> {
        let bucket = self.bucket()?.to_owned();
        let sdk = sdk_config().await;
        Ok(DeploymentStore::s3(&sdk, bucket).with_prefix(&self.prefix))
    }
}

/// `--by`, else `$USER@<hostname>`.
pub fn who(by: Option<&str>) -> Result<String, CliError> {
    if let Some(by) = by {
        if by.trim().is_empty() {
            return Err(CliError::Usage("--by must not be empty".into()));
        }
        return Ok(by.to_owned());
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    Ok(format!("{user}@{}", hostname()))
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(service: Option<&str>, cluster: Option<&str>, namespace: Option<&str>) -> ServiceArgs {
        ServiceArgs {
            service: service.map(str::to_owned),
            cluster: cluster.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
            deploy_json: None,
            store: StoreArgs {
                bucket: None,
                prefix: DEFAULT_PREFIX.into(),
            },
        }
    }

    #[test]
    fn a_service_is_named_by_flags_or_by_one_path() {
        let a = args(Some("web"), Some("c1"), Some("shop"))
            .service_ref()
            .map_err(|e| e.to_string());
        assert_eq!(a, Ok(ServiceRef::new("c1", "shop", "web")));
        let b = args(Some("c1/shop/web"), None, None)
            .service_ref()
            .map_err(|e| e.to_string());
        assert_eq!(b, Ok(ServiceRef::new("c1", "shop", "web")));
    }

    #[test]
    fn a_bare_service_without_its_cluster_is_refused_naming_the_flag() {
        let err = args(Some("web"), None, Some("shop"))
            .service_ref()
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(matches!(&err, Err(m) if m.contains("--cluster")), "{err:?}");
        let err = args(Some("c1/shop/web"), Some("c1"), None)
            .service_ref()
            .map(|_| ())
            .map_err(|e| e.to_string());
        assert!(
            matches!(&err, Err(m) if m.contains("drop --cluster")),
            "{err:?}"
        );
    }
}
