//! Field ownership (`metadata.managedFields`): which manager owns which leaf fields,
//! how an update moves the fields it changed to its manager, and how server-side apply
//! merges an applied configuration, refuses (409) to change fields another manager owns
//! unless forced, and removes the fields a manager stopped applying.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::patch::{self, FieldPath};
use crate::resources::ResourceType;

/// One `metadata.managedFields` entry, with its fields as leaf paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Managed {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    paths: Vec<FieldPath>,
}

/// How a write changes managed fields.
#[derive(Debug, Clone)]
pub(crate) enum ManagedChange {
    /// An update by this manager: it owns what it changed.
    Update(String),
    /// Server-side apply computed the whole list.
    Set(Vec<Managed>),
    /// No change (status writes, controllers).
    Keep,
}

/// The entries of an object's `metadata.managedFields`.
pub(crate) fn read(object: &Value) -> Vec<Managed> {
    let entries = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    let text = |e: &Value, field: &str, default: &str| {
        e.get(field)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    entries
        .into_iter()
        .flatten()
        .map(|e| Managed {
            manager: text(e, "manager", ""),
            operation: text(e, "operation", "Update"),
            api_version: text(e, "apiVersion", ""),
            time: text(e, "time", ""),
            paths: e
                .get("fieldsV1")
                .map(patch::paths_of_fields_v1)
                .unwrap_or_default(),
        })
        .collect()
}

/// The `metadata.managedFields` value for these entries.
pub(crate) fn write(entries: &[Managed]) -> Value {
    json!(
        entries
            .iter()
            .map(|m| json!({
                "manager": m.manager,
                "operation": m.operation,
                "apiVersion": m.api_version,
                "time": m.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": patch::fields_v1(&m.paths),
            }))
            .collect::<Vec<_>>()
    )
}

/// The entries after a write of `obj` over `old`, at time `now` (RFC 3339).
pub(crate) fn after_write(
    change: ManagedChange,
    old: Option<&Value>,
    obj: &Value,
    api_version: String,
    now: &str,
) -> Vec<Managed> {
    match change {
        ManagedChange::Keep => old.map(read).unwrap_or_default(),
        ManagedChange::Set(entries) => entries,
        ManagedChange::Update(manager) => after_update(old, obj, manager, api_version, now),
    }
}

/// An update: the fields it changed or removed leave their previous owners, and the
/// ones it changed join the manager's `Update` entry.
fn after_update(
    old: Option<&Value>,
    obj: &Value,
    manager: String,
    api_version: String,
    now: &str,
) -> Vec<Managed> {
    let mut entries = old.map(read).unwrap_or_default();
    let before: BTreeMap<FieldPath, Value> = old
        .map(|o| patch::leaves(o).into_iter().collect())
        .unwrap_or_default();
    let after: BTreeMap<FieldPath, Value> = patch::leaves(obj).into_iter().collect();
    let changed: Vec<FieldPath> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    let removed: Vec<FieldPath> = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    if changed.is_empty() && removed.is_empty() {
        return entries;
    }
    for e in &mut entries {
        e.paths.retain(|p| {
            !changed
                .iter()
                .chain(removed.iter())
                .any(|c| patch::overlaps(p, c))
        });
    }
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update")
    {
        Some(e) => {
            let set: BTreeSet<FieldPath> = e.paths.iter().cloned().chain(changed).collect();
            e.paths = set.into_iter().collect();
            e.time = now.to_string();
        }
        None if !changed.is_empty() => entries.push(Managed {
            manager,
            operation: "Update".into(),
            api_version,
            time: now.to_string(),
            paths: changed,
        }),
        None => {}
    }
    entries.retain(|e| !e.paths.is_empty());
    entries
}

/// The result of a server-side apply: the merged object and the new entries.
#[derive(Debug)]
pub(crate) struct Applied {
    /// The live object with the applied configuration merged in.
    pub object: Value,
    /// Every manager's fields after the apply.
    pub entries: Vec<Managed>,
}

/// Server-side apply of `applied` by `manager` over `base` (the live object, or `{}`)
/// at time `now` (RFC 3339): a 409 naming every conflicting field unless `force`.
pub(crate) fn apply(
    rt: &ResourceType,
    name: &str,
    base: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Applied, ApiError> {
    let applied_leaves = patch::leaves(applied);
    let applied_paths: Vec<FieldPath> = applied_leaves.iter().map(|(p, _)| p.clone()).collect();
    let mut entries = read(base);
    let (changed, conflicts) = changes(&entries, base, &applied_leaves, manager);
    if !conflicts.is_empty() && !force {
        return Err(conflict(rt, name, &conflicts));
    }
    let mut object = base.clone();
    patch::apply_merge(&mut object, applied);
    prune_unapplied(&mut object, &entries, manager, &applied_paths);
    // Forced changes take the fields away from their previous owners.
    for e in entries.iter_mut().filter(|e| e.manager != manager) {
        e.paths
            .retain(|p| !changed.iter().any(|c| patch::overlaps(p, c)));
    }
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Apply")
    {
        Some(e) => {
            if e.paths != applied_paths {
                e.paths = applied_paths;
                e.time = now.to_string();
            }
        }
        None => entries.push(Managed {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: rt.api_version(),
            time: now.to_string(),
            paths: applied_paths,
        }),
    }
    entries.retain(|e| !e.paths.is_empty());
    Ok(Applied { object, entries })
}

/// The applied leaves whose value differs from `base`, and for each the fields of other
/// managers it would change: (manager, path).
fn changes(
    entries: &[Managed],
    base: &Value,
    applied_leaves: &[(FieldPath, Value)],
    manager: &str,
) -> (Vec<FieldPath>, Vec<(String, FieldPath)>) {
    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    let mut changed: Vec<FieldPath> = Vec::new();
    for (path, value) in applied_leaves {
        if patch::value_at(base, path) == Some(value) {
            continue;
        }
        changed.push(path.clone());
        for e in entries.iter().filter(|e| e.manager != manager) {
            if let Some(p) = e.paths.iter().find(|p| patch::overlaps(p, path)) {
                conflicts.push((e.manager.clone(), p.clone()));
            }
        }
    }
    (changed, conflicts)
}

/// Fields this manager applied before, applies no more, and nobody else owns: removed.
fn prune_unapplied(
    object: &mut Value,
    entries: &[Managed],
    manager: &str,
    applied_paths: &[FieldPath],
) {
    let previous = entries
        .iter()
        .filter(|e| e.manager == manager && e.operation == "Apply")
        .flat_map(|e| e.paths.iter());
    for old in previous {
        let still_applied = applied_paths.iter().any(|p| patch::overlaps(p, old));
        let owned_by_other = entries
            .iter()
            .any(|e| e.manager != manager && e.paths.iter().any(|p| p == old));
        if !still_applied && !owned_by_other {
            patch::remove_path(object, old);
        }
    }
}

/// The 409 of an apply that would change fields other managers own.
fn conflict(rt: &ResourceType, name: &str, conflicts: &[(String, FieldPath)]) -> ApiError {
    let list: Vec<String> = conflicts
        .iter()
        .map(|(m, p)| format!("conflict with \"{m}\": .{}", p.join(".")))
        .collect();
    ApiError::Conflict {
        message: format!(
            "Apply failed with {} conflict(s): {}",
            conflicts.len(),
            list.join(", ")
        ),
        resource: rt.qualified(),
        name: name.to_string(),
    }
}
