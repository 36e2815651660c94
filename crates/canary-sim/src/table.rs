//! Server-side printing: the `meta.k8s.io/v1` `Table` that `kubectl get` asks for
//! (`Accept: application/json;as=Table;...`), with the columns kubectl users expect for
//! Deployments, Pods, Services and Namespaces, and NAME / AGE for everything else.

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::util::{human_age, parse_rfc3339};

fn column(name: &str, kind: &str, priority: u8) -> Value {
    json!({ "name": name, "type": kind, "format": if name == "Name" { "name" } else { "" }, "description": name, "priority": priority })
}

fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn created_millis(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
}

fn age(obj: &Value, now: i64) -> String {
    created_millis(obj).map_or_else(|| "<unknown>".to_string(), |c| human_age(now - c))
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    match (rt.group, rt.plural) {
        ("apps", "deployments") => vec![
            column("Name", "string", 0),
            column("Ready", "string", 0),
            column("Up-to-date", "integer", 0),
            column("Available", "integer", 0),
            column("Age", "string", 0),
        ],
        ("", "pods") => vec![
            column("Name", "string", 0),
            column("Ready", "string", 0),
            column("Status", "string", 0),
            column("Restarts", "string", 0),
            column("Age", "string", 0),
        ],
        ("", "services") => vec![
            column("Name", "string", 0),
            column("Type", "string", 0),
            column("Cluster-IP", "string", 0),
            column("Port(s)", "string", 0),
            column("Age", "string", 0),
        ],
        ("", "namespaces") => vec![
            column("Name", "string", 0),
            column("Status", "string", 0),
            column("Age", "string", 0),
        ],
        _ => vec![column("Name", "string", 0), column("Age", "string", 0)],
    }
}

fn cells(rt: &ResourceType, obj: &Value, now: i64) -> Vec<Value> {
    let name = obj
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let mut row = vec![name];
    row.extend(match (rt.group, rt.plural) {
        ("apps", "deployments") => deployment_cells(obj),
        ("", "pods") => pod_cells(obj),
        ("", "services") => service_cells(obj),
        ("", "namespaces") => vec![json!(
            obj.pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("Active")
        )],
        _ => Vec::new(),
    });
    row.push(json!(age(obj, now)));
    row
}

/// READY, UP-TO-DATE, AVAILABLE.
fn deployment_cells(obj: &Value) -> Vec<Value> {
    let desired = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    vec![
        json!(format!(
            "{}/{desired}",
            int_at(obj, "/status/readyReplicas")
        )),
        json!(int_at(obj, "/status/updatedReplicas")),
        json!(int_at(obj, "/status/availableReplicas")),
    ]
}

/// READY, STATUS (a waiting reason before the phase), RESTARTS.
fn pod_cells(obj: &Value) -> Vec<Value> {
    let statuses = obj
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ready = statuses
        .iter()
        .filter(|s| s.get("ready") == Some(&json!(true)))
        .count();
    let waiting = statuses
        .iter()
        .find_map(|s| s.pointer("/state/waiting/reason").and_then(Value::as_str));
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    vec![
        json!(format!("{ready}/{}", statuses.len())),
        json!(waiting.unwrap_or(phase)),
        json!("0"),
    ]
}

/// TYPE, CLUSTER-IP, PORT(S).
fn service_cells(obj: &Value) -> Vec<Value> {
    let ports: Vec<String> = obj
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            format!(
                "{}/{proto}",
                p.get("port").map(Value::to_string).unwrap_or_default()
            )
        })
        .collect();
    vec![
        json!(
            obj.pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP")
        ),
        json!(
            obj.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("<none>")
        ),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        }),
    ]
}

/// A Table of `items`. `include_object` is the `includeObject` query parameter:
/// `Object` (whole objects), `None`, or the default `Metadata`.
pub fn table(
    rt: &ResourceType,
    items: &[Value],
    now: i64,
    resource_version: &str,
    include_object: &str,
) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let mut row = json!({ "cells": cells(rt, obj, now) });
            match include_object {
                "None" => {}
                "Object" => row["object"] = obj.clone(),
                _ => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    });
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": { "resourceVersion": resource_version },
        "columnDefinitions": columns(rt),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rfc3339;

    #[test]
    fn creation_timestamps_parse_back_to_the_same_instant() {
        let t = 1_735_689_605_000;
        let obj = json!({ "metadata": { "creationTimestamp": rfc3339(t) } });
        assert_eq!(created_millis(&obj), Some(t));
        assert_eq!(age(&obj, t + 42_000), "42s");
    }
}
