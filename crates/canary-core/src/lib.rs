//! The pure core of eks-canary: the deploy.json contract and its validation, template
//! rendering, the weight schedule, verdict maths, the execution document and the error
//! names shared with the state machine. No AWS, no Kubernetes client, no I/O.

pub mod clock;
pub mod errors;
pub mod execution;
pub mod labels;
pub mod names;
pub mod provider;
pub mod render;
pub mod schedule;
pub mod spec;
pub mod verdict;

pub use execution::{Deployment, ExecutionDocument, Next, Outcome, OutcomeStatus, RouteRef};
pub use render::{RenderError, RenderParams, Rendered, RenderedObject, Scope};

pub use spec::{
    DeploySpec, FieldError, HealthSpec, NoDataPolicy, TrafficProvider, ValidationErrors,
};
pub use verdict::{Observation, Verdict, VerdictStatus};
