//! Generated requests to the simulated API server (see `cases/requests.rs`): any method,
//! path, query string, content type and body is answered with a valid success or a
//! Kubernetes `Status` error, never a 500, a panic or a hang. Answered in-process
//! (`SimCluster::answer`, the HTTP handler's own code without the socket) so that
//! 2 × 12,500 sequences of one to eight requests fit in the suite (two tests, so that
//! both cores work); `canary-fuzz sim-requests` runs the same property for longer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "cases/requests.rs"]
mod cases;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per test (see the README's "Fuzzing and property tests" for the budget).
const CASES: u32 = 12_500;

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
