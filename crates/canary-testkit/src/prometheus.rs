//! A real Prometheus server for tests (Debian's `prometheus` package: `/usr/bin/prometheus`
//! and `promtool`), on a free loopback port with a fresh data directory; stopped when
//! the guard is dropped.
//!
//! Two ways to give it data: series backfilled from OpenMetrics text with `promtool
//! tsdb create-blocks-from openmetrics` before it starts ([`PrometheusServer::backfilled`]),
//! or scrape jobs in its configuration ([`PrometheusServer::scraping`]). The
//! seeded Istio-shaped series several tests share are in [`istio_seed`].

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{MissingPeer, require_program};

/// How to install Prometheus and promtool.
pub const INSTALL: &str = "apt-get install prometheus";

/// Why a Prometheus server could not be had.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    /// Not installed (and not allowed to be missing).
    #[error(transparent)]
    Missing(#[from] MissingPeer),
    /// Installed, but something failed: the step and what it said.
    #[error("{step}: {message}")]
    Failed {
        /// What was being done.
        step: String,
        /// Its output or error.
        message: String,
    },
}

fn failed(step: impl Into<String>, message: impl std::fmt::Display) -> PrometheusError {
    PrometheusError::Failed {
        step: step.into(),
        message: message.to_string(),
    }
}

/// A running Prometheus; killed when dropped.
#[derive(Debug)]
pub struct PrometheusServer {
    child: Child,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PrometheusServer {
    /// Backfills `openmetrics` (text ending in `# EOF`) and starts Prometheus on it with
    /// no scrape jobs. `None`: the peer is missing and allowed to be.
    pub fn backfilled(openmetrics: &str) -> Result<Option<Self>, PrometheusError> {
        let Some(promtool) = require_program("promtool", INSTALL)? else {
            return Ok(None);
        };
        let dir = tempdir()?;
        let data = dir.path().join("data");
        let input = dir.path().join("seed.om");
        std::fs::write(&input, openmetrics).map_err(|e| failed("write the seed", e))?;
        let out = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&input)
            .arg(&data)
            .output()
            .map_err(|e| failed("run promtool", e))?;
        if !out.status.success() {
            return Err(failed(
                "promtool tsdb create-blocks-from openmetrics",
                String::from_utf8_lossy(&out.stderr),
            ));
        }
        Self::start(dir, "global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    }

    /// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`) every
    /// `interval_secs`. `None`: the peer is missing and allowed to be.
    pub fn scraping(targets: &[&str], interval_secs: u32) -> Result<Option<Self>, PrometheusError> {
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: {interval_secs}s\n  scrape_timeout: {interval_secs}s\nscrape_configs:\n  - job_name: targets\n    static_configs:\n      - targets: [{list}]\n"
        );
        Self::start(tempdir()?, &config)
    }

    fn start(dir: tempfile::TempDir, config: &str) -> Result<Option<Self>, PrometheusError> {
        let Some(prometheus) = require_program("prometheus", INSTALL)? else {
            return Ok(None);
        };
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).map_err(|e| failed("write the config", e))?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))
            .map_err(|e| failed("create the log", e))?;
        let child = Command::new(&prometheus)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| failed(format!("start {}", prometheus.display()), e))?;
        let server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        server.wait_ready()?;
        Ok(Some(server))
    }

    fn wait_ready(&self) -> Result<(), PrometheusError> {
        let addr = self.url.trim_start_matches("http://").to_owned();
        for _ in 0..300 {
            if let Ok(mut s) = TcpStream::connect(&addr) {
                let _ = s.write_all(b"GET /-/ready HTTP/1.0\r\nHost: x\r\n\r\n");
                let mut buf = String::new();
                let _ = s.read_to_string(&mut buf);
                if buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(failed(
            format!("Prometheus at {} did not become ready", self.url),
            self.log(),
        ))
    }

    /// Prometheus's own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Its data directory's parent (for files a test wants kept beside it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn tempdir() -> Result<tempfile::TempDir, PrometheusError> {
    tempfile::tempdir().map_err(|e| failed("create a temporary directory", e))
}

fn free_port() -> Result<u16, PrometheusError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| failed("find a free port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| failed("find a free port", e))
}

/// The seeded series of [`istio_seed`]: their end (Unix seconds, on a minute, ten
/// minutes ago so Prometheus's head holds none of it) and the OpenMetrics text.
#[derive(Debug, Clone)]
pub struct IstioSeed {
    /// The last sample's time: query at this time.
    pub end: i64,
    /// The OpenMetrics text, for [`PrometheusServer::backfilled`].
    pub openmetrics: String,
}

/// Istio-shaped series for `namespace`, one sample a minute for two hours, linear
/// counters so `increase(...[600s])` is exact:
/// - `<service>-1` (stable): 100 × 200 and 1 × 500 a minute;
/// - `<service>-2` (healthy canary): 98 × 200 and 2 × 503 a minute (1000 requests and 20
///   errors in 10 minutes), and a latency histogram whose p99 is 375 ms (cumulative per
///   minute: 50 ≤ 50 ms, 90 ≤ 100, 98 ≤ 250, 100 ≤ 500);
/// - `<service>-3` (faulty canary): 70 × 200 and 30 × 500 a minute;
/// - `<service>-2` as seen by `reporter="source"`: other numbers, which the queries
///   must not count;
/// - nothing for `<service>-4`.
pub fn istio_seed(namespace: &str, service: &str) -> IstioSeed {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let end = (now / 60) * 60 - 600;
    let start = end - 7200;
    let labels = |reporter: &str, version: u32, code: &str| {
        format!(
            r#"reporter="{reporter}",destination_workload_namespace="{namespace}",destination_workload="{service}-{version}",response_code="{code}""#
        )
    };
    let counters = [
        (labels("destination", 1, "200"), 100),
        (labels("destination", 1, "500"), 1),
        (labels("destination", 2, "200"), 98),
        (labels("destination", 2, "503"), 2),
        (labels("destination", 3, "200"), 70),
        (labels("destination", 3, "500"), 30),
        (labels("source", 2, "200"), 7),
        (labels("source", 2, "500"), 5),
    ];
    let mut out = String::from("# HELP istio_requests Requests.\n# TYPE istio_requests counter\n");
    for (labels, per_minute) in counters {
        for (i, t) in (start..=end).step_by(60).enumerate() {
            let _ = writeln!(
                out,
                "istio_requests_total{{{labels}}} {} {t}",
                per_minute * i as u64
            );
        }
    }
    out.push_str("# HELP istio_request_duration_milliseconds Latency.\n");
    out.push_str("# TYPE istio_request_duration_milliseconds histogram\n");
    let labels = format!(
        r#"reporter="destination",destination_workload_namespace="{namespace}",destination_workload="{service}-2""#
    );
    for (le, per_minute) in [
        ("50", 50u64),
        ("100", 90),
        ("250", 98),
        ("500", 100),
        ("+Inf", 100),
    ] {
        for (i, t) in (start..=end).step_by(60).enumerate() {
            let _ = writeln!(
                out,
                "istio_request_duration_milliseconds_bucket{{{labels},le=\"{le}\"}} {} {t}",
                per_minute * i as u64
            );
        }
    }
    out.push_str("# EOF\n");
    IstioSeed {
        end,
        openmetrics: out,
    }
}
