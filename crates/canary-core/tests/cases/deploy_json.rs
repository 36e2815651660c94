//! Generated deploy.json documents and what validation must do with them: a valid
//! document parses to the values it holds and round-trips through its text; a document
//! with one field changed (to any JSON value, or under a near-miss name) either parses or
//! fails with errors that name that field (or the field a cross-field rule ties it to),
//! each quoting its field. Never a panic.
//!
//! Shared by canary-core's property tests (`tests/properties_deploy_json.rs`) and the
//! `canary-fuzz` runner, which includes this file by path.

use std::collections::BTreeSet;

use base64::Engine as _;
use canary_core::DeploySpec;
use canary_core::spec::FIELDS;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};

/// A template that renders, so that a valid document is valid whole.
const TEMPLATE: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${MICROSERVICE_NAME}-${CANARY_VERSION}\n  namespace: ${KUBERNETES_NAMESPACE}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ${CONTAINER_IMAGE}\n---\napiVersion: appmesh.k8s.aws/v1beta2\nkind: VirtualRouter\nmetadata:\n  name: ${MICROSERVICE_NAME}\n  namespace: ${KUBERNETES_NAMESPACE}\nspec:\n  routes:\n    - name: route\n      httpRoute:\n        action:\n          weightedTargets: ${CANARY_ROUTES}\n";

/// One generated case: a valid document, and at most one change to it.
#[derive(Debug, Clone)]
pub struct Case {
    /// The valid document.
    pub base: Value,
    /// What was changed, if anything.
    pub change: Option<Change>,
}

/// One change to a valid document.
#[derive(Debug, Clone)]
pub enum Change {
    /// A field (known, near-miss or arbitrary) set to a value.
    Set(String, Value),
    /// A field removed.
    Remove(String),
}

/// Words for names: generating names from a regular expression and filtering them
/// through the name rules costs more than the property itself in a debug build.
const WORDS: &[&str] = &[
    "web", "api", "db", "cart", "shop", "yelb", "ui", "redis", "pay", "a", "b9", "svc", "x",
];
const SUFFIXES: &[&str] = &["", "-1", "-v2", "-blue", "-x9z", "0", "-a-b"];

fn name_like() -> impl Strategy<Value = String> {
    (
        prop::sample::select(WORDS),
        prop::sample::select(SUFFIXES),
        prop::sample::select(WORDS),
    )
        .prop_map(|(a, s, b)| format!("{a}{s}{b}"))
}

/// Any string of up to `max` characters, cheaper to generate than `any::<String>()`.
pub fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

/// A valid deploy.json: random names, schedule and timings inside their ranges.
pub fn valid_doc() -> impl Strategy<Value = Value> {
    let names = (
        (
            name_like(),
            prop::sample::select(&["", "_EU", "-2", "_prod"][..]),
        )
            .prop_map(|(n, s)| format!("{n}{s}")),
        name_like(),
        name_like(),
        (
            prop::sample::select(
                &[
                    "",
                    "registry.example.com/",
                    "localhost:5000/",
                    "123456789012.dkr.ecr.us-west-2.amazonaws.com/",
                ][..],
            ),
            name_like(),
            prop::sample::select(&["", "/app", "/team/app"][..]),
            prop::sample::select(&["", ":1", ":build-7", ":v1.2.3", ":latest", ":A_b.9"][..]),
        )
            .prop_map(|(host, repo, path, tag)| format!("{host}{repo}{path}{tag}")),
    );
    let schedule = prop_oneof![
        (10u64..=100).prop_map(|p| json!({ "percentage_step": p })),
        proptest::collection::btree_set(1u64..100, 0..8).prop_map(|set| {
            let mut steps: Vec<u64> = set.into_iter().collect();
            steps.push(100);
            json!({ "steps": steps })
        }),
    ];
    // Timings that keep every schedule within one execution's history (at most ten
    // steps of at most ten checks).
    let timings = (
        10u64..=600,
        prop::option::of(0u64..=1_000_000),
        prop::option::of(1u64..=3_600),
        prop::option::of(10u64..=3_600),
        prop::option::of(0u64..=90),
        prop::option::of(prop_oneof![Just("fail"), Just("pass"), Just("hold")]),
    );
    (names, schedule, timings).prop_map(
        |(
            (cluster, ns, service, image),
            schedule,
            (wait, threshold, window, ready, confirm, no_data),
        )| {
            let mut doc = json!({
                "cluster_name": cluster,
                "kubernetes_namespace": ns,
                "microservice_name": service,
                "wait_time": wait,
                "container_image": image,
                "config_file": base64::engine::general_purpose::STANDARD.encode(TEMPLATE),
            });
            let m = doc.as_object_mut().map(|m| m as &mut Map<String, Value>);
            if let Some(m) = m {
                if let Some(s) = schedule.as_object() {
                    m.extend(s.clone());
                }
                let optional = [
                    ("failure_threshold_value", threshold.map(Value::from)),
                    ("failure_threshold_time", window.map(Value::from)),
                    ("ready_timeout", ready.map(Value::from)),
                    ("route_confirm_timeout", confirm.map(Value::from)),
                    ("no_data", no_data.map(Value::from)),
                    // `no_data` says what too few requests mean: it needs the count.
                    ("min_request_count", no_data.map(|_| Value::from(20))),
                ];
                for (k, v) in optional {
                    if let Some(v) = v {
                        m.insert(k.to_owned(), v);
                    }
                }
            }
            doc
        },
    )
}

/// A field name: a known one, a near miss of one (a letter dropped, doubled or swapped,
/// a case or separator change, a plural), or anything.
pub fn field_name() -> impl Strategy<Value = String> {
    let known = prop::sample::select(FIELDS.to_vec()).prop_map(str::to_owned);
    let near_miss = (
        prop::sample::select(FIELDS.to_vec()),
        0usize..6,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(f, how, at)| {
            let chars: Vec<char> = f.chars().collect();
            let i = at.index(chars.len());
            let mut out = chars.clone();
            match how {
                0 => {
                    out.remove(i);
                }
                1 => out.insert(i, chars[i]),
                2 if i + 1 < chars.len() => out.swap(i, i + 1),
                3 => return f.to_ascii_uppercase(),
                4 => return f.replace('_', "-"),
                _ => return format!("{f}s"),
            }
            out.into_iter().collect()
        });
    prop_oneof![
        4 => known,
        4 => near_miss,
        1 => any_text(16),
    ]
}

/// Any JSON value, biased towards the edges of every field's type: numbers at and past
/// the ranges, fractions, negative zero, huge integers, strings with YAML and shell
/// characters, nested lists and objects.
pub fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(10),
            Just(60),
            Just(90),
            Just(91),
            Just(100),
            Just(101),
            Just(86_400),
            Just(86_401)
        ]
        .prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![
            Just(0.5f64),
            Just(-0.0),
            Just(1e12),
            Just(1e13),
            Just(99.999)
        ]
        .prop_map(|f| json!(f)),
        any_text(24).prop_map(Value::String),
        "[a-z0-9:/@._ #'\"{}\\[\\],&*!|>%\n-]{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("fail"),
            Just("hold"),
            Just("pass"),
            Just("appmesh"),
            Just("gateway_api"),
            Just("cloudwatch"),
            Just("prometheus"),
            Just("istio"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    field_name(),
                    Just("source".to_owned()),
                    Just("queries".to_owned()),
                    Just("compare_to_stable".to_owned()),
                    Just("latency".to_owned())
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid document with one known field set to any value.
pub fn known_field_case() -> impl Strategy<Value = Case> {
    let change = (prop::sample::select(FIELDS.to_vec()), any_value())
        .prop_map(|(k, v)| Some(Change::Set(k.to_owned(), v)));
    (valid_doc(), change).prop_map(|(base, change)| Case { base, change })
}

/// A valid document unchanged, with a field under a near-miss or arbitrary name, or with
/// a field removed.
pub fn other_case() -> impl Strategy<Value = Case> {
    let change = prop_oneof![
        2 => Just(None),
        5 => (field_name(), any_value()).prop_map(|(k, v)| Some(Change::Set(k, v))),
        3 => prop::sample::select(FIELDS.to_vec()).prop_map(|f| Some(Change::Remove(f.to_owned()))),
    ];
    (valid_doc(), change).prop_map(|(base, change)| Case { base, change })
}

/// The fields a rule ties to `field`: a problem with `field` may be reported on them.
fn related(field: &str) -> &'static [&'static str] {
    match field {
        // `steps` and `percentage_step` exclude each other; either may be named.
        "steps" => &["percentage_step"],
        "percentage_step" => &["steps"],
        // Timings limit each other and the number of checks (the history limit is
        // reported on check_interval).
        "wait_time" | "bake_time" | "failure_threshold_time" | "ready_timeout" => {
            &["check_interval"]
        }
        // Judging against the stable version or on a rate changes what is required.
        "metrics" | "version_dimension" | "max_error_rate" | "metric_dimensions" => {
            &["metrics.compare_to_stable", "metrics"]
        }
        "min_request_count" => &["no_data"],
        _ => &[],
    }
}

/// The document a case describes.
pub fn document(case: &Case) -> Value {
    let mut doc = case.base.clone();
    if let Some(m) = doc.as_object_mut() {
        match &case.change {
            Some(Change::Set(k, v)) => {
                m.insert(k.clone(), v.clone());
            }
            Some(Change::Remove(k)) => {
                m.remove(k);
            }
            None => {}
        }
    }
    doc
}

/// The property.
pub fn check(case: &Case) -> Result<(), TestCaseError> {
    // The unchanged document is valid, holds what was generated and round-trips.
    let base = match DeploySpec::parse(&case.base, None) {
        Ok(base) => base,
        // A schedule too long for one execution's history is the one rule the generator
        // does not model (it depends on every timing at once).
        Err(e)
            if e.0.len() == 1
                && e.0[0].field == "check_interval"
                && e.0[0].message.contains("history events") =>
        {
            return Err(TestCaseError::reject("longer than one execution's history"));
        }
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "a valid document was refused: {e}\n{}",
                case.base
            )));
        }
    };
    prop_assert_eq!(
        &base.cluster_name,
        &case.base["cluster_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    );
    prop_assert_eq!(
        &base.kubernetes_namespace,
        &case.base["kubernetes_namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    );
    prop_assert_eq!(
        &base.microservice_name,
        &case.base["microservice_name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    );
    prop_assert_eq!(
        &base.container_image,
        &case.base["container_image"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    );
    prop_assert_eq!(Some(base.wait_time), case.base["wait_time"].as_u64());
    prop_assert_eq!(base.template.as_str(), TEMPLATE);
    if case.change.is_none() {
        let text = serde_json::to_string_pretty(&case.base)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = DeploySpec::parse_str(&text, &canary_core::spec::ParseOptions::default())
            .map_err(|e| TestCaseError::fail(format!("its own text was refused: {e}")))?;
        prop_assert_eq!(
            &again,
            &base,
            "parsing the document's text gives another spec"
        );
        return Ok(());
    }

    let doc = document(case);
    let Err(errors) = DeploySpec::parse(&doc, None) else {
        return Ok(());
    };
    prop_assert!(!errors.0.is_empty(), "a refusal without a problem");
    let keys: BTreeSet<&str> = doc
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for e in &errors.0 {
        prop_assert!(!e.message.is_empty(), "an error without a message: {:?}", e);
        prop_assert!(
            e.to_string().contains(&format!("`{}`", e.field)),
            "the error does not quote its field: {}",
            e
        );
        let top = e.field.split(['.', '[']).next().unwrap_or_default();
        prop_assert!(
            FIELDS.contains(&top) || keys.contains(e.field.as_str()) || e.field == "deploy.json",
            "an error names `{}`, which is neither a field nor a key of the document: {}",
            e.field,
            e
        );
    }
    let Some(change) = &case.change else {
        return Err(TestCaseError::fail("the unchanged document was refused"));
    };
    let field = match change {
        Change::Set(k, _) | Change::Remove(k) => k.as_str(),
    };
    let named = errors.0.iter().any(|e| {
        let top = e.field.split(['.', '[']).next().unwrap_or_default();
        top == field
            || e.field == field
            || related(field).contains(&e.field.as_str())
            || related(field).contains(&top)
    });
    prop_assert!(
        named,
        "changing `{}` ({:?}) was refused without naming it: {}",
        field,
        change,
        errors
    );
    Ok(())
}
