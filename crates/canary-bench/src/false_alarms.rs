//! How often a health rule rolls back a canary that is no worse than its stable version
//! (false alarms), and how often it catches one that is worse (catch rate), over many
//! simulated deployments with random request and error counts.
//!
//! Each deployment is driven by the real decisions of canary-core
//! (`Deployment::after_shift` / `after_check`: the yelb-appserver schedule of 10% steps
//! held `wait_time`, a check every `check_interval`, the bake at 100%, holds and
//! `max_holds`) and every check is judged by the real verdict code
//! (`canary_metrics::judge_observation` with the deploy.json's rules). Only the traffic
//! is modelled: `requests_per_second` requests each second, each sent to the canary with
//! the canary's current weight and failing with its version's error rate (Bernoulli
//! draws from a seeded SplitMix64, so the request and error counts of a second are
//! binomial), and before the first shift everything goes to the stable version. A check
//! at `t` sees both versions' exact counts of `[t - failure_threshold_time, t)`: no
//! publication delay, no scrape alignment, so every alarm here comes from sampling noise
//! alone.

use canary_core::compare::Counts;
use canary_core::execution::{Deployment, Next, RouteRef, Start};
use canary_core::{DeploySpec, Observation, VerdictStatus};
use canary_metrics::HealthQuery;
use serde::Serialize;
use serde_json::{Value, json};

use crate::stats::Spread;

/// A small, fast, seedable generator (SplitMix64; Steele, Lea and Flood 2014), enough for
/// Bernoulli draws.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

/// The traffic of one experiment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Traffic {
    /// Requests per second to the service (both versions).
    pub requests_per_second: u32,
    /// Share of the canary's requests that fail, 0..=1.
    pub canary_error_rate: f64,
    /// Share of the stable version's requests that fail, 0..=1.
    pub stable_error_rate: f64,
}

/// One second of traffic: each version's requests and errors.
#[derive(Debug, Clone, Copy, Default)]
struct Second {
    canary: (u32, u32),
    stable: (u32, u32),
}

/// How one simulated deployment ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentRun {
    /// Rolled back (`false`: promoted).
    pub rolled_back: bool,
    /// Seconds from the first shift to the end.
    pub end_secs: i64,
    /// Health checks made.
    pub checks: u32,
    /// The canary's weight when it ended.
    pub weight: u8,
    /// The last verdict's sentence.
    pub reason: String,
    /// Which rule ended it (see [`decided_by`]).
    pub decided_by: String,
}

/// The rule a final verdict was decided by, in a few words: `promoted`, `max_error_rate`,
/// `failure_threshold_value`, `compare: z-test`, `compare: Fisher's exact test`,
/// `too few requests: no_data fail`, `too many holds`.
pub fn decided_by(d: &Deployment) -> String {
    use canary_core::compare::Method;
    let Some(v) = &d.verdict else {
        return "no check".into();
    };
    match (d.next, v.status) {
        (Next::Promote, _) => "promoted".into(),
        (_, VerdictStatus::Hold) => "too many holds (no_data hold)".into(),
        (_, VerdictStatus::Unhealthy) => match &v.comparison {
            Some(c) if c.canary_worse && c.method == Method::ZTest => "compare: z-test".into(),
            Some(c) if c.canary_worse && c.method == Method::ExactBinomial => {
                "compare: exact binomial test".into()
            }
            Some(c) if c.canary_worse => "compare: Fisher's exact test".into(),
            Some(_) if v.reason.contains("too few requests") => {
                "too few requests to compare (no_data fail)".into()
            }
            _ if v.reason.contains("max_error_rate") => "max_error_rate".into(),
            _ if v.reason.contains("failure_threshold_value") => "failure_threshold_value".into(),
            _ => "other".into(),
        },
        _ => "other".into(),
    }
}

/// Why an experiment could not run.
#[derive(Debug, thiserror::Error)]
pub enum FalseAlarmError {
    /// A rule's deploy.json was refused.
    #[error("the deploy.json of rule `{rule}` is invalid: {errors}")]
    Spec {
        /// The rule.
        rule: String,
        /// Every field error.
        errors: canary_core::ValidationErrors,
    },
    /// The decisions asked for a step the model does not drive.
    #[error(
        "the deployment asked for {next:?} after {checks} checks, which the model does not drive"
    )]
    Unexpected {
        /// What it asked for.
        next: Next,
        /// Checks so far.
        checks: u32,
    },
    /// No end after very many steps (a decision loop).
    #[error("the deployment did not end within {0} decisions")]
    NoEnd(usize),
}

/// The deploy.json settings every rule shares: the demo's yelb-appserver document
/// (10% steps, `wait_time` 60 s), `check_interval` 10 s, a window of 60 s, and
/// per-version numbers (source `prometheus`; the address is never reached).
pub fn base_document() -> Value {
    use canary_cli::harness::fixtures;
    let mut doc = fixtures::deploy_document(&fixtures::image(2));
    if let Some(map) = doc.as_object_mut() {
        map.insert("check_interval".into(), json!(10));
        map.insert("failure_threshold_time".into(), json!(60));
        map.remove("failure_threshold_value");
        map.insert(
            "metrics".into(),
            json!({"source": "prometheus", "url": "http://prometheus.invalid:9090", "preset": "envoy"}),
        );
    }
    doc
}

/// A named rule: `base_document()` with `extra` merged in (`metrics` keys merged into
/// its `metrics` section).
#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    /// A short name for the tables.
    pub name: String,
    /// The keys added to the base document.
    pub settings: Value,
}

impl Rule {
    /// A rule.
    pub fn new(name: &str, settings: Value) -> Self {
        Self {
            name: name.to_owned(),
            settings,
        }
    }

    /// The whole deploy.json.
    pub fn document(&self) -> Value {
        let mut doc = base_document();
        if let (Some(d), Some(extra)) = (doc.as_object_mut(), self.settings.as_object()) {
            for (k, v) in extra {
                match (k.as_str(), d.get_mut("metrics"), v.as_object()) {
                    ("metrics", Some(Value::Object(m)), Some(add)) => {
                        m.extend(add.clone());
                    }
                    _ => {
                        d.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        doc
    }

    /// The validated deploy.json.
    pub fn spec(&self) -> Result<DeploySpec, FalseAlarmError> {
        DeploySpec::parse(
            &self.document(),
            Some(canary_cli::harness::fixtures::TEMPLATE),
        )
        .map_err(|errors| FalseAlarmError::Spec {
            rule: self.name.clone(),
            errors,
        })
    }
}

/// The rules compared: the absolute error rate, and `compare_to_stable` (default margin
/// and confidence) under each `no_data` policy (too few requests to compare happens at
/// the first checks of the 10% step and at 100%, when the stable version gets no
/// traffic).
pub fn rules() -> Vec<Rule> {
    vec![
        Rule::new(
            "absolute: max_error_rate 1%",
            // A count of errors is no rule here: only the rate decides.
            json!({"max_error_rate": 1, "failure_threshold_value": canary_core::spec::NO_COUNT_LIMIT}),
        ),
        Rule::new(
            "compare_to_stable (margin 1 point, 95%), no_data pass",
            json!({"metrics": {"compare_to_stable": true}, "no_data": "pass"}),
        ),
        Rule::new(
            "compare_to_stable (margin 1 point, 95%), no_data hold (the default)",
            json!({"metrics": {"compare_to_stable": true}}),
        ),
        Rule::new(
            "compare_to_stable (margin 1 point, 95%), no_data fail",
            json!({"metrics": {"compare_to_stable": true}, "no_data": "fail"}),
        ),
    ]
}

/// The deployment's start: v2 beside a stable v1.
fn start(spec: &DeploySpec) -> Deployment {
    let provider = canary_core::provider::REGISTRY[0];
    let mut d = Deployment::start(
        spec,
        Start {
            execution: "bench".into(),
            canary_version: 2,
            stable_version: Some(1),
            stable_image: None,
            provider,
            route: RouteRef {
                api_version: "appmesh.k8s.aws/v1beta2".into(),
                kind: "VirtualRouter".into(),
                name: spec.microservice_name.clone(),
            },
            lock_token: "bench".into(),
            manifest_key: None,
            record_key: None,
        },
        0,
    );
    // Applied and ready: the first shift comes next, at time 0.
    d.next = Next::Shift;
    d
}

/// The timeline of one deployment's traffic, second by second from `-window`.
struct Timeline {
    origin: i64,
    seconds: Vec<Second>,
    rng: SplitMix64,
    traffic: Traffic,
}

impl Timeline {
    fn new(traffic: Traffic, window: i64, seed: u64) -> Self {
        let mut t = Self {
            origin: -window,
            seconds: Vec::new(),
            rng: SplitMix64::new(seed),
            traffic,
        };
        t.fill_until(0, 0);
        t
    }

    /// Draws the traffic of every second up to `until` (exclusive) at `weight`.
    fn fill_until(&mut self, until: i64, weight: u8) {
        let share = f64::from(weight) / 100.0;
        while self.origin + (self.seconds.len() as i64) < until {
            let mut s = Second::default();
            for _ in 0..self.traffic.requests_per_second {
                if self.rng.chance(share) {
                    s.canary.0 += 1;
                    s.canary.1 += u32::from(self.rng.chance(self.traffic.canary_error_rate));
                } else {
                    s.stable.0 += 1;
                    s.stable.1 += u32::from(self.rng.chance(self.traffic.stable_error_rate));
                }
            }
            self.seconds.push(s);
        }
    }

    /// Both versions' (requests, errors) over `[from, to)`.
    fn counts(&self, from: i64, to: i64) -> ((f64, f64), (f64, f64)) {
        let lo = (from - self.origin).clamp(0, self.seconds.len() as i64) as usize;
        let hi = (to - self.origin).clamp(0, self.seconds.len() as i64) as usize;
        let mut out = ((0.0, 0.0), (0.0, 0.0));
        for s in &self.seconds[lo..hi.max(lo)] {
            out.0.0 += f64::from(s.canary.0);
            out.0.1 += f64::from(s.canary.1);
            out.1.0 += f64::from(s.stable.0);
            out.1.1 += f64::from(s.stable.1);
        }
        out
    }
}

/// What a check at `now` observes, shaped as the Prometheus source returns it: one value
/// per series, none when the canary served nothing.
fn observe(q: &HealthQuery, timeline: &Timeline) -> Observation {
    let ((nc, ec), (ns, es)) = timeline.counts(q.start_secs, q.end_secs);
    let served = nc > 0.0;
    Observation {
        errors: if served { vec![ec] } else { Vec::new() },
        successes: q
            .need_requests
            .then(|| if served { vec![nc - ec] } else { Vec::new() }),
        latency_ms: None,
        stable: q.stable_version.map(|_| Counts::new(ns, es)),
    }
}

/// Runs one deployment under `spec` with `traffic` drawn from `seed`.
pub fn run_deployment(
    spec: &DeploySpec,
    traffic: Traffic,
    seed: u64,
) -> Result<DeploymentRun, FalseAlarmError> {
    const MAX_DECISIONS: usize = 100_000;
    let window = i64::try_from(spec.failure_threshold_time).unwrap_or(i64::MAX / 4);
    let mut timeline = Timeline::new(traffic, window, seed);
    let mut d = start(spec);
    let mut now = 0i64;
    for _ in 0..MAX_DECISIONS {
        match d.next {
            Next::Shift => d.after_shift(spec, now),
            Next::Check => {
                let until = now + i64::try_from(d.wait_seconds).unwrap_or(0).max(1);
                timeline.fill_until(until, d.weight);
                now = until;
                let q = HealthQuery::for_check(spec, d.canary_version, now)
                    .with_stable(spec, d.stable_version);
                let baseline = d.verdict.as_ref().and_then(|v| v.stable);
                let verdict =
                    canary_metrics::judge_observation(spec, &q, &observe(&q, &timeline), baseline);
                d.after_check(spec, verdict, now);
            }
            Next::Promote | Next::Rollback => {
                return Ok(DeploymentRun {
                    rolled_back: d.next == Next::Rollback,
                    end_secs: now,
                    checks: d.checks,
                    weight: d.weight,
                    reason: d
                        .verdict
                        .as_ref()
                        .map_or_else(String::new, |v| v.reason.clone()),
                    decided_by: decided_by(&d),
                });
            }
            next => {
                return Err(FalseAlarmError::Unexpected {
                    next,
                    checks: d.checks,
                });
            }
        }
    }
    Err(FalseAlarmError::NoEnd(MAX_DECISIONS))
}

/// One rule against one kind of canary, over many deployments.
#[derive(Debug, Clone, Serialize)]
pub struct FalseAlarmRow {
    /// The rule's name.
    pub rule: String,
    /// Its deploy.json settings (beyond the base document).
    pub settings: Value,
    /// The traffic.
    pub traffic: Traffic,
    /// Whether the canary is healthy (no worse than the stable version).
    pub healthy_canary: bool,
    /// Deployments simulated.
    pub deployments: usize,
    /// Of which rolled back.
    pub rolled_back: usize,
    /// Seconds from the first shift to the rollback, over the rolled-back ones.
    pub seconds_to_rollback: Option<Spread>,
    /// The canary's weight at the rollback, over the rolled-back ones.
    pub weight_at_rollback: Option<Spread>,
    /// Health checks per deployment.
    pub checks: Option<Spread>,
    /// The last verdict of the first rolled-back deployment, as an example.
    pub example_reason: Option<String>,
    /// Rolled-back deployments by the rule that decided ([`decided_by`]).
    pub decided_by: std::collections::BTreeMap<String, usize>,
}

impl FalseAlarmRow {
    /// The share of deployments rolled back, 0..=1.
    pub fn share(&self) -> f64 {
        if self.deployments == 0 {
            0.0
        } else {
            self.rolled_back as f64 / self.deployments as f64
        }
    }
}

/// Runs `deployments` deployments of `rule` with `traffic`; deployment `i` draws its
/// traffic from seed `seed + i` (the same draws for every rule while the weights agree).
pub fn experiment(
    rule: &Rule,
    traffic: Traffic,
    healthy_canary: bool,
    deployments: usize,
    seed: u64,
) -> Result<FalseAlarmRow, FalseAlarmError> {
    let spec = rule.spec()?;
    let mut runs = Vec::with_capacity(deployments);
    for i in 0..deployments {
        runs.push(run_deployment(&spec, traffic, seed.wrapping_add(i as u64))?);
    }
    let back: Vec<&DeploymentRun> = runs.iter().filter(|r| r.rolled_back).collect();
    Ok(FalseAlarmRow {
        rule: rule.name.clone(),
        settings: rule.settings.clone(),
        traffic,
        healthy_canary,
        deployments,
        rolled_back: back.len(),
        seconds_to_rollback: Spread::of(
            &back.iter().map(|r| r.end_secs as f64).collect::<Vec<_>>(),
        ),
        weight_at_rollback: Spread::of(
            &back.iter().map(|r| f64::from(r.weight)).collect::<Vec<_>>(),
        ),
        checks: Spread::of(&runs.iter().map(|r| f64::from(r.checks)).collect::<Vec<_>>()),
        example_reason: back.first().map(|r| r.reason.clone()),
        decided_by: back.iter().fold(Default::default(), |mut m, r| {
            *m.entry(r.decided_by.clone()).or_insert(0) += 1;
            m
        }),
    })
}

/// Requests per second of the experiments (both versions together).
pub const REQUESTS_PER_SECOND: u32 = 20;

/// Every rule on a healthy canary (stable and canary at 1% errors) and on a worse one
/// (canary 3%, stable 1%).
pub fn all(deployments: usize, seed: u64) -> Result<Vec<FalseAlarmRow>, FalseAlarmError> {
    let healthy = Traffic {
        requests_per_second: REQUESTS_PER_SECOND,
        canary_error_rate: 0.01,
        stable_error_rate: 0.01,
    };
    let worse = Traffic {
        canary_error_rate: 0.03,
        ..healthy
    };
    let mut out = Vec::new();
    for (traffic, ok) in [(healthy, true), (worse, false)] {
        for rule in rules() {
            out.push(experiment(&rule, traffic, ok, deployments, seed)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(canary: f64, stable: f64) -> Traffic {
        Traffic {
            requests_per_second: REQUESTS_PER_SECOND,
            canary_error_rate: canary,
            stable_error_rate: stable,
        }
    }

    #[test]
    fn splitmix_is_deterministic_and_uniform_enough() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        // The reference sequence of SplitMix64 seeded with 0.
        let mut z = SplitMix64::new(0);
        assert_eq!(z.next_u64(), 0xE220_A839_7B1D_CDAF);
        let n = 200_000;
        let hits = (0..n).filter(|_| a.chance(0.01)).count();
        // 2000 expected, sd ≈ 44.5.
        assert!((1800..2200).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| (0.0..1.0).contains(&a.uniform())));
    }

    #[test]
    fn every_rule_parses_and_the_absolute_rule_ignores_the_count() {
        for rule in rules() {
            let spec = rule.spec().expect("valid");
            assert_eq!(spec.failure_threshold_time, 60);
            assert_eq!(spec.check_interval(), 10);
            assert_eq!(
                spec.failure_threshold_value,
                canary_core::spec::NO_COUNT_LIMIT
            );
        }
    }

    #[test]
    fn a_faultless_canary_is_promoted_after_every_step_and_the_bake() {
        for rule in rules().into_iter().take(2) {
            let spec = rule.spec().expect("valid");
            let run = run_deployment(&spec, traffic(0.0, 0.0), 1).expect("run");
            assert!(!run.rolled_back, "{}: {run:?}", rule.name);
            // Nine steps of 60 s and the bake (the default: check_interval + 120 s).
            assert_eq!(run.end_secs, 9 * 60 + 130, "{}", rule.name);
            assert_eq!(run.checks, 9 * 6 + 13, "{}", rule.name);
            assert_eq!(run.weight, 100);
        }
    }

    #[test]
    fn a_failing_canary_is_rolled_back_at_the_first_check() {
        let rules = rules();
        let spec = rules[0].spec().expect("valid");
        let run = run_deployment(&spec, traffic(1.0, 0.0), 3).expect("run");
        assert!(run.rolled_back);
        assert_eq!((run.end_secs, run.checks, run.weight), (10, 1, 10));
        assert!(
            run.reason.contains("above max_error_rate 1%"),
            "{}",
            run.reason
        );
        let spec = rules[1].spec().expect("valid");
        let run = run_deployment(&spec, traffic(1.0, 0.0), 3).expect("run");
        assert!(run.rolled_back, "{run:?}");
        assert!(run.reason.contains("the canary is worse"), "{}", run.reason);
    }

    #[test]
    fn compare_to_stable_with_no_data_fail_fails_before_it_can_compare() {
        let rules = rules();
        let spec = rules[3].spec().expect("valid");
        let run = run_deployment(&spec, traffic(0.0, 0.0), 5).expect("run");
        // Ten seconds at 10% of 20 req/s is about 20 canary requests: fewer than 50.
        assert!(run.rolled_back);
        assert_eq!(run.checks, 1);
        assert!(run.reason.contains("too few requests"), "{}", run.reason);
    }

    #[test]
    fn compare_to_stable_by_default_holds_then_finishes_the_bake_against_the_stables_last_window() {
        let rules = rules();
        let spec = rules[2].spec().expect("valid");
        let run = run_deployment(&spec, traffic(0.0, 0.0), 5).expect("run");
        assert!(!run.rolled_back, "{run:?}");
        assert_eq!(run.weight, 100);
        assert!(
            run.reason.contains("last window with enough requests"),
            "{}",
            run.reason
        );
    }

    #[test]
    fn at_one_percent_each_the_absolute_rule_rolls_back_more_than_the_comparison() {
        let rules = rules();
        let healthy = traffic(0.01, 0.01);
        let absolute = experiment(&rules[0], healthy, true, 30, 11).expect("absolute");
        let compared = experiment(&rules[1], healthy, true, 30, 11).expect("compare");
        // The absolute rule at the background rate fails about every other check.
        assert_eq!(absolute.rolled_back, 30, "{absolute:?}");
        assert_eq!(absolute.decided_by.get("max_error_rate"), Some(&30));
        // The comparison fails fewer healthy canaries, but not none (see docs/benchmarks.md).
        assert!(compared.share() < 0.6, "{compared:?}");
        let worse = experiment(&rules[1], traffic(0.03, 0.01), false, 30, 11).expect("worse");
        assert!(worse.share() > 0.9, "{worse:?}");
        assert!(absolute.example_reason.is_some());
        let exact = worse.decided_by.get("compare: exact binomial test");
        let z = worse.decided_by.get("compare: z-test");
        assert_eq!(
            exact.unwrap_or(&0) + z.unwrap_or(&0),
            worse.rolled_back,
            "{worse:?}"
        );
    }
}
