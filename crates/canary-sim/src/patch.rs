//! Patch formats: JSON merge patch (RFC 7386) and JSON patch (RFC 6902) through the
//! `json-patch` crate, a simplified strategic merge patch (lists of named items merged
//! by key, `$patch`, `$setElementOrder`, `$retainKeys`, `$deleteFromPrimitiveList`
//! directives; the crate has none), and the field bookkeeping behind server-side apply
//! (leaf field paths per manager).

use serde_json::{Map, Value};

use crate::error::ApiError;

/// How a patch body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply: see `managed_fields`).
    Apply,
}

/// Applies a merge, JSON or strategic merge patch `body` to `doc` (an apply patch is
/// not applied here: server-side apply merges by field ownership).
pub(crate) fn apply_patch(
    patch_type: PatchType,
    doc: &mut Value,
    body: &Value,
) -> Result<(), ApiError> {
    match patch_type {
        PatchType::Merge => {
            if !body.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            merge_patch(doc, body);
        }
        PatchType::Strategic => {
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge(doc, body);
        }
        PatchType::Json => json_patch(doc, body)?,
        PatchType::Apply => {}
    }
    Ok(())
}

/// Applies an RFC 7386 merge patch to `target` (the `json-patch` crate's `merge`).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch with the `json-patch` crate. A malformed patch is a
/// 400; an operation that cannot be applied (missing path, failed `test`) is a 422, as
/// on a real API server, and leaves `doc` unchanged.
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    if !patch.is_array() {
        return Err(ApiError::bad_request(
            "a JSON patch must be an array of operations",
        ));
    }
    let operations: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("malformed JSON patch {patch}: {e}")))?;
    json_patch::patch(doc, &operations)
        .map_err(|e| ApiError::invalid(format!("the JSON patch cannot be applied: {e}")))
}

/// Keys by which lists of objects are merged in a strategic merge patch, in the order
/// they are tried, for fields known to be merged by key in the Kubernetes API.
const MERGE_KEYS: &[&str] = &[
    "name",
    "containerPort",
    "port",
    "mountPath",
    "devicePath",
    "ip",
    "type",
    "uid",
    "topologyKey",
];
const MERGE_LISTS: &[&str] = &[
    "containers",
    "initContainers",
    "ephemeralContainers",
    "volumes",
    "env",
    "volumeMounts",
    "volumeDevices",
    "ports",
    "imagePullSecrets",
    "conditions",
    "hostAliases",
    "ownerReferences",
    "topologySpreadConstraints",
];

fn merge_key_of(items: &[Value]) -> Option<&'static str> {
    MERGE_KEYS.iter().copied().find(|k| {
        !items.is_empty()
            && items
                .iter()
                .all(|i| i.get(*k).is_some() || i.get("$patch").is_some())
    })
}

fn merge_list_by_key(
    live: &[Value],
    patch: &[Value],
    key: &str,
    order: Option<&Vec<Value>>,
) -> Vec<Value> {
    let mut out: Vec<Value> = live.to_vec();
    for p in patch {
        let id = p.get(key).cloned();
        let pos = out
            .iter()
            .position(|l| l.get(key).cloned() == id && id.is_some());
        let directive = p.get("$patch").and_then(Value::as_str);
        match (pos, directive) {
            (Some(i), Some("delete")) => {
                out.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), Some("replace")) => {
                let mut v = p.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("$patch");
                }
                out[i] = v;
            }
            (Some(i), _) => strategic_merge(&mut out[i], p),
            (None, _) => {
                let mut v = Value::Object(Map::new());
                strategic_merge(&mut v, p);
                out.push(v);
            }
        }
    }
    if let Some(order) = order {
        let rank = |v: &Value| {
            order
                .iter()
                .position(|o| o.get(key) == v.get(key))
                .unwrap_or(usize::MAX)
        };
        out.sort_by_key(rank);
    }
    out
}

/// Applies a (simplified) strategic merge patch: maps merge as in a merge patch, lists
/// of objects under known list fields (or announced by `$setElementOrder/<field>`)
/// merge by their key (`name`, `containerPort`, `port`, ...), other lists are replaced,
/// and the `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/` directives apply.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut v = patch.clone();
            if let Some(m) = v.as_object_mut() {
                m.remove("$patch");
            }
            *target = v;
            return;
        }
        Some("delete") => {
            *target = Value::Object(Map::new());
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if k.starts_with('$') {
            if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/")
                && let (Some(Value::Array(list)), Some(remove)) = (t.get_mut(field), v.as_array())
            {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let order = p
            .get(&format!("$setElementOrder/{k}"))
            .and_then(Value::as_array);
        match (t.get_mut(k), v) {
            (Some(Value::Array(live)), Value::Array(items)) => {
                let all_objects = items.iter().all(Value::is_object);
                let known = MERGE_LISTS.contains(&k.as_str()) || order.is_some();
                if all_objects
                    && known
                    && let Some(key) = merge_key_of(items)
                {
                    *live = merge_list_by_key(live, items, key, order);
                    continue;
                }
                if order.is_some() && !all_objects {
                    for item in items {
                        if !live.contains(item) {
                            live.push(item.clone());
                        }
                    }
                    continue;
                }
                *live = items.clone();
            }
            (Some(existing), _) => strategic_merge(existing, v),
            (None, _) => {
                let mut fresh = if v.is_object() {
                    Value::Object(Map::new())
                } else {
                    Value::Null
                };
                strategic_merge(&mut fresh, v);
                t.insert(k.clone(), fresh);
            }
        }
    }
    if let Some(Value::Array(keep)) = p.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        t.retain(|k, _| keep.contains(&k.as_str()));
    }
}

/// A field path: the keys from the object's root to one leaf (a scalar, a list, or an
/// empty map). Lists are atomic: ownership is tracked for the whole list.
pub type FieldPath = Vec<String>;

/// Fields that belong to the server, not to any manager.
fn is_server_field(path: &[String]) -> bool {
    match path {
        [first] => first == "apiVersion" || first == "kind",
        [first, ..] if first == "status" => true,
        [first, second, ..] if first == "metadata" => matches!(
            second.as_str(),
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "managedFields"
                | "selfLink"
                | "deletionTimestamp"
        ),
        _ => false,
    }
}

fn collect_leaves(value: &Value, prefix: &mut FieldPath, out: &mut Vec<(FieldPath, Value)>) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                prefix.push(k.clone());
                collect_leaves(v, prefix, out);
                prefix.pop();
            }
        }
        other => {
            if !prefix.is_empty() && !is_server_field(prefix) {
                out.push((prefix.clone(), other.clone()));
            }
        }
    }
}

/// Every leaf field of an object with its value, except server-owned fields
/// (`apiVersion`, `kind`, `status`, identity and bookkeeping metadata).
pub fn leaves(value: &Value) -> Vec<(FieldPath, Value)> {
    let mut out = Vec::new();
    collect_leaves(value, &mut Vec::new(), &mut out);
    out
}

/// The value at a field path, if present.
pub fn value_at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |cur, k| cur.get(k))
}

/// Removes the field at `path` and then any maps left empty above it.
pub fn remove_path(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = &mut *value;
    for k in parents {
        match cur.get_mut(k) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
    if !parents.is_empty() {
        let is_empty = value_at(value, parents)
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty);
        if is_empty {
            remove_path(value, parents);
        }
    }
}

/// Whether one path is the other or lies under it.
pub fn overlaps(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// The `fieldsV1` document for a set of leaf paths (`{"f:spec":{"f:replicas":{}}}`).
pub fn fields_v1(paths: &[FieldPath]) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut cur = &mut root;
        for k in path {
            let entry = cur
                .entry(format!("f:{k}"))
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { break };
            cur = next;
        }
    }
    Value::Object(root)
}

/// The leaf paths of a `fieldsV1` document (the inverse of [`fields_v1`]).
pub fn paths_of_fields_v1(fields: &Value) -> Vec<FieldPath> {
    fn walk(v: &Value, prefix: &mut FieldPath, out: &mut Vec<FieldPath>) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    let key = k.strip_prefix("f:").unwrap_or(k);
                    if key == "." {
                        continue;
                    }
                    prefix.push(key.to_string());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            _ => {
                if !prefix.is_empty() {
                    out.push(prefix.clone());
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

/// Merges an applied configuration into the live object: maps merge recursively,
/// everything else (scalars, lists) is replaced by the applied value.
pub fn apply_merge(live: &mut Value, applied: &Value) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, v) in a {
                match l.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        apply_merge(existing, v)
                    }
                    _ => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (l, a) => *l = a.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386_examples() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut doc, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}}));
        let mut doc = json!({"a": [1, 2]});
        merge_patch(&mut doc, &json!({"a": [3]}));
        assert_eq!(doc, json!({"a": [3]}));
    }

    #[test]
    fn json_patch_supports_every_operation_and_a_failed_test_is_invalid() {
        let mut doc = json!({"a": {"b": [1, 2]}, "c": 1});
        let patch = json!([
            {"op": "test", "path": "/c", "value": 1},
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "add", "path": "/a/b/0", "value": 0},
            {"op": "replace", "path": "/c", "value": 2},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "remove", "path": "/a/b/1"},
        ]);
        assert_eq!(json_patch(&mut doc, &patch), Ok(()));
        assert_eq!(doc, json!({"a": {"b": [0, 2, 3]}, "c": 2, "e": 2}));
        let failed = json_patch(&mut doc, &json!([{"op": "test", "path": "/c", "value": 9}]));
        assert!(matches!(failed, Err(ApiError::Invalid { .. })));
        let missing = json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope"}]));
        assert!(matches!(missing, Err(ApiError::Invalid { .. })));
        let malformed = json_patch(&mut doc, &json!({"op": "add"}));
        assert!(matches!(malformed, Err(ApiError::BadRequest { .. })));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name_and_keeps_unmentioned_fields() {
        let mut live = json!({"spec": {"containers": [
            {"name": "a", "image": "x:1", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "y:1"}
        ]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "x:2"}]
        }});
        strategic_merge(&mut live, &patch);
        assert_eq!(
            live["spec"]["containers"][0],
            json!({"name": "a", "image": "x:2", "ports": [{"containerPort": 80}]})
        );
        assert_eq!(live["spec"]["containers"][1]["image"], json!("y:1"));
        strategic_merge(
            &mut live,
            &json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}),
        );
        assert_eq!(live["spec"]["containers"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn fields_v1_round_trips_leaf_paths() {
        let obj = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "n", "labels": {"a": "b"}}, "spec": {"r": 1, "l": [1]}});
        let paths: Vec<FieldPath> = leaves(&obj).into_iter().map(|(p, _)| p).collect();
        let mut back = paths_of_fields_v1(&fields_v1(&paths));
        let mut expected = paths.clone();
        back.sort();
        expected.sort();
        assert_eq!(back, expected);
        assert_eq!(expected.len(), 3);
    }
}
