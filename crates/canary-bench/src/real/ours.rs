//! Our six functions' `bootstrap` binaries, each under its own local Lambda Runtime API,
//! driven through whole deployments in the state machine's order.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::{BUCKET, Invocation, OursRun, Peers, RealConfig, RealError, fixtures};
use crate::lambda_api::FunctionProcess;

/// Drives our functions' processes; a function's process is spawned at its first
/// invocation of a generation, with the event queued at once.
struct Ours<'a> {
    cfg: &'a RealConfig,
    peers: &'a Peers,
    env: Vec<(String, String)>,
    processes: BTreeMap<String, FunctionProcess>,
    run: OursRun,
}

impl Ours<'_> {
    async fn invoke(&mut self, function: &str, event: Value) -> Result<Value, RealError> {
        let mut cold = false;
        if !self.processes.contains_key(function) {
            let memory = self.cfg.memory_mb.get(function).copied().unwrap_or(256);
            let log = self.cfg.work.join(format!("{function}.log"));
            let p = FunctionProcess::spawn(
                function,
                &self.cfg.bin_dir.join(function),
                memory,
                &self.env,
                &log,
            )
            .await?;
            self.processes.insert(function.to_owned(), p);
            cold = true;
        }
        let Some(process) = self.processes.get_mut(function) else {
            return Err(RealError::Flow(format!("no process for {function}")));
        };
        let before = self.peers.sim.requests().len();
        let writes_before = self.peers.sim.write_count();
        let outcome = process.invoke(event).await?;
        let spawned = process.spawned_at;
        let requests = self.peers.sim.requests().len().saturating_sub(before);
        let writes = self.peers.sim.write_count().saturating_sub(writes_before);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        self.run.invocations.push(Invocation {
            function: function.to_owned(),
            cold,
            duration_ms: ms(outcome.done_at - outcome.handed_at),
            cold_start_ms: cold.then(|| ms(outcome.done_at - spawned)),
            init_ms: cold.then(|| ms(outcome.handed_at - spawned)),
            ok: outcome.ok,
            error: (!outcome.ok).then(|| outcome.body.to_string()),
            requests,
            writes,
        });
        if outcome.ok {
            Ok(outcome.body)
        } else {
            Err(RealError::Flow(format!(
                "{function} failed: {}",
                outcome.body
            )))
        }
    }

    fn end_generation(&mut self) {
        for (name, p) in std::mem::take(&mut self.processes) {
            if let Some(kib) = p.peak_rss_kib() {
                self.run.peak_rss_kib.entry(name).or_default().push(kib);
            }
            p.stop();
        }
    }

    /// One deployment of `version`: `first` goes straight to 100%; otherwise ten steps
    /// and cleanup, or a rollback after the third check when `roll_back`.
    async fn deployment(&mut self, version: u32, roll_back: bool) -> Result<(), RealError> {
        let mut deploy = fixtures::deploy_document(&fixtures::image(version));
        if let Some(m) = deploy.as_object_mut() {
            m.remove("check_interval");
        }
        let execution = format!(
            "arn:aws:states:us-east-1:000000000000:execution:canary-deployment:bench-{version}"
        );
        let mut doc = self
            .invoke(
                "render-template",
                json!({"deploy": deploy, "execution": execution}),
            )
            .await?;
        let first = doc["deployment"]["stable_version"].is_null();
        doc = self.invoke("deploy-canary", doc).await?;
        for _ in 0..50 {
            doc = self.invoke("deploy-canary", doc).await?;
            if doc["deployment"]["next"] != "wait_ready" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if first {
            doc = self.invoke("shift-weights", doc).await?;
            self.invoke("cleanup", doc).await?;
            self.run
                .deployments
                .push(format!("v{version}: first deployment"));
            return Ok(());
        }
        let steps = doc["deployment"]["schedule"].as_array().map_or(0, Vec::len);
        for step in 0..steps {
            doc = self.invoke("shift-weights", doc).await?;
            doc = self.invoke("health-check", doc).await?;
            if roll_back && step == 2 {
                self.invoke("rollback", doc).await?;
                self.run
                    .deployments
                    .push(format!("v{version}: rolled back at 30%"));
                return Ok(());
            }
        }
        self.invoke("cleanup", doc).await?;
        self.run.deployments.push(format!("v{version}: promoted"));
        Ok(())
    }
}

pub(super) async fn run_ours(cfg: &RealConfig, peers: &Peers) -> Result<OursRun, RealError> {
    let mut env: Vec<(String, String)> = peers
        .moto
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.push(("CANARY_STATE_BUCKET".into(), BUCKET.into()));
    env.push(("CANARY_STATE_PREFIX".into(), "state".into()));
    env.push((
        "CANARY_KUBECONFIG".into(),
        peers.kubeconfig.display().to_string(),
    ));
    env.push(("RUST_LOG".into(), "info".into()));
    let mut ours = Ours {
        cfg,
        peers,
        env,
        processes: BTreeMap::new(),
        run: OursRun::default(),
    };
    let mut version = 1;
    // The first deployment (v1) makes a stable version to deploy beside.
    ours.deployment(version, false).await?;
    ours.end_generation();
    for _ in 0..cfg.generations {
        for d in 0..4 {
            version += 1;
            // Promoted, rolled back, promoted, rolled back: each function starts cold
            // once per generation and then runs warm.
            let roll_back = d % 2 == 1;
            // A rolled-back version's number is used up; the next deployment gets the
            // next number.
            ours.deployment(version, roll_back).await?;
        }
        ours.end_generation();
    }
    Ok(ours.run)
}
