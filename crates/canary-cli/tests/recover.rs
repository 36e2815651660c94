//! Recovery of a deployment that ended without finishing, through its three doors:
//! `canary recover` (the binary, records in moto's S3, the simulated cluster through a
//! kubeconfig), the rollback function's EventBridge input, and render-template meeting
//! the lock of an ended holder (a lease that ran out) or of one that still runs.
//! Every deployment here is the demo's: the shipped definition and handlers on a
//! virtual clock beside the simulated cluster; v1 is promoted first, then v2 is stopped
//! just before its first health check (traffic split 90/10, the lock held).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};

use canary_cli::harness::DemoEnv;
use canary_cli::harness::fixtures::{NAMESPACE, SERVICE, deploy_document, image};
use canary_cli::local::{Fault, FaultKind, FaultyInvoker, Function};
use canary_core::clock::Clock as _;
use canary_core::errors;
use canary_core::execution::OutcomeStatus;
use canary_lambda::{HandlerError, RenderInput, Task};
use canary_store::{DeploymentStore, S3Objects, TakeLock};
use canary_testkit::{MotoServer, unique_name};
use serde_json::{Value, json};

/// v1 promoted, then v2 stopped before its first health check. Returns the stopped
/// execution's id (the lock's holder).
async fn stopped_at_ten_percent(env: &DemoEnv) -> String {
    env.deploy_versions(&[1]).await.unwrap();
    let invoker = FaultyInvoker::new(
        env.invoker(),
        vec![Fault {
            function: Function::HealthCheck,
            nth: 1,
            times: 1,
            kind: FaultKind::Stop,
        }],
    );
    let id = env
        .deploy_until(&image(2), &invoker, invoker.stopped())
        .await
        .expect_err("stopped before the health check");
    assert_eq!(weights(env), vec![(name(1), 90), (name(2), 10)]);
    let lock = env.services.store.lock(&env.service_ref()).await.unwrap();
    assert_eq!(lock.map(|l| l.execution), Some(id.clone()));
    id
}

fn name(v: u32) -> String {
    format!("{SERVICE}-{v}")
}

fn weights(env: &DemoEnv) -> Vec<(String, u64)> {
    let route = env
        .sim
        .get_object(
            "appmesh.k8s.aws/v1beta2",
            "VirtualRouter",
            NAMESPACE,
            SERVICE,
        )
        .expect("the route");
    canary_cli::harness::route_targets(&route)
        .into_iter()
        .filter(|(_, w)| *w > 0)
        .collect()
}

/// All traffic on v1, nothing of v2, the lock free, v2's record "recovered from".
async fn assert_recovered(env: &DemoEnv, from: &str) {
    let checks = env.verify(2, 1, OutcomeStatus::RolledBack).await;
    let failed: Vec<_> = checks.iter().filter(|c| !c.ok).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let record = env
        .services
        .store
        .record(&env.service_ref(), 2)
        .await
        .unwrap()
        .unwrap();
    let reason = record.outcome.unwrap().reason;
    assert!(
        reason.starts_with(&format!(
            "recovered from {from}: stopped at 10%; all traffic back on {}, {} removed",
            name(1),
            name(2)
        )),
        "{reason}"
    );
}

fn canary(moto: &MotoServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .env_remove("CANARY_STATE_BUCKET")
        .env_remove("CANARY_STATE_PREFIX")
        .envs(moto.env())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_recover_refuses_an_unknown_holder_then_restores_the_service_with_force() {
    let moto = MotoServer::shared().unwrap();
    let sdk = moto.sdk_config().await;
    let bucket = unique_name("recover");
    S3Objects::new(&sdk, &bucket).create_bucket().await.unwrap();
    let mut env = DemoEnv::start().await.unwrap();
    env.services.store = DeploymentStore::s3(&sdk, &bucket).with_prefix("state/");
    let stopped = stopped_at_ten_percent(&env).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, &env.kubeconfig).unwrap();
    let svc = env.service_ref().to_string();
    let base = [
        "recover",
        svc.as_str(),
        "--bucket",
        bucket.as_str(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--by",
        "alice",
    ];

    // The holder has no lease and Step Functions (moto) has no such execution: nobody
    // can say it ended, so nothing is touched without --force.
    let o = canary(moto, &base);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("locked by execution {stopped}")),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert_eq!(weights(&env), vec![(name(1), 90), (name(2), 10)]);

    let o = canary(moto, &[&base[..], &["--force"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("WARNING: --force"), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("recovered from {stopped}: stopped at 10%")),
        "{}",
        text(&o)
    );
    assert_recovered(&env, &stopped).await;

    let o = canary(moto, &base);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("nothing to recover"), "{}", text(&o));
    env.shutdown().await;
}

#[test]
fn canary_recover_has_help_naming_its_options() {
    let o = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["recover", "--help"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    for option in [
        "--force",
        "--bucket",
        "--kubeconfig",
        "--deploy-json",
        "stable version",
    ] {
        assert!(help.contains(option), "{option}: {help}");
    }
}

/// The event EventBridge sends when an execution of `deploy` ends with `status`.
fn event(execution: &str, status: &str, deploy: &Value) -> Value {
    json!({
        "version": "0",
        "id": "6f4a1f5c-0d1e-4c4b-9d1a-1b2c3d4e5f60",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "000000000000",
        "time": "2026-01-01T00:10:00Z",
        "region": "local",
        "resources": [execution],
        "detail": {
            "executionArn": execution,
            "stateMachineArn": "arn:aws:states:local:000000000000:stateMachine:canary-deployment",
            "name": execution.rsplit(':').next().unwrap(),
            "status": status,
            "startDate": 1_767_225_600_000_i64,
            "stopDate": 1_767_226_200_000_i64,
            "input": deploy.to_string(),
            "output": null
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_s_event_recovers_only_what_its_execution_left() {
    let env = DemoEnv::start().await.unwrap();
    let stopped = stopped_at_ten_percent(&env).await;
    let deploy = deploy_document(&image(2));

    // Another execution's event, or a status the rule does not send: nothing.
    let other = canary_cli::harness::execution_id("demo-9");
    let out = rollback::handle(&env.services, event(&other, "ABORTED", &deploy))
        .await
        .unwrap();
    assert_eq!(out["recovery"], "nothing_to_recover", "{out}");
    let out = rollback::handle(&env.services, event(&stopped, "SUCCEEDED", &deploy))
        .await
        .unwrap();
    assert_eq!(out["recovery"], "nothing_to_recover", "{out}");
    assert_eq!(weights(&env), vec![(name(1), 90), (name(2), 10)]);

    // Its own ABORTED event, moments after the stop, while a Lambda task of it may still
    // be in flight (a 60 s grace, as in AWS): refused, to be delivered again.
    let mut services = env.services.clone();
    services.holders.stop_grace_secs = 60;
    let mut just_now = event(&stopped, "ABORTED", &deploy);
    just_now["detail"]["stopDate"] = json!(env.clock.now_millis() - 5_000);
    let e = rollback::handle(&services, just_now.clone())
        .await
        .unwrap_err();
    assert_eq!(e.error_type.as_str(), errors::SERVICE_LOCKED, "{e}");
    assert!(e.message.contains("ended ABORTED 5 s ago"), "{e}");
    assert_eq!(weights(&env), vec![(name(1), 90), (name(2), 10)]);

    // Delivered again a minute later: restored; once more: nothing left to do.
    env.clock.set(env.clock.now_millis() + 60_000);
    let out = rollback::handle(&services, just_now).await.unwrap();
    assert_eq!(out["recovery"], "recovered", "{out}");
    assert_eq!(out["status"], "rolled_back", "{out}");
    assert!(
        out["reason"]
            .as_str()
            .unwrap()
            .ends_with("(Step Functions says ABORTED)"),
        "{out}"
    );
    assert_recovered(&env, &stopped).await;
    let again = rollback::handle(&env.services, event(&stopped, "ABORTED", &deploy))
        .await
        .unwrap();
    assert_eq!(again["recovery"], "nothing_to_recover", "{again}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_first_deployment_is_removed_entirely() {
    let env = DemoEnv::start().await.unwrap();
    let invoker = FaultyInvoker::new(
        env.invoker(),
        vec![Fault {
            function: Function::Cleanup,
            nth: 1,
            times: 1,
            kind: FaultKind::Stop,
        }],
    );
    let stopped = env
        .deploy_until(&image(1), &invoker, invoker.stopped())
        .await
        .expect_err("stopped before its cleanup");
    assert!(!env.sim.list_objects(NAMESPACE).is_empty());
    let out = rollback::handle(
        &env.services,
        event(&stopped, "TIMED_OUT", &deploy_document(&image(1))),
    )
    .await
    .unwrap();
    assert_eq!(out["recovery"], "recovered", "{out}");
    let reason = out["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "recovered from {stopped}: stopped at 100%; {} (a first deployment) removed",
            name(1)
        )),
        "{reason}"
    );
    let left: Vec<Value> = env
        .sim
        .list_objects(NAMESPACE)
        .into_iter()
        .filter(|o| o["metadata"]["labels"]["eks-canary.io/service"] == SERVICE)
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let status = env.services.store.status(&env.service_ref()).await.unwrap();
    assert_eq!(
        (
            status.lock,
            status.state.stable_version,
            status.state.in_progress
        ),
        (None, None, None)
    );
    env.shutdown().await;
}

async fn render(env: &DemoEnv, execution: &str) -> Result<Task, HandlerError> {
    render_template::run(
        &env.services,
        RenderInput {
            deploy: deploy_document(&image(3)),
            execution: execution.into(),
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_template_asks_for_recovery_only_when_the_holder_has_ended() {
    let mut env = DemoEnv::start().await.unwrap();
    env.deploy_versions(&[1]).await.unwrap();
    let svc = env.service_ref();
    let now = env.clock.now_secs();
    // A terminal's run holds the lock with a one-minute lease.
    let taken = env
        .services
        .store
        .take_lock_as(
            &svc,
            &TakeLock {
                execution: "web-local-1",
                now,
                lease_secs: Some(60),
                replacing: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(taken.expires_at, Some(now + 60));

    // While the lease runs: ServiceLocked, saying so.
    let e = render(&env, "exec-3").await.unwrap_err();
    assert_eq!(e.error_type.as_str(), errors::SERVICE_LOCKED, "{e}");
    assert!(e.message.contains("its lease runs for 60 s more"), "{e}");

    // Once it has run out: RecoveryNeeded, and nothing was written.
    env.clock.set(env.clock.now_millis() + 61_000);
    let e = render(&env, "exec-3").await.unwrap_err();
    assert_eq!(e.error_type.as_str(), errors::RECOVERY_NEEDED, "{e}");
    assert!(e.message.contains("its lease ran out 1 s ago"), "{e}");
    let lock = env.services.store.lock(&svc).await.unwrap().unwrap();
    assert_eq!(lock.execution, "web-local-1");

    // A run of this process takes its own lock with a lease too.
    env.services
        .store
        .break_lock(&svc, "test", now)
        .await
        .unwrap();
    env.services.holders = env.services.holders.clone().with_lease(60);
    let task = render(&env, "exec-4").await.unwrap();
    let lock = env.services.store.lock(&svc).await.unwrap().unwrap();
    assert_eq!(lock.execution, "exec-4");
    assert_eq!(lock.expires_at, Some(env.clock.now_secs() + 60));
    assert_eq!(task.deployment.lock_token, lock.token);
    env.shutdown().await;
}
