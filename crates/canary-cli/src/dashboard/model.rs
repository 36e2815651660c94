//! What the dashboard shows, read from the records ([`Board`], [`ServiceView`],
//! [`DeploymentView`]) and each deployment's timeline ([`Row`]s, the rows `canary demo`
//! and `canary run` print).
//!
//! A record keeps the weight now and the last verdicts, not when each happened, so a
//! timeline comes from the best source there is, in this order:
//! 1. the rows the local executor produced (`canary demo --dashboard`): exact;
//! 2. the execution's history in Step Functions (`--state-machine`): exact;
//! 3. what this dashboard saw while it polled the records (live samples): exact from
//!    the moment it started;
//! 4. the record alone: the start, the verdicts in their order, the end; the checks'
//!    times are then spread evenly and the chart says so.
//!
//! Gates and operator actions (the record's `gate` and `operator`: paused, approved,
//! promoted, timed out, aborted) are marked on the timeline at their times.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use canary_core::execution::OutcomeStatus;
use canary_core::spec::OnTimeout;
use canary_core::{ActionKind, GateWait, OperatorAction, Verdict, VerdictStatus};
use canary_store::{Abort, DeploymentStore, LockInfo, ObjectStore, Record, ServiceRef};
use serde::Serialize;

use crate::error::CliError;
use crate::format::{outcome_word, utc, verdict_numbers};
use crate::progress::Row;

/// The whole page: groups of services (one per bucket, or one per demo scenario).
#[derive(Debug, Clone, Serialize)]
pub struct Board {
    /// The page's title.
    pub title: String,
    /// Whether actions are refused.
    pub read_only: bool,
    /// When the board was read (Unix seconds).
    pub read_at: i64,
    pub groups: Vec<GroupView>,
}

/// One group of services read from one store.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    /// The group's index (what an action names with the service).
    pub index: usize,
    /// `bucket B` or the demo scenario's name.
    pub label: String,
    /// One line under the label (the scenario's title and how it ended).
    pub note: Option<String>,
    pub services: Vec<ServiceView>,
    /// A failure to list or read the group, said instead of its services.
    pub error: Option<String>,
}

/// One service: what runs, its lock, its history.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    /// `cluster/namespace/service`.
    pub service: String,
    pub stable_version: Option<u32>,
    pub stable_image: Option<String>,
    /// The running deployment.
    pub running: Option<DeploymentView>,
    /// The lock, when held.
    pub lock: Option<LockInfo>,
    /// A pending abort request.
    pub abort: Option<Abort>,
    /// Every deployment, newest first (the running one included).
    pub history: Vec<DeploymentView>,
}

/// A gate a deployment waits at (the record's `gate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateView {
    /// `50%`, or `100%, before promotion`.
    pub label: String,
    pub weight: u8,
    /// Since when it waits (Unix seconds).
    pub since: i64,
    /// When the wait ends on its own (Unix seconds).
    pub deadline: i64,
    /// Whether the deadline rolls back (else the deployment goes on).
    pub rolls_back: bool,
}

impl GateView {
    /// The view of `g`.
    pub fn of(g: &GateWait) -> Self {
        Self {
            label: if g.weight >= 100 {
                "100%, before promotion".to_owned()
            } else {
                g.gate.clone()
            },
            weight: g.weight,
            since: g.since,
            deadline: g.deadline,
            rolls_back: g.on_timeout == OnTimeout::Rollback,
        }
    }

    /// `paused at 50%, waiting for approval since ..., rolls back at ...`.
    pub fn sentence(&self) -> String {
        format!(
            "paused at {}, waiting for approval since {} UTC, {} at {} UTC",
            self.label,
            utc(self.since),
            if self.rolls_back {
                "rolls back"
            } else {
                "goes on"
            },
            utc(self.deadline)
        )
    }
}

/// An operator's or a gate's action on a deployment (the record's `operator`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorView {
    /// `paused`, `approved`, `promoted`, `promoted to 100%`, `timed out`, `aborted`.
    pub kind: String,
    pub by: String,
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
    /// The gate it concerns.
    pub gate: Option<String>,
    /// The canary's weight then.
    pub weight: u8,
}

impl OperatorView {
    /// The view of `a`.
    pub fn of(a: &OperatorAction) -> Self {
        let kind = match a.kind {
            ActionKind::Paused => "paused",
            ActionKind::Approved => "approved",
            ActionKind::Promoted => "promoted",
            ActionKind::PromotedFull => "promoted to 100%",
            ActionKind::TimedOut => "timed out",
            ActionKind::Aborted => "aborted",
        };
        Self {
            kind: kind.to_owned(),
            by: a.by.clone(),
            reason: a.reason.clone(),
            at: a.at,
            gate: a.gate.clone(),
            weight: a.weight,
        }
    }

    /// `approved at the 50% gate by ana: looks good`.
    pub fn sentence(&self) -> String {
        let at = self
            .gate
            .as_ref()
            .map(|g| format!(" at the {g} gate"))
            .unwrap_or_default();
        format!("{}{at} by {}: {}", self.kind, self.by, self.reason)
    }
}

/// One deployment and its timeline.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentView {
    pub version: u32,
    pub image: String,
    pub previous_version: Option<u32>,
    pub execution: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// `promoted`, `rolled_back`; `None` while it runs.
    pub outcome: Option<String>,
    /// Why it ended so.
    pub reason: Option<String>,
    pub weight: u8,
    pub max_weight: u8,
    /// Steps applied and steps in the schedule, when the timeline knows them.
    pub step: Option<(usize, usize)>,
    /// When the next health check is due (Unix seconds), when known.
    pub next_check: Option<i64>,
    /// The last verdicts, oldest first.
    pub verdicts: Vec<Verdict>,
    pub gate: Option<GateView>,
    pub operator: Vec<OperatorView>,
    /// The timeline, oldest first.
    pub timeline: Vec<Row>,
    /// Whether the timeline's times are exact (else the checks are spread evenly).
    pub exact_times: bool,
    /// The last time the record was written (Unix seconds).
    pub updated_at: i64,
}

impl DeploymentView {
    /// The last verdict.
    pub fn last_verdict(&self) -> Option<&Verdict> {
        self.verdicts.last()
    }

    /// Whether the deployment still runs.
    pub fn running(&self) -> bool {
        self.outcome.is_none()
    }
}

/// How a group finds its services.
#[derive(Debug, Clone)]
pub enum Listing {
    /// These services (the demo's).
    Fixed(Vec<ServiceRef>),
    /// Every `<prefix><cluster>/<namespace>/<service>/state.json` in the objects.
    Objects {
        objects: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

impl Listing {
    /// The services, sorted.
    pub async fn services(&self) -> Result<Vec<ServiceRef>, CliError> {
        match self {
            Self::Fixed(list) => Ok(list.clone()),
            Self::Objects { objects, prefix } => {
                let p = normalized_prefix(prefix);
                let mut out = Vec::new();
                for key in objects.list(&p).await? {
                    let Some(rest) = key.strip_prefix(&p) else {
                        continue;
                    };
                    let parts: Vec<&str> = rest.split('/').collect();
                    if let [c, n, s, "state.json"] = parts.as_slice() {
                        out.push(ServiceRef::new(*c, *n, *s));
                    }
                }
                out.sort_by_key(ToString::to_string);
                Ok(out)
            }
        }
    }
}

/// The prefix as the store writes it: `state/` for `state`, `` for ``.
pub fn normalized_prefix(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        String::new()
    } else {
        format!("{p}/")
    }
}

/// Where exact timelines come from, beside the records.
#[async_trait::async_trait]
pub trait TimelineSource: Send + Sync + std::fmt::Debug {
    /// The rows of `execution` (deploying `version` of `svc`), when this source has them.
    async fn rows(&self, svc: &ServiceRef, version: u32, execution: &str) -> Option<TimedRows>;
}

/// Rows from an exact source, and what they say of the next check.
#[derive(Debug, Clone, Default)]
pub struct TimedRows {
    pub rows: Vec<Row>,
    /// When the next health check is due (Unix seconds).
    pub next_check: Option<i64>,
}

/// The demo's rows, by service and version.
#[derive(Debug, Clone, Default)]
pub struct FixedRows(pub HashMap<(String, u32), Vec<Row>>);

#[async_trait::async_trait]
impl TimelineSource for FixedRows {
    async fn rows(&self, svc: &ServiceRef, version: u32, _execution: &str) -> Option<TimedRows> {
        self.0
            .get(&(svc.to_string(), version))
            .map(|rows| TimedRows {
                rows: rows.clone(),
                next_check: None,
            })
    }
}

/// One group: a store, how to list its services, an exact timeline source, and what
/// the dashboard saw while polling.
#[derive(Debug)]
pub struct Group {
    pub label: String,
    pub note: Option<String>,
    pub store: DeploymentStore,
    pub listing: Listing,
    pub timelines: Option<Arc<dyn TimelineSource>>,
    samples: Mutex<HashMap<(String, u32), Samples>>,
    /// Records that have ended (they never change again), so that a poll reads only
    /// the running one.
    ended: Mutex<HashMap<(String, u32), Record>>,
}

/// What the dashboard saw of one deployment while polling.
#[derive(Debug, Default)]
struct Samples {
    rows: Vec<Row>,
    /// Whether the first rows (what the record said when first seen) are estimated.
    estimated: bool,
}

impl Group {
    /// A group with nothing seen yet.
    pub fn new(label: impl Into<String>, store: DeploymentStore, listing: Listing) -> Self {
        Self {
            label: label.into(),
            note: None,
            store,
            listing,
            timelines: None,
            samples: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
        }
    }

    /// The same group with a note under its label.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// The same group with an exact timeline source.
    pub fn with_timelines(mut self, source: Arc<dyn TimelineSource>) -> Self {
        self.timelines = Some(source);
        self
    }

    /// Reads every service of the group; a failure is said in the group's `error`.
    pub async fn read(&self, index: usize, now: i64) -> GroupView {
        let mut view = GroupView {
            index,
            label: self.label.clone(),
            note: self.note.clone(),
            services: Vec::new(),
            error: None,
        };
        let services = match self.listing.services().await {
            Ok(s) => s,
            Err(e) => {
                view.error = Some(format!("cannot list the services: {e}"));
                return view;
            }
        };
        for svc in services {
            match self.read_service(&svc, now).await {
                Ok(s) => view.services.push(s),
                Err(e) => {
                    view.error = Some(format!("cannot read {svc}: {e}"));
                }
            }
        }
        view
    }

    /// One service's view.
    pub async fn read_service(&self, svc: &ServiceRef, now: i64) -> Result<ServiceView, CliError> {
        let status = self.store.status(svc).await?;
        let abort = self.store.abort_requested(svc).await?;
        let records = self.records(svc).await?;
        let mut history = Vec::with_capacity(records.len());
        for r in &records {
            history.push(self.deployment(svc, r, now).await);
        }
        let running_version = status.state.in_progress.as_ref().map(|p| p.version);
        let running = running_version
            .and_then(|v| history.iter().find(|d| d.version == v && d.running()))
            .cloned();
        Ok(ServiceView {
            service: svc.to_string(),
            stable_version: status.state.stable_version,
            stable_image: status.state.stable_image.clone(),
            running,
            lock: status.lock,
            abort,
            history,
        })
    }

    /// Every record of `svc`, newest first. Over S3 the history is listed and only the
    /// records not seen ended yet are read; elsewhere it is read whole.
    async fn records(&self, svc: &ServiceRef) -> Result<Vec<Record>, CliError> {
        let Listing::Objects { objects, prefix } = &self.listing else {
            return Ok(self.store.history(svc).await?);
        };
        let dir = format!("{}{svc}/history/", normalized_prefix(prefix));
        let mut versions: Vec<u32> = objects
            .list(&dir)
            .await?
            .iter()
            .filter_map(|k| k.strip_prefix(&dir)?.strip_suffix(".json")?.parse().ok())
            .collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            let key = (svc.to_string(), v);
            let cached = self.ended.lock().ok().and_then(|m| m.get(&key).cloned());
            let record = match cached {
                Some(r) => r,
                None => {
                    let Some(r) = self.store.record(svc, v).await? else {
                        continue;
                    };
                    if r.outcome.is_some()
                        && let Ok(mut m) = self.ended.lock()
                    {
                        m.insert(key, r.clone());
                    }
                    r
                }
            };
            out.push(record);
        }
        Ok(out)
    }

    /// One deployment's view, with its timeline from the best source there is.
    pub async fn deployment(&self, svc: &ServiceRef, r: &Record, now: i64) -> DeploymentView {
        let mut view = DeploymentView {
            version: r.version,
            image: r.image.clone(),
            previous_version: r.previous_version,
            execution: r.execution.clone(),
            started_at: r.started_at,
            ended_at: r.ended_at,
            outcome: r
                .outcome
                .as_ref()
                .map(|o| outcome_word(o.status).to_owned()),
            reason: r.outcome.as_ref().map(|o| o.reason.clone()),
            weight: r.weight,
            max_weight: r.max_weight,
            step: None,
            next_check: None,
            verdicts: r.verdicts.clone(),
            gate: r
                .gate
                .as_ref()
                .filter(|_| r.outcome.is_none())
                .map(GateView::of),
            operator: r.operator.iter().map(OperatorView::of).collect(),
            timeline: Vec::new(),
            exact_times: true,
            updated_at: r.updated_at,
        };
        let exact = match &self.timelines {
            Some(t) => t.rows(svc, r.version, &r.execution).await,
            None => None,
        };
        let mut rows = match exact {
            Some(t) if !t.rows.is_empty() => {
                view.next_check = t.next_check.filter(|_| r.outcome.is_none());
                t.rows
            }
            _ => {
                let (sampled, estimated) = self.sample(svc, r, now);
                if sampled.len() > 1 {
                    view.exact_times = !estimated;
                    sampled
                } else {
                    view.exact_times = r.verdicts.is_empty();
                    record_rows(r)
                }
            }
        };
        if let Some(last) = rows.last()
            && last.steps > 0
        {
            view.step = Some((last.step, last.steps));
        }
        add_operator_rows(&mut rows, &view);
        if rows.is_empty() {
            rows = record_rows(r);
        }
        if let Some(o) = &r.outcome
            && !rows.iter().any(|row| row.state == "Ended")
        {
            let last = rows.last().map_or(0, |row| row.at_millis);
            rows.push(Row {
                at_millis: (r.ended_at.unwrap_or(r.updated_at) * 1000).max(last),
                state: "Ended".into(),
                weight: r.weight,
                step: rows.last().map_or(0, |row| row.step),
                steps: rows.last().map_or(0, |row| row.steps),
                verdict: None,
                bad: o.status == OutcomeStatus::RolledBack,
                note: o.reason.clone(),
            });
        }
        view.timeline = rows;
        view
    }

    /// Notes what the record says now (a new weight, a new verdict, the end) and
    /// returns every sample of that deployment, and whether the first are estimated
    /// (what the record said when the dashboard first saw it run).
    fn sample(&self, svc: &ServiceRef, r: &Record, now: i64) -> (Vec<Row>, bool) {
        let Ok(mut samples) = self.samples.lock() else {
            return (Vec::new(), false);
        };
        let key = (svc.to_string(), r.version);
        let entry = samples.entry(key).or_default();
        if entry.rows.is_empty() {
            if r.outcome.is_some() {
                // Ended before the dashboard saw it run: nothing was sampled.
                return (Vec::new(), false);
            }
            entry.rows = record_rows(r);
            entry.estimated = !r.verdicts.is_empty();
            return (entry.rows.clone(), entry.estimated);
        }
        let estimated = entry.estimated;
        let rows = &mut entry.rows;
        let last = rows.last().cloned();
        let verdict = r.verdicts.last().cloned();
        let new_verdict = verdict.is_some()
            && !rows
                .iter()
                .any(|row| row.verdict.is_some() && row.verdict == verdict);
        let ended = r.outcome.is_some();
        let changed = last.as_ref().is_none_or(|l| l.weight != r.weight) || new_verdict || ended;
        let already_ended = last.as_ref().is_some_and(|l| l.state == "Ended");
        if changed && !already_ended {
            let at = if ended {
                r.ended_at.unwrap_or(r.updated_at)
            } else {
                r.updated_at
                    .max(last.as_ref().map_or(0, |l| l.at_millis / 1000))
            };
            let at = if at > now + 3600 { now } else { at };
            let (note, bad) = match (&r.outcome, &verdict) {
                (Some(o), _) => (o.reason.clone(), o.status == OutcomeStatus::RolledBack),
                (None, Some(v)) if new_verdict => {
                    (verdict_numbers(v), v.status == VerdictStatus::Unhealthy)
                }
                _ => (format!("v{} at {}%", r.version, r.weight), false),
            };
            rows.push(Row {
                at_millis: at * 1000,
                state: if ended {
                    "Ended".into()
                } else if new_verdict {
                    "HealthCheck".into()
                } else {
                    "ShiftWeights".into()
                },
                weight: r.weight,
                step: 0,
                steps: 0,
                verdict: if new_verdict && !ended { verdict } else { None },
                bad,
                note,
            });
        }
        (rows.clone(), estimated)
    }
}

fn start_row(r: &Record) -> Row {
    let note = match r.previous_version {
        Some(p) => format!("v{} started beside stable v{p}", r.version),
        None => format!("v{} started (first deployment)", r.version),
    };
    Row {
        at_millis: r.started_at * 1000,
        state: "Started".into(),
        weight: 0,
        step: 0,
        steps: 0,
        verdict: None,
        bad: false,
        note,
    }
}

/// The timeline the record alone gives: the start, each verdict (spread evenly between
/// the start and the end or the last update), the end.
pub fn record_rows(r: &Record) -> Vec<Row> {
    let mut rows = vec![start_row(r)];
    let end = r.ended_at.unwrap_or(r.updated_at).max(r.started_at);
    let n = i64::try_from(r.verdicts.len()).unwrap_or(i64::MAX);
    let span = end - r.started_at;
    for (i, v) in r.verdicts.iter().enumerate() {
        let i = i64::try_from(i).unwrap_or(0) + 1;
        let at = r.started_at + span * i / (n + 1);
        rows.push(Row {
            at_millis: at * 1000,
            state: "HealthCheck".into(),
            weight: r.max_weight.max(r.weight),
            step: 0,
            steps: 0,
            verdict: Some(v.clone()),
            bad: v.status == VerdictStatus::Unhealthy,
            note: verdict_numbers(v),
        });
    }
    if let Some(o) = &r.outcome {
        rows.push(Row {
            at_millis: end * 1000,
            state: "Ended".into(),
            weight: r.weight,
            step: 0,
            steps: 0,
            verdict: None,
            bad: o.status == OutcomeStatus::RolledBack,
            note: o.reason.clone(),
        });
    } else if r.weight > 0 {
        rows.push(Row {
            at_millis: r.updated_at * 1000,
            state: "ShiftWeights".into(),
            weight: r.weight,
            step: 0,
            steps: 0,
            verdict: None,
            bad: false,
            note: format!("v{} at {}%", r.version, r.weight),
        });
    }
    rows.sort_by_key(|row| row.at_millis);
    rows
}

/// Adds the waiting gate and each operator action to `rows`, in time order (a gate's
/// pause is one of the actions; a gate still waiting without one is added too).
fn add_operator_rows(rows: &mut Vec<Row>, view: &DeploymentView) {
    let mut added: Vec<Row> = view
        .operator
        .iter()
        .map(|a| Row {
            at_millis: a.at * 1000,
            state: if a.kind == "paused" {
                "Gate".into()
            } else {
                "Operator".into()
            },
            weight: a.weight,
            step: 0,
            steps: 0,
            verdict: None,
            bad: a.kind == "aborted" || (a.kind == "timed out" && view.outcome.is_some()),
            note: a.sentence(),
        })
        .collect();
    if let Some(g) = &view.gate
        && !view
            .operator
            .iter()
            .any(|a| a.kind == "paused" && a.at == g.since)
    {
        added.push(Row {
            at_millis: g.since * 1000,
            state: "Gate".into(),
            weight: g.weight,
            step: 0,
            steps: 0,
            verdict: None,
            bad: false,
            note: g.sentence(),
        });
    }
    if added.is_empty() {
        return;
    }
    rows.extend(added);
    // At the same second a person's action came first (the check then applied it),
    // and a gate's pause came after (the check decided it).
    rows.sort_by_key(|row| {
        let order = match row.state.as_str() {
            "Operator" => 0,
            "Gate" => 2,
            _ => 1,
        };
        (row.at_millis, order)
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use canary_store::Finish;

    use super::*;

    fn verdict(status: VerdictStatus, errors: f64, reason: &str) -> Verdict {
        Verdict {
            status,
            errors,
            requests: Some(100.0),
            error_rate: Some(errors),
            window_seconds: 300,
            datapoints: 5,
            version: Some(2),
            latency_ms: None,
            comparison: None,
            stable: None,
            reason: reason.into(),
        }
    }

    #[tokio::test]
    async fn a_deployment_seen_while_it_runs_is_sampled_at_each_change_and_ends_marked() {
        let store = DeploymentStore::memory();
        let svc = ServiceRef::new("c", "n", "web");
        let group = Group::new("g", store.clone(), Listing::Fixed(vec![svc.clone()]));
        let t = 1_000_000;
        store.take_lock(&svc, "e1", t).await.unwrap();
        store.begin(&svc, "e1", "repo/web:1", t).await.unwrap();
        let lock = store.take_lock(&svc, "e1", t).await.unwrap();
        let ok = verdict(VerdictStatus::Healthy, 0.0, "fine");
        store
            .record_progress(&svc, "e1", 1, 10, Some(&ok), t + 60)
            .await
            .unwrap();

        // First seen: what the record says, its check's time estimated.
        let first = group.read(0, t + 61).await;
        let d = first.services[0].running.clone().expect("running");
        assert!(!d.exact_times);
        assert_eq!(
            d.timeline.first().map(|r| r.state.as_str()),
            Some("Started")
        );
        assert_eq!(d.last_verdict().map(|v| v.reason.as_str()), Some("fine"));

        // A shift and a bad check: each sampled at the record's time, in order.
        store
            .record_progress(&svc, "e1", 1, 20, None, t + 120)
            .await
            .unwrap();
        group.read(0, t + 121).await;
        let bad = verdict(VerdictStatus::Unhealthy, 7.0, "7 errors: too many");
        store
            .record_progress(&svc, "e1", 1, 20, Some(&bad), t + 180)
            .await
            .unwrap();
        let seen = group.read(0, t + 181).await;
        let rows = &seen.services[0].running.as_ref().unwrap().timeline;
        let tail: Vec<(i64, u8, bool)> = rows
            .iter()
            .rev()
            .take(2)
            .map(|r| (r.at_millis / 1000 - t, r.weight, r.bad))
            .collect();
        assert_eq!(tail, vec![(180, 20, true), (120, 20, false)], "{rows:?}");

        store
            .finish_rolled_back(
                &svc,
                &Finish {
                    execution: "e1".into(),
                    lock_token: lock.token,
                    version: 1,
                    image: "repo/web:1".into(),
                    started_at: t,
                    ended_at: t + 200,
                    max_weight: 20,
                    verdicts: vec![ok, bad],
                    reason: "rolled back at 20%: 7 errors".into(),
                },
            )
            .await
            .unwrap();
        let ended = group.read(0, t + 201).await;
        let s = &ended.services[0];
        assert!(s.running.is_none() && s.lock.is_none());
        let d = &s.history[0];
        assert_eq!(d.outcome.as_deref(), Some("rolled_back"));
        let end = d.timeline.last().unwrap();
        assert_eq!(
            (end.state.as_str(), end.weight, end.at_millis / 1000 - t),
            ("Ended", 0, 200)
        );
        assert_eq!(d.timeline.iter().filter(|r| r.state == "Ended").count(), 1);
    }

    #[test]
    fn a_record_alone_gives_start_checks_in_order_and_end() {
        let r = Record {
            version: 3,
            execution: "e3".into(),
            image: "i:3".into(),
            previous_version: Some(2),
            previous_image: Some("i:2".into()),
            started_at: 100,
            ended_at: Some(400),
            outcome: Some(canary_core::Outcome {
                status: OutcomeStatus::Promoted,
                reason: "promoted".into(),
            }),
            weight: 100,
            max_weight: 100,
            verdicts: vec![
                verdict(VerdictStatus::Healthy, 0.0, "a"),
                verdict(VerdictStatus::Hold, 0.0, "b"),
            ],
            manifest_key: "m".into(),
            updated_at: 400,
            gate: None,
            operator: Vec::new(),
        };
        let rows = record_rows(&r);
        let got: Vec<(i64, &str)> = rows
            .iter()
            .map(|r| (r.at_millis / 1000, r.state.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (100, "Started"),
                (200, "HealthCheck"),
                (300, "HealthCheck"),
                (400, "Ended")
            ]
        );
        assert!(rows[1].note.starts_with("healthy: "));
        assert!(!rows[3].bad);
    }
}
