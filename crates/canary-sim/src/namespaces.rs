//! Namespaces as kube-apiserver treats them: the four every cluster starts with, the
//! fields the server sets on each (the `kubernetes.io/metadata.name` label, the
//! `kubernetes` finalizer, phase `Active`), and the NamespaceLifecycle admission rules:
//! creating an object in a namespace that does not exist is a 404 naming the namespace
//! (`namespaces "shop" not found`), and `default`, `kube-system` and `kube-public` may
//! not be deleted (403).
//!
//! With `SimConfig::implicit_namespaces` (the library default) the first rule is off,
//! as the simulator behaved before namespaces were checked: objects may be created in
//! any namespace, which then exists only through them.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::resources::{self, ResourceType};
use crate::state::State;
use crate::verbs::WriteOptions;

/// The namespaces a new cluster has.
pub(crate) const INITIAL: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The namespaces the NamespaceLifecycle admission plugin refuses to delete.
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

/// The label kube-apiserver sets on every namespace to its name.
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Whether objects of `rt` are Namespaces.
pub(crate) fn is_namespace(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "namespaces"
}

/// Sets what kube-apiserver sets on a namespace it stores: the name label (always the
/// name), `spec.finalizers: [kubernetes]` when the client sent none, and phase
/// `Active` when there is no phase.
pub(crate) fn set_server_fields(name: &str, object: &mut Map<String, Value>) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        labels[NAME_LABEL] = json!(name);
    }
    let spec = object.entry("spec").or_insert_with(|| json!({}));
    if spec.is_object() && spec.get("finalizers").is_none() {
        spec["finalizers"] = json!(["kubernetes"]);
    }
    let status = object.entry("status").or_insert_with(|| json!({}));
    if status.is_object() && status.get("phase").is_none() {
        status["phase"] = json!("Active");
    }
}

fn namespaces() -> Result<&'static ResourceType, ApiError> {
    resources::find("", "v1", "namespaces").ok_or_else(|| ApiError::Internal {
        message: "the simulator does not serve namespaces".into(),
    })
}

impl State {
    /// Creates namespace `name` (as `canary-sim`), like `kubectl create namespace`.
    pub(crate) fn create_namespace(&mut self, name: &str) -> Result<Value, ApiError> {
        let ns = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } });
        let opts = WriteOptions {
            agent: "canary-sim".into(),
            ..WriteOptions::default()
        };
        self.create(namespaces()?, "", ns, &opts)
    }

    /// Creates the namespaces every cluster starts with.
    pub(crate) fn create_initial_namespaces(&mut self) -> Result<(), ApiError> {
        for name in INITIAL {
            self.create_namespace(name)?;
        }
        Ok(())
    }

    /// NamespaceLifecycle on a create: an object of a namespaced type needs its
    /// namespace to exist (unless namespaces are implicit).
    pub(crate) fn check_namespace_exists(
        &self,
        rt: &ResourceType,
        namespace: &str,
    ) -> Result<(), ApiError> {
        if !rt.namespaced || self.implicit_namespaces {
            return Ok(());
        }
        match self.store.peek(namespaces()?, "", namespace) {
            Some(_) => Ok(()),
            None => Err(ApiError::not_found("namespaces", namespace)),
        }
    }

    /// NamespaceLifecycle on a delete: `default`, `kube-system` and `kube-public` stay.
    pub(crate) fn check_namespace_delete(
        &self,
        rt: &ResourceType,
        name: &str,
    ) -> Result<(), ApiError> {
        if is_namespace(rt) && IMMORTAL.contains(&name) {
            return Err(ApiError::Forbidden {
                resource: "namespaces".into(),
                name: name.to_string(),
                reason: "this namespace may not be deleted".into(),
            });
        }
        Ok(())
    }
}
