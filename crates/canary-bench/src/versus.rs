//! The rows that set the real runs of the six functions against the original design's
//! baseline (bash, kubectl, awscli and a boto3 health check on the same peers): time per
//! step, per deployment, and the notes under the table.

#[allow(clippy::wildcard_imports)]
use super::*;

/// What the comparisons with the real runs read of ours.
pub(super) struct Ours<'a> {
    pub(super) functions: &'a [FunctionRow],
    pub(super) cal: &'a scenarios::Calibration,
    pub(super) memory: &'a BTreeMap<String, u32>,
}

impl Ours<'_> {
    pub(super) fn row(&self, name: &str) -> Option<&FunctionRow> {
        self.functions.iter().find(|r| r.function == name)
    }

    pub(super) fn warm(&self, name: &str) -> Option<Spread> {
        self.row(name).and_then(|r| r.warm_ms)
    }

    pub(super) fn cold(&self, name: &str) -> Option<Spread> {
        self.row(name).and_then(|r| r.cold_start_ms)
    }
}

/// The baseline's `deploy-and-switch` step times: all, or only those with a fresh (or a
/// reused) kubectl discovery cache.
pub(super) fn baseline_steps(real: &RealRun, cache_fresh: Option<bool>) -> Option<Spread> {
    spread(
        real.baseline
            .steps
            .iter()
            .filter(|s| s.function == "deploy-and-switch")
            .filter(|s| cache_fresh.is_none_or(|f| s.fresh_discovery_cache == f))
            .map(|s| s.ms),
    )
}

/// The baseline's Python function `f`: its cold starts, or its warm calls.
pub(super) fn baseline_python(real: &RealRun, f: &str, cold_start: bool) -> Option<Spread> {
    spread(
        real.baseline
            .python
            .iter()
            .filter(|p| p.function == f)
            .flat_map(|p| {
                if cold_start {
                    vec![p.cold_start_ms]
                } else {
                    p.calls_ms.iter().skip(1).copied().collect()
                }
            }),
    )
}

/// Time per step (a weight shift and a health check), warm and cold.
pub(super) fn step_comparisons(real: &RealRun, ours: &Ours<'_>) -> [Versus; 2] {
    [
        Versus::new_pub(
            "time per step, warm (ms): weight shift + health check",
            add(ours.warm("shift-weights"), ours.warm("health-check")),
            add(
                baseline_steps(real, Some(false)),
                baseline_python(real, "gather_health", false),
            ),
        ),
        Versus::new_pub(
            "time per step, cold (ms): weight shift + health check",
            add(ours.cold("shift-weights"), ours.cold("health-check")),
            add(
                baseline_steps(real, None),
                baseline_python(real, "gather_health", true),
            ),
        ),
    ]
}

/// The original's invocations of one deployment, each with its warm median time.
pub(super) fn original_parts(
    real: &RealRun,
    flow: &original::OriginalRun,
) -> [(String, usize, f64); 5] {
    let median = |s: Option<Spread>| s.map_or(0.0, |s| s.median);
    let python = |f: &str| median(baseline_python(real, f, false));
    let remove = spread(
        real.baseline
            .steps
            .iter()
            .filter(|s| s.function == "remove-old-version")
            .map(|s| s.ms),
    );
    let part = |f: &str, warm_ms: f64| {
        (
            f.to_owned(),
            flow.invocations.get(f).copied().unwrap_or(0),
            warm_ms,
        )
    };
    [
        part("check-version", python("check_version")),
        part(
            "deploy-and-switch",
            median(baseline_steps(real, Some(false))),
        ),
        part("gather-health", python("gather_health")),
        part("remove-or-rollback", median(remove)),
        part("update-version", python("update_version")),
    ]
}

/// Per deployment: compute time (the invocations of one promoted yelb-appserver
/// deployment, each at its function's median, warm or with one cold start per
/// function), peak memory and cost, ours against the original's; and the cost table.
pub(super) fn deployment_comparisons(
    real: &RealRun,
    ours: &Ours<'_>,
    original_flow: &[original::OriginalRun],
) -> (Vec<Versus>, BTreeMap<String, cost::DeploymentCost>) {
    let mut ours_lines = Vec::new();
    let mut ours_warm_ms = 0.0;
    let mut ours_cold_extra = 0.0;
    for (f, n) in &ours.cal.invocations {
        let w = ours.warm(f).map_or(0.0, |s| s.median);
        let c = ours.cold(f).map_or(w, |s| s.median);
        ours_warm_ms += *n as f64 * w;
        ours_cold_extra += c - w;
        ours_lines.push((f.clone(), *n, w, ours.memory.get(f).copied().unwrap_or(256)));
    }
    let orig_parts = original_parts(real, &original_flow[0]);
    let orig_cold_extra: f64 = ["check_version", "gather_health", "update_version"]
        .iter()
        .map(|p| {
            baseline_python(real, p, true).map_or(0.0, |s| s.median)
                - baseline_python(real, p, false).map_or(0.0, |s| s.median)
        })
        .sum();
    let orig_warm_ms: f64 = orig_parts.iter().map(|(_, n, ms)| *n as f64 * ms).sum();
    let ours_mem = spread(
        ours.functions
            .iter()
            .filter_map(|f| f.peak_rss_mib.map(|s| s.max)),
    );
    let orig_mem = spread(
        real.baseline
            .steps
            .iter()
            .filter_map(|s| s.max_rss_kib)
            .chain(real.baseline.python.iter().filter_map(|p| p.vmhwm_kib))
            .map(|k| k as f64 / 1024.0),
    );
    let ours_cost = cost::deployment_cost(ours.cal.transitions, &ours_lines, LAMBDA_ARM_PER_GB_S);
    let om = cost::original_memory_mb();
    let orig_lines: Vec<(String, usize, f64, u32)> = orig_parts
        .iter()
        .map(|(f, n, ms)| (f.clone(), *n, *ms, om.get(f).copied().unwrap_or(128)))
        .collect();
    let orig_cost = cost::deployment_cost(
        original_flow[0].transitions,
        &orig_lines,
        LAMBDA_X86_PER_GB_S,
    );
    let versus = vec![
        Versus::new_pub(
            "compute time per deployment, warm (s)",
            one(ours_warm_ms / 1000.0),
            one(orig_warm_ms / 1000.0),
        ),
        Versus::new_pub(
            "compute time per deployment, one cold start per function (s)",
            one((ours_warm_ms + ours_cold_extra) / 1000.0),
            one((orig_warm_ms + orig_cold_extra) / 1000.0),
        ),
        Versus::new_pub(
            "peak RSS of a function's largest process (MiB)",
            ours_mem,
            orig_mem,
        ),
        Versus::new_pub(
            "cost per deployment (US$)",
            one(ours_cost.total_usd),
            one(orig_cost.total_usd),
        ),
        Versus::new_pub(
            "Lambda GB-seconds per deployment",
            one(ours_cost.lambda_gb_s),
            one(orig_cost.lambda_gb_s),
        ),
    ];
    let mut costs = BTreeMap::new();
    costs.insert("eks-canary (arm64, warm medians)".into(), ours_cost);
    costs.insert("original (x86_64, warm medians)".into(), orig_cost);
    (versus, costs)
}

/// What a reader of the real runs must know: the original's first step in a fresh
/// sandbox, and our failed invocations.
pub(super) fn real_notes(real: &RealRun, functions: &[FunctionRow]) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(f) = baseline_steps(real, Some(true)) {
        notes.push(format!(
            "The original's first step in a fresh sandbox (empty kubectl discovery cache) took {:.0} ms and {} API requests; later steps reuse the cache (as a warm Lambda sandbox's /tmp would) and are the ones compared.",
            f.median,
            real.baseline.steps.iter().find(|s| s.fresh_discovery_cache).map_or(0, |s| s.requests)
        ));
    }
    let failed: usize = functions.iter().map(|f| f.failed).sum();
    if failed > 0 {
        notes.push(format!(
            "{failed} of our invocations returned an error; see results.json."
        ));
    }
    notes
}
