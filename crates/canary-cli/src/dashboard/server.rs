//! The dashboard's HTTP server (axum): the page, the fragment the page swaps in on a
//! change, the JSON it polls, and the actions of its buttons.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /fragment` | the board alone (what the script swaps in) |
//! | `GET /api/board` | the board as JSON, with a fingerprint of its HTML |
//! | `POST /api/{approve,promote,promote-full,abort}` | `{"group": 0, "service": "c/n/s", "reason": "..."}` → `{"message": ...}` |
//!
//! The actions answer 403 with `--read-only`, and to a request whose `Origin` is not
//! this server (another site's page in the same browser). On a loopback address every
//! request must name a loopback host (`127.0.0.1`, `localhost`, `[::1]`): a site whose
//! name was made to point at 127.0.0.1 (DNS rebinding) gets 403.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::Dashboard;
use super::actions::{self, Action};
use super::views;
use crate::error::CliError;
use crate::format::{now_secs, utc};

/// A running server.
#[derive(Debug)]
pub struct Served {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// `http://<addr>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Serves `dashboard` on `addr` (port 0: any free port).
pub async fn serve(dashboard: Arc<Dashboard>, addr: SocketAddr) -> Result<Served, CliError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| CliError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| CliError::Listen { addr, source })?;
    let app = router(dashboard, addr.ip().is_loopback());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(e) = served.await {
            tracing::error!(error = %e, "the dashboard's server stopped");
        }
    });
    Ok(Served { addr, stop, task })
}

/// The routes; `loopback_only`: refuse a request naming another host.
pub fn router(dashboard: Arc<Dashboard>, loopback_only: bool) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/fragment", get(fragment))
        .route("/api/board", get(board_json))
        .route("/api/{action}", post(act))
        .with_state(dashboard)
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                if loopback_only && !loopback_host(req.headers()) {
                    return answer(
                        StatusCode::FORBIDDEN,
                        "error",
                        "this dashboard answers requests for 127.0.0.1, localhost or [::1] only",
                    );
                }
                next.run(req).await
            },
        ))
}

/// Whether the request's `Host` is a loopback name or address (with any port).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn fingerprint(html: &str) -> String {
    let mut h = DefaultHasher::new();
    html.hash(&mut h);
    format!("{:016x}", h.finish())
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn page(State(d): State<Arc<Dashboard>>) -> Response {
    let board = d.board(now_secs()).await;
    let fp = fingerprint(&views::board_fragment(&board));
    no_store(Html(views::page(&board, &fp)).into_response())
}

async fn fragment(State(d): State<Arc<Dashboard>>) -> Response {
    let board = d.board(now_secs()).await;
    no_store(Html(views::board_fragment(&board)).into_response())
}

async fn board_json(State(d): State<Arc<Dashboard>>) -> Response {
    let board = d.board(now_secs()).await;
    let fp = fingerprint(&views::board_fragment(&board));
    no_store(
        axum::Json(json!({
            "fingerprint": fp,
            "read_at_utc": utc(board.read_at),
            "board": board,
        }))
        .into_response(),
    )
}

/// What a button sends.
#[derive(Debug, Deserialize)]
struct ActionBody {
    group: usize,
    service: String,
    #[serde(default)]
    reason: String,
}

fn answer(status: StatusCode, key: &str, text: &str) -> Response {
    (status, axum::Json(json!({ key: text }))).into_response()
}

async fn act(
    State(d): State<Arc<Dashboard>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: axum::Json<ActionBody>,
) -> Response {
    if d.read_only {
        return answer(
            StatusCode::FORBIDDEN,
            "error",
            "this dashboard is read-only (--read-only): use the canary command",
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let same = origin.to_str().is_ok_and(|o| o == format!("http://{host}"));
        if !same {
            return answer(
                StatusCode::FORBIDDEN,
                "error",
                "actions are only taken from this dashboard's own page",
            );
        }
    }
    let Some(action) = Action::from_name(&action) else {
        return answer(
            StatusCode::NOT_FOUND,
            "error",
            &format!("no action `{action}`: approve, promote, promote-full or abort"),
        );
    };
    let Some(group) = d.groups.get(body.group) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "error",
            &format!(
                "invalid group `{}`: this dashboard has {}",
                body.group,
                d.groups.len()
            ),
        );
    };
    let svc = match canary_store::ServiceRef::parse(&body.service) {
        Ok(s) => s,
        Err(e) => return answer(StatusCode::BAD_REQUEST, "error", &e.to_string()),
    };
    match actions::run(action, &group.store, &svc, &d.by, &body.reason, now_secs()).await {
        Ok(message) => {
            tracing::info!(service = %svc, ?action, by = %d.by, "dashboard action");
            answer(StatusCode::OK, "message", &message)
        }
        Err(e) => {
            let status = if matches!(e, CliError::Usage(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_GATEWAY
            };
            answer(status, "error", &e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(h) {
            m.insert(header::HOST, v);
        }
        m
    }

    #[test]
    fn only_loopback_hosts_are_loopback() {
        for ok in [
            "127.0.0.1:8377",
            "localhost:1",
            "LOCALHOST",
            "[::1]:8377",
            "127.0.0.2",
        ] {
            assert!(loopback_host(&host(ok)), "{ok}");
        }
        for bad in [
            "evil.example:8377",
            "10.0.0.1:80",
            "",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(&host(bad)), "{bad}");
        }
    }
}
