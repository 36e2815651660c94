//! What the simulated controllers do for Deployments: the status a Deployment shows at
//! a given time, and the Pods that stand for its replicas.
//!
//! A Deployment becomes ready `ready_delay` after its current generation was written
//! (measured on the simulator's clock); a spec change starts the delay again (there is
//! no rolling update: the Deployment is unavailable until the new generation is
//! ready). A Deployment with an image marked bad never becomes ready; its Pods show
//! the reason in `status.containerStatuses[].state.waiting`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::util::{rfc3339, safe_suffix, stable_hash};

/// Annotation that marks a Pod as made by the simulator for a Deployment.
pub(crate) const OWNER_ANNOTATION: &str = "canary-sim.io/deployment";

/// When the current generation of a Deployment was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Track {
    /// The generation being rolled out.
    pub generation: i64,
    /// When it was written (ms since the epoch).
    pub changed_at: i64,
}

/// Where a Deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Every replica is ready, since the given time.
    Ready(i64),
    /// Pods are starting; ready at the given time.
    Starting(i64),
    /// An image is bad: never ready.
    Failing { image: String, reason: String },
}

/// The container images of a Deployment's pod template (init containers included).
pub(crate) fn images(deploy: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        let pointer = format!("/spec/template/spec/{list}");
        for c in deploy
            .pointer(&pointer)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(image) = c.get("image").and_then(Value::as_str) {
                out.push(image.to_string());
            }
        }
    }
    out
}

/// The desired replica count (`spec.replicas`, default 1).
fn replicas(deploy: &Value) -> i64 {
    deploy
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0)
}

fn phase(
    deploy: &Value,
    track: Track,
    now: i64,
    delay: i64,
    bad: &BTreeMap<String, String>,
) -> Phase {
    if let Some((image, reason)) = images(deploy)
        .into_iter()
        .find_map(|i| bad.get(&i).map(|r| (i, r.clone())))
    {
        return Phase::Failing { image, reason };
    }
    let at = track.changed_at.saturating_add(delay);
    if now >= at {
        Phase::Ready(at)
    } else {
        Phase::Starting(at)
    }
}

/// From when the Deployment is ready; `None` if it never will be (bad image).
pub(crate) fn ready_from(
    deploy: &Value,
    track: Track,
    delay: i64,
    bad: &BTreeMap<String, String>,
) -> Option<i64> {
    match phase(deploy, track, i64::MIN, delay, bad) {
        Phase::Failing { .. } => None,
        Phase::Ready(at) | Phase::Starting(at) => Some(at),
    }
}

fn template_hash(deploy: &Value) -> String {
    let template = deploy
        .pointer("/spec/template")
        .map(Value::to_string)
        .unwrap_or_default();
    safe_suffix(stable_hash(&template), 10)
}

fn condition(kind: &str, status: bool, reason: &str, message: &str, since: i64) -> Value {
    json!({
        "type": kind,
        "status": if status { "True" } else { "False" },
        "lastUpdateTime": rfc3339(since),
        "lastTransitionTime": rfc3339(since),
        "reason": reason,
        "message": message,
    })
}

/// The status the Deployment controller would show now. Zero counts are left out, as
/// a real API server does.
pub(crate) fn deployment_status(
    deploy: &Value,
    track: Track,
    now: i64,
    delay: i64,
    bad: &BTreeMap<String, String>,
) -> Value {
    let name = deploy
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let n = replicas(deploy);
    let rs = format!("{name}-{}", template_hash(deploy));
    let deadline_secs = deploy
        .pointer("/spec/progressDeadlineSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(600);
    let deadline_at = track
        .changed_at
        .saturating_add(deadline_secs.saturating_mul(1000));
    let mut status = Map::new();
    status.insert("observedGeneration".into(), json!(track.generation));
    let mut put = |k: &str, v: i64| {
        if v != 0 {
            status.insert(k.into(), json!(v));
        }
    };
    let ready = match phase(deploy, track, now, delay, bad) {
        Phase::Ready(at) => Some(at),
        Phase::Starting(_) | Phase::Failing { .. } => None,
    };
    put("replicas", n);
    put("updatedReplicas", n);
    let conditions = match ready {
        Some(at) => {
            put("readyReplicas", n);
            put("availableReplicas", n);
            ready_conditions(&rs, at)
        }
        None => {
            put("unavailableReplicas", n);
            unready_conditions(&rs, n, track.changed_at, deadline_at, now)
        }
    };
    status.insert("conditions".into(), json!(conditions));
    Value::Object(status)
}

/// The conditions of a Deployment whose replicas are all ready since `at`.
fn ready_conditions(rs: &str, at: i64) -> Vec<Value> {
    vec![
        condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            at,
        ),
        condition(
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{rs}\" has successfully progressed."),
            at,
        ),
    ]
}

/// The conditions of a Deployment of `n` replicas that is not ready: still progressing,
/// or past its progress deadline.
fn unready_conditions(rs: &str, n: i64, changed_at: i64, deadline_at: i64, now: i64) -> Vec<Value> {
    let progressing = if now >= deadline_at {
        condition(
            "Progressing",
            false,
            "ProgressDeadlineExceeded",
            &format!("ReplicaSet \"{rs}\" has timed out progressing."),
            deadline_at,
        )
    } else {
        condition(
            "Progressing",
            true,
            "ReplicaSetUpdated",
            &format!("ReplicaSet \"{rs}\" is progressing."),
            changed_at,
        )
    };
    vec![
        condition(
            "Available",
            n == 0,
            if n == 0 {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            },
            "Deployment does not have minimum availability.",
            changed_at,
        ),
        progressing,
    ]
}

fn waiting_message(image: &str, reason: &str) -> String {
    match reason {
        "ImagePullBackOff" => format!("Back-off pulling image \"{image}\""),
        "ErrImagePull" => format!("failed to pull and unpack image \"{image}\": not found"),
        "CrashLoopBackOff" => {
            format!("back-off 5m0s restarting failed container (image \"{image}\")")
        }
        _ => format!("image \"{image}\" is marked bad in the simulated cluster: {reason}"),
    }
}

/// The name of replica `i`'s Pod: `<deployment>-<pod-template-hash>-<suffix>`.
fn pod_name(deployment: &str, hash: &str, i: i64) -> String {
    format!(
        "{deployment}-{hash}-{}",
        safe_suffix(stable_hash(&format!("{deployment}/{hash}/{i}")), 5)
    )
}

/// The name the Deployment's first Pod has (or would have, with 0 replicas) for its
/// current pod template.
pub(crate) fn first_pod_name(deploy: &Value) -> String {
    let name = deploy
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    pod_name(name, &template_hash(deploy), 0)
}

/// The Pods that stand for the Deployment's replicas now (without uid, resourceVersion
/// and creationTimestamp, which the store adds).
pub(crate) fn desired_pods(
    deploy: &Value,
    track: Track,
    now: i64,
    delay: i64,
    bad: &BTreeMap<String, String>,
) -> Vec<Value> {
    let name = deploy
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let namespace = deploy
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let uid = deploy
        .pointer("/metadata/uid")
        .cloned()
        .unwrap_or(Value::Null);
    let hash = template_hash(deploy);
    let mut labels = deploy
        .pointer("/spec/template/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(l) = labels.as_object_mut() {
        l.insert("pod-template-hash".into(), json!(hash));
    }
    let spec = deploy
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let phase = phase(deploy, track, now, delay, bad);
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| container_status(c, &phase, bad))
        .collect();
    let status = pod_status(&phase, track, statuses);
    (0..replicas(deploy))
        .map(|i| {
            let pod_name = pod_name(name, &hash, i);
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": { OWNER_ANNOTATION: name },
                    "ownerReferences": [{
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": name,
                        "uid": uid,
                        "controller": true,
                        "blockOwnerDeletion": true,
                    }],
                },
                "spec": spec,
                "status": status,
            })
        })
        .collect()
}

/// A container's status in a Pod of a Deployment in `phase`: running, creating, or
/// waiting with the reason its bad image was given.
fn container_status(container: &Value, phase: &Phase, bad: &BTreeMap<String, String>) -> Value {
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (ready, state) = match phase {
        Phase::Ready(at) => (true, json!({ "running": { "startedAt": rfc3339(*at) } })),
        Phase::Starting(_) => (
            false,
            json!({ "waiting": { "reason": "ContainerCreating" } }),
        ),
        Phase::Failing { .. } => match bad.get(image) {
            Some(reason) => (
                false,
                json!({ "waiting": { "reason": reason, "message": waiting_message(image, reason) } }),
            ),
            None => (false, json!({ "waiting": { "reason": "PodInitializing" } })),
        },
    };
    json!({
        "name": container.get("name").cloned().unwrap_or(Value::Null),
        "image": image,
        "imageID": "",
        "ready": ready,
        "started": ready,
        "restartCount": 0,
        "state": state,
    })
}

/// A Pod's status in `phase`, with its containers' statuses.
fn pod_status(phase: &Phase, track: Track, statuses: Vec<Value>) -> Value {
    let ready = matches!(phase, Phase::Ready(_));
    let since = match phase {
        Phase::Ready(at) => *at,
        _ => track.changed_at,
    };
    let cond = |kind: &str, ok: bool| {
        let mut c = json!({ "type": kind, "status": if ok { "True" } else { "False" }, "lastTransitionTime": rfc3339(since) });
        if !ok {
            c["reason"] = json!("ContainersNotReady");
        }
        c
    };
    json!({
        "phase": if ready { "Running" } else { "Pending" },
        "conditions": [
            { "type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(track.changed_at) },
            cond("ContainersReady", ready),
            cond("Ready", ready),
        ],
        "containerStatuses": statuses,
        "startTime": rfc3339(track.changed_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(image: &str) -> Value {
        json!({"metadata": {"name": "web-1", "namespace": "n"}, "spec": {"replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}}})
    }

    #[test]
    fn a_deployment_is_ready_exactly_after_the_delay() {
        let d = deploy("web:1");
        let track = Track {
            generation: 3,
            changed_at: 1_000,
        };
        let bad = BTreeMap::new();
        let before = deployment_status(&d, track, 2_999, 2_000, &bad);
        assert_eq!(before.get("availableReplicas"), None);
        assert_eq!(before["unavailableReplicas"], json!(2));
        let after = deployment_status(&d, track, 3_000, 2_000, &bad);
        assert_eq!(after["observedGeneration"], json!(3));
        assert_eq!(after["availableReplicas"], json!(2));
        assert_eq!(after["conditions"][0]["status"], json!("True"));
    }

    #[test]
    fn a_bad_image_shows_its_reason_on_the_pods_and_the_deadline_on_the_deployment() {
        let d = deploy("web:bad");
        let track = Track {
            generation: 1,
            changed_at: 0,
        };
        let bad = BTreeMap::from([("web:bad".to_string(), "ImagePullBackOff".to_string())]);
        let pods = desired_pods(&d, track, 1_000_000, 0, &bad);
        assert_eq!(pods.len(), 2);
        assert_eq!(
            pods[0]["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
            json!("ImagePullBackOff")
        );
        let status = deployment_status(&d, track, 601_000, 0, &bad);
        assert_eq!(
            status["conditions"][1]["reason"],
            json!("ProgressDeadlineExceeded")
        );
        assert_eq!(ready_from(&d, track, 0, &bad), None);
    }
}
