//! The definition, parsed and checked once: every state with its typed fields, every
//! transition pointing at a state that exists, every state reachable, no field that its
//! state type does not have.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::choice::{self, Rule};
use crate::error::DefinitionError;
use crate::history::StateType;
use crate::path::Path;
use crate::result_path::ResultPath;
use crate::retry::{self, Catcher, Retrier};
use crate::template::{Template, TemplateError};

/// InputPath or OutputPath.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FilterPath {
    /// Absent: `$`.
    Whole,
    /// `null`: the state sees (or passes on) `{}`.
    Empty,
    /// A path.
    Path(Path),
}

/// A Fail state's `Error` or `Cause`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FailText {
    None,
    Static(String),
    Path(Path),
}

/// What a Wait state waits for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WaitFor {
    Seconds(u64),
    SecondsPath(Path),
    Timestamp(OffsetDateTime),
    TimestampPath(Path),
}

/// A Task state's own fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskState {
    pub(crate) resource: String,
    pub(crate) parameters: Option<Template>,
    pub(crate) result_selector: Option<Template>,
    pub(crate) result_path: ResultPath,
    pub(crate) retry: Vec<Retrier>,
    pub(crate) catch: Vec<Catcher>,
    pub(crate) timeout_seconds: Option<u64>,
}

/// The fields that depend on the state's type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Task(Box<TaskState>),
    Pass {
        parameters: Option<Template>,
        result: Option<Value>,
        result_path: ResultPath,
    },
    Choice {
        rules: Vec<(Rule, String)>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: FailText,
        cause: FailText,
    },
}

/// One state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct State {
    pub(crate) kind: Kind,
    pub(crate) input_path: FilterPath,
    pub(crate) output_path: FilterPath,
    /// `Some(name)` for `Next`, `None` for `End: true` (and for terminal states).
    pub(crate) next: Option<String>,
}

impl State {
    pub(crate) fn state_type(&self) -> StateType {
        match self.kind {
            Kind::Task(_) => StateType::Task,
            Kind::Pass { .. } => StateType::Pass,
            Kind::Choice { .. } => StateType::Choice,
            Kind::Wait(_) => StateType::Wait,
            Kind::Succeed => StateType::Succeed,
            Kind::Fail { .. } => StateType::Fail,
        }
    }

    /// Every state this one can move to, with the field that names it.
    fn targets(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        if let Some(next) = &self.next {
            out.push(("Next".to_string(), next.as_str()));
        }
        match &self.kind {
            Kind::Task(task) => {
                for (i, c) in task.catch.iter().enumerate() {
                    out.push((format!("Catch[{i}].Next"), c.next.as_str()));
                }
            }
            Kind::Choice { rules, default } => {
                for (i, (_, next)) in rules.iter().enumerate() {
                    out.push((format!("Choices[{i}].Next"), next.as_str()));
                }
                if let Some(d) = default {
                    out.push(("Default".to_string(), d.as_str()));
                }
            }
            _ => {}
        }
        out
    }
}

/// A parsed, checked state machine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Definition {
    pub(crate) start_at: String,
    pub(crate) states: BTreeMap<String, State>,
    pub(crate) timeout_seconds: Option<u64>,
}

const TOP: &str = "(top level)";

impl Definition {
    pub(crate) fn parse(value: &Value) -> Result<Self, DefinitionError> {
        let Value::Object(top) = value else {
            return Err(invalid(TOP, "the definition must be a JSON object"));
        };
        for key in top.keys() {
            match key.as_str() {
                "StartAt" | "States" | "Comment" | "Version" | "TimeoutSeconds" => {}
                "QueryLanguage" => {
                    if top.get(key) != Some(&Value::String("JSONPath".into())) {
                        return Err(DefinitionError::Unsupported {
                            state: TOP.into(),
                            what: "a QueryLanguage other than JSONPath".into(),
                        });
                    }
                }
                other => {
                    return Err(DefinitionError::UnknownField {
                        state: TOP.into(),
                        field: other.into(),
                        kind: "state machine".into(),
                    });
                }
            }
        }
        let Some(Value::String(start_at)) = top.get("StartAt") else {
            return Err(invalid(
                "StartAt",
                "a state machine needs a `StartAt` string",
            ));
        };
        let Some(Value::Object(raw_states)) = top.get("States") else {
            return Err(invalid("States", "a state machine needs a `States` object"));
        };
        let timeout_seconds = match top.get("TimeoutSeconds") {
            None => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                invalid(
                    "TimeoutSeconds",
                    format!("must be a non-negative integer, got {v}"),
                )
            })?),
        };
        let mut states = BTreeMap::new();
        for (name, raw) in raw_states {
            states.insert(name.clone(), parse_state(name, raw)?);
        }
        let definition = Self {
            start_at: start_at.clone(),
            states,
            timeout_seconds,
        };
        definition.check_transitions()?;
        Ok(definition)
    }

    fn check_transitions(&self) -> Result<(), DefinitionError> {
        if !self.states.contains_key(&self.start_at) {
            return Err(DefinitionError::UnknownStartAt(self.start_at.clone()));
        }
        for (name, state) in &self.states {
            for (field, target) in state.targets() {
                if !self.states.contains_key(target) {
                    return Err(DefinitionError::UnknownNext {
                        state: name.clone(),
                        field,
                        target: target.to_string(),
                    });
                }
            }
        }
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([self.start_at.as_str()]);
        while let Some(name) = queue.pop_front() {
            if !seen.insert(name) {
                continue;
            }
            if let Some(state) = self.states.get(name) {
                for (_, target) in state.targets() {
                    queue.push_back(target);
                }
            }
        }
        if let Some(orphan) = self.states.keys().find(|n| !seen.contains(n.as_str())) {
            return Err(DefinitionError::Unreachable(orphan.clone()));
        }
        Ok(())
    }
}

fn invalid(at: impl Into<String>, message: impl Into<String>) -> DefinitionError {
    DefinitionError::Invalid {
        at: at.into(),
        message: message.into(),
    }
}

/// The fields each state type may have (beyond `Type` and `Comment`).
fn allowed(kind: StateType) -> &'static [&'static str] {
    match kind {
        StateType::Task => &[
            "Resource",
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "HeartbeatSeconds",
        ],
        StateType::Pass => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Parameters",
            "Result",
            "ResultPath",
        ],
        StateType::Choice => &["Choices", "Default", "InputPath", "OutputPath"],
        StateType::Wait => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
        ],
        StateType::Succeed => &["InputPath", "OutputPath"],
        StateType::Fail => &["Error", "ErrorPath", "Cause", "CausePath"],
    }
}

/// Parses one state. Long on purpose: the common fields (paths, templates, Next/End)
/// are read through closures that share the state's name and map, then one arm per
/// state type reads its own fields; splitting it would pass that context around for
/// every field.
fn parse_state(name: &str, raw: &Value) -> Result<State, DefinitionError> {
    let at = format!("state `{name}`");
    let Value::Object(map) = raw else {
        return Err(invalid(&at, "a state must be a JSON object"));
    };
    let Some(Value::String(type_name)) = map.get("Type") else {
        return Err(invalid(&at, "a state needs a `Type` string"));
    };
    let kind = match type_name.as_str() {
        "Task" => StateType::Task,
        "Pass" => StateType::Pass,
        "Choice" => StateType::Choice,
        "Wait" => StateType::Wait,
        "Succeed" => StateType::Succeed,
        "Fail" => StateType::Fail,
        "Map" | "Parallel" => {
            return Err(DefinitionError::Unsupported {
                state: name.into(),
                what: format!("{type_name} states"),
            });
        }
        other => {
            return Err(DefinitionError::UnknownStateType {
                state: name.into(),
                kind: other.into(),
            });
        }
    };
    let permitted = allowed(kind);
    for key in map.keys() {
        if key != "Type" && key != "Comment" && !permitted.contains(&key.as_str()) {
            return Err(DefinitionError::UnknownField {
                state: name.into(),
                field: key.clone(),
                kind: type_name.clone(),
            });
        }
    }

    let field_error = |field: &str, message: String| invalid(format!("{at} {field}"), message);
    let path_field = |field: &str| -> Result<FilterPath, DefinitionError> {
        match map.get(field) {
            None => Ok(FilterPath::Whole),
            Some(Value::Null) => Ok(FilterPath::Empty),
            Some(Value::String(text)) => {
                Path::parse(text).map(FilterPath::Path).map_err(|reason| {
                    DefinitionError::InvalidPath {
                        state: name.into(),
                        field: field.into(),
                        path: text.clone(),
                        reason,
                    }
                })
            }
            Some(other) => Err(field_error(
                field,
                format!("must be a path or null, got {other}"),
            )),
        }
    };
    let template = |field: &str| -> Result<Option<Template>, DefinitionError> {
        map.get(field)
            .map(|v| {
                Template::parse(field, v).map_err(|e| match e {
                    TemplateError::Path {
                        field,
                        path,
                        reason,
                    } => DefinitionError::InvalidPath {
                        state: name.into(),
                        field,
                        path,
                        reason,
                    },
                    TemplateError::Invalid { field, message } if message.contains("intrinsic") => {
                        DefinitionError::Unsupported {
                            state: name.into(),
                            what: format!("{field}: {message}"),
                        }
                    }
                    TemplateError::Invalid { field, message } => field_error(&field, message),
                })
            })
            .transpose()
    };
    let result_path = || {
        ResultPath::parse(map.get("ResultPath"))
            .map_err(|e| field_error("ResultPath", e.to_string()))
    };
    let reference_path = |field: &str| -> Result<Option<Path>, DefinitionError> {
        match map.get(field) {
            None => Ok(None),
            Some(Value::String(text)) => {
                Path::parse(text)
                    .map(Some)
                    .map_err(|reason| DefinitionError::InvalidPath {
                        state: name.into(),
                        field: field.into(),
                        path: text.clone(),
                        reason,
                    })
            }
            Some(other) => Err(field_error(
                field,
                format!("must be a path string, got {other}"),
            )),
        }
    };
    let seconds = |field: &str| -> Result<Option<u64>, DefinitionError> {
        match map.get(field) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                field_error(field, format!("must be a non-negative integer, got {v}"))
            }),
        }
    };

    // Next / End: exactly one for Task, Pass and Wait; neither for the others.
    let next = match (map.get("Next"), map.get("End")) {
        (Some(Value::String(n)), None) => Some(n.clone()),
        (None, Some(Value::Bool(true))) => None,
        (None, None)
            if matches!(
                kind,
                StateType::Choice | StateType::Succeed | StateType::Fail
            ) =>
        {
            None
        }
        (next, end) => {
            return Err(invalid(
                &at,
                format!(
                    "a {type_name} state needs either `Next` (a state name) or `End: true`, got Next {next:?} and End {end:?}"
                ),
            ));
        }
    };

    let kind = match kind {
        StateType::Task => {
            let Some(Value::String(resource)) = map.get("Resource") else {
                return Err(field_error(
                    "Resource",
                    "a Task needs a `Resource` string".into(),
                ));
            };
            let retry = clauses(map, "Retry", &at, Retrier::parse)?;
            let catch = clauses(map, "Catch", &at, Catcher::parse)?;
            retry::all_is_last(retry.iter().map(|r| r.error_equals.as_slice()))
                .map_err(|e| field_error("Retry", e.to_string()))?;
            retry::all_is_last(catch.iter().map(|c| c.error_equals.as_slice()))
                .map_err(|e| field_error("Catch", e.to_string()))?;
            let timeout_seconds = seconds("TimeoutSeconds")?;
            if timeout_seconds == Some(0) {
                return Err(field_error("TimeoutSeconds", "must be at least 1".into()));
            }
            Kind::Task(Box::new(TaskState {
                resource: resource.clone(),
                parameters: template("Parameters")?,
                result_selector: template("ResultSelector")?,
                result_path: result_path()?,
                retry,
                catch,
                timeout_seconds,
            }))
        }
        StateType::Pass => Kind::Pass {
            parameters: template("Parameters")?,
            result: map.get("Result").cloned(),
            result_path: result_path()?,
        },
        StateType::Choice => {
            let Some(Value::Array(items)) = map.get("Choices") else {
                return Err(field_error(
                    "Choices",
                    "a Choice needs a non-empty `Choices` array".into(),
                ));
            };
            if items.is_empty() {
                return Err(field_error("Choices", "must not be empty".into()));
            }
            let mut rules = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let here = format!("Choices[{i}]");
                let Value::Object(rule) = item else {
                    return Err(field_error(&here, "a choice rule is an object".into()));
                };
                let Some(Value::String(target)) = rule.get("Next") else {
                    return Err(field_error(
                        &here,
                        "a top-level choice rule needs `Next`".into(),
                    ));
                };
                let parsed =
                    choice::parse_rule(rule, &here).map_err(|e| invalid(&at, e.to_string()))?;
                rules.push((parsed, target.clone()));
            }
            let default = match map.get("Default") {
                None => None,
                Some(Value::String(d)) => Some(d.clone()),
                Some(other) => {
                    return Err(field_error(
                        "Default",
                        format!("must be a state name, got {other}"),
                    ));
                }
            };
            Kind::Choice { rules, default }
        }
        StateType::Wait => {
            let mut found = Vec::new();
            if let Some(s) = seconds("Seconds")? {
                found.push(WaitFor::Seconds(s));
            }
            if let Some(p) = reference_path("SecondsPath")? {
                found.push(WaitFor::SecondsPath(p));
            }
            if let Some(v) = map.get("Timestamp") {
                let ts = choice::timestamp(v).ok_or_else(|| {
                    field_error(
                        "Timestamp",
                        format!("must be an RFC 3339 timestamp, got {v}"),
                    )
                })?;
                found.push(WaitFor::Timestamp(ts));
            }
            if let Some(p) = reference_path("TimestampPath")? {
                found.push(WaitFor::TimestampPath(p));
            }
            if found.len() != 1 {
                return Err(invalid(
                    &at,
                    "a Wait needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath",
                ));
            }
            Kind::Wait(found.remove(0))
        }
        StateType::Succeed => Kind::Succeed,
        StateType::Fail => {
            let text = |plain: &str, path: &str| -> Result<FailText, DefinitionError> {
                match (map.get(plain), reference_path(path)?) {
                    (Some(_), Some(_)) => Err(invalid(
                        &at,
                        format!("a Fail state has `{plain}` or `{path}`, not both"),
                    )),
                    (Some(Value::String(s)), None) => Ok(FailText::Static(s.clone())),
                    (Some(other), None) => {
                        Err(field_error(plain, format!("must be a string, got {other}")))
                    }
                    (None, Some(p)) => Ok(FailText::Path(p)),
                    (None, None) => Ok(FailText::None),
                }
            };
            Kind::Fail {
                error: text("Error", "ErrorPath")?,
                cause: text("Cause", "CausePath")?,
            }
        }
    };
    Ok(State {
        kind,
        input_path: path_field("InputPath")?,
        output_path: path_field("OutputPath")?,
        next,
    })
}

fn clauses<T>(
    map: &Map<String, Value>,
    field: &str,
    at: &str,
    parse: impl Fn(&Map<String, Value>) -> Result<T, retry::ClauseError>,
) -> Result<Vec<T>, DefinitionError> {
    match map.get(field) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(m) => {
                    parse(m).map_err(|e| invalid(format!("{at} {field}[{i}]"), e.to_string()))
                }
                other => Err(invalid(
                    format!("{at} {field}[{i}]"),
                    format!("must be an object, got {other}"),
                )),
            })
            .collect(),
        Some(other) => Err(invalid(
            format!("{at} {field}"),
            format!("must be an array, got {other}"),
        )),
    }
}
