//! Readiness of a version's Deployment: whether it can take traffic, and, when it
//! cannot, why (the pods' waiting reasons, ProgressDeadlineExceeded). Pure: judged
//! from the Deployment and its pods as read by `ops.rs`, tested without a server.

use serde_json::Value;

/// Waiting reasons after which a pod will not start without a new image or config.
pub const FATAL_WAITING_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// Whether a Deployment is ready to take traffic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Readiness {
    /// Observed the latest spec, and every desired replica is updated, ready and available.
    Ready,
    /// Not yet; `detail` says how far it is.
    Progressing {
        /// Replica counts and the pods' waiting reasons.
        detail: String,
    },
    /// It will not become ready without a change: `reason` quotes the pods' reasons.
    Failed {
        /// ProgressDeadlineExceeded and/or the pods' waiting reasons and messages.
        reason: String,
    },
}

impl Readiness {
    /// True for [`Readiness::Ready`].
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }
}

fn int(v: &Value) -> Option<i64> {
    v.as_i64()
}

/// Ready: observed the latest generation, updated = ready = available = desired, and no
/// old replicas left over (as `kubectl rollout status` waits for).
pub fn deployment_is_ready(d: &Value) -> bool {
    let status = &d["status"];
    let generation = int(&d["metadata"]["generation"]).unwrap_or(0);
    let observed = int(&status["observedGeneration"]).unwrap_or(0);
    let desired = int(&d["spec"]["replicas"]).unwrap_or(1);
    let count = |k: &str| int(&status[k]).unwrap_or(0);
    observed >= generation
        && count("updatedReplicas") == desired
        && count("readyReplicas") == desired
        && count("availableReplicas") == desired
        && count("replicas") <= desired.max(count("updatedReplicas"))
}

/// The Deployment's `spec.selector.matchLabels` as a label selector.
pub(crate) fn match_labels_selector(d: &Value) -> Option<String> {
    let labels = d["spec"]["selector"]["matchLabels"].as_object()?;
    if labels.is_empty() {
        return None;
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    Some(parts.join(","))
}

/// Judges a Deployment that is not ready, from its conditions and its pods.
pub fn evaluate_readiness(d: &Value, pods: &[Value]) -> Readiness {
    if deployment_is_ready(d) {
        return Readiness::Ready;
    }
    let name = d["metadata"]["name"].as_str().unwrap_or("?");
    let mut fatal = Vec::new();
    let mut notes = Vec::new();
    for c in d["status"]["conditions"].as_array().into_iter().flatten() {
        let reason = c["reason"].as_str().unwrap_or_default();
        let message = c["message"].as_str().unwrap_or_default();
        if c["type"] == "Progressing" && reason == "ProgressDeadlineExceeded" {
            fatal.push(format!("ProgressDeadlineExceeded: {message}"));
        } else if c["type"] == "ReplicaFailure" && c["status"] == "True" {
            notes.push(format!("ReplicaFailure {reason}: {message}"));
        }
    }
    for pod in pods {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or("?");
        let statuses = ["initContainerStatuses", "containerStatuses"]
            .into_iter()
            .flat_map(|k| pod["status"][k].as_array().into_iter().flatten());
        for cs in statuses {
            let waiting = &cs["state"]["waiting"];
            let Some(reason) = waiting["reason"].as_str() else {
                continue;
            };
            let container = cs["name"].as_str().unwrap_or("?");
            let message = waiting["message"].as_str().unwrap_or_default();
            let line = if message.is_empty() {
                format!("pod {pod_name} container {container}: {reason}")
            } else {
                format!("pod {pod_name} container {container}: {reason}: {message}")
            };
            if FATAL_WAITING_REASONS.contains(&reason) {
                fatal.push(line);
            } else {
                notes.push(line);
            }
        }
    }
    let status = &d["status"];
    let desired = int(&d["spec"]["replicas"]).unwrap_or(1);
    let count = |k: &str| int(&status[k]).unwrap_or(0);
    let counts = format!(
        "Deployment {name}: {}/{desired} updated, {}/{desired} ready, {}/{desired} available",
        count("updatedReplicas"),
        count("readyReplicas"),
        count("availableReplicas")
    );
    if !fatal.is_empty() {
        fatal.dedup();
        return Readiness::Failed {
            reason: format!("{counts}; {}", fatal.join("; ")),
        };
    }
    let generation = int(&d["metadata"]["generation"]).unwrap_or(0);
    let observed = int(&status["observedGeneration"]).unwrap_or(0);
    if observed < generation {
        notes.insert(
            0,
            format!("generation {generation} not yet observed (observed {observed})"),
        );
    }
    let detail = if notes.is_empty() {
        counts
    } else {
        format!("{counts}; {}", notes.join("; "))
    };
    Readiness::Progressing { detail }
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(
        generation: i64,
        observed: i64,
        desired: i64,
        counts: [i64; 3],
        conditions: Value,
    ) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "yelb-ui-2", "namespace": "yelb", "generation": generation},
            "spec": {"replicas": desired, "selector": {"matchLabels": {"app": "yelb-ui", "version": "2"}}},
            "status": {
                "observedGeneration": observed, "replicas": desired,
                "updatedReplicas": counts[0], "readyReplicas": counts[1], "availableReplicas": counts[2],
                "conditions": conditions,
            }
        })
    }

    fn text_of(r: &Readiness) -> String {
        match r {
            Readiness::Ready => String::new(),
            Readiness::Progressing { detail } => detail.clone(),
            Readiness::Failed { reason } => reason.clone(),
        }
    }

    fn pod(reason: &str, message: &str) -> Value {
        json!({"metadata": {"name": "yelb-ui-2-abc"}, "status": {"containerStatuses": [
            {"name": "yelb-ui", "state": {"waiting": {"reason": reason, "message": message}}}
        ]}})
    }

    #[test]
    fn a_deployment_is_ready_only_when_every_count_matches_the_observed_spec() {
        let cases = [
            (deployment(2, 2, 2, [2, 2, 2], json!([])), true),
            (deployment(2, 1, 2, [2, 2, 2], json!([])), false),
            (deployment(2, 2, 2, [1, 2, 2], json!([])), false),
            (deployment(2, 2, 2, [2, 1, 2], json!([])), false),
            (deployment(2, 2, 2, [2, 2, 1], json!([])), false),
            (deployment(1, 1, 0, [0, 0, 0], json!([])), true),
        ];
        for (i, (d, want)) in cases.iter().enumerate() {
            assert_eq!(deployment_is_ready(d), *want, "case {i}");
        }
    }

    #[test]
    fn fatal_waiting_reasons_fail_at_once_and_quote_the_pod() {
        for reason in [
            "ImagePullBackOff",
            "CrashLoopBackOff",
            "ErrImagePull",
            "CreateContainerConfigError",
        ] {
            let d = deployment(1, 1, 1, [1, 0, 0], json!([]));
            let r = evaluate_readiness(&d, &[pod(reason, "it broke")]);
            let text = text_of(&r);
            assert!(matches!(r, Readiness::Failed { .. }), "{reason}: {r:?}");
            assert!(
                text.contains(reason)
                    && text.contains("it broke")
                    && text.contains("yelb-ui-2-abc"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_container_still_being_created_is_progressing_with_its_reason() {
        let d = deployment(1, 1, 1, [1, 0, 0], json!([]));
        let r = evaluate_readiness(&d, &[pod("ContainerCreating", "")]);
        let detail = text_of(&r);
        assert!(matches!(r, Readiness::Progressing { .. }), "{r:?}");
        assert!(
            detail.contains("0/1 ready") && detail.contains("ContainerCreating"),
            "{detail}"
        );
    }

    #[test]
    fn an_exceeded_progress_deadline_fails_the_deployment() {
        let d = deployment(
            1,
            1,
            1,
            [1, 0, 0],
            json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                    "message": "ReplicaSet \"yelb-ui-2-abc\" has timed out progressing."}]),
        );
        let r = evaluate_readiness(&d, &[]);
        let reason = text_of(&r);
        assert!(matches!(r, Readiness::Failed { .. }), "{r:?}");
        assert!(
            reason.contains("ProgressDeadlineExceeded") && reason.contains("timed out"),
            "{reason}"
        );
    }

    #[test]
    fn an_unobserved_generation_is_progressing() {
        let d = deployment(3, 2, 1, [1, 1, 1], json!([]));
        let r = evaluate_readiness(&d, &[]);
        assert!(
            matches!(&r, Readiness::Progressing { detail } if detail.contains("generation 3")),
            "{r:?}"
        );
    }
}
