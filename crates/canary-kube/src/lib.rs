//! The pipeline's hands on the cluster: the EKS connection (DescribeCluster and the
//! STS-presigned bearer token), server-side apply of rendered objects, readiness of a
//! version's Deployment, removal of a version's objects by label, and the traffic
//! routers (App Mesh, Gateway API) behind one trait.
//!
//! Every request has a timeout, is retried a few times when the API server is busy or
//! unreachable, and is counted ([`Cluster::stats`]), so callers can report API calls per
//! weight shift. Errors carry the fixed `errorType` names of [`canary_core::errors`]
//! ([`Error::error_type`]).

pub mod client;
pub mod eks;
pub mod error;
pub mod ops;
pub mod readiness;
pub mod resources;
pub mod router;

pub use client::{ApiStats, ClientSource, Cluster, RequestPolicy, StatsSnapshot};
pub use eks::{ClusterEndpoint, TokenCache, TokenPolicy, describe_cluster};
pub use error::{Error, Result};
pub use ops::{ApplyReport, DeleteReport, ObjectKey};
pub use readiness::Readiness;
pub use router::{SetWeightsReport, Target, TrafficRouter, provider_of, router_for};
