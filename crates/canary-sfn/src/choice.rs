//! Choice rules: data-test expressions (`Variable` plus one comparison operator, with
//! the `…Path` variants comparing two paths), combined with `And`, `Or` and `Not`.
//!
//! As in Step Functions, a comparison between values of different types is false, and
//! a `Variable` that names nothing is a runtime error except for `IsPresent`.

use std::cmp::Ordering;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::path::{Path, PathError};

/// A Boolean expression over the state's input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test { variable: Path, test: Test },
}

/// The type a comparison operator works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

/// The relation a comparison operator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Relation {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

/// What a comparison compares the variable with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Value(Value),
    Path(Path),
}

/// One data test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Compare {
        kind: Kind,
        relation: Relation,
        operand: Operand,
    },
    StringMatches(String),
    IsPresent(bool),
    IsNull(bool),
    IsString(bool),
    IsNumeric(bool),
    IsBoolean(bool),
    IsTimestamp(bool),
}

const KINDS: [(&str, Kind); 4] = [
    ("String", Kind::String),
    ("Numeric", Kind::Numeric),
    ("Boolean", Kind::Boolean),
    ("Timestamp", Kind::Timestamp),
];

// Longest suffixes first, so that `LessThanEquals` is not read as `LessThan`.
const RELATIONS: [(&str, Relation); 5] = [
    ("GreaterThanEquals", Relation::GreaterThanEquals),
    ("LessThanEquals", Relation::LessThanEquals),
    ("GreaterThan", Relation::GreaterThan),
    ("LessThan", Relation::LessThan),
    ("Equals", Relation::Equals),
];

/// Parses a rule object (without its `Next`, which the caller takes out).
/// Why a Choice rule was rejected: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub(crate) struct RuleError {
    /// The rule (`Choices[0]`, `Choices[1].And[2]`, ...).
    pub(crate) at: String,
    /// What is wrong.
    #[source]
    pub(crate) problem: RuleProblem,
}

/// What is wrong with a Choice rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RuleProblem {
    #[error("And/Or stands alone in its rule, found {found}")]
    AndOrNotAlone { found: String },
    #[error("And/Or takes an array of rules")]
    AndOrNotArray,
    #[error("And/Or needs at least one rule")]
    AndOrEmpty,
    #[error("a rule is an object")]
    NotAnObject,
    #[error("Not stands alone in its rule, found {found}")]
    NotNotAlone { found: String },
    #[error("Not takes one rule object")]
    NotNotObject,
    #[error("a rule needs a `Variable` string, or And/Or/Not")]
    NoVariable,
    #[error("Variable `{variable}`: {source}")]
    Variable {
        variable: String,
        #[source]
        source: PathError,
    },
    #[error("a rule has exactly one comparison operator, found {found}")]
    Operators { found: String },
    #[error("`{operator}` takes true or false, got {got}")]
    NotAFlag { operator: String, got: String },
    #[error("`StringMatches` takes a string, got {got}")]
    StringMatches { got: String },
    #[error("unknown comparison operator `{operator}`")]
    UnknownOperator { operator: String },
    #[error("`{operator}` takes a path string, got {got}")]
    NotAPathString { operator: String, got: String },
    #[error("`{operator}` path `{text}`: {source}")]
    OperandPath {
        operator: String,
        text: String,
        #[source]
        source: PathError,
    },
    #[error("`{operator}` cannot compare with {got}")]
    CannotCompare { operator: String, got: String },
}

pub(crate) fn parse_rule(map: &Map<String, Value>, at: &str) -> Result<Rule, RuleError> {
    let fail = |problem| RuleError {
        at: at.to_owned(),
        problem,
    };
    let keys: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "Next" && *k != "Comment")
        .collect();
    if let Some(value) = map.get("And").or_else(|| map.get("Or")) {
        let is_and = map.contains_key("And");
        if keys.len() != 1 {
            return Err(fail(RuleProblem::AndOrNotAlone {
                found: format!("{keys:?}"),
            }));
        }
        let Value::Array(items) = value else {
            return Err(fail(RuleProblem::AndOrNotArray));
        };
        if items.is_empty() {
            return Err(fail(RuleProblem::AndOrEmpty));
        }
        let rules = items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(m) => parse_rule(m, &format!("{at}[{i}]")),
                _ => Err(RuleError {
                    at: format!("{at}[{i}]"),
                    problem: RuleProblem::NotAnObject,
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if is_and {
            Rule::And(rules)
        } else {
            Rule::Or(rules)
        });
    }
    if let Some(value) = map.get("Not") {
        if keys.len() != 1 {
            return Err(fail(RuleProblem::NotNotAlone {
                found: format!("{keys:?}"),
            }));
        }
        let Value::Object(m) = value else {
            return Err(fail(RuleProblem::NotNotObject));
        };
        return Ok(Rule::Not(Box::new(parse_rule(m, &format!("{at}.Not"))?)));
    }
    let Some(Value::String(variable)) = map.get("Variable") else {
        return Err(fail(RuleProblem::NoVariable));
    };
    let variable = Path::parse(variable).map_err(|source| {
        fail(RuleProblem::Variable {
            variable: variable.clone(),
            source,
        })
    })?;
    let operators: Vec<&str> = keys.iter().copied().filter(|k| *k != "Variable").collect();
    let [operator] = operators.as_slice() else {
        return Err(fail(RuleProblem::Operators {
            found: format!("{operators:?}"),
        }));
    };
    let operand = map.get(*operator).cloned().unwrap_or(Value::Null);
    let test = parse_test(operator, operand).map_err(fail)?;
    Ok(Rule::Test { variable, test })
}

fn parse_test(operator: &str, operand: Value) -> Result<Test, RuleProblem> {
    let flag = |operand: &Value| {
        operand.as_bool().ok_or_else(|| RuleProblem::NotAFlag {
            operator: operator.to_owned(),
            got: operand.to_string(),
        })
    };
    let unknown = || RuleProblem::UnknownOperator {
        operator: operator.to_owned(),
    };
    match operator {
        "IsPresent" => return Ok(Test::IsPresent(flag(&operand)?)),
        "IsNull" => return Ok(Test::IsNull(flag(&operand)?)),
        "IsString" => return Ok(Test::IsString(flag(&operand)?)),
        "IsNumeric" => return Ok(Test::IsNumeric(flag(&operand)?)),
        "IsBoolean" => return Ok(Test::IsBoolean(flag(&operand)?)),
        "IsTimestamp" => return Ok(Test::IsTimestamp(flag(&operand)?)),
        "StringMatches" => {
            let Value::String(pattern) = operand else {
                return Err(RuleProblem::StringMatches {
                    got: operand.to_string(),
                });
            };
            return Ok(Test::StringMatches(pattern));
        }
        _ => {}
    }
    let (base, is_path) = match operator.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    let (kind, rest) = KINDS
        .iter()
        .find_map(|(prefix, kind)| base.strip_prefix(prefix).map(|rest| (*kind, rest)))
        .ok_or_else(unknown)?;
    let relation = RELATIONS
        .iter()
        .find(|(name, _)| *name == rest)
        .map(|(_, r)| *r)
        .ok_or_else(unknown)?;
    if kind == Kind::Boolean && relation != Relation::Equals {
        return Err(unknown());
    }
    let operand = if is_path {
        let Value::String(text) = &operand else {
            return Err(RuleProblem::NotAPathString {
                operator: operator.to_owned(),
                got: operand.to_string(),
            });
        };
        Operand::Path(
            Path::parse(text).map_err(|source| RuleProblem::OperandPath {
                operator: operator.to_owned(),
                text: text.clone(),
                source,
            })?,
        )
    } else {
        let fits = match kind {
            Kind::String | Kind::Timestamp => operand.is_string(),
            Kind::Numeric => operand.is_number(),
            Kind::Boolean => operand.is_boolean(),
        };
        if !fits {
            return Err(RuleProblem::CannotCompare {
                operator: operator.to_owned(),
                got: operand.to_string(),
            });
        }
        Operand::Value(operand)
    };
    Ok(Test::Compare {
        kind,
        relation,
        operand,
    })
}

impl Rule {
    /// Evaluates the rule against `input`; the error explains a runtime failure.
    pub(crate) fn eval(&self, input: &Value) -> Result<bool, String> {
        match self {
            Rule::And(rules) => {
                for r in rules {
                    if !r.eval(input)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for r in rules {
                    if r.eval(input)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(rule) => Ok(!rule.eval(input)?),
            Rule::Test { variable, test } => {
                let value = variable.get(input);
                if let Test::IsPresent(expected) = test {
                    return Ok(value.is_some() == *expected);
                }
                let value = value.ok_or_else(|| {
                    format!("the Choice rule's Variable `{variable}` names nothing in the input")
                })?;
                test.check(value, input)
            }
        }
    }
}

impl Test {
    fn check(&self, value: &Value, input: &Value) -> Result<bool, String> {
        Ok(match self {
            Test::IsPresent(expected) => *expected,
            Test::IsNull(expected) => value.is_null() == *expected,
            Test::IsString(expected) => value.is_string() == *expected,
            Test::IsNumeric(expected) => value.is_number() == *expected,
            Test::IsBoolean(expected) => value.is_boolean() == *expected,
            Test::IsTimestamp(expected) => timestamp(value).is_some() == *expected,
            Test::StringMatches(pattern) => {
                value.as_str().is_some_and(|s| wildcard_match(pattern, s))
            }
            Test::Compare {
                kind,
                relation,
                operand,
            } => {
                let other = match operand {
                    Operand::Value(v) => v,
                    Operand::Path(path) => path.get(input).ok_or_else(|| {
                        format!("the Choice rule's path `{path}` names nothing in the input")
                    })?,
                };
                let ordering = match kind {
                    Kind::String => match (value.as_str(), other.as_str()) {
                        (Some(a), Some(b)) => Some(a.cmp(b)),
                        _ => None,
                    },
                    Kind::Numeric => match (value.as_f64(), other.as_f64()) {
                        (Some(a), Some(b)) if value.is_number() && other.is_number() => {
                            a.partial_cmp(&b)
                        }
                        _ => None,
                    },
                    Kind::Boolean => match (value.as_bool(), other.as_bool()) {
                        (Some(a), Some(b)) => Some(a.cmp(&b)),
                        _ => None,
                    },
                    Kind::Timestamp => match (timestamp(value), timestamp(other)) {
                        (Some(a), Some(b)) => Some(a.cmp(&b)),
                        _ => None,
                    },
                };
                ordering.is_some_and(|o| relation.holds(o))
            }
        })
    }
}

impl Relation {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Relation::Equals => ordering == Ordering::Equal,
            Relation::LessThan => ordering == Ordering::Less,
            Relation::GreaterThan => ordering == Ordering::Greater,
            Relation::LessThanEquals => ordering != Ordering::Greater,
            Relation::GreaterThanEquals => ordering != Ordering::Less,
        }
    }
}

/// An RFC 3339 timestamp, as the States Language's Timestamp operators read them.
pub(crate) fn timestamp(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

/// `*` matches any run of characters; `\*` is a literal star and `\\` a backslash.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    enum Piece {
        Char(char),
        Star,
    }
    let mut pieces = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => pieces.push(Piece::Char(chars.next().unwrap_or('\\'))),
            '*' => pieces.push(Piece::Star),
            other => pieces.push(Piece::Char(other)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic two-pointer glob matching with backtracking to the last star.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pieces.get(p) {
            Some(Piece::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Piece::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pieces[p..].iter().all(|piece| matches!(piece, Piece::Star))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rule(v: Value) -> Rule {
        match v {
            Value::Object(m) => parse_rule(&m, "test").unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_comparison_operator_gives_the_step_functions_answer() {
        let input = json!({
            "s": "shift", "n": 10, "f": 2.5, "b": true, "nul": null,
            "t": "2024-05-01T10:00:00Z", "other_s": "shift", "other_n": 20,
            "other_t": "2024-05-01T11:00:00+01:00"
        });
        let cases = [
            (json!({"Variable": "$.s", "StringEquals": "shift"}), true),
            (json!({"Variable": "$.s", "StringEquals": "check"}), false),
            (json!({"Variable": "$.s", "StringLessThan": "zzz"}), true),
            (
                json!({"Variable": "$.s", "StringGreaterThan": "zzz"}),
                false,
            ),
            (
                json!({"Variable": "$.s", "StringLessThanEquals": "shift"}),
                true,
            ),
            (
                json!({"Variable": "$.s", "StringGreaterThanEquals": "shift"}),
                true,
            ),
            (
                json!({"Variable": "$.s", "StringEqualsPath": "$.other_s"}),
                true,
            ),
            (json!({"Variable": "$.s", "StringMatches": "sh*t"}), true),
            (json!({"Variable": "$.s", "StringMatches": "s*x"}), false),
            (json!({"Variable": "$.n", "NumericEquals": 10}), true),
            (json!({"Variable": "$.n", "NumericEquals": 10.0}), true),
            (json!({"Variable": "$.n", "NumericLessThan": 10}), false),
            (
                json!({"Variable": "$.n", "NumericLessThanEquals": 10}),
                true,
            ),
            (json!({"Variable": "$.n", "NumericGreaterThan": 9.5}), true),
            (
                json!({"Variable": "$.n", "NumericGreaterThanEquals": 11}),
                false,
            ),
            (
                json!({"Variable": "$.n", "NumericLessThanPath": "$.other_n"}),
                true,
            ),
            (
                json!({"Variable": "$.f", "NumericGreaterThanEqualsPath": "$.n"}),
                false,
            ),
            (json!({"Variable": "$.b", "BooleanEquals": true}), true),
            (json!({"Variable": "$.b", "BooleanEqualsPath": "$.b"}), true),
            (
                json!({"Variable": "$.t", "TimestampEquals": "2024-05-01T10:00:00Z"}),
                true,
            ),
            (
                json!({"Variable": "$.t", "TimestampEqualsPath": "$.other_t"}),
                true,
            ),
            (
                json!({"Variable": "$.t", "TimestampLessThan": "2024-05-01T10:00:01Z"}),
                true,
            ),
            (json!({"Variable": "$.s", "NumericEquals": 1}), false),
            (json!({"Variable": "$.n", "StringEquals": "10"}), false),
            (json!({"Variable": "$.s", "IsPresent": true}), true),
            (json!({"Variable": "$.missing", "IsPresent": false}), true),
            (json!({"Variable": "$.missing", "IsPresent": true}), false),
            (json!({"Variable": "$.nul", "IsNull": true}), true),
            (json!({"Variable": "$.s", "IsNull": true}), false),
            (json!({"Variable": "$.s", "IsString": true}), true),
            (json!({"Variable": "$.n", "IsNumeric": true}), true),
            (json!({"Variable": "$.b", "IsBoolean": false}), false),
            (json!({"Variable": "$.t", "IsTimestamp": true}), true),
            (json!({"Variable": "$.s", "IsTimestamp": true}), false),
        ];
        for (r, expected) in cases {
            assert_eq!(rule(r.clone()).eval(&input), Ok(expected), "{r}");
        }
    }

    #[test]
    fn and_or_not_combine_rules() {
        let input = json!({"next": "check", "wait": 30});
        let cases = [
            (
                json!({"And": [
                    {"Variable": "$.next", "StringEquals": "check"},
                    {"Variable": "$.wait", "NumericGreaterThan": 0}
                ]}),
                true,
            ),
            (
                json!({"And": [
                    {"Variable": "$.next", "StringEquals": "check"},
                    {"Variable": "$.wait", "NumericGreaterThan": 60}
                ]}),
                false,
            ),
            (
                json!({"Or": [
                    {"Variable": "$.next", "StringEquals": "shift"},
                    {"Variable": "$.wait", "NumericEquals": 30}
                ]}),
                true,
            ),
            (
                json!({"Not": {"Variable": "$.next", "StringEquals": "check"}}),
                false,
            ),
            (
                json!({"Not": {"Variable": "$.gone", "IsPresent": true}}),
                true,
            ),
        ];
        for (r, expected) in cases {
            assert_eq!(rule(r.clone()).eval(&input), Ok(expected), "{r}");
        }
    }

    #[test]
    fn a_variable_that_names_nothing_is_a_runtime_error() {
        let r = rule(json!({"Variable": "$.missing", "StringEquals": "x"}));
        assert!(r.eval(&json!({})).is_err());
        let r = rule(json!({"Variable": "$.a", "StringEqualsPath": "$.missing"}));
        assert!(r.eval(&json!({"a": "x"})).is_err());
    }

    #[test]
    fn malformed_rules_are_rejected() {
        for bad in [
            json!({"Variable": "$.a"}),
            json!({"Variable": "$.a", "StringEquals": "x", "NumericEquals": 1}),
            json!({"Variable": "$.a", "StringEquals": 3}),
            json!({"Variable": "$.a", "BooleanLessThan": true}),
            json!({"Variable": "$.a", "StringSortOf": "x"}),
            json!({"Variable": "$.a", "IsNull": "yes"}),
            json!({"And": []}),
            json!({"And": [{"Variable": "$.a", "IsNull": true}], "Variable": "$.b"}),
            json!({"StringEquals": "x"}),
        ] {
            let Value::Object(m) = &bad else {
                unreachable!()
            };
            assert!(parse_rule(m, "test").is_err(), "{bad}");
        }
    }

    #[test]
    fn wildcards_match_runs_of_characters_and_escapes_are_literal() {
        let cases = [
            ("*", "", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*b*c", "a-b-b-c", true),
            ("a*d", "abc", false),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("log-*.txt", "log-2024.txt", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                wildcard_match(pattern, text),
                expected,
                "{pattern} vs {text}"
            );
        }
    }
}
