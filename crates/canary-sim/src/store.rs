//! The object store: every object by (group, plural, namespace, name), the global
//! resourceVersion counter and generated uids and names. It only holds and finds
//! objects; the verbs, their checks and the controllers are elsewhere.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::util::{safe_suffix, stable_hash};

/// Where an object lives: (group, plural, namespace or "", name).
pub(crate) type Key = (String, String, String, String);

/// The key of an object of type `rt` (the namespace is ignored for cluster-scoped types).
pub(crate) fn key(rt: &ResourceType, namespace: &str, name: &str) -> Key {
    let ns = if rt.namespaced { namespace } else { "" };
    (
        rt.group.to_string(),
        rt.plural.to_string(),
        ns.to_string(),
        name.to_string(),
    )
}

/// Every stored object, with the counters that identify versions and objects.
#[derive(Debug, Default)]
pub(crate) struct Store {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    uid_counter: u64,
}

impl Store {
    /// The current global resourceVersion.
    pub fn resource_version(&self) -> String {
        self.resource_version.to_string()
    }

    /// Counts the global resourceVersion up and returns the new one.
    pub fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// A new uid, stable for a given sequence of objects (UUID v4 layout).
    pub fn next_uid(&mut self) -> String {
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

    /// The name `metadata.generateName: prefix` gets: the prefix and five characters.
    pub fn generated_name(&self, prefix: &str) -> String {
        let suffix = safe_suffix(
            stable_hash(&format!("{prefix}/{}", self.uid_counter + 1)),
            5,
        );
        format!("{prefix}{suffix}")
    }

    /// One object of a type.
    pub fn peek(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(rt, namespace, name))
    }

    /// The object under a key.
    pub fn get(&self, k: &Key) -> Option<&Value> {
        self.objects.get(k)
    }

    /// The object under a key, to change in place.
    pub fn get_mut(&mut self, k: &Key) -> Option<&mut Value> {
        self.objects.get_mut(k)
    }

    /// Stores an object under a key, replacing what was there.
    pub fn insert(&mut self, k: Key, object: Value) {
        self.objects.insert(k, object);
    }

    /// Removes the object under a key.
    pub fn remove(&mut self, k: &Key) -> Option<Value> {
        self.objects.remove(k)
    }

    /// Every object with its key, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.iter()
    }

    /// Every object of one (group, plural), with its key.
    pub fn of_type<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> {
        self.objects
            .iter()
            .filter(move |((g, p, _, _), _)| g == group && p == plural)
    }

    /// Objects of one type, in one namespace (`Some`) or all, filtered by selectors.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.of_type(rt.group, rt.plural)
            .filter(|((_, _, ns, _), _)| namespace.is_none_or(|n| !rt.namespaced || n == ns))
            .map(|(_, v)| v)
            .filter(|v| labels.matches(v) && fields.matches(v))
            .cloned()
            .collect()
    }

    /// The keys of every object in a namespace ("" for cluster-scoped ones).
    pub fn keys_in(&self, namespace: &str) -> Vec<Key> {
        self.objects
            .keys()
            .filter(|(_, _, ns, _)| ns == namespace)
            .cloned()
            .collect()
    }
}
