//! The real kubectl (the one on PATH) against the simulated cluster: apply a rendered
//! seed template, get, and delete, as a user would run them. A missing kubectl fails the
//! test with how to install it (canary_testkit::require_program).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use canary_core::provider::Target;
use canary_core::provider::appmesh::APP_MESH;
use canary_sim::kubeconfig_yaml;

const KUBECTL: &str = "kubectl";
const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/yelb/yelb-appserver/kubernetes_template.yml"
);

fn render_seed(image: &str, routes: &str) -> String {
    let template = std::fs::read_to_string(SEED).expect("the seed template is readable");
    template
        .replace("${KUBERNETES_NAMESPACE}", "yelb")
        .replace("${MICROSERVICE_NAME}", "yelb-appserver")
        .replace("${CONTAINER_IMAGE}", image)
        .replace("${CANARY_VERSION}", "1")
        .replace("${CANARY_ROUTES}", routes)
}

async fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    common::kubectl(kubeconfig, args).await
}

fn text(out: &Output) -> String {
    common::output_text(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_gets_and_deletes_a_rendered_seed_template() {
    let kubectl_found = canary_testkit::require_program(KUBECTL, canary_testkit::install::KUBECTL)
        .unwrap_or_else(|e| panic!("{e}"));
    if kubectl_found.is_none() {
        return;
    }
    let (sim, server, clock) = common::start_manual(Duration::from_secs(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_yaml(&server.url, "default")).unwrap();
    let manifest = dir.path().join("appserver.yml");
    std::fs::write(
        &manifest,
        render_seed(
            "example/yelb:1",
            "{virtualNodeRef: {name: yelb-appserver-1}, weight: 100}",
        ),
    )
    .unwrap();
    let manifest_arg = manifest.to_str().unwrap();

    let applied = kubectl(&kubeconfig, &["apply", "-f", manifest_arg]).await;
    assert!(applied.status.success(), "{}", text(&applied));
    let stdout = String::from_utf8_lossy(&applied.stdout);
    for line in [
        "virtualnode.appmesh.k8s.aws/yelb-appserver-1 created",
        "virtualrouter.appmesh.k8s.aws/yelb-appserver created",
        "virtualservice.appmesh.k8s.aws/yelb-appserver created",
        "service/yelb-appserver-1 created",
        "deployment.apps/yelb-appserver-1 created",
        "service/yelb-appserver created",
    ] {
        assert!(
            stdout.contains(line),
            "missing `{line}` in\n{}",
            text(&applied)
        );
    }
    assert!(
        sim.get_object("apps/v1", "Deployment", "yelb", "yelb-appserver-1")
            .is_some()
    );

    // Not ready yet, then ready once the clock passes the delay.
    let got = kubectl(&kubeconfig, &["get", "deployments", "-n", "yelb"]).await;
    assert!(got.status.success(), "{}", text(&got));
    let table = String::from_utf8_lossy(&got.stdout);
    assert!(
        table.contains("NAME") && table.contains("READY"),
        "{}",
        text(&got)
    );
    assert!(
        table.contains("yelb-appserver-1") && table.contains("0/1"),
        "{}",
        text(&got)
    );
    // `kubectl rollout status` watches until the clock passes the delay.
    let rollout = tokio::spawn({
        let kubeconfig = kubeconfig.clone();
        async move {
            kubectl(
                &kubeconfig,
                &[
                    "rollout",
                    "status",
                    "deployment/yelb-appserver-1",
                    "-n",
                    "yelb",
                    "--timeout=30s",
                ],
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    clock.set(common::T0 + 2_000);
    let rolled = rollout.await.unwrap();
    assert!(rolled.status.success(), "{}", text(&rolled));
    assert!(
        String::from_utf8_lossy(&rolled.stdout).contains("successfully rolled out"),
        "{}",
        text(&rolled)
    );
    let got = kubectl(&kubeconfig, &["get", "deployments", "-n", "yelb"]).await;
    assert!(
        String::from_utf8_lossy(&got.stdout).contains("1/1"),
        "{}",
        text(&got)
    );

    let routers = kubectl(
        &kubeconfig,
        &["get", "virtualrouters", "-n", "yelb", "-o", "json"],
    )
    .await;
    assert!(routers.status.success(), "{}", text(&routers));
    let list: serde_json::Value = serde_json::from_slice(&routers.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["metadata"]["name"], "yelb-appserver");
    assert_eq!(
        APP_MESH.read(&items[0]).unwrap(),
        vec![vec![Target::new("yelb-appserver-1", 100)]],
        "{list}"
    );

    // Applying the same file again changes nothing.
    let again = kubectl(&kubeconfig, &["apply", "-f", manifest_arg]).await;
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("deployment.apps/yelb-appserver-1 unchanged"),
        "{}",
        text(&again)
    );

    // A changed file is patched in: a strategic merge patch for the Deployment (the
    // container keeps its ports) and a merge patch for the VirtualRouter.
    let routes = "{virtualNodeRef: {name: yelb-appserver-1}, weight: 60}, {virtualNodeRef: {name: yelb-appserver-0}, weight: 40}";
    std::fs::write(&manifest, render_seed("example/yelb:2", routes)).unwrap();
    let changed = kubectl(&kubeconfig, &["apply", "-f", manifest_arg]).await;
    assert!(changed.status.success(), "{}", text(&changed));
    let stdout = String::from_utf8_lossy(&changed.stdout);
    assert!(
        stdout.contains("deployment.apps/yelb-appserver-1 configured"),
        "{}",
        text(&changed)
    );
    assert!(
        stdout.contains("virtualrouter.appmesh.k8s.aws/yelb-appserver configured"),
        "{}",
        text(&changed)
    );
    let deployment = sim
        .get_object("apps/v1", "deployments", "yelb", "yelb-appserver-1")
        .unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "example/yelb:2");
    assert_eq!(
        container["ports"],
        serde_json::json!([{ "containerPort": 4567 }])
    );
    assert_eq!(deployment["metadata"]["generation"], 2);
    let history = sim.weight_history("yelb");
    let last = history.last().unwrap();
    assert_eq!(
        last.weights,
        vec![
            ("yelb-appserver-1".to_string(), 60),
            ("yelb-appserver-0".to_string(), 40)
        ]
    );

    let deleted = kubectl(&kubeconfig, &["delete", "-f", manifest_arg]).await;
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(
        String::from_utf8_lossy(&deleted.stdout)
            .contains("deployment.apps \"yelb-appserver-1\" deleted"),
        "{}",
        text(&deleted)
    );
    assert!(
        sim.get_object("apps/v1", "Deployment", "yelb", "yelb-appserver-1")
            .is_none()
    );
    assert!(
        sim.list_objects("yelb").is_empty(),
        "{:?}",
        sim.list_objects("yelb")
    );

    if std::env::var_os("KUBECTL_VERBOSE").is_some() {
        for r in sim.requests() {
            eprintln!("{} {}?{}", r.method, r.path, r.query);
        }
    }
    let gone = kubectl(
        &kubeconfig,
        &["get", "deployment", "yelb-appserver-1", "-n", "yelb"],
    )
    .await;
    assert_eq!(gone.status.code(), Some(1), "{}", text(&gone));
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "{}",
        text(&gone)
    );
}
