//! The sentence a promotion leaves in the record: which version was promoted, which was
//! removed, and the last verdict.

use crate::execution::Deployment;
use crate::labels::versioned_name;

/// Why `d` ended promoted (cleanup): "<canary> promoted, <stable> removed: <verdict>".
pub fn promoted_reason(service: &str, d: &Deployment) -> String {
    let canary = versioned_name(service, d.canary_version);
    match (d.stable_version, &d.verdict) {
        (Some(s), Some(v)) => format!(
            "{canary} promoted, {} removed: {}",
            versioned_name(service, s),
            v.reason
        ),
        (Some(s), None) => format!("{canary} promoted, {} removed", versioned_name(service, s)),
        (None, _) => format!("{canary} deployed (first deployment, all traffic)"),
    }
}
