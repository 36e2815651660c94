//! Generated values substituted into real templates, and what rendering must do with
//! them: a value that validation refuses is refused with an error naming its field; a
//! value it accepts renders to exactly the objects the template gives for a plain value,
//! with the value standing where the plain one stood (same documents, kinds,
//! apiVersions, keys and list lengths; the value only inside the scalars that held the
//! plain one), and the rendered YAML stream parses back to the same objects. Never a
//! panic.
//!
//! Shared by canary-core's property tests (`tests/properties_rendering.rs`) and the
//! `canary-fuzz` runner, which includes this file by path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use canary_core::DeploySpec;
use canary_core::render::{RenderParams, Rendered, render};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};

/// The values the baseline renders with: distinct words that appear nowhere else.
const PLAIN: [(&str, &str); 4] = [
    ("kubernetes_namespace", "nsplain"),
    ("microservice_name", "svcplain"),
    (
        "container_image",
        "registry.example.com/team/imgplain:tagplain",
    ),
    ("cluster_name", "clusterplain"),
];

/// Every whole template the tests know: the seed's four Yelb services and the provider
/// fixtures that render with plain values.
pub fn templates() -> &'static [(String, String)] {
    static ALL: OnceLock<Vec<(String, String)>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let mut out = Vec::new();
        for service in ["redis-server", "yelb-appserver", "yelb-db", "yelb-ui"] {
            let path = root
                .join("yelb")
                .join(service)
                .join("kubernetes_template.yml");
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.push((format!("yelb/{service}"), text));
            }
        }
        if let Ok(dir) = std::fs::read_dir(root.join("templates")) {
            let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                if let Ok(text) = std::fs::read_to_string(&f) {
                    let name = f
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    out.push((format!("templates/{name}"), text));
                }
            }
        }
        // Only whole templates (a fixture may be a fragment, e.g. one route object).
        out.retain(|(_, text)| {
            DeploySpec::parse(&doc(text, &PLAIN), None)
                .is_ok_and(|spec| canary_core::render::render_both(&spec, 10).is_ok())
        });
        out
    })
}

/// One generated case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Index into [`templates`].
    pub template: usize,
    /// The deploy.json field whose value is generated.
    pub field: &'static str,
    /// The value.
    pub value: String,
    /// The rendering asked for.
    pub params: RenderParams,
}

/// Strings aimed at YAML's structure, and anything.
pub fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(": "),
        Just("#"),
        Just(" #x"),
        Just("{"),
        Just("}"),
        Just("["),
        Just("]"),
        Just(","),
        Just("\n"),
        Just("\r\n"),
        Just("\t"),
        Just("---"),
        Just("\n---\n"),
        Just("..."),
        Just("'"),
        Just("\""),
        Just("\\"),
        Just("&a"),
        Just("*a"),
        Just("!!str "),
        Just("!"),
        Just("|"),
        Just(">"),
        Just("%"),
        Just("@"),
        Just("`"),
        Just("? "),
        Just("- "),
        Just("${MICROSERVICE_NAME}"),
        Just("${CANARY_ROUTES}"),
        Just("${"),
        Just("null"),
        Just("true"),
        Just("~"),
        Just("0x1f"),
        Just("1e5"),
        Just("0"),
        Just("é"),
        Just("\u{2028}"),
        Just("\u{feff}"),
        Just("\u{0}"),
        Just("a"),
        Just("z9"),
        Just("-"),
        Just("."),
        Just("/"),
        Just(":"),
        Just("_"),
    ];
    prop_oneof![
        3 => proptest::collection::vec(piece, 1..6).prop_map(|v| v.concat()),
        3 => ("[a-z][a-z0-9-]{0,10}", proptest::collection::vec(("[ -~\n\té{}]", 0usize..12), 0..3))
            .prop_map(|(mut s, inserts)| {
                for (c, at) in inserts {
                    let at = s.char_indices().nth(at).map_or(s.len(), |(i, _)| i);
                    s.insert_str(at, &c);
                }
                s
            }),
        2 => proptest::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        1 => "[a-z0-9./:_@-]{1,40}",
        1 => "[a-z][a-z0-9-]{0,62}",
    ]
}

/// The renderings asked for: a first deployment, a canary at the edges and inside its
/// range, and the highest versions. A few fixed ones, so that the plain rendering each
/// case is compared with is computed once.
pub const PARAMS: [RenderParams; 6] = [
    RenderParams {
        version: 1,
        stable_version: None,
        canary_weight: 100,
    },
    RenderParams {
        version: 2,
        stable_version: Some(1),
        canary_weight: 0,
    },
    RenderParams {
        version: 2,
        stable_version: Some(1),
        canary_weight: 10,
    },
    RenderParams {
        version: 17,
        stable_version: Some(3),
        canary_weight: 55,
    },
    RenderParams {
        version: 99_999,
        stable_version: Some(99_998),
        canary_weight: 100,
    },
    RenderParams {
        version: 99_999,
        stable_version: None,
        canary_weight: 100,
    },
];

/// A template, one of `fields`, a value and a rendering.
pub fn case_for(fields: &[&'static str]) -> impl Strategy<Value = Case> + use<> {
    let n = templates().len().max(1);
    (
        0..n,
        prop::sample::select(fields.to_vec()),
        hostile(),
        prop::sample::select(PARAMS.to_vec()),
    )
        .prop_map(|(template, field, value, params)| Case {
            template,
            field,
            value,
            params,
        })
}

/// A template's index and the rendering asked for.
type BaselineKey = (usize, u32, Option<u32>, u8);

/// The plain rendering of template `index` for `params`, computed once.
fn baseline(index: usize, params: &RenderParams) -> Result<Rendered, TestCaseError> {
    static CACHE: OnceLock<Mutex<HashMap<BaselineKey, Rendered>>> = OnceLock::new();
    let key = (
        index,
        params.version,
        params.stable_version,
        params.canary_weight,
    );
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(r) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(r);
    }
    let (name, template) = templates()
        .get(index)
        .ok_or_else(|| TestCaseError::fail("no templates found under tests/fixtures"))?;
    let plain = DeploySpec::parse(&doc(template, &PLAIN), None)
        .map_err(|e| TestCaseError::fail(format!("{name}: the plain values were refused: {e}")))?;
    let rendered = render(&plain, params).map_err(|e| {
        TestCaseError::fail(format!("{name}: the plain values did not render: {e}"))
    })?;
    if let Ok(mut c) = cache.lock() {
        c.insert(key, rendered.clone());
    }
    Ok(rendered)
}

fn doc(template: &str, values: &[(&str, &str)]) -> Value {
    let mut m = Map::new();
    for (k, v) in values {
        m.insert((*k).to_owned(), json!(v));
    }
    m.insert("percentage_step".into(), json!(10));
    m.insert("wait_time".into(), json!(60));
    m.insert(
        "config_file".into(),
        json!(base64::engine::general_purpose::STANDARD.encode(template)),
    );
    Value::Object(m)
}

/// Replaces `from` by `to` in every string and key of `v`.
fn replace_all(v: &Value, from: &str, to: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace(from, to)),
        Value::Array(a) => Value::Array(a.iter().map(|x| replace_all(x, from, to)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.replace(from, to), replace_all(x, from, to)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The property.
pub fn check(case: &Case) -> Result<(), TestCaseError> {
    let Some((name, template)) = templates().get(case.template) else {
        return Err(TestCaseError::fail(
            "no templates found under tests/fixtures",
        ));
    };
    let baseline = baseline(case.template, &case.params)?;

    let values: Vec<(&str, &str)> = PLAIN
        .iter()
        .map(|(f, v)| {
            if *f == case.field {
                (*f, case.value.as_str())
            } else {
                (*f, *v)
            }
        })
        .collect();
    let spec = match DeploySpec::parse(&doc(template, &values), None) {
        Ok(spec) => spec,
        Err(errors) => {
            prop_assert!(
                errors.0.iter().any(|e| e.field == case.field),
                "{}={:?} was refused without naming the field: {}",
                case.field,
                case.value,
                errors
            );
            return Ok(());
        }
    };
    let rendered = render(&spec, &case.params).map_err(|e| {
        TestCaseError::fail(format!(
            "{name}: {}={:?} was accepted but did not render: {e}",
            case.field, case.value
        ))
    })?;

    // The same objects as the plain value's, with the value where the plain one stood.
    let plain_value = PLAIN
        .iter()
        .find(|(f, _)| *f == case.field)
        .map(|(_, v)| *v)
        .unwrap_or_default();
    let expected: Vec<Value> = baseline
        .objects
        .iter()
        .map(|o| replace_all(&o.value, plain_value, &case.value))
        .collect();
    let got: Vec<Value> = rendered.objects.iter().map(|o| o.value.clone()).collect();
    prop_assert_eq!(
        got.len(),
        expected.len(),
        "{}: {}={:?} changed the number of objects",
        name,
        case.field,
        case.value
    );
    for (g, e) in got.iter().zip(&expected) {
        prop_assert_eq!(
            g,
            e,
            "{}: {}={:?} changed an object's structure",
            name,
            case.field,
            case.value
        );
    }
    prop_assert_eq!(rendered.kinds(), baseline.kinds());
    prop_assert_eq!(rendered.provider, baseline.provider);

    // Every rendered object parses back from the YAML stream and the JSON.
    let yaml = rendered.to_yaml();
    let back: Vec<Value> = serde_saphyr::from_multiple(&yaml).map_err(|e| {
        TestCaseError::fail(format!(
            "{name}: the rendered YAML does not parse back: {e}\n{yaml}"
        ))
    })?;
    prop_assert_eq!(
        &back,
        &got,
        "{}: the YAML stream reads back as other objects",
        name
    );
    let json_text = rendered.to_json().to_string();
    let from_json: Value =
        serde_json::from_str(&json_text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(from_json, Value::Array(got.clone()));
    for o in &rendered.objects {
        prop_assert!(
            !o.api_version().is_empty() && !o.kind().is_empty() && !o.name().is_empty(),
            "{}: an object without apiVersion, kind or name: {}",
            name,
            o.value
        );
    }
    Ok(())
}
