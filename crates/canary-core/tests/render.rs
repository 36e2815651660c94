//! Rendering templates the project has not seen: both providers, every App Mesh route
//! kind, and templates that must be refused with the line of the problem.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_core::provider::Target;
use canary_core::provider::appmesh::APP_MESH;
use canary_core::provider::gateway_api::GATEWAY_API;
use canary_core::render::{RenderParams, render};
use canary_core::{DeploySpec, RenderError, Scope};
use common::*;
use serde_json::json;

fn spec_for(template: &str) -> DeploySpec {
    DeploySpec::parse(&doc_with_template(template, json!({})), None).unwrap()
}

fn canary(template: &str, weight: u8) -> Result<canary_core::Rendered, RenderError> {
    render(
        &spec_for(template),
        &RenderParams {
            version: 5,
            stable_version: Some(4),
            canary_weight: weight,
        },
    )
}

#[test]
fn every_app_mesh_route_kind_gets_its_weighted_targets() {
    for kind in ["httpRoute", "http2Route", "grpcRoute", "tcpRoute"] {
        let r = canary(&fixture(&format!("appmesh-{kind}.yml")), 30).unwrap();
        assert_eq!(r.provider, APP_MESH);
        let route = &r.route_object().unwrap().value;
        assert_eq!(
            APP_MESH.read(route).unwrap(),
            vec![vec![
                Target::new("checkout-4", 70),
                Target::new("checkout-5", 30)
            ]],
            "{kind}"
        );
        let text = route.to_string();
        assert!(text.contains(&format!(r#""{kind}":"#)), "{kind}: {text}");
        assert!(
            text.contains(r#"{"virtualNodeRef":{"name":"checkout-5"},"weight":30}"#),
            "{kind}: {text}"
        );
        for o in &r.objects {
            if o.api_version().starts_with("appmesh") {
                validate_against_crd(&o.value);
            }
        }
    }
}

#[test]
fn a_gateway_api_httproute_gets_backend_refs_with_the_service_port() {
    let r = canary(&fixture("gateway-httproute.yml"), 20).unwrap();
    assert_eq!(r.provider, GATEWAY_API);
    assert_eq!(r.backend_port, Some(8080));
    let route = &r.route_object().unwrap().value;
    assert_eq!(
        GATEWAY_API.read(route).unwrap(),
        vec![vec![
            Target::new("checkout-4", 80),
            Target::new("checkout-5", 20)
        ]]
    );
    let text = route.to_string();
    for t in [
        r#"{"name":"checkout-4","port":8080,"weight":80}"#,
        r#"{"name":"checkout-5","port":8080,"weight":20}"#,
    ] {
        assert!(text.contains(t), "{t} in {text}");
    }
    validate_against_crd(route);
}

#[test]
fn a_grpcroute_with_a_bare_and_a_bracketed_variable_gets_both_rules() {
    let r = canary(&fixture("gateway-grpcroute.yml"), 60).unwrap();
    let route = &r.route_object().unwrap().value;
    assert_eq!(route["kind"], "GRPCRoute");
    let lists = GATEWAY_API.read(route).unwrap();
    assert_eq!(lists.len(), 2);
    for list in lists {
        assert_eq!(list[1], Target::new("checkout-5", 60));
    }
    assert_eq!(
        route
            .to_string()
            .matches(r#"{"name":"checkout-5","port":50051,"weight":60}"#)
            .count(),
        2
    );
    validate_against_crd(route);
}

#[test]
fn the_template_decides_what_is_per_version() {
    let r = canary(&fixture("appmesh-httpRoute.yml"), 0).unwrap();
    let shared: Vec<&str> = r
        .objects
        .iter()
        .filter(|o| o.scope == Scope::Shared)
        .map(|o| o.kind())
        .collect();
    assert_eq!(shared, vec!["VirtualRouter", "VirtualService"]);
}

#[test]
fn an_explicit_provider_that_contradicts_the_route_object_is_refused() {
    let doc = doc_with_template(
        &fixture("gateway-httproute.yml"),
        json!({"traffic_provider": "appmesh"}),
    );
    let spec = DeploySpec::parse(&doc, None).unwrap();
    let err = render(
        &spec,
        &RenderParams {
            version: 1,
            stable_version: None,
            canary_weight: 100,
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("traffic_provider is `appmesh`"),
        "{err}"
    );
}

#[test]
fn an_unknown_variable_is_named_with_its_line() {
    let t = fixture("appmesh-httpRoute.yml").replace(
        "port: 9000\n        protocol: http\n  serviceDiscovery",
        "port: ${PORT}\n        protocol: http\n  serviceDiscovery",
    );
    let err = canary(&t, 10).unwrap_err();
    assert_eq!(
        err,
        RenderError::UnknownVariable {
            name: "PORT".into(),
            line: 13
        }
    );
    assert!(err.to_string().contains("`${PORT}`"));
}

#[test]
fn templates_without_a_route_or_with_two_are_refused() {
    let none = fixture("appmesh-httpRoute.yml").replace("[${CANARY_ROUTES}]", "[]");
    assert!(
        canary(&none, 10)
            .unwrap_err()
            .to_string()
            .contains("no document contains ${CANARY_ROUTES}")
    );
    let two = format!(
        "{}\n---\n{}",
        fixture("appmesh-httpRoute.yml"),
        fixture("gateway-httproute-other.yml")
    );
    assert!(
        canary(&two, 10)
            .unwrap_err()
            .to_string()
            .contains("appears in 2 documents")
    );
}

#[test]
fn a_route_object_of_an_unknown_kind_is_refused() {
    let t = fixture("appmesh-httpRoute.yml").replace("kind: VirtualRouter", "kind: VirtualGateway");
    let err = canary(&t, 10).unwrap_err().to_string();
    assert!(err.contains("`VirtualGateway`"), "{err}");
}

#[test]
fn an_object_in_another_namespace_is_refused() {
    let t = fixture("appmesh-httpRoute.yml").replacen(
        "namespace: ${KUBERNETES_NAMESPACE}",
        "namespace: kube-system",
        1,
    );
    let err = canary(&t, 10).unwrap_err().to_string();
    assert!(
        err.contains("kube-system") && err.contains("`shop`"),
        "{err}"
    );
}

#[test]
fn a_template_that_is_not_yaml_names_the_document_and_its_line() {
    let t =
        fixture("appmesh-httpRoute.yml").replace("kind: VirtualService", "kind: [VirtualService");
    let err = canary(&t, 10).unwrap_err();
    assert!(
        matches!(err, RenderError::Yaml { document: 3, .. }),
        "{err}"
    );
}

#[test]
fn a_template_without_a_versioned_deployment_is_refused() {
    let t = fixture("gateway-httproute.yml").replacen(
        "name: ${MICROSERVICE_NAME}-${CANARY_VERSION}",
        "name: ${MICROSERVICE_NAME}",
        1,
    );
    let err = canary(&t, 10).unwrap_err().to_string();
    assert!(err.contains("no Deployment named `checkout-5`"), "{err}");
}

#[test]
fn weights_other_than_a_full_first_deployment_need_a_stable_version() {
    let spec = spec_for(&fixture("gateway-httproute.yml"));
    let err = render(
        &spec,
        &RenderParams {
            version: 1,
            stable_version: None,
            canary_weight: 40,
        },
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::Params(_)));
}

#[test]
fn the_crd_schema_check_catches_an_invalid_object() {
    let r = canary(&fixture("appmesh-httpRoute.yml"), 30).unwrap();
    let mut route = r.route_object().unwrap().value.clone();
    let no_ports = Default::default();
    let too_heavy = [
        Target::new("checkout-4", 250),
        Target::new("checkout-5", 30),
    ];
    route = APP_MESH.rewrite(&route, &too_heavy, &no_ports).unwrap();
    assert!(!crd_errors(&route).is_empty());
    route = APP_MESH.rewrite(&route, &[], &no_ports).unwrap();
    assert!(!crd_errors(&route).is_empty());
}
