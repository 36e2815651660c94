//! The load scenario of issue 15 against moto: services deployed at the same time by
//! the local executor with the real handlers, on one simulated cluster and one S3, a
//! quarter of them faulty and some raced by a second execution (see
//! `canary_bench::load`). Every execution must end as expected, each lock be held by
//! one execution at a time, and no service's keys or objects be touched by another's
//! execution.

use canary_bench::load::{self, LoadConfig};
use canary_testkit::MotoServer;

/// Services in the test, unless `CANARY_LOAD_SERVICES` says otherwise (`50` runs the
/// issue's full scenario). The full 50 took 122 s here in a debug build on two cores
/// busy with other builds (187 s when busier): every execution's handlers and the SDK's
/// signing run unoptimized on one thread, and moto answers from one Python process; 20
/// take about 25 s. `scripts/bench` runs the full 50 in a release build.
const DEFAULT_SERVICES: usize = 20;

/// The services to deploy and how many of them to race: a tenth, at least 2.
fn shape() -> Result<(usize, usize), String> {
    let services = match std::env::var("CANARY_LOAD_SERVICES") {
        Err(_) => DEFAULT_SERVICES,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (4..=495).contains(&n) => n,
            _ => {
                return Err(format!(
                    "CANARY_LOAD_SERVICES must be a whole number from 4 to 495, got `{v}`"
                ));
            }
        },
    };
    Ok((services, (services / 10).max(2)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_at_once_end_as_expected_with_one_lock_holder_each_and_no_cross_writes() {
    let moto = MotoServer::shared().expect("moto_server (pip install 'moto[server]')");
    let (services, racing) = shape().expect("the load test's shape");
    let config = LoadConfig::with_services(services, racing);
    let report = load::run(&config, moto).await.expect("the load run");
    eprintln!("{}", report.markdown());
    assert!(
        report.violations.is_empty(),
        "{} violations:\n{}",
        report.violations.len(),
        report.violations.join("\n")
    );
    let raced = config.raced();
    let faulty = (0..config.services).filter(|i| config.faulty(*i)).count();
    assert_eq!(report.faulty, faulty);
    assert_eq!(report.executions.len(), config.services + raced.len());
    assert_eq!(report.count("rolled back"), faulty);
    assert_eq!(report.count("promoted"), config.services - faulty);
    assert_eq!(
        report.count("another deployment owns the service"),
        raced.len()
    );
    // The watcher did watch: every lock read more than once during the round, and each
    // raced service's lock seen held, by exactly one execution.
    assert!(report.watch_rounds >= 2, "{}", report.watch_rounds);
    assert_eq!(report.raced_holders_seen.len(), raced.len());
    assert!(report.raced_holders_seen.values().all(|n| *n == 1));
    // Counted: requests to the API server and to S3 by every execution.
    assert!(report.api_requests > 0 && report.s3_requests > 0);
    assert!(report.executions.iter().all(|e| e.s3_requests > 0));
}
