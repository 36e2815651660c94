//! The demo's service, which every simulated run deploys: the seed's yelb-appserver
//! (deploy.json and App Mesh template), its images, the simulated traffic and faults,
//! and where the virtual clock starts.

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

/// The seed's yelb-appserver deploy.json.
pub const DEPLOY_JSON: &str =
    include_str!("../../../../tests/fixtures/yelb/yelb-appserver/deploy.json");
/// The seed's yelb-appserver template (App Mesh).
pub const TEMPLATE: &str =
    include_str!("../../../../tests/fixtures/yelb/yelb-appserver/kubernetes_template.yml");
/// The service's namespace in the seed.
pub const NAMESPACE: &str = "yelb";
/// The service.
pub const SERVICE: &str = "yelb-appserver";
/// The image repository the demo's versions come from.
pub const IMAGE_REPOSITORY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/yelb-appserver";
/// Simulated requests per second to the service.
pub const REQUESTS_PER_SECOND: f64 = 50.0;
/// Health checks every 20 s inside each 60 s step (the one field the demo adds to the
/// seed's deploy.json), so a bad canary is caught a third of the way into its step.
pub const CHECK_INTERVAL: u64 = 20;
/// Share of 5xx answers of the faulty version.
pub const FAULTY_ERROR_RATE: f64 = 0.25;
/// Simulated time for a Deployment to become ready after a change.
pub const READY_DELAY: Duration = Duration::from_secs(15);
/// Where the virtual clock starts: 2026-01-01T00:00:00Z.
pub const START_MILLIS: i64 = 1_767_225_600_000;

/// The image of `version`.
pub fn image(version: u32) -> String {
    format!("{IMAGE_REPOSITORY}:{version}")
}

/// The execution input for `image`: the seed's deploy.json with `container_image`,
/// `config_file` (the template, base64) and `check_interval` added, as the pipeline's
/// build step (`canary prepare`) would hand it to the state machine.
pub fn deploy_document(image: &str) -> Value {
    // DEPLOY_JSON is a fixture compiled in and parsed by this crate's tests: a parse
    // failure is a broken build, which the demo then reports as an invalid input.
    let mut doc: Value = serde_json::from_str(DEPLOY_JSON).unwrap_or(Value::Null);
    if let Some(map) = doc.as_object_mut() {
        map.insert("container_image".into(), Value::from(image));
        map.insert(
            "config_file".into(),
            Value::from(base64::engine::general_purpose::STANDARD.encode(TEMPLATE)),
        );
        map.insert("check_interval".into(), Value::from(CHECK_INTERVAL));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_document_is_the_seed_deploy_json_with_its_artifacts_and_it_is_valid() {
        let doc = deploy_document(&image(2));
        assert_eq!(doc["container_image"], Value::from(image(2)));
        assert_eq!(doc["check_interval"], Value::from(CHECK_INTERVAL));
        assert_eq!(doc["microservice_name"], Value::from(SERVICE));
        let spec = canary_core::DeploySpec::parse(&doc, None);
        assert!(spec.is_ok(), "{spec:?}");
    }
}
