//! Simulated traffic. The cluster keeps a timeline of traffic snapshots (request rate
//! per service, route weights per target, each target's readiness time and error
//! rate); a metrics query integrates that timeline over time, period by period, the
//! way CloudWatch `GetMetricData` sums a request-count metric.
//!
//! Rules (all deterministic, no randomness):
//! - A service's requests per second (set with `set_traffic`) are split between the
//!   targets of its route object in proportion to their weights. The route object is
//!   the VirtualRouter, HTTPRoute or GRPCRoute named like the service in its namespace
//!   (or, if there is none, one whose targets are all named `<service>-...`). Weights of
//!   several routes or rules of one object are added up per target.
//! - A target `<service>-<version>` maps to the Deployment of that name. While that
//!   Deployment is missing or not ready, the target's whole share is counted as errors
//!   (what a mesh answers with 503 when no endpoint is ready). Once it is ready, the
//!   share times the error rate of its image (`set_error_rate`; the highest among its
//!   containers) is counted as errors and the rest as successes.
//! - Counts are fractional sums (requests per second times seconds), rounded to six
//!   decimals per period.

use std::collections::BTreeMap;

use crate::latency::LatencyModel;

pub(crate) use canary_core::provider::route_weights;

/// One recorded write to a route object: the weights of its targets at that time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightChange {
    /// When the write happened, on the simulator's clock (ms since the epoch).
    pub at_millis: i64,
    /// The route object's namespace.
    pub namespace: String,
    /// The route object's kind: `VirtualRouter`, `HTTPRoute` or `GRPCRoute`.
    pub kind: String,
    /// The route object's name.
    pub name: String,
    /// Target name and weight, in order of first appearance; weights of the same target
    /// in several routes or rules are added up. Empty when the object was deleted.
    pub weights: Vec<(String, u64)>,
}

/// A question for [`crate::SimCluster::metrics`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsQuery {
    /// The service's namespace.
    pub namespace: String,
    /// The service (the route object's name), e.g. `yelb-appserver`.
    pub service: String,
    /// `Some("<service>-<version>")`: count only that target's requests; `None`: all.
    pub controller: Option<String>,
    /// Start of the window, inclusive (ms since the epoch).
    pub start_millis: i64,
    /// End of the window, exclusive (ms since the epoch).
    pub end_millis: i64,
    /// Length of one period in seconds (at least 1).
    pub period_secs: u32,
}

/// Per-period sums, oldest period first. Periods run from `start_millis` in steps of
/// `period_secs` (the last one is cut at `end_millis`). A period in which the queried
/// scope received no requests at all is omitted from every vector, like a CloudWatch
/// metric filter that emits nothing when there are no log lines; otherwise both
/// `errors` and `successes` have an entry, possibly `0.0`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimMetrics {
    /// Start of each reported period (ms since the epoch).
    pub timestamps: Vec<i64>,
    /// Requests answered with 5xx per period.
    pub errors: Vec<f64>,
    /// Requests answered with 2xx per period.
    pub successes: Vec<f64>,
}

/// What the traffic of one target depends on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetInfo {
    /// From when the target's Deployment is ready; `None`: never (bad image).
    pub ready_from: Option<i64>,
    /// Fraction of its requests that fail once ready.
    pub error_rate: f64,
    /// How long it takes to answer once ready (the slowest of its images).
    pub latency: LatencyModel,
    /// The name of its first Pod (the Envoy series' `pod` label).
    pub pod: String,
}

/// The traffic-relevant state of the cluster from one instant on.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TrafficSnapshot {
    /// Requests per second by (namespace, service).
    pub rates: BTreeMap<(String, String), f64>,
    /// Target weights by (namespace, service).
    pub routes: BTreeMap<(String, String), Vec<(String, u64)>>,
    /// Targets by (namespace, Deployment name).
    pub targets: BTreeMap<(String, String), TargetInfo>,
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// One target's part of one stretch of the timeline (between two snapshots, cut to
/// the asked range): how many requests per second it was sent, and for how long it
/// had no ready endpoint and then had one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Portion<'a> {
    /// The target (`<service>-<version>`, the Deployment's name).
    pub target: &'a str,
    /// Its Deployment's state then; `None` when the Deployment did not exist.
    pub info: Option<&'a TargetInfo>,
    /// Requests per second sent to it.
    pub rate: f64,
    /// The length of the stretch, in milliseconds.
    pub millis: i64,
    /// Seconds of it in which the target had no ready endpoint (every request 503).
    pub unready_secs: f64,
    /// Seconds of it in which the target was ready.
    pub ready_secs: f64,
}

impl Portion<'_> {
    /// The fraction of requests the target fails once ready; a missing Deployment
    /// fails every request.
    pub fn error_rate(&self) -> f64 {
        self.info.map_or(1.0, |t| t.error_rate)
    }
}

/// Calls `f` with each portion of the traffic of `service` in `namespace` over
/// `[from, to)` that received requests, oldest first, in the route's target order.
pub(crate) fn portions<'a>(
    history: &'a [(i64, TrafficSnapshot)],
    namespace: &str,
    service: &str,
    from: i64,
    to: i64,
    mut f: impl FnMut(Portion<'a>),
) {
    let key = (namespace.to_owned(), service.to_owned());
    for (i, (seg_start, snap)) in history.iter().enumerate() {
        let seg_end = history.get(i + 1).map_or(i64::MAX, |(t, _)| *t);
        let (lo, hi) = (from.max(*seg_start), to.min(seg_end));
        if lo >= hi {
            continue;
        }
        let rate = snap.rates.get(&key).copied().unwrap_or(0.0);
        let Some(weights) = snap.routes.get(&key) else {
            continue;
        };
        let total: u64 = weights.iter().map(|(_, w)| w).sum();
        if rate <= 0.0 || total == 0 {
            continue;
        }
        for (target, weight) in weights {
            let info = snap.targets.get(&(namespace.to_owned(), target.clone()));
            let ready_from = info
                .and_then(|t| t.ready_from)
                .unwrap_or(i64::MAX)
                .clamp(lo, hi);
            f(Portion {
                target,
                info,
                rate: rate * (*weight as f64) / (total as f64),
                millis: hi - lo,
                unready_secs: (ready_from - lo) as f64 / 1000.0,
                ready_secs: (hi - ready_from) as f64 / 1000.0,
            });
        }
    }
}

/// Integrates the timeline over `[from, to)`: (requests, errors).
fn integrate(
    history: &[(i64, TrafficSnapshot)],
    q: &MetricsQuery,
    from: i64,
    to: i64,
) -> (f64, f64) {
    let (mut requests, mut errors) = (0.0, 0.0);
    portions(history, &q.namespace, &q.service, from, to, |p| {
        if q.controller.as_ref().is_some_and(|c| c != p.target) {
            return;
        }
        requests += p.rate * p.millis as f64 / 1000.0;
        errors += p.rate * p.unready_secs + p.rate * p.ready_secs * p.error_rate();
    });
    (requests, errors)
}

/// Answers a metrics query from the snapshot timeline.
pub(crate) fn metrics(history: &[(i64, TrafficSnapshot)], q: &MetricsQuery) -> SimMetrics {
    let mut out = SimMetrics::default();
    let step = i64::from(q.period_secs.max(1)) * 1000;
    let mut start = q.start_millis;
    while start < q.end_millis {
        let end = (start + step).min(q.end_millis);
        let (requests, errors) = integrate(history, q, start, end);
        let (requests, errors) = (round6(requests), round6(errors));
        if requests > 0.0 {
            out.timestamps.push(start);
            out.errors.push(errors);
            out.successes.push(round6(requests - errors));
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use canary_core::provider::Target;
    use canary_core::provider::appmesh::APP_MESH;
    use serde_json::json;

    #[test]
    fn weights_of_every_route_of_the_route_object_are_added_per_target() {
        let skeleton = json!({"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter",
            "metadata": {"name": "s"}, "spec": {"routes": [{"httpRoute": {}}, {"tcpRoute": {}}]}});
        let targets = [Target::new("s-1", 90), Target::new("s-2", 10)];
        let Ok(vr) = APP_MESH.rewrite(&skeleton, &targets, &Default::default()) else {
            panic!("the App Mesh provider cannot fill {skeleton}");
        };
        assert_eq!(
            route_weights(&vr),
            vec![("s-1".to_string(), 180), ("s-2".to_string(), 20)]
        );
        let unknown = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}});
        assert_eq!(route_weights(&unknown), vec![]);
    }

    #[test]
    fn a_target_that_is_not_ready_yet_counts_as_errors_until_it_is() {
        let mut snap = TrafficSnapshot::default();
        let key = ("ns".to_string(), "s".to_string());
        snap.rates.insert(key.clone(), 10.0);
        snap.routes.insert(key, vec![("s-1".into(), 100)]);
        snap.targets.insert(
            ("ns".into(), "s-1".into()),
            TargetInfo {
                ready_from: Some(30_000),
                error_rate: 0.1,
                latency: LatencyModel::default(),
                pod: "s-1-abc-def".into(),
            },
        );
        let q = MetricsQuery {
            namespace: "ns".into(),
            service: "s".into(),
            controller: None,
            start_millis: 0,
            end_millis: 120_000,
            period_secs: 60,
        };
        let m = metrics(&[(0, snap)], &q);
        assert_eq!(m.timestamps, vec![0, 60_000]);
        assert_eq!(m.errors, vec![300.0 + 30.0, 60.0]);
        assert_eq!(m.successes, vec![270.0, 540.0]);
    }
}
