//! A whole deployment through `canary run` judged by a real Prometheus: `canary
//! cluster-sim` as a process with simulated traffic (`--traffic`) and a slow image
//! (`--latency`), a Prometheus scraping its `/metrics` every second, a first `canary run`
//! (version 1, no canary phase), then a canary whose health comes from the deploy.json's
//! `metrics` section (the `istio` preset, `max_latency_ms` 200). A healthy image is
//! promoted; the slow one is rolled back on the latency rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use canary_kube::{Cluster, RequestPolicy};
use canary_testkit::prometheus::PrometheusServer;

const BIN: &str = env!("CARGO_BIN_EXE_canary");
const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/yelb/yelb-appserver/kubernetes_template.yml"
);
const NAMESPACE: &str = "yelb";
const SERVICE: &str = "yelb-appserver";
const STABLE_IMAGE: &str = "repo/yelb-appserver:1";
const GOOD_IMAGE: &str = "repo/yelb-appserver:good";
const SLOW_IMAGE: &str = "repo/yelb-appserver:slow";
/// The slow image's median latency: its p99 is far above `MAX_LATENCY_MS`, while the
/// default image's (20 ms median) is far below.
const SLOW_MEDIAN_MS: u32 = 400;
const MAX_LATENCY_MS: f64 = 200.0;
/// The window of `increase()` and `rate()`, in seconds (`failure_threshold_time`).
const WINDOW_SECS: u64 = 5;

/// `canary cluster-sim` with 50 requests a second to yelb-appserver and the slow image
/// set, plus a Prometheus scraping it every second; both stopped when dropped.
struct World {
    sim: Child,
    dir: tempfile::TempDir,
    prometheus: PrometheusServer,
}

impl World {
    /// `None` when Prometheus is missing and allowed to be (announced by the testkit).
    fn start() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig.yaml");
        let sim = Command::new(BIN)
            .args([
                "cluster-sim",
                "--listen",
                "127.0.0.1:0",
                "--ready-delay",
                "1",
                "--traffic",
                &format!("{NAMESPACE}/{SERVICE}=50"),
                "--latency",
                &format!("{SLOW_IMAGE}={SLOW_MEDIAN_MS}"),
                "--kubeconfig-out",
            ])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Stops the simulator if anything below fails.
        let mut guard = KillOnDrop(Some(sim));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !kubeconfig.exists() {
            assert!(Instant::now() < deadline, "cluster-sim wrote no kubeconfig");
            std::thread::sleep(Duration::from_millis(50));
        }
        let target = sim_address(&std::fs::read_to_string(&kubeconfig).unwrap());
        let prometheus =
            PrometheusServer::scraping(&[&target], 1).unwrap_or_else(|e| panic!("{e}"))?;
        Some(Self {
            sim: guard.0.take().unwrap(),
            dir,
            prometheus,
        })
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    /// The deploy.json: steps 50 and 100 with short waits, health from this world's
    /// Prometheus through the `istio` preset, latency at most 200 ms at p99.
    ///
    /// `no_data` is `hold` with a small `min_request_count`: in the first seconds after
    /// the canary starts receiving traffic Prometheus may hold one sample of its series,
    /// and `increase()` needs two, so a check then sees no requests; it waits for the
    /// next check instead of passing a canary nothing was measured of.
    fn deploy_json(&self) -> PathBuf {
        let path = self.dir.path().join("deploy.json");
        let doc = serde_json::json!({
            "cluster_name": "blogpost",
            "microservice_name": SERVICE,
            "kubernetes_namespace": NAMESPACE,
            "steps": [50, 100],
            "wait_time": 6,
            "check_interval": 2,
            "bake_time": 4,
            "failure_threshold_value": 0,
            "failure_threshold_time": WINDOW_SECS,
            "min_request_count": 20,
            "no_data": "hold",
            "ready_timeout": 30,
            "metrics": {
                "source": "prometheus",
                "url": self.prometheus.url,
                "preset": "istio",
                "max_latency_ms": MAX_LATENCY_MS
            }
        });
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    }

    /// `canary run` with the deploy.json's own metrics (no `--metrics` flag).
    fn run(&self, image: &str) -> Output {
        Command::new(BIN)
            .arg("run")
            .arg(self.deploy_json())
            .args(["--template", TEMPLATE, "--image", image, "--kubeconfig"])
            .arg(self.kubeconfig())
            .output()
            .unwrap()
    }

    async fn cluster(&self) -> Cluster {
        Cluster::from_kubeconfig_file(&self.kubeconfig(), None, RequestPolicy::default())
            .await
            .unwrap()
    }

    /// The route's targets with a weight.
    async fn route(&self) -> Vec<(String, u64)> {
        let route = self
            .cluster()
            .await
            .get(
                "appmesh.k8s.aws/v1beta2",
                "VirtualRouter",
                NAMESPACE,
                SERVICE,
            )
            .await
            .unwrap()
            .expect("the route exists");
        canary_cli::harness::route_targets(&route)
    }

    /// Which of a version's objects (Deployment, Service, VirtualNode) exist.
    async fn version_objects(&self, version: u32) -> Vec<&'static str> {
        let cluster = self.cluster().await;
        let name = format!("{SERVICE}-{version}");
        let mut found = Vec::new();
        for (api_version, kind) in [
            ("apps/v1", "Deployment"),
            ("v1", "Service"),
            ("appmesh.k8s.aws/v1beta2", "VirtualNode"),
        ] {
            if cluster
                .get(api_version, kind, NAMESPACE, &name)
                .await
                .unwrap()
                .is_some()
            {
                found.push(kind);
            }
        }
        found
    }

    /// Deploys version 1 (a first deployment: no canary phase, no health check).
    /// Creates the namespace first, as a person does with `kubectl create namespace`
    /// (the simulated cluster, like a real one, refuses objects in a namespace that does
    /// not exist), then deploys version 1.
    async fn first_deployment(&self) {
        let namespace = serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NAMESPACE }
        });
        self.cluster()
            .await
            .apply(&[namespace])
            .await
            .expect("namespace created");
        let first = self.run(STABLE_IMAGE);
        assert_eq!(first.status.code(), Some(0), "{}", text(&first));
        let stdout = String::from_utf8_lossy(&first.stdout);
        assert!(stdout.contains("Summary: PROMOTED"), "{}", text(&first));
        assert!(stdout.contains("0 health checks"), "{}", text(&first));
        assert_eq!(self.route().await, vec![(format!("{SERVICE}-1"), 100)]);
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `127.0.0.1:PORT` from the kubeconfig's `server: "http://127.0.0.1:PORT"`.
fn sim_address(kubeconfig: &str) -> String {
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .map(|s| {
            s.trim()
                .trim_matches('"')
                .trim_start_matches("http://")
                .to_owned()
        })
        .unwrap_or_else(|| panic!("no server in the kubeconfig:\n{kubeconfig}"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The summary's `last check:` line.
fn last_check(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("last check:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no `last check:` in\n{stdout}"))
}

/// The number just before `after` in `line` (`216.56 requests` → 216.56).
fn number_before(line: &str, after: &str) -> f64 {
    let at = line
        .find(after)
        .unwrap_or_else(|| panic!("no `{after}` in `{line}`"));
    line[..at]
        .split_whitespace()
        .next_back()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number before `{after}` in `{line}`"))
}

/// The number just after `before` in `line` (`latency p99 85.73 ms` → 85.73).
fn number_after(line: &str, before: &str) -> f64 {
    let at = line
        .find(before)
        .unwrap_or_else(|| panic!("no `{before}` in `{line}`"));
    line[at + before.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after `{before}` in `{line}`"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_judged_by_prometheus_is_promoted() {
    let Some(world) = World::start() else {
        return;
    };
    world.first_deployment().await;

    let canary = world.run(GOOD_IMAGE);
    let all = text(&canary);
    assert_eq!(canary.status.code(), Some(0), "{all}");
    let stdout = String::from_utf8_lossy(&canary.stdout);
    let stderr = String::from_utf8_lossy(&canary.stderr);
    assert!(stdout.contains("Summary: PROMOTED"), "{all}");
    assert!(stdout.contains("v2 over stable v1"), "{all}");
    assert!(stdout.contains("now v2 serves all traffic"), "{all}");
    assert!(stdout.contains("lock:        released"), "{all}");
    assert!(!stderr.contains("metrics disabled"), "{all}");
    // Both steps were taken, each judged healthy before moving on.
    assert!(stderr.contains("v2 at 50% (step 1/2)"), "{all}");
    assert!(stderr.contains("v2 at 100% (step 2/2)"), "{all}");
    // A healthy verdict at 50% led to the shift to 100% (one line when the check and
    // the shift are one task, two otherwise).
    assert!(
        stderr.contains("-> next step")
            || stderr
                .lines()
                .any(|l| l.contains("healthy:") && l.contains("-> v2 at 100%")),
        "{all}"
    );
    assert!(stderr.contains("-> promote"), "{all}");
    assert!(!stderr.contains("UNHEALTHY"), "{all}");

    // The last verdict's numbers are Prometheus's: requests of the 5 s window (50 a
    // second at 100%: about 250, never more than the window can hold) and the p99
    // latency of the default 20 ms median (its histogram's p99 is well under 200 ms).
    let check = last_check(&stdout);
    assert!(check.starts_with("Healthy:"), "{check}");
    assert!(check.contains("within thresholds"), "{check}");
    assert!(check.contains(&format!("over {WINDOW_SECS} s")), "{check}");
    let requests = number_before(check, " requests");
    assert!(requests > 20.0 && requests < 400.0, "{check}");
    assert_eq!(number_before(check, " errors"), 0.0, "{check}");
    let p99 = number_after(check, "latency p99 ");
    assert!(p99 > 20.0 && p99 < MAX_LATENCY_MS, "{check}");

    assert_eq!(world.route().await, vec![(format!("{SERVICE}-2"), 100)]);
    assert_eq!(
        world.version_objects(2).await,
        ["Deployment", "Service", "VirtualNode"]
    );
    assert!(world.version_objects(1).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_with_a_latency_regression_judged_by_prometheus_is_rolled_back() {
    let Some(world) = World::start() else {
        return;
    };
    world.first_deployment().await;

    let canary = world.run(SLOW_IMAGE);
    let all = text(&canary);
    // `canary run` exits 1 for a rollback by the state machine.
    assert_eq!(canary.status.code(), Some(1), "{all}");
    let stdout = String::from_utf8_lossy(&canary.stdout);
    let stderr = String::from_utf8_lossy(&canary.stderr);
    assert!(stdout.contains("Summary: ROLLED BACK"), "{all}");
    assert!(!stdout.contains("interrupted"), "{all}");
    assert!(stdout.contains("now v1 serves all traffic"), "{all}");
    assert!(stdout.contains("reached 50% (step 1/2)"), "{all}");
    assert!(stdout.contains("lock:        released"), "{all}");
    assert!(stderr.contains("UNHEALTHY"), "{all}");
    assert!(stderr.contains("-> roll back"), "{all}");
    assert!(!stderr.contains("v2 at 100%"), "{all}");

    // The reason names the latency rule with Prometheus's p99, far above the limit.
    let reason = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("reason:"))
        .unwrap_or_else(|| panic!("no reason in {all}"));
    assert!(
        reason.contains("rolled back to yelb-appserver-1"),
        "{reason}"
    );
    assert!(
        reason.contains("is above max_latency_ms 200 ms"),
        "{reason}"
    );
    let p99 = number_after(reason, "latency p99 ");
    assert!(p99 > f64::from(SLOW_MEDIAN_MS), "{reason}");
    let check = last_check(&stdout);
    assert!(check.starts_with("Unhealthy:"), "{check}");
    assert!(number_before(check, " requests") > 0.0, "{check}");

    assert_eq!(world.route().await, vec![(format!("{SERVICE}-1"), 100)]);
    assert!(world.version_objects(2).await.is_empty());
    assert_eq!(
        world.version_objects(1).await,
        ["Deployment", "Service", "VirtualNode"]
    );
}

/// Bad traffic settings are usage errors naming the flag and the value, before
/// anything is served.
#[test]
fn cluster_sim_refuses_bad_traffic_settings_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("k.yaml");
    for (flag, value) in [
        ("--traffic", "yelb-appserver=50"),
        ("--error-rate", "repo/app:2=1.5"),
        ("--latency", "repo/app:2=0"),
    ] {
        let out = Command::new(BIN)
            .args(["cluster-sim", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .args([flag, value])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(flag) && stderr.contains(value),
            "{}",
            text(&out)
        );
        assert!(!Path::new(&kubeconfig).exists());
    }
    let out = Command::new(BIN)
        .args(["cluster-sim", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .args(["--latency", "a:1=10", "--latency", "a:1=20"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid --latency `a:1=20`"),
        "{}",
        text(&out)
    );
    assert!(!Path::new(&kubeconfig).exists());
}
