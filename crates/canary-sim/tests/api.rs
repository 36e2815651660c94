//! The API verbs against the served cluster, through kube-rs and raw HTTP: discovery,
//! create/get/list/replace/patch/delete, optimistic concurrency, selectors, server-side
//! apply with field managers, merge and JSON patch, and Status errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use serde_json::{Value, json};

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>() },
        "data": { "k": "v" }
    }))
    .unwrap()
}

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_rs_discovers_every_served_group_and_resource() {
    let (_sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let mut found = Vec::new();
    for group in discovery.groups() {
        for (resource, _caps) in group.recommended_resources() {
            found.push(format!("{}/{}", resource.api_version, resource.plural));
        }
    }
    for expected in [
        "v1/namespaces",
        "v1/services",
        "v1/pods",
        "v1/configmaps",
        "apps/v1/deployments",
        "coordination.k8s.io/v1/leases",
        "appmesh.k8s.aws/v1beta2/meshes",
        "appmesh.k8s.aws/v1beta2/virtualnodes",
        "appmesh.k8s.aws/v1beta2/virtualrouters",
        "appmesh.k8s.aws/v1beta2/virtualservices",
        "appmesh.k8s.aws/v1beta2/virtualgateways",
        "appmesh.k8s.aws/v1beta2/gatewayroutes",
        "gateway.networking.k8s.io/v1/gateways",
        "gateway.networking.k8s.io/v1/httproutes",
        "gateway.networking.k8s.io/v1/grpcroutes",
    ] {
        assert!(
            found.iter().any(|f| f == expected),
            "{expected} not in {found:?}"
        );
    }
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "32")
    );
}

#[tokio::test]
async fn created_objects_get_uid_resource_version_generation_and_the_url_namespace() {
    let (_sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "team");
    let a = api
        .create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    let b = api
        .create(&PostParams::default(), &configmap("b", &[]))
        .await
        .unwrap();
    assert_eq!(a.metadata.namespace.as_deref(), Some("team"));
    assert_eq!(a.metadata.generation, Some(1));
    assert!(a.metadata.creation_timestamp.is_some());
    assert_ne!(a.metadata.uid, b.metadata.uid);
    let rv = |c: &ConfigMap| {
        c.metadata
            .resource_version
            .as_deref()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(rv(&b) > rv(&a));

    let again = api
        .create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap_err();
    let status = api_error(again);
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    let missing = api_error(api.get("nope").await.unwrap_err());
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));
    assert_eq!(missing.message, "configmaps \"nope\" not found");
}

#[tokio::test]
async fn a_stale_resource_version_is_rejected_with_409() {
    let (_sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let original = api
        .create(&PostParams::default(), &configmap("cm", &[]))
        .await
        .unwrap();

    let mut first = original.clone();
    first.data = Some([("k".to_string(), "first".to_string())].into());
    let replaced = api
        .replace("cm", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        original.metadata.resource_version
    );

    let mut stale = original.clone();
    stale.data = Some([("k".to_string(), "second".to_string())].into());
    let status = api_error(
        api.replace("cm", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );
    assert_eq!(api.get("cm").await.unwrap().data.unwrap()["k"], "first");

    // A merge patch carrying a stale resourceVersion is refused the same way.
    let patch = json!({ "metadata": { "resourceVersion": original.metadata.resource_version }, "data": { "k": "third" } });
    let status = api_error(
        api.patch("cm", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 409);
}

#[tokio::test]
async fn lists_filter_by_equality_set_and_existence_label_selectors() {
    let (_sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "sel");
    for (name, labels) in [
        ("web-1", vec![("app", "web"), ("version", "1")]),
        ("web-2", vec![("app", "web"), ("version", "2")]),
        ("db-1", vec![("app", "db"), ("version", "1")]),
        ("plain", vec![]),
    ] {
        api.create(&PostParams::default(), &configmap(name, &labels))
            .await
            .unwrap();
    }
    Api::<ConfigMap>::namespaced(client, "elsewhere")
        .create(
            &PostParams::default(),
            &configmap("web-9", &[("app", "web")]),
        )
        .await
        .unwrap();
    let names = |selector: &str| {
        let api = api.clone();
        let selector = selector.to_string();
        async move {
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .unwrap();
            list.items
                .into_iter()
                .map(|c| c.metadata.name.unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("app=web").await, ["web-1", "web-2"]);
    assert_eq!(names("app==web,version=2").await, ["web-2"]);
    assert_eq!(names("app!=web").await, ["db-1", "plain"]);
    assert_eq!(names("version in (1)").await, ["db-1", "web-1"]);
    assert_eq!(names("version notin (1)").await, ["plain", "web-2"]);
    assert_eq!(names("version").await, ["db-1", "web-1", "web-2"]);
    assert_eq!(names("!version").await, ["plain"]);
    assert_eq!(names("").await.len(), 4);
}

#[tokio::test]
async fn deletecollection_removes_only_the_selected_objects() {
    let (sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client, "dc");
    for (name, version) in [("a", "1"), ("b", "1"), ("c", "2")] {
        api.create(
            &PostParams::default(),
            &configmap(name, &[("version", version)]),
        )
        .await
        .unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("version=1"),
    )
    .await
    .unwrap();
    let left: Vec<String> = sim
        .list_objects("dc")
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["c"]);
    api.delete("c", &DeleteParams::default()).await.unwrap();
    assert!(sim.list_objects("dc").is_empty());
}

#[tokio::test]
async fn server_side_apply_creates_updates_and_tracks_field_managers() {
    let (sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "ssa");
    let manifest = common::deployment("web-1", "web:1", &[("app", "web")]);
    let params = PatchParams::apply("canary").force();

    let created = api
        .patch("web-1", &params, &Patch::Apply(&manifest))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let managers = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(managers.len(), 1);
    assert_eq!(
        (
            managers[0].manager.as_deref(),
            managers[0].operation.as_deref()
        ),
        (Some("canary"), Some("Apply"))
    );

    // Same config again: nothing changes, not even the resourceVersion.
    let same = api
        .patch("web-1", &params, &Patch::Apply(&manifest))
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version,
        created.metadata.resource_version
    );

    // Another manager changes replicas by merge patch and then owns that field ...
    let scaled = api
        .patch(
            "web-1",
            &PatchParams {
                field_manager: Some("scaler".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({ "spec": { "replicas": 5 } })),
        )
        .await
        .unwrap();
    assert_eq!(scaled.spec.as_ref().unwrap().replicas, Some(5));
    let scaler_owns = |d: &Deployment| {
        d.metadata
            .managed_fields
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.manager.as_deref() == Some("scaler"))
    };
    assert!(scaler_owns(&scaled));

    // ... so an unforced apply that sets replicas conflicts, and a forced one wins.
    let mut changed = manifest.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("web:2");
    let status = api_error(
        api.patch(
            "web-1",
            &PatchParams::apply("canary"),
            &Patch::Apply(&changed),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(status.message.contains("scaler"), "{}", status.message);
    let forced = api
        .patch("web-1", &params, &Patch::Apply(&changed))
        .await
        .unwrap();
    let spec = forced.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(
        spec.template.spec.as_ref().unwrap().containers[0]
            .image
            .as_deref(),
        Some("web:2")
    );
    assert_eq!(forced.metadata.generation, Some(3));
    assert!(!scaler_owns(&forced));

    // A field the manager stops applying is removed.
    let mut fewer = changed.clone();
    fewer["metadata"]["labels"] = json!({});
    fewer["metadata"].as_object_mut().unwrap().remove("labels");
    let trimmed = api
        .patch("web-1", &params, &Patch::Apply(&fewer))
        .await
        .unwrap();
    assert!(
        trimmed.metadata.labels.is_none(),
        "{:?}",
        trimmed.metadata.labels
    );

    // Apply without a field manager is a bad request.
    let (code, body) = common::send(
        &client,
        "PATCH",
        "/apis/apps/v1/namespaces/ssa/deployments/web-1",
        "application/apply-patch+yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-1\n",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (400, Some("BadRequest")),
        "{body}"
    );
    assert!(
        sim.get_object("apps/v1", "deploy", "ssa", "web-1")
            .is_some()
    );
}

#[tokio::test]
async fn an_apply_patch_in_yaml_is_accepted() {
    let (sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let yaml = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: web\nspec:\n  parentRefs:\n  - name: gw\n    port: 80\n    sectionName: http\n";
    let (code, body) = common::send(
        &client,
        "PATCH",
        "/apis/gateway.networking.k8s.io/v1/namespaces/gw/httproutes/web?fieldManager=canary&force=true",
        "application/apply-patch+yaml",
        yaml,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["spec"]["parentRefs"][0]["port"], 80);
    let stored = sim
        .get_object("gateway.networking.k8s.io/v1", "HTTPRoute", "gw", "web")
        .unwrap();
    assert_eq!(stored["metadata"]["managedFields"][0]["manager"], "canary");
}

#[tokio::test]
async fn merge_and_json_patches_change_objects_and_a_failed_test_op_changes_nothing() {
    let (_sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "p");
    api.create(&PostParams::default(), &configmap("cm", &[("a", "1")]))
        .await
        .unwrap();

    let merged = api
        .patch(
            "cm",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "labels": { "a": null, "b": "2" } }, "data": { "x": "y" } }),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.metadata.labels.clone().unwrap(),
        [("b".to_string(), "2".to_string())].into()
    );
    assert_eq!(merged.data.clone().unwrap().len(), 2);

    let path = "/api/v1/namespaces/p/configmaps/cm";
    let rv = merged.metadata.resource_version.clone().unwrap();
    let ops = json!([
        { "op": "test", "path": "/metadata/resourceVersion", "value": rv },
        { "op": "replace", "path": "/data/k", "value": "patched" },
        { "op": "remove", "path": "/data/x" },
        { "op": "add", "path": "/metadata/labels/c", "value": "3" }
    ]);
    let (code, body) = common::send(
        &client,
        "PATCH",
        path,
        "application/json-patch+json",
        &ops.to_string(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"], json!({ "k": "patched" }));
    assert_eq!(body["metadata"]["labels"]["c"], "3");

    // The resourceVersion test now fails: 422 Invalid, and the object is unchanged.
    let (code, body) = common::send(
        &client,
        "PATCH",
        path,
        "application/json-patch+json",
        &ops.to_string(),
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str(), body["kind"].as_str()),
        (422, Some("Invalid"), Some("Status")),
        "{body}"
    );
    assert_eq!(api.get("cm").await.unwrap().data.unwrap()["k"], "patched");

    let (code, body) = common::send(&client, "PATCH", path, "text/plain", "{}").await;
    assert_eq!(code, 415, "{body}");
}

#[tokio::test]
async fn unknown_resources_and_malformed_requests_answer_status_objects() {
    let (_sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let (code, body) = common::send(
        &client,
        "GET",
        "/apis/apps/v1/namespaces/x/widgets",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (code, body["kind"].as_str(), body["reason"].as_str()),
        (404, Some("Status"), Some("NotFound")),
        "{body}"
    );
    let (code, body) = common::send(
        &client,
        "GET",
        "/apis/example.com/v1",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces/x/configmaps",
        "application/json",
        "{not json",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (400, Some("BadRequest")),
        "{body}"
    );
    let bad_name =
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "Bad_Name" } });
    let (code, body) = common::send(
        &client,
        "POST",
        "/api/v1/namespaces/x/configmaps",
        "application/json",
        &bad_name.to_string(),
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (422, Some("Invalid")),
        "{body}"
    );
    let (code, body) = common::send(
        &client,
        "GET",
        "/api/v1/namespaces/x/configmaps?labelSelector=a%20in%20b",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 400, "{body}");
}

#[tokio::test]
async fn the_status_subresource_is_separate_from_the_object() {
    let (_sim, server, _clock) = common::start_manual(Duration::ZERO).await;
    let client = common::client(&server, "default").await;
    let vr = json!({
        "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
        "metadata": { "name": "r" }, "spec": { "routes": [] }, "status": { "ignored": true }
    });
    let (code, body) = common::send(
        &client,
        "POST",
        "/apis/appmesh.k8s.aws/v1beta2/namespaces/s/virtualrouters",
        "application/json",
        &vr.to_string(),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert!(body.get("status").is_none(), "{body}");
    let (code, body) = common::send(
        &client,
        "PATCH",
        "/apis/appmesh.k8s.aws/v1beta2/namespaces/s/virtualrouters/r/status",
        "application/merge-patch+json",
        r#"{"status":{"observedGeneration":1},"spec":{"routes":null}}"#,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"]["observedGeneration"], 1);
    assert_eq!(body["spec"]["routes"], json!([]));
    assert_eq!(body["metadata"]["generation"], 1);
    let _: Value = body;
}
