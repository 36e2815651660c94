//! The handlers' typed events. Every task after render-template takes and returns the
//! execution document as a [`Task`]: deploy.json (validated again, which is cheap and
//! keeps every handler honest), the `deployment` state, and the error a Catch clause
//! added, if any. render-template takes a [`RenderInput`] and returns a [`Task`].
//! [`handle_task`] and [`handle_render`] turn a handler over these types into the JSON
//! function the Lambda runtime and the local executor call.

use std::future::Future;

use canary_core::execution::DEPLOYMENT_KEY;
use canary_core::provider::Target;
use canary_core::{CaughtError, DeploySpec, Deployment, ExecutionDocument, labels};
use canary_store::ServiceRef;
use serde_json::{Map, Value};

use crate::{HandlerError, HandlerResult};

/// A task's input and output: the execution document, parsed.
#[derive(Debug, Clone)]
pub struct Task {
    /// deploy.json, validated.
    pub spec: DeploySpec,
    /// deploy.json as given (returned unchanged).
    pub raw: Map<String, Value>,
    /// The deployment state.
    pub deployment: Deployment,
    /// `{Error, Cause}` from a Catch clause, when the state machine caught an error.
    pub error: Option<CaughtError>,
}

impl Task {
    /// Parses a task input that must already hold a `deployment` (every task after
    /// render-template).
    pub fn from_value(value: Value) -> Result<Self, HandlerError> {
        let error = CaughtError::of_document(&value);
        let doc = ExecutionDocument::from_value(value)
            .map_err(|e| HandlerError::caused_by(canary_core::ErrorName::InvalidInput, e))?;
        let Some(deployment) = doc.deployment else {
            return Err(HandlerError::invalid(format!(
                "the execution document has no `{DEPLOYMENT_KEY}`: render-template must run first"
            )));
        };
        let spec = DeploySpec::parse(&Value::Object(doc.spec.clone()), None)?;
        Ok(Self {
            spec,
            raw: doc.spec,
            deployment,
            error,
        })
    }

    /// A task for a deployment that render-template has just started.
    pub fn started(spec: DeploySpec, raw: Map<String, Value>, deployment: Deployment) -> Self {
        Self {
            spec,
            raw,
            deployment,
            error: None,
        }
    }

    /// The document for the next state.
    pub fn into_value(self) -> HandlerResult {
        ExecutionDocument {
            spec: self.raw,
            deployment: Some(self.deployment),
        }
        .to_value()
        .map_err(|e| HandlerError::caused_by(canary_core::ErrorName::Internal, e))
    }

    /// The service, as the record store names it.
    pub fn service_ref(&self) -> ServiceRef {
        ServiceRef::from_spec(&self.spec)
    }

    /// `<service>-<version>`.
    pub fn name_of(&self, version: u32) -> String {
        labels::versioned_name(&self.spec.microservice_name, version)
    }

    /// The route's targets with the canary at `weight` (the stable version takes the
    /// rest; a first deployment has only the canary).
    pub fn backends(&self, weight: u8) -> Vec<Target> {
        let d = &self.deployment;
        canary_core::provider::split_targets(
            &self.spec.microservice_name,
            d.stable_version,
            d.canary_version,
            weight,
        )
    }
}

/// render-template's input: deploy.json and the execution's id (the state machine's
/// Parameters), or deploy.json alone for a person calling the function by hand (the
/// execution is then `manual-<time>`, chosen by the caller of [`RenderInput::from_value`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RenderInput {
    /// deploy.json as given.
    pub deploy: Value,
    /// The execution that will own the deployment.
    pub execution: String,
}

impl RenderInput {
    /// Parses `{"deploy": <deploy.json>, "execution": "<id>"}`.
    pub fn from_value(input: Value) -> Result<Self, HandlerError> {
        match input {
            Value::Object(mut map) if map.contains_key("deploy") => {
                let deploy = map.remove("deploy").unwrap_or(Value::Null);
                let execution = match map.remove("execution") {
                    Some(Value::String(s)) if !s.is_empty() => s,
                    other => {
                        return Err(HandlerError::invalid(format!(
                            "`execution` must be the execution's id, got {}",
                            other.unwrap_or(Value::Null)
                        )));
                    }
                };
                Ok(Self { deploy, execution })
            }
            Value::Object(_) => Err(HandlerError::invalid(
                "the input must be {\"deploy\": <deploy.json>, \"execution\": \"<id>\"} (the state machine passes it so)",
            )),
            other => Err(HandlerError::invalid(format!(
                "the input must be a JSON object, got {other}"
            ))),
        }
    }
}

/// Runs a handler over typed events: parses the [`Task`], runs `handler`, and returns
/// the document it produced.
pub async fn handle_task<F, Fut>(input: Value, handler: F) -> HandlerResult
where
    F: FnOnce(Task) -> Fut,
    Fut: Future<Output = Result<Task, HandlerError>>,
{
    let task = Task::from_value(input)?;
    handler(task).await?.into_value()
}

/// Runs render-template's handler over typed events: parses the [`RenderInput`], runs
/// `handler`, and returns the document it produced.
pub async fn handle_render<F, Fut>(input: Value, handler: F) -> HandlerResult
where
    F: FnOnce(RenderInput) -> Fut,
    Fut: Future<Output = Result<Task, HandlerError>>,
{
    let input = RenderInput::from_value(input)?;
    handler(input).await?.into_value()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_without_a_deployment_is_invalid_input_that_says_render_comes_first() {
        let e = Task::from_value(json!({"cluster_name": "c"})).unwrap_err();
        assert_eq!(e.error_type, canary_core::ErrorName::InvalidInput);
        assert!(e.message.contains("render-template must run first"), "{e}");
    }

    #[test]
    fn a_document_that_is_not_an_object_is_invalid_input_naming_what_it_is() {
        let e = Task::from_value(json!([1])).unwrap_err();
        assert_eq!(e.error_type, canary_core::ErrorName::InvalidInput);
        assert!(e.message.contains("an array"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn render_input_needs_an_execution_id() {
        let e = RenderInput::from_value(json!({"deploy": {}, "execution": ""})).unwrap_err();
        assert!(e.message.contains("`execution`"), "{e}");
        let ok = RenderInput::from_value(json!({"deploy": {"a": 1}, "execution": "x"})).unwrap();
        assert_eq!(ok.execution, "x");
    }
}
