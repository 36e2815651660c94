//! The weight shift, shared by every task that moves traffic forward: shift-weights
//! itself, deploy-canary (the first shift, in the invocation that saw the new version
//! ready) and health-check (the shift that follows a check ending a step, in the same
//! invocation). One route write per shift, whoever makes it; and [`pause`], the wait a
//! task makes inside its invocation (readiness polls, the checks of a step).
//!
//! Every shift notifies "Canary Shifted" (from and to), after the record notes it.
//!
//! Retries: a task retried after a timeout gets the document it had before, so it
//! shifts to the same `schedule[step]` again; the router compares the route's current
//! weights with that target and writes nothing when they already agree, so a shift is
//! never applied twice and never goes back.

use canary_core::clock::Clock;
use canary_core::notify::Decision;
use canary_kube::Cluster;
use serde_json::Value;

use crate::{HandlerError, Services, Task};

impl Task {
    /// Moves the canary to `schedule[step]` with one write to the route (a first
    /// deployment creates its route with the new version at 100%), notes the weight in
    /// the record, and decides what follows (`canary_core::decide::shift`). `cluster`
    /// must come from [`Task::cluster`] (the lock's fence); the caller has honoured an
    /// abort request already (`check_abort`, or health-check's aborted verdict).
    pub async fn shift(
        &mut self,
        services: &Services,
        cluster: Cluster,
    ) -> Result<(), HandlerError> {
        let from = self.deployment.weight;
        let Some(weight) = self.deployment.next_weight() else {
            return Err(HandlerError::internal(format!(
                "a shift was asked for after the last step of {:?}",
                self.deployment.schedule
            )));
        };
        if self.deployment.is_first() {
            let route: Vec<Value> = self
                .render(100)?
                .objects
                .into_iter()
                .filter(|o| o.is_route)
                .map(|o| o.value)
                .collect();
            cluster.apply(&route).await?;
        } else {
            let report = self
                .router(cluster)
                .set_weights(&self.deployment.route, &self.backends(weight))
                .await?;
            tracing::info!(
                weight,
                written = report.written,
                conflicts = report.conflicts,
                "shifted"
            );
        }
        let now = services.clock.now_secs();
        self.deployment.after_shift(&self.spec, now);
        let d = &self.deployment;
        services
            .store
            .record_progress(
                &self.service_ref(),
                &d.execution,
                d.canary_version,
                d.weight,
                None,
                now,
            )
            .await?;
        let to = self.deployment.weight;
        crate::emf::emit(
            &self.service_ref(),
            &self.deployment,
            "shift",
            services.clock.now_millis(),
        );
        crate::notify(services, self, Decision::Shifted { from, to }).await;
        Ok(())
    }
}

/// Waits `millis` inside the invocation: a virtual clock (tests, the demo, the
/// benchmark) moves instead; the system clock sleeps.
pub async fn pause(clock: &dyn Clock, millis: u64) {
    let m = i64::try_from(millis).unwrap_or(i64::MAX);
    if !clock.advance(m) {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
}
