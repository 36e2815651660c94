//! `canary what-if` against a real moto_server: four hours of per-minute 2xx and 5xx
//! datapoints with one burst of errors are written to moto's CloudWatch, and the
//! binary replays the health rule over them (one GetMetricData for the range).
//!
//! moto caveat: a query with dimensions ignores the namespace, so every test uses its
//! own metric names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use canary_metrics::cloudwatch::{CloudWatchMetrics, MetricDatum};
use canary_testkit::{MotoServer, unique_name};
use serde_json::{Value, json};

fn moto() -> &'static MotoServer {
    MotoServer::shared().unwrap()
}

fn canary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(args)
        .env_remove("CANARY_STATE_BUCKET")
        .env_remove("CANARY_STATE_PREFIX")
        .envs(moto().env())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn write_spec(dir: &Path, extra: Value) -> PathBuf {
    let mut doc = json!({
        "cluster_name": "c1",
        "kubernetes_namespace": "shop",
        "microservice_name": "web",
        "percentage_step": 10,
        "wait_time": 60,
        "failure_threshold_value": 5,
        "failure_threshold_time": 600,
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    let path = dir.join(format!("{}.json", unique_name("deploy")));
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// Four hours from `from`: 100 successes a minute, no errors but for a burst of 10 a
/// minute in the three minutes from 2 h on.
async fn seed(errors: &str, successes: &str, from: i64) {
    let cw = CloudWatchMetrics::new(&moto().sdk_config().await).unwrap();
    let mut data = Vec::new();
    for minute in 0..240 {
        let t = from + 60 * minute;
        let burst = (120..123).contains(&minute);
        for (name, value) in [(errors, if burst { 10.0 } else { 0.0 }), (successes, 100.0)] {
            data.push(MetricDatum {
                name: name.to_owned(),
                dimensions: vec![],
                timestamp_secs: t,
                value,
            });
        }
    }
    cw.put_metric_data("EnvoyPrometheus/ResponseCode", &data)
        .await
        .unwrap();
}

/// A whole hour, a little more than four hours ago.
fn range_start() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (now - 5 * 3600) / 3600 * 3600
}

#[tokio::test]
async fn a_replay_over_seeded_cloudwatch_metrics_reports_the_bursts_false_alarms() {
    let dir = tempfile::tempdir().unwrap();
    let (errors, successes) = (unique_name("5xx"), unique_name("2xx"));
    let from = range_start();
    seed(&errors, &successes, from).await;
    let spec = write_spec(
        dir.path(),
        json!({"error_metric_name": errors, "success_metric_name": successes}),
    );
    let range = [
        "--from".to_owned(),
        rfc3339(from),
        "--to".to_owned(),
        rfc3339(from + 4 * 3600),
    ];
    let mut args = vec!["what-if", spec.to_str().unwrap()];
    args.extend(range.iter().map(String::as_str));
    let o = canary(&args);
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    // Checks every 60 s from 600 s in to the end: 231. The burst's minutes [7200, 7380)
    // are in the 600 s windows ending 7260 ..= 7920: 12 checks, each with more than 5
    // errors (no version_dimension: the whole service's numbers, not scaled).
    for needle in [
        "what-if: c1/shop/web, the whole service (no version_dimension)",
        "  source      cloudwatch\n",
        &format!(
            "  query       errors: EnvoyPrometheus/ResponseCode/{errors} Sum per 60 s [], one GetMetricData over the range\n"
        ),
        "231 replayed, one every 60 s over a 600 s window: 219 healthy, 0 held, 12 unhealthy (false alarms) in 1 episode(s)",
        "5.19% of checks were false alarms",
        // Runs of 12 checks starting at checks 100 ..= 122 hold one of them.
        "23 of 220 deployments (12 checks each",
        "would have rolled back a healthy service: 10.45%",
        "30 errors over 600 s (10 datapoints): more than failure_threshold_value 5",
        "advice: your thresholds would roll back about 1 deployment in 10 of a healthy service; most were decided by the count of errors",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
    // The worst alarms are the windows holding the whole burst, from 2 h 3 min on.
    let first_worst = out.lines().find(|l| l.starts_with("  alarm")).unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp(from + 7380).unwrap();
    assert!(
        first_worst.contains(&format!("{:02}:03:00", at.hour())),
        "{first_worst}"
    );

    let mut args = vec!["what-if", spec.to_str().unwrap(), "-o", "json"];
    args.extend(range.iter().map(String::as_str));
    let o = canary(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let alarms = doc["report"]["false_alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 12);
    assert_eq!(alarms[0]["at"], from + 7260);
    assert_eq!(alarms[0]["verdict"]["errors"], 10.0);
    assert_eq!(alarms[11]["at"], from + 7920);
    assert_eq!(doc["source"], "cloudwatch");
    assert!(
        doc["advice"]
            .as_str()
            .unwrap()
            .contains("1 deployment in 10")
    );
}

#[tokio::test]
async fn an_injected_error_rate_reports_how_soon_the_rule_catches_it() {
    let dir = tempfile::tempdir().unwrap();
    let (errors, successes) = (unique_name("5xx"), unique_name("2xx"));
    let from = range_start();
    seed(&errors, &successes, from).await;
    let spec = write_spec(
        dir.path(),
        json!({"error_metric_name": errors, "success_metric_name": successes}),
    );
    let (start, end) = (rfc3339(from), rfc3339(from + 4 * 3600));
    let run = |rate: &str| {
        canary(&[
            "what-if",
            spec.to_str().unwrap(),
            "--from",
            &start,
            "--to",
            &end,
            "--inject-error-rate",
            rate,
        ])
    };
    // The canary holds 10% of 100 requests a minute: 40% of them failing is 4 errors a
    // minute, more than 5 after two minutes.
    let o = run("40%");
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    for needle in [
        "injected    40% of the canary's requests failing, from 219 onsets",
        // Onsets 109..=121 reach the burst's alarms first (check 111 on).
        "caught      206 of 219 within a deployment's 12 checks: median 2m 0s, p90 2m 0s, max 2m 0s",
        "masked      13 first rolled back",
        "never       0 never caught",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
    // 2% is 0.2 errors a minute: 12 checks are not enough to see more than 5 of them;
    // the onsets whose checks reach the burst are rolled back by its false alarms.
    let o = run("2%");
    let out = text(&o.stdout);
    println!("{out}");
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    for needle in [
        "caught      0 of 219 within a deployment's 12 checks: median -, p90 -, max -",
        "masked      23 first rolled back by a false alarm of the data",
        "never       196 never caught",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from:\n{out}");
    }
}

#[test]
fn what_if_help_lists_its_flags() {
    let o = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["what-if", "--help"])
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = text(&o.stdout);
    for flag in [
        "--since",
        "--from",
        "--to",
        "--version",
        "--inject-error-rate",
        "--inject-latency",
        "--bucket",
        "--output",
    ] {
        assert!(out.contains(flag), "`{flag}` missing from:\n{out}");
    }
}

#[test]
fn bad_input_is_a_usage_error_naming_the_flag_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), json!({}));
    let spec = spec.to_str().unwrap();
    for (args, needles) in [
        (vec!["--since", "7x"], vec!["--since", "`7x`"]),
        (
            vec!["--inject-error-rate", "150%"],
            vec!["--inject-error-rate", "`150%`"],
        ),
        (
            vec!["--inject-latency", "fast"],
            vec!["--inject-latency", "`fast`"],
        ),
        (
            vec![
                "--from",
                "2026-01-02T00:00:00Z",
                "--to",
                "2026-01-01T00:00:00Z",
            ],
            vec!["--from `2026-01-02T00:00:00Z` must be before --to `2026-01-01T00:00:00Z`"],
        ),
        (
            vec!["--inject-latency", "200ms"],
            vec!["--inject-latency `200ms` needs metrics.max_latency_ms"],
        ),
    ] {
        let mut all = vec!["what-if", spec];
        all.extend(args.iter());
        let o = Command::new(env!("CARGO_BIN_EXE_canary"))
            .args(&all)
            .env_remove("CANARY_STATE_BUCKET")
            .output()
            .unwrap();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for needle in needles {
            assert!(
                err.contains(needle),
                "{args:?}: `{needle}` missing from {err}"
            );
        }
    }
}
