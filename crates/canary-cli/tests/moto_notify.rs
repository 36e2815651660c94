#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Notifications through moto: the demo's deployments (the real definition in the local
//! executor, the real handlers, the simulated cluster) with the AWS notifier pointed at
//! moto_server, where an EventBridge rule for one service targets an SQS queue and an
//! SNS topic is subscribed by another (raw delivery, so the queue holds the Chatbot
//! message itself). The queues must receive exactly the decisions of each deployment,
//! in order; a retried task sends the same id for the same decision again, never a
//! second distinct one; and an endpoint that never answers fails each notification
//! within the bound while the deployment still ends as it should, the failures counted
//! next to its record.
//!
//! moto_server is set up with plain HTTP calls in the services' JSON (SQS, EventBridge)
//! and query (SNS) protocols, so the test needs no SDK crate beyond the notifier's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use canary_cli::harness::DemoEnv;
use canary_cli::harness::fixtures::{FAULTY_ERROR_RATE, image};
use canary_cli::local::{Fault, FaultKind, FaultyInvoker, Function};
use canary_lambda::{AwsNotifier, RecordedNotifier};
use canary_sfn::NoopObserver;
use canary_testkit::{MotoServer, unique_name};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// One call to moto in a JSON protocol (`target` is `AmazonSQS.CreateQueue`, ...).
async fn aws_json(
    moto: &MotoServer,
    service: &str,
    version: &str,
    target: &str,
    body: Value,
) -> Value {
    let request = Request::builder()
        .method("POST")
        .uri(format!("{}/", moto.endpoint()))
        .header("content-type", format!("application/x-amz-json-{version}"))
        .header("x-amz-target", target)
        .header("authorization", authorization(service))
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, text) = send(request).await;
    assert!(status < 300, "{target} answered {status}: {text}");
    if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{target}: {e}: {text}"))
    }
}

/// One call to moto's SNS (query protocol); returns the XML answer.
async fn sns_query(moto: &MotoServer, params: &[(&str, &str)]) -> String {
    let body: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let request = Request::builder()
        .method("POST")
        .uri(format!("{}/", moto.endpoint()))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", authorization("sns"))
        .body(Body::from(format!("{}&Version=2010-03-31", body.join("&"))))
        .unwrap();
    let (status, text) = send(request).await;
    assert!(status < 300, "SNS {params:?} answered {status}: {text}");
    text
}

async fn send(request: Request<Body>) -> (u16, String) {
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(Body::new(response.into_body()), 16 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A header that names the service, as moto routes by it (the signature is not checked).
fn authorization(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of the first `<tag>` in `xml`.
fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_owned()
}

/// Where the notifications land: a bus with a rule for the demo's service whose target
/// is one queue, and a topic subscribed by another queue.
struct Sinks {
    bus: String,
    topic: String,
    events_queue: String,
    chat_queue: String,
}

async fn queue(moto: &MotoServer, name: &str) -> (String, String) {
    let out = aws_json(
        moto,
        "sqs",
        "1.0",
        "AmazonSQS.CreateQueue",
        json!({"QueueName": name}),
    )
    .await;
    let url = out["QueueUrl"].as_str().unwrap().to_owned();
    (url, format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"))
}

async fn sinks(moto: &MotoServer) -> Sinks {
    let bus = unique_name("canary-bus");
    aws_json(
        moto,
        "events",
        "1.1",
        "AWSEvents.CreateEventBus",
        json!({"Name": bus}),
    )
    .await;
    let (events_queue, events_arn) = queue(moto, &unique_name("canary-events")).await;
    let rule = unique_name("canary-rule");
    // The rule docs/deploying.md shows: one service's decisions.
    let pattern = json!({"source": ["eks-canary"], "detail": {"service": ["yelb-appserver"]}});
    aws_json(
        moto,
        "events",
        "1.1",
        "AWSEvents.PutRule",
        json!({"Name": rule, "EventBusName": bus, "EventPattern": pattern.to_string(), "State": "ENABLED"}),
    )
    .await;
    aws_json(
        moto,
        "events",
        "1.1",
        "AWSEvents.PutTargets",
        json!({"Rule": rule, "EventBusName": bus, "Targets": [{"Id": "queue", "Arn": events_arn}]}),
    )
    .await;
    let (chat_queue, chat_arn) = queue(moto, &unique_name("canary-chat")).await;
    let created = sns_query(
        moto,
        &[
            ("Action", "CreateTopic"),
            ("Name", &unique_name("canary-topic")),
        ],
    )
    .await;
    let topic = xml_text(&created, "TopicArn");
    sns_query(
        moto,
        &[
            ("Action", "Subscribe"),
            ("TopicArn", &topic),
            ("Protocol", "sqs"),
            ("Endpoint", &chat_arn),
            ("Attributes.entry.1.key", "RawMessageDelivery"),
            ("Attributes.entry.1.value", "true"),
        ],
    )
    .await;
    Sinks {
        bus,
        topic,
        events_queue,
        chat_queue,
    }
}

/// Every message in the queue, in order, parsed.
async fn drain(moto: &MotoServer, queue_url: &str) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let out = aws_json(
            moto,
            "sqs",
            "1.0",
            "AmazonSQS.ReceiveMessage",
            json!({"QueueUrl": queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0, "VisibilityTimeout": 600}),
        )
        .await;
        let Some(messages) = out["Messages"].as_array().filter(|m| !m.is_empty()) else {
            return all;
        };
        for m in messages {
            let body = m["Body"].as_str().unwrap();
            all.push(serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")));
        }
    }
}

fn moto() -> &'static MotoServer {
    MotoServer::shared().unwrap_or_else(|e| {
        panic!("{e} (install moto: python3 -m pip install -r tests/requirements.txt)")
    })
}

/// A demo environment with `setup` deployed (quietly), then the AWS notifier on
/// `sinks` for what follows.
async fn env_with(moto: &MotoServer, sinks: &Sinks, setup: &[u32]) -> DemoEnv {
    let mut env = DemoEnv::start().await.unwrap();
    env.deploy_versions(setup).await.unwrap();
    let sdk = moto.sdk_config().await;
    env.services.notifier = Arc::new(AwsNotifier::new(
        &sdk,
        sinks.bus.clone(),
        Some(sinks.topic.clone()),
    ));
    env
}

fn detail_types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect()
}

fn chat_types(chats: &[Value]) -> Vec<&str> {
    chats
        .iter()
        .map(|c| c["metadata"]["eventType"].as_str().unwrap())
        .collect()
}

/// The events and the chat messages say the same decisions with the same ids.
fn assert_paired(events: &[Value], chats: &[Value]) {
    assert_eq!(detail_types(events), chat_types(chats));
    for (e, c) in events.iter().zip(chats) {
        assert_eq!(e["source"], "eks-canary");
        assert_eq!(e["detail"]["id"], c["id"], "{e} / {c}");
        assert_eq!(c["version"], "1.0");
        assert_eq!(c["source"], "custom");
        assert_eq!(c["content"]["textType"], "client-markdown");
    }
    // One deployment, one chat thread.
    let threads: std::collections::BTreeSet<&str> = chats
        .iter()
        .map(|c| c["metadata"]["threadId"].as_str().unwrap())
        .collect();
    assert_eq!(threads.len(), 1, "{threads:?}");
}

const HEALTHY: [&str; 13] = [
    "Canary Started",
    "Canary Ready",
    "Canary Shifted",
    "Canary Shifted",
    "Canary Shifted",
    "Canary Shifted",
    "Canary Shifted",
    "Canary Shifted",
    "Canary Shifted",
    "Canary Shifted",
    "Canary Shifted",
    "Canary Shifted",
    "Canary Promoted",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_s_decisions_reach_the_rule_s_queue_and_the_topic_s_queue_in_order() {
    let moto = moto();
    let sinks = sinks(moto).await;
    let env = env_with(moto, &sinks, &[1]).await;
    let run = env
        .deploy(&image(2), &env.invoker(), &mut NoopObserver)
        .await;
    assert!(run.succeeded(), "{:?}", run.status);
    let events = drain(moto, &sinks.events_queue).await;
    let chats = drain(moto, &sinks.chat_queue).await;
    assert_eq!(detail_types(&events), HEALTHY);
    assert_paired(&events, &chats);
    let weights: Vec<u64> = events
        .iter()
        .filter(|e| e["detail-type"] == "Canary Shifted")
        .map(|e| e["detail"]["weight"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    let last = &events[12]["detail"];
    assert_eq!(last["canary_version"], 2);
    assert_eq!(last["stable_version"], 1);
    assert_eq!(last["namespace"], "yelb");
    assert_eq!(last["cluster"], "blogpost");
    assert_eq!(
        env.services
            .store
            .notification_failures(&env.service_ref(), 2)
            .await
            .unwrap(),
        None,
        "every notification was sent"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_canary_s_decisions_name_the_verdict_s_numbers_and_the_weight_rolled_back_from() {
    let moto = moto();
    let sinks = sinks(moto).await;
    let env = env_with(moto, &sinks, &[1, 2]).await;
    env.sim.set_error_rate(&image(3), FAULTY_ERROR_RATE);
    let run = env
        .deploy(&image(3), &env.invoker(), &mut NoopObserver)
        .await;
    assert!(!run.succeeded(), "a faulty canary ends in RolledBack");
    let events = drain(moto, &sinks.events_queue).await;
    let chats = drain(moto, &sinks.chat_queue).await;
    assert_eq!(
        detail_types(&events),
        [
            "Canary Started",
            "Canary Ready",
            "Canary Shifted",
            "Canary Unhealthy",
            "Canary Rolled Back"
        ]
    );
    assert_paired(&events, &chats);
    let unhealthy = &events[3]["detail"];
    assert_eq!(unhealthy["verdict"]["status"], "unhealthy");
    assert!(
        unhealthy["verdict"]["errors"].as_f64().unwrap() > 0.0,
        "{unhealthy}"
    );
    assert_eq!(unhealthy["weight"], 10);
    let rolled_back = &events[4]["detail"];
    assert_eq!(rolled_back["weight"], 10);
    assert!(
        rolled_back["reason"]
            .as_str()
            .unwrap()
            .contains("rolled back"),
        "{rolled_back}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_tasks_send_the_same_ids_again_and_no_distinct_message() {
    let moto = moto();
    let sinks = sinks(moto).await;
    let env = env_with(moto, &sinks, &[1]).await;
    // Each of these runs to the end, its answer is lost (States.Timeout), and the state
    // machine runs it again with the same input.
    let lost = |function| Fault {
        function,
        nth: 1,
        times: 1,
        kind: FaultKind::Timeout,
    };
    let invoker = FaultyInvoker::new(
        env.invoker(),
        vec![
            lost(Function::RenderTemplate),
            lost(Function::DeployCanary),
            lost(Function::HealthCheck),
            lost(Function::Cleanup),
        ],
    );
    let run = env.deploy(&image(2), &invoker, &mut NoopObserver).await;
    assert!(run.succeeded(), "{:?}", run.status);
    let events = drain(moto, &sinks.events_queue).await;
    let chats = drain(moto, &sinks.chat_queue).await;
    assert!(
        events.len() > HEALTHY.len(),
        "the retries sent again: {}",
        events.len()
    );
    assert_eq!(chats.len(), events.len());
    // Once each id's repeats are set aside, the healthy canary's decisions remain, in
    // order; every repeat says the same decision.
    let mut first: Vec<&Value> = Vec::new();
    for e in &events {
        match first
            .iter()
            .find(|f| f["detail"]["id"] == e["detail"]["id"])
        {
            Some(f) => {
                // The same decision: its kind, step, weight and sentence. (The check
                // count and the last verdict are the attempt's own: a health-check
                // retried later may run fewer checks inside its invocation before the
                // same shift.)
                for field in ["decision", "step", "weight", "reason", "canary_version"] {
                    assert_eq!(f["detail"][field], e["detail"][field], "{field}: {f} / {e}");
                }
                assert_eq!(f["detail-type"], e["detail-type"]);
            }
            None => first.push(e),
        }
    }
    let types: Vec<&str> = first
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert_eq!(types, HEALTHY);
    let mut chat_ids: Vec<&str> = chats.iter().map(|c| c["id"].as_str().unwrap()).collect();
    chat_ids.sort_unstable();
    chat_ids.dedup();
    assert_eq!(chat_ids.len(), HEALTHY.len());
    env.shutdown().await;
}

/// Accepts connections and never answers.
async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_costs_each_notification_its_bound_and_the_deployment_ends_as_expected()
 {
    let mut env = DemoEnv::start().await.unwrap();
    env.deploy_versions(&[1, 2]).await.unwrap();
    env.sim.set_error_rate(&image(3), FAULTY_ERROR_RATE);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(black_hole().await)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_credential_types::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let recorded = RecordedNotifier::new();
    env.services.notifier = Arc::new(Both(
        recorded.clone(),
        AwsNotifier::new(
            &sdk,
            "default",
            Some(format!("arn:aws:sns:{REGION}:{ACCOUNT}:t")),
        ),
    ));
    let started = Instant::now();
    let run = env
        .deploy(&image(3), &env.invoker(), &mut NoopObserver)
        .await;
    let took = started.elapsed();
    assert!(!run.succeeded());
    let output = &run.output;
    assert_eq!(
        output["deployment"]["outcome"]["status"], "rolled_back",
        "{output}"
    );
    // Five decisions, each abandoned at the 3 s bound (and the count written).
    let sent = recorded.sent();
    assert_eq!(sent.len(), 5);
    let bound = canary_lambda::notify::NOTIFY_TIMEOUT;
    assert!(took >= bound * 5, "{took:?}: the sends were not waited for");
    assert!(took < bound * 5 + Duration::from_secs(10), "{took:?}");
    let failures = env
        .services
        .store
        .notification_failures(&env.service_ref(), 3)
        .await
        .unwrap()
        .expect("the failures are counted");
    assert_eq!(failures.failed, 5);
    assert_eq!(failures.last_id.as_deref(), Some(sent[4].id.as_str()));
    assert_eq!(sent[4].detail_type, "Canary Rolled Back");
    env.shutdown().await;
}

/// Records each notification, then sends it with the AWS notifier.
#[derive(Debug)]
struct Both(RecordedNotifier, AwsNotifier);

#[async_trait::async_trait]
impl canary_lambda::Notifier for Both {
    async fn send(&self, n: &canary_core::notify::Notification) -> Result<(), String> {
        self.0.send(n).await?;
        self.1.send(n).await
    }
}
