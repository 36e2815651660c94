//! The cluster's state and the API verbs on it: the object store (uid, global
//! resourceVersion counter, generation), create / replace / patch / server-side apply /
//! delete with their preconditions and managed fields, the simulated controllers
//! (Deployment status, Pods) and the traffic timeline.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use canary_core::clock::Clock;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::faults::{ArmedFault, RequestRecord};
use crate::patch::{self, FieldPath};
use crate::resources::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::traffic::{self, TargetInfo, TrafficSnapshot, WeightChange};
use crate::util::{rfc3339, safe_suffix, stable_hash};
use crate::workloads::{self, OWNER_ANNOTATION, Track};

/// (namespace, service) of a route.
type RouteKey = (String, String);
/// Target names and weights.
type Weights = Vec<(String, u64)>;

/// Where an object lives: (group, plural, namespace or "", name).
pub(crate) type Key = (String, String, String, String);

fn key(rt: &ResourceType, namespace: &str, name: &str) -> Key {
    let ns = if rt.namespaced { namespace } else { "" };
    (
        rt.group.to_string(),
        rt.plural.to_string(),
        ns.to_string(),
        name.to_string(),
    )
}

/// How a patch body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`.
    Apply,
}

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
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The object (for types with a status subresource, the status is kept).
    Main,
    /// The `status` subresource (only the status changes).
    Status,
}

/// One `metadata.managedFields` entry, with its fields as leaf paths.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Managed {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    paths: Vec<FieldPath>,
}

fn read_managed(object: &Value) -> Vec<Managed> {
    let entries = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    entries
        .into_iter()
        .flatten()
        .map(|e| Managed {
            manager: e
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            operation: e
                .get("operation")
                .and_then(Value::as_str)
                .unwrap_or("Update")
                .to_string(),
            api_version: e
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            time: e
                .get("time")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            paths: e
                .get("fieldsV1")
                .map(patch::paths_of_fields_v1)
                .unwrap_or_default(),
        })
        .collect()
}

fn write_managed(entries: &[Managed]) -> Value {
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

/// How a write changes managed fields.
#[derive(Debug, Clone)]
enum ManagedChange {
    /// An update by this manager: it owns what it changed.
    Update(String),
    /// Server-side apply computed the whole list.
    Set(Vec<Managed>),
    /// No change (status writes, controllers).
    Keep,
}

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

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn check_string_map(
    object: &Value,
    field: &str,
    resource: &str,
    name: &str,
) -> Result<(), ApiError> {
    match object.pointer(&format!("/metadata/{field}")) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) => match m.iter().find(|(_, v)| !v.is_string()) {
            Some((k, v)) => Err(ApiError::invalid(format!(
                "{resource} \"{name}\" is invalid: metadata.{field}.{k}: Invalid value: {v}: must be a string"
            ))),
            None => Ok(()),
        },
        Some(other) => Err(ApiError::invalid(format!(
            "{resource} \"{name}\" is invalid: metadata.{field}: Invalid value: {other}: must be a map of strings"
        ))),
    }
}

fn validate(rt: &ResourceType, object: &Value, name: &str) -> Result<(), ApiError> {
    let resource = rt.qualified();
    if !is_dns_subdomain(name) {
        return Err(ApiError::invalid(format!(
            "{resource} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        )));
    }
    check_string_map(object, "labels", &resource, name)?;
    check_string_map(object, "annotations", &resource, name)?;
    if rt.group == "apps" && rt.plural == "deployments" {
        let containers = object
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array);
        let ok = containers.is_some_and(|c| {
            !c.is_empty()
                && c.iter().all(|c| {
                    c.get("name").is_some_and(Value::is_string)
                        && c.get("image").is_some_and(Value::is_string)
                })
        });
        if !ok {
            return Err(ApiError::invalid(format!(
                "{resource} \"{name}\" is invalid: spec.template.spec.containers: Required value: every container needs a name and an image"
            )));
        }
        let selector = object
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object);
        let labels = object
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object);
        let selects = selector.is_some_and(|s| {
            !s.is_empty()
                && s.iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        });
        if !selects {
            return Err(ApiError::invalid(format!(
                "{resource} \"{name}\" is invalid: spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`"
            )));
        }
    }
    Ok(())
}

/// The whole simulated cluster.
#[derive(Debug)]
pub(crate) struct State {
    /// The clock readiness and traffic are measured on.
    pub clock: Arc<dyn Clock>,
    /// How long a Deployment takes to become ready, in ms.
    pub ready_delay_millis: i64,
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    uid_counter: u64,
    tracks: BTreeMap<(String, String), Track>,
    /// Images that never become ready, with the waiting reason.
    pub bad_images: BTreeMap<String, String>,
    /// Error fraction per image.
    pub error_rates: BTreeMap<String, f64>,
    /// Requests per second per (namespace, service).
    pub traffic_rates: BTreeMap<(String, String), f64>,
    /// The traffic timeline.
    pub traffic_history: Vec<(i64, TrafficSnapshot)>,
    /// Every write to a route object.
    pub weight_history: Vec<WeightChange>,
    /// Every request received.
    pub requests: Vec<RequestRecord>,
    /// Injected faults.
    pub faults: Vec<ArmedFault>,
}

impl State {
    /// An empty cluster with the `default` namespace.
    pub fn new(clock: Arc<dyn Clock>, ready_delay_millis: i64) -> Self {
        let mut state = Self {
            clock,
            ready_delay_millis,
            objects: BTreeMap::new(),
            resource_version: 0,
            uid_counter: 0,
            tracks: BTreeMap::new(),
            bad_images: BTreeMap::new(),
            error_rates: BTreeMap::new(),
            traffic_rates: BTreeMap::new(),
            traffic_history: Vec::new(),
            weight_history: Vec::new(),
            requests: Vec::new(),
            faults: Vec::new(),
        };
        if let Some(rt) = resources::find("", "v1", "namespaces") {
            let ns = json!({ "metadata": { "name": "default" } });
            let opts = WriteOptions {
                agent: "canary-sim".into(),
                ..WriteOptions::default()
            };
            // Creating a fixed, valid object cannot fail; an error would only leave the
            // cluster without a `default` namespace.
            let _ = state.create(rt, "", ns, &opts);
        }
        state
    }

    /// Now on the simulator's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> String {
        self.resource_version.to_string()
    }

    fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    fn next_uid(&mut self) -> String {
        self.uid_counter += 1;
        let h = stable_hash(&format!("uid/{}", self.uid_counter));
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            (h >> 32) as u32,
            (h >> 16) as u16,
            (h & 0xfff) as u16,
            (self.uid_counter & 0xfff) as u16,
            self.uid_counter
        )
    }

    /// One object.
    pub fn get(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.reconcile();
        self.objects
            .get(&key(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))
    }

    /// One object, without running the controllers first.
    fn peek(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(rt, namespace, name))
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
        self.objects
            .iter()
            .filter(|((g, p, ns, _), _)| {
                g == rt.group
                    && p == rt.plural
                    && namespace.is_none_or(|n| !rt.namespaced || n == ns)
            })
            .map(|(_, v)| v)
            .filter(|v| labels.matches(v) && fields.matches(v))
            .cloned()
            .collect()
    }

    /// Every object in a namespace ("" for cluster-scoped ones), of every type.
    pub fn list_namespace(&mut self, namespace: &str) -> Vec<Value> {
        self.reconcile();
        self.objects
            .iter()
            .filter(|((_, _, ns, _), _)| ns == namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn body_name(body: &Value) -> Option<String> {
        body.pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    }

    fn check_kind(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        let kind = body.get("kind").and_then(Value::as_str);
        let api_version = body.get("apiVersion").and_then(Value::as_str);
        if kind.is_some_and(|k| k != rt.kind) || api_version.is_some_and(|a| a != rt.api_version())
        {
            return Err(ApiError::bad_request(format!(
                "the object's kind `{}` / apiVersion `{}` does not match the resource {} ({} {})",
                kind.unwrap_or_default(),
                api_version.unwrap_or_default(),
                rt.qualified(),
                rt.api_version(),
                rt.kind
            )));
        }
        Ok(())
    }

    fn check_namespace(rt: &ResourceType, namespace: &str, body: &Value) -> Result<(), ApiError> {
        let in_body = body
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if rt.namespaced && !in_body.is_empty() && in_body != namespace {
            return Err(ApiError::bad_request(format!(
                "the namespace of the provided object (`{in_body}`) does not match the namespace sent on the request (`{namespace}`)"
            )));
        }
        Ok(())
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
        Self::check_kind(rt, &body)?;
        Self::check_namespace(rt, namespace, &body)?;
        let name = match Self::body_name(&body) {
            Some(n) => n,
            None => match body
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
            {
                Some(prefix) if !prefix.is_empty() => {
                    format!(
                        "{prefix}{}",
                        safe_suffix(
                            stable_hash(&format!("{prefix}/{}", self.uid_counter + 1)),
                            5
                        )
                    )
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{} is invalid: metadata.name: Required value: name or generateName is required",
                        rt.qualified()
                    )));
                }
            },
        };
        if self.peek(rt, namespace, &name).is_some() {
            return Err(ApiError::AlreadyExists {
                resource: rt.qualified(),
                name,
            });
        }
        self.commit(
            rt,
            namespace,
            &name,
            None,
            body,
            ManagedChange::Update(opts.update_manager()),
            Part::Main,
            opts.dry_run,
        )
    }

    fn check_resource_version(
        rt: &ResourceType,
        name: &str,
        live: &Value,
        body: &Value,
    ) -> Result<(), ApiError> {
        let wanted = body
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let current = live
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str);
        match wanted {
            Some(w) if Some(w) != current => Err(ApiError::stale(&rt.qualified(), name)),
            _ => Ok(()),
        }
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
        Self::check_kind(rt, &body)?;
        Self::check_namespace(rt, namespace, &body)?;
        if let Some(body_name) = Self::body_name(&body)
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object (`{body_name}`) does not match the name on the URL (`{name}`)"
            )));
        }
        let live = self
            .peek(rt, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
        Self::check_resource_version(rt, name, &live, &body)?;
        let change = if part == Part::Main {
            ManagedChange::Update(opts.update_manager())
        } else {
            ManagedChange::Keep
        };
        self.commit(
            rt,
            namespace,
            name,
            Some(live),
            body,
            change,
            part,
            opts.dry_run,
        )
    }

    /// `PATCH` of an object or its status.
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
        let live = self
            .peek(rt, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
        let mut patched = live.clone();
        match patch_type {
            PatchType::Merge => {
                if !body.is_object() {
                    return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                }
                patch::merge_patch(&mut patched, &body);
            }
            PatchType::Strategic => {
                if !body.is_object() {
                    return Err(ApiError::bad_request(
                        "a strategic merge patch must be a JSON object",
                    ));
                }
                patch::strategic_merge(&mut patched, &body);
            }
            PatchType::Json => patch::json_patch(&mut patched, &body)?,
            PatchType::Apply => {}
        }
        Self::check_kind(rt, &patched)?;
        Self::check_resource_version(rt, name, &live, &patched)?;
        if patched.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
            return Err(ApiError::invalid(format!(
                "{} \"{name}\" is invalid: metadata.name: the name cannot be changed",
                rt.qualified()
            )));
        }
        let change = if part == Part::Main {
            ManagedChange::Update(opts.update_manager())
        } else {
            ManagedChange::Keep
        };
        self.commit(
            rt,
            namespace,
            name,
            Some(live),
            patched,
            change,
            part,
            opts.dry_run,
        )
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
        let manager = opts
            .field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::bad_request("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests"))?;
        if !applied.is_object() {
            return Err(ApiError::bad_request("an apply patch must be an object"));
        }
        if applied.get("apiVersion").and_then(Value::as_str).is_none()
            || applied.get("kind").and_then(Value::as_str).is_none()
        {
            return Err(ApiError::bad_request(
                "an apply patch must set apiVersion and kind",
            ));
        }
        Self::check_kind(rt, &applied)?;
        Self::check_namespace(rt, namespace, &applied)?;
        if let Some(body_name) = Self::body_name(&applied)
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object (`{body_name}`) does not match the name on the URL (`{name}`)"
            )));
        }
        let live = self.peek(rt, namespace, name).cloned();
        if let Some(live) = &live {
            Self::check_resource_version(rt, name, live, &applied)?;
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
        let applied_leaves = patch::leaves(&applied);
        let applied_paths: Vec<FieldPath> = applied_leaves.iter().map(|(p, _)| p.clone()).collect();
        let base = live.clone().unwrap_or_else(|| json!({}));
        let mut entries = read_managed(&base);
        let now = rfc3339(self.now());

        // Conflicts: fields another manager owns that this apply would change.
        let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
        let mut changed: Vec<FieldPath> = Vec::new();
        for (path, value) in &applied_leaves {
            if patch::value_at(&base, path) == Some(value) {
                continue;
            }
            changed.push(path.clone());
            for e in entries.iter().filter(|e| e.manager != manager) {
                if let Some(p) = e.paths.iter().find(|p| patch::overlaps(p, path)) {
                    conflicts.push((e.manager.clone(), p.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !opts.force {
            let list: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\": .{}", p.join(".")))
                .collect();
            return Err(ApiError::Conflict {
                message: format!(
                    "Apply failed with {} conflict(s): {}",
                    conflicts.len(),
                    list.join(", ")
                ),
                resource: rt.qualified(),
                name: name.to_string(),
            });
        }

        let mut merged = base.clone();
        patch::apply_merge(&mut merged, &applied);
        // Fields this manager applied before, applies no more, and nobody else owns: removed.
        let previous: Vec<FieldPath> = entries
            .iter()
            .filter(|e| e.manager == manager && e.operation == "Apply")
            .flat_map(|e| e.paths.clone())
            .collect();
        for old in previous {
            let still_applied = applied_paths.iter().any(|p| patch::overlaps(p, &old));
            let owned_by_other = entries
                .iter()
                .any(|e| e.manager != manager && e.paths.iter().any(|p| p == &old));
            if !still_applied && !owned_by_other {
                patch::remove_path(&mut merged, &old);
            }
        }
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
                    e.time = now;
                }
            }
            None => entries.push(Managed {
                manager,
                operation: "Apply".into(),
                api_version: rt.api_version(),
                time: now,
                paths: applied_paths,
            }),
        }
        entries.retain(|e| !e.paths.is_empty());
        self.commit(
            rt,
            namespace,
            name,
            live,
            merged,
            ManagedChange::Set(entries),
            part,
            opts.dry_run,
        )
    }

    /// Stores a new version of an object: fills identity and bookkeeping fields, keeps
    /// or replaces the status, counts the generation, updates managed fields, and runs
    /// the controllers. A write that changes nothing keeps the resourceVersion.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        old: Option<Value>,
        new: Value,
        managed: ManagedChange,
        part: Part,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let now = self.now();
        let mut obj = match (&old, part) {
            (Some(old), Part::Status) => {
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
            _ => new,
        };
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        };
        map.insert("apiVersion".into(), json!(rt.api_version()));
        map.insert("kind".into(), json!(rt.kind));
        if rt.has_status && part == Part::Main {
            match old.as_ref().and_then(|o| o.get("status")) {
                Some(s) => {
                    map.insert("status".into(), s.clone());
                }
                None => {
                    map.remove("status");
                }
            }
        }
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        if !meta.is_object() {
            return Err(ApiError::invalid(format!(
                "{} \"{name}\" is invalid: metadata must be an object",
                rt.qualified()
            )));
        }
        let Some(meta) = meta.as_object_mut() else {
            return Err(ApiError::invalid("metadata must be an object"));
        };
        meta.insert("name".into(), json!(name));
        meta.remove("generateName");
        meta.remove("selfLink");
        if rt.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        let generation = match &old {
            Some(o) => {
                let old_gen = o
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                let changed =
                    part == Part::Main && strip_for_generation(o) != strip_for_generation(&obj);
                old_gen + i64::from(changed)
            }
            None => 1,
        };
        let (uid, created) = match &old {
            Some(o) => (
                o.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                o.pointer("/metadata/creationTimestamp")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            None => (
                json!(if dry_run {
                    String::new()
                } else {
                    self.next_uid()
                }),
                json!(rfc3339(now)),
            ),
        };
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return Err(ApiError::invalid("metadata must be an object"));
        };
        meta.insert("uid".into(), uid);
        meta.insert("creationTimestamp".into(), created);
        meta.insert("generation".into(), json!(generation));
        meta.remove("managedFields");
        match old
            .as_ref()
            .and_then(|o| o.pointer("/metadata/resourceVersion"))
        {
            Some(rv) => meta.insert("resourceVersion".into(), rv.clone()),
            None => meta.remove("resourceVersion"),
        };

        let entries = match managed {
            ManagedChange::Keep => old.as_ref().map(read_managed).unwrap_or_default(),
            ManagedChange::Set(entries) => entries,
            ManagedChange::Update(manager) => {
                let mut entries = old.as_ref().map(read_managed).unwrap_or_default();
                let before: BTreeMap<FieldPath, Value> = old
                    .as_ref()
                    .map(|o| patch::leaves(o).into_iter().collect())
                    .unwrap_or_default();
                let after: BTreeMap<FieldPath, Value> = patch::leaves(&obj).into_iter().collect();
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
                if !changed.is_empty() || !removed.is_empty() {
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
                            let set: BTreeSet<FieldPath> =
                                e.paths.iter().cloned().chain(changed).collect();
                            e.paths = set.into_iter().collect();
                            e.time = rfc3339(now);
                        }
                        None if !changed.is_empty() => entries.push(Managed {
                            manager,
                            operation: "Update".into(),
                            api_version: rt.api_version(),
                            time: rfc3339(now),
                            paths: changed,
                        }),
                        None => {}
                    }
                    entries.retain(|e| !e.paths.is_empty());
                }
                entries
            }
        };
        if !entries.is_empty() {
            obj["metadata"]["managedFields"] = write_managed(&entries);
        }
        validate(rt, &obj, name)?;

        if is_route(rt) && !dry_run {
            self.weight_history.push(WeightChange {
                at_millis: now,
                namespace: namespace.to_string(),
                kind: rt.kind.to_string(),
                name: name.to_string(),
                weights: traffic::route_weights(&obj),
            });
        }
        if let Some(o) = &old
            && without_resource_version(o) == without_resource_version(&obj)
        {
            return Ok(o.clone());
        }
        if dry_run {
            return Ok(obj);
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv);
        let k = key(rt, namespace, name);
        self.objects.insert(k.clone(), obj);
        if is_deployment(rt) {
            let track_key = (namespace.to_string(), name.to_string());
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
        self.objects
            .get(&k)
            .cloned()
            .ok_or_else(|| ApiError::Internal {
                message: format!("{name} vanished after the write"),
            })
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
        let live = self
            .peek(rt, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&rt.qualified(), name))?;
        if let Some(pre) = preconditions {
            for (field, pointer) in [
                ("uid", "/metadata/uid"),
                ("resourceVersion", "/metadata/resourceVersion"),
            ] {
                if let Some(wanted) = pre.get(field).and_then(Value::as_str)
                    && live.pointer(pointer).and_then(Value::as_str) != Some(wanted)
                {
                    return Err(ApiError::Conflict {
                        message: format!(
                            "Precondition failed: {field} in precondition: {wanted}, {field} in object meta: {}",
                            live.pointer(pointer)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                        ),
                        resource: rt.qualified(),
                        name: name.to_string(),
                    });
                }
            }
        }
        if !dry_run {
            self.remove(rt, namespace, name);
            self.after_change();
        }
        Ok(live)
    }

    fn remove(&mut self, rt: &ResourceType, namespace: &str, name: &str) {
        let now = self.now();
        self.objects.remove(&key(rt, namespace, name));
        if is_deployment(rt) {
            self.tracks
                .remove(&(namespace.to_string(), name.to_string()));
        }
        if is_route(rt) {
            self.weight_history.push(WeightChange {
                at_millis: now,
                namespace: namespace.to_string(),
                kind: rt.kind.to_string(),
                name: name.to_string(),
                weights: Vec::new(),
            });
        }
        if rt.group.is_empty() && rt.plural == "namespaces" {
            let inside: Vec<Key> = self
                .objects
                .keys()
                .filter(|(_, _, ns, _)| ns == name)
                .cloned()
                .collect();
            for k in inside {
                if let Some(t) = resources::RESOURCES
                    .iter()
                    .find(|r| r.group == k.0 && r.plural == k.1)
                {
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
                let ns = o
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let name = o
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.remove(rt, &ns, &name);
            }
            self.after_change();
        }
        doomed
    }

    /// Runs the controllers and records the traffic state after any change.
    pub fn after_change(&mut self) {
        self.reconcile();
        self.record_traffic();
    }

    /// The simulated controllers: each Deployment's status and Pods as of now.
    pub fn reconcile(&mut self) {
        let now = self.now();
        let delay = self.ready_delay_millis;
        let deployments: Vec<(Key, Value)> = self
            .objects
            .iter()
            .filter(|((g, p, _, _), _)| g == "apps" && p == "deployments")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut wanted_pods: BTreeMap<Key, Value> = BTreeMap::new();
        for (k, d) in &deployments {
            let generation = d
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let track = *self
                .tracks
                .entry((k.2.clone(), k.3.clone()))
                .or_insert(Track {
                    generation,
                    changed_at: now,
                });
            let status = workloads::deployment_status(d, track, now, delay, &self.bad_images);
            if d.get("status") != Some(&status) {
                let rv = self.next_rv();
                if let Some(obj) = self.objects.get_mut(k) {
                    obj["status"] = status;
                    obj["metadata"]["resourceVersion"] = json!(rv);
                }
            }
            for pod in workloads::desired_pods(d, track, now, delay, &self.bad_images) {
                let name = pod
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                wanted_pods.insert((String::new(), "pods".into(), k.2.clone(), name), pod);
            }
        }
        let stale: Vec<Key> = self
            .objects
            .iter()
            .filter(|((g, p, _, _), v)| {
                g.is_empty()
                    && p == "pods"
                    && v.pointer(&format!(
                        "/metadata/annotations/{}",
                        OWNER_ANNOTATION.replace('/', "~1")
                    ))
                    .is_some()
            })
            .map(|(k, _)| k.clone())
            .filter(|k| !wanted_pods.contains_key(k))
            .collect();
        for k in stale {
            self.objects.remove(&k);
        }
        for (k, mut pod) in wanted_pods {
            let existing = self.objects.get(&k);
            let same = existing.is_some_and(|e| {
                e.get("status") == pod.get("status")
                    && e.get("spec") == pod.get("spec")
                    && e.pointer("/metadata/labels") == pod.pointer("/metadata/labels")
            });
            if same {
                continue;
            }
            let (uid, created) = match existing {
                Some(e) => (
                    e.pointer("/metadata/uid").cloned().unwrap_or(Value::Null),
                    e.pointer("/metadata/creationTimestamp")
                        .cloned()
                        .unwrap_or(Value::Null),
                ),
                None => (json!(self.next_uid()), json!(rfc3339(now))),
            };
            let rv = self.next_rv();
            if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("uid".into(), uid);
                meta.insert("creationTimestamp".into(), created);
                meta.insert("resourceVersion".into(), json!(rv));
            }
            self.objects.insert(k, pod);
        }
    }

    /// Appends the current traffic state to the timeline if it differs from the last.
    pub fn record_traffic(&mut self) {
        let now = self.now();
        let delay = self.ready_delay_millis;
        let mut snap = TrafficSnapshot {
            rates: self.traffic_rates.clone(),
            ..TrafficSnapshot::default()
        };
        let mut by_prefix: Vec<(RouteKey, Weights)> = Vec::new();
        for ((g, p, ns, name), obj) in &self.objects {
            let is_route_obj = (g == "appmesh.k8s.aws" && p == "virtualrouters")
                || (g == "gateway.networking.k8s.io" && (p == "httproutes" || p == "grpcroutes"));
            if is_route_obj {
                let weights = traffic::route_weights(obj);
                if let Some((first, _)) = weights.first()
                    && let Some((service, _)) = first.rsplit_once('-')
                    && weights
                        .iter()
                        .all(|(t, _)| t.starts_with(&format!("{service}-")))
                {
                    by_prefix.push(((ns.clone(), service.to_string()), weights.clone()));
                }
                snap.routes.insert((ns.clone(), name.clone()), weights);
            }
            if g == "apps" && p == "deployments" {
                let track_key = (ns.clone(), name.clone());
                let track = self.tracks.get(&track_key).copied().unwrap_or(Track {
                    generation: 1,
                    changed_at: now,
                });
                let error_rate = workloads::images(obj)
                    .iter()
                    .filter_map(|i| self.error_rates.get(i).copied())
                    .fold(0.0_f64, f64::max);
                let ready_from = workloads::ready_from(obj, track, delay, &self.bad_images);
                snap.targets.insert(
                    track_key,
                    TargetInfo {
                        ready_from,
                        error_rate,
                    },
                );
            }
        }
        for (k, w) in by_prefix {
            snap.routes.entry(k).or_insert(w);
        }
        match self.traffic_history.last_mut() {
            Some((_, last)) if *last == snap => {}
            Some((at, last)) if *at == now => *last = snap,
            _ => self.traffic_history.push((now, snap)),
        }
    }
}

fn is_deployment(rt: &ResourceType) -> bool {
    rt.group == "apps" && rt.plural == "deployments"
}

fn is_route(rt: &ResourceType) -> bool {
    matches!(
        (rt.group, rt.plural),
        ("appmesh.k8s.aws", "virtualrouters")
            | ("gateway.networking.k8s.io", "httproutes" | "grpcroutes")
    )
}
