//! A local executor for the subset of the Amazon States Language that the eks-canary
//! state machine (`statemachine/canary-deployment.asl.json`) uses, so that the `canary`
//! command, the demo and the tests run the very definition that AWS Step Functions runs,
//! with the handlers called in-process and a clock that can be virtual.
//!
//! Supported: Task, Choice, Wait, Pass, Succeed and Fail states; InputPath, Parameters
//! (with `.$` keys reading the input or the context object `$$`), ResultSelector,
//! ResultPath (including `null` and nested paths) and OutputPath; Retry (with
//! `MaxDelaySeconds`; `JitterStrategy` is accepted and ignored, so runs are
//! deterministic) and Catch; Task `TimeoutSeconds` (`HeartbeatSeconds` is accepted and
//! ignored); the execution's `TimeoutSeconds`.
//! JSONPath: `$`, `$.a.b`, `$.a[0]`, `$['a']` and the context object `$$.…`.
//! Not supported (rejected by [`Executor::new`]): Map and Parallel states, intrinsic
//! functions, JSONata.
//!
//! ```no_run
//! # async fn demo(invoker: &dyn canary_sfn::TaskInvoker) -> Result<(), canary_sfn::DefinitionError> {
//! use canary_core::clock::ManualClock;
//! let definition = serde_json::json!({
//!     "StartAt": "Hello",
//!     "States": { "Hello": { "Type": "Task", "Resource": "hello", "End": true } }
//! });
//! let executor = canary_sfn::Executor::new(definition)?;
//! let clock = ManualClock::starting_at(0);
//! let run = executor
//!     .run(serde_json::json!({}), invoker, &clock, &mut canary_sfn::NoopObserver)
//!     .await;
//! println!("{:?} after {} transitions", run.status, run.transitions);
//! # Ok(()) }
//! ```

mod choice;
mod definition;
mod error;
mod executor;
mod history;
mod path;
mod result_path;
mod retry;
mod state_data;
mod template;

pub use error::{DefinitionError, TaskError};
pub use executor::{DEFAULT_MAX_HISTORY_EVENTS, Executor, TaskInvoker};
pub use history::{Event, EventKind, Execution, NoopObserver, Observer, StateType, Status};
pub use path::{Path, PathError, SetProblem};
