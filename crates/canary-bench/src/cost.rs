//! Prices and memory sizes, and the cost of one deployment: Step Functions state
//! transitions plus Lambda requests and GB-seconds.
//!
//! Prices are us-east-1 list prices, checked on 2026-11-27 (Step Functions on
//! aws.amazon.com/step-functions/pricing; Lambda's from published copies of its price
//! table). Our functions run on arm64 with the memory sizes of
//! `cloudformation/shared.yaml`; the original's ran on x86_64 (its stack set no
//! architecture) with its stack's sizes: 512 MB for the two bash functions, the default
//! 128 MB for the three Python ones.

use std::collections::BTreeMap;

use serde::Serialize;

/// Step Functions Standard, per state transition.
pub const SFN_PER_TRANSITION: f64 = 0.025 / 1000.0;
/// Lambda arm64, per GB-second.
pub const LAMBDA_ARM_PER_GB_S: f64 = 0.000_013_333_4;
/// Lambda x86_64, per GB-second.
pub const LAMBDA_X86_PER_GB_S: f64 = 0.000_016_666_7;
/// Lambda, per request.
pub const LAMBDA_PER_REQUEST: f64 = 0.20 / 1_000_000.0;

/// The shared stack, for our functions' memory sizes.
pub const SHARED_STACK: &str = include_str!("../../../cloudformation/shared.yaml");

/// The memory size (MB) of each of our functions, read from the shared stack: each
/// `FunctionName: !Sub "${AWS::StackName}-<name>"` with the `MemorySize` after it.
pub fn our_memory_mb() -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in SHARED_STACK.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("FunctionName:") {
            current = rest
                .trim()
                .trim_matches(|c| c == '"' || c == '\'')
                .rsplit("}-")
                .next()
                .map(|s| s.trim_matches('"').to_owned());
        } else if let Some(rest) = line.strip_prefix("MemorySize:")
            && let (Some(name), Ok(mb)) = (current.take(), rest.trim().parse())
        {
            out.insert(name, mb);
        }
    }
    out
}

/// The original's functions: memory (MB) and whether it ran on x86_64.
pub fn original_memory_mb() -> BTreeMap<String, u32> {
    [
        ("check-version", 128),
        ("deploy-and-switch", 512),
        ("gather-health", 128),
        ("remove-or-rollback", 512),
        ("update-version", 128),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// One function's part of a deployment's Lambda bill.
#[derive(Debug, Clone, Serialize)]
pub struct LambdaLine {
    /// The function.
    pub function: String,
    /// Invocations per deployment.
    pub invocations: usize,
    /// Milliseconds billed per invocation (a measured median).
    pub ms: f64,
    /// Memory size, MB.
    pub memory_mb: u32,
    /// GB-seconds per deployment.
    pub gb_s: f64,
}

/// The cost of one deployment.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentCost {
    /// State transitions.
    pub transitions: usize,
    /// Dollars for them.
    pub sfn_usd: f64,
    /// Lambda invocations.
    pub lambda_requests: usize,
    /// Lambda GB-seconds.
    pub lambda_gb_s: f64,
    /// Dollars for the Lambda requests and GB-seconds.
    pub lambda_usd: f64,
    /// Everything.
    pub total_usd: f64,
    /// Per function.
    pub lines: Vec<LambdaLine>,
}

/// The cost of a deployment with `transitions` and, per function, `(invocations,
/// ms per invocation, memory MB)`, at `per_gb_s`.
pub fn deployment_cost(
    transitions: usize,
    functions: &[(String, usize, f64, u32)],
    per_gb_s: f64,
) -> DeploymentCost {
    let lines: Vec<LambdaLine> = functions
        .iter()
        .map(|(f, n, ms, mb)| LambdaLine {
            function: f.clone(),
            invocations: *n,
            ms: *ms,
            memory_mb: *mb,
            gb_s: *n as f64 * ms / 1000.0 * f64::from(*mb) / 1024.0,
        })
        .collect();
    let lambda_requests: usize = lines.iter().map(|l| l.invocations).sum();
    let lambda_gb_s: f64 = lines.iter().map(|l| l.gb_s).sum();
    let sfn_usd = transitions as f64 * SFN_PER_TRANSITION;
    let lambda_usd = lambda_gb_s * per_gb_s + lambda_requests as f64 * LAMBDA_PER_REQUEST;
    DeploymentCost {
        transitions,
        sfn_usd,
        lambda_requests,
        lambda_gb_s,
        lambda_usd,
        total_usd: sfn_usd + lambda_usd,
        lines,
    }
}

/// The original's Lambda GB-seconds per promoted yelb-appserver deployment as this
/// benchmark measured them on 2026-11-27 (docs/benchmarks.md: 22 invocations at their
/// warm medians, x86_64, its stack's memory sizes): its Lambda bill when a run skips
/// the real measurements (`--skip-real`).
pub const ORIGINAL_GB_S_MEASURED: f64 = 2.8391;

/// The original's cost per deployment from its state transitions, Lambda requests and
/// GB-seconds (x86_64).
pub fn original_cost(transitions: usize, requests: usize, gb_s: f64) -> DeploymentCost {
    let sfn_usd = transitions as f64 * SFN_PER_TRANSITION;
    let lambda_usd = gb_s * LAMBDA_X86_PER_GB_S + requests as f64 * LAMBDA_PER_REQUEST;
    DeploymentCost {
        transitions,
        sfn_usd,
        lambda_requests: requests,
        lambda_gb_s: gb_s,
        lambda_usd,
        total_usd: sfn_usd + lambda_usd,
        lines: Vec::new(),
    }
}

/// Our cost of one simulated deployment: its transitions, and per function its
/// invocations and the milliseconds Lambda would bill for them (`billed_ms`: all of
/// that function's calls, work and waits inside), at `memory` (MB; 256 when missing),
/// arm64.
pub fn billed_cost(
    transitions: usize,
    invocations: &BTreeMap<String, usize>,
    billed_ms: &BTreeMap<String, f64>,
    memory: &BTreeMap<String, u32>,
) -> DeploymentCost {
    let lines: Vec<(String, usize, f64, u32)> = invocations
        .iter()
        .map(|(f, n)| {
            let total = billed_ms.get(f).copied().unwrap_or(0.0);
            let per = total / (*n).max(1) as f64;
            (f.clone(), *n, per, memory.get(f).copied().unwrap_or(256))
        })
        .collect();
    deployment_cost(transitions, &lines, LAMBDA_ARM_PER_GB_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_stack_gives_every_function_a_memory_size() {
        let m = our_memory_mb();
        for f in crate::real::FUNCTIONS {
            assert!(m.contains_key(f), "{f}: {m:?}");
        }
    }

    #[test]
    fn billed_time_at_its_memory_size_and_the_original_at_its_gigabyte_seconds() {
        let inv: BTreeMap<String, usize> = [("health-check".to_owned(), 2)].into();
        let ms: BTreeMap<String, f64> = [("health-check".to_owned(), 60_000.0)].into();
        let mem: BTreeMap<String, u32> = [("health-check".to_owned(), 128)].into();
        let c = billed_cost(40, &inv, &ms, &mem);
        // 60 s at 0.125 GB = 7.5 GB-s; 40 transitions.
        assert!((c.lambda_gb_s - 7.5).abs() < 1e-9, "{c:?}");
        assert!((c.sfn_usd - 0.001).abs() < 1e-12);
        let o = original_cost(53, 22, 2.8391);
        assert!(
            (o.total_usd - (0.001325 + 2.8391 * LAMBDA_X86_PER_GB_S + 22.0 * LAMBDA_PER_REQUEST))
                .abs()
                < 1e-12
        );
    }

    #[test]
    fn a_deployment_costs_its_transitions_plus_its_gigabyte_seconds() {
        let c = deployment_cost(1000, &[("f".into(), 2, 500.0, 1024)], 0.00001);
        assert!((c.lambda_gb_s - 1.0).abs() < 1e-9);
        assert!((c.total_usd - (0.025 + 0.00001 + 0.0000004)).abs() < 1e-9);
    }
}
