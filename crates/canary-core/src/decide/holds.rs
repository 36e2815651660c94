//! How many `hold` verdicts (too little traffic, with `no_data: hold`) in a row are too
//! many: more than deploy.json's `max_holds` rolls the canary back.

use crate::spec::HealthSpec;

/// Whether `holds` holds in a row are more than the policy accepts.
pub fn too_many_holds(holds: u32, health: &HealthSpec) -> bool {
    holds > health.max_holds
}
