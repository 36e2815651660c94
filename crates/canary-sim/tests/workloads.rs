//! Deployments become ready after the configured delay on the simulator's clock, or
//! never when an image is marked bad, with the reason on their Pods.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use canary_core::clock::Clock;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};

fn is_ready(d: &Deployment) -> bool {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    status.observed_generation == d.metadata.generation
        && status.updated_replicas.unwrap_or(0) == desired
        && status.available_replicas.unwrap_or(0) == desired
        && status.ready_replicas.unwrap_or(0) == desired
}

#[tokio::test]
async fn a_deployment_becomes_ready_after_the_delay_on_a_manual_clock() {
    let (_sim, server, clock) = common::start_manual(Duration::from_secs(5)).await;
    let client = common::client(&server, "default").await;
    let api: Api<Deployment> = Api::namespaced(client, "w");
    let manifest = common::deployment("web-1", "web:1", &[("app", "web"), ("version", "1")]);
    api.patch(
        "web-1",
        &PatchParams::apply("t").force(),
        &Patch::Apply(&manifest),
    )
    .await
    .unwrap();

    clock.set(common::T0 + 4_999);
    let d = api.get("web-1").await.unwrap();
    assert!(!is_ready(&d), "{:?}", d.status);
    let status = d.status.clone().unwrap();
    assert_eq!(status.unavailable_replicas, Some(2));
    let available = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(available.status, "False");

    clock.set(common::T0 + 5_000);
    let d = api.get("web-1").await.unwrap();
    assert!(is_ready(&d), "{:?}", d.status);
    let conditions = d.status.clone().unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    );

    // A spec change starts the delay again, under a new generation.
    let mut changed = manifest.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = serde_json::json!("web:2");
    let d = api
        .patch(
            "web-1",
            &PatchParams::apply("t").force(),
            &Patch::Apply(&changed),
        )
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(2));
    assert!(!is_ready(&d));
    clock.advance(5_000);
    let d = api.get("web-1").await.unwrap();
    assert!(is_ready(&d));
    assert_eq!(d.status.unwrap().observed_generation, Some(2));
}

#[tokio::test]
async fn a_deployment_with_a_bad_image_never_becomes_ready_and_its_pods_say_why() {
    let (sim, server, clock) = common::start_manual(Duration::from_secs(2)).await;
    let client = common::client(&server, "default").await;
    sim.mark_image_bad("web:broken", "ImagePullBackOff");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "w");
    let manifest = common::deployment("web-2", "web:broken", &[("app", "web"), ("version", "2")]);
    api.patch(
        "web-2",
        &PatchParams::apply("t").force(),
        &Patch::Apply(&manifest),
    )
    .await
    .unwrap();

    clock.advance(3_600_000);
    let d = api.get("web-2").await.unwrap();
    assert!(!is_ready(&d));
    let conditions = d.status.unwrap().conditions.unwrap();
    let progressing = conditions
        .iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (progressing.status.as_str(), progressing.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );

    let pods: Api<Pod> = Api::namespaced(client, "w");
    let list = pods
        .list(&ListParams::default().labels("app=web,version=2"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 2);
    for pod in &list.items {
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let waiting = status.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap();
        assert_eq!(waiting.reason.as_deref(), Some("ImagePullBackOff"));
        assert!(waiting.message.as_deref().unwrap().contains("web:broken"));
    }
    // Other versions' pods are not selected.
    assert!(
        pods.list(&ListParams::default().labels("app=web,version=1"))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Deleting the Deployment removes its pods.
    api.delete("web-2", &Default::default()).await.unwrap();
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_ready_deployment_has_running_ready_pods() {
    let (_sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "w");
    let manifest = common::deployment("web-1", "web:1", &[("app", "web")]);
    let d = api
        .patch(
            "web-1",
            &PatchParams::apply("t").force(),
            &Patch::Apply(&manifest),
        )
        .await
        .unwrap();
    assert!(
        is_ready(&d),
        "ready at once with a zero delay: {:?}",
        d.status
    );
    let pods: Api<Pod> = Api::namespaced(client, "w");
    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 2);
    for pod in list.items {
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(status.container_statuses.unwrap()[0].ready);
    }
}

#[tokio::test]
async fn a_watch_sees_a_deployment_become_ready_and_go_away() {
    let (_sim, server, clock) = common::start_manual(Duration::from_secs(5)).await;
    let client = common::client(&server, "default").await;
    let api: Api<Deployment> = Api::namespaced(client, "w");
    let manifest = common::deployment("web-1", "web:1", &[("app", "web")]);
    api.patch(
        "web-1",
        &PatchParams::apply("t").force(),
        &Patch::Apply(&manifest),
    )
    .await
    .unwrap();
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let params = WatchParams::default()
        .fields("metadata.name=web-1")
        .timeout(20);
    let mut events = api.watch(&params, &rv).await.unwrap().boxed();

    clock.set(common::T0 + 5_000);
    let ready = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = events.next().await {
            if let WatchEvent::Modified(d) = event.unwrap()
                && is_ready(&d)
            {
                return d;
            }
        }
        panic!("the watch ended before the Deployment was ready");
    })
    .await
    .expect("a MODIFIED event with the ready Deployment");
    assert_eq!(ready.metadata.name.as_deref(), Some("web-1"));

    api.delete("web-1", &Default::default()).await.unwrap();
    let deleted = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = events.next().await {
            if let WatchEvent::Deleted(d) = event.unwrap() {
                return d;
            }
        }
        panic!("the watch ended before the deletion");
    })
    .await
    .expect("a DELETED event");
    assert_eq!(deleted.metadata.name.as_deref(), Some("web-1"));
}
