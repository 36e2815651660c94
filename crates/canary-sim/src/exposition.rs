//! The simulated traffic as a Prometheus target: the text exposition format 0.0.4
//! that `GET /metrics` serves and `SimCluster::prometheus_text` returns, with the
//! series the `istio` and `envoy` PromQL presets query.
//!
//! Rules:
//! - Every counter is the exact integral of the traffic timeline (see `traffic`) from
//!   its start to the simulator's clock's now: a fractional request count (requests per
//!   second times seconds), written as a float. Counters only grow, so Prometheus's
//!   `increase()` over a window is the traffic of that window.
//! - A version has series once a route has given it a weight above 0 while its
//!   service had a request rate set (`set_traffic`, even 0), at 0 until requests
//!   arrive, as a real proxy reports them; versions never routed have none.
//! - Istio series (`reporter="destination"`), per namespace, service and version
//!   (Deployment): `istio_requests_total` with `response_code` `200` and `503`, the
//!   same numbers as `SimCluster::metrics` (requests sent while the version had no
//!   ready endpoint, or no Deployment, are 503), and the histogram
//!   `istio_request_duration_milliseconds`.
//! - Envoy series, per Pod: `envoy_http_downstream_rq_total`, `envoy_http_downstream_rq_xx`
//!   (`envoy_response_code_class` `2` and `5`) and the histogram
//!   `envoy_http_downstream_rq_time`, with labels `namespace` and `pod`. One Pod stands
//!   for all replicas of a Deployment: its first Pod, `<deployment>-<hash>-<suffix>`; a
//!   new pod template starts a new Pod at 0, and a replaced Pod keeps its last values
//!   (a real one would vanish; sums over a window are the same). Requests sent to a
//!   version without a Deployment reach no Pod and are not in the Envoy series.
//! - Latency: a ready version answers with its image's log-normal latency (see
//!   `latency`); its requests are spread over the buckets by that distribution's
//!   exact fractions, and `_sum` grows by the distribution's mean. Requests answered
//!   503 for want of a ready endpoint take 0 ms (the proxy answers at once).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::latency::LATENCY_BUCKETS_MS;
use crate::traffic::{Portion, TrafficSnapshot, portions};

/// The content type of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// What one version (or Pod) has answered so far.
#[derive(Debug, Clone)]
struct Totals {
    successes: f64,
    errors: f64,
    /// Requests answered within each of `LATENCY_BUCKETS_MS` (cumulative).
    buckets: Vec<f64>,
    /// Requests in the latency histogram.
    count: f64,
    /// Their summed latency, in milliseconds.
    sum_ms: f64,
}

impl Totals {
    fn zero() -> Self {
        Self {
            successes: 0.0,
            errors: 0.0,
            buckets: vec![0.0; LATENCY_BUCKETS_MS.len()],
            count: 0.0,
            sum_ms: 0.0,
        }
    }

    fn add(&mut self, p: &Portion<'_>) {
        let unready = p.rate * p.unready_secs;
        let ready = p.rate * p.ready_secs;
        let error_rate = p.error_rate();
        self.errors += unready + ready * error_rate;
        self.successes += ready * (1.0 - error_rate);
        let latency = p.info.map(|t| t.latency).unwrap_or_default();
        for (bucket, le) in self.buckets.iter_mut().zip(LATENCY_BUCKETS_MS) {
            *bucket += unready + ready * latency.fraction_at_most(*le);
        }
        self.count += unready + ready;
        self.sum_ms += ready * latency.mean_ms();
    }

    /// The cumulative bucket counts, never decreasing and never above `count`
    /// (guarding against the last bit of float rounding), then `+Inf`.
    fn cumulative(&self) -> Vec<(String, f64)> {
        let mut out = Vec::with_capacity(self.buckets.len() + 1);
        let mut last = 0.0_f64;
        for (value, le) in self.buckets.iter().zip(LATENCY_BUCKETS_MS) {
            last = last.max(*value).min(self.count);
            out.push((number(*le), last));
        }
        out.push(("+Inf".to_owned(), self.count));
        out
    }
}

/// `(namespace, service, version)` → its Istio totals.
type IstioSeries = BTreeMap<(String, String, String), Totals>;
/// `(namespace, pod)` → its Envoy totals.
type EnvoySeries = BTreeMap<(String, String), Totals>;

/// The series that exist (at 0) by the rule above.
fn series_keys(history: &[(i64, TrafficSnapshot)]) -> (IstioSeries, EnvoySeries) {
    let (mut istio, mut envoy) = (IstioSeries::new(), EnvoySeries::new());
    for (_, snap) in history {
        for (key, weights) in &snap.routes {
            if !snap.rates.contains_key(key) {
                continue;
            }
            let (namespace, service) = key;
            for (target, _) in weights.iter().filter(|(_, w)| *w > 0) {
                istio
                    .entry((namespace.clone(), service.clone(), target.clone()))
                    .or_insert_with(Totals::zero);
                if let Some(info) = snap.targets.get(&(namespace.clone(), target.clone())) {
                    envoy
                        .entry((namespace.clone(), info.pod.clone()))
                        .or_insert_with(Totals::zero);
                }
            }
        }
    }
    (istio, envoy)
}

/// The exposition of the traffic timeline up to `now`.
pub(crate) fn exposition(history: &[(i64, TrafficSnapshot)], now: i64) -> String {
    let (mut istio, mut envoy) = series_keys(history);
    let services: BTreeSet<(String, String)> = istio
        .keys()
        .map(|(n, s, _)| (n.clone(), s.clone()))
        .collect();
    for (namespace, service) in &services {
        portions(history, namespace, service, i64::MIN, now, |p| {
            let key = (namespace.clone(), service.clone(), p.target.to_owned());
            let Some(totals) = istio.get_mut(&key) else {
                return;
            };
            totals.add(&p);
            if let Some(info) = p.info
                && let Some(pod) = envoy.get_mut(&(namespace.clone(), info.pod.clone()))
            {
                pod.add(&p);
            }
        });
    }
    let mut out = String::new();
    write_istio(&mut out, &istio);
    write_envoy(&mut out, &envoy);
    out
}

fn write_istio(out: &mut String, series: &IstioSeries) {
    header(
        out,
        "istio_requests_total",
        "counter",
        "Requests received by a workload, as its Istio sidecar reports them (simulated).",
    );
    for ((namespace, service, workload), t) in series {
        let labels = istio_labels(namespace, service, workload);
        for (code, value) in [("200", t.successes), ("503", t.errors)] {
            sample(
                out,
                "istio_requests_total",
                &format!("{labels},response_code=\"{code}\""),
                value,
            );
        }
    }
    let name = "istio_request_duration_milliseconds";
    header(
        out,
        name,
        "histogram",
        "Time a workload took to answer requests, in milliseconds (simulated).",
    );
    for ((namespace, service, workload), t) in series {
        histogram(out, name, &istio_labels(namespace, service, workload), t);
    }
}

fn istio_labels(namespace: &str, service: &str, workload: &str) -> String {
    format!(
        "reporter=\"destination\",destination_workload_namespace=\"{}\",destination_workload=\"{}\",destination_service_name=\"{}\"",
        escape(namespace),
        escape(workload),
        escape(service)
    )
}

fn write_envoy(out: &mut String, series: &EnvoySeries) {
    let pod_labels = |namespace: &str, pod: &str| {
        format!(
            "namespace=\"{}\",pod=\"{}\"",
            escape(namespace),
            escape(pod)
        )
    };
    let total = "envoy_http_downstream_rq_total";
    header(
        out,
        total,
        "counter",
        "Requests received by a Pod's Envoy sidecar (simulated).",
    );
    for ((namespace, pod), t) in series {
        sample(
            out,
            total,
            &pod_labels(namespace, pod),
            t.successes + t.errors,
        );
    }
    let xx = "envoy_http_downstream_rq_xx";
    header(
        out,
        xx,
        "counter",
        "Responses of a Pod's Envoy sidecar by status class (simulated).",
    );
    for ((namespace, pod), t) in series {
        let labels = pod_labels(namespace, pod);
        for (class, value) in [("2", t.successes), ("5", t.errors)] {
            sample(
                out,
                xx,
                &format!("{labels},envoy_response_code_class=\"{class}\""),
                value,
            );
        }
    }
    let time = "envoy_http_downstream_rq_time";
    header(
        out,
        time,
        "histogram",
        "Time a Pod took to answer requests, in milliseconds (simulated).",
    );
    for ((namespace, pod), t) in series {
        histogram(out, time, &pod_labels(namespace, pod), t);
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    let _ = writeln!(out, "{name}{{{labels}}} {}", number(value));
}

fn histogram(out: &mut String, name: &str, labels: &str, t: &Totals) {
    for (le, value) in t.cumulative() {
        sample(
            out,
            &format!("{name}_bucket"),
            &format!("{labels},le=\"{le}\""),
            value,
        );
    }
    sample(out, &format!("{name}_sum"), labels, t.sum_ms);
    sample(out, &format!("{name}_count"), labels, t.count);
}

/// A sample value: the shortest decimal that reads back as the same f64 (`0`, never
/// `-0`).
fn number(x: f64) -> String {
    if x == 0.0 {
        "0".to_owned()
    } else {
        format!("{x}")
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::LatencyModel;
    use crate::traffic::TargetInfo;

    fn snapshot(weights: &[(&str, u64)], rate: Option<f64>) -> TrafficSnapshot {
        let mut snap = TrafficSnapshot::default();
        let key = ("ns".to_owned(), "s".to_owned());
        if let Some(rate) = rate {
            snap.rates.insert(key.clone(), rate);
        }
        snap.routes.insert(
            key,
            weights.iter().map(|(t, w)| ((*t).to_owned(), *w)).collect(),
        );
        for (t, _) in weights {
            snap.targets.insert(
                ("ns".into(), (*t).to_owned()),
                TargetInfo {
                    ready_from: Some(0),
                    error_rate: 0.0,
                    latency: LatencyModel::new(100.0, 0.0).unwrap_or_default(),
                    pod: format!("{t}-h-p"),
                },
            );
        }
        snap
    }

    #[test]
    fn only_versions_given_a_weight_for_a_service_with_a_rate_have_series() {
        let history = [
            (0, snapshot(&[("s-1", 100), ("s-2", 0)], None)),
            (1000, snapshot(&[("s-1", 100), ("s-3", 0)], Some(0.0))),
        ];
        let text = exposition(&history, 5000);
        assert!(text.contains(
            r#"destination_workload="s-1",destination_service_name="s",response_code="200"} 0"#
        ));
        assert!(text.contains(r#"envoy_http_downstream_rq_total{namespace="ns",pod="s-1-h-p"} 0"#));
        assert!(!text.contains("s-2") && !text.contains("s-3"), "{text}");
    }

    #[test]
    fn requests_fill_the_buckets_by_the_latency_and_the_sum_by_its_mean() {
        let history = [(0, snapshot(&[("s-1", 100)], Some(2.0)))];
        let text = exposition(&history, 10_000);
        // 2 rps for 10 s, every request exactly 100 ms.
        for line in [
            r#"le="50"} 0"#,
            r#"le="100"} 20"#,
            r#"le="+Inf"} 20"#,
            r#"istio_request_duration_milliseconds_sum{reporter="destination",destination_workload_namespace="ns",destination_workload="s-1",destination_service_name="s"} 2000"#,
            r#"envoy_http_downstream_rq_xx{namespace="ns",pod="s-1-h-p",envoy_response_code_class="2"} 20"#,
        ] {
            assert!(text.contains(line), "no `{line}` in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped_and_numbers_are_plain() {
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(1e21), "1000000000000000000000");
    }
}
