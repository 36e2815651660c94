//! The pure core of eks-canary: the deploy.json contract and its validation, template
//! rendering, each traffic provider's route shape, the weight schedule, verdict maths,
//! the decisions (what comes next), the execution document and the error names shared
//! with the state machine. No AWS, no Kubernetes client, no I/O.
//!
//! Where to look: `spec/` (deploy.json), `render.rs`, `provider/` (one file per traffic
//! provider), `schedule.rs` (weights and the plan), `verdict.rs` (numbers → verdict),
//! `decide/` (verdict, readiness, holds, rollback → next step), `whatif.rs` (the health
//! rule replayed over past numbers), `execution.rs` (the document the tasks pass
//! along), `errors.rs` (the error names), `timing.rs`, `names.rs`, `labels.rs`,
//! `clock.rs`.
//!
//! Modules depend one way (a file imports only files listed before it):
//! `timing`, `names`, `labels`, `errors`, `clock` → `provider` → `spec/` types
//! (`spec/mod.rs`) → `schedule`, `verdict` → `spec/parse.rs` (validation checks that the
//! plan fits in one execution) → `execution` → `render`, `decide/` → `whatif`.

pub mod clock;
pub mod compare;
pub mod decide;
pub mod errors;
pub mod execution;
pub mod labels;
pub mod names;
pub mod notify;
pub mod provider;
pub mod render;
pub mod schedule;
pub mod spec;
pub mod timing;
pub mod verdict;
pub mod whatif;

pub use errors::ErrorName;
pub use execution::{
    ActionKind, CaughtError, Deployment, DocumentError, ExecutionDocument, GateWait, Next,
    OperatorAction, Outcome, OutcomeStatus, RouteRef, Start,
};
pub use render::{RenderError, RenderParams, Rendered, RenderedObject, Scope};

pub use spec::{
    DeploySpec, FieldError, HealthSpec, NoDataPolicy, TrafficProvider, ValidationErrors,
};
pub use verdict::{Observation, Rules, Verdict, VerdictStatus};
