//! The original four Yelb microservices keep working: their deploy.json, prepared the
//! way `canary prepare` prepares it, validates; their templates render for a first
//! deployment and for a canary at several weights, App Mesh objects pass the published
//! CRD schemas, and Deployments and Services deserialize into the Kubernetes API types.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_core::provider::appmesh::APP_MESH;
use canary_core::render::{RenderParams, render};
use canary_core::spec::DEFAULT_METRIC_NAMESPACE;
use canary_core::{DeploySpec, Scope, labels, schedule};
use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use serde_json::Value;

fn spec(service: &str) -> DeploySpec {
    DeploySpec::parse(&seed_doc(service), None).unwrap_or_else(|e| panic!("{service}: {e}"))
}

#[test]
fn every_seed_deploy_json_validates_with_its_original_meaning() {
    for service in SEED_SERVICES {
        let s = spec(service);
        assert_eq!(s.cluster_name, "blogpost");
        assert_eq!(s.kubernetes_namespace, "yelb");
        assert_eq!(s.microservice_name, service);
        assert_eq!(s.failure_threshold_time, 300);
        assert_eq!(s.health.metric_namespace, DEFAULT_METRIC_NAMESPACE);
        assert_eq!(s.health.error_metric, format!("5xx-{service}"));
        assert!(s.template.contains("${CANARY_ROUTES}"));
    }
    let app = spec("yelb-appserver");
    assert_eq!(app.percentage_step, Some(10));
    assert_eq!(app.failure_threshold_value, 0.0);
    assert_eq!(
        schedule::schedule(&app, false),
        vec![10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    );
    assert_eq!(
        schedule::schedule(&spec("yelb-ui"), false),
        vec![25, 50, 75, 100]
    );
    assert_eq!(schedule::schedule(&app, true), vec![100]);
}

#[test]
fn seed_defaults_apply_when_the_optional_fields_are_missing() {
    let mut doc = seed_doc("yelb-db");
    doc.as_object_mut()
        .unwrap()
        .remove("failure_threshold_value");
    doc.as_object_mut()
        .unwrap()
        .remove("failure_threshold_time");
    let s = DeploySpec::parse(&doc, None).unwrap();
    assert_eq!(s.failure_threshold_value, 0.0);
    assert_eq!(s.failure_threshold_time, 600);
}

fn check_objects(service: &str, rendered: &canary_core::Rendered, version: u32) {
    for o in &rendered.objects {
        let v = &o.value;
        assert_eq!(v["metadata"]["namespace"], "yelb");
        assert_eq!(v["metadata"]["labels"][labels::MANAGED_BY], labels::MANAGER);
        assert_eq!(v["metadata"]["labels"][labels::SERVICE], service);
        match o.scope {
            Scope::Version => {
                assert_eq!(
                    v["metadata"]["labels"][labels::VERSION],
                    version.to_string()
                );
                assert_eq!(o.name(), format!("{service}-{version}"));
            }
            Scope::Shared => assert!(v["metadata"]["labels"].get(labels::VERSION).is_none()),
        }
        match o.kind() {
            "Deployment" => {
                let d: Deployment = serde_json::from_value(v.clone()).unwrap();
                let spec = d.spec.unwrap();
                let pod = spec.template.spec.unwrap();
                assert_eq!(
                    pod.containers[0].image.as_deref(),
                    Some(rendered_image(service).as_str())
                );
                assert_eq!(
                    spec.selector.match_labels.unwrap()["version"],
                    version.to_string()
                );
            }
            "Service" => {
                let _: Service = serde_json::from_value(v.clone()).unwrap();
            }
            _ => validate_against_crd(v),
        }
    }
}

fn rendered_image(service: &str) -> String {
    format!("123456789012.dkr.ecr.us-west-2.amazonaws.com/{service}:build-7")
}

fn weights(rendered: &canary_core::Rendered) -> Vec<(String, u64)> {
    let route = &rendered.route_object().unwrap().value;
    let mut out = Vec::new();
    for list in APP_MESH.read(route).unwrap() {
        for t in list {
            out.push((t.name, u64::from(t.weight)));
        }
    }
    out
}

#[test]
fn seed_templates_render_a_first_deployment_at_full_weight() {
    for service in SEED_SERVICES {
        let r = render(
            &spec(service),
            &RenderParams {
                version: 1,
                stable_version: None,
                canary_weight: 100,
            },
        )
        .unwrap();
        assert_eq!(r.provider, APP_MESH);
        assert_eq!(r.route.kind, "VirtualRouter");
        assert_eq!(r.route.name, service);
        assert_eq!(r.objects.len(), 6, "{service}");
        check_objects(service, &r, 1);
        assert_eq!(weights(&r), vec![(format!("{service}-1"), 100)]);
        let scopes: Vec<(&str, Scope)> = r.objects.iter().map(|o| (o.kind(), o.scope)).collect();
        assert_eq!(
            scopes,
            vec![
                ("VirtualNode", Scope::Version),
                ("VirtualRouter", Scope::Shared),
                ("VirtualService", Scope::Shared),
                ("Service", Scope::Version),
                ("Deployment", Scope::Version),
                ("Service", Scope::Shared),
            ],
            "{service}"
        );
    }
}

#[test]
fn seed_templates_render_a_canary_at_every_weight_asked() {
    for service in SEED_SERVICES {
        let s = spec(service);
        for w in [0u8, 10, 25, 50, 75, 99, 100] {
            let r = render(
                &s,
                &RenderParams {
                    version: 8,
                    stable_version: Some(7),
                    canary_weight: w,
                },
            )
            .unwrap();
            check_objects(service, &r, 8);
            assert_eq!(
                weights(&r),
                vec![
                    (format!("{service}-7"), u64::from(100 - w)),
                    (format!("{service}-8"), u64::from(w))
                ],
                "{service} at {w}"
            );
        }
    }
}

#[test]
fn the_yaml_output_parses_back_to_the_same_objects() {
    let r = render(
        &spec("yelb-ui"),
        &RenderParams {
            version: 3,
            stable_version: Some(2),
            canary_weight: 25,
        },
    )
    .unwrap();
    let back: Vec<Value> = serde_saphyr::from_multiple(&r.to_yaml()).unwrap();
    assert_eq!(
        back,
        r.objects
            .iter()
            .map(|o| o.value.clone())
            .collect::<Vec<_>>()
    );
}
