//! rollback: all traffic back to the stable version with one write, the canary's
//! objects removed (a failed first deployment removes everything it created, as nothing
//! served before it), the record written with the reason, and the lock released. The
//! state machine then fails with that reason as its cause.
//!
//! The last good version is never lost: traffic only goes back to the stable version if
//! its Deployment still exists. If it does not (a cleanup that failed half-way, after
//! the canary had passed its last check at 100%, had already removed it), sending
//! traffic there would be an outage, so the promotion is completed instead and the
//! outcome says so. The choice and the sentences are `canary_core::decide::rollback`.
//!
//! Idempotent: a retry after a timeout finds the route already on stable (no write) and
//! the objects already gone.
//!
//! The same function restores a service whose deployment ended without finishing
//! ([`recovery`]; `canary_lambda::recover` does the work), on two other inputs:
//! - `{"recover": {"deploy": <deploy.json>, "execution": "<execution ARN>"}}`: the
//!   state machine's `RecoverService` state, after render-template found the lock held
//!   by an execution that has ended (or a deployment left in progress without its lock);
//! - the EventBridge event "Step Functions Execution Status Change" of an execution that
//!   ended ABORTED or TIMED_OUT (the shared stack's rule): the service is that of the
//!   event's `detail.input` (the execution's deploy.json), recovered only if that
//!   execution left its lock or its deployment behind.

pub mod recovery;

use canary_core::decide::NothingCanServe;
use canary_core::decide::rollback::{
    RollbackPlan, completed_promotion_reason, nothing_applied_reason, rolled_back_reason,
};
use canary_core::execution::OutcomeStatus;
use canary_core::notify::Decision;
use canary_lambda::{HandlerError, HandlerResult, Services, Task, handle_task, notify};
use serde_json::Value;

/// Runs the task on its JSON input: a rollback (the execution document), or a recovery
/// (a `recover` request or an EventBridge event, see the crate docs).
pub async fn handle(services: &Services, input: Value) -> HandlerResult {
    if let Some(request) = recovery::Input::of(&input)? {
        return recovery::run(services, request).await;
    }
    handle_task(input, |task| run(services, task)).await
}

/// Runs the task. A rollback that fails with an error a retry cannot cure (not a
/// transient one, and not another execution owning the service) notifies "Canary
/// Failed"; the state machine's retries of it send the same id again.
pub async fn run(services: &Services, task: Task) -> Result<Task, HandlerError> {
    let before = task.clone();
    let result = roll_back(services, task).await;
    if let Err(e) = &result
        && !e.error_type.is_transient()
        && !e.error_type.is_hands_off()
    {
        let decision = Decision::Failed {
            error: e.error_type.as_str().to_owned(),
            cause: e.message.clone(),
        };
        notify(services, &before, decision).await;
    }
    result
}

async fn roll_back(services: &Services, task: Task) -> Result<Task, HandlerError> {
    // Nothing of the deployment reached the cluster (its namespace does not exist): end
    // it (record, lock released) without a request to the cluster.
    let service = &task.spec.microservice_name;
    if let Some(reason) = nothing_applied_reason(service, &task.deployment, task.error.as_ref()) {
        return task
            .finish(services, OutcomeStatus::RolledBack, reason)
            .await;
    }
    let cluster = task.cluster(services).await?;
    let d = &task.deployment;
    let service = &task.spec.microservice_name;
    let stable_alive = match d.stable_version {
        Some(stable) => task.has_deployment(&cluster, stable).await?,
        None => false,
    };
    let why = rolled_back_reason(service, d, task.error.as_ref());
    let (status, reason) = match RollbackPlan::choose(d, stable_alive) {
        RollbackPlan::BackToStable { stable } => {
            task.keep_one_version(services, &cluster, stable, d.canary_version)
                .await?;
            (OutcomeStatus::RolledBack, why)
        }
        RollbackPlan::CompletePromotion { stable } => {
            // The stable version is gone: the only version that can serve is the canary.
            if !task.has_deployment(&cluster, d.canary_version).await? {
                return Err(NothingCanServe {
                    stable: task.name_of(stable),
                    canary: task.name_of(d.canary_version),
                    namespace: task.spec.kubernetes_namespace.clone(),
                    service: service.clone(),
                }
                .into());
            }
            task.keep_one_version(services, &cluster, d.canary_version, stable)
                .await?;
            let reason = completed_promotion_reason(service, d, stable, &why);
            (OutcomeStatus::Promoted, reason)
        }
        RollbackPlan::RemoveFirst => {
            task.remove_first_deployment(services, &cluster).await?;
            (OutcomeStatus::RolledBack, why)
        }
    };
    task.finish(services, status, reason).await
}
