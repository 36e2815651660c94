//! Cluster operations: server-side apply of rendered objects, readiness of a version's
//! Deployment (and why it is not coming), and removal of one version's objects by label.
//!
//! Every request goes through [`Cluster::call`](crate::client::Cluster), so it has a
//! timeout, is retried when the server is busy and is counted. The judgement of a
//! Deployment and its pods is pure (`readiness.rs`) and tested without a server.

use canary_core::labels;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::Value;

use crate::client::Cluster;
use crate::error::{Error, Result};
use crate::readiness::{Readiness, deployment_is_ready, evaluate_readiness, match_labels_selector};
use crate::resources::{Resource, resource};

/// One object on the cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectKey {
    /// `apps/v1`, `v1`, …
    pub api_version: String,
    /// `Deployment`, …
    pub kind: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// What [`Cluster::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ApplyReport {
    /// The objects applied, in order.
    pub applied: Vec<ObjectKey>,
}

/// What a removal did.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct DeleteReport {
    /// The objects deleted (or already gone between list and delete).
    pub deleted: Vec<ObjectKey>,
    /// `apiVersion kind` pairs whose resource does not exist on the server (nothing to do).
    pub unknown_kinds: Vec<String>,
}

fn api_for(client: kube::Client, r: &Resource, namespace: &str) -> Api<DynamicObject> {
    if r.namespaced {
        Api::namespaced_with(client, namespace, &r.api)
    } else {
        Api::all_with(client, &r.api)
    }
}

fn what(method: &str, r: &Resource, namespace: &str, name: &str) -> String {
    if name.is_empty() {
        format!(
            "{method} {} {} in {namespace}",
            r.api.api_version, r.api.kind
        )
    } else if r.namespaced {
        format!(
            "{method} {} {} {namespace}/{name}",
            r.api.api_version, r.api.kind
        )
    } else {
        format!("{method} {} {} {name}", r.api.api_version, r.api.kind)
    }
}

fn to_value(what: &str, obj: DynamicObject) -> Result<Value> {
    serde_json::to_value(obj).map_err(|e| Error::Decode {
        what: what.to_owned(),
        message: e.to_string(),
    })
}

fn is_not_found(e: &Error) -> bool {
    e.status_code() == Some(404)
}

impl Cluster {
    /// Checks that `namespace` exists: one GET of the Namespace. 404 is [`Error::NamespaceMissing`] ("namespace shop does not exist on
    /// cluster blogpost: create it first (kubectl create namespace shop)"), and so is
    /// 403: with per-namespace RBAC (scripts/grant-cluster-access), a namespace that does
    /// not exist has no binding to allow the read either, so the message names both
    /// causes and both fixes. `cluster` is the cluster's name for the message.
    pub async fn ensure_namespace(&self, namespace: &str, cluster: &str) -> Result<()> {
        let missing = |forbidden: bool| Error::NamespaceMissing {
            namespace: namespace.to_owned(),
            cluster: cluster.to_owned(),
            forbidden,
        };
        match self.get("v1", "Namespace", "", namespace).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(missing(false)),
            Err(e) if e.status_code() == Some(403) => Err(missing(true)),
            Err(e) => Err(e),
        }
    }

    /// Reads one object. A missing object is `Ok(None)`.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>> {
        let r = resource(api_version, kind)?;
        let w = what("GET", &r, namespace, name);
        let got = self
            .call(&w, false, |c| async {
                api_for(c, &r, namespace).get(name).await
            })
            .await;
        match got {
            Ok(obj) => to_value(&w, obj).map(Some),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces one object (PUT). `object.metadata.resourceVersion` makes it conditional:
    /// a stale one answers 409, returned as [`Error::ApiRefused`] with code 409.
    /// Returns the stored object.
    pub async fn replace(&self, object: &Value) -> Result<Value> {
        let key = object_key(0, object, self.namespace())?;
        let r = resource(&key.api_version, &key.kind)?;
        let w = what("PUT", &r, &key.namespace, &key.name);
        let obj: DynamicObject =
            serde_json::from_value(object.clone()).map_err(|e| Error::InvalidObject {
                index: 0,
                name: key.to_string(),
                message: e.to_string(),
            })?;
        let pp = PostParams {
            dry_run: false,
            field_manager: Some(labels::FIELD_MANAGER.to_owned()),
        };
        let stored = self
            .call(&w, true, |c| async {
                api_for(c, &r, &key.namespace)
                    .replace(&key.name, &pp, &obj)
                    .await
            })
            .await?;
        to_value(&w, stored)
    }

    /// Server-side applies every object, in order: one PATCH each
    /// (`application/apply-patch+yaml`, field manager `eks-canary`, forced).
    /// Objects without a namespace go to the cluster's default namespace.
    pub async fn apply(&self, objects: &[Value]) -> Result<ApplyReport> {
        let mut keys = Vec::with_capacity(objects.len());
        for (i, o) in objects.iter().enumerate() {
            keys.push(object_key(i, o, self.namespace())?);
        }
        let params = PatchParams::apply(labels::FIELD_MANAGER).force();
        let mut report = ApplyReport::default();
        for (object, key) in objects.iter().zip(keys) {
            let r = resource(&key.api_version, &key.kind)?;
            let mut body = object.clone();
            strip_server_fields(&mut body);
            if r.namespaced
                && let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.insert("namespace".into(), Value::String(key.namespace.clone()));
            }
            let w = what("APPLY", &r, &key.namespace, &key.name);
            let patch = Patch::Apply(&body);
            self.call(&w, true, |c| async {
                api_for(c, &r, &key.namespace)
                    .patch(&key.name, &params, &patch)
                    .await
            })
            .await?;
            tracing::info!(object = %key, "applied");
            report.applied.push(key);
        }
        Ok(report)
    }

    /// [`Cluster::apply`] of a deployment's objects into `namespace` of the cluster
    /// deploy.json calls `cluster`, telling a missing namespace from other refusals: when
    /// the API server refuses an object with 404 (NamespaceLifecycle: `namespaces "shop"
    /// not found`) or 403 (with per-namespace RBAC, a namespace that does not exist has
    /// no binding), one GET of the namespace ([`Cluster::ensure_namespace`]) decides, and
    /// a missing one is [`Error::NamespaceMissing`]. The refused write stored nothing, so
    /// a deployment into a missing namespace fails before anything of it is written.
    pub async fn apply_into(
        &self,
        objects: &[Value],
        namespace: &str,
        cluster: &str,
    ) -> Result<ApplyReport> {
        match self.apply(objects).await {
            Err(e) if matches!(e.status_code(), Some(403 | 404)) => {
                match self.ensure_namespace(namespace, cluster).await {
                    Err(missing @ Error::NamespaceMissing { .. }) => Err(missing),
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    /// Whether Deployment `namespace/name` is ready, and if not, why. One GET when it is
    /// ready; one more (its pods) when it is not.
    pub async fn readiness(&self, namespace: &str, name: &str) -> Result<Readiness> {
        let Some(deployment) = self.get("apps/v1", "Deployment", namespace, name).await? else {
            return Ok(Readiness::Failed {
                reason: format!("Deployment `{namespace}/{name}` does not exist"),
            });
        };
        if deployment_is_ready(&deployment) {
            return Ok(Readiness::Ready);
        }
        let selector = match_labels_selector(&deployment);
        let pods = match selector {
            Some(sel) => {
                let r = resource("v1", "Pod")?;
                let w = format!("LIST v1 Pod in {namespace} ({sel})");
                let lp = ListParams::default().labels(&sel);
                let list = self
                    .call(&w, false, |c| async {
                        api_for(c, &r, namespace).list(&lp).await
                    })
                    .await?;
                let mut values = Vec::with_capacity(list.items.len());
                for p in list.items {
                    values.push(to_value(&w, p)?);
                }
                values
            }
            None => Vec::new(),
        };
        Ok(evaluate_readiness(&deployment, &pods))
    }

    /// Deletes every object of `kinds` labelled with `service` and `version` in
    /// `namespace` (the version's Deployment, Service, VirtualNode…). Shared objects carry
    /// no version label and are never selected. Kinds are handled in reverse order (the
    /// order a template lists them is usually the order of dependence). Idempotent:
    /// objects already gone count as deleted.
    pub async fn delete_version(
        &self,
        namespace: &str,
        service: &str,
        version: u32,
        kinds: &[(String, String)],
    ) -> Result<DeleteReport> {
        let selector = labels::version_selector(service, version);
        let want = version.to_string();
        self.delete_selected(namespace, &selector, kinds, |obj| {
            obj.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::VERSION))
                == Some(&want)
        })
        .await
    }

    /// Deletes every object of `kinds` labelled with `service` in `namespace`, shared ones
    /// included: for a first deployment that failed, where nothing else serves.
    pub async fn delete_service(
        &self,
        namespace: &str,
        service: &str,
        kinds: &[(String, String)],
    ) -> Result<DeleteReport> {
        let selector = labels::service_selector(service);
        self.delete_selected(namespace, &selector, kinds, |obj| {
            obj.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::SERVICE))
                .map(String::as_str)
                == Some(service)
        })
        .await
    }

    async fn delete_selected(
        &self,
        namespace: &str,
        selector: &str,
        kinds: &[(String, String)],
        to_delete: impl Fn(&DynamicObject) -> bool,
    ) -> Result<DeleteReport> {
        let mut report = DeleteReport::default();
        let mut seen = Vec::new();
        for (api_version, kind) in kinds.iter().rev() {
            if seen.contains(&(api_version, kind)) {
                continue;
            }
            seen.push((api_version, kind));
            let r = resource(api_version, kind)?;
            let w = format!("LIST {api_version} {kind} in {namespace} ({selector})");
            let lp = ListParams::default().labels(selector);
            let listed = self
                .call(&w, false, |c| async {
                    api_for(c, &r, namespace).list(&lp).await
                })
                .await;
            let list = match listed {
                Ok(l) => l,
                Err(e) if is_not_found(&e) => {
                    report.unknown_kinds.push(format!("{api_version} {kind}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for obj in list.items.iter().filter(|o| to_delete(o)) {
                let Some(name) = obj.metadata.name.as_deref() else {
                    continue;
                };
                let w = what("DELETE", &r, namespace, name);
                let dp = DeleteParams::background();
                let deleted = self
                    .call(&w, true, |c| async {
                        api_for(c, &r, namespace).delete(name, &dp).await
                    })
                    .await;
                match deleted {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(e),
                }
                let key = ObjectKey {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                };
                tracing::info!(object = %key, "deleted");
                report.deleted.push(key);
            }
        }
        Ok(report)
    }
}

/// The key of object `index` of a list handed to us, checked.
fn object_key(index: usize, o: &Value, default_namespace: &str) -> Result<ObjectKey> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let api_version = s(&o["apiVersion"]);
    let kind = s(&o["kind"]);
    let name = s(&o["metadata"]["name"]);
    let label = format!(
        "{} {}",
        if kind.is_empty() { "?" } else { &kind },
        if name.is_empty() { "?" } else { &name }
    );
    let fail = |message: &str| Error::InvalidObject {
        index,
        name: label.clone(),
        message: message.to_owned(),
    };
    if !o.is_object() {
        return Err(fail("is not a JSON object"));
    }
    if api_version.is_empty() || kind.is_empty() || name.is_empty() {
        return Err(fail("needs apiVersion, kind and metadata.name"));
    }
    let r = resource(&api_version, &kind).map_err(|e| fail(&e.to_string()))?;
    let namespace = if r.namespaced {
        o["metadata"]["namespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(default_namespace)
            .to_owned()
    } else {
        String::new()
    };
    Ok(ObjectKey {
        api_version,
        kind,
        namespace,
        name,
    })
}

/// Removes what the server owns, so that an object read back can be applied again.
fn strip_server_fields(o: &mut Value) {
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "managedFields",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            meta.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    #[test]
    fn objects_without_kind_or_name_are_refused_before_any_request() {
        let bad = [
            json!({"kind": "Service", "metadata": {"name": "x"}}),
            json!({"apiVersion": "v1", "kind": "Service"}),
            json!([]),
        ];
        for (i, o) in bad.iter().enumerate() {
            assert!(
                matches!(object_key(i, o, "ns"), Err(Error::InvalidObject { .. })),
                "{o}"
            );
        }
        let ok = object_key(
            0,
            &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}),
            "ns",
        );
        assert_eq!(ok.ok().map(|k| k.namespace), Some("ns".to_owned()));
    }

    #[test]
    fn server_fields_are_stripped_before_applying() {
        let mut o = json!({"metadata": {"name": "x", "resourceVersion": "5", "managedFields": [], "uid": "u"}, "status": {}});
        strip_server_fields(&mut o);
        assert_eq!(o, json!({"metadata": {"name": "x"}}));
    }
}
