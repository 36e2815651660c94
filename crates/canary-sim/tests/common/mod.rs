//! Shared helpers for the integration tests: start a served cluster, build a kube-rs
//! client from the written kubeconfig, and send raw requests with any content type.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use canary_core::clock::{Clock, ManualClock};
use canary_sim::{SimCluster, SimConfig, SimServer, kubeconfig_yaml};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use serde_json::Value;

/// Start of the manual clock used by the tests.
pub const T0: i64 = 1_767_225_600_000;

/// A served cluster on a manual clock with the given ready delay.
pub async fn start_manual(ready_delay: Duration) -> (SimCluster, SimServer, ManualClock) {
    let clock = ManualClock::starting_at(T0);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let sim = SimCluster::new(SimConfig::new(shared, ready_delay));
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sim, server, clock)
}

/// Runs the kubectl on PATH with `--kubeconfig` and `args` (with `-v=8` when
/// `KUBECTL_VERBOSE` is set), off the runtime so the served cluster keeps answering.
pub async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    if std::env::var_os("KUBECTL_VERBOSE").is_some() {
        cmd.arg("-v=8");
    }
    let run = tokio::task::spawn_blocking(move || cmd.output());
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("kubectl finished within 60 s")
        .expect("the kubectl task ran")
        .expect("kubectl runs")
}

/// A command's exit code, stdout and stderr, for assertion messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A served cluster on a manual clock (starting at [`T0`], Deployments ready at once),
/// configured by `configure`.
pub async fn start_with(
    configure: impl FnOnce(SimConfig) -> SimConfig,
) -> (SimCluster, SimServer, ManualClock) {
    let clock = ManualClock::starting_at(T0);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let sim = SimCluster::new(configure(SimConfig::new(shared, Duration::ZERO)));
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sim, server, clock)
}

/// A kube-rs client built from the kubeconfig the simulator writes.
pub async fn client(server: &SimServer, namespace: &str) -> kube::Client {
    let yaml = kubeconfig_yaml(&server.url, namespace);
    let kubeconfig = Kubeconfig::from_yaml(&yaml).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    config.read_timeout = Some(Duration::from_secs(2));
    kube::Client::try_from(config).unwrap()
}

/// Sends a raw request and returns the status code and the JSON body.
pub async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .unwrap();
    let response = client.send(request).await.unwrap();
    let code = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (code, value)
}

/// A Deployment manifest.
pub fn deployment(name: &str, image: &str, labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::String((*v).to_string())))
        .collect();
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": { "containers": [{ "name": "app", "image": image }] }
            }
        }
    })
}

/// Applies (server-side, forced) an object of the given type in `namespace`.
pub async fn apply(
    client: &kube::Client,
    namespace: &str,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    body: Value,
) {
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let name = body["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(
        &name,
        &PatchParams::apply("test").force(),
        &Patch::Apply(&body),
    )
    .await
    .unwrap();
}
