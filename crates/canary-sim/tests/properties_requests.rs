//! Generated requests to the simulated API server (see `cases/requests.rs`): any method,
//! path, query string, content type and body is answered with a valid success or a
//! Kubernetes `Status` error, never a 500, a panic or a hang. Answered in-process
//! (`SimCluster::answer`, the HTTP handler's own code without the socket) so that
//! 2 × 10,000 sequences of one to eight requests fit in the suite (two tests, so that
//! both cores work); `canary-fuzz sim-requests` runs the same property for longer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "cases/requests.rs"]
mod cases;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per test (see the README's "Fuzzing and property tests" for the budget).
const CASES: u32 = 10_000;

fn config() -> Config {
    Config {
        cases: CASES,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_request_is_answered_with_a_valid_object_or_a_status(requests in cases::requests()) {
        cases::check(&requests)?;
    }

    #[test]
    fn sensible_writes_then_anything_are_answered_with_a_valid_object_or_a_status(
        requests in cases::writes_then_anything()
    ) {
        cases::check(&requests)?;
    }
}

/// Sends `req` over HTTP/1.1 to `addr` and returns the status code.
async fn status_over_http(addr: std::net::SocketAddr, req: &cases::Req) -> std::io::Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        req.method,
        req.uri,
        req.body.len()
    );
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&req.body).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let line = String::from_utf8_lossy(&answer);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {line:?}")))
}

/// True when HTTP itself can carry the request as generated, so that the server (and not
/// hyper's parser) answers it: a method token, a target of visible ASCII, header names
/// and values that are tokens and visible text. Watches are left out: over HTTP they
/// stream.
fn carried_by_http(req: &cases::Req) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    token(&req.method)
        && req.uri.starts_with('/')
        && req.uri.bytes().all(|b| b.is_ascii_graphic())
        && req
            .headers
            .iter()
            .all(|(k, v)| token(k) && v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()))
        && !req.uri.contains("watch=")
}

#[test]
fn the_in_process_answer_is_the_http_servers_answer() {
    use canary_core::clock::{Clock, ManualClock};
    use canary_sim::{SimCluster, SimConfig};
    use proptest::test_runner::TestRunner;
    use std::sync::Arc;

    let rt = tokio::runtime::Runtime::new().unwrap();
    let cluster = || {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::starting_at(1_767_225_600_000));
        SimCluster::new(SimConfig::new(clock, std::time::Duration::from_secs(2)))
    };
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let compared = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&cases::writes_then_anything(), |requests| {
            let served = cluster();
            let twin = cluster();
            let server = rt
                .block_on(served.serve("127.0.0.1:0".parse().unwrap()))
                .unwrap();
            for req in requests.iter().filter(|r| carried_by_http(r)) {
                let over_http = rt.block_on(status_over_http(server.addr, req)).unwrap();
                let headers: Vec<(&str, &str)> = req
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let in_process = twin.answer(&req.method, &req.uri, &headers, &req.body);
                prop_assert_eq!(over_http, in_process.status, "{:?}", req);
                compared.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    let compared = compared.into_inner();
    assert!(compared > 600, "only {compared} requests compared");
}
