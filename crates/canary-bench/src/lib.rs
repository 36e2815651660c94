//! Benchmarks of eks-canary, measured side by side with the original design (the AWS
//! App Mesh canary pipeline: bash and Python Lambdas, `aws eks update-kubeconfig` and
//! `kubectl apply` of the whole template at every step, a boto3 health check only after
//! each `wait_time`).
//!
//! `scripts/bench` builds and runs the `canary-bench` binary, which writes
//! `target/bench/results.json` and a markdown report. The pieces:
//!
//! - [`scenarios`]: the real state machine definition and handlers on the simulated
//!   cluster with a virtual clock (the demo's environment): API requests per task and
//!   per deployment, state transitions, and the reaction time to an error onset for many
//!   onsets and several check intervals, with a metrics source that publishes each
//!   per-minute datapoint one period late ([`delayed`]), or one that scrapes counters
//!   every 15 s as Prometheus does ([`scraped`]).
//! - [`false_alarms`]: how often a health rule (the absolute error rate, or the canary
//!   against the stable version) rolls back a healthy canary, and catches a worse one,
//!   over many deployments with random request and error counts, judged by the real
//!   decisions and verdict code.
//! - [`original`]: the original design's flow as a model: its state machine (re-created
//!   from its published structure) run by the same local executor for its state
//!   transitions, and its exact detection rule for the reaction time.
//! - [`lambda_api`]: a minimal Lambda Runtime API, so the real `bootstrap` binaries run
//!   as they do in Lambda: cold start, warm invocations, peak memory.
//! - [`real`]: the six functions' binaries driven through whole deployments against
//!   moto and the served simulator, and the baseline scripts (`bench/baseline/`) on the
//!   same peers.
//! - [`load`]: many services deployed at once (a quarter faulty, some raced by a
//!   second execution) on one simulated cluster and one S3 (moto), with the lock and
//!   isolation checked from every S3 write.
//! - [`cost`]: Step Functions and Lambda prices and the cost per deployment.
//! - [`report`]: the markdown tables.
//!
//! Nothing here asserts on a timing: this is a benchmark, not a test.

pub mod cost;
pub mod delayed;
pub mod false_alarms;
pub mod lambda_api;
pub mod load;
pub mod original;
pub mod real;
pub mod report;
pub mod scenarios;
pub mod scraped;
pub mod stats;
