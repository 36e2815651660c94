//! `canary cluster-sim`: the simulated cluster served on loopback with the real clock
//! until Ctrl-C (or SIGTERM), and its kubeconfig written for kubectl and
//! `canary run --kubeconfig`.
//!
//! Its simulated traffic (`--traffic`, `--error-rate`, `--latency`) is what its
//! `GET /metrics` reports, so a Prometheus scraping it can judge a canary by hand.
//!
//! Like a real cluster, it refuses objects in a namespace that does not exist
//! (`kubectl create namespace yelb` first).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use canary_sim::{LatencyModel, SimCluster, SimConfig, kubeconfig_yaml};

use crate::error::CliError;

/// `canary cluster-sim`'s arguments.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Traffic, for a Prometheus scraping GET /metrics:\n  \
    canary cluster-sim --kubeconfig-out sim.kubeconfig \\\n    \
    --traffic yelb/yelb-appserver=50 --latency repo/app:slow=400 --error-rate repo/app:bad=0.2\n\
    sends 50 requests a second to yelb-appserver, split by its route's weights; \
    containers running repo/app:slow answer in 400 ms (median), repo/app:bad answers 20% with 503.")]
pub struct ClusterSimArgs {
    /// Where to listen (loopback; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Where to write the kubeconfig for kubectl and `canary run --kubeconfig`.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: std::path::PathBuf,
    /// Seconds for a Deployment to become ready after a change.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub ready_delay: f64,
    /// The kubeconfig context's default namespace.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// Requests a second sent to a service, split between its versions by its route's
    /// weights (repeatable; without it a service gets no traffic and /metrics shows no
    /// series for it).
    #[arg(long = "traffic", value_name = "NAMESPACE/SERVICE=RPS", value_parser = parse_traffic)]
    pub traffic: Vec<Traffic>,
    /// The fraction (0 to 1) of requests that containers running IMAGE answer with 503
    /// (repeatable; default 0).
    #[arg(long = "error-rate", value_name = "IMAGE=FRACTION", value_parser = parse_error_rate)]
    pub error_rate: Vec<ImageErrorRate>,
    /// The median response time, in milliseconds, of containers running IMAGE
    /// (log-normal around it; repeatable; default 20 ms).
    #[arg(long = "latency", value_name = "IMAGE=MEDIAN_MS", value_parser = parse_latency)]
    pub latency: Vec<ImageLatency>,
}

/// `--traffic NAMESPACE/SERVICE=RPS`.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    /// The service's namespace.
    pub namespace: String,
    /// The service (deploy.json's `microservice_name`).
    pub service: String,
    /// Requests a second, 0 or more.
    pub requests_per_second: f64,
}

/// `--error-rate IMAGE=FRACTION`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageErrorRate {
    /// The container image, as the Deployment names it.
    pub image: String,
    /// The fraction of requests answered with 503, 0 to 1.
    pub fraction: f64,
}

/// `--latency IMAGE=MEDIAN_MS`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageLatency {
    /// The container image, as the Deployment names it.
    pub image: String,
    /// How long it takes to answer.
    pub latency: LatencyModel,
}

/// `KEY=NUMBER`, split at the last `=`, with both sides non-empty; `what` names the
/// expected shape in the message.
fn key_number<'a>(value: &'a str, what: &str) -> Result<(&'a str, f64), String> {
    let Some((key, number)) = value.rsplit_once('=') else {
        return Err(format!("expected {what}"));
    };
    if key.trim().is_empty() || key != key.trim() {
        return Err(format!(
            "expected {what}: the part before `=` is empty or has spaces"
        ));
    }
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("expected {what}: `{number}` is not a number"))?;
    if !n.is_finite() {
        return Err(format!(
            "expected {what}: `{number}` is not a finite number"
        ));
    }
    Ok((key, n))
}

/// Parses `--traffic`'s `NAMESPACE/SERVICE=RPS`.
pub fn parse_traffic(value: &str) -> Result<Traffic, String> {
    const WHAT: &str = "NAMESPACE/SERVICE=RPS, for example yelb/yelb-appserver=50";
    let (key, rps) = key_number(value, WHAT)?;
    let Some((namespace, service)) = key.split_once('/') else {
        return Err(format!("expected {WHAT}: `{key}` has no `/`"));
    };
    if namespace.is_empty() || service.is_empty() || service.contains('/') {
        return Err(format!(
            "expected {WHAT}: `{key}` is not one namespace and one service"
        ));
    }
    if rps < 0.0 {
        return Err(format!(
            "expected {WHAT}: requests a second must be 0 or more"
        ));
    }
    Ok(Traffic {
        namespace: namespace.to_owned(),
        service: service.to_owned(),
        requests_per_second: rps,
    })
}

/// Parses `--error-rate`'s `IMAGE=FRACTION`.
pub fn parse_error_rate(value: &str) -> Result<ImageErrorRate, String> {
    const WHAT: &str = "IMAGE=FRACTION, for example repo/app:2=0.05";
    let (image, fraction) = key_number(value, WHAT)?;
    if !(0.0..=1.0).contains(&fraction) {
        return Err(format!(
            "expected {WHAT}: the fraction must be from 0 to 1 (0.05 is 5%)"
        ));
    }
    Ok(ImageErrorRate {
        image: image.to_owned(),
        fraction,
    })
}

/// Parses `--latency`'s `IMAGE=MEDIAN_MS`.
pub fn parse_latency(value: &str) -> Result<ImageLatency, String> {
    const WHAT: &str = "IMAGE=MEDIAN_MS, for example repo/app:2=400";
    let (image, median_ms) = key_number(value, WHAT)?;
    let latency = LatencyModel::median(median_ms)
        .map_err(|_| format!("expected {WHAT}: the median must be more than 0 ms"))?;
    Ok(ImageLatency {
        image: image.to_owned(),
        latency,
    })
}

/// A usage error naming `flag` and the value that sets the same key (a service or an
/// image) a second time.
fn refuse_repeats(
    flag: &str,
    given: impl IntoIterator<Item = (String, String)>,
) -> Result<(), CliError> {
    let mut seen = BTreeSet::new();
    for (key, value) in given {
        if !seen.insert(key.clone()) {
            return Err(CliError::Usage(format!(
                "invalid {flag} `{value}`: `{key}` is set twice"
            )));
        }
    }
    Ok(())
}

/// Checks what clap cannot check alone: the ready delay, and no service or image set
/// twice by one flag.
fn check_args(args: &ClusterSimArgs) -> Result<(), CliError> {
    if !args.ready_delay.is_finite() || args.ready_delay < 0.0 {
        return Err(CliError::Usage(format!(
            "invalid --ready-delay `{}`: must be a number of seconds, 0 or more",
            args.ready_delay
        )));
    }
    refuse_repeats(
        "--traffic",
        args.traffic.iter().map(|t| {
            let key = format!("{}/{}", t.namespace, t.service);
            (key.clone(), format!("{key}={}", t.requests_per_second))
        }),
    )?;
    refuse_repeats(
        "--error-rate",
        args.error_rate
            .iter()
            .map(|e| (e.image.clone(), format!("{}={}", e.image, e.fraction))),
    )?;
    refuse_repeats(
        "--latency",
        args.latency.iter().map(|l| {
            (
                l.image.clone(),
                format!("{}={}", l.image, l.latency.median_ms()),
            )
        }),
    )
}

/// Sets the traffic, error rates and latencies the arguments give, and says what was
/// set.
fn apply_traffic(sim: &SimCluster, args: &ClusterSimArgs) -> Vec<String> {
    let mut said = Vec::new();
    for t in &args.traffic {
        sim.set_traffic(&t.namespace, &t.service, t.requests_per_second);
        said.push(format!(
            "traffic: {} requests/s to {}/{}",
            t.requests_per_second, t.namespace, t.service
        ));
    }
    for e in &args.error_rate {
        sim.set_error_rate(&e.image, e.fraction);
        said.push(format!(
            "error rate: {}% of requests to {} answered 503",
            e.fraction * 100.0,
            e.image
        ));
    }
    for l in &args.latency {
        sim.set_latency(&l.image, l.latency);
        said.push(format!(
            "latency: {} answers in {} ms (median)",
            l.image,
            l.latency.median_ms()
        ));
    }
    said
}

/// Serves the simulated cluster on the real clock until Ctrl-C (or SIGTERM).
pub async fn serve_cluster_sim(args: &ClusterSimArgs) -> Result<(), CliError> {
    check_args(args)?;
    let config = SimConfig::new(
        Arc::new(canary_core::clock::SystemClock),
        Duration::from_secs_f64(args.ready_delay),
    )
    .with_strict_namespaces();
    let sim = SimCluster::new(config);
    let traffic = apply_traffic(&sim, args);
    let server = sim
        .serve(args.listen)
        .await
        .map_err(|source| CliError::Listen {
            addr: args.listen,
            source,
        })?;
    let yaml = kubeconfig_yaml(&server.url, &args.namespace);
    let path = &args.kubeconfig_out;
    // Written whole, then renamed: whoever waits for the file never reads half of it.
    let tmp = path.with_extension("tmp");
    let written = |path: &std::path::Path| {
        let path = path.to_owned();
        move |source| CliError::Written { path, source }
    };
    std::fs::write(&tmp, yaml).map_err(written(&tmp))?;
    std::fs::rename(&tmp, path).map_err(written(path))?;
    println!("simulated cluster serving at {}", server.url);
    println!(
        "Prometheus metrics of its traffic at {}/metrics",
        server.url
    );
    for line in &traffic {
        println!("{line}");
    }
    if traffic.is_empty() {
        println!("no traffic (add --traffic NAMESPACE/SERVICE=RPS for numbers in /metrics)");
    }
    println!("kubeconfig written to {}", path.display());
    println!(
        "  kubectl --kubeconfig {} get deployments -A",
        path.display()
    );
    println!("Press Ctrl-C to stop.");
    let stop = async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(CliError::Signal)?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r.map_err(CliError::Signal),
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.map_err(CliError::Signal)
        }
    };
    let result = stop.await;
    server.shutdown().await;
    println!("stopped ({} requests served)", sim.requests().len());
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        args: ClusterSimArgs,
    }

    fn parse(extra: &[&str]) -> Result<ClusterSimArgs, String> {
        let mut argv = vec!["cluster-sim", "--kubeconfig-out", "k.yaml"];
        argv.extend_from_slice(extra);
        Cmd::try_parse_from(argv)
            .map(|c| c.args)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn traffic_error_rates_and_latencies_are_read_from_repeated_flags() {
        let args = parse(&[
            "--traffic",
            "yelb/yelb-appserver=50",
            "--traffic",
            "shop/cart=0.5",
            "--error-rate",
            "repo/app:bad=0.2",
            "--latency",
            "registry:5000/app:slow=400",
        ])
        .unwrap();
        assert_eq!(
            args.traffic,
            vec![
                Traffic {
                    namespace: "yelb".into(),
                    service: "yelb-appserver".into(),
                    requests_per_second: 50.0
                },
                Traffic {
                    namespace: "shop".into(),
                    service: "cart".into(),
                    requests_per_second: 0.5
                },
            ]
        );
        assert_eq!(
            args.error_rate,
            vec![ImageErrorRate {
                image: "repo/app:bad".into(),
                fraction: 0.2
            }]
        );
        assert_eq!(args.latency.len(), 1);
        assert_eq!(args.latency[0].image, "registry:5000/app:slow");
        assert_eq!(args.latency[0].latency.median_ms(), 400.0);
        assert!(check_args(&args).is_ok());
    }

    #[test]
    fn bad_values_are_refused_naming_the_flag_and_the_value() {
        for (flag, value, why) in [
            ("--traffic", "yelb-appserver=50", "has no `/`"),
            ("--traffic", "yelb/=50", "not one namespace and one service"),
            ("--traffic", "a/b/c=50", "not one namespace and one service"),
            ("--traffic", "yelb/app=-1", "0 or more"),
            ("--traffic", "yelb/app=fast", "`fast` is not a number"),
            ("--traffic", "yelb/app", "expected NAMESPACE/SERVICE=RPS"),
            ("--traffic", "yelb/app=inf", "not a finite number"),
            ("--error-rate", "repo/app:2=5", "from 0 to 1"),
            ("--error-rate", "=0.1", "empty"),
            ("--error-rate", "repo/app:2=NaN", "not a finite number"),
            ("--latency", "repo/app:2=0", "more than 0 ms"),
            ("--latency", "repo/app:2=-3", "more than 0 ms"),
            ("--latency", "repo/app:2", "expected IMAGE=MEDIAN_MS"),
        ] {
            let e = parse(&[flag, value]).unwrap_err();
            assert!(e.contains(flag), "{flag} {value}: {e}");
            assert!(e.contains(value), "{flag} {value}: {e}");
            assert!(e.contains(why), "{flag} {value}: {e}");
        }
    }

    #[test]
    fn a_service_or_image_set_twice_is_a_usage_error() {
        for (flag, a, b) in [
            ("--traffic", "yelb/app=1", "yelb/app=2"),
            ("--error-rate", "repo/app:2=0.1", "repo/app:2=0.2"),
            ("--latency", "repo/app:2=10", "repo/app:2=400"),
        ] {
            let args = parse(&[flag, a, flag, b]).unwrap();
            let e = check_args(&args).unwrap_err();
            assert!(matches!(e, CliError::Usage(_)), "{e:?}");
            assert_eq!(
                std::process::ExitCode::from(2),
                e.exit_code(),
                "{flag}: {e}"
            );
            let text = e.to_string();
            assert!(text.contains(flag) && text.contains(b), "{text}");
        }
    }

    #[test]
    fn a_negative_ready_delay_is_a_usage_error() {
        let args = parse(&["--ready-delay=-1"]).unwrap();
        let e = check_args(&args).unwrap_err();
        assert!(e.to_string().contains("--ready-delay `-1`"), "{e}");
        assert_eq!(e.exit_code(), std::process::ExitCode::from(2));
    }

    #[test]
    fn each_setting_is_applied_and_said() {
        let sim = SimCluster::new(SimConfig::default());
        let args = parse(&[
            "--traffic",
            "yelb/yelb-appserver=50",
            "--latency",
            "repo/app:slow=400",
            "--error-rate",
            "repo/app:bad=0.25",
        ])
        .unwrap();
        let said = apply_traffic(&sim, &args);
        assert_eq!(
            said,
            vec![
                "traffic: 50 requests/s to yelb/yelb-appserver",
                "error rate: 25% of requests to repo/app:bad answered 503",
                "latency: repo/app:slow answers in 400 ms (median)",
            ]
        );
    }
}
