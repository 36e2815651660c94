//! The simulated controllers, run after every change and before every read: each
//! Deployment's status and the Pods standing for its replicas as of now (what they look
//! like is decided in `workloads`), the route statuses (before every request only; see
//! `route_controller`), and the traffic timeline (a new snapshot whenever rates, route
//! weights, readiness, error rates or latencies change).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::resources;
use crate::state::State;
use crate::store::Key;
use crate::traffic::{self, TargetInfo, TrafficSnapshot};
use crate::util::rfc3339;
use crate::workloads::{self, OWNER_ANNOTATION, Track};

/// (namespace, service) of a route.
type RouteKey = (String, String);
/// Target names and weights.
type Weights = Vec<(String, u64)>;

impl State {
    /// Runs the workload controllers and records the traffic state after any change.
    /// The route controller is left for the next request: it never shows in the answer
    /// to the write that queued it.
    pub fn after_change(&mut self) {
        self.reconcile_workloads();
        self.record_traffic();
    }

    /// The simulated controllers, before a request is served: each Deployment's status
    /// and Pods as of now, and the route statuses whose time has come.
    pub fn reconcile(&mut self) {
        self.reconcile_workloads();
        self.reconcile_routes();
    }

    /// Each Deployment's status and Pods as of now.
    fn reconcile_workloads(&mut self) {
        let now = self.now();
        let wanted_pods = self.reconcile_deployments(now);
        self.sync_pods(wanted_pods, now);
    }

    /// Writes each Deployment's status as of now (a new resourceVersion when it
    /// changed) and returns the Pods they should have as of `now`, by key.
    fn reconcile_deployments(&mut self, now: i64) -> BTreeMap<Key, Value> {
        let delay = self.ready_delay_millis;
        let deployments: Vec<(Key, Value)> = self
            .store
            .of_type("apps", "deployments")
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
                let rv = self.store.next_rv();
                if let Some(obj) = self.store.get_mut(k) {
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
        wanted_pods
    }

    /// Removes the simulator's Pods that are no longer wanted and stores the wanted ones
    /// that are new or changed (keeping uid and creation time of those that exist).
    fn sync_pods(&mut self, wanted_pods: BTreeMap<Key, Value>, now: i64) {
        let owner = format!(
            "/metadata/annotations/{}",
            OWNER_ANNOTATION.replace('/', "~1")
        );
        let stale: Vec<Key> = self
            .store
            .of_type("", "pods")
            .filter(|(_, v)| v.pointer(&owner).is_some())
            .map(|(k, _)| k.clone())
            .filter(|k| !wanted_pods.contains_key(k))
            .collect();
        for k in stale {
            self.store.remove(&k);
        }
        for (k, mut pod) in wanted_pods {
            let existing = self.store.get(&k);
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
                None => (json!(self.store.next_uid()), json!(rfc3339(now))),
            };
            let rv = self.store.next_rv();
            if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("uid".into(), uid);
                meta.insert("creationTimestamp".into(), created);
                meta.insert("resourceVersion".into(), json!(rv));
            }
            self.store.insert(k, pod);
        }
    }

    /// Appends the current traffic state to the timeline if it differs from the last.
    pub fn record_traffic(&mut self) {
        let now = self.now();
        let snap = self.traffic_snapshot(now);
        match self.traffic_history.last_mut() {
            Some((_, last)) if *last == snap => {}
            Some((at, last)) if *at == now => *last = snap,
            _ => self.traffic_history.push((now, snap)),
        }
    }

    /// The traffic state as of `now`: rates, each route's weights (by its name and, when
    /// all its targets are `<service>-...`, by that service), and each Deployment's
    /// readiness time, error rate, latency and first Pod's name.
    fn traffic_snapshot(&self, now: i64) -> TrafficSnapshot {
        let delay = self.ready_delay_millis;
        let mut snap = TrafficSnapshot {
            rates: self.traffic_rates.clone(),
            ..TrafficSnapshot::default()
        };
        let mut by_prefix: Vec<(RouteKey, Weights)> = Vec::new();
        for ((g, p, ns, name), obj) in self.store.iter() {
            if resources::is_route(g, p) {
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
                let latency = workloads::images(obj)
                    .iter()
                    .filter_map(|i| self.latencies.get(i).copied())
                    .max_by(|a, b| a.median_ms().total_cmp(&b.median_ms()))
                    .unwrap_or_default();
                let ready_from = workloads::ready_from(obj, track, delay, &self.bad_images);
                snap.targets.insert(
                    track_key,
                    TargetInfo {
                        ready_from,
                        error_rate,
                        latency,
                        pod: workloads::first_pod_name(obj),
                    },
                );
            }
        }
        for (k, w) in by_prefix {
            snap.routes.entry(k).or_insert(w);
        }
        snap
    }
}
