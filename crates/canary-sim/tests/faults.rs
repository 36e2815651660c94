//! Injected faults and request accounting, seen through a real client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use canary_sim::{Fault, FaultAction};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name } }),
    )
    .unwrap()
}

#[tokio::test]
async fn the_nth_matching_request_answers_500_and_the_next_one_succeeds() {
    let (sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "f");
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    sim.inject_fault(
        Fault::new(Some("GET"), "/configmaps/a", FaultAction::InternalError).on_nth(2),
    );
    api.get("a").await.unwrap();
    let err = api.get("a").await.unwrap_err();
    match err {
        kube::Error::Api(status) => assert_eq!(
            (status.code, status.reason.as_str()),
            (500, "InternalError")
        ),
        other => panic!("expected a 500 Status, got {other:?}"),
    }
    api.get("a").await.unwrap();
    let faulted: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.fault.is_some())
        .collect();
    assert_eq!(faulted.len(), 1);
    assert_eq!(faulted[0].fault, Some(FaultAction::InternalError));
}

#[tokio::test]
async fn a_conflict_fault_answers_409_without_touching_the_object() {
    let (sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "f");
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    sim.inject_fault(
        Fault::new(Some("PATCH"), "/configmaps/a", FaultAction::Conflict).and_following(1),
    );
    let patch = Patch::Merge(json!({ "data": { "k": "v" } }));
    for _ in 0..2 {
        match api
            .patch("a", &PatchParams::default(), &patch)
            .await
            .unwrap_err()
        {
            kube::Error::Api(status) => {
                assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"))
            }
            other => panic!("expected a 409 Status, got {other:?}"),
        }
    }
    assert!(api.get("a").await.unwrap().data.is_none());
    api.patch("a", &PatchParams::default(), &patch)
        .await
        .unwrap();
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["k"], "v");
}

/// One raw HTTP/1.1 exchange, to see exactly what the server answers.
async fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn a_throttling_fault_answers_429_with_retry_after_which_kube_rs_honours() {
    let (sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    sim.inject_fault(Fault::new(
        None,
        "/configmaps",
        FaultAction::TooManyRequests {
            retry_after_secs: 1,
        },
    ));
    let response = raw_get(server.addr, "/api/v1/namespaces/f/configmaps").await;
    assert!(response.starts_with("HTTP/1.1 429"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    assert!(
        response.contains(r#""reason":"TooManyRequests""#),
        "{response}"
    );

    // kube-rs retries a 429 after Retry-After by itself: the second attempt succeeds.
    sim.inject_fault(Fault::new(
        None,
        "/configmaps",
        FaultAction::TooManyRequests {
            retry_after_secs: 1,
        },
    ));
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "f");
    let started = Instant::now();
    assert!(
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    let throttled = sim.requests().iter().filter(|r| r.fault.is_some()).count();
    assert_eq!(throttled, 2);
}

#[tokio::test]
async fn a_hanging_request_times_the_client_out_while_other_requests_are_answered() {
    let (sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "f");
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    sim.inject_fault(Fault::new(Some("GET"), "/configmaps/a", FaultAction::Hang));

    let started = Instant::now();
    let hanging = tokio::spawn({
        let api = api.clone();
        async move { tokio::time::timeout(Duration::from_millis(800), api.get("a")).await }
    });
    // Meanwhile the server answers others.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other: Api<ConfigMap> = Api::namespaced(client, "f");
    assert!(other.get_opt("b").await.unwrap().is_none());
    assert!(
        hanging.await.unwrap().is_err(),
        "the hanging request should time out"
    );
    assert!(started.elapsed() >= Duration::from_millis(800));
    api.get("a").await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn every_request_is_recorded_and_writes_are_counted() {
    let (sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "f");
    sim.reset_requests();
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.get("a").await.unwrap();
    api.list(&Default::default()).await.unwrap();
    api.patch(
        "a",
        &PatchParams::apply("t").force(),
        &Patch::Apply(json!({ "apiVersion": "v1", "kind": "ConfigMap", "data": { "x": "1" } })),
    )
    .await
    .unwrap();
    api.delete("a", &Default::default()).await.unwrap();
    let methods: Vec<String> = sim.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["POST", "GET", "GET", "PATCH", "DELETE"]);
    assert_eq!(sim.write_count(), 3);
    let patch = &sim.requests()[3];
    assert_eq!(patch.path, "/api/v1/namespaces/f/configmaps/a");
    assert!(patch.query.contains("fieldManager=t"), "{}", patch.query);
    sim.reset_requests();
    assert!(sim.requests().is_empty());
    assert_eq!(sim.write_count(), 0);
}
