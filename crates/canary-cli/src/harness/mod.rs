//! The simulated world every local deployment of the demo's service runs in, shared by
//! `canary demo`, the fault matrix (`faults`) and the benchmark (crate canary-bench):
//! the simulated cluster served over HTTP on loopback and reached through the real kube
//! client, simulated traffic feeding the health check, an in-memory record store, a
//! virtual clock shared by the executor, the simulator and the services (so a
//! ten-minute rollout takes a fraction of a second), and the local executor of the
//! shipped state machine definition with the real handlers ([`DemoEnv`]).
//!
//! [`fixtures`] is the service deployed; [`checks`] checks the final state after a
//! deployment (all traffic on one version, no other version's objects, the lock
//! released, the record written).

pub mod checks;
pub mod fixtures;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use canary_core::clock::{Clock, ManualClock};
use canary_kube::{Cluster, RequestPolicy};
use canary_lambda::{FixedCluster, Services};
use canary_sfn::{Executor, Observer, TaskInvoker};
use canary_sim::{SimCluster, SimConfig, SimServer, kubeconfig_yaml};
use canary_store::{DeploymentStore, ServiceRef};

use crate::local::{DEFINITION, LocalInvoker, SimMetricsSource};
pub use checks::{Check, route_targets};
use fixtures::{
    NAMESPACE, READY_DELAY, REQUESTS_PER_SECOND, SERVICE, START_MILLIS, deploy_document, image,
};

/// Why the simulated environment could not start or be set up.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The simulated API server could not listen on loopback.
    #[error("the simulated cluster could not listen on 127.0.0.1: {0}")]
    Listen(#[source] std::io::Error),
    /// The kube client did not accept the simulator's kubeconfig.
    #[error("the kube client could not use the simulated cluster's kubeconfig: {0}")]
    Kube(#[from] canary_kube::Error),
    /// The shipped state machine definition did not load.
    #[error("the state machine definition did not load: {0}")]
    Definition(#[from] canary_sfn::DefinitionError),
    /// A version deployed to set up a scenario was not promoted.
    #[error("deploying v{version} failed: {status}")]
    Setup {
        /// The version.
        version: u32,
        /// How its execution ended.
        status: String,
    },
}

/// The simulated cluster served on loopback, a virtual clock, an in-memory store, the
/// services the handlers use, and the executor of the shipped definition.
#[derive(Debug)]
pub struct DemoEnv {
    /// The simulated cluster (its state, traffic, faults, request log).
    pub sim: SimCluster,
    /// The virtual clock shared by the executor, the simulator and the services.
    pub clock: ManualClock,
    /// What the handlers use.
    pub services: Services,
    /// The kube client's handle on the simulated cluster (request counters).
    pub cluster: Cluster,
    /// The executor of `statemachine/canary-deployment.asl.json`.
    pub executor: Executor,
    /// The kubeconfig of the served simulator.
    pub kubeconfig: String,
    server: SimServer,
    executions: AtomicU32,
}

impl DemoEnv {
    /// Starts the simulated cluster on an ephemeral loopback port with traffic on the
    /// demo's service, and connects the real kube client to it through its kubeconfig.
    pub async fn start() -> Result<Self, HarnessError> {
        let clock = ManualClock::starting_at(START_MILLIS);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let sim = SimCluster::new(SimConfig::new(shared.clone(), READY_DELAY));
        let server = sim
            .serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(HarnessError::Listen)?;
        let kubeconfig = kubeconfig_yaml(&server.url, NAMESPACE);
        let policy = RequestPolicy {
            timeout: Duration::from_secs(5),
            attempts: 3,
            backoff: Duration::from_millis(50),
        };
        let cluster = Cluster::from_kubeconfig_yaml(&kubeconfig, None, policy).await?;
        sim.set_traffic(NAMESPACE, SERVICE, REQUESTS_PER_SECOND);
        let services = Services {
            store: DeploymentStore::memory(),
            metrics: Arc::new(SimMetricsSource::new(sim.clone(), NAMESPACE)),
            clusters: Arc::new(FixedCluster(cluster.clone())),
            clock: shared,
        };
        let executor = Executor::from_json(DEFINITION)?.with_name("canary-deployment");
        Ok(Self {
            sim,
            clock,
            services,
            cluster,
            executor,
            kubeconfig,
            server,
            executions: AtomicU32::new(0),
        })
    }

    /// The base URL of the served simulator.
    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// The invoker of the real handlers with this environment's services.
    pub fn invoker(&self) -> LocalInvoker {
        LocalInvoker {
            services: self.services.clone(),
        }
    }

    /// The demo's service, as the store names it.
    pub fn service_ref(&self) -> ServiceRef {
        ServiceRef::new("blogpost", NAMESPACE, SERVICE)
    }

    /// Runs one deployment of `image` through the whole state machine.
    pub async fn deploy(
        &self,
        image: &str,
        invoker: &dyn TaskInvoker,
        observer: &mut dyn Observer,
    ) -> canary_sfn::Execution {
        let n = self.executions.fetch_add(1, Ordering::SeqCst) + 1;
        let name = format!("demo-{n}");
        self.executor
            .run_named(
                &name,
                deploy_document(image),
                invoker,
                &self.clock,
                observer,
            )
            .await
    }

    /// Deploys `versions` one after the other with the plain handlers (each must be
    /// promoted): the state a scenario starts from.
    pub async fn deploy_versions(&self, versions: &[u32]) -> Result<(), HarnessError> {
        let invoker = self.invoker();
        for &v in versions {
            let run = self
                .deploy(&image(v), &invoker, &mut canary_sfn::NoopObserver)
                .await;
            if !run.succeeded() {
                return Err(HarnessError::Setup {
                    version: v,
                    status: format!("{:?}", run.status),
                });
            }
        }
        Ok(())
    }

    /// Stops the simulated API server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
