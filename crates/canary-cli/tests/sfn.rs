//! `canary start` and `canary watch` against moto's Step Functions (moto_server 5.2).
//!
//! What moto does, and so what these tests can prove:
//! - by default an execution keeps the status RUNNING forever (StopExecution makes it
//!   ABORTED) and its history is a fixed, canned one ending in ExecutionSucceeded: the
//!   input `canary start` sends and the way `watch` reads both are checked there;
//! - with `POST /moto-api/config {"stepfunctions": {"execute_state_machine": true}}`
//!   moto interprets the definition (Pass, Wait, Choice, Task, Fail, Succeed, paths,
//!   Catch) and records a real history. Its Lambda tasks without a Lambda backend echo
//!   their input. moto 5.2.1 then fails every StartExecution after the first one with a
//!   500 (it cannot copy the finished execution), so each such test has its own server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use canary_testkit::{MotoServer, unique_name};
use serde_json::{Value, json};

const ROLE: &str = "arn:aws:iam::123456789012:role/canary-sfn";

fn canary(moto: &MotoServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .env_remove("CANARY_STATE_MACHINE_ARN")
        .envs(moto.env())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yelb() -> PathBuf {
    root().join("tests/fixtures/yelb/yelb-appserver")
}

/// The shipped definition with each `${<Name>FunctionArn}` replaced by a Lambda ARN
/// (moto's CloudFormation ignores DefinitionSubstitutions, so we substitute).
fn definition_for_moto() -> String {
    let mut def =
        std::fs::read_to_string(root().join("statemachine/canary-deployment.asl.json")).unwrap();
    while let Some(start) = def.find("${") {
        let end = start + def[start..].find('}').unwrap();
        let name = def[start + 2..end]
            .trim_end_matches("FunctionArn")
            .to_owned();
        def.replace_range(
            start..=end,
            &format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
        );
    }
    def
}

async fn sfn(moto: &MotoServer) -> aws_sdk_sfn::Client {
    aws_sdk_sfn::Client::new(&moto.sdk_config().await)
}

async fn create_machine(moto: &MotoServer, definition: &str) -> String {
    sfn(moto)
        .await
        .create_state_machine()
        .name(unique_name("canary"))
        .definition(definition)
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned()
}

/// A moto server of its own that interprets state machines.
fn executing_moto() -> MotoServer {
    let moto = MotoServer::start().unwrap();
    let body =
        json!({"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}})
            .to_string();
    let mut s = TcpStream::connect(("127.0.0.1", moto.port())).unwrap();
    write!(
        s,
        "POST /moto-api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 20"), "{answer}");
    moto
}

fn prepared(moto: &MotoServer, dir: &std::path::Path, image: &str) -> PathBuf {
    let out = dir.join("deploy.json");
    let o = canary(
        moto,
        &[
            "prepare",
            "--spec-dir",
            yelb().to_str().unwrap(),
            "--image",
            image,
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    out
}

fn started_arn(o: &Output) -> String {
    let out = text(&o.stdout);
    out.lines()
        .find_map(|l| l.strip_prefix("started "))
        .unwrap_or_else(|| panic!("no `started <arn>` in:\n{out}\n{}", text(&o.stderr)))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn start_sends_exactly_the_deploy_json_a_pipeline_would_send() {
    let moto = MotoServer::shared().unwrap();
    let machine = create_machine(moto, &definition_for_moto()).await;
    let dir = tempfile::tempdir().unwrap();
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/yelb-appserver:abc";
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(prepared(moto, dir.path(), image)).unwrap())
            .unwrap();

    // deploy.json plus --template and --image: the same input as `canary prepare` writes.
    let name = unique_name("run");
    let o = canary(
        moto,
        &[
            "start",
            yelb().join("deploy.json").to_str().unwrap(),
            "--template",
            yelb().join("kubernetes_template.yml").to_str().unwrap(),
            "--image",
            image,
            "--state-machine",
            &machine,
            "--name",
            &name,
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let arn = started_arn(&o);
    // --name is the end of the name, after the owner prefix <namespace>_<service>_
    assert!(
        arn.ends_with(&format!(":yelb_yelb-appserver_{name}")),
        "{arn}"
    );
    assert!(text(&o.stdout).contains(&format!("canary watch {arn}")));
    let desc = sfn(moto)
        .await
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    let input: Value = serde_json::from_str(desc.input().unwrap()).unwrap();
    assert_eq!(input, expected);
    assert_eq!(desc.state_machine_arn(), machine);

    // A prepared deploy.json goes as it is, under the owner prefix and the time.
    let o = canary(
        moto,
        &[
            "start",
            dir.path().join("deploy.json").to_str().unwrap(),
            "--state-machine",
            &machine,
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let arn = started_arn(&o);
    assert!(arn.contains(":yelb_yelb-appserver_2"), "{arn}");
    let desc = sfn(moto)
        .await
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    let input: Value = serde_json::from_str(desc.input().unwrap()).unwrap();
    assert_eq!(input, expected);
}

#[tokio::test]
async fn watch_reports_the_status_moto_gives_and_exits_by_it() {
    let moto = MotoServer::shared().unwrap();
    let machine = create_machine(moto, &definition_for_moto()).await;
    let client = sfn(moto).await;
    let start = |name: String| {
        let client = client.clone();
        let machine = machine.clone();
        async move {
            client
                .start_execution()
                .state_machine_arn(machine)
                .name(name)
                .input("{}")
                .send()
                .await
                .unwrap()
                .execution_arn()
                .to_owned()
        }
    };

    // Stopped: ABORTED, exit 1.
    let stopped = start(unique_name("stop")).await;
    client
        .stop_execution()
        .execution_arn(&stopped)
        .error("Manual")
        .cause("stopped by a test")
        .send()
        .await
        .unwrap();
    let o = canary(moto, &["watch", &stopped, "--interval", "0.1"]);
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        out.contains(&format!(": {stopped}")) && out.contains("ABORTED after"),
        "{out}"
    );

    // Left RUNNING: moto's canned history ends in ExecutionSucceeded, which ends the watch.
    let running = start(unique_name("run")).await;
    let o = canary(moto, &["watch", &running, "--interval", "0.1"]);
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains("execution started"), "{out}");
    assert!(
        out.contains(&format!("SUCCEEDED after 20s: {running}")),
        "{out}"
    );
}

#[tokio::test]
async fn start_and_watch_follow_moto_interpreting_the_real_definition_to_its_end() {
    let moto = executing_moto();
    let machine = create_machine(&moto, &definition_for_moto()).await;
    let dir = tempfile::tempdir().unwrap();
    let deploy = prepared(&moto, dir.path(), "repo/yelb-appserver:2");
    let o = canary(
        &moto,
        &[
            "start",
            deploy.to_str().unwrap(),
            "--state-machine",
            &machine,
            "--watch",
            "--interval",
            "0.2",
        ],
    );
    let out = text(&o.stdout);
    println!("{out}");
    // Without Lambda functions behind it moto's tasks echo their input, so the document
    // never gets a `deployment`: WhatNext sends it to UnexpectedNext and Rollback, and
    // RolledBack cannot find the rollback reason.
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    for needle in [
        "RenderTemplate",
        "DeployCanary",
        "UnexpectedNext",
        "Rollback",
        "RolledBack",
        "FAILED after",
        "error: States.Runtime",
        "cause: An error occurred while executing the state 'RolledBack'",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
}

/// A stand-in for the real definition whose Pass states return the documents the
/// handlers would, ending in `end`.
fn scripted_definition(end: Value) -> String {
    let doc = |weight: u64, step: u64, extra: Value| {
        let mut d = json!({"canary_version": 2, "stable_version": 1, "schedule": [10, 50, 100],
            "step": step, "weight": weight, "next": "check", "wait_seconds": 1});
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        json!({"deployment": d})
    };
    let healthy = json!({"status": "healthy", "errors": 0.0, "requests": 480.0, "error_rate": 0.0,
        "window_seconds": 600, "datapoints": 20, "reason": "0 errors in 480 requests over 600 s, error rate 0%: within thresholds"});
    let aborted = json!({"status": "unhealthy", "errors": 0.0, "window_seconds": 0, "datapoints": 0,
        "reason": "aborted by alice: bad release"});
    json!({
        "StartAt": "ShiftWeights",
        "States": {
            "ShiftWeights": {"Type": "Pass", "Result": doc(10, 1, json!({})), "Next": "WaitForCheck"},
            "WaitForCheck": {"Type": "Wait", "SecondsPath": "$.deployment.wait_seconds", "Next": "HealthCheck"},
            "HealthCheck": {"Type": "Pass", "Result": doc(10, 1, json!({"verdict": healthy, "next": "shift"})), "Next": "ShiftAgain"},
            "ShiftAgain": {"Type": "Pass", "Result": doc(50, 2, json!({"verdict": healthy})), "Next": "HealthCheckAgain"},
            "HealthCheckAgain": {"Type": "Pass", "Result": doc(50, 2, json!({"verdict": aborted, "next": "rollback"})), "Next": "End"},
            "End": end,
        }
    })
    .to_string()
}

#[tokio::test]
async fn watch_shows_weight_step_and_verdicts_and_the_rollback_reason_of_a_failed_run() {
    let moto = executing_moto();
    let end =
        json!({"Type": "Fail", "Error": "RolledBack", "Cause": "aborted by alice: bad release"});
    let machine = create_machine(&moto, &scripted_definition(end)).await;
    let arn = sfn(&moto)
        .await
        .start_execution()
        .state_machine_arn(&machine)
        .name("scripted")
        .input("{}")
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_owned();
    let o = canary(&moto, &["watch", &arn, "--interval", "0.2"]);
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` missing from:\n{out}"))
    };
    let order = [
        pos("version 2 beside stable version 1, weights 10, 50, 100"),
        pos("canary at 10% (step 1 of 3)"),
        pos("WaitForCheck (1 s)"),
        pos("verdict healthy: 0 errors, 480 requests, error rate 0%, window 600 s, 20 datapoints"),
        pos("canary at 50% (step 2 of 3)"),
        pos("verdict unhealthy: 0 errors"),
        pos("aborted by alice: bad release"),
        pos("FAILED after"),
        pos("error: RolledBack"),
        pos("cause: aborted by alice: bad release"),
    ];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}\n{out}");
}

#[tokio::test]
async fn watch_exits_0_for_a_promoted_run_and_prints_its_outcome() {
    let moto = executing_moto();
    let end = json!({"Type": "Pass", "Result": {"deployment": {"canary_version": 2, "weight": 100,
        "schedule": [10, 50, 100], "step": 3,
        "outcome": {"status": "promoted", "reason": "version 2 promoted at 100% after 3 healthy checks"}}},
        "Next": "Promoted"});
    let mut def: Value = serde_json::from_str(&scripted_definition(end)).unwrap();
    def["States"]["HealthCheckAgain"]["Result"]["deployment"]["verdict"] =
        def["States"]["HealthCheck"]["Result"]["deployment"]["verdict"].clone();
    def["States"]["Promoted"] = json!({"Type": "Succeed"});
    let machine = create_machine(&moto, &def.to_string()).await;
    let dir = tempfile::tempdir().unwrap();
    let deploy = prepared(&moto, dir.path(), "repo/yelb-appserver:2");
    let o = canary(
        &moto,
        &[
            "start",
            deploy.to_str().unwrap(),
            "--state-machine",
            &machine,
            "--name",
            "promote",
            "--watch",
            "--interval",
            "0.2",
        ],
    );
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.contains("canary at 100% (step 3 of 3)"), "{out}");
    assert!(out.contains("SUCCEEDED after"), "{out}");
    assert!(
        out.contains("version 2 promoted at 100% after 3 healthy checks"),
        "{out}"
    );
}

#[test]
fn bad_input_exits_2_before_any_aws_call_naming_the_argument_or_field() {
    let moto = MotoServer::shared().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deploy = prepared(moto, dir.path(), "repo/yelb-appserver:2");
    let mut bad: Value = serde_json::from_str(&std::fs::read_to_string(&deploy).unwrap()).unwrap();
    bad["no_data"] = json!("maybe");
    let bad_path = dir.path().join("bad.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:canary";
    let deploy = deploy.to_str().unwrap();
    let unprepared = yelb().join("deploy.json");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "start",
                bad_path.to_str().unwrap(),
                "--state-machine",
                machine,
            ],
            "no_data",
        ),
        (
            vec![
                "start",
                unprepared.to_str().unwrap(),
                "--state-machine",
                machine,
            ],
            "container_image",
        ),
        (
            vec!["start", deploy, "--state-machine", "canary"],
            "--state-machine",
        ),
        (
            vec![
                "start",
                deploy,
                "--state-machine",
                machine,
                "--name",
                "has space",
            ],
            "--name",
        ),
        (vec!["start", deploy], "--state-machine"),
        (vec!["watch", "not-an-arn"], "execution ARN"),
        (
            vec![
                "watch",
                "arn:aws:states:us-east-1:123456789012:execution:x:y",
                "--interval",
                "0",
            ],
            "--interval",
        ),
    ];
    for (args, needle) in cases {
        // No AWS behind this endpoint: an AWS call would fail with exit 1, not 2.
        let o = Command::new(env!("CARGO_BIN_EXE_canary"))
            .args(&args)
            .env_remove("CANARY_STATE_MACHINE_ARN")
            .envs(moto.env())
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(needle),
            "{args:?}: `{needle}` missing from: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn an_unknown_state_machine_or_execution_exits_2_with_aws_words_for_it() {
    let moto = MotoServer::shared().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let deploy = prepared(moto, dir.path(), "repo/yelb-appserver:2");
    let o = canary(
        moto,
        &[
            "start",
            deploy.to_str().unwrap(),
            "--state-machine",
            "arn:aws:states:us-east-1:123456789012:stateMachine:nobody",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("StateMachineDoesNotExist"),
        "{}",
        text(&o.stderr)
    );
    let o = canary(
        moto,
        &[
            "watch",
            "arn:aws:states:us-east-1:123456789012:execution:nobody:nothing",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("DoesNotExist"),
        "{}",
        text(&o.stderr)
    );
}
