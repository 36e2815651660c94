//! Generated deploy.json documents (see `cases/deploy_json.rs`): a valid document parses
//! to what it holds and round-trips; one field changed to any value or a near-miss name
//! parses or is refused naming that field; never a panic. 2 × 30,000 cases in the suite
//! (two tests, so that both cores work); `canary-fuzz deploy-json` runs the same
//! property for longer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "cases/deploy_json.rs"]
mod cases;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per test (see the README's "Fuzzing and property tests" for the budget).
const CASES: u32 = 30_000;

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
    fn a_known_field_set_to_any_value_parses_or_is_refused_naming_that_field(
        case in cases::known_field_case()
    ) {
        cases::check(&case)?;
    }

    #[test]
    fn a_valid_document_round_trips_and_a_misnamed_or_missing_field_is_named(
        case in cases::other_case()
    ) {
        cases::check(&case)?;
    }
}
