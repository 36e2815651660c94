//! The API verbs on the cluster: get, list, create, replace, patch (merge, JSON,
//! strategic, server-side apply), delete and deletecollection, with their
//! preconditions. Each write checks the request (`validate`), works out the new object
//! (`patch`, `managed_fields`) and hands it to `commit`.

use serde_json::{Value, json};

use crate::commit::{Part, Write};
use crate::error::ApiError;
use crate::managed_fields::{self, ManagedChange};
use crate::patch::{self, PatchType};
use crate::resources::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::state::State;
use crate::store::{Key, key};
use crate::traffic::WeightChange;
use crate::util::rfc3339;
use crate::validate::{
    body_name, check_apply, check_kind, check_name, check_namespace, check_resource_version,
};

/// Options of a write request.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOptions {
    /// `dryRun=All`: validate and answer, store nothing.
    pub dry_run: bool,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `force=true` (server-side apply).
    pub force: bool,
    /// The manager name derived from the User-Agent, for updates without fieldManager.
    pub agent: String,
}

impl WriteOptions {
    fn update_manager(&self) -> String {
        self.field_manager.clone().unwrap_or_else(|| {
            if self.agent.is_empty() {
                "unknown".into()
            } else {
                self.agent.clone()
            }
        })
    }

    /// How a write to `part` by these options changes managed fields.
    fn managed_change(&self, part: Part) -> ManagedChange {
        match part {
            Part::Main => ManagedChange::Update(self.update_manager()),
            Part::Status => ManagedChange::Keep,
        }
    }
}

impl State {
    /// One object.
    pub fn get(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.reconcile();
        self.live(rt, namespace, name)
    }

    /// One object, without running the controllers first; 404 when it does not exist.
    fn live(&self, rt: &ResourceType, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.store
            .peek(rt, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))
    }

    /// Objects of one type, in one namespace (`Some`) or all, filtered by selectors.
    pub fn list(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.reconcile();
        self.store.list(rt, namespace, labels, fields)
    }

    /// Every object in a namespace ("" for cluster-scoped ones), of every type.
    pub fn list_namespace(&mut self, namespace: &str) -> Vec<Value> {
        self.reconcile();
        self.store
            .iter()
            .filter(|((_, _, ns, _), _)| ns == namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `POST` to a collection.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.reconcile();
        check_kind(rt, &body)?;
        check_namespace(rt, namespace, &body)?;
        self.check_namespace_exists(rt, namespace)?;
        let generate = body
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .filter(|prefix| !prefix.is_empty());
        let name = match (body_name(&body), generate) {
            (Some(n), _) => n,
            (None, Some(prefix)) => self.store.generated_name(prefix),
            (None, None) => {
                return Err(ApiError::invalid(format!(
                    "{} is invalid: metadata.name: Required value: name or generateName is required",
                    rt.qualified()
                )));
            }
        };
        if self.store.peek(rt, namespace, &name).is_some() {
            return Err(ApiError::AlreadyExists {
                resource: rt.qualified(),
                name,
            });
        }
        let write = Write {
            rt,
            namespace,
            name: &name,
            old: None,
            part: Part::Main,
            dry_run: opts.dry_run,
        };
        self.commit(write, body, opts.managed_change(Part::Main))
    }

    /// `PUT` of an object or its status.
    pub fn replace(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        part: Part,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.reconcile();
        check_kind(rt, &body)?;
        check_namespace(rt, namespace, &body)?;
        check_name(name, &body)?;
        let live = self.live(rt, namespace, name)?;
        check_resource_version(rt, name, &live, &body)?;
        let write = Write {
            rt,
            namespace,
            name,
            old: Some(live),
            part,
            dry_run: opts.dry_run,
        };
        self.commit(write, body, opts.managed_change(part))
    }

    /// `PATCH` of an object or its status.
    // Eight arguments: the request's parts, as the other verbs take them one by one.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        body: Value,
        part: Part,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        self.reconcile();
        if patch_type == PatchType::Apply {
            return self.apply(rt, namespace, name, body, part, opts);
        }
        let live = self.live(rt, namespace, name)?;
        let mut patched = live.clone();
        patch::apply_patch(patch_type, &mut patched, &body)?;
        check_kind(rt, &patched)?;
        check_resource_version(rt, name, &live, &patched)?;
        if patched.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
            return Err(ApiError::invalid(format!(
                "{} \"{name}\" is invalid: metadata.name: the name cannot be changed",
                rt.qualified()
            )));
        }
        let write = Write {
            rt,
            namespace,
            name,
            old: Some(live),
            part,
            dry_run: opts.dry_run,
        };
        self.commit(write, patched, opts.managed_change(part))
    }

    /// Server-side apply: creates or merges, tracks ownership per field manager, and
    /// refuses (409) to change a field another manager owns unless forced.
    fn apply(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        applied: Value,
        part: Part,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let manager = check_apply(opts.field_manager.as_deref(), &applied)?;
        check_kind(rt, &applied)?;
        check_namespace(rt, namespace, &applied)?;
        check_name(name, &applied)?;
        let live = self.store.peek(rt, namespace, name).cloned();
        match &live {
            Some(live) => check_resource_version(rt, name, live, &applied)?,
            None => self.check_namespace_exists(rt, namespace)?,
        }
        let mut applied = applied;
        if part == Part::Status {
            // Only the status of an apply to the status subresource counts.
            let status = applied.get("status").cloned();
            applied = json!({ "apiVersion": applied["apiVersion"], "kind": applied["kind"] });
            if let Some(s) = status {
                applied["status"] = s;
            }
        }
        let base = live.clone().unwrap_or_else(|| json!({}));
        let now = rfc3339(self.now());
        let result = managed_fields::apply(rt, name, &base, &applied, &manager, opts.force, &now)?;
        let write = Write {
            rt,
            namespace,
            name,
            old: live,
            part,
            dry_run: opts.dry_run,
        };
        self.commit(write, result.object, ManagedChange::Set(result.entries))
    }

    /// `DELETE` of one object; `preconditions` from a DeleteOptions body.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        preconditions: Option<&Value>,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        self.reconcile();
        let live = self.live(rt, namespace, name)?;
        self.check_namespace_delete(rt, name)?;
        if let Some(pre) = preconditions {
            check_preconditions(rt, name, &live, pre)?;
        }
        if !dry_run {
            self.remove(rt, namespace, name);
            self.after_change();
        }
        Ok(live)
    }

    /// Removes an object (and, for a namespace, everything in it), forgets a
    /// Deployment's readiness track, and records a deleted route as having no targets.
    fn remove(&mut self, rt: &ResourceType, namespace: &str, name: &str) {
        let now = self.now();
        let k = key(rt, namespace, name);
        self.store.remove(&k);
        self.forget_route(&k);
        self.route_event(rt, &k, false);
        if rt.is_deployment() {
            self.tracks
                .remove(&(namespace.to_string(), name.to_string()));
        }
        if rt.is_route() {
            self.weight_history.push(WeightChange {
                at_millis: now,
                namespace: namespace.to_string(),
                kind: rt.kind.to_string(),
                name: name.to_string(),
                weights: Vec::new(),
            });
        }
        if rt.group.is_empty() && rt.plural == "namespaces" {
            let inside: Vec<Key> = self.store.keys_in(name);
            for k in inside {
                if let Some(t) = resources::by_plural(&k.0, &k.1) {
                    self.remove(t, &k.2, &k.3);
                }
            }
        }
    }

    /// `DELETE` of a collection, filtered by selectors.
    pub fn delete_collection(
        &mut self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        dry_run: bool,
    ) -> Vec<Value> {
        let doomed = self.list(rt, namespace, labels, fields);
        if !dry_run {
            for o in &doomed {
                let text = |pointer: &str| {
                    o.pointer(pointer)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                self.remove(rt, &text("/metadata/namespace"), &text("/metadata/name"));
            }
            self.after_change();
        }
        doomed
    }
}

/// A DeleteOptions `preconditions` object: a `uid` or `resourceVersion` that differs
/// from the live object's is a 409.
fn check_preconditions(
    rt: &ResourceType,
    name: &str,
    live: &Value,
    pre: &Value,
) -> Result<(), ApiError> {
    for (field, pointer) in [
        ("uid", "/metadata/uid"),
        ("resourceVersion", "/metadata/resourceVersion"),
    ] {
        let current = live.pointer(pointer).and_then(Value::as_str);
        if let Some(wanted) = pre.get(field).and_then(Value::as_str)
            && current != Some(wanted)
        {
            return Err(ApiError::Conflict {
                message: format!(
                    "Precondition failed: {field} in precondition: {wanted}, {field} in object meta: {}",
                    current.unwrap_or_default()
                ),
                resource: rt.qualified(),
                name: name.to_string(),
            });
        }
    }
    Ok(())
}
