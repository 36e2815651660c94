//! `canary-bench`: runs the benchmarks (see the crate docs and `scripts/bench`) and
//! writes `results.json`, `results.md` (the full tables) and `summary.md` into `--out`.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use canary_bench::cost::{self, LAMBDA_ARM_PER_GB_S, LAMBDA_X86_PER_GB_S};
use canary_bench::original;
use canary_bench::real::{self, FUNCTIONS, RealConfig, RealRun};
use canary_bench::report::{self, FunctionRow, Machine, ReactionRow, Results, Versus};
use canary_bench::scenarios::{self, CheckConfig, Reaction};
use canary_bench::stats::Spread;
use clap::Parser;

/// Benchmarks eks-canary against the original design.
#[derive(Debug, Parser)]
struct Args {
    /// Where to write results.json, results.md and summary.md.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Folder with the six functions' host release binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Folder with `<function>.zip` for the zip sizes.
    #[arg(long)]
    zips: Option<PathBuf>,
    /// What the zips are, for the report.
    #[arg(long, default_value = "not measured")]
    zip_source: String,
    /// The baseline scripts.
    #[arg(long, default_value = "bench/baseline")]
    baseline_dir: PathBuf,
    /// Process generations of our functions (four deployments each).
    #[arg(long, default_value_t = 5)]
    generations: usize,
    /// Whole canary deployments of the baseline.
    #[arg(long, default_value_t = 3)]
    baseline_deployments: usize,
    /// Processes per baseline Python function.
    #[arg(long, default_value_t = 5)]
    python_processes: usize,
    /// Calls per baseline Python process.
    #[arg(long, default_value_t = 10)]
    python_calls: usize,
    /// Seconds between error onsets in the reaction-time runs.
    #[arg(long, default_value_t = 5)]
    onset_step: i64,
    /// Seconds after its minute ends that a metric datapoint is published.
    #[arg(long, default_value_t = 60)]
    delay: i64,
    /// Only the virtual-clock parts (no moto, no binaries, no baseline scripts).
    #[arg(long)]
    skip_real: bool,
}

fn spread(v: impl IntoIterator<Item = f64>) -> Option<Spread> {
    Spread::of(&v.into_iter().collect::<Vec<_>>())
}

fn one(x: f64) -> Option<Spread> {
    Spread::of(&[x])
}

fn add(a: Option<Spread>, b: Option<Spread>) -> Option<Spread> {
    let (a, b) = (a?, b?);
    Some(Spread {
        n: a.n.min(b.n),
        min: a.min + b.min,
        median: a.median + b.median,
        max: a.max + b.max,
    })
}

fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

async fn reactions(
    cfg: &CheckConfig,
    delay: i64,
    first_shift_millis: i64,
    onsets: &[i64],
) -> Result<Vec<Reaction>, Box<dyn Error>> {
    let mut out = Vec::new();
    for &o in onsets {
        out.push(scenarios::reaction(cfg, delay, first_shift_millis, o).await?);
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let started = Instant::now();
    std::fs::create_dir_all(&args.out)?;
    let mut notes = Vec::new();

    // 3, 4, 5: the virtual-clock runs.
    eprintln!("canary-bench: virtual-clock scenarios");
    let configs = [
        CheckConfig::new(
            "seed-like: check_interval 60 s, bake_time 0",
            Some(60),
            Some(0),
        ),
        CheckConfig::new(
            "default: check_interval 60 s, bake_time 180 s (check_interval + two metric periods)",
            None,
            None,
        ),
        CheckConfig::new("check_interval 15 s", Some(15), None),
        CheckConfig::new("check_interval 10 s", Some(10), None),
        CheckConfig::new("check_interval 10 s, bake_time 180 s", Some(10), Some(180)),
    ];
    let mut calibrations = Vec::new();
    for c in &configs {
        calibrations.push(scenarios::calibrate(c, args.delay).await?);
    }
    let onsets: Vec<i64> = (0..600 / args.onset_step.max(1))
        .map(|k| k * args.onset_step.max(1))
        .collect();
    let t0 = calibrations[0].first_shift_millis;
    let original_runs: Vec<Reaction> = onsets
        .iter()
        .map(|&o| Reaction {
            onset_secs: o,
            reaction_secs: original::original_reaction(
                t0 / 1000,
                10,
                60,
                300,
                args.delay,
                t0 / 1000 + o,
            ),
            weight_at_onset: (10 * (o / 60 + 1)).min(100) as u64,
        })
        .collect();
    let mut reaction = vec![ReactionRow::new(
        "original: check after each wait_time, none at 100%",
        "exact rule, computed",
        original_runs,
    )];
    for (c, cal) in configs.iter().zip(&calibrations) {
        eprintln!("canary-bench: reaction times, {}", c.name);
        let runs = reactions(c, args.delay, cal.first_shift_millis, &onsets).await?;
        let label = format!("ours, {}", c.name);
        reaction.push(ReactionRow::new(
            &label,
            "our executor + handlers, simulated",
            runs,
        ));
    }
    let deploy = serde_json::json!({"percentage_step": 10, "wait_time": 60});
    let original_flow = vec![
        original::run_flow(&deploy, None).await?,
        original::run_flow(&deploy, Some(3)).await?,
    ];

    // 1, 2: the real binaries and the baseline on real peers.
    let our_memory = cost::our_memory_mb();
    let real = if args.skip_real {
        None
    } else {
        eprintln!("canary-bench: real binaries and the baseline (moto, simulated cluster)");
        let work = args.out.join("work");
        std::fs::create_dir_all(&work)?;
        let cfg = RealConfig {
            bin_dir: std::fs::canonicalize(&args.bin_dir)?,
            baseline_dir: std::fs::canonicalize(&args.baseline_dir)?,
            work: std::fs::canonicalize(&work)?,
            generations: args.generations,
            baseline_deployments: args.baseline_deployments,
            python_processes: args.python_processes,
            python_calls: args.python_calls,
            memory_mb: our_memory.clone(),
        };
        Some(real::run(&cfg).await?)
    };

    let default_cal = &calibrations[1];
    let mut functions = Vec::new();
    for f in FUNCTIONS {
        let size = |p: PathBuf| std::fs::metadata(p).ok().map(|m| m.len());
        let inv: Vec<_> = real
            .iter()
            .flat_map(|r| r.ours.invocations.iter())
            .filter(|i| i.function == f)
            .collect();
        functions.push(FunctionRow {
            function: f.to_owned(),
            memory_mb: our_memory.get(f).copied().unwrap_or(0),
            binary_bytes: size(args.bin_dir.join(f)),
            zip_bytes: args
                .zips
                .as_ref()
                .and_then(|z| size(z.join(format!("{f}.zip")))),
            cold_start_ms: spread(inv.iter().filter_map(|i| i.cold_start_ms)),
            init_ms: spread(inv.iter().filter_map(|i| i.init_ms)),
            warm_ms: spread(inv.iter().filter(|i| !i.cold).map(|i| i.duration_ms)),
            peak_rss_mib: spread(
                real.iter()
                    .flat_map(|r| r.ours.peak_rss_kib.get(f).into_iter().flatten())
                    .map(|k| *k as f64 / 1024.0),
            ),
            api_requests: spread(inv.iter().map(|i| i.requests as f64)),
            failed: inv.iter().filter(|i| !i.ok).count(),
        });
    }
    let mut comparisons = Vec::new();
    let mut cost_table = BTreeMap::new();
    if let Some(real) = &real {
        compare_real(
            real,
            &functions,
            default_cal,
            &original_flow,
            &our_memory,
            &mut comparisons,
            &mut cost_table,
            &mut notes,
        );
    }
    let shift_req = default_cal
        .requests_by_function
        .get("shift-weights")
        .copied()
        .unwrap_or(0) as f64
        / default_cal
            .invocations
            .get("shift-weights")
            .copied()
            .unwrap_or(1)
            .max(1) as f64;
    let shift_writes = default_cal
        .writes_by_function
        .get("shift-weights")
        .copied()
        .unwrap_or(0) as f64
        / default_cal
            .invocations
            .get("shift-weights")
            .copied()
            .unwrap_or(1)
            .max(1) as f64;
    let base_steps: Vec<_> = real
        .iter()
        .flat_map(|r| r.baseline.steps.iter())
        .filter(|s| {
            s.function == "deploy-and-switch" && !s.fresh_discovery_cache && s.deployment > 1
        })
        .collect();
    comparisons.push(Versus::new_pub(
        "API requests per weight shift",
        one(shift_req),
        spread(base_steps.iter().map(|s| s.requests as f64)),
    ));
    comparisons.push(Versus::new_pub(
        "API writes per weight shift",
        one(shift_writes),
        spread(base_steps.iter().map(|s| s.writes as f64)),
    ));
    let per_deployment: BTreeMap<usize, (usize, usize)> = real
        .iter()
        .flat_map(|r| r.baseline.steps.iter())
        .filter(|s| s.deployment > 1)
        .fold(BTreeMap::new(), |mut m, s| {
            let e = m.entry(s.deployment).or_insert((0, 0));
            e.0 += s.requests;
            e.1 += s.writes;
            m
        });
    comparisons.push(Versus::new_pub(
        "API requests per deployment",
        one(default_cal.requests as f64),
        spread(per_deployment.values().map(|(r, _)| *r as f64)),
    ));
    comparisons.push(Versus::new_pub(
        "API writes per deployment",
        one(default_cal.writes as f64),
        spread(per_deployment.values().map(|(_, w)| *w as f64)),
    ));
    comparisons.push(Versus::new_pub(
        "state transitions per deployment",
        one(default_cal.transitions as f64),
        one(original_flow[0].transitions as f64),
    ));

    notes.push(format!(
        "Metric datapoints: one per minute, aligned to the minute, visible {} s after the minute ends (CloudWatch Logs metric filters); errors start at the onset with 25% of the canary's requests answered 5xx.",
        args.delay
    ));
    notes.push("The original's reaction is its exact rule: checks only after each 60 s wait (9 checks, none after the shift to 100%), each reading the per-minute 5xx sum of the last 300 s; onsets after its last useful check are never rolled back (the faulty version is promoted).".into());
    notes.push("Onsets are counted from the canary's first traffic (the shift to 10%) and run every 5 s for 600 s: the original's rollout (9 steps of 60 s, then 100% with no further check) and the first minute at 100%; our default rollout goes on to 720 s (a 180 s bake at 100%).".into());

    let results = Results {
        date: today(),
        machine: Machine::detect(),
        zip_source: args.zip_source.clone(),
        metric_delay_secs: args.delay,
        functions,
        comparisons,
        reaction,
        cost: cost_table,
        calibrations,
        original_flow,
        real,
        notes,
        wall_secs: started.elapsed().as_secs_f64(),
    };
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let md = report::markdown(&results);
    std::fs::write(args.out.join("results.md"), &md)?;
    std::fs::write(args.out.join("summary.md"), report::summary(&results))?;
    println!("{md}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn compare_real(
    real: &RealRun,
    functions: &[FunctionRow],
    cal: &scenarios::Calibration,
    original_flow: &[original::OriginalRun],
    our_memory: &BTreeMap<String, u32>,
    comparisons: &mut Vec<Versus>,
    cost_table: &mut BTreeMap<String, cost::DeploymentCost>,
    notes: &mut Vec<String>,
) {
    let row = |name: &str| functions.iter().find(|r| r.function == name);
    let warm = |name: &str| row(name).and_then(|r| r.warm_ms);
    let cold = |name: &str| row(name).and_then(|r| r.cold_start_ms);
    let steps = |cache_fresh: Option<bool>| {
        spread(
            real.baseline
                .steps
                .iter()
                .filter(|s| s.function == "deploy-and-switch")
                .filter(|s| cache_fresh.is_none_or(|f| s.fresh_discovery_cache == f))
                .map(|s| s.ms),
        )
    };
    let python = |f: &str, cold_start: bool| {
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
    };
    let remove = spread(
        real.baseline
            .steps
            .iter()
            .filter(|s| s.function == "remove-old-version")
            .map(|s| s.ms),
    );
    let switch_warm = steps(Some(false));
    comparisons.push(Versus::new_pub(
        "time per step, warm (ms): weight shift + health check",
        add(warm("shift-weights"), warm("health-check")),
        add(switch_warm, python("gather_health", false)),
    ));
    comparisons.push(Versus::new_pub(
        "time per step, cold (ms): weight shift + health check",
        add(cold("shift-weights"), cold("health-check")),
        add(steps(None), python("gather_health", true)),
    ));

    // Per deployment: the invocations of one promoted yelb-appserver deployment, each at
    // its function's median (warm), or with one cold start per function.
    let mut ours_lines = Vec::new();
    let mut ours_warm_ms = 0.0;
    let mut ours_cold_extra = 0.0;
    for (f, n) in &cal.invocations {
        let w = warm(f).map_or(0.0, |s| s.median);
        let c = cold(f).map_or(w, |s| s.median);
        ours_warm_ms += *n as f64 * w;
        ours_cold_extra += c - w;
        ours_lines.push((f.clone(), *n, w, our_memory.get(f).copied().unwrap_or(256)));
    }
    let orig = &original_flow[0].invocations;
    let orig_ms =
        |f: &str, warm_ms: f64| (f.to_owned(), orig.get(f).copied().unwrap_or(0), warm_ms);
    let om = cost::original_memory_mb();
    let orig_parts = [
        orig_ms(
            "check-version",
            python("check_version", false).map_or(0.0, |s| s.median),
        ),
        orig_ms("deploy-and-switch", switch_warm.map_or(0.0, |s| s.median)),
        orig_ms(
            "gather-health",
            python("gather_health", false).map_or(0.0, |s| s.median),
        ),
        orig_ms("remove-or-rollback", remove.map_or(0.0, |s| s.median)),
        orig_ms(
            "update-version",
            python("update_version", false).map_or(0.0, |s| s.median),
        ),
    ];
    let orig_cold_extra: f64 = [
        ("check_version", "check-version"),
        ("gather_health", "gather-health"),
        ("update_version", "update-version"),
    ]
    .iter()
    .map(|(p, _)| {
        python(p, true).map_or(0.0, |s| s.median) - python(p, false).map_or(0.0, |s| s.median)
    })
    .sum();
    let orig_warm_ms: f64 = orig_parts.iter().map(|(_, n, ms)| *n as f64 * ms).sum();
    comparisons.push(Versus::new_pub(
        "compute time per deployment, warm (s)",
        one(ours_warm_ms / 1000.0),
        one(orig_warm_ms / 1000.0),
    ));
    comparisons.push(Versus::new_pub(
        "compute time per deployment, one cold start per function (s)",
        one((ours_warm_ms + ours_cold_extra) / 1000.0),
        one((orig_warm_ms + orig_cold_extra) / 1000.0),
    ));
    let ours_mem = spread(
        functions
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
    comparisons.push(Versus::new_pub(
        "peak RSS of a function's largest process (MiB)",
        ours_mem,
        orig_mem,
    ));

    let ours_cost = cost::deployment_cost(cal.transitions, &ours_lines, LAMBDA_ARM_PER_GB_S);
    let orig_lines: Vec<(String, usize, f64, u32)> = orig_parts
        .iter()
        .map(|(f, n, ms)| (f.clone(), *n, *ms, om.get(f).copied().unwrap_or(128)))
        .collect();
    let orig_cost = cost::deployment_cost(
        original_flow[0].transitions,
        &orig_lines,
        LAMBDA_X86_PER_GB_S,
    );
    comparisons.push(Versus::new_pub(
        "cost per deployment (US$)",
        one(ours_cost.total_usd),
        one(orig_cost.total_usd),
    ));
    comparisons.push(Versus::new_pub(
        "Lambda GB-seconds per deployment",
        one(ours_cost.lambda_gb_s),
        one(orig_cost.lambda_gb_s),
    ));
    cost_table.insert("eks-canary (arm64, warm medians)".into(), ours_cost);
    cost_table.insert("original (x86_64, warm medians)".into(), orig_cost);
    let fresh = steps(Some(true));
    if let Some(f) = fresh {
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
}
