//! ResultPath: where a state puts its result in its input (replace it, discard the
//! result, or write it at a path).

use serde_json::Value;

use crate::path::{Path, PathError};

/// Why a ResultPath was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResultPathError {
    /// Not a supported path.
    #[error("ResultPath `{text}`: {source}")]
    Path {
        /// The path as written.
        text: String,
        /// Why it is not supported.
        #[source]
        source: PathError,
    },
    /// A `$$` path.
    #[error("ResultPath `{text}` cannot write the context object")]
    Context {
        /// The path as written.
        text: String,
    },
    /// Neither a string nor null.
    #[error("ResultPath must be a path or null, got {got}")]
    NotAPath {
        /// The value, as JSON.
        got: String,
    },
}

/// ResultPath.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ResultPath {
    /// Absent or `$`: the result replaces the input.
    Replace,
    /// `null`: the result is discarded and the input passes through.
    Discard,
    /// A path inside the input where the result goes.
    At(Path),
}

impl ResultPath {
    pub(crate) fn parse(value: Option<&Value>) -> Result<Self, ResultPathError> {
        match value {
            None => Ok(ResultPath::Replace),
            Some(Value::Null) => Ok(ResultPath::Discard),
            Some(Value::String(text)) => {
                let path = Path::parse(text).map_err(|source| ResultPathError::Path {
                    text: text.clone(),
                    source,
                })?;
                if path.is_context() {
                    return Err(ResultPathError::Context { text: text.clone() });
                }
                Ok(if path.is_root() {
                    ResultPath::Replace
                } else {
                    ResultPath::At(path)
                })
            }
            Some(other) => Err(ResultPathError::NotAPath {
                got: other.to_string(),
            }),
        }
    }

    /// Combines a state's raw input with its result.
    pub(crate) fn apply(&self, input: Value, result: Value) -> Result<Value, PathError> {
        match self {
            ResultPath::Replace => Ok(result),
            ResultPath::Discard => Ok(input),
            ResultPath::At(path) => path.set(input, result),
        }
    }
}
