//! `canary what-if`'s history from a real Prometheus (Debian's 2.42), backfilled with
//! promtool from canary_testkit's Istio-shaped seed (one sample a minute, linear
//! counters): range queries per 60 s step for the counts and over the check window for
//! latency, then the replay over them. One test: starting Prometheus is slow-ish.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use canary_core::DeploySpec;
use canary_core::whatif::{Injection, LatencySamples, Replay};
use canary_metrics::history::{HistoryRequest, history, history_queries};
use canary_testkit::prometheus::{PrometheusServer, istio_seed};
use serde_json::json;

fn spec(url: &str) -> DeploySpec {
    let doc = json!({
        "cluster_name": "c1",
        "kubernetes_namespace": "yelb",
        "microservice_name": "yelb-appserver",
        "percentage_step": 10,
        "wait_time": 60,
        "container_image": "repo/app:1",
        "failure_threshold_time": 600,
        "failure_threshold_value": 1000,
        "max_error_rate": 5,
        "metrics": {"source": "prometheus", "url": url, "preset": "istio", "max_latency_ms": 400},
    });
    DeploySpec::parse(&doc, Some("kind: Deployment\n")).unwrap_or_else(|e| panic!("{e:?}"))
}

#[tokio::test]
async fn a_prometheus_history_holds_each_minutes_counts_and_the_windows_latency() {
    let seed = istio_seed("yelb", "yelb-appserver");
    let Some(server) =
        PrometheusServer::backfilled(&seed.openmetrics).unwrap_or_else(|e| panic!("{e}"))
    else {
        return;
    };
    let spec = spec(&server.url);
    let (from, to) = (seed.end - 3600, seed.end);

    // The healthy canary: 98 × 200 and 2 × 503 a minute, p99 375 ms.
    let req = HistoryRequest::of(&spec, 2, from, to, true);
    let h = history(&spec, None, &req)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!((h.from, h.period_secs, h.errors.len()), (from, 60, 60));
    assert_eq!(h.latency_samples, LatencySamples::WindowEnding);
    let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 1e-6);
    for i in 0..60 {
        assert!(near(h.errors[i], 2.0), "minute {i}: {:?}", h.errors[i]);
        let s = h.successes.as_ref().unwrap()[i];
        assert!(near(s, 98.0), "minute {i}: {s:?}");
    }
    // Latency over the 600 s window, once the window is inside the seeded data.
    let latency = h.latency_ms.as_ref().unwrap();
    assert!(
        latency[59].is_some_and(|l| (l - 375.0).abs() < 1.0),
        "{latency:?}"
    );
    let queries = history_queries(&spec, &req);
    assert!(queries[0].1.contains("[60s]") && queries[0].1.contains("yelb-appserver-2"));
    assert!(queries[2].1.contains("[600s]"), "{queries:?}");

    let replay = Replay::of(&spec, 2);
    let inj = Injection {
        error_rate: 0.12,
        latency_ms: 0.0,
    };
    let r = replay.run(&h, Some(inj)).unwrap();
    assert_eq!(r.checks, 51);
    assert!(r.false_alarms.is_empty(), "{:?}", r.false_alarms.first());
    // 2% plus 1.2 points a minute of the window: above 5% after 3 minutes.
    let c = r.catch.unwrap();
    assert_eq!(
        (c.caught, c.median_secs, c.max_secs),
        (c.onsets, Some(180), Some(180))
    );

    // The faulty canary (30% errors) is a false alarm at every check.
    let req = HistoryRequest::of(&spec, 3, from, to, false);
    let h = history(&spec, None, &req).await.unwrap();
    let r = Replay::of(&spec, 3).run(&h, None).unwrap();
    assert_eq!(r.false_alarms.len(), r.checks);
    assert!(
        r.false_alarms[0]
            .verdict
            .reason
            .contains("error rate 30% is above max_error_rate 5%"),
        "{}",
        r.false_alarms[0].verdict.reason
    );
}
