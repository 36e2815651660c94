//! Bad deploy.json files: every problem is reported at once, each naming the field and
//! quoting the value, before anything touches a cluster.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_core::{DeploySpec, NoDataPolicy};
use common::*;
use serde_json::{Value, json};

fn errors(doc: &Value) -> Vec<String> {
    match DeploySpec::parse(doc, None) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn with(service: &str, patch: Value) -> Value {
    let mut doc = seed_doc(service);
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            doc.as_object_mut().unwrap().remove(k);
        } else {
            doc[k] = v.clone();
        }
    }
    doc
}

/// (patch, field the error must name, words the message must contain)
fn corpus() -> Vec<(Value, &'static str, &'static str)> {
    vec![
        (
            json!({"percentge_step": 10}),
            "percentge_step",
            "did you mean `percentage_step`",
        ),
        (
            json!({"wait_tme": 10}),
            "wait_tme",
            "did you mean `wait_time`",
        ),
        (
            json!({"percentage_step": 0}),
            "percentage_step",
            "between 1 and 100",
        ),
        (
            json!({"percentage_step": 101}),
            "percentage_step",
            "between 1 and 100",
        ),
        (
            json!({"percentage_step": "10"}),
            "percentage_step",
            "must be a whole number",
        ),
        (
            json!({"percentage_step": 12.5}),
            "percentage_step",
            "whole number",
        ),
        (json!({"wait_time": -5}), "wait_time", "between 0 and 86400"),
        (
            json!({"wait_time": 10_000_000}),
            "wait_time",
            "between 0 and 86400",
        ),
        (
            json!({"failure_threshold_time": 0}),
            "failure_threshold_time",
            "between 1 and 86400",
        ),
        (
            json!({"failure_threshold_value": -1}),
            "failure_threshold_value",
            "between 0",
        ),
        (
            json!({"failure_threshold_value": 1.5}),
            "failure_threshold_value",
            "whole number",
        ),
        (
            json!({"microservice_name": "Yelb_App"}),
            "microservice_name",
            "RFC 1123",
        ),
        (
            json!({"microservice_name": "a".repeat(60)}),
            "microservice_name",
            "63 characters",
        ),
        (
            json!({"microservice_name": "9lives"}),
            "microservice_name",
            "start with a lowercase letter",
        ),
        (
            json!({"kubernetes_namespace": "-yelb"}),
            "kubernetes_namespace",
            "start and end",
        ),
        (
            json!({"kubernetes_namespace": "null"}),
            "kubernetes_namespace",
            "YAML keyword",
        ),
        (
            json!({"cluster_name": "blog post"}),
            "cluster_name",
            "EKS rule",
        ),
        (json!({"cluster_name": ""}), "cluster_name", "1 to 100"),
        (
            json!({"container_image": "repo/app:bad tag"}),
            "container_image",
            "whitespace",
        ),
        (
            json!({"container_image": "Repo/App"}),
            "container_image",
            "invalid repository path",
        ),
        (
            json!({"container_image": "app\n- evil"}),
            "container_image",
            "whitespace",
        ),
        (
            json!({"config_file": "not base64!"}),
            "config_file",
            "not base64",
        ),
        (
            json!({"config_file": b64_bytes(&[0xff, 0xfe, 0x00])}),
            "config_file",
            "UTF-8",
        ),
        (json!({"config_file": 42}), "config_file", "base64 string"),
        (json!({"config_file": null}), "config_file", "is required"),
        (json!({"cluster_name": null}), "cluster_name", "is required"),
        (
            json!({"percentage_step": null}),
            "percentage_step",
            "is required",
        ),
        (
            json!({"steps": [10, 50, 100]}),
            "percentage_step",
            "cannot be combined",
        ),
        (
            json!({"percentage_step": null, "steps": [50, 20, 100]}),
            "steps[1]",
            "greater than",
        ),
        (
            json!({"percentage_step": null, "steps": [10, 50]}),
            "steps",
            "end at 100",
        ),
        (
            json!({"percentage_step": null, "steps": [0, 100]}),
            "steps[0]",
            "between 1 and 100",
        ),
        (
            json!({"percentage_step": null, "steps": []}),
            "steps",
            "at least one",
        ),
        (
            json!({"percentage_step": null, "steps": "10,100"}),
            "steps",
            "list of weights",
        ),
        (
            json!({"traffic_provider": "istio"}),
            "traffic_provider",
            "`appmesh` or `gateway-api`",
        ),
        (
            json!({"traffic_provider": "app-mesh"}),
            "traffic_provider",
            "did you mean `appmesh`",
        ),
        (
            json!({"max_error_rate": -1}),
            "max_error_rate",
            "between 0 and 100",
        ),
        (
            json!({"max_error_rate": 150}),
            "max_error_rate",
            "between 0 and 100",
        ),
        (
            json!({"min_request_count": 10, "no_data": "hodl"}),
            "no_data",
            "did you mean `hold`",
        ),
        (
            json!({"no_data": "pass"}),
            "no_data",
            "needs `min_request_count`",
        ),
        (
            json!({"min_request_count": 0}),
            "min_request_count",
            "between 1",
        ),
        (json!({"max_holds": 3}), "max_holds", "only applies"),
        (
            json!({"check_interval": 120}),
            "check_interval",
            "not be longer than wait_time",
        ),
        (json!({"bake_time": -1}), "bake_time", "between 0"),
        (json!({"ready_timeout": 1}), "ready_timeout", "between 10"),
        (
            json!({"route_confirm_timeout": 91}),
            "route_confirm_timeout",
            "between 0 and 90 seconds (0: do not wait",
        ),
        (
            json!({"route_confirm_timeout": "60s"}),
            "route_confirm_timeout",
            "whole number",
        ),
        (
            json!({"route_confirm_timeout": -1}),
            "route_confirm_timeout",
            "between 0",
        ),
        (
            json!({"metric_dimensions": {"ClusterName": 5}}),
            "metric_dimensions.ClusterName",
            "must be a string",
        ),
        (
            json!({"metric_dimensions": ["a"]}),
            "metric_dimensions",
            "an object",
        ),
        (
            json!({"version_dimension": ""}),
            "version_dimension",
            "1 to 255",
        ),
    ]
}

fn b64_bytes(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn every_bad_value_gets_an_error_naming_the_field() {
    for (patch, field, words) in corpus() {
        let errs = errors(&with("yelb-appserver", patch.clone()));
        let hit = errs.iter().find(|e| e.starts_with(&format!("`{field}`")));
        let Some(hit) = hit else {
            panic!("{patch}: no error names `{field}`: {errs:?}")
        };
        assert!(hit.contains(words), "{patch}: `{hit}` lacks `{words}`");
    }
}

#[test]
fn errors_quote_the_bad_value() {
    let errs = errors(&with("yelb-ui", json!({"percentage_step": 250})));
    assert_eq!(
        errs,
        vec!["`percentage_step` = 250: must be between 1 and 100 (percent)"]
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let doc = with(
        "yelb-db",
        json!({"percentge_step": 5, "percentage_step": null, "wait_time": "60", "cluster_name": "a b", "no_data": "x"}),
    );
    let errs = errors(&doc);
    for field in [
        "percentge_step",
        "percentage_step",
        "wait_time",
        "cluster_name",
        "no_data",
    ] {
        assert!(
            errs.iter().any(|e| e.starts_with(&format!("`{field}`"))),
            "{field} missing from {errs:?}"
        );
    }
}

#[test]
fn a_document_that_is_not_an_object_is_refused() {
    assert!(DeploySpec::parse(&json!([1, 2]), None).is_err());
    assert!(
        DeploySpec::parse_str("{not json", &Default::default())
            .unwrap_err()
            .to_string()
            .contains("not valid JSON")
    );
}

#[test]
fn new_optional_fields_are_parsed_with_their_meaning() {
    let doc = with(
        "yelb-appserver",
        json!({
            "percentage_step": null, "steps": [5, 25, 50, 100], "traffic_provider": "appmesh",
            "check_interval": 15, "bake_time": 300, "ready_timeout": 120,
            "max_error_rate": 1.5, "min_request_count": 50, "no_data": "hold", "max_holds": 4,
            "metric_namespace": "Shop/Http", "error_metric_name": "errors", "success_metric_name": "ok",
            "metric_dimensions": {"ClusterName": "blogpost"}, "version_dimension": "pod_controller_name"
        }),
    );
    let s = DeploySpec::parse(&doc, None).unwrap();
    assert_eq!(s.steps, Some(vec![5, 25, 50, 100]));
    assert_eq!(s.check_interval(), 15);
    assert_eq!(s.bake_time(), 300);
    assert_eq!(s.ready_timeout, 120);
    assert_eq!(s.route_confirm_timeout, 60, "the default");
    assert_eq!(s.health.max_error_rate, Some(1.5));
    assert_eq!(s.health.no_data, NoDataPolicy::Hold);
    assert_eq!(s.health.max_holds, 4);
    assert_eq!(s.health.metric_namespace, "Shop/Http");
    assert_eq!(s.health.dimensions["ClusterName"], "blogpost");
    assert_eq!(
        s.health.version_dimension.as_deref(),
        Some("pod_controller_name")
    );
}

#[test]
fn a_template_file_replaces_config_file() {
    let mut doc = seed_doc("yelb-ui");
    doc.as_object_mut().unwrap().remove("config_file");
    let s = DeploySpec::parse(&doc, Some("kind: x")).unwrap();
    assert_eq!(s.template, "kind: x");
}

#[test]
fn config_file_wrapped_by_base64_at_76_columns_is_accepted() {
    let mut doc = seed_doc("yelb-ui");
    let flat = doc["config_file"].as_str().unwrap().to_owned();
    let wrapped: Vec<String> = flat
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    doc["config_file"] = json!(wrapped.join("\n"));
    assert!(DeploySpec::parse(&doc, None).is_ok());
}

#[test]
fn route_confirm_timeout_may_turn_the_wait_off() {
    for (given, want) in [(0, 0), (5, 5), (90, 90)] {
        let doc = with("yelb-appserver", json!({ "route_confirm_timeout": given }));
        let s = DeploySpec::parse(&doc, None).unwrap();
        assert_eq!(s.route_confirm_timeout, want);
    }
}
