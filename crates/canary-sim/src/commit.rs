//! Storing a new version of an object, the last step of every write verb: the server's
//! fields (apiVersion, kind, name, namespace, uid, creationTimestamp, generation,
//! resourceVersion, managed fields), the status kept or replaced by the part written,
//! validation, the weight history of route objects, and the controllers run after it.
//! A write that changes nothing keeps the resourceVersion.

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::managed_fields::{self, ManagedChange};
use crate::namespaces;
use crate::resources::ResourceType;
use crate::state::State;
use crate::store::key;
use crate::traffic::{self, WeightChange};
use crate::util::rfc3339;
use crate::validate::validate;
use crate::workloads::Track;

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The object (for types with a status subresource, the status is kept).
    Main,
    /// The `status` subresource (only the status changes).
    Status,
}

/// Where a write goes and what it replaces.
#[derive(Debug, Clone)]
pub(crate) struct Write<'a> {
    /// The object's type.
    pub rt: &'a ResourceType,
    /// Its namespace ("" for cluster-scoped types).
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// The live version, `None` when the write creates the object.
    pub old: Option<Value>,
    /// The part written.
    pub part: Part,
    /// `dryRun=All`: answer as if stored, store nothing.
    pub dry_run: bool,
}

/// What the object looks like after writing `new` to `part` of `old`: a status write
/// changes only the status.
fn merge_part(old: Option<&Value>, new: Value, part: Part) -> Value {
    let (Some(old), Part::Status) = (old, part) else {
        return new;
    };
    let mut o = old.clone();
    match new.get("status") {
        Some(s) => o["status"] = s.clone(),
        None => {
            if let Some(m) = o.as_object_mut() {
                m.remove("status");
            }
        }
    }
    o
}

/// The object without the fields that do not count for `metadata.generation`.
fn strip_for_generation(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

fn without_resource_version(object: &Value) -> Value {
    let mut v = object.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    v
}

/// The generation after the write: 1 for a new object, one more when the main part
/// changed outside metadata and status.
fn generation(old: Option<&Value>, obj: &Value, part: Part) -> i64 {
    let Some(o) = old else { return 1 };
    let old_gen = o
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let changed = part == Part::Main && strip_for_generation(o) != strip_for_generation(obj);
    old_gen + i64::from(changed)
}

/// Sets `apiVersion` and `kind`, and for a main-part write of a type with a status
/// subresource keeps the live status.
fn set_type_and_status(w: &Write<'_>, map: &mut Map<String, Value>) {
    map.insert("apiVersion".into(), json!(w.rt.api_version()));
    map.insert("kind".into(), json!(w.rt.kind));
    if w.rt.has_status && w.part == Part::Main {
        match w.old.as_ref().and_then(|o| o.get("status")) {
            Some(s) => {
                map.insert("status".into(), s.clone());
            }
            None => {
                map.remove("status");
            }
        }
    }
}

/// The metadata of `obj`, which must be an object (created when missing).
fn metadata<'v>(w: &Write<'_>, obj: &'v mut Value) -> Result<&'v mut Map<String, Value>, ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request("the object must be a JSON object"));
    };
    map.entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{} \"{}\" is invalid: metadata must be an object",
                w.rt.qualified(),
                w.name
            ))
        })
}

impl State {
    /// Stores a new version of an object: fills identity and bookkeeping fields, keeps
    /// or replaces the status, counts the generation, updates managed fields, and runs
    /// the controllers. A write that changes nothing keeps the resourceVersion.
    pub(crate) fn commit(
        &mut self,
        w: Write<'_>,
        new: Value,
        managed: ManagedChange,
    ) -> Result<Value, ApiError> {
        let now = self.now();
        let mut obj = merge_part(w.old.as_ref(), new, w.part);
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        };
        set_type_and_status(&w, map);
        if namespaces::is_namespace(w.rt) {
            namespaces::set_server_fields(w.name, map);
        }
        let generation = generation(w.old.as_ref(), &obj, w.part);
        self.set_identity(&w, &mut obj, generation, now)?;
        let entries = managed_fields::after_write(
            managed,
            w.old.as_ref(),
            &obj,
            w.rt.api_version(),
            &rfc3339(now),
        );
        if !entries.is_empty() {
            obj["metadata"]["managedFields"] = managed_fields::write(&entries);
        }
        validate(w.rt, &obj, w.name)?;

        if w.rt.is_route() && !w.dry_run {
            self.weight_history.push(WeightChange {
                at_millis: now,
                namespace: w.namespace.to_string(),
                kind: w.rt.kind.to_string(),
                name: w.name.to_string(),
                weights: traffic::route_weights(&obj),
            });
        }
        if let Some(o) = &w.old
            && without_resource_version(o) == without_resource_version(&obj)
        {
            return Ok(o.clone());
        }
        if w.dry_run {
            return Ok(obj);
        }
        self.store_version(&w, obj, generation, now)
    }

    /// Sets name, namespace, uid, creationTimestamp, generation and the live
    /// resourceVersion, and drops what the server never keeps from a client.
    fn set_identity(
        &mut self,
        w: &Write<'_>,
        obj: &mut Value,
        generation: i64,
        now: i64,
    ) -> Result<(), ApiError> {
        let meta = metadata(w, obj)?;
        let (uid, created) = match &w.old {
            Some(o) => (
                o.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                o.pointer("/metadata/creationTimestamp")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            None if w.dry_run => (json!(""), json!(rfc3339(now))),
            None => (json!(self.store.next_uid()), json!(rfc3339(now))),
        };
        meta.insert("name".into(), json!(w.name));
        meta.remove("generateName");
        meta.remove("selfLink");
        if w.rt.namespaced {
            meta.insert("namespace".into(), json!(w.namespace));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), uid);
        meta.insert("creationTimestamp".into(), created);
        meta.insert("generation".into(), json!(generation));
        meta.remove("managedFields");
        match w
            .old
            .as_ref()
            .and_then(|o| o.pointer("/metadata/resourceVersion"))
        {
            Some(rv) => meta.insert("resourceVersion".into(), rv.clone()),
            None => meta.remove("resourceVersion"),
        };
        Ok(())
    }

    /// Stores `obj` under a new resourceVersion, restarts a Deployment's readiness delay
    /// when its generation moved, runs the controllers, and returns what is stored.
    fn store_version(
        &mut self,
        w: &Write<'_>,
        mut obj: Value,
        generation: i64,
        now: i64,
    ) -> Result<Value, ApiError> {
        let rv = self.store.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv);
        let k = key(w.rt, w.namespace, w.name);
        self.store.insert(k.clone(), obj);
        let old_generation = w
            .old
            .as_ref()
            .map(|o| o.pointer("/metadata/generation").and_then(Value::as_i64));
        self.route_event(w.rt, &k, old_generation != Some(Some(generation)));
        if w.rt.is_deployment() {
            let track_key = (w.namespace.to_string(), w.name.to_string());
            let moved = self
                .tracks
                .get(&track_key)
                .is_none_or(|t| t.generation != generation);
            if moved {
                self.tracks.insert(
                    track_key,
                    Track {
                        generation,
                        changed_at: now,
                    },
                );
            }
        }
        self.after_change();
        self.store
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiError::Internal {
                message: format!("{} vanished after the write", w.name),
            })
    }
}
