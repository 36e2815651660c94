//! The executor's error type (a definition that cannot run) and the error a task
//! returns (an `Error` name and a `Cause`, as Step Functions reports them).

use thiserror::Error;

/// Why a state machine definition was rejected before it ran.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DefinitionError {
    /// The text is not JSON.
    #[error("the definition is not valid JSON: {0}")]
    NotJson(String),
    /// A field is missing, has the wrong type or an invalid value.
    #[error("{at}: {message}")]
    Invalid {
        /// Where: `StartAt`, a state, or a state's Retry or Catch clause.
        at: String,
        /// What is wrong, quoting the value.
        message: String,
    },
    /// `StartAt` names a state that does not exist.
    #[error("StartAt names `{0}`, which is not a state")]
    UnknownStartAt(String),
    /// A `Next`, `Default`, Choice rule or Catch names a state that does not exist.
    #[error("state `{state}`: {field} names `{target}`, which is not a state")]
    UnknownNext {
        /// The state holding the transition.
        state: String,
        /// `Next`, `Default`, `Choices[2].Next`, `Catch[0].Next`.
        field: String,
        /// The missing state.
        target: String,
    },
    /// A `Type` that the States Language does not define.
    #[error("state `{state}`: unknown state type `{kind}`")]
    UnknownStateType {
        /// The state.
        state: String,
        /// Its `Type`.
        kind: String,
    },
    /// Part of the States Language that this executor does not implement.
    #[error("state `{state}`: {what} is not supported by this executor")]
    Unsupported {
        /// The state (or `(top level)`).
        state: String,
        /// What: `Map states`, `the intrinsic function States.Format(...)`, ...
        what: String,
    },
    /// A field that this state type does not have (usually a typo).
    #[error("state `{state}`: unknown field `{field}` for a {kind} state")]
    UnknownField {
        /// The state (or `(top level)`).
        state: String,
        /// The field.
        field: String,
        /// The state's `Type`.
        kind: String,
    },
    /// A path outside the supported JSONPath subset.
    #[error("state `{state}`: {field} `{path}` is not a supported path: {reason}")]
    InvalidPath {
        /// The state.
        state: String,
        /// `InputPath`, `Parameters.foo.$`, ...
        field: String,
        /// The path as written.
        path: String,
        /// Why it was rejected.
        #[source]
        reason: crate::path::PathError,
    },
    /// A state that no transition reaches (Step Functions rejects these too).
    #[error("state `{0}` cannot be reached from StartAt")]
    Unreachable(String),
}

/// A task's failure: the `Error` name that Retry and Catch match on, and the `Cause`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    /// The error name (a Lambda function's `errorType`, or `States.Timeout`, ...).
    pub error: String,
    /// A human-readable explanation.
    pub cause: String,
}

impl TaskError {
    /// A task error with this name and cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}
