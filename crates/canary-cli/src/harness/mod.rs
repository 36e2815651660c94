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

pub mod approver;
pub mod checks;
pub mod fixtures;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use canary_core::decide::recovery::ExecutionState;

use canary_core::clock::{Clock, ManualClock};
use canary_kube::{Cluster, RequestPolicy};
use canary_lambda::{ExecutionLookup, FixedCluster, Holders, RecordedNotifier, Services};
use canary_sfn::{Executor, Observer, TaskInvoker};
use canary_sim::{SimCluster, SimConfig, SimServer, kubeconfig_yaml};
use canary_store::{DeploymentStore, ServiceRef};

pub use crate::local::execution_id;
use crate::local::{DEFINITION, LocalInvoker, MACHINE_NAME, SimMetricsSource};
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
    /// Which of this environment's executions run (what Step Functions would say).
    pub running: LocalExecutions,
    /// Every notification the handlers sent, in order (the services' notifier).
    pub notifications: RecordedNotifier,
    server: SimServer,
    executions: AtomicU32,
}

/// The executions of a local executor, as Step Functions would describe them: running
/// while their future runs, ended once it has returned or was dropped (stopped). A
/// name it never started is unknown.
#[derive(Debug, Clone, Default)]
pub struct LocalExecutions {
    states: Arc<Mutex<HashMap<String, bool>>>,
}

impl LocalExecutions {
    /// Marks `name` running until the returned guard is dropped.
    pub fn start(&self, name: &str) -> RunningGuard {
        if let Ok(mut s) = self.states.lock() {
            s.insert(name.to_owned(), true);
        }
        RunningGuard {
            states: self.states.clone(),
            name: name.to_owned(),
        }
    }
}

/// Marks an execution ended when dropped (it returned, or its future was dropped).
#[derive(Debug)]
pub struct RunningGuard {
    states: Arc<Mutex<HashMap<String, bool>>>,
    name: String,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        if let Ok(mut s) = self.states.lock() {
            s.insert(self.name.clone(), false);
        }
    }
}

#[async_trait]
impl ExecutionLookup for LocalExecutions {
    async fn state(&self, execution: &str) -> ExecutionState {
        match self
            .states
            .lock()
            .ok()
            .and_then(|s| s.get(execution).copied())
        {
            Some(true) => ExecutionState::Running {
                why: "the local executor runs it".into(),
            },
            Some(false) => ExecutionState::Ended {
                how: "the local executor has stopped it".into(),
            },
            None => ExecutionState::Unknown {
                why: format!("`{execution}` is not an execution of this local executor"),
            },
        }
    }
}

impl DemoEnv {
    /// Starts the simulated cluster on an ephemeral loopback port with traffic on the
    /// demo's service, and connects the real kube client to it through its kubeconfig.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with(|config| config).await
    }

    /// [`DemoEnv::start`] with the simulated cluster configured by `configure` (strict
    /// namespaces, a route controller).
    pub async fn start_with(
        configure: impl FnOnce(SimConfig) -> SimConfig,
    ) -> Result<Self, HarnessError> {
        let clock = ManualClock::starting_at(START_MILLIS);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        let sim = SimCluster::new(configure(SimConfig::new(shared.clone(), READY_DELAY)));
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
        let running = LocalExecutions::default();
        let notifications = RecordedNotifier::new();
        let services = Services {
            store: DeploymentStore::memory(),
            metrics: Arc::new(SimMetricsSource::new(sim.clone(), NAMESPACE)),
            clusters: Arc::new(FixedCluster(cluster.clone())),
            clock: shared,
            holders: Holders::none().with_lookup(Arc::new(running.clone())),
            notifier: Arc::new(notifications.clone()),
        };
        let executor = Executor::from_json(DEFINITION)?.with_name(MACHINE_NAME);
        Ok(Self {
            sim,
            clock,
            services,
            cluster,
            executor,
            kubeconfig,
            running,
            notifications,
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
        self.deploy_doc(deploy_document(image), invoker, observer)
            .await
    }

    /// Runs one deployment of the execution input `doc` (the demo's deploy.json with
    /// changes) through the whole state machine.
    pub async fn deploy_doc(
        &self,
        doc: serde_json::Value,
        invoker: &dyn TaskInvoker,
        observer: &mut dyn Observer,
    ) -> canary_sfn::Execution {
        let name = self.next_name();
        let _running = self.running.start(&execution_id(&name));
        self.executor
            .run_named(&name, doc, invoker, &self.clock, observer)
            .await
    }

    /// Runs one deployment of `image` until `stop` is notified, and then stops it there
    /// (its future is dropped, as StopExecution ends an execution wherever it is):
    /// `Err(execution id)` when stopped, else how it ended.
    pub async fn deploy_until(
        &self,
        image: &str,
        invoker: &dyn TaskInvoker,
        stop: &tokio::sync::Notify,
    ) -> Result<canary_sfn::Execution, String> {
        let name = self.next_name();
        let id = execution_id(&name);
        let _running = self.running.start(&id);
        let mut observer = canary_sfn::NoopObserver;
        let run = self.executor.run_named(
            &name,
            deploy_document(image),
            invoker,
            &self.clock,
            &mut observer,
        );
        tokio::select! {
            done = run => Ok(done),
            () = stop.notified() => Err(id),
        }
    }

    /// The next execution's name: `demo-<n>`.
    fn next_name(&self) -> String {
        let n = self.executions.fetch_add(1, Ordering::SeqCst) + 1;
        format!("demo-{n}")
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
