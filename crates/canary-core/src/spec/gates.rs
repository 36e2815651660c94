//! `gates`: where a deployment pauses until a person approves, how long it waits, and
//! what the wait running out means.
//!
//! ```json
//! "gates": [
//!   {"at": 50, "timeout": 3600},
//!   {"at": "promotion", "timeout": 7200, "on_timeout": "continue"}
//! ]
//! ```
//!
//! A gate `at` a weight pauses once the canary has held that weight for `wait_time`
//! with a passing check; a gate `at: "promotion"` pauses at 100% once the bake is over,
//! before the old version is removed. While paused, the weight holds and the health
//! checks go on every `check_interval` (a failing one rolls back at once). A first
//! deployment (nothing to compare with, nothing to roll back to) has no gates.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fields::near;
use super::reader::{Reader, kind};

/// How long a gate waits when deploy.json does not say: one hour.
pub const DEFAULT_GATE_TIMEOUT: u64 = 3_600;
/// The shortest gate timeout, in seconds (short gates are for tests and dry runs; a
/// person needs minutes).
pub const MIN_GATE_TIMEOUT: u64 = 10;
/// The longest gate timeout: seven days (checks keep running while a gate waits, and
/// the whole deployment must still fit in one execution's history: `schedule::plan`).
pub const MAX_GATE_TIMEOUT: u64 = 7 * 86_400;
/// The most gates one deploy.json may hold.
pub const MAX_GATES: usize = 20;

/// Where a gate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GateAt {
    /// Once the canary has held this weight (1-99) for `wait_time`.
    Weight(u8),
    /// At 100%, once the bake is over, before the old version is removed.
    Promotion,
}

impl GateAt {
    /// The gate's name in messages and records: `50%` or `promotion`.
    pub fn label(self) -> String {
        match self {
            Self::Weight(w) => format!("{w}%"),
            Self::Promotion => "promotion".to_owned(),
        }
    }

    /// The canary's weight while this gate waits.
    pub fn weight(self) -> u8 {
        match self {
            Self::Weight(w) => w,
            Self::Promotion => 100,
        }
    }
}

impl fmt::Display for GateAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// What a gate's timeout means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// Nobody approved in time: roll back.
    #[default]
    Rollback,
    /// Nobody objected in time: go on as if approved.
    Continue,
}

impl OnTimeout {
    /// `roll back` / `go on`, for sentences.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Rollback => "rolls back",
            Self::Continue => "goes on",
        }
    }
}

/// One entry of `gates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateSpec {
    pub at: GateAt,
    /// Seconds the gate waits for an approval.
    pub timeout: u64,
    pub on_timeout: OnTimeout,
}

const GATE_KEYS: &[&str] = &["at", "timeout", "on_timeout"];

/// Reads `gates`, given the weights of the schedule (to check that each gate's weight
/// is one of them; `None` when the weights themselves are invalid).
pub(super) fn parse_gates(r: &mut Reader<'_>, weights: Option<&[u8]>) -> Vec<GateSpec> {
    let Some(v) = r.get("gates") else {
        return Vec::new();
    };
    let Value::Array(items) = v else {
        r.fail(
            "gates",
            Some(v),
            format!(
                "must be a list of gates like [{{\"at\": 50, \"timeout\": 3600}}], not {}",
                kind(v)
            ),
        );
        return Vec::new();
    };
    if items.len() > MAX_GATES {
        r.fail(
            "gates",
            Some(v),
            format!("must hold at most {MAX_GATES} gates, not {}", items.len()),
        );
        return Vec::new();
    }
    let mut gates: Vec<GateSpec> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("gates[{i}]");
        let Some(gate) = parse_gate(r, &field, item, weights) else {
            continue;
        };
        if gates.iter().any(|g| g.at == gate.at) {
            r.fail(
                &format!("{field}.at"),
                item.get("at"),
                format!("repeats the gate at {}: one gate per place", gate.at),
            );
            continue;
        }
        gates.push(gate);
    }
    gates.sort_by_key(|g| g.at);
    gates
}

fn parse_gate(
    r: &mut Reader<'_>,
    field: &str,
    item: &Value,
    weights: Option<&[u8]>,
) -> Option<GateSpec> {
    let Value::Object(map) = item else {
        r.fail(
            field,
            Some(item),
            format!(
                "must be an object like {{\"at\": 50, \"timeout\": 3600}}, not {}",
                kind(item)
            ),
        );
        return None;
    };
    let before = r.errors.len();
    for (key, value) in map {
        if !GATE_KEYS.contains(&key.as_str()) {
            let hint = near(key, GATE_KEYS);
            r.fail(
                &format!("{field}.{key}"),
                Some(value),
                format!("is not a field of a gate (`at`, `timeout`, `on_timeout`){hint}"),
            );
        }
    }
    let at = parse_at(r, field, map.get("at").filter(|v| !v.is_null()), weights);
    let timeout_field = format!("{field}.timeout");
    let timeout = r
        .integer(
            &timeout_field,
            map.get("timeout").filter(|v| !v.is_null()),
            MIN_GATE_TIMEOUT,
            MAX_GATE_TIMEOUT,
            " seconds",
        )
        .unwrap_or(DEFAULT_GATE_TIMEOUT);
    let on_field = format!("{field}.on_timeout");
    let ov = map.get("on_timeout").filter(|v| !v.is_null());
    let on_timeout = match r.string(&on_field, ov) {
        None => OnTimeout::default(),
        Some("rollback") => OnTimeout::Rollback,
        Some("continue") => OnTimeout::Continue,
        Some(other) => {
            let hint = near(other, &["rollback", "continue"]);
            r.fail(
                &on_field,
                ov,
                format!("must be `rollback` or `continue`{hint}"),
            );
            OnTimeout::default()
        }
    };
    if r.errors.len() != before {
        return None;
    }
    Some(GateSpec {
        at: at?,
        timeout,
        on_timeout,
    })
}

fn parse_at(
    r: &mut Reader<'_>,
    field: &str,
    v: Option<&Value>,
    weights: Option<&[u8]>,
) -> Option<GateAt> {
    let at_field = format!("{field}.at");
    let Some(v) = v else {
        r.fail(
            &at_field,
            None,
            "is required: a weight of the schedule (like 50) or \"promotion\"",
        );
        return None;
    };
    match v {
        Value::String(s) if s == "promotion" => Some(GateAt::Promotion),
        Value::String(s) => {
            let hint = near(s, &["promotion"]);
            r.fail(
                &at_field,
                Some(v),
                format!("must be a weight of the schedule (like 50) or \"promotion\"{hint}"),
            );
            None
        }
        Value::Number(_) => {
            let w = r.integer(&at_field, Some(v), 1, 100, " (percent)")? as u8;
            if w == 100 {
                r.fail(
                    &at_field,
                    Some(v),
                    "cannot be 100: use \"promotion\" for a gate at 100% (it waits once the bake is over, before the old version is removed)",
                );
                return None;
            }
            if let Some(ws) = weights
                && !ws.contains(&w)
            {
                let list: Vec<String> = ws.iter().map(|w| w.to_string()).collect();
                r.fail(
                    &at_field,
                    Some(v),
                    format!(
                        "is not a weight of the schedule ({}): a gate pauses at a weight the canary reaches",
                        list.join(", ")
                    ),
                );
                return None;
            }
            Some(GateAt::Weight(w))
        }
        other => {
            r.fail(
                &at_field,
                Some(other),
                format!(
                    "must be a weight of the schedule (like 50) or \"promotion\", not {}",
                    kind(other)
                ),
            );
            None
        }
    }
}
