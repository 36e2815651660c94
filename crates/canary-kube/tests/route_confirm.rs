//! The router waits for the route controller after each write, against the simulated
//! cluster's controllers (the Lattice controller's HTTPRoute/GRPCRoute status and the
//! App Mesh controller's VirtualRouter status) on its manual clock: accepted after a
//! delay (the time it took reported), never (an error after the timeout), refused (an
//! error at once with the controller's reason), a real BackendNotFound, a stale refusal
//! that does not fail the next write, a retried write that finds the weights in place
//! but refused, and a timeout of zero that does not wait. Also the namespace check
//! deploy-canary makes before its first write.

#![allow(clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use canary_core::clock::Clock;
use canary_kube::router::router_for;
use canary_kube::{Error, TrafficRouter, provider_of};
use canary_sim::RouteController;
use common::{Fixture, Flavor, Harness, fast_policy, harness_configured};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NS: &str = "shop";

/// One flavor of each provider.
fn flavors() -> Vec<Flavor> {
    vec![
        Flavor::AppMesh(vec!["httpRoute"]),
        Flavor::Gateway("HTTPRoute"),
    ]
}

/// v1 and v2 applied with the route at 100/0, under `controller`.
async fn setup(
    flavor: Flavor,
    controller: RouteController,
) -> Result<(Harness, Fixture), Box<dyn std::error::Error>> {
    let h = harness_configured(NS, fast_policy(), |c| c.with_route_controller(controller)).await?;
    let fx = Fixture::new("ui", NS, flavor);
    h.cluster.apply(&fx.objects(1, &[(1, 100)])).await?;
    h.cluster.apply(&fx.objects(2, &[(1, 100), (2, 0)])).await?;
    Ok((h, fx))
}

fn router(h: &Harness, fx: &Fixture, timeout: Duration) -> Box<dyn TrafficRouter> {
    let provider = provider_of(&fx.route()).expect("the fixture's route has a provider");
    router_for(provider, h.cluster.clone(), &fx.namespace, timeout)
}

fn not_confirmed(e: &Error) -> Option<(&str, u64, i64)> {
    match e {
        Error::RouteNotConfirmed {
            why,
            waited_ms,
            generation,
            ..
        } => Some((why.as_str(), *waited_ms, *generation)),
        _ => None,
    }
}

#[tokio::test]
async fn a_controller_that_accepts_after_a_delay_is_waited_for_and_the_time_reported() -> TestResult
{
    for flavor in flavors() {
        let delay = Duration::from_millis(2_500);
        let (h, fx) = setup(flavor.clone(), RouteController::Accepting { delay }).await?;
        let before = h.clock.now_millis();
        let report = router(&h, &fx, Duration::from_secs(60))
            .set_weights(&fx.route(), &fx.backends(&[(1, 90), (2, 10)]))
            .await?;
        let waited = h.clock.now_millis() - before;
        assert!(report.written, "{flavor}");
        let reported = report.confirm_millis.expect("confirmed");
        // Readings at most a second apart: accepted within a second of the delay.
        assert!(
            (2_500..3_500).contains(&reported),
            "{flavor}: confirmed after {reported} ms"
        );
        assert_eq!(i64::try_from(reported)?, waited, "{flavor}");
        assert!(report.generation.is_some(), "{flavor}");
        // The polls on the way: every GET of the route after the PUT is at most 1 s of
        // virtual time apart, so there are at least three of them.
        let gets_after_put = h
            .request_lines()
            .iter()
            .skip_while(|l| !l.starts_with("PUT"))
            .filter(|l| l.starts_with("GET"))
            .count();
        assert!(gets_after_put >= 3, "{flavor}: {gets_after_put} readings");
    }
    Ok(())
}

#[tokio::test]
async fn a_controller_that_never_answers_fails_after_the_timeout() -> TestResult {
    for flavor in flavors() {
        let (h, fx) = setup(flavor.clone(), RouteController::Never).await?;
        let before = h.clock.now_millis();
        let err = router(&h, &fx, Duration::from_secs(10))
            .set_weights(&fx.route(), &fx.backends(&[(1, 90), (2, 10)]))
            .await
            .expect_err("never confirmed");
        let (why, waited, _) = not_confirmed(&err).unwrap_or_else(|| panic!("{err}"));
        assert_eq!(waited, 10_000, "{flavor}");
        assert_eq!(h.clock.now_millis() - before, 10_000, "{flavor}");
        assert!(
            why.contains("did not accept it within 10 s") && why.contains("no status"),
            "{flavor}: {err}"
        );
        assert_eq!(err.error_type(), "RouteNotConfirmed");
        assert!(!err.is_transient());
        // The weights are written, though: the message says which.
        assert!(err.to_string().contains("ui-2=10"), "{err}");
    }
    Ok(())
}

#[tokio::test]
async fn a_refusing_controller_fails_at_once_with_its_reason() -> TestResult {
    for flavor in flavors() {
        let refusing = RouteController::Refusing {
            reason: "BackendNotFound".into(),
            message: "backendRef name: ui-2".into(),
        };
        let (h, fx) = setup(flavor.clone(), refusing).await?;
        let before = h.clock.now_millis();
        let err = router(&h, &fx, Duration::from_secs(60))
            .set_weights(&fx.route(), &fx.backends(&[(1, 90), (2, 10)]))
            .await
            .expect_err("refused");
        let (why, waited, _) = not_confirmed(&err).unwrap_or_else(|| panic!("{err}"));
        assert_eq!(waited, 0, "{flavor}: {err}");
        assert_eq!(h.clock.now_millis(), before, "{flavor}");
        let condition = match flavor {
            Flavor::AppMesh(_) => "VirtualRouterActive=False",
            Flavor::Gateway(_) => "ResolvedRefs=False",
        };
        assert!(
            why.contains(&format!(
                "refused it: {condition}: BackendNotFound: backendRef name: ui-2"
            )),
            "{flavor}: {err}"
        );
        // A retried task finds the weights in place: no write, but the refusal stands.
        let again = router(&h, &fx, Duration::from_secs(60))
            .set_weights(&fx.route(), &fx.backends(&[(1, 90), (2, 10)]))
            .await
            .expect_err("still refused");
        assert!(not_confirmed(&again).is_some(), "{flavor}: {again}");
    }
    Ok(())
}

#[tokio::test]
async fn a_backend_service_that_does_not_exist_is_refused_by_the_lattice_controller() -> TestResult
{
    let (h, fx) = setup(
        Flavor::Gateway("HTTPRoute"),
        RouteController::Accepting {
            delay: Duration::from_millis(500),
        },
    )
    .await?;
    h.cluster
        .delete_version(NS, "ui", 2, &[("v1".to_owned(), "Service".to_owned())])
        .await?;
    let err = router(&h, &fx, Duration::from_secs(60))
        .set_weights(&fx.route(), &fx.backends(&[(1, 50), (2, 50)]))
        .await
        .expect_err("ui-2 has no Service");
    let (why, waited, _) = not_confirmed(&err).unwrap_or_else(|| panic!("{err}"));
    assert!(
        why.contains("ResolvedRefs=False: BackendNotFound: backendRef name: ui-2"),
        "{err}"
    );
    assert!(waited >= 500, "{err}");
    Ok(())
}

#[tokio::test]
async fn a_refusal_of_an_older_generation_does_not_fail_the_next_write() -> TestResult {
    for flavor in flavors() {
        let refusing = RouteController::Refusing {
            reason: "BackendNotFound".into(),
            message: "backendRef name: ui-2".into(),
        };
        let (h, fx) = setup(flavor.clone(), refusing).await?;
        let r = router(&h, &fx, Duration::from_secs(60));
        let refused = r
            .set_weights(&fx.route(), &fx.backends(&[(1, 90), (2, 10)]))
            .await
            .expect_err("refused");
        let (_, _, refused_generation) =
            not_confirmed(&refused).unwrap_or_else(|| panic!("{refused}"));
        // The controller recovers slowly; the rollback's write reads the old refusal
        // first and must wait for its own generation.
        h.sim.set_route_controller(RouteController::Accepting {
            delay: Duration::from_secs(3),
        });
        let report = r
            .set_weights(&fx.route(), &fx.backends(&[(1, 100), (2, 0)]))
            .await?;
        assert!(
            report.generation > Some(refused_generation),
            "{flavor}: {report:?}"
        );
        let waited = report.confirm_millis.expect("confirmed");
        assert!((3_000..4_000).contains(&waited), "{flavor}: {waited} ms");
    }
    Ok(())
}

#[tokio::test]
async fn a_zero_timeout_does_not_wait_or_read_again() -> TestResult {
    for flavor in flavors() {
        let (h, fx) = setup(flavor.clone(), RouteController::Never).await?;
        h.sim.reset_requests();
        let before = h.clock.now_millis();
        let report = router(&h, &fx, Duration::ZERO)
            .set_weights(&fx.route(), &fx.backends(&[(1, 90), (2, 10)]))
            .await?;
        assert!(
            report.written && report.confirm_millis.is_none(),
            "{flavor}"
        );
        assert_eq!(h.clock.now_millis(), before);
        let route_requests: Vec<String> = h
            .request_lines()
            .into_iter()
            .filter(|l| l.contains("/virtualrouters/") || l.contains("routes/"))
            .collect();
        assert_eq!(route_requests.len(), 2, "{flavor}: {route_requests:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_namespace_is_named_with_the_command_that_creates_it() -> TestResult {
    let h = harness_configured(NS, fast_policy(), |c| c.with_strict_namespaces()).await?;
    let err = h
        .cluster
        .ensure_namespace(NS, "blogpost")
        .await
        .expect_err("shop does not exist");
    assert_eq!(
        err.to_string(),
        "namespace shop does not exist on cluster blogpost: create it first (kubectl create namespace shop)"
    );
    assert_eq!(err.error_type(), "NamespaceMissing");
    assert!(!err.is_transient());
    h.sim.create_namespace(NS)?;
    h.cluster.ensure_namespace(NS, "blogpost").await?;
    Ok(())
}
