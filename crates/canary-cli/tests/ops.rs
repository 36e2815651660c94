//! The operator commands against a real moto_server: `canary history`, `status`,
//! `abort`, `unlock` read and write the records that a `DeploymentStore` (the one the
//! Lambda functions use) wrote in S3, and `canary check-health` judges metrics written
//! with PutMetricData to moto's CloudWatch. The binary is spawned with the standard AWS
//! environment pointing at moto.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use canary_core::{Verdict, VerdictStatus};
use canary_lambda::{EksConnector, Services};
use canary_metrics::StaticMetrics;
use canary_metrics::cloudwatch::{CloudWatchMetrics, MetricDatum};
use canary_store::{DeploymentStore, Finish, S3Objects, ServiceRef};
use canary_testkit::{MotoServer, unique_name};
use serde_json::{Value, json};

const PREFIX: &str = "state/";

fn moto() -> &'static MotoServer {
    MotoServer::shared().unwrap()
}

fn canary(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_canary"));
    cmd.args(args)
        .env_remove("CANARY_STATE_BUCKET")
        .env_remove("CANARY_STATE_PREFIX")
        .envs(moto().env())
        .stdin(Stdio::null());
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fresh bucket and the store the Lambda functions would use on it.
async fn store() -> (String, DeploymentStore) {
    let sdk = moto().sdk_config().await;
    let bucket = unique_name("ops");
    S3Objects::new(&sdk, &bucket).create_bucket().await.unwrap();
    let store = DeploymentStore::s3(&sdk, &bucket).with_prefix(PREFIX);
    (bucket, store)
}

fn verdict(status: VerdictStatus, errors: f64, reason: &str) -> Verdict {
    Verdict {
        status,
        errors,
        requests: Some(errors + 240.0),
        error_rate: Some(errors / (errors + 240.0) * 100.0),
        window_seconds: 600,
        datapoints: 20,
        version: None,
        latency_ms: None,
        comparison: None,
        stable: None,
        reason: reason.into(),
    }
}

/// v1 promoted (a first deployment), v2 rolled back after an unhealthy check, v3
/// running at 20% with a healthy check, its lock held by `exec-3`.
async fn three_deployments(store: &DeploymentStore, svc: &ServiceRef) {
    let t = now() - 7200;
    let lock = store.take_lock(svc, "exec-1", t).await.unwrap();
    store.begin(svc, "exec-1", "repo/web:1", t).await.unwrap();
    store
        .record_progress(svc, "exec-1", 1, 100, None, t + 60)
        .await
        .unwrap();
    store
        .finish_promoted(
            svc,
            &Finish {
                execution: "exec-1".into(),
                lock_token: lock.token,
                version: 1,
                image: "repo/web:1".into(),
                started_at: t,
                ended_at: t + 90,
                max_weight: 100,
                verdicts: vec![],
                reason: "first deployment: promoted once ready".into(),
            },
        )
        .await
        .unwrap();
    let t = t + 1000;
    let lock = store.take_lock(svc, "exec-2", t).await.unwrap();
    store.begin(svc, "exec-2", "repo/web:2", t).await.unwrap();
    let bad = verdict(
        VerdictStatus::Unhealthy,
        12.0,
        "12 errors in 252 requests over 600 s: more than failure_threshold_value 0",
    );
    store
        .record_progress(svc, "exec-2", 2, 20, Some(&bad), t + 300)
        .await
        .unwrap();
    store
        .finish_rolled_back(
            svc,
            &Finish {
                execution: "exec-2".into(),
                lock_token: lock.token,
                version: 2,
                image: "repo/web:2".into(),
                started_at: t,
                ended_at: t + 330,
                max_weight: 20,
                verdicts: vec![bad.clone()],
                reason: "unhealthy at 20%: 12 errors in 252 requests over 600 s".into(),
            },
        )
        .await
        .unwrap();
    let t = now() - 600;
    store.take_lock(svc, "exec-3", t).await.unwrap();
    store.begin(svc, "exec-3", "repo/web:3", t).await.unwrap();
    let good = verdict(
        VerdictStatus::Healthy,
        0.0,
        "0 errors in 240 requests over 600 s: within thresholds",
    );
    store
        .record_progress(svc, "exec-3", 3, 20, Some(&good), t + 120)
        .await
        .unwrap();
}

#[tokio::test]
async fn history_lists_every_deployment_newest_first_with_outcome_weight_and_verdict() {
    let (bucket, store) = store().await;
    let svc = ServiceRef::new("c1", "shop", "web");
    three_deployments(&store, &svc).await;

    let o = canary(&[
        "history",
        "web",
        "--cluster",
        "c1",
        "--namespace",
        "shop",
        "--bucket",
        &bucket,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    println!("{out}");
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing from:\n{out}"))
    };
    assert!(at("v3") < at("v2") && at("v2") < at("v1"), "{out}");
    for needle in [
        "c1/shop/web: 3 deployments, newest first",
        "running",
        "rolled back",
        "promoted",
        "repo/web:2",
        "reason: unhealthy at 20%: 12 errors in 252 requests over 600 s",
        "last verdict: unhealthy: 12 errors, 252 requests, error rate 4.76%, window 600 s, 20 datapoints",
        "5m 30s",
    ] {
        at(needle);
    }

    let o = canary(&["history", "c1/shop/web", "--bucket", &bucket, "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["service"], "c1/shop/web");
    let list = doc["deployments"].as_array().unwrap();
    let versions: Vec<u64> = list
        .iter()
        .map(|d| d["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    let status: Vec<&str> = list.iter().map(|d| d["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["running", "rolled_back", "promoted"]);
    assert_eq!(list[1]["max_weight"], 20);
    assert_eq!(list[1]["duration_seconds"], 330);
    assert_eq!(list[1]["verdicts"][0]["errors"], 12.0);
    assert_eq!(list[1]["outcome"]["status"], "rolled_back");
    assert!(list[1]["started"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn status_shows_the_running_deployment_the_stable_version_and_the_lock_holder() {
    let (bucket, store) = store().await;
    let svc = ServiceRef::new("c1", "shop", "web");
    three_deployments(&store, &svc).await;

    let o = canary(&["status", "c1/shop/web", "--bucket", &bucket]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    println!("{out}");
    for needle in [
        "stable:    v1  repo/web:1",
        "running:   v3  repo/web:3  at 20% (highest 20%)",
        "execution exec-3",
        "last verdict: healthy: 0 errors, 240 requests, error rate 0%",
        "0 errors in 240 requests over 600 s: within thresholds",
        "lock:      held by exec-3 since",
        "versions:  3 handed out",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }

    let o = canary(&["status", "c1/shop/web", "--bucket", &bucket, "-o", "json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["state"]["stable_version"], 1);
    assert_eq!(doc["state"]["stable_image"], "repo/web:1");
    assert_eq!(doc["in_progress"]["version"], 3);
    assert_eq!(doc["in_progress"]["weight"], 20);
    assert_eq!(doc["lock"]["execution"], "exec-3");
    assert_eq!(doc["abort"], Value::Null);
}

#[tokio::test]
async fn a_service_that_was_never_deployed_has_an_empty_history_and_a_free_lock() {
    let (bucket, _store) = store().await;
    let o = canary(&["history", "c1/shop/new", "--bucket", &bucket]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("no deployments recorded"));
    let o = canary(&["status", "c1/shop/new", "--bucket", &bucket]);
    let out = text(&o.stdout);
    assert!(
        out.contains("stable:    none") && out.contains("lock:      free"),
        "{out}"
    );
}

fn yelb_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/yelb/yelb-appserver")
}

/// The execution document health-check receives for version 2 at `weight`.
fn health_check_input(execution: &str, weight: u8) -> Value {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(yelb_dir().join("deploy.json")).unwrap())
            .unwrap();
    use base64::Engine as _;
    let template = std::fs::read_to_string(yelb_dir().join("kubernetes_template.yml")).unwrap();
    doc["container_image"] = json!("repo/yelb-appserver:2");
    doc["config_file"] = json!(base64::engine::general_purpose::STANDARD.encode(template));
    let t = now();
    doc["deployment"] = json!({
        "execution": execution, "canary_version": 2, "stable_version": 1,
        "provider": "appmesh",
        "route": {"api_version": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter", "name": "yelb-appserver"},
        "schedule": [10, 50, 100], "step": 1, "weight": weight, "max_weight": weight,
        "lock_token": "t", "started_at": t - 300, "ready_deadline": t, "step_started_at": t - 60,
        "checks": 0, "holds": 0, "next": "check", "wait_seconds": 60,
    });
    doc
}

#[tokio::test]
async fn abort_leaves_the_marker_that_the_next_health_check_turns_into_a_rollback_naming_who_asked()
{
    let (bucket, store) = store().await;
    let spec_doc = health_check_input("exec-2", 10);
    let svc = ServiceRef::new(
        spec_doc["cluster_name"].as_str().unwrap(),
        spec_doc["kubernetes_namespace"].as_str().unwrap(),
        "yelb-appserver",
    );
    let t = now() - 300;
    let lock = store.take_lock(&svc, "exec-1", t - 1000).await.unwrap();
    store
        .begin(&svc, "exec-1", "repo/yelb-appserver:1", t - 1000)
        .await
        .unwrap();
    let first = Finish {
        execution: "exec-1".into(),
        lock_token: lock.token,
        version: 1,
        image: "repo/yelb-appserver:1".into(),
        started_at: t - 1000,
        ended_at: t - 900,
        max_weight: 100,
        verdicts: vec![],
        reason: "promoted".into(),
    };
    store.finish_promoted(&svc, &first).await.unwrap();
    store.take_lock(&svc, "exec-2", t).await.unwrap();
    store
        .begin(&svc, "exec-2", "repo/yelb-appserver:2", t)
        .await
        .unwrap();
    store
        .record_progress(&svc, "exec-2", 2, 10, None, t + 10)
        .await
        .unwrap();

    let deploy = yelb_dir().join("deploy.json");
    let o = canary(&[
        "abort",
        "--deploy-json",
        deploy.to_str().unwrap(),
        "--bucket",
        &bucket,
        "--reason",
        "bad release",
        "--by",
        "alice",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    println!("{out}");
    assert!(out.contains("abort requested by alice"), "{out}");
    assert!(
        out.contains(
            "execution exec-2 will roll version 2 (at 10% of the traffic) back at its next step"
        ),
        "{out}"
    );
    assert!(out.contains("\"aborted by alice: bad release\""), "{out}");
    let marker = store.abort_requested(&svc).await.unwrap().unwrap();
    assert_eq!(
        (marker.by.as_str(), marker.reason.as_str()),
        ("alice", "bad release")
    );

    // status shows the pending request
    let o = canary(&[
        "status",
        "--deploy-json",
        deploy.to_str().unwrap(),
        "--bucket",
        &bucket,
    ]);
    assert!(
        text(&o.stdout).contains("abort:     requested by alice"),
        "{}",
        text(&o.stdout)
    );

    // The health-check function, with metrics that are perfectly healthy, rolls back.
    let sdk = moto().sdk_config().await;
    let services = Services {
        store: store.clone(),
        metrics: Arc::new(StaticMetrics::new(vec![0.0], vec![500.0])),
        clusters: Arc::new(EksConnector::new(
            sdk,
            canary_kube::RequestPolicy::default(),
        )),
        clock: Arc::new(canary_core::clock::SystemClock),
        holders: canary_lambda::Holders::none(),
        notifier: std::sync::Arc::new(canary_lambda::NoNotifier),
    };
    let out = health_check::handle(&services, health_check_input("exec-2", 10))
        .await
        .unwrap();
    assert_eq!(out["deployment"]["next"], "rollback");
    assert_eq!(out["deployment"]["verdict"]["status"], "unhealthy");
    assert_eq!(
        out["deployment"]["verdict"]["reason"],
        "aborted by alice: bad release"
    );
}

#[tokio::test]
async fn abort_without_a_running_deployment_exits_2_and_says_so() {
    let (bucket, _store) = store().await;
    let o = canary(&["abort", "c1/shop/idle", "--bucket", &bucket]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("no deployment is running (the lock is not held)"),
        "{}",
        text(&o.stderr)
    );
}

#[tokio::test]
async fn unlock_breaks_a_stale_lock_so_that_the_next_deployment_can_take_it() {
    let (bucket, store) = store().await;
    let svc = ServiceRef::new("c1", "shop", "stuck");
    store
        .take_lock(&svc, "exec-dead", now() - 3600)
        .await
        .unwrap();
    assert!(store.take_lock(&svc, "exec-next", now()).await.is_err());

    // Without --yes and without a terminal to ask on, nothing is broken.
    let o = canary(&["unlock", "c1/shop/stuck", "--bucket", &bucket]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--yes"), "{}", text(&o.stderr));
    assert!(store.lock(&svc).await.unwrap().is_some());

    let o = canary(&[
        "unlock",
        "c1/shop/stuck",
        "--bucket",
        &bucket,
        "--yes",
        "--by",
        "bob",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    println!("{out}");
    assert!(out.contains("locked by execution exec-dead since"), "{out}");
    assert!(out.contains("(1h 0m"), "{out}");
    assert!(out.contains("lock broken by bob"), "{out}");
    assert!(store.lock(&svc).await.unwrap().is_none());
    store.take_lock(&svc, "exec-next", now()).await.unwrap();

    // Unlocking a free lock is fine and says so.
    store.break_lock(&svc, "test", now()).await.unwrap();
    let o = canary(&["unlock", "c1/shop/stuck", "--bucket", &bucket, "--yes"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("the lock is not held; nothing to unlock"));
}

fn write_spec(dir: &Path, extra: Value) -> PathBuf {
    let mut doc = json!({
        "cluster_name": "c1",
        "kubernetes_namespace": "shop",
        "microservice_name": "web",
        "percentage_step": 25,
        "wait_time": 60,
        "failure_threshold_value": 3,
        "failure_threshold_time": 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    let path = dir.join(format!("{}.json", unique_name("deploy")));
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

async fn put(metric: &str, values: &[f64]) {
    let cw = CloudWatchMetrics::new(&moto().sdk_config().await).unwrap();
    let t = now();
    let data: Vec<MetricDatum> = values
        .iter()
        .enumerate()
        .map(|(i, v)| MetricDatum {
            name: metric.into(),
            dimensions: vec![],
            timestamp_secs: t - 60 * (i as i64 + 1),
            value: *v,
        })
        .collect();
    cw.put_metric_data("EnvoyPrometheus/ResponseCode", &data)
        .await
        .unwrap();
}

#[tokio::test]
async fn check_health_exits_0_when_healthy_and_1_when_unhealthy_printing_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let errors = unique_name("5xx");
    let successes = unique_name("2xx");
    put(&errors, &[1.0, 1.0]).await;
    put(&successes, &[100.0, 98.0]).await;
    let spec = write_spec(
        dir.path(),
        json!({"error_metric_name": errors, "success_metric_name": successes, "max_error_rate": 5}),
    );
    let o = canary(&["check-health", spec.to_str().unwrap()]);
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    for needle in [
        "healthy: c1/shop/web, the whole service",
        "errors      2\n",
        "requests    200\n",
        "error rate  1%\n",
        "window      600 s",
        "datapoints  4\n",
        "within thresholds",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }

    let bad = unique_name("5xx");
    put(&bad, &[2.0, 3.0]).await;
    let spec = write_spec(dir.path(), json!({"error_metric_name": bad}));
    let o = canary(&["check-health", spec.to_str().unwrap(), "--version", "7"]);
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(out.starts_with("unhealthy: c1/shop/web"), "{out}");
    assert!(out.contains("errors      5\n"), "{out}");
    assert!(out.contains("more than failure_threshold_value 3"), "{out}");

    let o = canary(&["check-health", spec.to_str().unwrap(), "-o", "json"]);
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(doc["verdict"]["status"], "unhealthy");
    assert_eq!(doc["verdict"]["errors"], 5.0);
    assert_eq!(doc["error_metric"], bad.as_str());
}

#[tokio::test]
async fn check_health_holds_with_exit_3_when_traffic_is_too_thin_and_no_data_is_hold() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        json!({"error_metric_name": unique_name("5xx"), "success_metric_name": unique_name("2xx"),
               "min_request_count": 50, "no_data": "hold"}),
    );
    let o = canary(&["check-health", spec.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}{}", text(&o.stderr));
    assert!(out.starts_with("hold"), "{out}");
    assert!(out.contains("fewer than min_request_count 50"), "{out}");
}

#[tokio::test]
async fn check_health_judges_the_running_canary_version_from_the_records_by_default() {
    let (bucket, store) = store().await;
    let svc = ServiceRef::new("c1", "shop", "web");
    three_deployments(&store, &svc).await;
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        json!({"error_metric_name": unique_name("5xx"), "version_dimension": "pod_controller_name"}),
    );
    let o = canary(&["check-health", spec.to_str().unwrap(), "--bucket", &bucket]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(
        out.contains(
            "version 3 only (pod_controller_name=web-3; version from the running deployment)"
        ),
        "{out}"
    );
}

#[test]
fn bad_input_exits_2_with_a_message_naming_the_argument_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "history".into(),
                "web".into(),
                "--bucket".into(),
                "b".into(),
            ],
            "--cluster",
        ),
        (
            vec![
                "status".into(),
                "web".into(),
                "--cluster".into(),
                "c1".into(),
                "--bucket".into(),
                "b".into(),
            ],
            "--namespace",
        ),
        (vec!["status".into(), "c1/shop/web".into()], "--bucket"),
        (
            vec![
                "history".into(),
                "c1/shop".into(),
                "--bucket".into(),
                "b".into(),
            ],
            "<cluster>/<namespace>/<service>",
        ),
        (
            vec![
                "abort".into(),
                "c1/shop/web".into(),
                "--bucket".into(),
                "b".into(),
                "--reason".into(),
                " ".into(),
            ],
            "--reason",
        ),
        (
            vec![
                "check-health".into(),
                write_spec(dir.path(), json!({"no_data": "maybe"}))
                    .display()
                    .to_string(),
            ],
            "no_data",
        ),
        (
            vec![
                "check-health".into(),
                write_spec(dir.path(), json!({"max_error_rate": 150}))
                    .display()
                    .to_string(),
            ],
            "max_error_rate",
        ),
        (
            vec![
                "check-health".into(),
                write_spec(dir.path(), json!({})).display().to_string(),
                "--version".into(),
                "0".into(),
            ],
            "--version",
        ),
        (
            vec!["check-health".into(), "/nonexistent/deploy.json".into()],
            "/nonexistent/deploy.json",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = canary(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(needle),
            "{args:?}: `{needle}` missing from: {}",
            text(&o.stderr)
        );
    }
}
