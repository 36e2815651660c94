//! The `canary` command as a person and a build script use it: exit codes, messages that
//! name the field, and outputs that the pipeline consumes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use canary_core::provider::{Target, TrafficProvider};
use serde_json::{Value, json};

fn canary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .output()
        .unwrap()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn seed_dir(service: &str) -> PathBuf {
    root().join("tests/fixtures/yelb").join(service)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn prepared(dir: &Path, service: &str) -> PathBuf {
    let out = dir.join(format!("{service}.json"));
    let o = canary(&[
        "prepare",
        "--spec-dir",
        seed_dir(service).to_str().unwrap(),
        "--image",
        &format!("123456789012.dkr.ecr.us-west-2.amazonaws.com/{service}:abc123"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    out
}

#[test]
fn prepare_adds_the_image_and_the_template_and_keeps_every_seed_field() {
    let dir = tempfile::tempdir().unwrap();
    for service in ["redis-server", "yelb-appserver", "yelb-db", "yelb-ui"] {
        let out = prepared(dir.path(), service);
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
        let seed: Value = serde_json::from_str(
            &std::fs::read_to_string(seed_dir(service).join("deploy.json")).unwrap(),
        )
        .unwrap();
        for (k, v) in seed.as_object().unwrap() {
            assert_eq!(&doc[k], v, "{service}: {k}");
        }
        let template =
            std::fs::read_to_string(seed_dir(service).join("kubernetes_template.yml")).unwrap();
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(doc["config_file"].as_str().unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), template);
        assert!(
            doc["container_image"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{service}:abc123"))
        );
    }
}

#[test]
fn validate_prints_one_line_and_exits_0_for_every_prepared_seed() {
    let dir = tempfile::tempdir().unwrap();
    for service in ["redis-server", "yelb-appserver", "yelb-db", "yelb-ui"] {
        let o = canary(&["validate", prepared(dir.path(), service).to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let out = text(&o.stdout);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(
            out.starts_with(&format!("ok: {service} in namespace yelb")),
            "{out}"
        );
    }
}

#[test]
fn validate_accepts_a_plain_template_and_image_for_a_person_at_a_terminal() {
    let dir = seed_dir("yelb-db");
    let o = canary(&[
        "validate",
        dir.join("deploy.json").to_str().unwrap(),
        "--template",
        dir.join("kubernetes_template.yml").to_str().unwrap(),
        "--image",
        "postgres:16",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn bad_input_exits_2_and_lists_every_problem_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deploy.json");
    std::fs::write(
        &path,
        json!({"cluster_name": "blogpost", "kubernetes_namespace": "Yelb", "microservice_name": "yelb-ui",
               "percentge_step": 25, "wait_time": -1, "container_image": "nginx", "config_file": "@@"})
        .to_string(),
    )
    .unwrap();
    let o = canary(&["validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    for needle in [
        "`kubernetes_namespace` = \"Yelb\"",
        "`percentge_step` = 25: is not a known field (did you mean `percentage_step`?)",
        "`percentage_step`: is required",
        "`wait_time` = -1",
        "`config_file` = \"@@\": is not base64",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in\n{err}");
    }
    assert!(!err.contains("panicked"));
}

#[test]
fn unreadable_or_malformed_files_exit_2_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let o = canary(&["validate", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("nope.json"));
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "[1, 2").unwrap();
    let o = canary(&["plan", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("not valid JSON"));
}

#[test]
fn render_prints_the_objects_with_the_weights_asked_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = prepared(dir.path(), "yelb-appserver");
    let o = canary(&[
        "render",
        path.to_str().unwrap(),
        "--version",
        "4",
        "--stable-version",
        "3",
        "--weight",
        "40",
        "-o",
        "json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let objects: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    let router = objects
        .iter()
        .find(|o| o["kind"] == "VirtualRouter")
        .unwrap();
    let provider = TrafficProvider::of_object(router).expect("a VirtualRouter has a provider");
    assert_eq!(
        provider.read(router).unwrap(),
        vec![vec![
            Target::new("yelb-appserver-3", 60),
            Target::new("yelb-appserver-4", 40)
        ]]
    );
    let o = canary(&["render", path.to_str().unwrap(), "--weight", "40"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "a weight below 100 needs a stable version"
    );
}

#[test]
fn plan_works_on_the_raw_seed_deploy_json() {
    let o = canary(&[
        "plan",
        seed_dir("yelb-appserver")
            .join("deploy.json")
            .to_str()
            .unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("    10    100%     9:00"), "{out}");
    assert!(
        out.contains("full traffic on the canary after  9:00"),
        "{out}"
    );
    assert!(out.contains("rolled back within 3:00 at worst"), "{out}");
}

#[test]
fn approve_and_promote_are_commands_and_gates_show_in_validate_and_plan() {
    for (cmd, words) in [("approve", "Pass the gate"), ("promote", "--full")] {
        let o = canary(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd} --help: {}", text(&o.stderr));
        assert!(text(&o.stdout).contains(words), "{}", text(&o.stdout));
    }
    let dir = tempfile::tempdir().unwrap();
    let with_gates = |gates: Value| {
        let mut doc: Value = serde_json::from_str(
            &std::fs::read_to_string(seed_dir("yelb-appserver").join("deploy.json")).unwrap(),
        )
        .unwrap();
        doc["gates"] = gates;
        let path = dir.path().join("deploy.json");
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    };
    let good = with_gates(json!([{"at": 50, "timeout": 1800}, {"at": "promotion"}]));
    let o = canary(&["plan", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let plan = text(&o.stdout);
    assert!(
        plan.contains("at 50%") && plan.contains("waits up to 30m, then rolls back"),
        "{plan}"
    );
    assert!(plan.contains("before promotion (100%)"), "{plan}");
    assert!(plan.contains("at the latest"), "{plan}");

    let bad = with_gates(json!([{"at": 45, "on_timeout": "maybe"}]));
    let o = canary(&["plan", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = text(&o.stderr);
    assert!(
        e.contains("`gates[0].at` = 45") && e.contains("`gates[0].on_timeout` = \"maybe\""),
        "{e}"
    );
}
