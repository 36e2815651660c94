//! `canary-bench`: runs the benchmarks (see the crate docs and `scripts/bench`) and
//! writes `results.json`, `results.md` (the full tables) and `summary.md` into `--out`.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use canary_bench::cost::{self, LAMBDA_ARM_PER_GB_S, LAMBDA_X86_PER_GB_S};
use canary_bench::false_alarms;
use canary_bench::load::{self, LoadConfig};
use canary_bench::original;
use canary_bench::real::{self, FUNCTIONS, RealConfig, RealRun};
use canary_bench::report::{self, CostRow, FunctionRow, Machine, ReactionRow, Results, Versus};
use canary_bench::scenarios::{self, CheckConfig, Reaction};
use canary_bench::scraped::SCRAPE_INTERVAL_SECS;
use canary_bench::stats::Spread;
use clap::Parser;

// The rows that compare the real runs with the original design (binary-only, beside the library's modules).
mod versus;
use versus::*;

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
    /// Simulated deployments per rule and canary in the false-alarm runs.
    #[arg(long, default_value_t = 2000)]
    false_alarm_deployments: usize,
    /// Seed of the false-alarm runs' random traffic.
    #[arg(long, default_value_t = 20_261_127)]
    seed: u64,
    /// Skip the load section (many services deployed at once against moto).
    #[arg(long)]
    skip_load: bool,
    /// Run only the load section; writes load.json and load.md into --out.
    #[arg(long)]
    only_load: bool,
    /// Services deployed at once in the load section.
    #[arg(long, default_value_t = 50)]
    load_services: usize,
    /// Of which raced by a second execution of the same version.
    #[arg(long, default_value_t = 5)]
    load_racing: usize,
}

/// The load section: its report, written to load.json and load.md, and its markdown.
async fn load_section(args: &Args) -> Result<String, Box<dyn Error>> {
    let config = LoadConfig::with_services(args.load_services, args.load_racing);
    eprintln!(
        "canary-bench: load, {} services at once ({} raced) against moto",
        config.services, config.racing
    );
    let report = load::bench(&config).await?;
    let machine = Machine::detect();
    let md = format!(
        "Measured on {} on {} ({} CPUs, {} MiB, Linux {}).\n\n{}",
        today(),
        machine.cpu,
        machine.nproc,
        machine.memory_mib,
        machine.kernel,
        report.markdown()
    );
    std::fs::write(
        args.out.join("load.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    std::fs::write(args.out.join("load.md"), &md)?;
    Ok(md)
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

/// The virtual-clock runs: every configuration's calibration and reaction times, the
/// original's exact rule on the same onsets, and the original's flow.
struct VirtualRuns {
    calibrations: Vec<scenarios::Calibration>,
    /// The default, 15 s and 10 s settings with the handlers' defaults (waits of 30 s
    /// or less inside health-check), then 15 s and 10 s with Wait states only.
    cost_calibrations: Vec<(scenarios::Calibration, &'static str)>,
    reaction: Vec<ReactionRow>,
    original_flow: Vec<original::OriginalRun>,
}

/// The configurations the virtual-clock runs compare (the CloudWatch ones first; the
/// default is the second).
fn configs() -> [CheckConfig; 6] {
    [
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
        CheckConfig::new(
            "Prometheus scraped every 15 s, check_interval 10 s, failure_threshold_time 60 s",
            Some(10),
            None,
        )
        .with_prometheus(SCRAPE_INTERVAL_SECS, 60),
    ]
}

/// 3, 4, 5: the virtual-clock runs.
async fn virtual_runs(args: &Args) -> Result<VirtualRuns, Box<dyn Error>> {
    eprintln!("canary-bench: virtual-clock scenarios");
    let configs = configs();
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
        let method = match c.prometheus_scrape_secs {
            Some(s) => format!(
                "our executor + handlers, simulated; counters scraped every {s} s, read as increase over the window"
            ),
            None => "our executor + handlers, simulated".to_owned(),
        };
        reaction.push(ReactionRow::new(&label, &method, runs));
    }
    let mut cost_calibrations = Vec::new();
    for (i, cal) in calibrations.iter().enumerate().skip(1).take(3) {
        cost_calibrations.push((cal.clone(), CHOSEN_WAY));
        if i > 1 {
            let waits = configs[i].clone().with_inline_max_wait(0);
            eprintln!("canary-bench: {} with Wait states only", waits.name);
            cost_calibrations.push((scenarios::calibrate(&waits, args.delay).await?, WAIT_STATES));
        }
    }
    let deploy = serde_json::json!({"percentage_step": 10, "wait_time": 60});
    let original_flow = vec![
        original::run_flow(&deploy, None).await?,
        original::run_flow(&deploy, Some(3)).await?,
    ];
    Ok(VirtualRuns {
        calibrations,
        cost_calibrations,
        reaction,
        original_flow,
    })
}

/// The shipped way of waiting between checks.
const CHOSEN_WAY: &str =
    "shipped: inside health-check when due within 30 s (60 s per invocation), else Wait states";
/// Every wait between checks in the state machine.
const WAIT_STATES: &str = "Wait states only";

/// Our cost per deployment for the default, 15 s and 10 s checks, both ways of waiting,
/// beside the original's at its 60 s checks.
fn cost_rows(
    runs: &VirtualRuns,
    memory: &BTreeMap<String, u32>,
    original: &cost::DeploymentCost,
) -> Vec<CostRow> {
    runs.cost_calibrations
        .iter()
        .map(|(cal, way)| {
            let c = cost::billed_cost(
                cal.transitions,
                &cal.invocations,
                &cal.billed_ms_by_function,
                memory,
            );
            CostRow {
                config: cal.config.name.clone(),
                way: (*way).to_owned(),
                health_checks: cal.health_checks,
                ratio: original.total_usd / c.total_usd.max(f64::MIN_POSITIVE),
                original_usd: original.total_usd,
                cost: c,
                ready_to_first_shift_millis: cal.ready_to_first_shift_millis,
            }
        })
        .collect()
}

/// 1, 2: the real binaries and the baseline on real peers (unless `--skip-real`).
async fn real_runs(
    args: &Args,
    our_memory: &BTreeMap<String, u32>,
) -> Result<Option<RealRun>, Box<dyn Error>> {
    if args.skip_real {
        return Ok(None);
    }
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
    Ok(Some(real::run(&cfg).await?))
}

/// One row per function: sizes, and the real runs' times, memory and requests.
fn function_rows(
    args: &Args,
    real: Option<&RealRun>,
    our_memory: &BTreeMap<String, u32>,
) -> Vec<FunctionRow> {
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
    functions
}

/// Route requests (or writes) per shift: those of the tasks that shift, over the shifts.
fn per_shift(count: usize, cal: &scenarios::Calibration) -> f64 {
    count as f64 / cal.shift_count.max(1) as f64
}

/// The cluster API and state transitions, ours (the default calibration) against the
/// baseline's steps and the original's flow.
fn cluster_comparisons(
    cal: &scenarios::Calibration,
    real: Option<&RealRun>,
    original_flow: &[original::OriginalRun],
) -> Vec<Versus> {
    let shift_req = per_shift(cal.shift_route_requests, cal);
    let shift_writes = per_shift(cal.shift_route_writes, cal);
    let base_steps: Vec<_> = real
        .iter()
        .flat_map(|r| r.baseline.steps.iter())
        .filter(|s| {
            s.function == "deploy-and-switch" && !s.fresh_discovery_cache && s.deployment > 1
        })
        .collect();
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
    vec![
        Versus::new_pub(
            "API requests per weight shift",
            one(shift_req),
            spread(base_steps.iter().map(|s| s.requests as f64)),
        ),
        Versus::new_pub(
            "API writes per weight shift",
            one(shift_writes),
            spread(base_steps.iter().map(|s| s.writes as f64)),
        ),
        Versus::new_pub(
            "API requests per deployment",
            one(cal.requests as f64),
            spread(per_deployment.values().map(|(r, _)| *r as f64)),
        ),
        Versus::new_pub(
            "API writes per deployment",
            one(cal.writes as f64),
            spread(per_deployment.values().map(|(_, w)| *w as f64)),
        ),
        Versus::new_pub(
            "state transitions per deployment",
            one(cal.transitions as f64),
            one(original_flow[0].transitions as f64),
        ),
    ]
}

/// How the reaction-time and false-alarm runs were made, for the report.
fn method_notes(delay: i64) -> [String; 5] {
    [
        format!(
            "Metric datapoints (CloudWatch rows): one per minute, aligned to the minute, visible {delay} s after the minute ends (CloudWatch Logs metric filters); errors start at the onset with 25% of the canary's requests answered 5xx."
        ),
        format!(
            "Prometheus row: deploy.json names source `prometheus` (preset envoy); the benchmark's source scrapes each version's counters every {SCRAPE_INTERVAL_SECS} s (aligned to the minute) and answers increase over the window as counter(last scrape <= t) - counter(last scrape <= t - window), without Prometheus's extrapolation; errors are visible from the first scrape after the onset."
        ),
        "False alarms: the real decisions (canary-core's Deployment) and verdicts over simulated deployments of yelb-appserver (10% steps of 60 s, check_interval 10 s, failure_threshold_time 60 s, the default bake of 130 s); 20 requests/s split by the canary's weight, each request's version and failure drawn at random (SplitMix64), all on stable before the first shift; each check sees both versions' exact counts of its window.".into(),
        "The original's reaction is its exact rule: checks only after each 60 s wait (9 checks, none after the shift to 100%), each reading the per-minute 5xx sum of the last 300 s; onsets after its last useful check are never rolled back (the faulty version is promoted).".into(),
        "Onsets are counted from the canary's first traffic (the shift to 10%) and run every 5 s for 600 s: the original's rollout (9 steps of 60 s, then 100% with no further check) and the first minute at 100%; our default rollout goes on to 720 s (a 180 s bake at 100%).".into(),
    ]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    let started = Instant::now();
    std::fs::create_dir_all(&args.out)?;
    if args.only_load {
        println!("{}", load_section(&args).await?);
        return Ok(());
    }
    let mut notes = Vec::new();

    let runs = virtual_runs(&args).await?;
    eprintln!(
        "canary-bench: false alarms, {} deployments per rule and canary",
        args.false_alarm_deployments
    );
    let false_alarms = false_alarms::all(args.false_alarm_deployments, args.seed)?;
    let our_memory = cost::our_memory_mb();
    let real = real_runs(&args, &our_memory).await?;
    let default_cal = &runs.calibrations[1];
    let functions = function_rows(&args, real.as_ref(), &our_memory);
    let mut comparisons = Vec::new();
    let mut cost_table = BTreeMap::new();
    if let Some(real) = &real {
        let ours = Ours {
            functions: &functions,
            cal: default_cal,
            memory: &our_memory,
        };
        comparisons.extend(step_comparisons(real, &ours));
        let (versus, costs) = deployment_comparisons(real, &ours, &runs.original_flow);
        comparisons.extend(versus);
        cost_table = costs;
        notes.extend(real_notes(real, &functions));
    }
    comparisons.extend(cluster_comparisons(
        default_cal,
        real.as_ref(),
        &runs.original_flow,
    ));
    notes.extend(method_notes(args.delay));
    let measured_original = cost_table
        .get("original (x86_64, warm medians)")
        .map(|c| c.lambda_gb_s);
    let original_lambda_basis = match measured_original {
        Some(gb_s) => format!("{gb_s:.4} GB-s (x86_64), measured in this run (warm medians)"),
        None => format!(
            "{} GB-s (x86_64), as measured on 2026-11-27 (docs/benchmarks.md; this run skipped the real measurements)",
            cost::ORIGINAL_GB_S_MEASURED
        ),
    };
    let original = &runs.original_flow[0];
    let original_cost = cost::original_cost(
        original.transitions,
        original.invocations.values().sum(),
        measured_original.unwrap_or(cost::ORIGINAL_GB_S_MEASURED),
    );
    let cost_per_interval = cost_rows(&runs, &our_memory, &original_cost);

    let results = Results {
        date: today(),
        machine: Machine::detect(),
        zip_source: args.zip_source.clone(),
        metric_delay_secs: args.delay,
        functions,
        comparisons,
        reaction: runs.reaction,
        false_alarms,
        cost: cost_table,
        cost_per_interval,
        original_lambda_basis,
        calibrations: runs.calibrations,
        original_flow: runs.original_flow,
        real,
        notes,
        wall_secs: started.elapsed().as_secs_f64(),
    };
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    let mut md = report::markdown(&results);
    if !args.skip_load {
        md.push('\n');
        md.push_str(&load_section(&args).await?);
    }
    std::fs::write(args.out.join("results.md"), &md)?;
    std::fs::write(args.out.join("summary.md"), report::summary(&results))?;
    println!("{md}");
    Ok(())
}
