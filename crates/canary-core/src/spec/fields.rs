//! The fields deploy.json may hold, and the nearest known name to a misspelt one.

/// Every field deploy.json may hold.
pub const FIELDS: &[&str] = &[
    "cluster_name",
    "kubernetes_namespace",
    "microservice_name",
    "percentage_step",
    "steps",
    "wait_time",
    "failure_threshold_value",
    "failure_threshold_time",
    "container_image",
    "config_file",
    "traffic_provider",
    "check_interval",
    "bake_time",
    "ready_timeout",
    "route_confirm_timeout",
    "max_error_rate",
    "min_request_count",
    "no_data",
    "max_holds",
    "metric_namespace",
    "error_metric_name",
    "success_metric_name",
    "metric_dimensions",
    "version_dimension",
    "metrics",
    "gates",
];

/// The known field nearest to an unknown one, if it is near enough to be a typo.
pub fn near_field(unknown: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|f| (strsim::damerau_levenshtein(unknown, f), *f))
        .filter(|(d, f)| *d <= 3.max(f.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, f)| f)
        .or_else(|| {
            FIELDS
                .iter()
                .map(|f| (strsim::jaro_winkler(unknown, f), *f))
                .filter(|(s, _)| *s >= 0.9)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, f)| f)
        })
}

/// " (did you mean `x`?)" when `value` is near one of `choices`, else nothing.
pub(super) fn near(value: &str, choices: &[&str]) -> String {
    choices
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&value.to_ascii_lowercase(), c),
                *c,
            )
        })
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}
