//! Test support shared by the workspace's crates: a real `moto_server` (the local AWS
//! emulator, PyPI `moto`) on a free loopback port, and the rule for tests that need a
//! peer outside Rust ([`require_peer`], [`require_program`] in `peer.rs`: a missing peer
//! fails the test with how to install it, unless `EKS_CANARY_ALLOW_MISSING_PEERS` allows
//! it).
//!
//! [`MotoServer::start`] starts one that belongs to the returned guard and stops when
//! the guard is dropped; [`MotoServer::shared`] starts one per test process, reused by
//! every test of that binary (give each test its own bucket, metric or cluster names).
//! Either way the server also stops when the test process ends, even when it is killed:
//! moto runs under a small `bash` watchdog that stops it when its standard input (a pipe
//! held by this process) reaches end of file.
//!
//! Nothing global is set: the endpoint is handed to clients explicitly
//! ([`MotoServer::endpoint`], [`MotoServer::sdk_config`]), so tests may run in parallel.
//!
//! ```no_run
//! # async fn demo() -> Result<(), canary_testkit::TestkitError> {
//! let moto = canary_testkit::MotoServer::shared()?;
//! let sdk = moto.sdk_config().await;
//! let s3 = aws_config::SdkConfig::endpoint_url(&sdk);
//! assert_eq!(s3, Some(moto.endpoint()));
//! # Ok(()) }
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

mod peer;
pub mod prometheus;

pub use peer::{
    ALLOW_MISSING_PEERS, MissingPeer, allows, decide, find_program, install,
    python_module_available, python_without_aws_env, require_peer, require_program,
};

/// The region every test client uses.
pub const REGION: &str = "us-east-1";
/// The fake access key id (moto accepts any).
pub const ACCESS_KEY_ID: &str = "testing";
/// The fake secret access key.
pub const SECRET_ACCESS_KEY: &str = "testing";

/// How long moto may take to answer after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many free ports are tried when moto could not bind the first one.
const PORT_TRIES: u32 = 3;

/// The watchdog: starts moto in the background, then waits for either moto's end or
/// end of file on standard input, and stops moto in the second case.
const WATCHDOG: &str = r#"
"$1" -H 127.0.0.1 -p "$2" >"$3" 2>&1 </dev/null &
m=$!
while kill -0 "$m" 2>/dev/null; do
  read -r -t 1 _
  rc=$?
  # 0: a line; above 128: the one-second timeout; anything else: end of file.
  if [ "$rc" -eq 0 ] || [ "$rc" -gt 128 ]; then continue; fi
  break
done
kill "$m" 2>/dev/null
wait "$m"
"#;

/// Why a moto server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// `moto_server` (or `$MOTO_SERVER`) is not installed. `EKS_CANARY_ALLOW_MISSING_PEERS`
    /// does not apply: the tests that use moto have nothing else to run against.
    #[error(
        "`{program}` is not installed: {}, or run scripts/test, which installs it",
        install::MOTO
    )]
    MotoMissing {
        /// The program looked for: `moto_server`, or `$MOTO_SERVER`.
        program: String,
    },
    /// The watchdog shell or `moto_server` could not be started.
    #[error("cannot start `{program}` for moto_server: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No free loopback port could be found.
    #[error("cannot find a free loopback port: {source}")]
    Port {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// moto exited, or did not answer in time; `log` is the end of its output.
    #[error("moto_server on port {port} did not start: {why}; its output ends with:\n{log}")]
    NotReady {
        /// The port it was asked to listen on.
        port: u16,
        /// What went wrong.
        why: String,
        /// The last lines moto printed.
        log: String,
    },
    /// The process-wide server failed to start earlier (see the message).
    #[error("the shared moto_server failed to start: {message}")]
    Shared {
        /// The first failure's message.
        message: String,
    },
}

/// A running `moto_server` on 127.0.0.1. Dropping the guard stops it.
#[derive(Debug)]
pub struct MotoServer {
    port: u16,
    endpoint: String,
    log: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
}

static SHARED: OnceLock<Result<MotoServer, String>> = OnceLock::new();

impl MotoServer {
    /// Starts a new server on a free loopback port and waits until it answers.
    ///
    /// The program is `moto_server`, or `$MOTO_SERVER` when set.
    pub fn start() -> Result<Self, TestkitError> {
        Self::start_with_env(&[])
    }

    /// [`MotoServer::start`] with extra environment variables for `moto_server`, e.g.
    /// `MOTO_PORT`, the port that moto's Step Functions engine sends its own AWS calls
    /// (Lambda invocations) to.
    pub fn start_with_env(env: &[(&str, &str)]) -> Result<Self, TestkitError> {
        let mut last = None;
        for _ in 0..PORT_TRIES {
            let port = free_port()?;
            match Self::start_on(port, env) {
                Ok(server) => return Ok(server),
                // Another process may have taken the port between our probe and moto's bind.
                Err(e @ TestkitError::NotReady { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(TestkitError::Shared {
            message: "no port was tried".into(),
        }))
    }

    /// The server shared by every test of this process, started on first use. It stops
    /// when the process ends.
    pub fn shared() -> Result<&'static MotoServer, TestkitError> {
        SHARED
            .get_or_init(|| Self::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|message| TestkitError::Shared {
                message: message.clone(),
            })
    }

    fn start_on(port: u16, env: &[(&str, &str)]) -> Result<Self, TestkitError> {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        Self::start_program(program, port, env)
    }

    fn start_program(
        program: String,
        port: u16,
        env: &[(&str, &str)],
    ) -> Result<Self, TestkitError> {
        if find_program(&program).is_none() {
            return Err(TestkitError::MotoMissing { program });
        }
        let log =
            std::env::temp_dir().join(format!("canary-moto-{}-{port}.log", std::process::id()));
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("canary-moto")
            .arg(&program)
            .arg(port.to_string())
            .arg(&log)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| TestkitError::Spawn {
                program: "bash".into(),
                source,
            })?;
        let stdin = child.stdin.take();
        let mut server = Self {
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            child,
            stdin,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if answers(port) {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let why = format!("`{program}` exited ({status})");
                return Err(TestkitError::NotReady {
                    port,
                    why,
                    log: server.log_tail(),
                });
            }
            if Instant::now() >= deadline {
                let why = format!("no answer within {} s", READY_TIMEOUT.as_secs());
                let log = server.log_tail();
                server.stop();
                return Err(TestkitError::NotReady { port, why, log });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The endpoint URL, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// An SDK configuration for this server: its endpoint, region `us-east-1` and fake
    /// static credentials. Other settings come from the environment as usual.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                ACCESS_KEY_ID,
                SECRET_ACCESS_KEY,
                None,
                None,
                "canary-testkit",
            ))
            .load()
            .await
    }

    /// The environment a child process needs to use this server (`AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, fake credentials), for `Command::envs`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
        ]
    }

    /// The last lines moto printed (for a failing test's message).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn stop(&mut self) {
        // End of file on the watchdog's standard input stops moto within a second.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_file(&self.log);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A name no other test of any process uses: `<prefix>-<pid>-<n>-<nanos>`, lowercase,
/// valid as an S3 bucket name when `prefix` is (keep `prefix` short: buckets allow 63).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

fn free_port() -> Result<u16, TestkitError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|source| TestkitError::Port { source })?;
    let port = listener
        .local_addr()
        .map_err(|source| TestkitError::Port { source })?
        .port();
    Ok(port)
}

/// Whether something on `port` answers an HTTP request.
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_server_answers_and_stops_when_its_guard_is_dropped() {
        let server = MotoServer::start().expect("moto_server starts");
        let port = server.port();
        assert!(answers(port));
        assert_eq!(server.endpoint(), format!("http://127.0.0.1:{port}"));
        drop(server);
        assert!(
            !answers(port),
            "moto still answers on {port} after the guard was dropped"
        );
    }

    #[test]
    fn a_server_outlives_the_watchdogs_read_timeouts() {
        let server = MotoServer::start().expect("moto_server starts");
        std::thread::sleep(Duration::from_millis(3_500));
        assert!(
            answers(server.port()),
            "moto stopped while its guard was alive:\n{}",
            server.log_tail()
        );
    }

    #[test]
    fn the_shared_server_is_started_once_per_process() {
        let a = MotoServer::shared().expect("shared moto_server starts");
        let b = MotoServer::shared().expect("shared moto_server is there");
        assert_eq!(a.endpoint(), b.endpoint());
        assert!(answers(a.port()));
    }

    #[test]
    fn a_missing_moto_server_fails_with_how_to_install_it() {
        let program = "/no/such/moto_server".to_owned();
        let e = MotoServer::start_program(program, free_port().unwrap(), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`/no/such/moto_server` is not installed: pip install -r tests/requirements.txt \
             (moto[server]==5.2.6), or run scripts/test, which installs it"
        );
    }

    #[test]
    fn unique_names_differ_and_fit_a_bucket() {
        let a = unique_name("t");
        let b = unique_name("t");
        assert_ne!(a, b);
        assert!(
            a.len() < 63
                && a.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}
