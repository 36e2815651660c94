//! Gates through the local executor, the real handlers and the simulated cluster on the
//! virtual clock: approved, timed out (rolled back), a failure while paused (rolled back
//! at once), an approval sent twice, approve and promote when nothing waits, and
//! `promote --full` (straight to 100%, its bake still checked).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use canary_cli::harness::DemoEnv;
use canary_cli::harness::approver::Approver;
use canary_cli::harness::fixtures::{NAMESPACE, SERVICE, deploy_document, image};
use canary_cli::records::gates::{approve, promote};
use canary_core::execution::{ActionKind, DEPLOYMENT_KEY, OutcomeStatus};
use canary_core::{Deployment, Next};
use canary_sfn::{NoopObserver, Status, TaskError, TaskInvoker};
use serde_json::{Value, json};

fn gated(version: u32, gates: Value) -> Value {
    let mut doc = deploy_document(&image(version));
    doc["gates"] = gates;
    doc
}

fn deployment_of(v: &Value) -> Option<Deployment> {
    serde_json::from_value(v.get(DEPLOYMENT_KEY)?.clone()).ok()
}

async fn env_with_v1() -> DemoEnv {
    let env = DemoEnv::start().await.unwrap();
    env.deploy_versions(&[1]).await.unwrap();
    env
}

fn outcome(run: &canary_sfn::Execution) -> (OutcomeStatus, String) {
    let o = deployment_of(&run.output)
        .and_then(|d| d.outcome)
        .unwrap_or_else(|| panic!("no outcome: {:?}", run.status));
    (o.status, o.reason)
}

/// Calls `at_gate` (once) when a task returns with the deployment waiting at a gate.
struct AtGate<'a, F: Fn(&DemoEnv) + Send + Sync> {
    inner: &'a dyn TaskInvoker,
    env: &'a DemoEnv,
    at_gate: F,
    done: std::sync::atomic::AtomicBool,
    /// (state resource, weight, next) after each task.
    trail: std::sync::Mutex<Vec<(String, u8, Next)>>,
}

impl<'a, F: Fn(&DemoEnv) + Send + Sync> AtGate<'a, F> {
    fn new(inner: &'a dyn TaskInvoker, env: &'a DemoEnv, at_gate: F) -> Self {
        Self {
            inner,
            env,
            at_gate,
            done: Default::default(),
            trail: Default::default(),
        }
    }
}

/// Runs `work` to its end from a task's synchronous hook, the way a second terminal
/// would act while the handlers run on this runtime.
fn blocking(work: impl std::future::Future<Output = ()>) {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(work));
}

/// The weights the route gave version `version`, write after write.
fn weights_of(env: &DemoEnv, version: u32) -> Vec<u64> {
    let name = format!("{SERVICE}-{version}");
    env.sim
        .weight_history(NAMESPACE)
        .iter()
        .filter_map(|w| w.weights.iter().find(|(n, _)| *n == name).map(|(_, w)| *w))
        .collect()
}

#[async_trait]
impl<F: Fn(&DemoEnv) + Send + Sync> TaskInvoker for AtGate<'_, F> {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let out = self.inner.invoke(resource, input).await?;
        if let Some(d) = deployment_of(&out) {
            self.trail
                .lock()
                .unwrap()
                .push((resource.to_owned(), d.weight, d.next));
        }
        if deployment_of(&out).is_some_and(|d| d.gate.is_some())
            && !self.done.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            (self.at_gate)(self.env);
        }
        Ok(out)
    }
}

#[tokio::test]
async fn a_gate_holds_the_weight_until_approved_and_the_record_names_who() {
    let env = env_with_v1().await;
    let invoker = env.invoker();
    let approver = Approver::new(&invoker, &env.services, env.service_ref(), 600, "ana");
    let run = env
        .deploy_doc(
            gated(2, json!([{"at": 50, "timeout": 3600}])),
            &approver,
            &mut NoopObserver,
        )
        .await;
    assert_eq!(outcome(&run).0, OutcomeStatus::Promoted, "{:?}", run.status);
    assert_eq!(approver.approved().len(), 1);
    assert!(
        approver.approved()[0]
            .1
            .contains("gate at 50% approved by ana")
    );

    // While it waited the route held 50% (no write between the shift to 50% and the one
    // to 60%), and the checks went on.
    let weights = weights_of(&env, 2);
    let at50 = weights.iter().position(|w| *w == 50).unwrap();
    assert_eq!(weights[at50 + 1], 60, "{weights:?}");

    let record = env
        .services
        .store
        .record(&env.service_ref(), 2)
        .await
        .unwrap()
        .unwrap();
    let kinds: Vec<ActionKind> = record.operator.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![ActionKind::Paused, ActionKind::Approved]);
    let (paused, approved) = (&record.operator[0], &record.operator[1]);
    assert_eq!(
        (approved.by.as_str(), approved.gate.as_deref()),
        ("ana", Some("50%"))
    );
    assert!(
        approved.at - paused.at >= 600,
        "approved 10 min after the pause"
    );
    assert!(record.gate.is_none(), "no gate waits once it ended");
    assert!(
        env.services
            .store
            .approval_requested(&env.service_ref())
            .await
            .unwrap()
            .is_none()
    );
    let checks = deployment_of(&run.output).unwrap().checks;
    assert!(checks >= 30, "checks went on while paused: {checks}");

    // After the deployment ended, approving is a clear error.
    let e = approve(&env.services.store, &env.service_ref(), "ana", "late", 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no deployment is running"), "{e}");
    env.shutdown().await;
}

#[tokio::test]
async fn a_gate_nobody_approves_rolls_back_at_its_deadline_or_goes_on_when_told_to() {
    let env = env_with_v1().await;
    let invoker = env.invoker();
    let run = env
        .deploy_doc(
            gated(2, json!([{"at": 30, "timeout": 120}])),
            &invoker,
            &mut NoopObserver,
        )
        .await;
    let (status, reason) = outcome(&run);
    assert_eq!(status, OutcomeStatus::RolledBack);
    assert!(
        reason.contains("rolled back to yelb-appserver-1 at 30%")
            && reason.contains("not approved at the 30% gate within 2m"),
        "{reason}"
    );
    let checks = env.verify(2, 1, OutcomeStatus::RolledBack).await;
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");

    let run = env
        .deploy_doc(
            gated(
                3,
                json!([{"at": 30, "timeout": 120, "on_timeout": "continue"}]),
            ),
            &invoker,
            &mut NoopObserver,
        )
        .await;
    assert_eq!(outcome(&run).0, OutcomeStatus::Promoted);
    let record = env
        .services
        .store
        .record(&env.service_ref(), 3)
        .await
        .unwrap()
        .unwrap();
    assert!(
        record
            .operator
            .iter()
            .any(|a| a.kind == ActionKind::TimedOut && a.reason.contains("going on"))
    );
    env.shutdown().await;
}

#[tokio::test]
async fn a_failure_while_paused_rolls_back_at_once() {
    let env = env_with_v1().await;
    let invoker = env.invoker();
    let paused_at = std::sync::Mutex::new(0i64);
    let breaker = AtGate::new(&invoker, &env, |env: &DemoEnv| {
        env.sim.set_error_rate(&image(2), 0.3);
        *paused_at.lock().unwrap() = env.services.clock.now_secs();
    });
    let run = env
        .deploy_doc(
            gated(2, json!([{"at": 50, "timeout": 3600}])),
            &breaker,
            &mut NoopObserver,
        )
        .await;
    let (status, reason) = outcome(&run);
    assert_eq!(status, OutcomeStatus::RolledBack);
    assert!(
        reason.contains("at 50%") && reason.contains("errors"),
        "{reason}"
    );
    let broke = *paused_at.lock().unwrap();
    let ended = env.services.clock.now_secs();
    assert!(
        ended - broke < 120,
        "rolled back {} s after the failure, not at the gate's deadline",
        ended - broke
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_sent_twice_passes_one_gate_once() {
    let env = env_with_v1().await;
    let invoker = env.invoker();
    let svc = env.service_ref();
    let twice = AtGate::new(&invoker, &env, |env: &DemoEnv| {
        let store = env.services.store.clone();
        let svc = env.service_ref();
        // The handlers run on this runtime; the approvals are written from a
        // blocking section the way a second terminal would.
        blocking(async {
            approve(&store, &svc, "ana", "first", 1).await.unwrap();
            approve(&store, &svc, "bo", "second", 2).await.unwrap();
        });
    });
    let run = env
        .deploy_doc(
            gated(2, json!([{"at": 30}, {"at": 60}])),
            &twice,
            &mut NoopObserver,
        )
        .await;
    // The approvals passed the gate at 30% once; the gate at 60% was not passed by them
    // and, with nobody approving it, rolled back at its deadline.
    let (status, reason) = outcome(&run);
    assert_eq!(status, OutcomeStatus::RolledBack, "{reason}");
    assert!(reason.contains("not approved at the 60% gate"), "{reason}");
    let record = env.services.store.record(&svc, 2).await.unwrap().unwrap();
    let approved: Vec<_> = record
        .operator
        .iter()
        .filter(|a| a.kind == ActionKind::Approved)
        .collect();
    assert_eq!(approved.len(), 1, "{:?}", record.operator);
    assert_eq!(approved[0].by, "bo", "the last request wins");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_and_promote_name_what_is_wrong_when_nothing_waits() {
    let env = DemoEnv::start().await.unwrap();
    let svc = env.service_ref();
    let store = &env.services.store;
    let e = approve(store, &svc, "ana", "go", 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no deployment is running"), "{e}");
    let e = promote(store, &svc, true, "ana", "go", 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no deployment is running"), "{e}");
    let e = approve(store, &svc, "", "go", 0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("--by"), "{e}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_a_deployment_that_waits_at_no_gate_is_refused_naming_its_weight() {
    let env = env_with_v1().await;
    let invoker = env.invoker();
    let seen = std::sync::Mutex::new(None::<String>);
    struct Probe<'a> {
        inner: &'a dyn TaskInvoker,
        env: &'a DemoEnv,
        seen: &'a std::sync::Mutex<Option<String>>,
    }
    #[async_trait]
    impl TaskInvoker for Probe<'_> {
        async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
            let out = self.inner.invoke(resource, input).await?;
            let d = deployment_of(&out);
            if d.as_ref()
                .is_some_and(|d| d.weight == 20 && d.next == Next::Check)
                && self.seen.lock().unwrap().is_none()
            {
                let e = approve(
                    &self.env.services.store,
                    &self.env.service_ref(),
                    "ana",
                    "go",
                    0,
                )
                .await
                .unwrap_err()
                .to_string();
                *self.seen.lock().unwrap() = Some(e);
            }
            Ok(out)
        }
    }
    let probe = Probe {
        inner: &invoker,
        env: &env,
        seen: &seen,
    };
    let run = env
        .deploy_doc(deploy_document(&image(2)), &probe, &mut NoopObserver)
        .await;
    assert!(matches!(run.status, Status::Succeeded));
    let e = seen.lock().unwrap().clone().expect("probed at 20%");
    assert!(
        e.contains("not waiting at a gate") && e.contains("20%"),
        "{e}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_full_goes_to_100_percent_and_still_bakes_and_checks_there() {
    let env = env_with_v1().await;
    let invoker = env.invoker();
    let svc = env.service_ref();
    let promoter = AtGate::new(&invoker, &env, |env: &DemoEnv| {
        let store = env.services.store.clone();
        let svc = env.service_ref();
        blocking(async {
            promote(&store, &svc, true, "bo", "hotfix", 0)
                .await
                .unwrap();
        });
    });
    let run = env
        .deploy_doc(
            gated(2, json!([{"at": 20}, {"at": "promotion"}])),
            &promoter,
            &mut NoopObserver,
        )
        .await;
    assert_eq!(outcome(&run).0, OutcomeStatus::Promoted, "{:?}", run.status);
    let weights = weights_of(&env, 2);
    let at20 = weights.iter().position(|w| *w == 20).unwrap();
    assert_eq!(
        weights[at20 + 1],
        100,
        "straight from 20% to 100%: {weights:?}"
    );
    let record = env.services.store.record(&svc, 2).await.unwrap().unwrap();
    let kinds: Vec<ActionKind> = record.operator.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        vec![ActionKind::Paused, ActionKind::PromotedFull],
        "no pause at promotion"
    );
    let at100 = record
        .verdicts
        .iter()
        .filter(|v| v.reason.contains("errors"))
        .count();
    assert!(at100 >= 1, "checked at 100% before the old version went");
    env.shutdown().await;
}
