//! The seed's four Yelb microservices, rendered by canary-core from their unchanged
//! deploy.json and templates, deployed on the simulated cluster through canary-kube: a
//! first deployment, a canary walked through its schedule with one write per step and
//! promoted, then a canary rolled back from the middle of its schedule.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use canary_core::render::{RenderParams, Rendered, render};
use canary_core::{DeploySpec, labels, schedule};
use canary_kube::router::router_for;
use canary_kube::{Readiness, Target};
use serde_json::Value;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SERVICES: [&str; 4] = ["redis-server", "yelb-appserver", "yelb-db", "yelb-ui"];

fn seed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/yelb")
}

fn spec(service: &str, version: u32) -> Result<DeploySpec, Box<dyn std::error::Error>> {
    let dir = seed_dir().join(service);
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("deploy.json"))?)?;
    let template = std::fs::read_to_string(dir.join("kubernetes_template.yml"))?;
    if let Some(map) = doc.as_object_mut() {
        map.insert(
            "container_image".into(),
            format!("registry.example/{service}:{version}").into(),
        );
    }
    DeploySpec::parse(&doc, Some(&template)).map_err(|e| format!("{service}: {e}").into())
}

fn rendered(
    service: &str,
    version: u32,
    stable: Option<u32>,
    weight: u8,
) -> Result<Rendered, Box<dyn std::error::Error>> {
    let s = spec(service, version)?;
    let params = RenderParams {
        version,
        stable_version: stable,
        canary_weight: weight,
    };
    render(&s, &params).map_err(|e| format!("{service}: {e}").into())
}

fn backends(service: &str, weights: &[(u32, u8)]) -> Vec<Target> {
    weights
        .iter()
        .map(|(v, w)| Target::new(labels::versioned_name(service, *v), *w))
        .collect()
}

#[tokio::test]
async fn the_four_seed_services_are_deployed_shifted_promoted_and_rolled_back() -> TestResult {
    assert!(
        seed_dir().is_dir(),
        "the Yelb fixtures are part of the repository: {} is missing",
        seed_dir().display()
    );
    let h = common::harness("yelb").await?;
    for service in SERVICES {
        let start = h.cluster.stats();
        // First deployment: version 1 takes all traffic.
        let v1 = rendered(service, 1, None, 100)?;
        h.cluster
            .apply(
                &v1.objects
                    .iter()
                    .map(|o| o.value.clone())
                    .collect::<Vec<_>>(),
            )
            .await?;
        h.let_deployments_become_ready();
        assert_eq!(
            h.cluster
                .readiness("yelb", &labels::versioned_name(service, 1))
                .await?,
            Readiness::Ready
        );
        let router = router_for(v1.provider, h.cluster.clone(), "yelb", Duration::ZERO);

        // Version 2 beside it at 0%, then every step of its schedule, then promotion.
        let canary_start = h.cluster.stats();
        let v2 = rendered(service, 2, Some(1), 0)?;
        h.cluster
            .apply(
                &v2.objects
                    .iter()
                    .map(|o| o.value.clone())
                    .collect::<Vec<_>>(),
            )
            .await?;
        h.let_deployments_become_ready();
        assert_eq!(
            h.cluster
                .readiness("yelb", &labels::versioned_name(service, 2))
                .await?,
            Readiness::Ready
        );
        assert_eq!(
            router.weights(&v2.route).await?,
            backends(service, &[(1, 100), (2, 0)])
        );
        let steps = schedule::schedule(&spec(service, 2)?, false);
        for w in &steps {
            h.sim.reset_requests();
            router
                .set_weights(&v2.route, &backends(service, &[(1, 100 - w), (2, *w)]))
                .await?;
            assert_eq!(h.sim.write_count(), 1, "{service} at {w}%");
        }
        router
            .set_weights(&v2.route, &backends(service, &[(2, 100)]))
            .await?;
        h.cluster
            .delete_version("yelb", service, 1, &v2.kinds())
            .await?;
        let canary = h.cluster.stats() - canary_start;
        for (kind, api) in [
            ("Deployment", "apps/v1"),
            ("Service", "v1"),
            ("VirtualNode", "appmesh.k8s.aws/v1beta2"),
        ] {
            assert!(
                h.sim
                    .get_object(api, kind, "yelb", &labels::versioned_name(service, 1))
                    .is_none(),
                "{service} {kind}"
            );
            assert!(
                h.sim
                    .get_object(api, kind, "yelb", &labels::versioned_name(service, 2))
                    .is_some(),
                "{service} {kind}"
            );
        }
        for (kind, api) in [
            ("VirtualRouter", "appmesh.k8s.aws/v1beta2"),
            ("VirtualService", "appmesh.k8s.aws/v1beta2"),
            ("Service", "v1"),
        ] {
            assert!(
                h.sim.get_object(api, kind, "yelb", service).is_some(),
                "{service}: shared {kind} remains"
            );
        }

        // Version 3: a canary rolled back from the middle of its schedule.
        let v3 = rendered(service, 3, Some(2), 0)?;
        h.cluster
            .apply(
                &v3.objects
                    .iter()
                    .map(|o| o.value.clone())
                    .collect::<Vec<_>>(),
            )
            .await?;
        let mid = steps[steps.len() / 2];
        router
            .set_weights(&v3.route, &backends(service, &[(2, 100 - mid), (3, mid)]))
            .await?;
        h.sim.reset_requests();
        router
            .set_weights(&v3.route, &backends(service, &[(2, 100)]))
            .await?;
        assert_eq!(
            h.sim.write_count(),
            1,
            "{service}: one write to roll the route back"
        );
        h.cluster
            .delete_version("yelb", service, 3, &v3.kinds())
            .await?;
        assert!(
            h.sim
                .get_object(
                    "apps/v1",
                    "Deployment",
                    "yelb",
                    &labels::versioned_name(service, 3)
                )
                .is_none()
        );
        assert_eq!(
            router.weights(&v3.route).await?,
            backends(service, &[(2, 100)])
        );
        assert_eq!(
            h.cluster
                .readiness("yelb", &labels::versioned_name(service, 2))
                .await?,
            Readiness::Ready
        );

        let all = h.cluster.stats() - start;
        println!(
            "{service}: canary deployment with {} steps {:?}: {} requests, {} writes (apply, readiness, shifts, promotion); \
             all three deployments: {} requests",
            steps.len(),
            steps,
            canary.requests,
            canary.writes,
            all.requests
        );
    }
    Ok(())
}
