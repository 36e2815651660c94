//! `canary-fuzz`: the property tests' bad-input generators run for as long as a developer
//! wants, on stable Rust. The properties and generators are the test suite's own files,
//! included by path, so the suite's short run and this long one check the same thing:
//!
//! - `deploy-json`: a valid deploy.json with one field set to any value, under a
//!   near-miss name, or removed, parses or is refused naming the field
//!   (crates/canary-core/tests/cases/deploy_json.rs);
//! - `render`: a value substituted into a real template is refused naming its field or
//!   leaves the rendered objects' structure as it was, and the YAML parses back
//!   (crates/canary-core/tests/cases/rendering.rs);
//! - `sim-requests`: any request to the simulated API server gets a valid answer or a
//!   Kubernetes `Status` (crates/canary-sim/tests/cases/requests.rs);
//! - `all`: the three in turn.
//!
//! `cargo run -p canary-fuzz --release -- render --seconds 600` (or `--cases N`); each
//! of `--jobs` threads runs its own randomly seeded runner. A failure prints the shrunk
//! case and exits 1; keep it as an example test beside the property it broke.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

#[allow(dead_code)]
#[path = "../../canary-core/tests/cases/deploy_json.rs"]
mod deploy_json;
#[allow(dead_code)]
#[path = "../../canary-core/tests/cases/rendering.rs"]
mod rendering;
#[allow(dead_code)]
#[path = "../../canary-sim/tests/cases/requests.rs"]
mod requests;

/// Cases one runner runs before the stop conditions are looked at again.
const BATCH: u32 = 500;

const USAGE: &str =
    "usage: canary-fuzz <deploy-json|render|sim-requests|all> [--cases N] [--seconds S] [--jobs J]
  --cases N    stop after about N cases per target (default 100000 without --seconds)
  --seconds S  stop after S seconds per target
  --jobs J     runners in parallel (default: the number of cores)";

/// What to run and for how long.
#[derive(Debug, Clone, PartialEq)]
struct Args {
    targets: Vec<&'static str>,
    cases: Option<u64>,
    seconds: Option<u64>,
    jobs: usize,
}

const TARGETS: [&str; 3] = ["deploy-json", "render", "sim-requests"];

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut it = args.iter();
    let target = it.next().ok_or("a target is required")?;
    let targets = match target.as_str() {
        "all" => TARGETS.to_vec(),
        t => vec![
            *TARGETS
                .iter()
                .find(|x| **x == t)
                .ok_or_else(|| format!("unknown target `{t}`"))?,
        ],
    };
    let mut out = Args {
        targets,
        cases: None,
        seconds: None,
        jobs: std::thread::available_parallelism().map_or(1, usize::from),
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
        let number: u64 = value
            .replace('_', "")
            .parse()
            .map_err(|_| format!("`{flag}` must be a whole number, not `{value}`"))?;
        match flag.as_str() {
            "--cases" => out.cases = Some(number),
            "--seconds" => out.seconds = Some(number),
            "--jobs" => out.jobs = usize::try_from(number).unwrap_or(1).max(1),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if out.cases.is_none() && out.seconds.is_none() {
        out.cases = Some(100_000);
    }
    Ok(out)
}

/// Shared by a target's runners: cases run, and whether to stop.
#[derive(Debug, Default)]
struct Progress {
    cases: AtomicU64,
    stop: AtomicBool,
}

/// Runs `check` over the strategy `make` builds (one per runner: generators are not
/// shared between threads) until a limit is reached or a case fails; returns the number
/// of cases, or the failure, shrunk.
fn drive<M, S, F>(name: &str, args: &Args, make: M, check: F) -> Result<u64, String>
where
    M: Fn() -> S + Sync,
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(&S::Value) -> Result<(), TestCaseError> + Sync,
{
    let progress = Progress::default();
    let started = Instant::now();
    let deadline = args.seconds.map(|s| started + Duration::from_secs(s));
    let done = |p: &Progress| {
        p.stop.load(Ordering::Relaxed)
            || args
                .cases
                .is_some_and(|n| p.cases.load(Ordering::Relaxed) >= n)
            || deadline.is_some_and(|d| Instant::now() >= d)
    };
    let failure = std::thread::scope(|scope| {
        let runners: Vec<_> = (0..args.jobs)
            .map(|_| {
                scope.spawn(|| -> Option<String> {
                    let strategy = make();
                    while !done(&progress) {
                        let mut runner = TestRunner::new(Config {
                            cases: BATCH,
                            failure_persistence: None,
                            ..Config::default()
                        });
                        match runner.run(&strategy, |v| check(&v)) {
                            Ok(()) => {
                                progress
                                    .cases
                                    .fetch_add(u64::from(BATCH), Ordering::Relaxed);
                            }
                            Err(TestError::Fail(why, value)) => {
                                progress.stop.store(true, Ordering::Relaxed);
                                return Some(format!("{why}\nminimal failing case: {value:#?}"));
                            }
                            Err(TestError::Abort(why)) => {
                                progress.stop.store(true, Ordering::Relaxed);
                                return Some(format!("aborted: {why}"));
                            }
                        }
                    }
                    None
                })
            })
            .collect();
        let mut last_report = Instant::now();
        while runners.iter().any(|r| !r.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
            if last_report.elapsed() >= Duration::from_secs(10) {
                last_report = Instant::now();
                let n = progress.cases.load(Ordering::Relaxed);
                eprintln!(
                    "{name}: {n} cases in {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        runners
            .into_iter()
            .filter_map(|r| {
                r.join()
                    .unwrap_or_else(|_| Some("a runner panicked".into()))
            })
            .next()
    });
    match failure {
        Some(f) => Err(f),
        None => Ok(progress.cases.load(Ordering::Relaxed)),
    }
}

fn run(target: &str, args: &Args) -> Result<u64, String> {
    match target {
        "deploy-json" => drive(
            target,
            args,
            || proptest::prop_oneof![deploy_json::known_field_case(), deploy_json::other_case()],
            deploy_json::check,
        ),
        "render" => drive(
            target,
            args,
            || {
                rendering::case_for(&[
                    "kubernetes_namespace",
                    "microservice_name",
                    "container_image",
                    "cluster_name",
                ])
            },
            rendering::check,
        ),
        _ => drive(
            target,
            args,
            || proptest::prop_oneof![requests::requests(), requests::writes_then_anything()],
            |r| requests::check(r),
        ),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    for target in &args.targets {
        let started = Instant::now();
        match run(target, &args) {
            Ok(n) => println!(
                "{target}: {n} cases, no failure, in {:.1} s",
                started.elapsed().as_secs_f64()
            ),
            Err(failure) => {
                eprintln!("{target}: FAILED\n{failure}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, String> {
        parse_args(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn a_target_and_its_limits_are_read() {
        let a = args(&["render", "--seconds", "600", "--jobs", "2"]);
        assert_eq!(
            a.map(|a| (a.targets, a.cases, a.seconds, a.jobs)),
            Ok((vec!["render"], None, Some(600), 2))
        );
        let a = args(&["all", "--cases", "10_000_000"]);
        assert_eq!(
            a.map(|a| (a.targets.len(), a.cases)),
            Ok((3, Some(10_000_000)))
        );
        assert_eq!(args(&["deploy-json"]).map(|a| a.cases), Ok(Some(100_000)));
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(args(&[]).err().as_deref(), Some("a target is required"));
        assert!(args(&["fuzz"]).is_err_and(|e| e.contains("`fuzz`")));
        assert!(args(&["render", "--cases"]).is_err_and(|e| e.contains("--cases")));
        assert!(args(&["render", "--cases", "x"]).is_err_and(|e| e.contains("`x`")));
        assert!(args(&["render", "--speed", "1"]).is_err_and(|e| e.contains("--speed")));
    }

    #[test]
    fn a_failing_case_stops_every_runner_and_is_reported_shrunk() {
        let a = Args {
            targets: vec![],
            cases: None,
            seconds: Some(60),
            jobs: 2,
        };
        let started = Instant::now();
        let got = drive(
            "t",
            &a,
            || 0u32..1_000_000,
            |v| {
                if *v >= 500 {
                    Err(TestCaseError::fail("too big"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        let failure = got.err().unwrap_or_default();
        assert!(
            failure.contains("too big") && failure.contains("minimal failing case: 500"),
            "{failure}"
        );
    }

    #[test]
    fn a_short_run_of_each_target_finds_no_failure() {
        let a = Args {
            targets: TARGETS.to_vec(),
            cases: Some(1),
            seconds: None,
            jobs: 1,
        };
        for t in TARGETS {
            assert_eq!(run(t, &a), Ok(u64::from(BATCH)), "{t}");
        }
    }
}
