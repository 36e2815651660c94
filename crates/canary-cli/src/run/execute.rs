//! `canary run`'s middle step: the state machine run by the local executor with its
//! progress on the terminal, and Ctrl-C turned into a clean rollback (see the module
//! above for how), then how the run ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use canary_core::{Deployment, errors};
use canary_lambda::{HandlerError, Services};
use canary_sfn::{Event, EventKind, Execution, Executor, Observer, Status, TaskError, TaskInvoker};
use canary_store::{Abort, ServiceRef};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

use super::{ABORTED, RunOutcome};
use crate::local::{Function, LocalInvoker, execution_id};
use crate::progress::{Printer, ProgressDisplay, SharedTracker};

/// How the run ended, before the summary's last facts are added.
pub(super) struct Ended {
    pub outcome: RunOutcome,
    pub error: Option<String>,
    pub reason: String,
    pub deployment: Option<Deployment>,
    pub transitions: usize,
}

/// What the Ctrl-C handling needs: who interrupts, whether they have, and the way to
/// tell the driver that the executor is waiting.
struct Interrupt {
    by: String,
    aborted: Arc<AtomicBool>,
    waiting: Arc<Notify>,
    sigint: mpsc::UnboundedReceiver<()>,
}

/// Runs the execution `name` of `doc` to its end, or, on Ctrl-C, to a clean rollback.
pub(super) async fn execute(
    executor: &Executor,
    name: &str,
    doc: Value,
    services: &Services,
    svc: &ServiceRef,
    tracker: &SharedTracker,
    display: ProgressDisplay,
) -> Ended {
    let printer = display.printer();
    let (sigint_tx, sigint) = mpsc::unbounded_channel::<()>();
    let signals = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if sigint_tx.send(()).is_err() {
                break;
            }
        }
    });
    let mut interrupt = Interrupt {
        by: interrupter(),
        aborted: Arc::new(AtomicBool::new(false)),
        waiting: Arc::new(Notify::new()),
        sigint,
    };
    let invoker = AbortableInvoker {
        inner: LocalInvoker {
            services: services.clone(),
        },
        aborted: interrupt.aborted.clone(),
        by: interrupt.by.clone(),
    };
    let mut observer = RunObserver {
        display,
        aborted: interrupt.aborted.clone(),
        waiting: interrupt.waiting.clone(),
    };
    let renewer = renew_lease(services, svc, &execution_id(name), &printer);
    let keys = super::keys::listen(services, svc, &interrupt.by, &printer);
    let finished = {
        let execution =
            executor.run_named(name, doc, &invoker, services.clock.as_ref(), &mut observer);
        drive(execution, &mut interrupt, services, svc, tracker, &printer).await
    };
    let ended = match finished {
        Some(run) => ended_by_executor(&run, interrupt.aborted.load(Ordering::SeqCst)),
        None => ended_by_interrupt(services, tracker, &printer, &mut interrupt).await,
    };
    if let Some(renewer) = renewer {
        renewer.abort();
    }
    signals.abort();
    if let Some(keys) = keys {
        keys.abort();
    }
    observer.display.finish();
    ended
}

/// Polls the execution and Ctrl-C together. The first Ctrl-C marks the run aborted
/// and records the abort request; the execution is dropped (`None`) as soon as it is
/// safe to stop, else it runs on to its Rollback and its end (`Some`).
async fn drive(
    execution: impl std::future::Future<Output = Execution>,
    interrupt: &mut Interrupt,
    services: &Services,
    svc: &ServiceRef,
    tracker: &SharedTracker,
    printer: &Printer,
) -> Option<Execution> {
    let mut execution = Box::pin(execution);
    let mut interrupts = 0u32;
    loop {
        tokio::select! {
            run = &mut execution => return Some(run),
            Some(()) = interrupt.sigint.recv() => {
                interrupts += 1;
                if interrupts == 1 {
                    interrupt.aborted.store(true, Ordering::SeqCst);
                    printer.println(&format!("Ctrl-C: rolling back ({}). Traffic goes back to the stable version; the lock will be released.", interrupt.by));
                    if tracker.lock().snapshot().rollback_document().is_some() {
                        request_abort(services, svc, &interrupt.by, printer).await;
                    }
                    if safe_to_stop(tracker) {
                        return None;
                    }
                } else {
                    printer.println("Still rolling back: finishing the rollback so that no traffic is left on the canary and the lock is released. Please wait.");
                }
            }
            () = interrupt.waiting.notified(), if interrupt.aborted.load(Ordering::SeqCst) => {
                if safe_to_stop(tracker) {
                    return None;
                }
            }
        }
    }
}

/// Renews the run's lease on the lock every third of it, from the moment render-template
/// takes the lock until the run ends (the caller aborts the task). A renewal that finds
/// the lock not (or no longer) held by this run writes nothing. `None` without a lease.
fn renew_lease(
    services: &Services,
    svc: &ServiceRef,
    execution: &str,
    printer: &Printer,
) -> Option<tokio::task::JoinHandle<()>> {
    let lease = services.holders.lease_secs?;
    let (store, clock, svc) = (services.store.clone(), services.clock.clone(), svc.clone());
    let (execution, printer) = (execution.to_owned(), printer.clone());
    let every = Duration::from_secs((lease / 3).max(1));
    Some(tokio::spawn(async move {
        let mut warned = false;
        loop {
            tokio::time::sleep(every).await;
            match store
                .renew_lock(&svc, &execution, clock.now_secs(), lease)
                .await
            {
                Ok(_) => warned = false,
                Err(e) if !warned => {
                    warned = true;
                    printer.println(&format!(
                        "could not renew the lock's lease ({e}); retrying in {} s. If it runs out, another deployment may recover the service.",
                        every.as_secs()
                    ));
                }
                Err(_) => {}
            }
        }
    }))
}

/// Writes the abort request to the store (as `canary abort` does), so that every later
/// task sees it; a store that does not answer does not stop the rollback.
async fn request_abort(services: &Services, svc: &ServiceRef, by: &str, printer: &Printer) {
    let abort = Abort {
        by: by.to_owned(),
        reason: "interrupted from the terminal".into(),
        at: services.clock.now_secs(),
    };
    match tokio::time::timeout(
        Duration::from_secs(10),
        services.store.request_abort(svc, &abort),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => printer.println(&format!(
            "could not record the abort request ({e}); rolling back anyway"
        )),
        Err(_) => printer.println("recording the abort request timed out; rolling back anyway"),
    }
}

/// How a run that the executor finished ended.
fn ended_by_executor(run: &Execution, interrupted: bool) -> Ended {
    let deployment: Option<Deployment> = run
        .output
        .get("deployment")
        .and_then(|d| serde_json::from_value(d.clone()).ok());
    match &run.status {
        Status::Succeeded => {
            let mut reason = outcome_reason(&deployment);
            if interrupted {
                reason =
                    format!("Ctrl-C came while the promotion was already being finished: {reason}");
            }
            Ended {
                outcome: RunOutcome::Promoted,
                error: None,
                reason,
                deployment,
                transitions: run.transitions,
            }
        }
        Status::Failed { error, cause } => {
            let outcome = match error.as_str() {
                "RolledBack" if interrupted => RunOutcome::Interrupted,
                "RolledBack" => RunOutcome::RolledBack,
                // Refused before render-template ran: nothing was touched.
                ABORTED if interrupted => RunOutcome::Interrupted,
                _ => RunOutcome::Failed,
            };
            let reason = if cause.is_empty() {
                outcome_reason(&deployment)
            } else {
                canary_core::errors::readable_cause(cause)
            };
            Ended {
                outcome,
                error: Some(error.clone()),
                reason,
                deployment,
                transitions: run.transitions,
            }
        }
    }
}

/// How a run whose executor was stopped at a safe place ended: nothing to undo, or the
/// rollback handler called directly.
async fn ended_by_interrupt(
    services: &Services,
    tracker: &SharedTracker,
    printer: &Printer,
    interrupt: &mut Interrupt,
) -> Ended {
    let snapshot = tracker.lock().snapshot().clone();
    let transitions = tracker.lock().transitions();
    let Some(doc) = snapshot.rollback_document() else {
        return Ended {
            outcome: RunOutcome::Interrupted,
            error: Some(ABORTED.into()),
            reason: "interrupted before the deployment began: nothing was applied".to_owned(),
            deployment: None,
            transitions,
        };
    };
    match direct_rollback(services, doc, &interrupt.by, printer, &mut interrupt.sigint).await {
        Ok(out) => {
            let deployment: Option<Deployment> = out
                .get("deployment")
                .and_then(|d| serde_json::from_value(d.clone()).ok());
            Ended {
                outcome: RunOutcome::Interrupted,
                error: Some("RolledBack".into()),
                reason: outcome_reason(&deployment),
                deployment,
                transitions: transitions + 1,
            }
        }
        Err(e) => Ended {
            outcome: RunOutcome::Failed,
            error: Some("RollbackFailed".into()),
            reason: format!(
                "the rollback did not finish: {}: {}. Traffic may still be split and the lock is held; \
                 run `canary run` again after fixing the cause, or roll back by hand",
                e.error_type, e.message
            ),
            deployment: snapshot.deployment,
            transitions,
        },
    }
}

/// Refuses every task but Rollback once the run is aborted; otherwise the handlers.
#[derive(Debug)]
struct AbortableInvoker {
    inner: LocalInvoker,
    aborted: Arc<AtomicBool>,
    by: String,
}

#[async_trait]
impl TaskInvoker for AbortableInvoker {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        if self.aborted.load(Ordering::SeqCst)
            && Function::from_resource(resource) != Some(Function::Rollback)
        {
            return Err(TaskError::new(
                ABORTED,
                format!("interrupted by {}", self.by),
            ));
        }
        self.inner.invoke(resource, input).await
    }
}

/// The observer of a run: the progress display, plus a nudge to the driver when the
/// executor starts waiting after an abort (a safe place to stop it).
struct RunObserver {
    display: ProgressDisplay,
    aborted: Arc<AtomicBool>,
    waiting: Arc<Notify>,
}

impl Observer for RunObserver {
    fn on_event(&mut self, event: &Event) {
        self.display.on_event(event);
        if matches!(event.kind, EventKind::WaitStarted { .. })
            && self.aborted.load(Ordering::SeqCst)
        {
            self.waiting.notify_one();
        }
    }
}

/// `<user>@<host> (Ctrl-C)`.
pub fn interrupter() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host} (Ctrl-C)")
}

/// Whether the executor can be dropped now: it is waiting (no handler running), the
/// deployment is not already in its rollback, and it has not ended.
fn safe_to_stop(tracker: &SharedTracker) -> bool {
    let t = tracker.lock();
    let s = t.snapshot();
    !s.finished && !s.in_task && s.waiting_until.is_some() && s.state != "Rollback"
}

/// Calls the rollback handler with `doc` plus the abort as `error`, retried as the
/// definition's Rollback state is (6 retries, 5 s doubling, at most 60 s), except when
/// another deployment owns the service.
async fn direct_rollback(
    services: &Services,
    mut doc: Value,
    by: &str,
    printer: &Printer,
    sigint: &mut mpsc::UnboundedReceiver<()>,
) -> Result<Value, HandlerError> {
    if let Some(map) = doc.as_object_mut() {
        map.insert(
            "error".into(),
            json!({ "Error": ABORTED, "Cause": format!("interrupted by {by}") }),
        );
    }
    let mut delay = Duration::from_secs(5);
    let mut attempt = 0;
    loop {
        attempt += 1;
        printer.println(&format!("Rollback (attempt {attempt})..."));
        let call = Function::Rollback.call(services, doc.clone());
        tokio::pin!(call);
        let result = loop {
            tokio::select! {
                r = &mut call => break r,
                Some(()) = sigint.recv() => printer.println("Still rolling back: finishing the rollback so that no traffic is left on the canary and the lock is released. Please wait."),
            }
        };
        match result {
            Ok(out) => return Ok(out),
            Err(e)
                if e.error_type == errors::SERVICE_LOCKED || e.error_type == errors::LOCK_LOST =>
            {
                return Err(e);
            }
            Err(e) if attempt > 6 => return Err(e),
            Err(e) => {
                printer.println(&format!(
                    "rollback failed ({}: {}); retrying in {} s",
                    e.error_type,
                    e.message,
                    delay.as_secs()
                ));
                let sleep = tokio::time::sleep(delay);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        () = &mut sleep => break,
                        Some(()) = sigint.recv() => printer.println("Still rolling back: please wait."),
                    }
                }
                delay = (delay * 2).min(Duration::from_secs(60));
            }
        }
    }
}

fn outcome_reason(deployment: &Option<Deployment>) -> String {
    deployment
        .as_ref()
        .and_then(|d| d.outcome.as_ref())
        .map(|o| o.reason.clone())
        .unwrap_or_default()
}
