//! `canary cluster-sim` and `canary run` as a person runs them: separate processes, the
//! built binary, kubectl, a real clock with short waits, and Ctrl-C sent as SIGINT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use canary_kube::{Cluster, RequestPolicy};

const BIN: &str = env!("CARGO_BIN_EXE_canary");
const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/yelb/yelb-appserver/kubernetes_template.yml"
);

/// `canary cluster-sim` in the background, stopped when dropped.
struct SimProcess {
    child: Child,
    dir: tempfile::TempDir,
}

impl SimProcess {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let child = Command::new(BIN)
            .args([
                "cluster-sim",
                "--listen",
                "127.0.0.1:0",
                "--ready-delay",
                "1",
                "--kubeconfig-out",
            ])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !kubeconfig.exists() {
            assert!(Instant::now() < deadline, "cluster-sim wrote no kubeconfig");
            std::thread::sleep(Duration::from_millis(50));
        }
        let sim = Self { child, dir };
        sim.create_namespace("yelb");
        sim
    }

    /// Creates a namespace, as a person does with `kubectl create namespace` before
    /// deploying to it (the simulated cluster, like a real one, refuses objects in a
    /// namespace that does not exist). On its own thread and runtime, so it can be
    /// called from sync and async tests alike.
    fn create_namespace(&self, name: &str) {
        let kubeconfig = self.kubeconfig();
        let namespace = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name }
        });
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let cluster =
                    Cluster::from_kubeconfig_file(&kubeconfig, None, RequestPolicy::default())
                        .await
                        .unwrap();
                cluster.apply(&[namespace]).await.unwrap();
            });
        })
        .join()
        .unwrap();
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    /// A deploy.json with short waits: steps 50 and 100, `wait_time` as given.
    fn deploy_json(&self, wait_time: u64, check_interval: u64) -> PathBuf {
        let path = self.dir.path().join(format!("deploy-{wait_time}.json"));
        let doc = serde_json::json!({
            "cluster_name": "blogpost",
            "microservice_name": "yelb-appserver",
            "kubernetes_namespace": "yelb",
            "steps": [50, 100],
            "wait_time": wait_time,
            "check_interval": check_interval,
            // The default bake covers two CloudWatch metric periods (minutes); these
            // runs use no CloudWatch, so a bake as short as a step keeps them short.
            "bake_time": wait_time,
            "failure_threshold_value": 0,
            "failure_threshold_time": 60,
            "ready_timeout": 30
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    }

    fn run_command(&self, deploy_json: &Path, image: &str) -> Command {
        let mut c = Command::new(BIN);
        c.arg("run")
            .arg(deploy_json)
            .args([
                "--template",
                TEMPLATE,
                "--image",
                image,
                "--metrics",
                "none",
                "--kubeconfig",
            ])
            .arg(self.kubeconfig())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, deploy_json: &Path, image: &str) -> Output {
        self.run_command(deploy_json, image).output().unwrap()
    }

    /// The route's targets with a weight, read through the kube client.
    async fn route(&self) -> Vec<(String, u64)> {
        let cluster =
            Cluster::from_kubeconfig_file(&self.kubeconfig(), None, RequestPolicy::default())
                .await
                .unwrap();
        let route = cluster
            .get(
                "appmesh.k8s.aws/v1beta2",
                "VirtualRouter",
                "yelb",
                "yelb-appserver",
            )
            .await
            .unwrap()
            .expect("the route exists");
        canary_cli::harness::route_targets(&route)
    }

    async fn deployments(&self) -> Vec<String> {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(["get", "deployments", "-n", "yelb", "-o", "name"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether kubectl is on PATH. A missing kubectl fails the test with how to install it,
/// unless `EKS_CANARY_ALLOW_MISSING_PEERS` allows it (then `false`, announced as NOT RUN).
fn kubectl_available() -> bool {
    canary_testkit::require_program("kubectl", canary_testkit::install::KUBECTL)
        .unwrap_or_else(|e| panic!("{e}"))
        .is_some()
}

#[test]
fn kubectl_lists_deployments_on_canary_cluster_sim() {
    if !kubectl_available() {
        return;
    }
    let sim = SimProcess::start();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(sim.kubeconfig())
        .args(["get", "deployments", "-n", "yelb"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No resources found"),
        "{}",
        text(&out)
    );
}

#[test]
fn kubectl_creates_a_namespace_on_canary_cluster_sim_and_objects_need_one() {
    if !kubectl_available() {
        return;
    }
    let sim = SimProcess::start();
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(sim.kubeconfig())
            .args(args)
            .output()
            .unwrap()
    };
    let created = kubectl(&["create", "namespace", "shop"]);
    assert!(created.status.success(), "{}", text(&created));
    assert_eq!(
        String::from_utf8_lossy(&created.stdout).trim(),
        "namespace/shop created"
    );
    let listed = kubectl(&["get", "namespaces", "-o", "name"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    for ns in ["namespace/default", "namespace/shop", "namespace/yelb"] {
        assert!(names.iter().any(|n| n == ns), "{ns} missing: {names:?}");
    }
    let refused = kubectl(&[
        "create",
        "configmap",
        "cm",
        "-n",
        "nope",
        "--dry-run=client",
        "-o",
        "json",
    ]);
    assert!(refused.status.success(), "{}", text(&refused));
    let manifest = sim.dir.path().join("cm.json");
    std::fs::write(&manifest, &refused.stdout).unwrap();
    let applied = kubectl(&["apply", "-f", manifest.to_str().unwrap()]);
    assert_eq!(applied.status.code(), Some(1), "{}", text(&applied));
    assert!(
        String::from_utf8_lossy(&applied.stderr).contains("namespaces \"nope\" not found"),
        "{}",
        text(&applied)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_run_deploys_a_first_version_and_then_promotes_a_canary_on_canary_cluster_sim() {
    let sim = SimProcess::start();
    let deploy = sim.deploy_json(2, 1);

    let first = sim.run(&deploy, "repo/yelb-appserver:1");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("Summary: PROMOTED"), "{}", text(&first));
    assert!(stdout.contains("lock:        released"), "{}", text(&first));
    assert_eq!(
        sim.route().await,
        vec![("yelb-appserver-1".to_owned(), 100)]
    );

    let canary = sim.run(&deploy, "repo/yelb-appserver:2");
    assert_eq!(canary.status.code(), Some(0), "{}", text(&canary));
    let stdout = String::from_utf8_lossy(&canary.stdout);
    let stderr = String::from_utf8_lossy(&canary.stderr);
    assert!(stdout.contains("Summary: PROMOTED"), "{}", text(&canary));
    assert!(stdout.contains("v2 over stable v1"), "{}", text(&canary));
    assert!(stderr.contains("v2 at 50% (step 1/2)"), "{}", text(&canary));
    assert!(
        stderr.contains("v2 at 100% (step 2/2)"),
        "{}",
        text(&canary)
    );
    assert!(
        stderr.contains("WARNING: --metrics none"),
        "{}",
        text(&canary)
    );
    assert!(stderr.contains("metrics disabled"), "{}", text(&canary));
    assert_eq!(
        sim.route().await,
        vec![("yelb-appserver-2".to_owned(), 100)]
    );
    if kubectl_available() {
        assert_eq!(
            sim.deployments().await,
            vec!["deployment.apps/yelb-appserver-2".to_owned()]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_during_a_canary_puts_all_traffic_back_on_the_stable_version_and_releases_the_lock()
{
    let sim = SimProcess::start();
    let first = sim.run(&sim.deploy_json(2, 1), "repo/yelb-appserver:1");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));

    // A canary that would sit at 50% for a minute.
    let mut child = sim
        .run_command(&sim.deploy_json(60, 20), "repo/yelb-appserver:2")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let targets = sim.route().await;
        if targets
            .iter()
            .any(|(n, w)| n == "yelb-appserver-2" && *w == 50)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the canary never reached 50%: {targets:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let interrupt = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupt.success());
    let waited = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let _ = &mut child;
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        waited.elapsed() < Duration::from_secs(15),
        "the rollback took {:?}",
        waited.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ROLLED BACK (interrupted with Ctrl-C)"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("now v1 serves all traffic"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("lock:        released"), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Ctrl-C: rolling back"),
        "{}",
        text(&out)
    );
    assert_eq!(
        sim.route().await,
        vec![("yelb-appserver-1".to_owned(), 100)]
    );
    if kubectl_available() {
        assert_eq!(
            sim.deployments().await,
            vec!["deployment.apps/yelb-appserver-1".to_owned()]
        );
    }
}

#[test]
fn the_demo_binary_exits_0_and_prints_every_scenarios_timeline_and_the_table() {
    let started = Instant::now();
    let out = Command::new(BIN).arg("demo").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "first-deployment",
        "healthy-canary",
        "faulty-canary",
        "canary-not-ready",
        "-> v2 at 100% (step 10/10)",
        "UNHEALTHY",
        "ImagePullBackOff",
        "notifications (13):",
        "Canary Unhealthy",
        "Canary Rolled Back",
        "Every scenario ended as expected",
    ] {
        assert!(stdout.contains(needle), "no `{needle}` in\n{stdout}");
    }
}

#[test]
fn the_demo_runs_one_scenario_as_json() {
    let out = Command::new(BIN)
        .args(["demo", "--scenario", "faulty-canary", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["passed"], true);
    let scenarios = doc["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1);
    assert_eq!(scenarios[0]["outcome"], "rolled_back");
    // Rendered, deployed and first shifted at readiness, judged unhealthy, rolled back.
    let timeline = scenarios[0]["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 4, "{timeline:?}");
    let text = serde_json::to_string(timeline).unwrap();
    assert!(
        text.contains("Rollback") && text.contains("UNHEALTHY"),
        "{text}"
    );
    // And the notifications it sent, each with its detail.
    let sent: Vec<&str> = scenarios[0]["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["detail_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent,
        [
            "Canary Started",
            "Canary Ready",
            "Canary Shifted",
            "Canary Unhealthy",
            "Canary Rolled Back"
        ]
    );
    let last = &scenarios[0]["notifications"][4];
    assert_eq!(last["weight"], 10);
    assert_eq!(last["detail"]["service"], "yelb-appserver");
}

#[test]
fn the_demo_refuses_an_unknown_scenario_with_exit_code_2() {
    let out = Command::new(BIN)
        .args(["demo", "--scenario", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("faulty-canary"));
}

#[tokio::test]
async fn metrics_none_passes_every_check_and_says_metrics_are_disabled() {
    let doc = serde_json::json!({
        "cluster_name": "c1",
        "microservice_name": "yelb-appserver",
        "kubernetes_namespace": "yelb",
        "percentage_step": 50,
        "wait_time": 60,
        "container_image": "repo/app:2",
        // Even a policy that fails on too little traffic does not judge "no numbers".
        "min_request_count": 100,
    });
    let spec = canary_core::DeploySpec::parse(&doc, Some("kind: Deployment\n")).unwrap();
    let verdict = canary_metrics::check(&canary_cli::run::DisabledMetrics, &spec, 2, None, 1_000)
        .await
        .unwrap();
    assert_eq!(verdict.status, canary_core::VerdictStatus::Healthy);
    assert!(
        verdict.reason.contains("metrics disabled"),
        "{}",
        verdict.reason
    );
    assert_eq!(verdict.datapoints, 0);
}
