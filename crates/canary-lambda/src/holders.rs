//! Whether a lock's holder still runs, and how this process's own executions hold a
//! lock ([`Holders`], one of the [`Services`](crate::Services)): a terminal's `canary
//! run` takes a lease that it renews; a Step Functions execution takes none, and Step
//! Functions says whether it still runs ([`StepFunctionsLookup`], DescribeExecution).
//! The decision from these facts is `canary_core::decide::recovery::holder_state`.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sfn::types::ExecutionStatus;
use canary_core::decide::recovery::{self, ExecutionState, HolderState};
use canary_store::LockInfo;

use crate::Services;

/// Asks the process that runs executions whether one of them still runs.
#[async_trait]
pub trait ExecutionLookup: Send + Sync + Debug {
    /// What is known of `execution` now. Never fails: a lookup that cannot answer says
    /// [`ExecutionState::Unknown`] with why, which counts as running.
    async fn state(&self, execution: &str) -> ExecutionState;
}

/// Knows no execution (every answer is [`ExecutionState::Unknown`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookup;

#[async_trait]
impl ExecutionLookup for NoLookup {
    async fn state(&self, execution: &str) -> ExecutionState {
        ExecutionState::Unknown {
            why: format!("no way to ask whether `{execution}` still runs"),
        }
    }
}

/// How long after an execution stopped its last task may still run: StopExecution does
/// not stop a Lambda invocation in flight, which runs to its own timeout (60 s at most
/// for these functions). A recovery under it could be undone by its late write, so an
/// execution counts as ended only this long after its stop.
pub const STOP_GRACE_SECS: u64 = 60;

/// Step Functions' DescribeExecution, for holders named by an execution ARN (what the
/// state machine passes render-template as `$$.Execution.Id`).
#[derive(Debug, Clone)]
pub struct StepFunctionsLookup {
    client: aws_sdk_sfn::Client,
    grace_secs: u64,
}

impl StepFunctionsLookup {
    /// A lookup with `sdk`'s region and credentials; an execution counts as ended
    /// `grace_secs` after its stop date.
    pub fn new(sdk: &aws_config::SdkConfig, grace_secs: u64) -> Self {
        Self {
            client: aws_sdk_sfn::Client::new(sdk),
            grace_secs,
        }
    }
}

/// Whether `execution` is a Step Functions execution ARN
/// (`arn:<partition>:states:<region>:<account>:execution:<machine>:<name>`).
pub fn is_execution_arn(execution: &str) -> bool {
    let parts: Vec<&str> = execution.splitn(8, ':').collect();
    parts.len() == 8
        && parts[0] == "arn"
        && parts[2] == "states"
        && parts[5] == "execution"
        && !parts[6].is_empty()
        && !parts[7].is_empty()
}

#[async_trait]
impl ExecutionLookup for StepFunctionsLookup {
    async fn state(&self, execution: &str) -> ExecutionState {
        if !is_execution_arn(execution) {
            return ExecutionState::Unknown {
                why: format!("`{execution}` is not a Step Functions execution ARN"),
            };
        }
        match self
            .client
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
        {
            // A redrive pending will run again: it still owns what it holds.
            Ok(d) => match d.status() {
                ExecutionStatus::Running | ExecutionStatus::PendingRedrive => {
                    ExecutionState::Running {
                        why: format!("Step Functions says it is {}", d.status().as_str()),
                    }
                }
                other => {
                    let stopped_ago = d.stop_date().map(|t| now_secs().saturating_sub(t.secs()));
                    match stopped_ago {
                        Some(ago) if ago < i64::try_from(self.grace_secs).unwrap_or(i64::MAX) => {
                            ExecutionState::Running {
                                why: format!(
                                    "Step Functions says {} since {ago} s, and its last task may still be running for up to {} s",
                                    other.as_str(),
                                    self.grace_secs
                                ),
                            }
                        }
                        _ => ExecutionState::Ended {
                            how: format!("Step Functions says {}", other.as_str()),
                        },
                    }
                }
            },
            Err(e) => {
                let why = match e.code() {
                    Some("ExecutionDoesNotExist") => {
                        format!("Step Functions has no execution `{execution}`")
                    }
                    _ => format!(
                        "DescribeExecution of `{execution}` failed: {}",
                        DisplayErrorContext(&e)
                    ),
                };
                tracing::warn!(execution, %why, "cannot tell whether the lock's holder runs");
                ExecutionState::Unknown { why }
            }
        }
    }
}

/// Now, Unix seconds, by the system clock (what Step Functions' dates are in).
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// How this process's executions hold a lock, and how it tells whether another holder
/// still runs.
#[derive(Debug, Clone)]
pub struct Holders {
    /// The lease (seconds) this process's executions take: `Some` for a terminal's
    /// `canary run`, which renews it while it runs; `None` for Step Functions.
    pub lease_secs: Option<u64>,
    /// Whether an execution without a lease still runs.
    pub lookup: Arc<dyn ExecutionLookup>,
    /// How long after an execution stopped it counts as ended ([`STOP_GRACE_SECS`] for
    /// Lambda invocations that may still be in flight; 0 where a stopped execution's
    /// tasks stop with it, as in the local executor).
    pub stop_grace_secs: u64,
}

impl Holders {
    /// No lease, and no way to tell whether another holder runs: a lock held by
    /// anyone else stays held (`ServiceLocked`), as before recovery existed.
    pub fn none() -> Self {
        Self {
            lease_secs: None,
            lookup: Arc::new(NoLookup),
            stop_grace_secs: 0,
        }
    }

    /// No lease; other holders looked up in Step Functions (the Lambda functions), and
    /// counted as ended [`STOP_GRACE_SECS`] after they stopped.
    pub fn step_functions(sdk: &aws_config::SdkConfig) -> Self {
        Self::step_functions_with_grace(sdk, STOP_GRACE_SECS)
    }

    /// The same with another grace (tests whose tasks take milliseconds).
    pub fn step_functions_with_grace(sdk: &aws_config::SdkConfig, grace_secs: u64) -> Self {
        Self {
            lease_secs: None,
            lookup: Arc::new(StepFunctionsLookup::new(sdk, grace_secs)),
            stop_grace_secs: grace_secs,
        }
    }

    /// The same, with this process's executions taking a lease of `secs`.
    pub fn with_lease(mut self, secs: u64) -> Self {
        self.lease_secs = Some(secs);
        self
    }

    /// The same, with other holders looked up by `lookup`.
    pub fn with_lookup(mut self, lookup: Arc<dyn ExecutionLookup>) -> Self {
        self.lookup = lookup;
        self
    }
}

/// Whether `lock`'s holder still runs: its lease, or else what the lookup says.
pub async fn holder_state(services: &Services, lock: &LockInfo) -> HolderState {
    let now = services.clock.now_secs();
    let looked_up = if recovery::needs_lookup(lock.expires_at) {
        Some(services.holders.lookup.state(&lock.execution).await)
    } else {
        None
    };
    recovery::holder_state(lock.expires_at, now, looked_up.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_states_execution_arn_is_looked_up() {
        assert!(is_execution_arn(
            "arn:aws:states:us-east-1:123456789012:execution:canary-deployment:web-8"
        ));
        assert!(is_execution_arn(
            "arn:aws-cn:states:cn-north-1:123456789012:execution:m:n"
        ));
        for not in [
            "web-local-1767225600",
            "demo-3",
            "arn:aws:states:us-east-1:123456789012:stateMachine:canary-deployment",
            "arn:aws:lambda:us-east-1:123456789012:execution:m:n",
            "arn:aws:states:us-east-1:123456789012:execution:m:",
        ] {
            assert!(!is_execution_arn(not), "{not}");
        }
    }

    #[tokio::test]
    async fn a_name_that_is_no_arn_is_unknown_without_a_call() {
        // An unreachable endpoint: a call would fail, not answer Unknown this way.
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let state = StepFunctionsLookup::new(&sdk, 60)
            .state("web-local-1")
            .await;
        assert_eq!(
            state,
            ExecutionState::Unknown {
                why: "`web-local-1` is not a Step Functions execution ARN".into()
            }
        );
    }
}
