//! Simulated traffic: requests split by route weights over time, per version, with
//! errors from bad versions and unready Deployments.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use canary_core::provider::Target;
use canary_core::provider::appmesh::APP_MESH;
use canary_core::provider::gateway_api::GATEWAY_API;
use canary_sim::{MetricsQuery, SimCluster};

fn targets(weights: &[(&str, u8)]) -> Vec<Target> {
    weights.iter().map(|(n, w)| Target::new(*n, *w)).collect()
}

fn virtual_router(weights: &[(&str, u8)]) -> serde_json::Value {
    APP_MESH.minimal_route("cart", "shop", &targets(weights), 80)
}

fn query(sim: &SimCluster, controller: Option<&str>, start: i64, end: i64) -> (Vec<f64>, Vec<f64>) {
    let m = sim.metrics(&MetricsQuery {
        namespace: "shop".into(),
        service: "cart".into(),
        controller: controller.map(str::to_string),
        start_millis: start,
        end_millis: end,
        period_secs: 60,
    });
    (m.errors, m.successes)
}

#[tokio::test]
async fn traffic_splits_by_weight_and_follows_a_weight_change() {
    let (sim, server, clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    for (name, image) in [("cart-1", "cart:1"), ("cart-2", "cart:2")] {
        common::apply(
            &client,
            "shop",
            "apps",
            "v1",
            "Deployment",
            "deployments",
            common::deployment(name, image, &[("app", "cart"), ("v", name)]),
        )
        .await;
    }
    sim.set_error_rate("cart:2", 0.5);
    sim.set_traffic("shop", "cart", 10.0);
    let t0 = common::T0;
    common::apply(
        &client,
        "shop",
        "appmesh.k8s.aws",
        "v1beta2",
        "VirtualRouter",
        "virtualrouters",
        virtual_router(&[("cart-1", 90), ("cart-2", 10)]),
    )
    .await;

    clock.set(t0 + 120_000);
    common::apply(
        &client,
        "shop",
        "appmesh.k8s.aws",
        "v1beta2",
        "VirtualRouter",
        "virtualrouters",
        virtual_router(&[("cart-1", 50), ("cart-2", 50)]),
    )
    .await;
    clock.set(t0 + 240_000);

    // 10 rps for 60 s per period: 600 requests, split 90/10 then 50/50.
    let (errors, successes) = query(&sim, Some("cart-2"), t0, t0 + 240_000);
    assert_eq!(errors, [30.0, 30.0, 150.0, 150.0]);
    assert_eq!(successes, [30.0, 30.0, 150.0, 150.0]);
    let (errors, successes) = query(&sim, Some("cart-1"), t0, t0 + 240_000);
    assert_eq!(errors, [0.0, 0.0, 0.0, 0.0]);
    assert_eq!(successes, [540.0, 540.0, 300.0, 300.0]);
    let (errors, successes) = query(&sim, None, t0, t0 + 240_000);
    assert_eq!(errors, [30.0, 30.0, 150.0, 150.0]);
    assert_eq!(successes, [570.0, 570.0, 450.0, 450.0]);

    let history = sim.weight_history("shop");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].at_millis, t0 + 120_000);
    assert_eq!(
        history[1].weights,
        [("cart-1".to_string(), 50), ("cart-2".to_string(), 50)]
    );
}

#[tokio::test]
async fn a_version_without_traffic_reports_no_datapoints_and_an_unready_one_only_errors() {
    let (sim, server, clock) = common::start_manual(Duration::from_secs(30)).await;
    let client = common::client(&server, "default").await;
    let t0 = common::T0;
    common::apply(
        &client,
        "shop",
        "apps",
        "v1",
        "Deployment",
        "deployments",
        common::deployment("cart-1", "cart:1", &[("app", "cart")]),
    )
    .await;
    sim.set_traffic("shop", "cart", 1.0);
    common::apply(
        &client,
        "shop",
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
        "httproutes",
        GATEWAY_API.minimal_route(
            "cart",
            "shop",
            &targets(&[("cart-1", 100), ("cart-2", 0)]),
            80,
        ),
    )
    .await;
    clock.set(t0 + 120_000);
    // cart-1 is not ready for its first 30 s: those 30 requests are errors (503).
    let (errors, successes) = query(&sim, Some("cart-1"), t0, t0 + 120_000);
    assert_eq!(errors, [30.0, 0.0]);
    assert_eq!(successes, [30.0, 60.0]);
    // cart-2 has weight 0: no datapoints at all.
    let (errors, successes) = query(&sim, Some("cart-2"), t0, t0 + 120_000);
    assert!(errors.is_empty() && successes.is_empty());
    // Before any traffic was set there is nothing either.
    let (errors, _) = query(&sim, None, t0 - 120_000, t0);
    assert!(errors.is_empty());
}
