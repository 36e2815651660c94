//! The deployment store against a real moto_server (S3 with enforced conditional
//! writes) and, for the same scenarios, against the in-memory object store. Each test
//! uses its own bucket and service names.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

use std::sync::Arc;

use canary_core::OutcomeStatus;
use canary_core::{VerdictStatus, errors};
use canary_store::{
    Abort, DeploymentStore, Finish, MemoryObjects, ObjectStore, PutCondition, RecoveredEnd,
    S3Objects, ServiceRef, StoreError, TakeLock,
};
use canary_testkit::{MotoServer, unique_name};

const T0: i64 = 1_767_225_600;

async fn s3_store() -> DeploymentStore {
    let moto = MotoServer::shared().expect("moto_server starts");
    let objects = S3Objects::new(&moto.sdk_config().await, unique_name("bkt"));
    objects.create_bucket().await.expect("bucket");
    DeploymentStore::new(Arc::new(objects)).with_prefix("deployments")
}

fn service() -> ServiceRef {
    ServiceRef::new("c1", "shop", unique_name("svc"))
}

fn verdict(status: VerdictStatus, errors: f64) -> canary_core::Verdict {
    canary_core::Verdict {
        status,
        errors,
        requests: None,
        error_rate: None,
        window_seconds: 600,
        datapoints: 3,
        version: None,
        latency_ms: None,
        comparison: None,
        stable: None,
        reason: format!("{errors} errors over 600 s"),
    }
}

fn finish(execution: &str, token: &str, version: u32, reason: &str) -> Finish {
    Finish {
        execution: execution.into(),
        lock_token: token.into(),
        version,
        image: format!("repo/app:{version}"),
        started_at: T0,
        ended_at: T0 + 600,
        max_weight: 100,
        verdicts: vec![verdict(VerdictStatus::Healthy, 0.0)],
        reason: reason.into(),
    }
}

/// Runs `scenario` on both backends.
macro_rules! on_both {
    ($memory:ident, $moto:ident, $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $memory() {
            $scenario(DeploymentStore::memory()).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $moto() {
            $scenario(s3_store().await).await;
        }
    };
}

async fn concurrent_takers(store: DeploymentStore) {
    for round in 0..15 {
        let svc = service();
        // Twice per service: over an absent lock (If-None-Match: *), then over a released
        // marker (If-Match).
        for phase in 0..2 {
            let (a, b) = tokio::join!(
                store.take_lock(&svc, "exec-a", T0),
                store.take_lock(&svc, "exec-b", T0)
            );
            let (winner, loser) = match (a, b) {
                (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
                (a, b) => {
                    panic!("round {round} phase {phase}: exactly one must win, got {a:?} and {b:?}")
                }
            };
            assert_eq!(loser.error_type(), errors::SERVICE_LOCKED);
            match &loser {
                StoreError::Locked { holder, since, .. } => {
                    assert_eq!(holder, &winner.execution);
                    assert_eq!(*since, T0);
                }
                other => panic!("expected Locked, got {other:?}"),
            }
            assert!(loser.to_string().contains(&winner.execution), "{loser}");
            assert_eq!(
                store.lock(&svc).await.expect("lock").as_ref(),
                Some(&winner)
            );
            store
                .release_lock(&svc, &winner.execution, &winner.token, T0 + 1)
                .await
                .expect("release");
        }
    }
}
on_both!(
    two_concurrent_takers_exactly_one_wins_in_memory,
    two_concurrent_takers_exactly_one_wins_on_moto_s3,
    concurrent_takers
);

async fn loser_touches_nothing(store: DeploymentStore) {
    let svc = service();
    let lock = store.take_lock(&svc, "exec-a", T0).await.expect("take");
    store
        .begin(&svc, "exec-a", "repo/app:1", T0)
        .await
        .expect("begin");
    let before = store.status(&svc).await.expect("status");
    let err = store
        .take_lock(&svc, "exec-b", T0 + 5)
        .await
        .expect_err("locked");
    assert_eq!(err.error_type(), errors::SERVICE_LOCKED);
    // begin without the lock is refused too, and changes nothing.
    let err = store
        .begin(&svc, "exec-b", "repo/app:2", T0 + 5)
        .await
        .expect_err("not the holder");
    assert_eq!(err.error_type(), errors::LOCK_LOST);
    assert_eq!(store.status(&svc).await.expect("status"), before);
    assert_eq!(store.lock(&svc).await.expect("lock"), Some(lock));
}
on_both!(
    a_second_deployment_touches_nothing_in_memory,
    a_second_deployment_touches_nothing_on_moto_s3,
    loser_touches_nothing
);

async fn retake_is_idempotent(store: DeploymentStore) {
    let svc = service();
    let first = store.take_lock(&svc, "exec-a", T0).await.expect("take");
    let again = store
        .take_lock(&svc, "exec-a", T0 + 30)
        .await
        .expect("retake by the holder");
    assert_eq!(
        first, again,
        "a retried render-template gets the same lock and token"
    );
    store
        .release_lock(&svc, "exec-a", &first.token, T0 + 40)
        .await
        .expect("release");
    store
        .release_lock(&svc, "exec-a", &first.token, T0 + 41)
        .await
        .expect("releasing again is fine");
    assert_eq!(store.lock(&svc).await.expect("lock"), None);
}
on_both!(
    the_holder_may_take_and_release_twice_in_memory,
    the_holder_may_take_and_release_twice_on_moto_s3,
    retake_is_idempotent
);

async fn lost_owner(store: DeploymentStore) {
    let svc = service();
    let a = store.take_lock(&svc, "exec-a", T0).await.expect("take");
    let begin = store
        .begin(&svc, "exec-a", "repo/app:1", T0)
        .await
        .expect("begin");
    let broken = store
        .break_lock(&svc, "alice", T0 + 100)
        .await
        .expect("unlock");
    assert_eq!(
        broken.map(|l| l.execution),
        Some("exec-a".to_owned()),
        "unlock says who held it"
    );
    assert_eq!(
        store
            .break_lock(&svc, "alice", T0 + 101)
            .await
            .expect("unlock again"),
        None
    );

    let err = store
        .release_lock(&svc, "exec-a", &a.token, T0 + 200)
        .await
        .expect_err("lost");
    assert_eq!(err.error_type(), errors::LOCK_LOST);
    assert!(err.to_string().contains("unlock by alice"), "{err}");

    // Someone else deploys now; the old owner's finish must touch nothing.
    let b = store
        .take_lock(&svc, "exec-b", T0 + 300)
        .await
        .expect("free again");
    let err = store
        .finish_rolled_back(
            &svc,
            &finish("exec-a", &a.token, begin.canary_version, "late"),
        )
        .await
        .expect_err("lost");
    assert_eq!(err.error_type(), errors::LOCK_LOST);
    assert!(err.to_string().contains("exec-b"), "{err}");
    let record = store
        .record(&svc, begin.canary_version)
        .await
        .expect("read")
        .expect("record");
    assert_eq!(
        record.outcome, None,
        "the lost owner's record was not finished"
    );
    assert_eq!(store.lock(&svc).await.expect("lock"), Some(b));

    // And the next version is new: the counter never goes back.
    let next = store
        .begin(&svc, "exec-b", "repo/app:2", T0 + 300)
        .await
        .expect("begin");
    assert_eq!(next.canary_version, begin.canary_version + 1);
}
async fn fence(store: DeploymentStore) {
    let svc = service();
    let a = store.take_lock(&svc, "exec-a", T0).await.expect("take");
    store
        .ensure_lock_held(&svc, "exec-a", &a.token)
        .await
        .expect("the holder passes the fence");
    let err = store
        .ensure_lock_held(&svc, "exec-a", "another-token")
        .await
        .expect_err("a stale token does not");
    assert_eq!(err.error_type(), errors::LOCK_LOST);
    // Released by itself (the deployment finished): a retried last task may go on.
    store
        .release_lock(&svc, "exec-a", &a.token, T0 + 10)
        .await
        .expect("release");
    store
        .ensure_lock_held(&svc, "exec-a", &a.token)
        .await
        .expect("released by itself");
    // Broken by `canary unlock` while held: the fence names who broke it.
    let b = store
        .take_lock(&svc, "exec-b", T0 + 20)
        .await
        .expect("take");
    store
        .break_lock(&svc, "alice", T0 + 30)
        .await
        .expect("unlock");
    let err = store
        .ensure_lock_held(&svc, "exec-b", &b.token)
        .await
        .expect_err("lost");
    assert_eq!(err.error_type(), errors::LOCK_LOST);
    assert!(err.to_string().contains("unlock by alice"), "{err}");
    // Taken by another execution since: the fence names it.
    store
        .take_lock(&svc, "exec-c", T0 + 40)
        .await
        .expect("take");
    let err = store
        .ensure_lock_held(&svc, "exec-b", &b.token)
        .await
        .expect_err("lost");
    assert!(err.to_string().contains("exec-c"), "{err}");
    let err = store
        .ensure_lock_held(&svc, "exec-a", &a.token)
        .await
        .expect_err("an old holder is fenced out too");
    assert!(err.to_string().contains("exec-c"), "{err}");
}
on_both!(
    the_fence_passes_only_the_holder_in_memory,
    the_fence_passes_only_the_holder_on_moto_s3,
    fence
);

on_both!(
    a_lost_owner_gets_lock_lost_in_memory,
    a_lost_owner_gets_lock_lost_on_moto_s3,
    lost_owner
);

async fn deployments(store: DeploymentStore) {
    let svc = service();

    // 1: first deployment, promoted. Every call is made twice (a retried Lambda).
    let l1 = store.take_lock(&svc, "exec-1", T0).await.expect("take");
    let b1 = store
        .begin(&svc, "exec-1", "repo/app:1", T0)
        .await
        .expect("begin");
    assert_eq!(
        store
            .begin(&svc, "exec-1", "repo/app:1", T0)
            .await
            .expect("retried begin"),
        b1
    );
    assert_eq!((b1.canary_version, b1.stable_version), (1, None));
    let key = store
        .put_manifest(&svc, 1, "kind: Deployment\n")
        .await
        .expect("manifest");
    assert_eq!(key, b1.manifest_key);
    assert_eq!(
        store.manifest(&svc, 1).await.expect("read").as_deref(),
        Some("kind: Deployment\n")
    );
    let v = verdict(VerdictStatus::Healthy, 0.0);
    store
        .record_progress(&svc, "exec-1", 1, 100, Some(&v), T0 + 60)
        .await
        .expect("progress");
    let r = store
        .record_progress(&svc, "exec-1", 1, 100, Some(&v), T0 + 60)
        .await
        .expect("retried progress");
    assert_eq!(r.verdicts.len(), 1, "a retried verdict is kept once");
    let status = store.status(&svc).await.expect("status");
    assert_eq!(status.lock.map(|l| l.execution).as_deref(), Some("exec-1"));
    assert_eq!(
        status.in_progress.map(|r| (r.version, r.weight)),
        Some((1, 100))
    );
    let f1 = finish("exec-1", &l1.token, 1, "promoted at 100%");
    let r1 = store.finish_promoted(&svc, &f1).await.expect("finish");
    assert_eq!(
        store
            .finish_promoted(&svc, &f1)
            .await
            .expect("retried finish"),
        r1
    );
    assert_eq!(
        store.lock(&svc).await.expect("lock"),
        None,
        "finish releases the lock"
    );

    // 2: rolled back; the stable version stays 1.
    let l2 = store
        .take_lock(&svc, "exec-2", T0 + 1000)
        .await
        .expect("take");
    let b2 = store
        .begin(&svc, "exec-2", "repo/app:2", T0 + 1000)
        .await
        .expect("begin");
    assert_eq!(
        (
            b2.canary_version,
            b2.stable_version,
            b2.stable_image.as_deref()
        ),
        (2, Some(1), Some("repo/app:1"))
    );
    store
        .request_abort(
            &svc,
            &Abort {
                by: "alice".into(),
                reason: "bad release".into(),
                at: T0 + 1100,
            },
        )
        .await
        .expect("abort");
    assert_eq!(
        store
            .abort_requested(&svc)
            .await
            .expect("read")
            .map(|a| a.by)
            .as_deref(),
        Some("alice")
    );
    let mut f2 = finish("exec-2", &l2.token, 2, "aborted by alice: bad release");
    f2.max_weight = 20;
    f2.verdicts = (0..15)
        .map(|i| verdict(VerdictStatus::Healthy, f64::from(i)))
        .collect();
    store.finish_rolled_back(&svc, &f2).await.expect("finish");
    store
        .finish_rolled_back(&svc, &f2)
        .await
        .expect("retried finish");
    assert_eq!(
        store.abort_requested(&svc).await.expect("read"),
        None,
        "finish clears the abort marker"
    );

    let state = store.state(&svc).await.expect("state");
    assert_eq!(
        (state.stable_version, state.stable_image.as_deref()),
        (Some(1), Some("repo/app:1"))
    );
    assert_eq!((state.version_counter, state.in_progress), (2, None));

    // 3: the counter goes on from 2.
    let _l3 = store
        .take_lock(&svc, "exec-3", T0 + 2000)
        .await
        .expect("take");
    assert_eq!(
        store
            .begin(&svc, "exec-3", "repo/app:3", T0 + 2000)
            .await
            .expect("begin")
            .canary_version,
        3
    );

    let history = store.history(&svc).await.expect("history");
    let versions: Vec<u32> = history.iter().map(|r| r.version).collect();
    assert_eq!(
        versions,
        [3, 2, 1],
        "one record per deployment, newest first, no duplicates"
    );
    let (h3, h2, h1) = (&history[0], &history[1], &history[2]);
    assert_eq!(h3.outcome, None);
    let o2 = h2.outcome.as_ref().expect("ended");
    assert_eq!(
        (o2.status, o2.reason.as_str()),
        (
            canary_core::OutcomeStatus::RolledBack,
            "aborted by alice: bad release"
        )
    );
    assert_eq!(
        (h2.max_weight, h2.weight, h2.previous_version),
        (20, 0, Some(1))
    );
    assert_eq!(
        h2.verdicts.len(),
        canary_store::MAX_VERDICTS,
        "only the last verdicts are kept"
    );
    assert_eq!(h2.verdicts.last().map(|v| v.errors), Some(14.0));
    assert_eq!(
        h1.outcome.as_ref().map(|o| o.status),
        Some(canary_core::OutcomeStatus::Promoted)
    );
    assert_eq!(
        (h1.started_at, h1.ended_at, h1.image.as_str()),
        (T0, Some(T0 + 600), "repo/app:1")
    );
}
on_both!(
    records_survive_retried_calls_and_versions_only_grow_in_memory,
    records_survive_retried_calls_and_versions_only_grow_on_moto_s3,
    deployments
);

#[tokio::test]
async fn the_s3_layout_is_the_documented_one() {
    let moto = MotoServer::shared().expect("moto_server starts");
    let bucket = unique_name("bkt");
    let objects = S3Objects::new(&moto.sdk_config().await, bucket.clone());
    objects.create_bucket().await.expect("bucket");
    let client = objects.client().clone();
    let store = DeploymentStore::new(Arc::new(objects)).with_prefix("deployments");
    let svc = ServiceRef::new("c1", "shop", "web");
    let lock = store.take_lock(&svc, "exec-1", T0).await.expect("take");
    store
        .begin(&svc, "exec-1", "repo/web:1", T0)
        .await
        .expect("begin");
    store
        .put_manifest(&svc, 1, "kind: Service\n")
        .await
        .expect("manifest");
    store
        .request_abort(
            &svc,
            &Abort {
                by: "bob".into(),
                reason: "x".into(),
                at: T0,
            },
        )
        .await
        .expect("abort");
    let out = client
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("list");
    let mut keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "deployments/c1/shop/web/abort.json",
            "deployments/c1/shop/web/history/1.json",
            "deployments/c1/shop/web/lock.json",
            "deployments/c1/shop/web/manifests/1.yaml",
            "deployments/c1/shop/web/state.json",
        ]
    );
    let got = client
        .get_object()
        .bucket(&bucket)
        .key("deployments/c1/shop/web/lock.json")
        .send()
        .await
        .expect("get");
    let body = got.body.collect().await.expect("body").into_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        (doc["state"].as_str(), doc["execution"].as_str()),
        (Some("held"), Some("exec-1"))
    );
    assert_eq!(
        doc["nonce"].as_str(),
        Some(lock.token.as_str()),
        "the lock token is the held lock's nonce"
    );
    assert!(doc.get("expires_at").is_none(), "no lease: {doc}");
}

#[tokio::test]
async fn a_missing_bucket_is_a_store_error_not_a_lock() {
    let moto = MotoServer::shared().expect("moto_server starts");
    let store = DeploymentStore::s3(&moto.sdk_config().await, unique_name("nobkt"));
    let err = store
        .take_lock(&service(), "exec-1", T0)
        .await
        .expect_err("no bucket");
    assert_eq!(err.error_type(), errors::STORE_ERROR, "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the SDK's error is kept: {err}"
    );
}

#[tokio::test]
async fn an_unreachable_s3_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    let err = DeploymentStore::s3(&sdk, "b")
        .state(&service())
        .await
        .expect_err("nothing listens");
    assert_eq!(err.error_type(), errors::STORE_TRANSIENT, "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the SDK's error is kept: {err}"
    );
}

/// Runs `scenario` on both backends, with the raw objects under the store (to plant
/// objects that the store did not write).
macro_rules! on_both_with_objects {
    ($memory:ident, $moto:ident, $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $memory() {
            let objects: Arc<dyn ObjectStore> = Arc::new(MemoryObjects::new());
            $scenario(DeploymentStore::new(objects.clone()), objects).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $moto() {
            let moto = MotoServer::shared().expect("moto_server starts");
            let s3 = S3Objects::new(&moto.sdk_config().await, unique_name("bkt"));
            s3.create_bucket().await.expect("bucket");
            let objects: Arc<dyn ObjectStore> = Arc::new(s3);
            let store = DeploymentStore::new(objects.clone()).with_prefix("deployments");
            $scenario(store, objects).await;
        }
    };
}

async fn adopt_stable(store: DeploymentStore) {
    let svc = service();
    let state = store
        .adopt_stable(&svc, 7, Some("repo/app:7"), T0)
        .await
        .expect("adopt");
    assert_eq!(
        (
            state.stable_version,
            state.stable_image.as_deref(),
            state.version_counter,
            state.in_progress.as_ref()
        ),
        (Some(7), Some("repo/app:7"), 7, None)
    );
    assert_eq!(store.state(&svc).await.expect("state"), state);

    // The next deployment is version 8, beside the adopted 7.
    let lock = store
        .take_lock(&svc, "exec-8", T0 + 10)
        .await
        .expect("take");
    let b = store
        .begin(&svc, "exec-8", "repo/app:8", T0 + 10)
        .await
        .expect("begin");
    assert_eq!(
        (
            b.canary_version,
            b.stable_version,
            b.stable_image.as_deref()
        ),
        (8, Some(7), Some("repo/app:7"))
    );

    // Not while a deployment runs, and nothing changes.
    let before = store.state(&svc).await.expect("state");
    let err = store
        .adopt_stable(&svc, 5, None, T0 + 20)
        .await
        .expect_err("a deployment is in progress");
    assert_eq!(err.error_type(), errors::STORE_ERROR);
    assert!(err.to_string().contains("exec-8"), "{err}");
    assert_eq!(store.state(&svc).await.expect("state"), before);
    store
        .finish_rolled_back(&svc, &finish("exec-8", &lock.token, 8, "rolled back"))
        .await
        .expect("finish");

    // The counter never goes back: adopting an older version keeps it at 8.
    let state = store
        .adopt_stable(&svc, 3, None, T0 + 2000)
        .await
        .expect("adopt");
    assert_eq!(
        (
            state.stable_version,
            state.stable_image,
            state.version_counter
        ),
        (Some(3), None, 8)
    );
    // The same again writes nothing.
    let again = store
        .adopt_stable(&svc, 3, None, T0 + 3000)
        .await
        .expect("adopt again");
    assert_eq!(again.updated_at, T0 + 2000, "nothing was written");
    let _l = store
        .take_lock(&svc, "exec-9", T0 + 4000)
        .await
        .expect("take");
    assert_eq!(
        store
            .begin(&svc, "exec-9", "repo/app:9", T0 + 4000)
            .await
            .expect("begin")
            .canary_version,
        9
    );
}
on_both!(
    a_stable_version_found_in_the_cluster_is_adopted_and_the_counter_never_goes_back_in_memory,
    a_stable_version_found_in_the_cluster_is_adopted_and_the_counter_never_goes_back_on_moto_s3,
    adopt_stable
);

/// Asserts that `err` is a store error that names `key` and keeps its cause.
fn names_key_with_cause(err: &StoreError, key: &str) {
    assert_eq!(err.error_type(), errors::STORE_ERROR, "{err}");
    assert!(err.to_string().contains(key), "`{err}` should name `{key}`");
    assert!(
        std::error::Error::source(err).is_some(),
        "`{err}` should keep its cause"
    );
}

async fn plant(objects: &Arc<dyn ObjectStore>, key: &str, body: &[u8]) {
    objects
        .put(key, body.to_vec(), "application/json", PutCondition::Always)
        .await
        .expect("plant");
}

async fn corrupt_objects(store: DeploymentStore, objects: Arc<dyn ObjectStore>) {
    let svc = service();

    // A corrupt state.json.
    let key = store.state_key(&svc);
    plant(&objects, &key, b"{\"stable_version\": ").await;
    names_key_with_cause(&store.state(&svc).await.expect_err("corrupt"), &key);
    names_key_with_cause(&store.status(&svc).await.expect_err("corrupt"), &key);
    let _lock = store.take_lock(&svc, "exec-1", T0).await.expect("take");
    names_key_with_cause(
        &store
            .begin(&svc, "exec-1", "repo/app:1", T0)
            .await
            .expect_err("corrupt state"),
        &key,
    );
    names_key_with_cause(
        &store
            .adopt_stable(&svc, 1, None, T0)
            .await
            .expect_err("corrupt state"),
        &key,
    );

    // A corrupt history record.
    let key = store.record_key(&svc, 1);
    plant(&objects, &key, b"not json").await;
    names_key_with_cause(&store.record(&svc, 1).await.expect_err("corrupt"), &key);
    names_key_with_cause(&store.history(&svc).await.expect_err("corrupt"), &key);

    // A corrupt lock: neither "not held" nor taken over.
    let key = store.lock_key(&svc);
    plant(&objects, &key, b"[]").await;
    names_key_with_cause(&store.lock(&svc).await.expect_err("corrupt"), &key);
    names_key_with_cause(
        &store
            .take_lock(&svc, "exec-2", T0)
            .await
            .expect_err("corrupt"),
        &key,
    );
    names_key_with_cause(
        &store
            .break_lock(&svc, "ops", T0)
            .await
            .expect_err("corrupt"),
        &key,
    );

    // A corrupt abort marker is not "no abort".
    let key = store.abort_key(&svc);
    plant(&objects, &key, b"{\"by\": 1}").await;
    names_key_with_cause(
        &store.abort_requested(&svc).await.expect_err("corrupt"),
        &key,
    );

    // A manifest that is not text.
    let key = store.manifest_key(&svc, 1);
    plant(&objects, &key, &[0xff, 0xfe, 0x00]).await;
    names_key_with_cause(&store.manifest(&svc, 1).await.expect_err("not text"), &key);
}
on_both_with_objects!(
    a_corrupt_object_is_an_error_naming_its_key_never_nothing_in_memory,
    a_corrupt_object_is_an_error_naming_its_key_never_nothing_on_moto_s3,
    corrupt_objects
);

async fn stray_history_key(store: DeploymentStore, objects: Arc<dyn ObjectStore>) {
    let svc = service();
    let _lock = store.take_lock(&svc, "exec-1", T0).await.expect("take");
    store
        .begin(&svc, "exec-1", "repo/app:1", T0)
        .await
        .expect("begin");
    let stray = store.record_key(&svc, 1).replace("1.json", "notes.txt");
    plant(&objects, &stray, b"{}").await;
    let err = store.history(&svc).await.expect_err("stray key");
    assert_eq!(err.error_type(), errors::STORE_ERROR, "{err}");
    assert!(err.to_string().contains(&stray), "{err}");
}
on_both_with_objects!(
    a_stray_key_under_history_is_an_error_naming_it_in_memory,
    a_stray_key_under_history_is_an_error_naming_it_on_moto_s3,
    stray_history_key
);

async fn leases(store: DeploymentStore) {
    let svc = service();
    let taken = store
        .take_lock_as(
            &svc,
            &TakeLock {
                execution: "web-local-1",
                now: T0,
                lease_secs: Some(60),
                replacing: None,
            },
        )
        .await
        .expect("take with a lease");
    assert_eq!(taken.expires_at, Some(T0 + 60));
    assert!(!taken.lease_expired(T0 + 59) && taken.lease_expired(T0 + 60));
    assert_eq!(store.lock(&svc).await.expect("lock"), Some(taken.clone()));

    // Renewed: a later end, the same token, and the fence still passes.
    let renewed = store
        .renew_lock(&svc, "web-local-1", T0 + 20, 60)
        .await
        .expect("renew")
        .expect("still held");
    assert_eq!(renewed.expires_at, Some(T0 + 80));
    assert_eq!(renewed.token, taken.token, "a renewal keeps the token");
    store
        .ensure_lock_held(&svc, "web-local-1", &taken.token)
        .await
        .expect("the fence passes after a renewal");
    assert_eq!(
        store
            .renew_lock(&svc, "someone-else", T0 + 21, 60)
            .await
            .expect("renew"),
        None,
        "only the holder renews"
    );

    // Another execution is refused while the holder is not known to have ended...
    let err = store
        .take_lock(&svc, "exec-b", T0 + 100)
        .await
        .expect_err("held");
    assert_eq!(err.error_type(), errors::SERVICE_LOCKED);
    // ...and takes it over once it is.
    let over = store
        .take_lock_as(
            &svc,
            &TakeLock {
                execution: "recover-b",
                now: T0 + 100,
                lease_secs: None,
                replacing: Some("web-local-1"),
            },
        )
        .await
        .expect("take over");
    assert_eq!(over.execution, "recover-b");
    assert_eq!(over.expires_at, None);
    // The old holder is fenced out, cannot renew, and cannot release.
    let err = store
        .ensure_lock_held(&svc, "web-local-1", &taken.token)
        .await
        .expect_err("fenced");
    assert!(err.to_string().contains("recover-b"), "{err}");
    assert_eq!(
        store
            .renew_lock(&svc, "web-local-1", T0 + 101, 60)
            .await
            .expect("renew"),
        None
    );
    assert_eq!(
        store
            .release_lock(&svc, "web-local-1", &taken.token, T0 + 102)
            .await
            .expect_err("lost")
            .error_type(),
        errors::LOCK_LOST
    );
    // Taking over from a holder that is not the one named is refused.
    let err = store
        .take_lock_as(
            &svc,
            &TakeLock {
                execution: "exec-c",
                now: T0 + 110,
                lease_secs: None,
                replacing: Some("web-local-1"),
            },
        )
        .await
        .expect_err("recover-b holds it");
    assert!(err.to_string().contains("recover-b"), "{err}");
}
on_both!(
    a_lease_is_renewed_and_an_ended_holders_lock_is_taken_over_in_memory,
    a_lease_is_renewed_and_an_ended_holders_lock_is_taken_over_on_moto_s3,
    leases
);

async fn recovered(store: DeploymentStore) {
    let svc = service();
    // v1 promoted, then v2 stopped at 40%.
    let l1 = store.take_lock(&svc, "exec-1", T0).await.expect("take");
    store
        .begin(&svc, "exec-1", "repo/app:1", T0)
        .await
        .expect("begin");
    store
        .finish_promoted(&svc, &finish("exec-1", &l1.token, 1, "promoted"))
        .await
        .expect("finish");
    store
        .take_lock(&svc, "exec-2", T0 + 700)
        .await
        .expect("take");
    store
        .begin(&svc, "exec-2", "repo/app:2", T0 + 700)
        .await
        .expect("begin");
    store
        .record_progress(&svc, "exec-2", 2, 40, None, T0 + 800)
        .await
        .expect("progress");
    let orphan = store
        .state(&svc)
        .await
        .expect("state")
        .in_progress
        .expect("v2 in progress");

    // Only the lock's holder may write the recovery.
    let err = store
        .finish_recovered(
            &svc,
            &RecoveredEnd {
                holder: "recover",
                token: "no-token",
                orphan: &orphan,
                status: OutcomeStatus::RolledBack,
                reason: "recovered from exec-2: stopped at 40%",
                now: T0 + 900,
            },
        )
        .await
        .expect_err("not the holder");
    assert_eq!(err.error_type(), errors::LOCK_LOST);

    let lock = store
        .take_lock_as(
            &svc,
            &TakeLock {
                execution: "recover",
                now: T0 + 900,
                lease_secs: None,
                replacing: Some("exec-2"),
            },
        )
        .await
        .expect("take over");
    let reason = "recovered from exec-2: stopped at 40%";
    for attempt in 0..2 {
        let record = store
            .finish_recovered(
                &svc,
                &RecoveredEnd {
                    holder: "recover",
                    token: &lock.token,
                    orphan: &orphan,
                    status: OutcomeStatus::RolledBack,
                    reason,
                    now: T0 + 900 + attempt,
                },
            )
            .await
            .expect("recovered");
        assert_eq!(record.execution, "exec-2", "the record stays the orphan's");
        assert_eq!(record.ended_at, Some(T0 + 900), "a retry rewrites nothing");
        assert_eq!(record.weight, 0);
        assert_eq!(record.max_weight, 40);
        let outcome = record.outcome.expect("outcome");
        assert_eq!(outcome.status, OutcomeStatus::RolledBack);
        assert_eq!(outcome.reason, reason);
    }
    let state = store.state(&svc).await.expect("state");
    assert_eq!(state.in_progress, None);
    assert_eq!(state.stable_version, Some(1));
    assert_eq!(state.version_counter, 2);
    store
        .release_lock(&svc, "recover", &lock.token, T0 + 901)
        .await
        .expect("release");
    // The next deployment gets version 3.
    store
        .take_lock(&svc, "exec-3", T0 + 1000)
        .await
        .expect("take");
    let next = store
        .begin(&svc, "exec-3", "repo/app:3", T0 + 1000)
        .await
        .expect("begin");
    assert_eq!((next.canary_version, next.stable_version), (3, Some(1)));
}
on_both!(
    a_stopped_deployment_is_recorded_as_recovered_once_in_memory,
    a_stopped_deployment_is_recorded_as_recovered_once_on_moto_s3,
    recovered
);
