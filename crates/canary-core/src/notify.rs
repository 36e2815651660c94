//! The notification of a decision: what a deployment tells the outside world each time
//! it decides something (started, ready, shifted, unhealthy, rolled back, ...). Pure:
//! this file builds the message; `canary_lambda::notify` sends it (an EventBridge event
//! and, when a topic is configured, an SNS message in the custom-notification format of
//! AWS Chatbot, now Amazon Q Developer in chat applications).
//!
//! Every notification carries a stable id, derived only from the execution, the kind of
//! decision (and, for a gate, its name) and the deployment's progress counters: the
//! step and the weight, and for a verdict (unhealthy, hold) the check count too. A task
//! retried with the same input document therefore sends the same id again, never a
//! second distinct message; two decisions of one execution that differ in kind or in
//! one of those counters never share an id. A shift is not told apart by the check
//! count: a health-check retried later may run one more check inside its invocation
//! before the same shift, which is still the same decision (the move to
//! `schedule[step]`).

use serde_json::{Map, Value, json};

use crate::execution::Deployment;
use crate::verdict::Verdict;

/// The EventBridge `source` of every notification.
pub const SOURCE: &str = "eks-canary";

/// A decision worth telling people about.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// render-template took the lock and began the deployment.
    Started,
    /// The new version's pods are ready.
    Ready,
    /// The new version did not become ready; `reasons` are the pods' (one sentence).
    NotReady { reasons: String },
    /// The canary's weight moved from `from` to `to` percent.
    Shifted { from: u8, to: u8 },
    /// A health check judged the canary unhealthy (numbers from `d.verdict`).
    Unhealthy,
    /// A health check saw too little traffic and holds (numbers from `d.verdict`).
    Hold,
    /// The deployment waits at `gate` for a person, until `deadline` (Unix seconds).
    Paused { gate: String, deadline: i64 },
    /// `by` approved `gate`.
    Approved {
        gate: String,
        by: String,
        reason: String,
    },
    /// `by` asked to promote without the remaining steps (`full`: straight to 100% at
    /// the next passing check).
    PromotedByHand {
        by: String,
        reason: String,
        full: bool,
    },
    /// The canary serves all traffic and the old version is removed.
    Promoted,
    /// All traffic went back to the stable version, from `weight` percent.
    RolledBack { reason: String, weight: u8 },
    /// A deployment that ended without finishing was restored.
    Recovered { reason: String },
    /// The deployment could not finish (the rollback itself failed).
    Failed { error: String, cause: String },
}

impl Decision {
    /// The EventBridge `detail-type`: one per decision, stable (rules match on it).
    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::Started => "Canary Started",
            Self::Ready => "Canary Ready",
            Self::NotReady { .. } => "Canary Not Ready",
            Self::Shifted { .. } => "Canary Shifted",
            Self::Unhealthy => "Canary Unhealthy",
            Self::Hold => "Canary Hold",
            Self::Paused { .. } => "Canary Paused",
            Self::Approved { .. } => "Canary Approved",
            Self::PromotedByHand { .. } => "Canary Promoted By Hand",
            Self::Promoted => "Canary Promoted",
            Self::RolledBack { .. } => "Canary Rolled Back",
            Self::Recovered { .. } => "Canary Recovered",
            Self::Failed { .. } => "Canary Failed",
        }
    }

    /// A short name of the decision (`started`, `shifted`, ...), as `detail.decision`
    /// carries it and the id contains it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Ready => "ready",
            Self::NotReady { .. } => "not-ready",
            Self::Shifted { .. } => "shifted",
            Self::Unhealthy => "unhealthy",
            Self::Hold => "hold",
            Self::Paused { .. } => "paused",
            Self::Approved { .. } => "approved",
            Self::PromotedByHand { .. } => "promoted-by-hand",
            Self::Promoted => "promoted",
            Self::RolledBack { .. } => "rolled-back",
            Self::Recovered { .. } => "recovered",
            Self::Failed { .. } => "failed",
        }
    }

    /// Every detail-type, in the order a deployment can send them (for docs and tests).
    pub const DETAIL_TYPES: [&'static str; 13] = [
        "Canary Started",
        "Canary Ready",
        "Canary Not Ready",
        "Canary Shifted",
        "Canary Unhealthy",
        "Canary Hold",
        "Canary Paused",
        "Canary Approved",
        "Canary Promoted By Hand",
        "Canary Promoted",
        "Canary Rolled Back",
        "Canary Recovered",
        "Canary Failed",
    ];

    /// One sentence: what was decided and why.
    pub fn reason(&self, service: &str, d: &Progress<'_>) -> String {
        let canary = format!("{service} v{}", d.canary_version);
        let verdict_reason = || {
            d.verdict
                .as_ref()
                .map(|v| v.reason.clone())
                .unwrap_or_else(|| "no verdict recorded".to_owned())
        };
        match self {
            Self::Started => match d.stable_version {
                Some(stable) => format!(
                    "deploying {canary} beside v{stable}, weights {}",
                    weights(d.schedule)
                ),
                None => format!("first deployment of {canary}: straight to 100%"),
            },
            Self::Ready => format!("{canary} is ready"),
            // The pods' reasons name the Deployment already.
            Self::NotReady { reasons } => reasons.clone(),
            Self::Shifted { from, to } => format!("{canary}: {from}% -> {to}% of traffic"),
            Self::Unhealthy => format!("{canary} unhealthy at {}%: {}", d.weight, verdict_reason()),
            Self::Hold => format!("{canary} holds at {}%: {}", d.weight, verdict_reason()),
            Self::Paused { gate, deadline } => format!(
                "{canary} paused at {}% at gate {gate}, waiting for approval until {}",
                d.weight,
                utc_time(*deadline)
            ),
            Self::Approved { gate, by, reason } => {
                format!("gate {gate} approved by {by}{}", because(reason))
            }
            Self::PromotedByHand { by, reason, full } => format!(
                "{canary} promoted by {by}{}: {}",
                because(reason),
                if *full {
                    "straight to 100% at the next passing check"
                } else {
                    "the remaining steps are skipped"
                }
            ),
            Self::Promoted => d
                .outcome_reason
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{canary} promoted")),
            // The rollback's reason names the versions and the weight already.
            Self::RolledBack { reason, .. } => reason.clone(),
            Self::Recovered { reason } => reason.clone(),
            Self::Failed { error, cause } => format!("{canary} failed: {error}: {cause}"),
        }
    }

    /// The weight the notification reports: the one the decision names, else the
    /// deployment's.
    fn weight(&self, d: &Progress<'_>) -> u8 {
        match self {
            Self::Shifted { to, .. } => *to,
            Self::RolledBack { weight, .. } => *weight,
            _ => d.weight,
        }
    }

    /// What tells two decisions of one kind apart beyond the counters (a gate's name).
    fn discriminator(&self) -> Option<&str> {
        match self {
            Self::Paused { gate, .. } | Self::Approved { gate, .. } => Some(gate),
            _ => None,
        }
    }
}

/// A notification, ready to send: the EventBridge entry's parts and the SNS message.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Stable id (see the module docs); also `detail.id` and the chat message's `id`.
    pub id: String,
    /// The EventBridge `source` ([`SOURCE`]).
    pub source: String,
    /// The EventBridge `detail-type` ([`Decision::detail_type`]).
    pub detail_type: String,
    /// The EventBridge `detail`.
    pub detail: Value,
    /// The SNS message body in AWS Chatbot's custom-notification format.
    pub chatbot: Value,
    /// When the decision was taken (Unix seconds): the EventBridge event's `time`. Not
    /// part of `detail` or `chatbot`, so that a retried task sends the same message.
    pub time: i64,
}

impl Notification {
    /// `detail.weight`.
    pub fn weight(&self) -> Option<u64> {
        self.detail.get("weight").and_then(Value::as_u64)
    }

    /// `detail.reason`.
    pub fn reason(&self) -> &str {
        self.detail
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// One line: `Canary Shifted  25%  yelb-appserver v4: 10% -> 25% of traffic`.
    pub fn line(&self) -> String {
        let weight = self
            .weight()
            .map(|w| format!("{w}%"))
            .unwrap_or_else(|| "-".to_owned());
        format!("{:<24} {weight:>4}  {}", self.detail_type, self.reason())
    }
}

/// The stable id of `decision` in the deployment `d`: `<hash of the execution>-<kind>-
/// s<step>-w<weight>`, with `-c<checks>` for a verdict (unhealthy, hold) and a hash of
/// the gate's name for a gate's decisions. Within one execution the id is injective over
/// those parts; across executions the 64-bit hash of the execution makes a clash
/// negligible.
pub fn notification_id(d: &Deployment, decision: &Decision) -> String {
    progress_id(&Progress::of(d), decision)
}

fn progress_id(d: &Progress<'_>, decision: &Decision) -> String {
    let mut id = format!(
        "{:016x}-{}-s{}-w{}",
        fnv1a64(d.execution.as_bytes()),
        decision.kind(),
        d.step,
        decision.weight(d)
    );
    if matches!(decision, Decision::Unhealthy | Decision::Hold) {
        id.push_str(&format!("-c{}", d.checks));
    }
    if let Some(gate) = decision.discriminator() {
        id.push_str(&format!("-g{:016x}", fnv1a64(gate.as_bytes())));
    }
    id
}

/// The notification of `decision` for `service` in `namespace` on `cluster`. `region`
/// is used for the console link when the execution is not an ARN naming its own.
pub fn notification(
    service: &str,
    namespace: &str,
    cluster: &str,
    d: &Deployment,
    decision: &Decision,
    region: &str,
    now: i64,
) -> Notification {
    notification_of_progress(
        service,
        namespace,
        cluster,
        &Progress::of(d),
        decision,
        region,
        now,
    )
}

/// What a notification says of a deployment: its execution, versions and progress
/// counters. [`Progress::of`] takes them from the execution document; a recovery, which
/// has only the records, fills them in itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress<'a> {
    /// The execution that owns (or owned) the deployment.
    pub execution: &'a str,
    /// The version deployed.
    pub canary_version: u32,
    /// The version before it, if any.
    pub stable_version: Option<u32>,
    /// The weights of the schedule.
    pub schedule: &'a [u8],
    /// Steps applied.
    pub step: usize,
    /// Checks run.
    pub checks: u32,
    /// The canary's weight.
    pub weight: u8,
    /// The highest weight it reached.
    pub max_weight: u8,
    /// The last verdict.
    pub verdict: Option<&'a Verdict>,
    /// Why it ended, when it has.
    pub outcome_reason: Option<&'a str>,
}

impl<'a> Progress<'a> {
    /// The progress of the deployment in an execution document.
    pub fn of(d: &'a Deployment) -> Self {
        Self {
            execution: &d.execution,
            canary_version: d.canary_version,
            stable_version: d.stable_version,
            schedule: &d.schedule,
            step: d.step,
            checks: d.checks,
            weight: d.weight,
            max_weight: d.max_weight,
            verdict: d.verdict.as_ref(),
            outcome_reason: d.outcome.as_ref().map(|o| o.reason.as_str()),
        }
    }
}

/// [`notification`] of a deployment known by its [`Progress`] (a recovery's).
pub fn notification_of_progress(
    service: &str,
    namespace: &str,
    cluster: &str,
    d: &Progress<'_>,
    decision: &Decision,
    region: &str,
    now: i64,
) -> Notification {
    let id = progress_id(d, decision);
    let reason = decision.reason(service, d);
    let weight = decision.weight(d);
    let console = console_link(d.execution, region);

    let mut detail = Map::new();
    detail.insert("id".into(), json!(id));
    detail.insert("decision".into(), json!(decision.kind()));
    detail.insert("service".into(), json!(service));
    detail.insert("namespace".into(), json!(namespace));
    detail.insert("cluster".into(), json!(cluster));
    detail.insert("canary_version".into(), json!(d.canary_version));
    detail.insert("stable_version".into(), json!(d.stable_version));
    detail.insert("weight".into(), json!(weight));
    detail.insert("max_weight".into(), json!(d.max_weight.max(weight)));
    detail.insert("step".into(), json!(d.step));
    detail.insert("steps".into(), json!(d.schedule.len()));
    detail.insert("checks".into(), json!(d.checks));
    detail.insert("reason".into(), json!(reason));
    if let Some(v) = &d.verdict {
        detail.insert("verdict".into(), verdict_numbers(v));
    }
    match decision {
        Decision::Shifted { from, to } => {
            detail.insert("from_weight".into(), json!(from));
            detail.insert("to_weight".into(), json!(to));
        }
        Decision::NotReady { reasons } => {
            detail.insert("pods".into(), json!(reasons));
        }
        Decision::Paused { gate, deadline } => {
            detail.insert("gate".into(), json!(gate));
            detail.insert("deadline".into(), json!(deadline));
        }
        Decision::Approved { gate, by, reason } => {
            detail.insert("gate".into(), json!(gate));
            detail.insert("by".into(), json!(by));
            detail.insert("by_reason".into(), json!(reason));
        }
        Decision::PromotedByHand { by, reason, full } => {
            detail.insert("by".into(), json!(by));
            detail.insert("by_reason".into(), json!(reason));
            detail.insert("full".into(), json!(full));
        }
        Decision::Failed { error, cause } => {
            detail.insert("error".into(), json!(error));
            detail.insert("cause".into(), json!(cause));
        }
        _ => {}
    }
    detail.insert("execution".into(), json!(d.execution));
    detail.insert("console".into(), json!(console));

    let chatbot = chatbot_message(
        service, namespace, cluster, d, decision, &id, &reason, console,
    );
    Notification {
        id,
        source: SOURCE.to_owned(),
        detail_type: decision.detail_type().to_owned(),
        detail: Value::Object(detail),
        chatbot,
        time: now,
    }
}

/// The verdict's numbers, as `detail.verdict` carries them.
fn verdict_numbers(v: &Verdict) -> Value {
    let mut m = Map::new();
    m.insert("status".into(), json!(v.status));
    m.insert("errors".into(), json!(v.errors));
    if let Some(r) = v.requests {
        m.insert("requests".into(), json!(r));
    }
    if let Some(r) = v.error_rate {
        m.insert("error_rate".into(), json!(r));
    }
    if let Some(l) = v.latency_ms {
        m.insert("latency_ms".into(), json!(l));
    }
    if let Some(s) = &v.stable {
        m.insert("stable".into(), json!(s));
    }
    m.insert("window_seconds".into(), json!(v.window_seconds));
    m.insert("datapoints".into(), json!(v.datapoints));
    m.insert("reason".into(), json!(v.reason));
    Value::Object(m)
}

/// AWS Chatbot's custom notification (`version` 1.0, `source` custom), one thread per
/// execution.
#[allow(clippy::too_many_arguments)]
fn chatbot_message(
    service: &str,
    namespace: &str,
    cluster: &str,
    d: &Progress<'_>,
    decision: &Decision,
    id: &str,
    reason: &str,
    console: Option<String>,
) -> Value {
    let emoji = match decision {
        Decision::Unhealthy | Decision::NotReady { .. } | Decision::Failed { .. } => ":x:",
        Decision::RolledBack { .. } => ":rewind:",
        Decision::Hold | Decision::Paused { .. } => ":pause_button:",
        Decision::Promoted | Decision::PromotedByHand { .. } | Decision::Approved { .. } => {
            ":white_check_mark:"
        }
        _ => ":arrow_forward:",
    };
    let title = format!(
        "{emoji} {} — {service} v{}",
        decision.detail_type(),
        d.canary_version
    );
    let mut description = format!(
        "{reason}\n*{cluster}* / *{namespace}*, weight {}%",
        decision.weight(d)
    );
    if let Some(link) = &console {
        description.push_str(&format!("\n<{link}|Execution>"));
    }
    let mut next_steps = Vec::new();
    match decision {
        Decision::Paused { .. } => {
            next_steps.push(format!("`canary approve {service} --reason <why>`"));
            next_steps.push(format!("`canary abort {service}`"));
        }
        Decision::Unhealthy | Decision::RolledBack { .. } | Decision::NotReady { .. } => {
            next_steps.push(format!("`canary history {service}` to see the verdicts"));
        }
        Decision::Failed { .. } => {
            next_steps.push(format!(
                "`canary recover {service}` once the cause is fixed"
            ));
        }
        _ => {}
    }
    if console.is_some() {
        next_steps.push("Open the execution in the Step Functions console".to_owned());
    }
    let thread = format!("eks-canary-{:016x}", fnv1a64(d.execution.as_bytes()));
    json!({
        "version": "1.0",
        "source": "custom",
        "id": id,
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": description,
            "nextSteps": next_steps,
            "keywords": [service, namespace, cluster, decision.kind()],
        },
        "metadata": {
            "threadId": thread,
            "summary": format!("{}: {service} v{}", decision.detail_type(), d.canary_version),
            "eventType": decision.detail_type(),
            "relatedResources": [d.execution],
            "additionalContext": {
                "service": service,
                "namespace": namespace,
                "cluster": cluster,
                "weight": decision.weight(d).to_string(),
            },
        },
    })
}

/// The Step Functions console page of `execution` when it is an execution ARN (its own
/// region wins over `region`); `None` for a local execution id.
pub fn console_link(execution: &str, region: &str) -> Option<String> {
    let parts: Vec<&str> = execution.split(':').collect();
    if parts.len() < 7 || parts[0] != "arn" || parts[2] != "states" || parts[5] != "execution" {
        return None;
    }
    let region = if parts[3].is_empty() {
        region
    } else {
        parts[3]
    };
    // The local executor's executions (`arn:aws:states:local:...`) have no console.
    if region.is_empty() || region == "local" {
        return None;
    }
    Some(format!(
        "https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}"
    ))
}

fn weights(schedule: &[u8]) -> String {
    schedule
        .iter()
        .map(|w| format!("{w}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn because(reason: &str) -> String {
    if reason.trim().is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

/// `2026-12-06 12:03 UTC` of Unix seconds.
pub fn utc_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// FNV-1a, 64 bits: a stable hash (the same on every machine and release).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::BTreeSet;

    use super::*;
    use crate::verdict::VerdictStatus;

    const ARN: &str = "arn:aws:states:eu-west-1:123456789012:execution:eks-canary:run-7";

    /// A deployment at its second step (10%), two checks run, built from the document's
    /// JSON so that fields added later with defaults keep this test compiling.
    fn deployment() -> Deployment {
        serde_json::from_value(json!({
            "execution": ARN,
            "canary_version": 4,
            "stable_version": 3,
            "provider": "appmesh",
            "route": {"api_version": "v1", "kind": "Route", "name": "r"},
            "schedule": [10, 50, 100],
            "step": 1,
            "weight": 10,
            "max_weight": 10,
            "lock_token": "t",
            "started_at": 0,
            "ready_deadline": 0,
            "checks": 2,
            "holds": 0,
            "next": "check",
            "wait_seconds": 0
        }))
        .expect("a valid deployment")
    }

    fn unhealthy() -> Verdict {
        Verdict {
            status: VerdictStatus::Unhealthy,
            errors: 12.0,
            requests: Some(400.0),
            error_rate: Some(3.0),
            window_seconds: 60,
            datapoints: 4,
            version: Some(4),
            latency_ms: None,
            comparison: None,
            stable: None,
            reason: "12 errors in 400 requests".into(),
        }
    }

    fn every_decision() -> Vec<Decision> {
        vec![
            Decision::Started,
            Decision::Ready,
            Decision::NotReady {
                reasons: "ImagePullBackOff".into(),
            },
            Decision::Shifted { from: 0, to: 10 },
            Decision::Unhealthy,
            Decision::Hold,
            Decision::Paused {
                gate: "g".into(),
                deadline: 100,
            },
            Decision::Approved {
                gate: "g".into(),
                by: "alice".into(),
                reason: "looks fine".into(),
            },
            Decision::PromotedByHand {
                by: "bob".into(),
                reason: String::new(),
                full: true,
            },
            Decision::Promoted,
            Decision::RolledBack {
                reason: "bad".into(),
                weight: 10,
            },
            Decision::Recovered {
                reason: "recovered".into(),
            },
            Decision::Failed {
                error: "RollbackFailed".into(),
                cause: "refused".into(),
            },
        ]
    }

    #[test]
    fn every_decision_has_its_own_detail_type_and_kind() {
        let all = every_decision();
        let types: BTreeSet<_> = all.iter().map(Decision::detail_type).collect();
        let kinds: BTreeSet<_> = all.iter().map(Decision::kind).collect();
        assert_eq!(types.len(), all.len());
        assert_eq!(kinds.len(), all.len());
        let listed: BTreeSet<_> = Decision::DETAIL_TYPES.into_iter().collect();
        assert_eq!(types, listed);
    }

    #[test]
    fn the_same_input_makes_the_same_id_and_the_same_message() {
        let d = deployment();
        for decision in every_decision() {
            let a = notification("svc", "ns", "c", &d, &decision, "eu-west-1", 5);
            let b = notification(
                "svc",
                "ns",
                "c",
                &d.clone(),
                &decision.clone(),
                "eu-west-1",
                5,
            );
            assert_eq!(a.id, b.id);
            assert_eq!(a, b);
            // A retry later on sends the same message; only the event's time differs.
            let later = notification("svc", "ns", "c", &d, &decision, "eu-west-1", 500);
            assert_eq!(
                (&later.id, &later.detail, &later.chatbot),
                (&a.id, &a.detail, &a.chatbot)
            );
            assert_eq!(later.time, 500);
        }
    }

    #[test]
    fn the_id_depends_on_the_execution_the_kind_and_each_counter_only() {
        let d = deployment();
        let base = notification_id(&d, &Decision::Hold);
        // The time, the region and the verdict's text do not change it.
        let mut later = d.clone();
        later.verdict = Some(unhealthy());
        later.wait_seconds = 30;
        assert_eq!(notification_id(&later, &Decision::Hold), base);
        let a = notification("s", "n", "c", &d, &Decision::Hold, "eu-west-1", 1);
        let b = notification("s", "n", "c", &later, &Decision::Hold, "us-east-1", 999);
        assert_eq!(a.id, b.id);

        let mut ids = BTreeSet::from([base.clone()]);
        let mut other = d.clone();
        other.execution.push('x');
        assert!(ids.insert(notification_id(&other, &Decision::Hold)));
        let mut other = d.clone();
        other.step += 1;
        assert!(ids.insert(notification_id(&other, &Decision::Hold)));
        let mut other = d.clone();
        other.checks += 1;
        assert!(ids.insert(notification_id(&other, &Decision::Hold)));
        let mut other = d.clone();
        other.weight = 50;
        assert!(ids.insert(notification_id(&other, &Decision::Hold)));
        assert!(ids.insert(notification_id(&d, &Decision::Unhealthy)));

        // A shift retried after one more check inside the invocation is the same shift.
        let shift = Decision::Shifted { from: 0, to: 10 };
        let mut retried = d.clone();
        retried.checks += 1;
        assert_eq!(
            notification_id(&retried, &shift),
            notification_id(&d, &shift)
        );
        let mut next = d.clone();
        next.step += 1;
        assert_ne!(notification_id(&next, &shift), notification_id(&d, &shift));
    }

    #[test]
    fn distinct_decisions_of_one_deployment_never_share_an_id() {
        // Every kind at every point of a three-step schedule with up to three checks a
        // step, and two gates: all ids differ.
        let mut seen = BTreeSet::new();
        let mut count = 0;
        for step in 0..=3usize {
            for checks in 0..=9u32 {
                for weight in [0u8, 10, 50, 100] {
                    let mut d = deployment();
                    d.step = step;
                    d.checks = checks;
                    d.weight = weight;
                    let mut decisions = every_decision();
                    decisions.push(Decision::Paused {
                        gate: "other".into(),
                        deadline: 100,
                    });
                    decisions.push(Decision::Approved {
                        gate: "other".into(),
                        by: "alice".into(),
                        reason: String::new(),
                    });
                    for decision in decisions {
                        // Only a verdict is told apart by the check count: the others
                        // are counted at the first check only.
                        if checks > 0 && !matches!(decision, Decision::Unhealthy | Decision::Hold) {
                            continue;
                        }
                        // Decisions that carry their own weight are placed at d.weight.
                        let decision = match decision {
                            Decision::Shifted { from, .. } => {
                                Decision::Shifted { from, to: weight }
                            }
                            Decision::RolledBack { reason, .. } => {
                                Decision::RolledBack { reason, weight }
                            }
                            other => other,
                        };
                        count += 1;
                        assert!(
                            seen.insert(notification_id(&d, &decision)),
                            "{decision:?} at step {step}, check {checks}, {weight}%"
                        );
                    }
                }
            }
        }
        assert_eq!(seen.len(), count);
    }

    #[test]
    fn the_detail_carries_service_versions_weight_verdict_execution_and_console_link() {
        let mut d = deployment();
        d.verdict = Some(unhealthy());
        let n = notification(
            "yelb-appserver",
            "yelb",
            "blogpost",
            &d,
            &Decision::Unhealthy,
            "us-east-1",
            77,
        );
        assert_eq!(n.source, "eks-canary");
        assert_eq!(n.detail_type, "Canary Unhealthy");
        let det = &n.detail;
        assert_eq!(det["service"], "yelb-appserver");
        assert_eq!(det["namespace"], "yelb");
        assert_eq!(det["cluster"], "blogpost");
        assert_eq!(det["canary_version"], 4);
        assert_eq!(det["stable_version"], 3);
        assert_eq!(det["weight"], 10);
        assert_eq!(det["verdict"]["errors"], 12.0);
        assert_eq!(det["verdict"]["requests"], 400.0);
        assert_eq!(det["verdict"]["error_rate"], 3.0);
        assert_eq!(det["verdict"]["status"], "unhealthy");
        assert_eq!(det["execution"], ARN);
        assert_eq!(det["id"], n.id.as_str());
        assert_eq!(n.time, 77);
        assert_eq!(det.get("time"), None, "a retry later sends the same detail");
        // The ARN's region wins over the one given.
        assert_eq!(
            det["console"],
            format!(
                "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/{ARN}"
            )
        );
        assert!(
            n.reason().contains("12 errors in 400 requests"),
            "{}",
            n.reason()
        );
    }

    #[test]
    fn a_local_execution_has_no_console_link() {
        let mut d = deployment();
        d.execution = "yelb-appserver-local-1767225600".into();
        let n = notification("s", "n", "c", &d, &Decision::Started, "eu-west-1", 0);
        assert_eq!(n.detail["console"], Value::Null);
        assert_eq!(console_link("arn:aws:s3:::bucket", "eu-west-1"), None);
        let local = "arn:aws:states:local:000000000000:execution:canary-deployment:demo-2";
        assert_eq!(console_link(local, "eu-west-1"), None);
    }

    #[test]
    fn the_chat_message_is_a_custom_notification_threaded_per_execution() {
        let d = deployment();
        let a = notification(
            "svc",
            "ns",
            "c",
            &d,
            &Decision::Shifted { from: 0, to: 10 },
            "r",
            0,
        );
        let b = notification(
            "svc",
            "ns",
            "c",
            &d,
            &Decision::RolledBack {
                reason: "bad".into(),
                weight: 10,
            },
            "r",
            0,
        );
        for n in [&a, &b] {
            assert_eq!(n.chatbot["version"], "1.0");
            assert_eq!(n.chatbot["source"], "custom");
            assert_eq!(n.chatbot["content"]["textType"], "client-markdown");
            assert!(
                n.chatbot["content"]["title"]
                    .as_str()
                    .unwrap()
                    .contains("svc v4")
            );
            assert!(n.chatbot["content"]["nextSteps"].is_array());
            assert_eq!(n.chatbot["metadata"]["eventType"], n.detail_type.as_str());
            assert_eq!(n.chatbot["id"], n.id.as_str());
        }
        assert_eq!(
            a.chatbot["metadata"]["threadId"],
            b.chatbot["metadata"]["threadId"]
        );
        let mut other = d.clone();
        other.execution = "another".into();
        let c = notification("svc", "ns", "c", &other, &Decision::Started, "r", 0);
        assert_ne!(
            a.chatbot["metadata"]["threadId"],
            c.chatbot["metadata"]["threadId"]
        );
    }

    #[test]
    fn reasons_name_the_weight_and_why() {
        let d = deployment();
        let n = notification(
            "svc",
            "ns",
            "c",
            &d,
            &Decision::RolledBack {
                reason: "12 errors".into(),
                weight: 50,
            },
            "r",
            0,
        );
        assert_eq!(n.weight(), Some(50));
        assert_eq!(n.reason(), "12 errors");
        let n = notification(
            "svc",
            "ns",
            "c",
            &d,
            &Decision::Shifted { from: 10, to: 50 },
            "r",
            0,
        );
        assert_eq!(n.reason(), "svc v4: 10% -> 50% of traffic");
        assert!(n.line().starts_with("Canary Shifted"), "{}", n.line());
        assert!(n.line().contains(" 50%"), "{}", n.line());
        let n = notification(
            "svc",
            "ns",
            "c",
            &d,
            &Decision::Paused {
                gate: "before-50".into(),
                deadline: 1_767_225_600 + 3600 + 180,
            },
            "r",
            0,
        );
        assert!(
            n.reason().contains("until 2026-01-01 01:03 UTC"),
            "{}",
            n.reason()
        );
        assert_eq!(n.detail["gate"], "before-50");
    }

    #[test]
    fn utc_time_formats_dates_across_leap_years() {
        assert_eq!(utc_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_time(1_767_225_599), "2025-12-31 23:59 UTC");
    }
}
