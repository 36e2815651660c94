//! A minimal Lambda Runtime API (the 2018-06-01 interface: `GET
//! /runtime/invocation/next`, `POST /runtime/invocation/{id}/response` and `/error`,
//! `POST /runtime/init/error`), one per function process, so that a real `bootstrap`
//! binary runs as it does in Lambda and its timings can be taken as Lambda takes them:
//!
//! - **cold start**: from spawning the process to its first response (the first event
//!   is queued before the spawn, so the process gets it as soon as it asks);
//! - **duration** of an invocation: from handing the event out (answering `next`) to
//!   receiving the response, what Lambda bills for a warm invocation;
//! - **peak memory**: the process's `VmHWM` from `/proc/<pid>/status`.

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};

/// How long one invocation may take before it is reported as timed out.
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Why an invocation could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum LambdaApiError {
    /// The emulator could not listen.
    #[error("the runtime API could not listen on loopback: {0}")]
    Listen(#[source] std::io::Error),
    /// The bootstrap could not be started.
    #[error("cannot start `{path}`: {source}")]
    Spawn {
        /// The binary.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The process did not answer in time.
    #[error("{function} did not answer within {0:?}", INVOCATION_TIMEOUT)]
    Timeout {
        /// The function.
        function: String,
    },
    /// The process went away without answering.
    #[error("{function} ended without answering")]
    Gone {
        /// The function.
        function: String,
    },
}

/// The end of one invocation.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Whether the function answered with a response (not an error).
    pub ok: bool,
    /// The response, or the error document.
    pub body: Value,
    /// When the event was handed to the process.
    pub handed_at: Instant,
    /// When its answer arrived.
    pub done_at: Instant,
}

struct Pending {
    event: Value,
    reply: oneshot::Sender<Outcome>,
}

struct Shared {
    queue: Mutex<mpsc::Receiver<Pending>>,
    waiting: Mutex<HashMap<String, (oneshot::Sender<Outcome>, Instant)>>,
    function: String,
    counter: std::sync::atomic::AtomicU64,
}

/// One function process under its own runtime API.
#[derive(Debug)]
pub struct FunctionProcess {
    /// The function's name.
    pub function: String,
    /// When the process was spawned.
    pub spawned_at: Instant,
    child: Child,
    events: mpsc::Sender<Pending>,
    server: tokio::task::JoinHandle<()>,
    invocations: usize,
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

async fn next(State(s): State<Arc<Shared>>) -> (StatusCode, HeaderMap, String) {
    let pending = { s.queue.lock().await.recv().await };
    let Some(p) = pending else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let n = s.counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let id = format!("bench-{n}");
    let mut headers = HeaderMap::new();
    let deadline = now_millis() + INVOCATION_TIMEOUT.as_millis();
    let arn = format!(
        "arn:aws:lambda:us-east-1:000000000000:function:{}",
        s.function
    );
    for (k, v) in [
        ("lambda-runtime-aws-request-id", id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", arn),
        (
            "lambda-runtime-trace-id",
            format!("Root=1-00000000-{n:024x}"),
        ),
    ] {
        if let Ok(value) = HeaderValue::from_str(&v) {
            headers.insert(k, value);
        }
    }
    let body = p.event.to_string();
    s.waiting.lock().await.insert(id, (p.reply, Instant::now()));
    (StatusCode::OK, headers, body)
}

async fn finish(s: &Shared, id: &str, ok: bool, body: &Bytes) -> StatusCode {
    let done_at = Instant::now();
    let Some((reply, handed_at)) = s.waiting.lock().await.remove(id) else {
        return StatusCode::NOT_FOUND;
    };
    let body = serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    let _ = reply.send(Outcome {
        ok,
        body,
        handed_at,
        done_at,
    });
    StatusCode::ACCEPTED
}

async fn response(
    State(s): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    finish(&s, &id, true, &body).await
}

async fn error(
    State(s): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    finish(&s, &id, false, &body).await
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    eprintln!(
        "{}: init error: {}",
        s.function,
        String::from_utf8_lossy(&body)
    );
    StatusCode::ACCEPTED
}

impl FunctionProcess {
    /// Serves a runtime API on a free loopback port and spawns `bootstrap` against it,
    /// with `env` added to the Lambda variables; its standard error goes to `log`.
    /// `first_event`, when given, is queued before the spawn (for a cold-start timing).
    pub async fn spawn(
        function: &str,
        bootstrap: &Path,
        memory_mb: u32,
        env: &[(String, String)],
        log: &Path,
    ) -> Result<Self, LambdaApiError> {
        let (events, queue) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            queue: Mutex::new(queue),
            waiting: Mutex::new(HashMap::new()),
            function: function.to_owned(),
            counter: std::sync::atomic::AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(LambdaApiError::Listen)?;
        let addr = listener.local_addr().map_err(LambdaApiError::Listen)?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let stderr = File::create(log).map_or_else(|_| Stdio::null(), Stdio::from);
        let spawned_at = Instant::now();
        let child = Command::new(bootstrap)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|source| LambdaApiError::Spawn {
                path: bootstrap.display().to_string(),
                source,
            })?;
        Ok(Self {
            function: function.to_owned(),
            spawned_at,
            child,
            events,
            server,
            invocations: 0,
        })
    }

    /// Invokes the function with `event` and waits for its answer.
    pub async fn invoke(&mut self, event: Value) -> Result<Outcome, LambdaApiError> {
        let (reply, answer) = oneshot::channel();
        self.events
            .send(Pending { event, reply })
            .await
            .map_err(|_| LambdaApiError::Gone {
                function: self.function.clone(),
            })?;
        self.invocations += 1;
        match tokio::time::timeout(INVOCATION_TIMEOUT, answer).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(LambdaApiError::Gone {
                function: self.function.clone(),
            }),
            Err(_) => Err(LambdaApiError::Timeout {
                function: self.function.clone(),
            }),
        }
    }

    /// How many invocations were sent to this process.
    pub fn invocations(&self) -> usize {
        self.invocations
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.child.id())
    }

    /// Stops the process and its runtime API.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.abort();
    }
}

/// `VmHWM` of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
