//! canary-kube against the simulated Kubernetes API server (real HTTP, real kube-rs
//! client), table-driven over both providers and every App Mesh route kind: a first
//! deployment, a canary at 0%, every weight step with exactly one write, promotion
//! cleanup, rollback from every weight, conflicts, server errors, hangs and a
//! Deployment that never becomes ready.

mod common;

use std::time::{Duration, Instant};

use canary_kube::router::router_for;
use canary_kube::{Error, Readiness, StatsSnapshot, provider_of};
use canary_sim::{Fault, FaultAction};
use common::{Fixture, Flavor, Harness, all_flavors, harness};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NS: &str = "shop";
const STEPS: [u8; 10] = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];

fn router(h: &Harness, fx: &Fixture) -> Result<Box<dyn canary_kube::TrafficRouter>, String> {
    let provider = provider_of(&fx.route()).ok_or("the fixture's route has no provider")?;
    Ok(router_for(
        provider,
        h.cluster.clone(),
        &fx.namespace,
        Duration::ZERO,
    ))
}

/// First deployment of version 1 (straight to 100%), ready.
async fn first_deployment(h: &Harness, fx: &Fixture) -> TestResult {
    h.cluster.apply(&fx.objects(1, &[(1, 100)])).await?;
    h.let_deployments_become_ready();
    assert_eq!(
        h.cluster.readiness(NS, &fx.name(1)).await?,
        Readiness::Ready
    );
    Ok(())
}

/// Version 2 applied beside version 1 with the route at 100/0, ready.
async fn canary_deployment(h: &Harness, fx: &Fixture) -> TestResult {
    h.cluster.apply(&fx.objects(2, &[(1, 100), (2, 0)])).await?;
    let before = h.cluster.readiness(NS, &fx.name(2)).await?;
    assert!(
        matches!(before, Readiness::Progressing { .. }),
        "{}: {before:?}",
        fx.flavor
    );
    h.let_deployments_become_ready();
    assert_eq!(
        h.cluster.readiness(NS, &fx.name(2)).await?,
        Readiness::Ready
    );
    Ok(())
}

fn expected_lists(fx: &Fixture, weights: &[(u32, u8)]) -> Vec<Vec<(String, u64)>> {
    let list: Vec<(String, u64)> = weights
        .iter()
        .map(|(v, w)| (fx.name(*v), u64::from(*w)))
        .collect();
    vec![list; fx.route_lists()]
}

#[tokio::test]
async fn a_canary_walks_every_weight_step_with_exactly_one_write_per_shift_and_is_promoted()
-> TestResult {
    for flavor in all_flavors() {
        let h = harness(NS).await?;
        let fx = Fixture::new("checkout", NS, flavor.clone());
        let r = router(&h, &fx)?;
        let start = h.cluster.stats();

        first_deployment(&h, &fx).await?;
        let first = h.cluster.stats() - start;
        canary_deployment(&h, &fx).await?;
        let deploy = h.cluster.stats() - start - first;

        // The canary at 0%.
        assert_eq!(
            r.weights(&fx.route()).await?,
            fx.backends(&[(1, 100), (2, 0)]),
            "{flavor}"
        );
        assert_eq!(
            fx.stored_weights(&h.sim),
            expected_lists(&fx, &[(1, 100), (2, 0)]),
            "{flavor}"
        );

        let shifts_start = h.cluster.stats();
        for w in STEPS {
            h.sim.reset_requests();
            let weights = [(1, 100 - w), (2, w)];
            let report = r.set_weights(&fx.route(), &fx.backends(&weights)).await?;
            assert!(
                report.written && report.conflicts == 0,
                "{flavor} {w}: {report:?}"
            );
            assert_eq!(report.current, fx.backends(&weights), "{flavor} {w}");
            assert_eq!(
                h.sim.write_count(),
                1,
                "{flavor} at {w}%: {:?}",
                h.request_lines()
            );
            assert_eq!(
                h.sim.requests().len(),
                2,
                "{flavor} at {w}%: GET + PUT, got {:?}",
                h.request_lines()
            );
            assert_eq!(
                fx.stored_weights(&h.sim),
                expected_lists(&fx, &weights),
                "{flavor} {w}"
            );
        }
        let shifts = h.cluster.stats() - shifts_start;

        // Promotion: the route to version 2 alone, then version 1's objects removed.
        let promote_start = h.cluster.stats();
        h.sim.reset_requests();
        let report = r
            .set_weights(&fx.route(), &fx.backends(&[(2, 100)]))
            .await?;
        assert!(report.written);
        assert_eq!(h.sim.write_count(), 1, "{flavor}: promotion route write");
        let removed = h
            .cluster
            .delete_version(NS, &fx.service, 1, &fx.kinds())
            .await?;
        let promote = h.cluster.stats() - promote_start;
        let mut gone: Vec<String> = removed
            .deleted
            .iter()
            .map(|k| format!("{}/{}", k.kind, k.name))
            .collect();
        gone.sort();
        let mut want_gone = vec![
            format!("Deployment/{}", fx.name(1)),
            format!("Service/{}", fx.name(1)),
        ];
        if let Flavor::AppMesh(_) = flavor {
            want_gone.push(format!("VirtualNode/{}", fx.name(1)));
        }
        want_gone.sort();
        assert_eq!(gone, want_gone, "{flavor}");
        let mut left = vec![
            format!("Deployment/{}", fx.name(2)),
            format!("Service/{}", fx.name(2)),
            format!("Service/{}", fx.service),
            format!("{}/{}", fx.route().kind, fx.service),
        ];
        if let Flavor::AppMesh(_) = flavor {
            left.push(format!("VirtualNode/{}", fx.name(2)));
            left.push(format!("VirtualService/{}", fx.service));
        }
        left.sort();
        assert_eq!(
            fx.objects_on(&h.sim),
            left,
            "{flavor}: shared objects and version 2 remain"
        );
        assert_eq!(
            fx.stored_weights(&h.sim),
            expected_lists(&fx, &[(2, 100)]),
            "{flavor}"
        );

        let total = h.cluster.stats() - start;
        println!(
            "{flavor}: first deployment {} requests ({} writes); canary apply+readiness {} ({} writes); \
             {} shifts {} requests ({} writes, {:.1} per shift); promotion {} ({} writes); \
             whole canary deployment (apply, readiness, 10 shifts, promotion) {} requests, {} writes",
            first.requests,
            first.writes,
            deploy.requests,
            deploy.writes,
            STEPS.len(),
            shifts.requests,
            shifts.writes,
            shifts.requests as f64 / STEPS.len() as f64,
            promote.requests,
            promote.writes,
            (total - first).requests,
            (total - first).writes,
        );
        assert_eq!(
            shifts,
            StatsSnapshot {
                requests: 20,
                writes: 10,
                retries: 0
            },
            "{flavor}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn rollback_from_every_weight_puts_all_traffic_on_stable_and_removes_only_the_canary()
-> TestResult {
    for flavor in all_flavors() {
        let h = harness(NS).await?;
        let fx = Fixture::new("cart", NS, flavor.clone());
        let r = router(&h, &fx)?;
        first_deployment(&h, &fx).await?;
        for w in std::iter::once(0).chain(STEPS) {
            canary_deployment(&h, &fx).await?;
            if w > 0 {
                r.set_weights(&fx.route(), &fx.backends(&[(1, 100 - w), (2, w)]))
                    .await?;
            }
            h.sim.reset_requests();
            let report = r
                .set_weights(&fx.route(), &fx.backends(&[(1, 100)]))
                .await?;
            assert!(report.written, "{flavor} from {w}%");
            assert_eq!(
                report.previous,
                fx.backends(&[(1, 100 - w), (2, w)]),
                "{flavor} from {w}%"
            );
            assert_eq!(
                h.sim.write_count(),
                1,
                "{flavor} from {w}%: {:?}",
                h.request_lines()
            );
            h.cluster
                .delete_version(NS, &fx.service, 2, &fx.kinds())
                .await?;

            assert_eq!(
                fx.stored_weights(&h.sim),
                expected_lists(&fx, &[(1, 100)]),
                "{flavor} from {w}%"
            );
            assert!(
                !fx.exists(&h.sim, "apps/v1", "Deployment", &fx.name(2)),
                "{flavor} from {w}%"
            );
            assert!(
                !fx.exists(&h.sim, "v1", "Service", &fx.name(2)),
                "{flavor} from {w}%"
            );
            assert!(
                fx.exists(&h.sim, "apps/v1", "Deployment", &fx.name(1)),
                "{flavor} from {w}%"
            );
            assert!(
                fx.exists(&h.sim, "v1", "Service", &fx.service),
                "{flavor} from {w}%"
            );
            if let Flavor::AppMesh(_) = flavor {
                assert!(!fx.exists(
                    &h.sim,
                    "appmesh.k8s.aws/v1beta2",
                    "VirtualNode",
                    &fx.name(2)
                ));
                assert!(fx.exists(
                    &h.sim,
                    "appmesh.k8s.aws/v1beta2",
                    "VirtualNode",
                    &fx.name(1)
                ));
                assert!(fx.exists(
                    &h.sim,
                    "appmesh.k8s.aws/v1beta2",
                    "VirtualService",
                    &fx.service
                ));
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn weights_already_in_place_cost_one_read_and_no_write() -> TestResult {
    for flavor in all_flavors() {
        let h = harness(NS).await?;
        let fx = Fixture::new("search", NS, flavor.clone());
        first_deployment(&h, &fx).await?;
        canary_deployment(&h, &fx).await?;
        h.sim.reset_requests();
        let report = router(&h, &fx)?
            .set_weights(&fx.route(), &fx.backends(&[(1, 100), (2, 0)]))
            .await?;
        assert!(!report.written, "{flavor}");
        assert_eq!(h.sim.write_count(), 0, "{flavor}");
        assert_eq!(
            h.request_lines().len(),
            1,
            "{flavor}: {:?}",
            h.request_lines()
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_conflict_during_a_shift_is_reread_and_the_weights_are_written_exactly_once() -> TestResult
{
    for flavor in all_flavors() {
        let h = harness(NS).await?;
        let fx = Fixture::new("orders", NS, flavor.clone());
        first_deployment(&h, &fx).await?;
        canary_deployment(&h, &fx).await?;
        h.sim.reset_requests();
        h.sim.inject_fault(Fault::new(
            Some("PUT"),
            &format!("/{}", fx.service),
            FaultAction::Conflict,
        ));
        let report = router(&h, &fx)?
            .set_weights(&fx.route(), &fx.backends(&[(1, 90), (2, 10)]))
            .await?;
        assert_eq!(report.conflicts, 1, "{flavor}");
        assert!(report.written);
        let methods: Vec<String> = h.sim.requests().iter().map(|r| r.method.clone()).collect();
        assert_eq!(methods, ["GET", "PUT", "GET", "PUT"], "{flavor}");
        assert_eq!(
            h.successful_writes(),
            1,
            "{flavor}: exactly one successful write"
        );
        assert_eq!(
            fx.stored_weights(&h.sim),
            expected_lists(&fx, &[(1, 90), (2, 10)]),
            "{flavor}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_route_that_keeps_changing_ends_in_route_conflict_after_bounded_attempts() -> TestResult {
    let h = harness(NS).await?;
    let fx = Fixture::new("orders", NS, Flavor::AppMesh(vec!["httpRoute"]));
    first_deployment(&h, &fx).await?;
    canary_deployment(&h, &fx).await?;
    h.sim.reset_requests();
    h.sim.inject_fault(
        Fault::new(Some("PUT"), "/virtualrouters/", FaultAction::Conflict).and_following(100),
    );
    let got = router(&h, &fx)?
        .set_weights(&fx.route(), &fx.backends(&[(1, 90), (2, 10)]))
        .await;
    assert!(
        matches!(&got, Err(Error::RouteConflict { attempts: 5, .. })),
        "{got:?}"
    );
    if let Err(e) = &got {
        assert_eq!(e.error_type(), canary_core::errors::ROUTE_CONFLICT);
        println!("after 5 conflicts: {e}");
    }
    assert_eq!(h.sim.write_count(), 5);
    assert_eq!(h.successful_writes(), 0);
    assert_eq!(
        fx.stored_weights(&h.sim),
        expected_lists(&fx, &[(1, 100), (2, 0)]),
        "nothing changed"
    );
    Ok(())
}

#[tokio::test]
async fn server_errors_and_throttling_are_retried_and_then_reported_as_transient() -> TestResult {
    let h = harness(NS).await?;
    let fx = Fixture::new("pay", NS, Flavor::Gateway("HTTPRoute"));
    first_deployment(&h, &fx).await?;
    canary_deployment(&h, &fx).await?;
    let r = router(&h, &fx)?;

    // One 500 on the read and one 429 on the write: retried, one successful write.
    h.sim.reset_requests();
    h.sim.inject_fault(Fault::new(
        Some("GET"),
        "/httproutes/",
        FaultAction::InternalError,
    ));
    h.sim.inject_fault(Fault::new(
        Some("PUT"),
        "/httproutes/",
        FaultAction::TooManyRequests {
            retry_after_secs: 1,
        },
    ));
    r.set_weights(&fx.route(), &fx.backends(&[(1, 80), (2, 20)]))
        .await?;
    let methods: Vec<String> = h.sim.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, ["GET", "GET", "PUT", "PUT"]);
    assert_eq!(h.successful_writes(), 1);
    h.sim.clear_faults();

    // A server that keeps failing: three tries, then a transient error that says so.
    h.sim.reset_requests();
    h.sim.inject_fault(
        Fault::new(None, "/httproutes/", FaultAction::InternalError).and_following(100),
    );
    let got = r
        .set_weights(&fx.route(), &fx.backends(&[(1, 70), (2, 30)]))
        .await;
    assert!(
        matches!(
            &got,
            Err(Error::ApiTransient {
                code: 500,
                tries: 3,
                ..
            })
        ),
        "{got:?}"
    );
    if let Err(e) = &got {
        assert_eq!(e.error_type(), canary_core::errors::KUBE_TRANSIENT);
        println!("after 3 tries: {e}");
    }
    assert_eq!(h.sim.requests().len(), 3);
    h.sim.clear_faults();

    // The same for apply and removal.
    h.sim.inject_fault(
        Fault::new(Some("PATCH"), "/deployments/", FaultAction::InternalError).and_following(100),
    );
    let got = h.cluster.apply(&fx.version_objects(3)).await;
    assert!(
        matches!(&got, Err(Error::ApiTransient { tries: 3, .. })),
        "{got:?}"
    );
    h.sim.clear_faults();
    h.sim
        .inject_fault(Fault::new(Some("DELETE"), "", FaultAction::InternalError));
    let removed = h
        .cluster
        .delete_version(NS, &fx.service, 2, &fx.kinds())
        .await?;
    assert_eq!(removed.deleted.len(), 2, "{removed:?}");
    Ok(())
}

#[tokio::test]
async fn a_hanging_api_server_times_out_and_is_retried_and_then_reported() -> TestResult {
    let h = harness(NS).await?;
    let fx = Fixture::new("ship", NS, Flavor::AppMesh(vec!["http2Route"]));
    first_deployment(&h, &fx).await?;
    canary_deployment(&h, &fx).await?;
    let r = router(&h, &fx)?;

    // One hanging write: the timeout (300 ms here) fires, the write is sent again.
    h.sim.reset_requests();
    h.sim.inject_fault(Fault::new(
        Some("PUT"),
        "/virtualrouters/",
        FaultAction::Hang,
    ));
    let started = Instant::now();
    let report = r
        .set_weights(&fx.route(), &fx.backends(&[(1, 60), (2, 40)]))
        .await?;
    let took = started.elapsed();
    assert!(report.written);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(h.successful_writes(), 1, "{:?}", h.request_lines());
    assert_eq!(
        fx.stored_weights(&h.sim),
        expected_lists(&fx, &[(1, 60), (2, 40)])
    );
    h.sim.clear_faults();

    // A server that never answers: a clear timeout error in about tries × timeout.
    h.sim
        .inject_fault(Fault::new(None, "", FaultAction::Hang).and_following(100));
    let started = Instant::now();
    let got = h.cluster.readiness(NS, &fx.name(2)).await;
    let took = started.elapsed();
    assert!(
        matches!(
            &got,
            Err(Error::Timeout {
                tries: 3,
                timeout_ms: 300,
                ..
            })
        ),
        "{got:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    if let Err(e) = &got {
        assert_eq!(e.error_type(), canary_core::errors::KUBE_TRANSIENT);
        println!("hanging server: {e} (after {took:?})");
    }
    Ok(())
}

#[tokio::test]
async fn a_deployment_that_never_becomes_ready_reports_the_pods_waiting_reason() -> TestResult {
    for (reason, flavor) in [
        ("ImagePullBackOff", Flavor::AppMesh(vec!["httpRoute"])),
        ("CrashLoopBackOff", Flavor::Gateway("HTTPRoute")),
        ("ErrImagePull", Flavor::AppMesh(vec!["tcpRoute"])),
        ("CreateContainerConfigError", Flavor::Gateway("GRPCRoute")),
    ] {
        let h = harness(NS).await?;
        let fx = Fixture::new("reviews", NS, flavor.clone());
        first_deployment(&h, &fx).await?;
        h.sim.mark_image_bad(&fx.image(2), reason);
        h.cluster.apply(&fx.objects(2, &[(1, 100), (2, 0)])).await?;
        h.let_deployments_become_ready();
        h.let_deployments_become_ready();
        let got = h.cluster.readiness(NS, &fx.name(2)).await?;
        let Readiness::Failed { reason: text } = &got else {
            return Err(format!("{flavor}: expected Failed, got {got:?}").into());
        };
        assert!(
            text.contains(reason) && text.contains(&fx.name(2)),
            "{flavor}: {text}"
        );
        println!("{reason}: {text}");
        assert_eq!(
            h.cluster.readiness(NS, &fx.name(1)).await?,
            Readiness::Ready,
            "the stable version is untouched"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_deployment_is_reported_as_failed_not_as_an_error() -> TestResult {
    let h = harness(NS).await?;
    let got = h.cluster.readiness(NS, "nothing-1").await?;
    assert!(
        matches!(&got, Readiness::Failed { reason } if reason.contains("does not exist")),
        "{got:?}"
    );
    Ok(())
}

#[tokio::test]
async fn removal_is_idempotent_and_never_touches_shared_objects_or_other_services() -> TestResult {
    let h = harness(NS).await?;
    let fx = Fixture::new("cart", NS, Flavor::AppMesh(vec!["httpRoute", "grpcRoute"]));
    let other = Fixture::new("cart-api", NS, Flavor::Gateway("HTTPRoute"));
    first_deployment(&h, &fx).await?;
    h.cluster.apply(&other.objects(1, &[(1, 100)])).await?;
    let others_before = other.objects_on(&h.sim);

    let first = h
        .cluster
        .delete_version(NS, &fx.service, 1, &fx.kinds())
        .await?;
    assert_eq!(first.deleted.len(), 3, "{first:?}");
    h.sim.reset_requests();
    let again = h
        .cluster
        .delete_version(NS, &fx.service, 1, &fx.kinds())
        .await?;
    assert!(again.deleted.is_empty(), "{again:?}");
    assert_eq!(h.sim.write_count(), 0, "nothing left to delete: lists only");
    assert_eq!(
        fx.objects_on(&h.sim),
        ["Service/cart", "VirtualRouter/cart", "VirtualService/cart"],
        "shared objects remain"
    );
    assert_eq!(
        other.objects_on(&h.sim),
        others_before,
        "another service is untouched"
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_first_deployment_is_removed_entirely_and_other_services_are_untouched()
-> TestResult {
    for flavor in all_flavors() {
        let h = harness(NS).await?;
        let fx = Fixture::new("quotes", NS, flavor.clone());
        let other = Fixture::new("quotes-db", NS, flavor.clone());
        h.cluster.apply(&other.objects(4, &[(4, 100)])).await?;
        let others_before = other.objects_on(&h.sim);
        h.cluster.apply(&fx.objects(1, &[(1, 100)])).await?;
        let removed = h
            .cluster
            .delete_service(NS, &fx.service, &fx.kinds())
            .await?;
        assert_eq!(
            removed.deleted.len(),
            fx.objects(1, &[(1, 100)]).len(),
            "{flavor}: {removed:?}"
        );
        assert!(
            fx.objects_on(&h.sim).is_empty(),
            "{flavor}: {:?}",
            fx.objects_on(&h.sim)
        );
        assert_eq!(other.objects_on(&h.sim), others_before, "{flavor}");
    }
    Ok(())
}

#[tokio::test]
async fn apply_is_server_side_apply_with_the_eks_canary_field_manager_and_is_idempotent()
-> TestResult {
    let h = harness(NS).await?;
    let fx = Fixture::new("web", NS, Flavor::AppMesh(vec!["httpRoute"]));
    let objects = fx.objects(1, &[(1, 100)]);
    h.sim.reset_requests();
    let report = h.cluster.apply(&objects).await?;
    assert_eq!(report.applied.len(), objects.len());
    let requests = h.sim.requests();
    assert_eq!(
        requests.len(),
        objects.len(),
        "one request per object, no discovery"
    );
    for r in &requests {
        assert_eq!(r.method, "PATCH", "{r:?}");
        assert!(
            r.query.contains("fieldManager=eks-canary") && r.query.contains("force=true"),
            "{r:?}"
        );
    }
    let route_before = h
        .sim
        .get_object("appmesh.k8s.aws/v1beta2", "VirtualRouter", NS, "web");
    h.cluster.apply(&objects).await?;
    let route_after = h
        .sim
        .get_object("appmesh.k8s.aws/v1beta2", "VirtualRouter", NS, "web");
    assert_eq!(
        route_before.as_ref().map(|r| r["spec"].clone()),
        route_after.as_ref().map(|r| r["spec"].clone()),
        "applying the same objects again changes nothing"
    );
    let bad = h
        .cluster
        .apply(&[serde_json::json!({"kind": "Service", "metadata": {"name": "x"}})])
        .await;
    assert!(
        matches!(&bad, Err(Error::InvalidObject { index: 0, .. })),
        "{bad:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_new_gateway_backend_takes_the_port_of_its_service() -> TestResult {
    let h = harness(NS).await?;
    let mut fx = Fixture::new("media", NS, Flavor::Gateway("HTTPRoute"));
    first_deployment(&h, &fx).await?;
    fx.port = 9090;
    h.cluster.apply(&fx.version_objects(2)).await?;
    h.sim.reset_requests();
    let report = router(&h, &fx)?
        .set_weights(&fx.route(), &fx.backends(&[(1, 95), (2, 5)]))
        .await?;
    assert!(report.written);
    assert_eq!(
        h.request_lines().len(),
        3,
        "GET route, GET Service, PUT: {:?}",
        h.request_lines()
    );
    assert_eq!(h.sim.write_count(), 1);
    let route = h
        .sim
        .get_object("gateway.networking.k8s.io/v1", "HTTPRoute", NS, "media")
        .unwrap_or_default();
    // The kept backend keeps its port; the new one gets its Service's port.
    let text = route.to_string();
    assert!(text.contains(r#""name":"media-1","port":8080"#), "{text}");
    assert!(text.contains(r#""name":"media-2","port":9090"#), "{text}");
    Ok(())
}

#[tokio::test]
async fn a_missing_route_is_a_refusal_that_names_it() -> TestResult {
    let h = harness(NS).await?;
    let fx = Fixture::new("ghost", NS, Flavor::AppMesh(vec!["httpRoute"]));
    let got = router(&h, &fx)?
        .set_weights(&fx.route(), &fx.backends(&[(1, 100)]))
        .await;
    assert!(
        matches!(&got, Err(e @ Error::ApiRefused { code: 404, .. }) if e.to_string().contains("ghost")),
        "{got:?}"
    );
    let bad = router(&h, &fx)?
        .set_weights(&fx.route(), &fx.backends(&[(1, 50)]))
        .await;
    assert!(matches!(&bad, Err(Error::InvalidWeights(_))), "{bad:?}");
    Ok(())
}
