//! `canary doctor` against moto_server: every check ok with the bucket and the state
//! machine present (exit 0); a missing bucket, state machine, stack or cluster named in
//! its line with what to do (exit 1); an unreachable endpoint sends the reader to the
//! VPC endpoint it needs; a cluster's unusable CA is named before any connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output, Stdio};

use canary_store::S3Objects;
use canary_testkit::{MotoServer, unique_name};

const ROLE: &str = "arn:aws:iam::123456789012:role/canary-sfn";
const DEFINITION: &str = r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#;

fn moto() -> &'static MotoServer {
    MotoServer::shared().unwrap()
}

fn doctor(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary"))
        .arg("doctor")
        .args(args)
        .envs(moto().env())
        .env_remove("AWS_ENDPOINT_URL_STS")
        .env_remove("AWS_ENDPOINT_URL_CLOUDFORMATION")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A bucket and a state machine in moto.
async fn world() -> (String, String) {
    let sdk = moto().sdk_config().await;
    let bucket = unique_name("doctor");
    S3Objects::new(&sdk, &bucket).create_bucket().await.unwrap();
    let machine = aws_sdk_sfn::Client::new(&sdk)
        .create_state_machine()
        .name(unique_name("canary"))
        .definition(DEFINITION)
        .role_arn(ROLE)
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned();
    (bucket, machine)
}

fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting `{start}` in:\n{text}"))
}

#[tokio::test]
async fn every_check_passes_with_the_bucket_and_the_state_machine_present() {
    let (bucket, machine) = world().await;
    let o = doctor(&["--bucket", &bucket, "--state-machine", &machine], &[]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    line(&text, "ok    sts ");
    line(&text, &format!("ok    s3 list {bucket}"));
    assert!(line(&text, "ok    s3 put").contains(&format!("s3://{bucket}/state/doctor/")));
    line(&text, "ok    s3 get");
    line(&text, "ok    states");
    line(&text, "ok    cloudwatch");
    assert!(text.contains("all 6 checks passed"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    // the probe object is removed again
    let sdk = moto().sdk_config().await;
    let left = aws_sdk_s3::Client::new(&sdk)
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(left.key_count(), Some(0), "{left:?}");
}

#[tokio::test]
async fn a_missing_bucket_and_state_machine_are_named_with_what_to_do() {
    let (_, machine) = world().await;
    let missing = unique_name("no-such-bucket");
    let gone = format!("{machine}-gone");
    let o = doctor(&["--bucket", &missing, "--state-machine", &gone], &[]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let s3 = line(&text, &format!("FAIL  s3 list {missing}"));
    assert!(s3.contains("NoSuchBucket"), "{s3}");
    assert!(
        s3.contains(&format!("bucket {missing} does not exist")),
        "{s3}"
    );
    // nothing is written to a bucket that is not there
    assert!(!text.contains("s3 put"), "{text}");
    let states = line(&text, "FAIL  states");
    assert!(
        states.contains(&format!("no state machine {gone}")),
        "{states}"
    );
    line(&text, "ok    sts ");
    assert!(text.contains("2 of 4 checks failed"), "{text}");
}

#[tokio::test]
async fn a_missing_stack_is_named_and_nothing_else_is_guessed() {
    let stack = unique_name("no-stack");
    let o = doctor(&["--stack", &stack], &[]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let cfn = line(&text, "FAIL  cloudformation");
    assert!(
        cfn.contains(&format!("no stack {stack} in us-east-1")),
        "{cfn}"
    );
    assert!(line(&text, "FAIL  s3").contains("pass --bucket"), "{text}");
    assert!(
        line(&text, "FAIL  states").contains("pass --state-machine"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_names_the_vpc_endpoint_to_add() {
    let (bucket, machine) = world().await;
    // S3 on a closed port: what a subnet without a route to S3 sees
    let o = doctor(
        &[
            "--bucket",
            &bucket,
            "--state-machine",
            &machine,
            "--timeout",
            "5",
        ],
        &[
            ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let s3 = line(&text, &format!("FAIL  s3 list {bucket}"));
    assert!(
        s3.contains("gateway VPC endpoint com.amazonaws.us-east-1.s3"),
        "{s3}"
    );
    line(&text, "ok    states");
}

#[tokio::test]
async fn a_cluster_is_described_and_its_unusable_ca_named() {
    let (bucket, machine) = world().await;
    let sdk = moto().sdk_config().await;
    let name = unique_name("cluster");
    aws_sdk_eks::Client::new(&sdk)
        .create_cluster()
        .name(&name)
        .role_arn(ROLE)
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let missing = unique_name("no-cluster");
    let o = doctor(
        &[
            "--bucket",
            &bucket,
            "--state-machine",
            &machine,
            "--cluster",
            &name,
            "--cluster",
            &missing,
            "--timeout",
            "5",
        ],
        &[],
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    line(&text, &format!("ok    eks {name}"));
    // moto's certificateAuthority.data is not a certificate: said so, before any
    // connection is tried (a client trusting the system roots instead would be wrong)
    let api = line(&text, &format!("FAIL  eks api {name}"));
    assert!(api.contains("not base64 of a PEM certificate"), "{api}");
    assert!(
        api.contains("certificateAuthority.data is not usable"),
        "{api}"
    );
    let gone = line(&text, &format!("FAIL  eks {missing}"));
    assert!(
        gone.contains(&format!("no cluster {missing} in us-east-1")),
        "{gone}"
    );
}

#[test]
fn nothing_to_check_is_a_usage_error() {
    let o = doctor(&[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("--stack"), "{}", out(&o));
}

/// The yelb-appserver deploy.json with a Prometheus source at `url`, in `dir`.
fn prometheus_deploy_json(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/yelb/yelb-appserver/deploy.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    doc["metrics"] = serde_json::json!({"source": "prometheus", "url": url, "preset": "istio"});
    let path = dir.join("deploy.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// A Prometheus HTTP API on loopback that answers every query with one sample; returns
/// its URL and the request lines it saw.
fn fake_prometheus() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                    break;
                }
            }
            log.lock().unwrap().push(first.trim().to_owned());
            let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1767225600,"1"]}]}}"#;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    (url, seen)
}

#[tokio::test]
async fn the_prometheus_source_of_deploy_json_is_queried() {
    let (bucket, machine) = world().await;
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = fake_prometheus();
    let deploy = prometheus_deploy_json(dir.path(), &url);
    let o = doctor(
        &[
            "--bucket",
            &bucket,
            "--state-machine",
            &machine,
            "--deploy-json",
            deploy.to_str().unwrap(),
            "--cluster",
            "blogpost",
            "--timeout",
            "5",
        ],
        &[],
    );
    let text = out(&o);
    // the deploy.json's cluster is not in moto: that line fails, the source's passes
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(line(&text, "ok    prometheus").contains(&url), "{text}");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("GET /api/v1/query?")),
        "{:?}",
        seen.lock().unwrap()
    );
    // deploy.json's cluster_name is the one given with --cluster: checked once
    assert_eq!(text.matches("FAIL  eks blogpost").count(), 1, "{text}");

    // nothing listening: what to open
    let closed = prometheus_deploy_json(dir.path(), "http://127.0.0.1:9");
    let o = doctor(
        &[
            "--bucket",
            &bucket,
            "--state-machine",
            &machine,
            "--deploy-json",
            closed.to_str().unwrap(),
            "--timeout",
            "5",
        ],
        &[],
    );
    let text = out(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    let prom = line(&text, "FAIL  prometheus");
    assert!(
        prom.contains("http://127.0.0.1:9 must be reachable from the functions' subnets"),
        "{prom}"
    );
}
