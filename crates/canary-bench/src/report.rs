//! The results: what the benchmark derives from its measurements (spreads, ratios,
//! costs) and the markdown tables that `scripts/bench` prints and `docs/benchmarks.md`
//! quotes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::cost::DeploymentCost;
use crate::false_alarms::FalseAlarmRow;
use crate::original::OriginalRun;
use crate::real::RealRun;
use crate::scenarios::{Calibration, Reaction};
use crate::stats::Spread;

/// The machine the benchmark ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// MemTotal, MiB.
    pub memory_mib: u64,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// This machine.
    pub fn detect() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned());
        let memory_mib = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        Self {
            nproc: std::thread::available_parallelism().map_or(0, usize::from),
            cpu,
            memory_mib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }
}

/// One of our functions, per invocation.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionRow {
    /// The function.
    pub function: String,
    /// Memory size in the shared stack, MB.
    pub memory_mb: u32,
    /// Size of the host release binary, bytes.
    pub binary_bytes: Option<u64>,
    /// Size of its zip, bytes.
    pub zip_bytes: Option<u64>,
    /// Process start to first response, ms.
    pub cold_start_ms: Option<Spread>,
    /// Of which init (process start to asking for the first event), ms.
    pub init_ms: Option<Spread>,
    /// Warm invocations, ms.
    pub warm_ms: Option<Spread>,
    /// Peak RSS per process, MiB.
    pub peak_rss_mib: Option<Spread>,
    /// API requests to the cluster per invocation.
    pub api_requests: Option<Spread>,
    /// Invocations that returned an error (should be 0).
    pub failed: usize,
}

/// A number for ours, the original's, and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Versus {
    /// What.
    pub what: String,
    /// Ours.
    pub ours: Option<Spread>,
    /// The original's.
    pub original: Option<Spread>,
    /// original median / our median (how many times more the original needs).
    pub ratio: Option<f64>,
}

impl Versus {
    /// A comparison; the ratio is original median ÷ our median.
    pub fn new_pub(what: &str, ours: Option<Spread>, original: Option<Spread>) -> Self {
        Self {
            what: what.to_owned(),
            ratio: crate::stats::ratio(original, ours),
            ours,
            original,
        }
    }
}

/// Reaction times of one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct ReactionRow {
    /// The flow and its settings.
    pub config: String,
    /// How the numbers were obtained.
    pub method: String,
    /// Onsets tried.
    pub onsets: usize,
    /// Onsets that ended with all traffic back on stable.
    pub detected: usize,
    /// Seconds from onset to all traffic on stable, over the detected onsets.
    pub seconds: Option<Spread>,
    /// Every onset and its reaction.
    pub runs: Vec<Reaction>,
}

impl ReactionRow {
    /// A row from runs.
    pub fn new(config: &str, method: &str, runs: Vec<Reaction>) -> Self {
        let detected: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.reaction_secs.map(|s| s as f64))
            .collect();
        Self {
            config: config.to_owned(),
            method: method.to_owned(),
            onsets: runs.len(),
            detected: detected.len(),
            seconds: Spread::of(&detected),
            runs,
        }
    }
}

/// Everything the benchmark found.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// When (UTC date).
    pub date: String,
    /// Where.
    pub machine: Machine,
    /// What the zips are.
    pub zip_source: String,
    /// Publication delay of a metric datapoint after its minute, s.
    pub metric_delay_secs: i64,
    /// Per function.
    pub functions: Vec<FunctionRow>,
    /// Per step, per deployment and API requests, ours against the original's.
    pub comparisons: Vec<Versus>,
    /// Reaction times.
    pub reaction: Vec<ReactionRow>,
    /// Healthy canaries rolled back and worse ones caught, per rule.
    pub false_alarms: Vec<FalseAlarmRow>,
    /// Cost per deployment: ours (warm, with one cold start per function), original's.
    pub cost: BTreeMap<String, DeploymentCost>,
    /// Cost per deployment per check interval, ours (both ways of waiting between
    /// checks) beside the original's at its 60 s checks.
    pub cost_per_interval: Vec<CostRow>,
    /// Where the original's Lambda bill in `cost_per_interval` comes from.
    pub original_lambda_basis: String,
    /// Healthy runs of our flow, per check configuration.
    pub calibrations: Vec<Calibration>,
    /// The original's flow model.
    pub original_flow: Vec<OriginalRun>,
    /// The raw real-peer measurements (absent with --skip-real).
    pub real: Option<RealRun>,
    /// Assumptions and notes, each one sentence.
    pub notes: Vec<String>,
    /// Wall time of the benchmark, s.
    pub wall_secs: f64,
}

/// One configuration's cost per deployment beside the original's.
#[derive(Debug, Clone, Serialize)]
pub struct CostRow {
    /// The check settings.
    pub config: String,
    /// How the waits between checks are made.
    pub way: String,
    /// Health checks of the deployment.
    pub health_checks: u32,
    /// Ours: transitions, Lambda requests and billed GB-seconds, dollars.
    pub cost: DeploymentCost,
    /// The original's total at its 60 s checks, dollars.
    pub original_usd: f64,
    /// Original ÷ ours.
    pub ratio: f64,
    /// From readiness to the first weight written, ms.
    pub ready_to_first_shift_millis: Option<i64>,
}

fn opt(s: Option<Spread>, digits: usize) -> String {
    s.map_or_else(|| "n/a".to_owned(), |s| s.show(digits))
}

/// Enough decimals for the size of the number.
fn auto(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 || a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 1.0 {
        format!("{x:.1}")
    } else if a >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.6}")
    }
}

/// `min / median / max`, or the one value when they agree.
fn spread_auto(s: Option<Spread>) -> String {
    match s {
        None => "n/a".to_owned(),
        Some(s) if s.min == s.max => auto(s.median),
        Some(s) => format!("{} / {} / {}", auto(s.min), auto(s.median), auto(s.max)),
    }
}

fn med(s: Option<Spread>, digits: usize) -> String {
    s.map_or_else(
        || "n/a".to_owned(),
        |s| format!("{:.d$}", s.median, d = digits),
    )
}

fn kib(b: Option<u64>) -> String {
    b.map_or_else(|| "n/a".to_owned(), |b| format!("{:.0}", b as f64 / 1024.0))
}

/// The markdown report: the machine, then one table after another.
pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    let m = &r.machine;
    let _ = writeln!(
        out,
        "Run on {} — {} × {}, {} MiB RAM, Linux {} — in {:.0} s. Spreads are min / median / max; ratios compare medians (original ÷ ours).\n",
        r.date, m.nproc, m.cpu, m.memory_mib, m.kernel, r.wall_secs
    );
    functions_table(&mut out, r);
    comparisons_table(&mut out, r);
    reaction_table(&mut out, r);
    false_alarm_table(&mut out, r);
    flows_table(&mut out, r);
    cost_per_interval_table(&mut out, r);
    cost_table(&mut out, r);
    notes_list(&mut out, r);
    out
}

/// Per invocation: our six functions.
fn functions_table(out: &mut String, r: &Results) {
    let _ = writeln!(
        *out,
        "### Per invocation (our six functions, release binaries under a local Lambda Runtime API)\n"
    );
    let _ = writeln!(
        *out,
        "| function | memory | binary KiB | zip KiB | cold start ms | of which init ms | warm ms | peak RSS MiB | API requests |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for f in &r.functions {
        let _ = writeln!(
            *out,
            "| {} | {} MB | {} | {} | {} | {} | {} | {} | {} |",
            f.function,
            f.memory_mb,
            kib(f.binary_bytes),
            kib(f.zip_bytes),
            opt(f.cold_start_ms, 1),
            opt(f.init_ms, 1),
            opt(f.warm_ms, 1),
            opt(f.peak_rss_mib, 1),
            opt(f.api_requests, 0),
        );
    }
    let _ = writeln!(*out, "\nZips: {}.\n", r.zip_source);
}

/// Ours against the original, same machine and peers.
fn comparisons_table(out: &mut String, r: &Results) {
    let _ = writeln!(
        *out,
        "### Ours against the original, same machine, same moto and simulated cluster\n"
    );
    let _ = writeln!(
        *out,
        "| what | ours | original | original ÷ ours |\n|---|---:|---:|---:|"
    );
    for v in &r.comparisons {
        let _ = writeln!(
            *out,
            "| {} | {} | {} | {} |",
            v.what,
            spread_auto(v.ours),
            spread_auto(v.original),
            v.ratio
                .map_or_else(|| "n/a".to_owned(), |x| format!("{x:.2}×"))
        );
    }
}

/// Reaction time from an error onset to all traffic back on stable.
fn reaction_table(out: &mut String, r: &Results) {
    let _ = writeln!(
        *out,
        "\n### Reaction time: error onset to all traffic back on stable (yelb-appserver: 10% steps, 60 s wait; CloudWatch rows: 300 s window, datapoints per minute, published {} s after the minute; Prometheus row: 60 s window, counters scraped every 15 s)\n",
        r.metric_delay_secs
    );
    let _ = writeln!(
        *out,
        "| flow | how | onsets | rolled back | seconds (min / median / max) |\n|---|---|---:|---:|---:|"
    );
    for x in &r.reaction {
        let _ = writeln!(
            *out,
            "| {} | {} | {} | {} | {} |",
            x.config,
            x.method,
            x.onsets,
            x.detected,
            opt(x.seconds, 0)
        );
    }
}

/// `12.3%` of a row.
fn percent(x: &FalseAlarmRow) -> String {
    format!("{:.1}%", x.share() * 100.0)
}

/// `rule: n` of what decided the rollbacks.
fn decided(x: &FalseAlarmRow) -> String {
    x.decided_by
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Healthy canaries rolled back (false alarms) and worse ones caught, per rule.
fn false_alarm_table(out: &mut String, r: &Results) {
    if r.false_alarms.is_empty() {
        return;
    }
    let _ = writeln!(
        *out,
        "\n### False alarms and catches: deployments rolled back per rule (yelb-appserver: 10% steps of 60 s, check_interval 10 s, 60 s window, 20 requests/s, random counts)\n"
    );
    let _ = writeln!(
        *out,
        "| rule | canary / stable errors | deployments | rolled back | share | at second (min / median / max) | at weight (median) | decided by |\n|---|---|---:|---:|---:|---:|---:|---|"
    );
    for x in &r.false_alarms {
        let _ = writeln!(
            *out,
            "| {} | {:.0}% / {:.0}%{} | {} | {} | {} | {} | {} | {} |",
            x.rule,
            x.traffic.canary_error_rate * 100.0,
            x.traffic.stable_error_rate * 100.0,
            if x.healthy_canary {
                " (healthy)"
            } else {
                " (worse)"
            },
            x.deployments,
            x.rolled_back,
            percent(x),
            opt(x.seconds_to_rollback, 0),
            med(x.weight_at_rollback, 0),
            decided(x)
        );
    }
}

/// Our flow per check configuration, and the original flow model.
fn flows_table(out: &mut String, r: &Results) {
    let _ = writeln!(
        *out,
        "\n### Our flow per check configuration (one healthy yelb-appserver deployment, simulated)\n"
    );
    let _ = writeln!(
        *out,
        "| configuration | state transitions | Step Functions $ | health checks | Lambda invocations | API requests | API writes | virtual duration s |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in &r.calibrations {
        let _ = writeln!(
            *out,
            "| {} | {} | {:.6} | {} | {} | {} | {} | {} |",
            c.config.name,
            c.transitions,
            c.transitions as f64 * crate::cost::SFN_PER_TRANSITION,
            c.health_checks,
            c.invocations.values().sum::<usize>(),
            c.requests,
            c.writes,
            c.duration_secs
        );
    }
    for o in &r.original_flow {
        let _ = writeln!(
            *out,
            "| original flow model, {} | {} | {:.6} | {} | {} | | | {} |",
            o.case,
            o.transitions,
            o.transitions as f64 * crate::cost::SFN_PER_TRANSITION,
            o.invocations.get("gather-health").copied().unwrap_or(0),
            o.invocations.values().sum::<usize>(),
            o.duration_secs
        );
    }
}

/// Cost per deployment per check interval, ours beside the original's.
fn cost_per_interval_table(out: &mut String, r: &Results) {
    if r.cost_per_interval.is_empty() {
        return;
    }
    let _ = writeln!(
        *out,
        "\n### Cost per healthy yelb-appserver deployment by check interval, beside the original at its 60 s checks (Step Functions Standard + Lambda arm64 at the stack's memory sizes, billed duration = work + waits inside, rounded up to 1 ms)\n"
    );
    let _ = writeln!(
        *out,
        "| check settings | waits between checks | health checks | state transitions | Step Functions $ | Lambda requests | Lambda GB-s | Lambda $ | total $ | original $ | original ÷ ours | readiness → first weight ms |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for c in &r.cost_per_interval {
        let _ = writeln!(
            *out,
            "| {} | {} | {} | {} | {:.6} | {} | {:.3} | {:.6} | {:.6} | {:.6} | {:.2}× | {} |",
            c.config,
            c.way,
            c.health_checks,
            c.cost.transitions,
            c.cost.sfn_usd,
            c.cost.lambda_requests,
            c.cost.lambda_gb_s,
            c.cost.lambda_usd,
            c.cost.total_usd,
            c.original_usd,
            c.ratio,
            c.ready_to_first_shift_millis
                .map_or_else(|| "n/a".to_owned(), |m| m.to_string())
        );
    }
    let _ = writeln!(
        *out,
        "\nThe original's Lambda bill: {}.",
        r.original_lambda_basis
    );
}

/// Cost per deployment.
fn cost_table(out: &mut String, r: &Results) {
    let _ = writeln!(
        *out,
        "\n### Cost per yelb-appserver deployment (10 steps of 60 s, promoted)\n"
    );
    let _ = writeln!(
        *out,
        "| flow | state transitions | Step Functions $ | Lambda requests | Lambda GB-s | Lambda $ | total $ |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (name, c) in &r.cost {
        let _ = writeln!(
            *out,
            "| {} | {} | {:.6} | {} | {:.4} | {:.7} | {:.6} |",
            name,
            c.transitions,
            c.sfn_usd,
            c.lambda_requests,
            c.lambda_gb_s,
            c.lambda_usd,
            c.total_usd
        );
    }
}

/// The notes.
fn notes_list(out: &mut String, r: &Results) {
    if !r.notes.is_empty() {
        let _ = writeln!(*out, "\nNotes:\n");
        for n in &r.notes {
            let _ = writeln!(*out, "- {n}");
        }
    }
}

/// The short table for the README.
pub fn summary(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| measure (medians) | eks-canary | original design | original ÷ ours |\n|---|---:|---:|---:|"
    );
    for v in &r.comparisons {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            v.what,
            v.ours.map_or_else(|| "n/a".to_owned(), |s| auto(s.median)),
            v.original
                .map_or_else(|| "n/a".to_owned(), |s| auto(s.median)),
            v.ratio.map_or_else(String::new, |x| format!("{x:.2}×"))
        );
    }
    for c in &r.cost_per_interval {
        let _ = writeln!(
            out,
            "| cost per deployment, {} ({}) | {} transitions, ${:.6} | {} transitions at 60 s, ${:.6} | {:.2}× |",
            c.config,
            c.way,
            c.cost.transitions,
            c.cost.total_usd,
            r.original_flow.first().map_or(0, |o| o.transitions),
            c.original_usd,
            c.ratio
        );
    }
    if let Some(ms) = r
        .cost_per_interval
        .iter()
        .filter_map(|c| c.ready_to_first_shift_millis)
        .max()
    {
        let _ = writeln!(
            out,
            "| readiness to the first weight written (15 s readiness, every configuration) | at most {ms} ms | | |"
        );
    }
    for x in &r.reaction {
        let _ = writeln!(
            out,
            "| reaction, {} ({}) | {}/{} rolled back, median {} s | | |",
            x.config,
            x.method,
            x.detected,
            x.onsets,
            med(x.seconds, 0)
        );
    }
    for x in &r.false_alarms {
        let _ = writeln!(
            out,
            "| {} canaries rolled back, canary {:.0}% / stable {:.0}% errors, {} | {} of {} ({}) | | |",
            if x.healthy_canary { "healthy" } else { "worse" },
            x.traffic.canary_error_rate * 100.0,
            x.traffic.stable_error_rate * 100.0,
            x.rule,
            x.rolled_back,
            x.deployments,
            percent(x)
        );
    }
    out
}
