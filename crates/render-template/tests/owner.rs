//! render-template refuses an execution whose name says it belongs to another service,
//! before any lock is taken (moto's S3 holds the store): nothing is written, the lock
//! stays free, and the error is InvalidInput naming both services. An execution named
//! for the service, or with no owner prefix, takes the lock as before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine as _;
use canary_core::ErrorName;
use canary_core::clock::SystemClock;
use canary_lambda::{EksConnector, Holders, RenderInput, Services};
use canary_metrics::StaticMetrics;
use canary_store::{DeploymentStore, ObjectStore, S3Objects, ServiceRef};
use canary_testkit::{MotoServer, unique_name};
use serde_json::Value;

const DEPLOY_JSON: &str = include_str!("../../../tests/fixtures/yelb/yelb-appserver/deploy.json");
const TEMPLATE: &str =
    include_str!("../../../tests/fixtures/yelb/yelb-appserver/kubernetes_template.yml");

fn deploy() -> Value {
    let mut doc: Value = serde_json::from_str(DEPLOY_JSON).unwrap();
    let map = doc.as_object_mut().unwrap();
    map.insert(
        "container_image".into(),
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/yelb-appserver:2".into(),
    );
    map.insert(
        "config_file".into(),
        base64::engine::general_purpose::STANDARD
            .encode(TEMPLATE)
            .into(),
    );
    doc
}

async fn services() -> (Services, S3Objects) {
    let moto = MotoServer::shared().unwrap();
    let sdk = moto.sdk_config().await;
    let bucket = unique_name("owner");
    let objects = S3Objects::new(&sdk, &bucket);
    objects.create_bucket().await.unwrap();
    let services = Services {
        store: DeploymentStore::s3(&sdk, &bucket).with_prefix("state/"),
        metrics: Arc::new(StaticMetrics::new(Vec::new(), Vec::new())),
        clusters: Arc::new(EksConnector::new(sdk.clone(), Default::default())),
        clock: Arc::new(SystemClock),
        holders: Holders::none(),
        notifier: std::sync::Arc::new(canary_lambda::NoNotifier),
    };
    (services, objects)
}

fn arn(name: &str) -> String {
    format!("arn:aws:states:us-east-1:123456789012:execution:eks-canary:{name}")
}

fn svc() -> ServiceRef {
    let doc = deploy();
    ServiceRef::new(
        doc["cluster_name"].as_str().unwrap(),
        doc["kubernetes_namespace"].as_str().unwrap(),
        doc["microservice_name"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn another_services_execution_is_refused_before_the_lock() {
    let (services, objects) = services().await;
    let execution = arn("yelb_yelb-ui_-1624a1d1-3699-43f0-8e1e-6bafd7fde791");
    let e = render_template::run(
        &services,
        RenderInput {
            deploy: deploy(),
            execution,
        },
    )
    .await
    .expect_err("another service's execution must be refused");
    assert_eq!(e.error_type, ErrorName::InvalidInput, "{e:?}");
    assert!(
        e.message.contains("`yelb-ui`") && e.message.contains("`yelb-appserver`"),
        "{}",
        e.message
    );
    // no lock taken, nothing written at all
    assert!(services.store.lock(&svc()).await.unwrap().is_none());
    assert!(objects.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn another_namespace_is_refused_too() {
    let (services, objects) = services().await;
    let e = render_template::run(
        &services,
        RenderInput {
            deploy: deploy(),
            execution: arn("other_yelb-appserver_-1"),
        },
    )
    .await
    .expect_err("another namespace's execution must be refused");
    assert_eq!(e.error_type, ErrorName::InvalidInput);
    assert!(e.message.contains("namespace `other`"), "{}", e.message);
    assert!(objects.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn the_services_own_execution_and_an_unprefixed_one_take_the_lock() {
    for name in [
        "yelb_yelb-appserver_-1624a1d1-3699-43f0-8e1e-6bafd7fde791",
        "yelb-appserver-20260101T000000Z",
    ] {
        let (services, _objects) = services().await;
        let task = render_template::run(
            &services,
            RenderInput {
                deploy: deploy(),
                execution: arn(name),
            },
        )
        .await
        .unwrap();
        assert_eq!(task.deployment.canary_version, 1, "{name}");
        let lock = services.store.lock(&svc()).await.unwrap().unwrap();
        assert_eq!(lock.execution, arn(name));
    }
}
