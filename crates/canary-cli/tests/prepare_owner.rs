//! `canary prepare` in a pipeline's build: a deploy.json for another service, namespace
//! or cluster than the build owns (CANARY_SERVICE / CANARY_NAMESPACE / CANARY_CLUSTER,
//! or --service / --namespace / --cluster) is refused with exit 2, naming both values,
//! and nothing is written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/eks-canary/yelb-ui:abc-1";

fn spec_dir(service: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/yelb")
        .join(service)
}

/// `canary prepare` for the yelb-ui fixture with the owner environment `env`.
fn prepare(env: &[(&str, &str)], extra: &[&str], out: &std::path::Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_canary"));
    cmd.arg("prepare")
        .arg("--spec-dir")
        .arg(spec_dir("yelb-ui"))
        .args(["--image", IMAGE, "-o"])
        .arg(out)
        .args(extra)
        .env_remove("CANARY_SERVICE")
        .env_remove("CANARY_NAMESPACE")
        .env_remove("CANARY_CLUSTER")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn another_service_is_refused_with_exit_2_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deploy.json");
    let o = prepare(
        &[
            ("CANARY_SERVICE", "yelb-appserver"),
            ("CANARY_NAMESPACE", "yelb"),
            ("CANARY_CLUSTER", "blogpost"),
        ],
        &[],
        &out,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("deploy.json's microservice_name is yelb-ui but this pipeline owns yelb-appserver (--service / CANARY_SERVICE)"),
        "{e}"
    );
    assert!(!out.exists(), "nothing is written on a refusal");
}

#[test]
fn another_namespace_or_cluster_by_flag_is_refused_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deploy.json");
    let o = prepare(
        &[("CANARY_SERVICE", "yelb-ui")],
        &["--namespace", "shop", "--cluster", "prod"],
        &out,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("kubernetes_namespace is yelb but this pipeline owns shop"),
        "{e}"
    );
    assert!(
        e.contains("cluster_name is blogpost but this pipeline owns prod"),
        "{e}"
    );
    assert!(!e.contains("microservice_name"), "{e}");
    assert!(!out.exists());
}

#[test]
fn an_empty_owner_variable_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deploy.json");
    let o = prepare(&[("CANARY_CLUSTER", "")], &[], &out);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("CANARY_CLUSTER is empty"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_owned_service_is_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deploy.json");
    let o = prepare(
        &[
            ("CANARY_SERVICE", "yelb-ui"),
            ("CANARY_NAMESPACE", "yelb"),
            ("CANARY_CLUSTER", "blogpost"),
        ],
        &[],
        &out,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(doc["container_image"], IMAGE);
    assert_eq!(doc["microservice_name"], "yelb-ui");
}

#[test]
fn an_owner_too_long_for_an_execution_name_is_refused() {
    // yelb-ui in a namespace whose name leaves no room for CodePipeline's suffix: the
    // deploy.json matches, but the pipeline could never start an execution
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec");
    std::fs::create_dir(&spec).unwrap();
    let namespace = "n".repeat(40);
    let mut doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(spec_dir("yelb-ui").join("deploy.json")).unwrap(),
    )
    .unwrap();
    doc["kubernetes_namespace"] = namespace.clone().into();
    std::fs::write(spec.join("deploy.json"), doc.to_string()).unwrap();
    std::fs::copy(
        spec_dir("yelb-ui").join("kubernetes_template.yml"),
        spec.join("kubernetes_template.yml"),
    )
    .unwrap();
    let out = dir.path().join("deploy.json");
    let o = Command::new(env!("CARGO_BIN_EXE_canary"))
        .arg("prepare")
        .arg("--spec-dir")
        .arg(&spec)
        .args(["--image", IMAGE, "-o"])
        .arg(&out)
        .env("CANARY_SERVICE", "yelb-ui")
        .env("CANARY_NAMESPACE", &namespace)
        .env_remove("CANARY_CLUSTER")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exceeds Step Functions' 80"),
        "{}",
        stderr(&o)
    );
}
