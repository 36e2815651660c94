//! Properties: any string value either renders safely (the YAML structure is the
//! template's own) or is rejected; weights always sum to 100; schedules always end at 100.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_core::render::{RenderParams, render};
use canary_core::{DeploySpec, schedule};
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// The shape of a value: keys and list lengths, not scalars.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(shape).collect()),
        Value::String(_) => json!("s"),
        other => other.clone(),
    }
}

fn baseline() -> Vec<Value> {
    let spec = DeploySpec::parse(&seed_doc("yelb-appserver"), None).unwrap();
    let r = render(
        &spec,
        &RenderParams {
            version: 2,
            stable_version: Some(1),
            canary_weight: 10,
        },
    )
    .unwrap();
    r.objects.iter().map(|o| shape(&o.value)).collect()
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9:/@._ #'\"{}\\[\\],&*!|>%-]{0,40}",
        Just("app\nmetadata: {name: x}".to_string()),
        Just("a: b".to_string()),
        Just("x\n---\nkind: Secret".to_string()),
        Just("{a: 1}".to_string()),
        Just("*alias".to_string()),
        Just("'quoted'".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn any_string_value_renders_with_the_template_structure_or_is_rejected(
        field in prop_oneof![Just("kubernetes_namespace"), Just("microservice_name"), Just("container_image"), Just("cluster_name")],
        value in hostile(),
    ) {
        let mut doc = seed_doc("yelb-appserver");
        doc[field] = json!(value);
        if let Ok(spec) = DeploySpec::parse(&doc, None) {
            // The other fields are the seed's, so only the service name can change names.
            let r = render(&spec, &RenderParams { version: 2, stable_version: Some(1), canary_weight: 10 });
            let r = r.map_err(|e| TestCaseError::fail(format!("{field}={value:?} validated but did not render: {e}")))?;
            let shapes: Vec<Value> = r.objects.iter().map(|o| shape(&o.value)).collect();
            prop_assert_eq!(shapes, baseline(), "{}={:?} changed the structure", field, value);
        }
    }

    #[test]
    fn weights_always_sum_to_100(stable in 1u32..5000, weight in 0u8..=100, provider in 0..2) {
        let template = if provider == 0 { fixture("appmesh-grpcRoute.yml") } else { fixture("gateway-httproute.yml") };
        let spec = DeploySpec::parse(&doc_with_template(&template, json!({})), None).unwrap();
        let r = render(&spec, &RenderParams { version: stable + 1, stable_version: Some(stable), canary_weight: weight }).unwrap();
        let lists = r.provider.read(&r.route_object().unwrap().value).unwrap();
        prop_assert!(!lists.is_empty());
        for list in lists {
            let sum: u64 = list.iter().map(|t| u64::from(t.weight)).sum();
            prop_assert_eq!(sum, 100);
        }
    }

    #[test]
    fn any_valid_steps_list_is_the_schedule(mut raw in proptest::collection::btree_set(1u8..100, 0..12)) {
        raw.insert(100);
        let steps: Vec<u8> = raw.into_iter().collect();
        let mut doc = seed_doc("yelb-ui");
        doc.as_object_mut().unwrap().remove("percentage_step");
        doc["steps"] = json!(steps);
        let spec = DeploySpec::parse(&doc, None).unwrap();
        prop_assert_eq!(schedule::schedule(&spec, false), steps);
        prop_assert_eq!(schedule::schedule(&spec, true), vec![100]);
    }

    #[test]
    fn arbitrary_json_never_panics_the_parser(doc in arbitrary_json()) {
        let _ = DeploySpec::parse(&doc, None);
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    let fields = prop_oneof![
        Just("cluster_name".to_string()),
        Just("percentage_step".to_string()),
        Just("steps".to_string()),
        Just("wait_time".to_string()),
        Just("config_file".to_string()),
        Just("metric_dimensions".to_string()),
        Just("no_data".to_string()),
        ".{0,8}",
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(fields.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
