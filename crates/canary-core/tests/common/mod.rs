//! Fixtures shared by the core's integration tests: the seed's Yelb specfiles, prepared
//! the way `canary prepare` prepares them, and the published CRD schemas.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Value, json};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub const SEED_SERVICES: [&str; 4] = ["redis-server", "yelb-appserver", "yelb-db", "yelb-ui"];

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The seed's deploy.json for `service` with `container_image` and `config_file` added.
pub fn seed_doc(service: &str) -> Value {
    let dir = repo_root().join("tests/fixtures/yelb").join(service);
    let text = std::fs::read_to_string(dir.join("deploy.json")).unwrap();
    let template = std::fs::read_to_string(dir.join("kubernetes_template.yml")).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc["container_image"] = json!(format!(
        "123456789012.dkr.ecr.us-west-2.amazonaws.com/{service}:build-7"
    ));
    doc["config_file"] = json!(b64(&template));
    doc
}

/// A deploy.json for `template` with the given extra fields.
pub fn doc_with_template(template: &str, extra: Value) -> Value {
    let mut doc = json!({
        "cluster_name": "prod-eu",
        "kubernetes_namespace": "shop",
        "microservice_name": "checkout",
        "percentage_step": 20,
        "wait_time": 120,
        "container_image": "registry.example.com:5000/shop/checkout:2.4.1",
        "config_file": b64(template),
    });
    if let (Some(d), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            d.insert(k.clone(), v.clone());
        }
    }
    doc
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures/templates").join(name)).unwrap()
}

/// The directory holding the published CRDs: `EKS_CANARY_CRDS`, or `../shared/reference/crds`
/// beside the repository.
pub fn crd_dir() -> PathBuf {
    std::env::var_os("EKS_CANARY_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/reference/crds"))
}

/// The openAPIV3Schema of `kind` in group `group` at `version`, from the CRD files.
pub fn crd_schema(group: &str, kind: &str, version: &str) -> Value {
    static CRDS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    let crds = CRDS.get_or_init(|| {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(crd_dir()).expect("CRD directory (set EKS_CANARY_CRDS)") {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
            all.extend(docs);
        }
        all
    });
    {
        for d in crds {
            if d["kind"] == "CustomResourceDefinition"
                && d["spec"]["group"] == group
                && d["spec"]["names"]["kind"] == kind
            {
                for v in d["spec"]["versions"].as_array().unwrap() {
                    if v["name"] == version {
                        return v["schema"]["openAPIV3Schema"].clone();
                    }
                }
            }
        }
    }
    panic!(
        "no CRD for {group}/{version} {kind} in {}",
        crd_dir().display()
    );
}

/// Validates a rendered custom resource against its published CRD schema.
pub fn validate_against_crd(obj: &Value) {
    let errors = crd_errors(obj);
    assert!(
        errors.is_empty(),
        "{} {} fails its CRD schema:\n{}",
        obj["kind"],
        obj["metadata"]["name"],
        errors.join("\n")
    );
}

/// The CRD schema's complaints about `obj`.
pub fn crd_errors(obj: &Value) -> Vec<String> {
    let api = obj["apiVersion"].as_str().unwrap();
    let (group, version) = api.split_once('/').unwrap();
    let kind = obj["kind"].as_str().unwrap();
    let schema = crd_schema(group, kind, version);
    let validator = jsonschema::validator_for(&schema).unwrap();
    validator
        .iter_errors(obj)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}
