//! Generated values in real templates (see `cases/rendering.rs`): a value validation
//! refuses is refused naming its field; a value it accepts cannot change the structure of
//! a rendered object, and every rendered object parses back; never a panic. 2 × 10,000
//! cases in the suite (two tests, so that both cores work); `canary-fuzz render` runs
//! the same property for longer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "cases/rendering.rs"]
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

#[test]
fn every_whole_template_is_used_by_the_property() {
    let names: Vec<&str> = cases::templates().iter().map(|t| t.0.as_str()).collect();
    assert!(names.len() >= 10, "{names:?}");
    assert!(
        names.contains(&"yelb/yelb-ui") && names.contains(&"templates/gateway-grpcroute.yml"),
        "{names:?}"
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_namespace_or_service_name_changes_the_structure_of_a_rendered_object(
        case in cases::case_for(&["kubernetes_namespace", "microservice_name"])
    ) {
        cases::check(&case)?;
    }

    #[test]
    fn no_image_or_cluster_name_changes_the_structure_of_a_rendered_object(
        case in cases::case_for(&["container_image", "cluster_name"])
    ) {
        cases::check(&case)?;
    }
}
