#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! deploy-canary's readiness watch on the demo's world (the shipped definition, the
//! real handlers, the simulated cluster whose Deployments are ready 15 s after a
//! change): the first weight is written within a second of readiness by the invocation
//! that saw it; a Deployment slower than one invocation's watch goes through the
//! definition's Wait loop (WaitForReady, CheckReadiness), whose call then makes the
//! first shift; and a CheckReadiness whose answer is lost (a timeout) is retried without
//! a second write to the route.

use std::sync::Mutex;

use async_trait::async_trait;
use canary_cli::harness::DemoEnv;
use canary_cli::harness::fixtures::{NAMESPACE, READY_DELAY, SERVICE, image};
use canary_cli::local::{Function, LocalInvoker};
use canary_core::decide::ReadyWatch;
use canary_lambda::Task;
use canary_sfn::{NoopObserver, TaskError, TaskInvoker};
use serde_json::Value;

/// The real handlers, with deploy-canary watching for `watch` and, optionally, the
/// answer of its `lose_answer`-th call lost as a timeout.
#[derive(Debug)]
struct Watching {
    inner: LocalInvoker,
    watch: ReadyWatch,
    lose_answer: Option<usize>,
    /// deploy-canary's calls: the clock when each began.
    deploy_calls: Mutex<Vec<i64>>,
}

#[async_trait]
impl TaskInvoker for Watching {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        if Function::from_resource(resource) != Some(Function::DeployCanary) {
            return self.inner.invoke(resource, input).await;
        }
        let services = &self.inner.services;
        let n = {
            let mut calls = self.deploy_calls.lock().unwrap();
            calls.push(services.clock.now_millis());
            calls.len()
        };
        let task = Task::from_value(input)
            .map_err(|e| TaskError::new("States.TaskFailed", e.to_string()))?;
        let out = deploy_canary::run_with(services, task, self.watch)
            .await
            .map_err(|e| TaskError::new(e.error_type.as_str(), e.message.clone()))?
            .into_value()
            .map_err(|e| TaskError::new("States.TaskFailed", e.to_string()))?;
        if self.lose_answer == Some(n) {
            return Err(TaskError::new(
                "States.Timeout",
                "deploy-canary timed out (injected)",
            ));
        }
        Ok(out)
    }
}

/// Deploys v2 beside v1 with `invoker`; returns the states entered, the times of the
/// canary's route writes, and the apply's time.
async fn deploy_v2(env: &DemoEnv, invoker: &Watching) -> (Vec<String>, Vec<(i64, u64)>, i64) {
    let before = env.sim.weight_history(NAMESPACE).len();
    let run = env.deploy(&image(2), invoker, &mut NoopObserver).await;
    assert!(run.succeeded(), "{:?}", run.status);
    let canary = format!("{SERVICE}-2");
    let writes = env
        .sim
        .weight_history(NAMESPACE)
        .into_iter()
        .skip(before)
        .map(|w| {
            let weight = w
                .weights
                .iter()
                .filter(|(n, _)| *n == canary)
                .map(|(_, x)| *x)
                .sum();
            (w.at_millis, weight)
        })
        .collect();
    let applied = invoker.deploy_calls.lock().unwrap()[0];
    (
        run.path().into_iter().map(str::to_owned).collect(),
        writes,
        applied,
    )
}

fn ready_delay_millis() -> i64 {
    i64::try_from(READY_DELAY.as_millis()).unwrap()
}

#[tokio::test]
async fn the_first_weight_is_written_within_a_second_of_readiness_by_the_call_that_saw_it() {
    let env = DemoEnv::start().await.unwrap();
    env.deploy_versions(&[1]).await.unwrap();
    let invoker = Watching {
        inner: env.invoker(),
        watch: ReadyWatch::default(),
        lose_answer: None,
        deploy_calls: Mutex::new(Vec::new()),
    };
    let (path, writes, applied) = deploy_v2(&env, &invoker).await;
    let first = writes.iter().find(|w| w.1 > 0).expect("a first shift");
    let ready_at = applied + ready_delay_millis();
    assert!(
        first.0 >= ready_at && first.0 - ready_at <= 1_000,
        "ready at {ready_at}, first weight at {}",
        first.0
    );
    assert_eq!(first.1, 10);
    assert_eq!(invoker.deploy_calls.lock().unwrap().len(), 1);
    for state in ["WaitForReady", "CheckReadiness", "ShiftWeights"] {
        assert!(!path.iter().any(|s| s == state), "{state} in {path:?}");
    }
    // The apply (stable keeps 100%), ten shifts and the promotion: one write each.
    assert_eq!(writes.len(), 12, "{writes:?}");
    env.shutdown().await;
}

#[tokio::test]
async fn a_deployment_slower_than_one_watch_goes_through_the_wait_loop_and_its_call_shifts() {
    let env = DemoEnv::start().await.unwrap();
    env.deploy_versions(&[1]).await.unwrap();
    let invoker = Watching {
        inner: env.invoker(),
        watch: ReadyWatch {
            max_secs: 4,
            ..ReadyWatch::default()
        },
        lose_answer: None,
        deploy_calls: Mutex::new(Vec::new()),
    };
    let (path, writes, applied) = deploy_v2(&env, &invoker).await;
    // Applied and watched 4 s; waited 10 s; watched again until ready at 15 s.
    let calls = invoker.deploy_calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let i = path
        .iter()
        .position(|s| s == "CheckReadiness")
        .expect("CheckReadiness");
    assert_eq!(path[i - 1], "WaitForReady");
    assert_eq!(path[i + 1], "WhatNext");
    assert_eq!(path[i + 2], "WaitForCheck", "{path:?}");
    let first = writes.iter().find(|w| w.1 > 0).expect("a first shift");
    let ready_at = applied + ready_delay_millis();
    assert!(
        first.0 - ready_at <= 1_000,
        "ready at {ready_at}, first weight at {}",
        first.0
    );
    assert_eq!(writes.len(), 12, "{writes:?}");
    env.shutdown().await;
}

#[tokio::test]
async fn a_check_readiness_whose_answer_is_lost_is_retried_without_a_second_route_write() {
    let env = DemoEnv::start().await.unwrap();
    env.deploy_versions(&[1]).await.unwrap();
    let invoker = Watching {
        inner: env.invoker(),
        watch: ReadyWatch {
            max_secs: 4,
            ..ReadyWatch::default()
        },
        lose_answer: Some(2),
        deploy_calls: Mutex::new(Vec::new()),
    };
    let (path, writes, _) = deploy_v2(&env, &invoker).await;
    assert_eq!(invoker.deploy_calls.lock().unwrap().len(), 3);
    assert_eq!(
        path.iter().filter(|s| *s == "CheckReadiness").count(),
        1,
        "{path:?}"
    );
    // The lost call wrote 10%; its retry found the route at 10% and wrote nothing.
    let tens = writes.iter().filter(|w| w.1 == 10).count();
    assert_eq!(tens, 1, "{writes:?}");
    assert_eq!(writes.len(), 12, "{writes:?}");
    env.shutdown().await;
}
