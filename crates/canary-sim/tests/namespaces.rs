//! Namespaces as kube-apiserver treats them, and bodies it cannot read: objects refused
//! in a namespace that does not exist (the NamespaceLifecycle 404, exactly), namespaces
//! created, listed, read and deleted with what is in them, the namespaces a cluster
//! keeps, the library's implicit namespaces, `kubectl create namespace` (a protobuf
//! body), and the 400 / 415 Status answers to bodies the simulator cannot read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use canary_sim::{SimConfig, kubeconfig_yaml};
use serde_json::{Value, json};

fn configmap(name: &str) -> String {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name }, "data": { "k": "v" }
    })
    .to_string()
}

fn namespace(name: &str) -> String {
    json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } }).to_string()
}

/// The Status kube-apiserver's NamespaceLifecycle admission answers for a missing
/// namespace (`errors.NewNotFound(v1.Resource("namespaces"), ns)`).
fn namespace_not_found(ns: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure",
        "message": format!("namespaces \"{ns}\" not found"),
        "reason": "NotFound",
        "details": { "name": ns, "kind": "namespaces" },
        "code": 404,
    })
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn objects_in_a_namespace_that_does_not_exist_are_refused_as_kube_apiserver_refuses_them() {
    let (sim, server, _clock) = common::start_with(SimConfig::with_strict_namespaces).await;
    let client = common::client(&server, "default").await;

    // POST, as `kubectl create` or kube-rs `Api::create`, dry run or not.
    for path in [
        "/api/v1/namespaces/shop/configmaps",
        "/api/v1/namespaces/shop/configmaps?dryRun=All",
    ] {
        let (code, body) =
            common::send(&client, "POST", path, "application/json", &configmap("cm")).await;
        assert_eq!((code, &body), (404, &namespace_not_found("shop")), "{path}");
    }
    // A server-side apply that would create the object.
    let (code, body) = common::send(
        &client,
        "PATCH",
        "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=canary&force=true",
        "application/apply-patch+yaml",
        &common::deployment("web", "shop/web:1", &[("app", "web")]).to_string(),
    )
    .await;
    assert_eq!((code, &body), (404, &namespace_not_found("shop")));
    // An invalid object in a missing namespace: admission comes before validation.
    let (code, body) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces/shop/configmaps",
        "application/json",
        &configmap("Not_A_Name"),
    )
    .await;
    assert_eq!((code, &body), (404, &namespace_not_found("shop")));
    // Reads in a missing namespace are plain: an empty list, a missing object.
    let (code, body) = common::send(
        &client,
        "GET",
        "/api/v1/namespaces/shop/configmaps",
        "application/json",
        "",
    )
    .await;
    assert_eq!((code, body["items"].clone()), (200, json!([])));
    let (code, body) = common::send(
        &client,
        "GET",
        "/api/v1/namespaces/shop/configmaps/cm",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (code, body["message"].as_str()),
        (404, Some("configmaps \"cm\" not found"))
    );
    assert!(sim.list_objects("shop").is_empty());
    // A refused request writes nothing.
    assert!(
        sim.get_object("v1", "namespaces", "", "shop").is_none(),
        "the namespace was not created on the side"
    );
}

#[tokio::test]
async fn a_created_namespace_accepts_objects_and_deleting_it_deletes_them() {
    let (sim, server, _clock) = common::start_with(SimConfig::with_strict_namespaces).await;
    let client = common::client(&server, "default").await;

    let (code, ns) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        &namespace("shop"),
    )
    .await;
    assert_eq!(code, 201, "{ns}");
    // What kube-apiserver sets on every namespace.
    assert_eq!(
        ns["metadata"]["labels"],
        json!({ "kubernetes.io/metadata.name": "shop" })
    );
    assert_eq!(ns["spec"], json!({ "finalizers": ["kubernetes"] }));
    assert_eq!(ns["status"], json!({ "phase": "Active" }));
    assert!(ns["metadata"]["uid"].is_string() && ns["metadata"]["resourceVersion"].is_string());

    let (code, body) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces/shop/configmaps",
        "application/json",
        &configmap("cm"),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = common::send(
        &client,
        "PATCH",
        "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=canary",
        "application/apply-patch+yaml",
        &common::deployment("web", "shop/web:1", &[("app", "web")]).to_string(),
    )
    .await;
    assert_eq!(code, 201, "{body}");

    let (code, got) = common::send(
        &client,
        "GET",
        "/api/v1/namespaces/shop",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (code, &got["metadata"]["uid"]),
        (200, &ns["metadata"]["uid"])
    );
    let (_, list) =
        common::send(&client, "GET", "/api/v1/namespaces", "application/json", "").await;
    assert_eq!(
        names(&list),
        [
            "default",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "shop"
        ]
    );
    let (code, again) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        &namespace("shop"),
    )
    .await;
    assert_eq!(
        (code, again["reason"].as_str(), again["message"].as_str()),
        (
            409,
            Some("AlreadyExists"),
            Some("namespaces \"shop\" already exists")
        )
    );

    let (code, deleted) = common::send(
        &client,
        "DELETE",
        "/api/v1/namespaces/shop",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (
            code,
            deleted["status"].as_str(),
            &deleted["details"]["name"]
        ),
        (200, Some("Success"), &json!("shop")),
        "{deleted}"
    );
    assert!(
        sim.list_objects("shop").is_empty(),
        "{:?}",
        sim.list_objects("shop")
    );
    let (code, body) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces/shop/configmaps",
        "application/json",
        &configmap("cm"),
    )
    .await;
    assert_eq!((code, &body), (404, &namespace_not_found("shop")));
    // Namespaces are deleted one by one, as discovery says.
    let (code, body) = common::send(
        &client,
        "DELETE",
        "/api/v1/namespaces",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (405, Some("MethodNotAllowed")),
        "{body}"
    );
}

#[tokio::test]
async fn the_namespaces_a_cluster_keeps_cannot_be_deleted_and_names_must_be_dns_labels() {
    let (sim, server, _clock) = common::start_with(SimConfig::with_strict_namespaces).await;
    let client = common::client(&server, "default").await;
    for ns in ["default", "kube-system", "kube-public"] {
        let (code, body) = common::send(
            &client,
            "DELETE",
            &format!("/api/v1/namespaces/{ns}"),
            "application/json",
            "",
        )
        .await;
        assert_eq!(
            (code, body),
            (
                403,
                json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure",
                    "message": format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted"),
                    "reason": "Forbidden",
                    "details": { "name": ns, "kind": "namespaces" },
                    "code": 403,
                })
            )
        );
    }
    assert!(sim.get_object("v1", "Namespace", "", "default").is_some());
    // kube-node-lease is not kept.
    let (code, _) = common::send(
        &client,
        "DELETE",
        "/api/v1/namespaces/kube-node-lease",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces",
        "application/json",
        &namespace("shop.example"),
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (422, Some("Invalid")),
        "{body}"
    );
}

#[tokio::test]
async fn the_library_default_still_creates_objects_in_any_namespace() {
    let (sim, server, _clock) = common::start_manual(std::time::Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let (code, body) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces/anywhere/configmaps",
        "application/json",
        &configmap("cm"),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert!(sim.get_object("v1", "Namespace", "", "anywhere").is_none());
    // The namespaces of a new cluster, and one created through the library.
    assert_eq!(sim.list_objects("").len(), 4);
    let shop = sim.create_namespace("shop").unwrap();
    assert_eq!(shop["status"]["phase"], "Active");
    let again = sim.create_namespace("shop").unwrap_err();
    assert_eq!(
        (again.code(), again.to_string()),
        (409, "namespaces \"shop\" already exists".to_string())
    );
}

#[tokio::test]
async fn bodies_the_simulator_cannot_read_get_the_status_a_real_server_answers() {
    let (sim, server, _clock) = common::start_with(SimConfig::with_strict_namespaces).await;
    let client = common::client(&server, "default").await;
    let path = "/api/v1/namespaces/default/configmaps";

    let (code, body) = common::send(&client, "POST", path, "application/json", "{\"kind\": ").await;
    assert_eq!(
        (
            code,
            body["kind"].as_str(),
            body["status"].as_str(),
            body["reason"].as_str(),
            body["code"].as_u64()
        ),
        (
            400,
            Some("Status"),
            Some("Failure"),
            Some("BadRequest"),
            Some(400)
        ),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );

    // Protobuf of a kind the simulator does not decode: 415, as for a custom resource.
    let (code, body) = common::send(
        &client,
        "POST",
        path,
        "application/vnd.kubernetes.protobuf",
        "k8s\u{0}\n\u{f}\n\u{2}v1\u{12}\tConfigMap\u{12}\u{0}",
    )
    .await;
    assert_eq!(
        (code, body),
        (
            415,
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
                "reason": "UnsupportedMediaType", "code": 415,
            })
        )
    );
    // Another media type altogether.
    let (code, body) =
        common::send(&client, "PUT", &format!("{path}/cm"), "text/plain", "cm").await;
    assert_eq!(
        (code, body["reason"].as_str(), body["message"].as_str()),
        (
            415,
            Some("UnsupportedMediaType"),
            Some(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
            )
        )
    );
    // A patch type the server does not know.
    let (code, body) = common::send(
        &client,
        "PATCH",
        &format!("{path}/cm"),
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("application/apply-patch+yaml, application/strategic-merge-patch+json"),
        "{body}"
    );
    // A protobuf body that is not protobuf.
    let (code, body) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces",
        "application/vnd.kubernetes.protobuf",
        "{\"metadata\":{\"name\":\"shop\"}}",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (400, Some("BadRequest")),
        "{body}"
    );
    // YAML is read when it says so.
    let (code, body) = common::send(
        &client,
        "POST",
        path,
        "application/yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yaml}\n",
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert!(
        sim.get_object("v1", "ConfigMap", "default", "from-yaml")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_lists_and_uses_namespaces() {
    let found = canary_testkit::require_program("kubectl", canary_testkit::install::KUBECTL)
        .unwrap_or_else(|e| panic!("{e}"));
    if found.is_none() {
        return;
    }
    let (sim, server, _clock) = common::start_with(SimConfig::with_strict_namespaces).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_yaml(&server.url, "default")).unwrap();

    // kubectl 1.32 sends this one as protobuf.
    let created = common::kubectl(&kubeconfig, &["create", "namespace", "shop"]).await;
    assert!(
        created.status.success(),
        "{}",
        common::output_text(&created)
    );
    assert_eq!(
        String::from_utf8_lossy(&created.stdout).trim(),
        "namespace/shop created"
    );
    let shop = sim.get_object("v1", "Namespace", "", "shop").unwrap();
    assert_eq!(
        shop["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "shop"
    );

    let listed = common::kubectl(&kubeconfig, &["get", "namespaces"]).await;
    assert!(listed.status.success(), "{}", common::output_text(&listed));
    let table = String::from_utf8_lossy(&listed.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "STATUS", "AGE"], "{table}");
    let named: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        named,
        [
            ("default", "Active"),
            ("kube-node-lease", "Active"),
            ("kube-public", "Active"),
            ("kube-system", "Active"),
            ("shop", "Active"),
        ],
        "{table}"
    );

    let manifest = dir.path().join("cm.json");
    std::fs::write(&manifest, configmap("cm")).unwrap();
    let manifest = manifest.to_str().unwrap();
    let applied = common::kubectl(&kubeconfig, &["apply", "-n", "shop", "-f", manifest]).await;
    assert!(
        applied.status.success(),
        "{}",
        common::output_text(&applied)
    );
    assert!(sim.get_object("v1", "ConfigMap", "shop", "cm").is_some());
    let refused = common::kubectl(&kubeconfig, &["apply", "-n", "nope", "-f", manifest]).await;
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{}",
        common::output_text(&refused)
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("NotFound") && stderr.contains("namespaces \"nope\" not found"),
        "{}",
        common::output_text(&refused)
    );

    let deleted = common::kubectl(&kubeconfig, &["delete", "namespace", "shop"]).await;
    assert!(
        deleted.status.success(),
        "{}",
        common::output_text(&deleted)
    );
    assert!(sim.get_object("v1", "ConfigMap", "shop", "cm").is_none());
    let kept = common::kubectl(&kubeconfig, &["delete", "namespace", "default"]).await;
    assert_eq!(
        kept.status.code(),
        Some(1),
        "{}",
        common::output_text(&kept)
    );
    assert!(
        String::from_utf8_lossy(&kept.stderr).contains("this namespace may not be deleted"),
        "{}",
        common::output_text(&kept)
    );
}
