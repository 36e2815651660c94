//! The rollback function's recovery inputs: the state machine's `RecoverService`
//! request and the EventBridge event of an execution that ended ABORTED or TIMED_OUT.
//! Both name a service by its deploy.json; [`run`] hands it to
//! `canary_lambda::recover` and answers what was done.

use canary_core::render;
use canary_core::{DeploySpec, ErrorName};
use canary_lambda::recover::{Ended, RecoverRequest};
use canary_lambda::{HandlerError, HandlerResult, Services};
use canary_store::ServiceRef;
use serde_json::{Value, json};

/// The EventBridge `detail-type` of Step Functions' execution events.
pub const EXECUTION_STATUS_CHANGE: &str = "Step Functions Execution Status Change";
/// The statuses the shared stack's rule sends (an execution that ended without its
/// Fail or Succeed state, so without releasing its lock).
pub const RECOVERED_STATUSES: [&str; 2] = ["ABORTED", "TIMED_OUT"];

/// A recovery input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The state machine's `RecoverService`: the next deployment (`execution`) found the
    /// service left behind by an ended execution.
    Request {
        /// deploy.json of the next deployment.
        deploy: Value,
        /// The next deployment's execution, which recovers (and holds the lock while it
        /// does).
        execution: String,
    },
    /// An execution ended ABORTED or TIMED_OUT.
    Event {
        /// Its ARN.
        execution: String,
        /// Its status.
        status: String,
        /// When it stopped, Unix milliseconds (`detail.stopDate`), if the event says.
        stopped_at_millis: Option<i64>,
        /// Its input (deploy.json).
        deploy: Value,
    },
}

impl Input {
    /// The recovery input in `input`, if it is one (`None`: an execution document, for
    /// a rollback). A malformed one is `InvalidInput` naming the field.
    pub fn of(input: &Value) -> Result<Option<Self>, HandlerError> {
        if let Some(request) = input.get("recover") {
            let execution = match request.get("execution") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
                other => {
                    return Err(HandlerError::invalid(format!(
                        "`recover.execution` must be the execution's id, got {}",
                        other.unwrap_or(&Value::Null)
                    )));
                }
            };
            let deploy = request.get("deploy").cloned().ok_or_else(|| {
                HandlerError::invalid("`recover.deploy` (the execution's deploy.json) is missing")
            })?;
            return Ok(Some(Self::Request { deploy, execution }));
        }
        let Some(detail_type) = input.get("detail-type") else {
            return Ok(None);
        };
        if detail_type != EXECUTION_STATUS_CHANGE {
            return Err(HandlerError::invalid(format!(
                "an EventBridge event with detail-type {detail_type}: only \"{EXECUTION_STATUS_CHANGE}\" is handled here"
            )));
        }
        let detail = &input["detail"];
        let field = |name: &str| -> Result<String, HandlerError> {
            match detail.get(name) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                other => Err(HandlerError::invalid(format!(
                    "the event's `detail.{name}` must be a non-empty string, got {}",
                    other.unwrap_or(&Value::Null)
                ))),
            }
        };
        let execution = field("executionArn")?;
        let status = field("status")?;
        let text = field("input").map_err(|_| {
            HandlerError::invalid(format!(
                "the event of execution `{execution}` carries no `detail.input` (Step Functions leaves it out of events above 256 KB): run `canary recover` for its service"
            ))
        })?;
        let deploy: Value = serde_json::from_str(&text).map_err(|e| {
            HandlerError::invalid(format!(
                "the event's `detail.input` of execution `{execution}` is not JSON: {e}"
            ))
        })?;
        Ok(Some(Self::Event {
            execution,
            status,
            stopped_at_millis: detail.get("stopDate").and_then(Value::as_i64),
            deploy,
        }))
    }
}

/// Recovers the service `input` names; answers `{"service", "recovery", ...}` (what
/// `canary_lambda::Recovery` says) and a one-line `summary`.
pub async fn run(services: &Services, input: Input) -> HandlerResult {
    let (deploy, by, ended) = match input {
        Input::Request { deploy, execution } => (deploy, execution, None),
        Input::Event {
            execution,
            status,
            stopped_at_millis,
            deploy,
        } => {
            if !RECOVERED_STATUSES.contains(&status.as_str()) {
                return Ok(json!({
                    "recovery": "nothing_to_recover",
                    "why": format!("execution `{execution}` ended {status}: only ABORTED and TIMED_OUT executions are recovered at once (the others released their lock, or kept it on purpose)"),
                }));
            }
            // StopExecution does not stop a Lambda invocation in flight: its late write
            // could undo the recovery. Failing here makes Lambda deliver the event again
            // (asynchronous invocations are retried after a minute, then two).
            let grace_ms = i64::try_from(services.holders.stop_grace_secs.saturating_mul(1000))
                .unwrap_or(i64::MAX);
            if let Some(stopped) = stopped_at_millis {
                let ago = services.clock.now_millis().saturating_sub(stopped);
                if grace_ms > 0 && ago < grace_ms {
                    return Err(HandlerError::new(
                        ErrorName::ServiceLocked,
                        format!(
                            "execution `{execution}` ended {status} {} s ago, and its last task may still be running for up to {} s: the recovery waits for it (this event is delivered again)",
                            ago / 1000,
                            services.holders.stop_grace_secs
                        ),
                    ));
                }
            }
            (
                deploy,
                format!("recovery of {execution}"),
                Some(Ended {
                    execution,
                    how: format!("Step Functions says {status}"),
                }),
            )
        }
    };
    let spec = DeploySpec::parse(&deploy, None)?;
    let svc = ServiceRef::from_spec(&spec);
    let request = RecoverRequest {
        svc: svc.clone(),
        by,
        ended,
        force: false,
        // A template that no longer renders adds nothing; the stored manifest still
        // names what the orphan applied.
        current_kinds: render::render_both(&spec, 0).map_or_else(|_| Vec::new(), |r| r.kinds()),
    };
    let recovery = canary_lambda::recover(services, &request).await?;
    let summary = recovery.describe(&svc);
    tracing::info!(%summary, "recovery");
    let mut out = serde_json::to_value(&recovery)
        .map_err(|e| HandlerError::caused_by(ErrorName::Internal, e))?;
    if let Some(map) = out.as_object_mut() {
        map.insert("service".into(), Value::from(svc.to_string()));
        map.insert("summary".into(), Value::from(summary));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_document_is_not_a_recovery() {
        assert_eq!(Input::of(&json!({"deployment": {}})).ok(), Some(None));
    }

    #[test]
    fn the_event_eventbridge_sends_names_the_execution_its_status_and_deploy_json() {
        let event = json!({
            "version": "0",
            "id": "315c1398-40ff-a850-213b-158f73e60175",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": "123456789012",
            "time": "2026-01-01T00:10:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:states:us-east-1:123456789012:execution:m:web-8"],
            "detail": {
                "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:web-8",
                "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:m",
                "name": "web-8",
                "status": "ABORTED",
                "startDate": 1767225600000_i64,
                "stopDate": 1767226200000_i64,
                "input": "{\"cluster_name\": \"c\"}",
                "output": null
            }
        });
        assert_eq!(
            Input::of(&event).ok().flatten(),
            Some(Input::Event {
                execution: "arn:aws:states:us-east-1:123456789012:execution:m:web-8".into(),
                status: "ABORTED".into(),
                stopped_at_millis: Some(1_767_226_200_000),
                deploy: json!({"cluster_name": "c"}),
            })
        );
    }

    #[test]
    fn a_malformed_recovery_input_is_invalid_input_naming_the_field() {
        let cases = [
            (json!({"recover": {"deploy": {}}}), "recover.execution"),
            (json!({"recover": {"execution": "x"}}), "recover.deploy"),
            (json!({"detail-type": "Other", "detail": {}}), "detail-type"),
            (
                json!({"detail-type": EXECUTION_STATUS_CHANGE, "detail": {"status": "ABORTED"}}),
                "detail.executionArn",
            ),
            (
                json!({"detail-type": EXECUTION_STATUS_CHANGE, "detail": {"executionArn": "a", "status": "ABORTED"}}),
                "detail.input",
            ),
            (
                json!({"detail-type": EXECUTION_STATUS_CHANGE, "detail": {"executionArn": "a", "status": "ABORTED", "input": "{"}}),
                "not JSON",
            ),
        ];
        for (input, field) in cases {
            let e = Input::of(&input).unwrap_err();
            assert_eq!(e.error_type, ErrorName::InvalidInput);
            assert!(e.message.contains(field), "{field}: {e}");
        }
    }
}
