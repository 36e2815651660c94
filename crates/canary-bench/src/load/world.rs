//! The world one round runs in: the simulated cluster, the traced S3 store, the
//! services and their executions started together, and the watcher that reads every
//! lock while they run.

#[allow(clippy::wildcard_imports)]
use super::*;

/// One started execution.
#[derive(Debug, Clone)]
pub(super) struct Started {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) service: usize,
    /// The raced twin (started second).
    pub(super) twin: bool,
}

pub(super) struct World {
    pub(super) config: LoadConfig,
    pub(super) services: Vec<LoadService>,
    pub(super) sim: SimCluster,
    pub(super) server: SimServer,
    pub(super) handler_services: Services,
    pub(super) traced: Arc<TracedObjects>,
    pub(super) raw: Arc<S3Objects>,
    pub(super) store: DeploymentStore,
    pub(super) executor: Executor,
    pub(super) running: LocalExecutions,
}

impl World {
    pub(super) async fn start(config: &LoadConfig, moto: &MotoServer) -> Result<Self, LoadError> {
        config.validate()?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let sim = SimCluster::new(SimConfig::new(
            clock.clone(),
            Duration::from_secs(config.ready_delay_secs),
        ));
        let server = sim
            .serve(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .map_err(LoadError::Listen)?;
        let policy = RequestPolicy {
            timeout: Duration::from_secs(20),
            attempts: 3,
            backoff: Duration::from_millis(100),
        };
        let kubeconfig = kubeconfig_yaml(&server.url, "default");
        let cluster = Cluster::from_kubeconfig_yaml(&kubeconfig, None, policy).await?;
        let services: Vec<LoadService> = (0..config.services)
            .map(|i| LoadService::of(config, i))
            .collect();
        for s in &services {
            sim.set_traffic(&s.namespace, &s.name, REQUESTS_PER_SECOND);
            if s.faulty {
                sim.set_error_rate(&s.image(2), FAULTY_ERROR_RATE);
            }
        }
        let sdk = moto.sdk_config().await;
        let raw = Arc::new(S3Objects::new(&sdk, unique_name("load")));
        raw.create_bucket().await?;
        let traced = Arc::new(TracedObjects::new(raw.clone()));
        let store = DeploymentStore::new(traced.clone());
        let running = LocalExecutions::default();
        let handler_services = Services {
            store: store.clone(),
            metrics: Arc::new(AnyNamespaceMetrics(sim.clone())),
            clusters: Arc::new(FixedCluster(cluster)),
            clock,
            holders: Holders::none().with_lookup(Arc::new(running.clone())),
            notifier: Arc::new(NoNotifier),
        };
        let executor = Executor::from_json(DEFINITION)?.with_name(MACHINE_NAME);
        Ok(Self {
            config: config.clone(),
            services,
            sim,
            server,
            handler_services,
            traced,
            raw,
            store,
            executor,
            running,
        })
    }

    /// Runs every execution of `started` at once; each one's end and duration.
    pub(super) async fn run_all(
        self: &Arc<Self>,
        version: u32,
        started: &[Started],
    ) -> Result<Vec<(Started, canary_sfn::Execution, f64)>, LoadError> {
        // Every execution is known to the lookup before any starts, as Step Functions
        // knows an execution from StartExecution on.
        let guards: Vec<_> = started.iter().map(|s| self.running.start(&s.id)).collect();
        // The executor's future is not `Send` (its observer is borrowed): the executions
        // share one thread, their I/O interleaved; the simulated API server answers on
        // the runtime's other threads and moto in its own process.
        let local = tokio::task::LocalSet::new();
        let mut set = tokio::task::JoinSet::new();
        let barrier = Arc::new(tokio::sync::Barrier::new(started.len()));
        for (s, guard) in started.iter().cloned().zip(guards) {
            let world = self.clone();
            let barrier = barrier.clone();
            set.spawn_local_on(
                async move {
                    let doc = world.services[s.service].document(&world.config, version);
                    let invoker = LocalInvoker {
                        services: world.handler_services.clone(),
                    };
                    barrier.wait().await;
                    let t0 = Instant::now();
                    let run = EXECUTION
                        .scope(
                            s.id.clone(),
                            world.executor.run_named(
                                &s.name,
                                doc,
                                &invoker,
                                &SystemClock,
                                &mut NoopObserver,
                            ),
                        )
                        .await;
                    drop(guard);
                    (s, run, t0.elapsed().as_secs_f64())
                },
                &local,
            );
        }
        let mut out = Vec::new();
        local
            .run_until(async {
                while let Some(done) = set.join_next().await {
                    out.push(done.map_err(|e| LoadError::Join(e.to_string()))?);
                }
                Ok::<(), LoadError>(())
            })
            .await?;
        out.sort_by_key(|(s, _, _)| (s.service, s.twin));
        Ok(out)
    }

    pub(super) fn executions(&self, version: u32, raced: bool) -> Vec<Started> {
        let mut out = Vec::new();
        for s in &self.services {
            let name = format!("load-v{version}-{:02}-a", s.index);
            out.push(Started {
                id: execution_id(&name),
                name,
                service: s.index,
                twin: false,
            });
            if raced && s.raced {
                let name = format!("load-v{version}-{:02}-b", s.index);
                out.push(Started {
                    id: execution_id(&name),
                    name,
                    service: s.index,
                    twin: true,
                });
            }
        }
        out
    }
}

/// What the watcher saw: for each service, the holders of its lock in the order seen.
#[derive(Debug, Default)]
pub(super) struct Watched {
    pub(super) rounds: u64,
    pub(super) holders: BTreeMap<usize, Vec<String>>,
    pub(super) errors: Vec<String>,
}

pub(super) async fn watch_locks(world: Arc<World>, stop: Arc<AtomicBool>) -> Watched {
    let mut seen = Watched::default();
    let keys: Vec<String> = world
        .services
        .iter()
        .map(|s| world.store.lock_key(&s.service_ref()))
        .collect();
    while !stop.load(Ordering::SeqCst) {
        for (i, key) in keys.iter().enumerate() {
            match world.raw.get(key).await {
                Ok(Some(o)) => {
                    let doc: Value = serde_json::from_slice(&o.body).unwrap_or(Value::Null);
                    if doc["state"] == "held" {
                        let holder = doc["execution"].as_str().unwrap_or("?").to_owned();
                        let list = seen.holders.entry(i).or_default();
                        if list.last() != Some(&holder) {
                            list.push(holder);
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => seen
                    .errors
                    .push(format!("the watcher could not read {key}: {e}")),
            }
        }
        seen.rounds += 1;
        tokio::time::sleep(Duration::from_millis(world.config.watch_every_millis)).await;
    }
    seen
}
