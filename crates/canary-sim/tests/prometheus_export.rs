//! The simulated cluster as a Prometheus target: `GET /metrics` follows the text
//! format's rules, its counters are the traffic `metrics()` reports for the same
//! window, and a real Prometheus (Debian's `/usr/bin/prometheus` 2.42) scraping it
//! answers the `istio` and `envoy` presets' queries with the numbers the simulated
//! traffic implies.
//!
//! The cluster in every test: namespace `shop`, service `cart`, Deployments `cart-1`
//! (image `cart:1`) and `cart-2` (image `cart:2`, 10% errors, 200 ms median latency)
//! behind an App Mesh VirtualRouter, and `cart-3`, which no route ever names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use canary_core::clock::{Clock, SystemClock};
use canary_core::provider::Target;
use canary_core::provider::appmesh::APP_MESH;
use canary_core::spec::{PRESETS, fill_promql};
use canary_sim::{
    LATENCY_BUCKETS_MS, LatencyModel, MetricsQuery, SimCluster, SimConfig, SimServer,
};
use canary_testkit::prometheus::PrometheusServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A sample's labels.
type Labels = BTreeMap<String, String>;

/// One sample of the exposition.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

/// Reads `{a="x",b="y\"z"}` (after the metric name); the rest of the line after `}`.
fn parse_labels(text: &str, line: &str) -> (Labels, String) {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    assert_eq!(chars.next(), Some('{'), "no label set in `{line}`");
    loop {
        let name: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != '}')).collect();
        if name.is_empty() {
            assert_eq!(chars.next(), Some('}'), "bad label set in `{line}`");
            break;
        }
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "label name `{name}` in `{line}`"
        );
        assert_eq!(chars.next(), Some('='), "`{line}`");
        assert_eq!(chars.next(), Some('"'), "`{line}`");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => panic!("bad escape {other:?} in `{line}`"),
                },
                Some('"') => break,
                Some('\n') | None => panic!("unterminated label value in `{line}`"),
                Some(c) => value.push(c),
            }
        }
        assert!(
            labels.insert(name.clone(), value).is_none(),
            "label `{name}` twice in `{line}`"
        );
        match chars.next() {
            Some(',') => {}
            Some('}') => break,
            other => panic!("unexpected {other:?} in `{line}`"),
        }
    }
    (labels, chars.collect())
}

/// Parses an exposition, checking the text format 0.0.4's rules on the way: HELP and
/// TYPE once per family, TYPE before the family's samples, each family's samples
/// together, sample names that belong to their family, no series twice, finite
/// non-negative values.
fn parse(text: &str) -> Vec<Sample> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut seen: BTreeSet<(String, Labels)> = BTreeSet::new();
    let mut samples = Vec::new();
    assert!(
        text.ends_with('\n'),
        "the exposition must end with a newline"
    );
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(!help.is_empty(), "empty HELP for {name}");
            assert!(helps.insert(name.to_owned()), "HELP for {name} twice");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "histogram"].contains(&kind), "TYPE {kind}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE for {name} twice"
            );
            if let Some(previous) = current.replace(name.to_owned()) {
                finished.insert(previous);
            }
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "line `{line}`");
        let brace = line.find('{').unwrap();
        let name = &line[..brace];
        let (labels, rest) = parse_labels(&line[brace..], line);
        let value: f64 = rest
            .strip_prefix(' ')
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bad value in `{line}`"));
        assert!(value.is_finite() && value >= 0.0, "value in `{line}`");
        let family = current
            .clone()
            .unwrap_or_else(|| panic!("no TYPE before `{line}`"));
        let allowed = match types[&family].as_str() {
            "histogram" => ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| name == format!("{family}{s}")),
            _ => name == family,
        };
        assert!(allowed, "`{name}` is not a sample of family {family}");
        assert!(!finished.contains(&family));
        assert!(
            seen.insert((name.to_owned(), labels.clone())),
            "series twice: `{line}`"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    assert_eq!(
        helps,
        types.keys().cloned().collect::<BTreeSet<_>>(),
        "every family has HELP and TYPE"
    );
    samples
}

/// The sum of the samples named `name` whose labels include `with`.
fn total(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
        .map(|s| s.value)
        .sum()
}

/// Checks every histogram: buckets in increasing `le`, cumulative counts that never
/// decrease, a last `+Inf` bucket equal to `_count`.
fn check_histograms(samples: &[Sample]) {
    let mut series: BTreeMap<(String, Labels), Vec<(f64, f64)>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name.ends_with("_bucket")) {
        let mut labels = s.labels.clone();
        let le = labels.remove("le").expect("a bucket without le");
        let le: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap()
        };
        let family = s.name.trim_end_matches("_bucket").to_owned();
        series
            .entry((family, labels))
            .or_default()
            .push((le, s.value));
    }
    assert!(!series.is_empty(), "no histogram at all");
    for ((family, labels), buckets) in &series {
        assert_eq!(buckets.len(), LATENCY_BUCKETS_MS.len() + 1);
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{family} {labels:?}: {buckets:?}"
        );
        let count: Vec<f64> = samples
            .iter()
            .filter(|s| s.name == format!("{family}_count") && &s.labels == labels)
            .map(|s| s.value)
            .collect();
        assert_eq!(
            buckets.last().unwrap(),
            &(f64::INFINITY, count[0]),
            "{family} {labels:?}"
        );
        let sums = samples
            .iter()
            .filter(|s| s.name == format!("{family}_sum") && &s.labels == labels)
            .count();
        assert_eq!(sums, 1, "{family} {labels:?} has one _sum");
    }
}

/// A raw HTTP/1.0 GET: (status code, headers, body).
async fn http_get(addr: &str, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_owned())
}

fn virtual_router(weights: &[(&str, u8)]) -> serde_json::Value {
    let targets: Vec<Target> = weights.iter().map(|(n, w)| Target::new(*n, *w)).collect();
    APP_MESH.minimal_route("cart", "shop", &targets, 80)
}

async fn route(client: &kube::Client, weights: &[(&str, u8)]) {
    let body = virtual_router(weights);
    common::apply(
        client,
        "shop",
        "appmesh.k8s.aws",
        "v1beta2",
        "VirtualRouter",
        "virtualrouters",
        body,
    )
    .await;
}

/// The three Deployments, 10% errors and 200 ms for `cart:2`, and `rps` requests per
/// second for `cart`, routed 90/10.
async fn set_up(sim: &SimCluster, server: &SimServer, rps: f64) -> kube::Client {
    let client = common::client(server, "shop").await;
    for (name, image) in [
        ("cart-1", "cart:1"),
        ("cart-2", "cart:2"),
        ("cart-3", "cart:3"),
    ] {
        let body = common::deployment(name, image, &[("app", "cart"), ("v", name)]);
        common::apply(
            &client,
            "shop",
            "apps",
            "v1",
            "Deployment",
            "deployments",
            body,
        )
        .await;
    }
    sim.set_error_rate("cart:2", 0.1);
    sim.set_latency("cart:2", LatencyModel::median(200.0).unwrap());
    sim.set_traffic("shop", "cart", rps);
    route(&client, &[("cart-1", 90), ("cart-2", 10)]).await;
    client
}

fn workload(name: &'static str) -> [(&'static str, &'static str); 2] {
    [("destination_workload", name), ("reporter", "destination")]
}

#[tokio::test]
async fn the_metrics_endpoint_follows_the_text_format_and_names_real_pods() {
    let (sim, server, clock) = common::start_manual(Duration::from_secs(30)).await;
    let client = set_up(&sim, &server, 10.0).await;
    clock.set(common::T0 + 120_000);

    let addr = server.addr.to_string();
    let (code, head, body) = http_get(&addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert_eq!(body, sim.prometheus_text());
    let samples = parse(&body);
    check_histograms(&samples);
    assert!(
        sim.requests().iter().all(|r| r.path != "/metrics"),
        "scrapes are not API requests"
    );

    // cart-3 is never routed: no series. The Envoy pods are the Deployments' Pods.
    assert!(!body.contains("cart-3"));
    let pods = common::send(
        &client,
        "GET",
        "/api/v1/namespaces/shop/pods",
        "application/json",
        "",
    )
    .await
    .1;
    let pod_names: BTreeSet<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    let envoy_pods: BTreeSet<&str> = samples
        .iter()
        .filter(|s| s.name == "envoy_http_downstream_rq_total")
        .map(|s| s.labels["pod"].as_str())
        .collect();
    assert_eq!(envoy_pods.len(), 2);
    for pod in &envoy_pods {
        assert!(pod_names.contains(pod), "{pod} is not one of {pod_names:?}");
        assert!(pod.starts_with("cart-1-") || pod.starts_with("cart-2-"));
    }
    // Unready for 30 s: cart-2 (1 rps) answered 30 × 503, then 90 × (10% 503).
    let v2 = workload("cart-2");
    let errors = total(
        &samples,
        "istio_requests_total",
        &[v2[0], v2[1], ("response_code", "503")],
    );
    assert!((errors - 39.0).abs() < 1e-9, "{errors}");
    // Those 30 took 0 ms: in the lowest bucket with the few fast ready answers.
    let model = LatencyModel::median(200.0).unwrap();
    let first = total(
        &samples,
        "istio_request_duration_milliseconds_bucket",
        &[v2[0], ("le", "1")],
    );
    assert!(
        (first - (30.0 + 90.0 * model.fraction_at_most(1.0))).abs() < 1e-9,
        "{first}"
    );
}

#[tokio::test]
async fn a_version_routed_without_traffic_yet_has_its_series_at_zero() {
    let (sim, server, clock) = common::start_manual(Duration::ZERO).await;
    let client = set_up(&sim, &server, 0.0).await;
    clock.set(common::T0 + 60_000);
    let samples = parse(&sim.prometheus_text());
    check_histograms(&samples);
    let istio: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "istio_requests_total")
        .collect();
    assert_eq!(
        istio.len(),
        4,
        "200 and 503 for cart-1 and cart-2: {istio:?}"
    );
    assert!(samples.iter().all(|s| s.value == 0.0));
    // Routing cart-3 later gives it series from then on.
    route(&client, &[("cart-1", 80), ("cart-2", 10), ("cart-3", 10)]).await;
    assert!(
        sim.prometheus_text()
            .contains(r#"destination_workload="cart-3""#)
    );
}

#[tokio::test]
async fn counters_grow_by_exactly_what_metrics_reports_for_the_same_window() {
    let (sim, server, clock) = common::start_manual(Duration::from_secs(30)).await;
    let client = set_up(&sim, &server, 10.0).await;
    let t0 = common::T0;
    clock.set(t0 + 60_000);
    let before = parse(&sim.prometheus_text());
    // A weight change (cart-2 unready for nothing: no spec change) and a new image
    // for cart-1 (unready for 30 s) inside the window.
    clock.set(t0 + 90_000);
    route(&client, &[("cart-1", 50), ("cart-2", 50)]).await;
    clock.set(t0 + 150_000);
    let body = common::deployment("cart-1", "cart:1b", &[("app", "cart"), ("v", "cart-1")]);
    common::apply(
        &client,
        "shop",
        "apps",
        "v1",
        "Deployment",
        "deployments",
        body,
    )
    .await;
    clock.set(t0 + 300_000);
    let after = parse(&sim.prometheus_text());
    check_histograms(&after);

    for version in ["cart-1", "cart-2"] {
        let m = sim.metrics(&MetricsQuery {
            namespace: "shop".into(),
            service: "cart".into(),
            controller: Some(version.into()),
            start_millis: t0 + 60_000,
            end_millis: t0 + 300_000,
            period_secs: 60,
        });
        let (errors, successes): (f64, f64) = (m.errors.iter().sum(), m.successes.iter().sum());
        assert!(errors > 0.0 && successes > 0.0);
        let grew = |name: &str, with: &[(&str, &str)]| {
            total(&after, name, with) - total(&before, name, with)
        };
        let w = [("destination_workload", version)];
        let istio_errors = grew("istio_requests_total", &[w[0], ("response_code", "503")]);
        let istio_ok = grew("istio_requests_total", &[w[0], ("response_code", "200")]);
        assert!(
            (istio_errors - errors).abs() < 1e-5,
            "{version}: {istio_errors} vs {errors}"
        );
        assert!(
            (istio_ok - successes).abs() < 1e-5,
            "{version}: {istio_ok} vs {successes}"
        );
        let count = grew("istio_request_duration_milliseconds_count", &w);
        assert!((count - errors - successes).abs() < 1e-5);

        // Envoy: the sum over the version's Pods (cart-1 got a new one) is the same.
        let prefix = format!("{version}-");
        let envoy = |samples: &[Sample], name: &str, class: Option<&str>| -> f64 {
            samples
                .iter()
                .filter(|s| s.name == name && s.labels["pod"].starts_with(&prefix))
                .filter(|s| class.is_none_or(|c| s.labels["envoy_response_code_class"] == c))
                .map(|s| s.value)
                .sum()
        };
        let envoy_total = envoy(&after, "envoy_http_downstream_rq_total", None)
            - envoy(&before, "envoy_http_downstream_rq_total", None);
        let envoy_5xx = envoy(&after, "envoy_http_downstream_rq_xx", Some("5"))
            - envoy(&before, "envoy_http_downstream_rq_xx", Some("5"));
        assert!(
            (envoy_total - errors - successes).abs() < 1e-5,
            "{version}: {envoy_total}"
        );
        assert!((envoy_5xx - errors).abs() < 1e-5, "{version}: {envoy_5xx}");
    }
    let cart1_pods: BTreeSet<&String> = after
        .iter()
        .filter(|s| {
            s.name == "envoy_http_downstream_rq_total" && s.labels["pod"].starts_with("cart-1-")
        })
        .map(|s| &s.labels["pod"])
        .collect();
    assert_eq!(cart1_pods.len(), 2, "the new pod template made a new Pod");

    // cart-2 was ready all window (no 0 ms answers): its buckets are its latency's.
    let model = LatencyModel::median(200.0).unwrap();
    let w = [("destination_workload", "cart-2")];
    let count = total(&after, "istio_request_duration_milliseconds_count", &w)
        - total(&before, "istio_request_duration_milliseconds_count", &w);
    for le in LATENCY_BUCKETS_MS {
        let label = le.to_string();
        let with = [w[0], ("le", label.as_str())];
        let grew = total(&after, "istio_request_duration_milliseconds_bucket", &with)
            - total(&before, "istio_request_duration_milliseconds_bucket", &with);
        assert!(
            (grew - count * model.fraction_at_most(*le)).abs() < 1e-6,
            "le {le}"
        );
    }
    let sum = total(&after, "istio_request_duration_milliseconds_sum", &w)
        - total(&before, "istio_request_duration_milliseconds_sum", &w);
    assert!((sum / count - model.mean_ms()).abs() < 1e-6);
}

/// A running Prometheus scraping the sim.
struct Prometheus {
    server: PrometheusServer,
    addr: String,
}

impl Prometheus {
    fn log(&self) -> String {
        self.server.log()
    }

    /// The value of an instant query evaluated at `time` (Unix seconds); `None` when
    /// the result is empty.
    async fn query(&self, promql: &str, time: f64) -> Option<f64> {
        let path = format!("/api/v1/query?query={}&time={time:.3}", encode(promql));
        let (code, _, body) = http_get(&self.addr, &path).await;
        assert_eq!(code, 200, "{promql}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let result = v["data"]["result"].as_array().unwrap();
        assert!(result.len() <= 1, "{promql}: {body}");
        result
            .first()
            .map(|r| r["value"][1].as_str().unwrap().parse().unwrap())
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Starts Prometheus scraping `target`'s `/metrics` every second.
async fn start_prometheus(target: &str) -> Option<Prometheus> {
    let server = PrometheusServer::scraping(&[target], 1).unwrap_or_else(|e| panic!("{e}"))?;
    let addr = server.url.trim_start_matches("http://").to_owned();
    Some(Prometheus { server, addr })
}

/// Where `histogram_quantile` lands for requests spread by `model` over the buckets:
/// linear interpolation inside the bucket that holds the quantile's rank.
fn bucket_quantile(model: &LatencyModel, q: f64) -> f64 {
    let mut lower = (0.0, 0.0);
    for le in LATENCY_BUCKETS_MS {
        let f = model.fraction_at_most(*le);
        if f >= q {
            return lower.0 + (le - lower.0) * (q - lower.1) / (f - lower.1);
        }
        lower = (*le, f);
    }
    panic!("quantile {q} beyond the last bucket");
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scraping_the_sim_answers_the_presets_with_the_simulated_traffic() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sim = SimCluster::new(SimConfig::new(clock, Duration::ZERO));
    let server = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    // 50 rps: 45 to cart-1 (20 ms median, no errors), 5 to cart-2 (200 ms, 10% 503).
    let _client = set_up(&sim, &server, 50.0).await;
    let Some(prometheus) = start_prometheus(&server.addr.to_string()).await else {
        return;
    };
    // Wait for seven scrapes of the series: a 5 s window then lies inside them.
    let probe = r#"count_over_time(istio_requests_total{destination_workload="cart-2",response_code="200"}[30s])"#;
    let deadline = Instant::now() + Duration::from_secs(15);
    while prometheus.query(probe, now_secs()).await.unwrap_or(0.0) < 7.0 {
        assert!(
            Instant::now() < deadline,
            "too few scrapes:\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let at = now_secs();
    let window = 5;
    for (preset, requests, errors, latency) in PRESETS {
        for (version, rps, error_rate, median) in
            [("cart-1", 45.0, 0.0, 20.0), ("cart-2", 5.0, 0.1, 200.0)]
        {
            let fill =
                |template: &str| fill_promql(template, "shop", "cart", version, window, 0.99);
            let got_requests = prometheus.query(&fill(requests), at).await.unwrap();
            let got_errors = prometheus.query(&fill(errors), at).await.unwrap();
            let got_p99 = prometheus.query(&fill(latency), at).await.unwrap();
            let want = rps * window as f64;
            // The sim counts at the moment it answers the scrape, Prometheus stamps the
            // scrape's start: a few milliseconds apart.
            let what = format!("{preset} {version}");
            assert!(
                (got_requests - want).abs() < want * 0.05,
                "{what}: {got_requests} requests, not {want}"
            );
            assert!(
                (got_errors - want * error_rate).abs() < want * 0.05,
                "{what}: {got_errors} errors"
            );
            let want_p99 = bucket_quantile(&LatencyModel::median(median).unwrap(), 0.99);
            assert!(
                (got_p99 - want_p99).abs() < want_p99 * 0.01,
                "{what}: p99 {got_p99}, not {want_p99}"
            );
        }
        // A version never routed has no series: an empty result.
        let never = fill_promql(requests, "shop", "cart", "cart-3", window, 0.99);
        assert_eq!(prometheus.query(&never, at).await, None, "{preset}");
    }
}
