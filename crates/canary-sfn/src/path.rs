//! The JSONPath subset that the States Language's reference paths need: `$`, `$.a.b`,
//! `$.a[0]`, `$['a']` (or `$["a"]`), and the same from the context object, `$$.…`.
//! Wildcards, filters, slices and recursive descent are rejected when parsed.

use std::fmt;

use serde_json::{Map, Value};

/// Why a path was rejected, or could not be written to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The text does not start with `$`.
    #[error("a path starts with `$` (or `$$` for the context object)")]
    NoRoot,
    /// `..` or a trailing `.`.
    #[error("an empty field name (recursive descent `..` is not supported)")]
    EmptyField,
    /// `.*`.
    #[error("wildcards are not supported")]
    Wildcard,
    /// A `[` that is never closed.
    #[error("a `[` without its `]`")]
    UnclosedBracket,
    /// A bracket holding something other than an index or a quoted name.
    #[error("`[{inner}]` is not supported (only `[N]` and `['name']`)")]
    UnsupportedBracket {
        /// What the brackets hold.
        inner: String,
    },
    /// A character where a `.` or a `[` was expected.
    #[error("unexpected `{found}`")]
    Unexpected {
        /// The character.
        found: char,
    },
    /// A write to a `$$` path.
    #[error("`{path}` cannot be written: it is the context object")]
    ContextNotWritable {
        /// The path as written.
        path: String,
    },
    /// A write that meets a value of the wrong shape on the way.
    #[error("ResultPath `{path}` cannot be applied: {problem}")]
    CannotSet {
        /// The path as written.
        path: String,
        /// What was in the way.
        problem: SetProblem,
    },
}

/// What stopped a write on its way down a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetProblem {
    /// A field of something that is not an object.
    #[error("the value holding `{key}` is not an object")]
    NotAnObject {
        /// The field.
        key: String,
    },
    /// An index into something that is not an array.
    #[error("the value indexed by [{index}] is not an array")]
    NotAnArray {
        /// The index.
        index: usize,
    },
    /// An index past the array's end.
    #[error("index [{index}] is past the end of an array of {len}")]
    PastTheEnd {
        /// The index.
        index: usize,
        /// The array's length.
        len: usize,
    },
}

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// `$`: the state's input (or the task's result, in a ResultSelector).
    Input,
    /// `$$`: the context object (execution, state machine and state metadata).
    Context,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A parsed reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    root: Root,
    segments: Vec<Segment>,
    text: String,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Path {
    /// Parses a path; the error says what is not supported.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let (root, rest) = if let Some(rest) = text.strip_prefix("$$") {
            (Root::Context, rest)
        } else if let Some(rest) = text.strip_prefix('$') {
            (Root::Input, rest)
        } else {
            return Err(PathError::NoRoot);
        };
        let chars: Vec<char> = rest.chars().collect();
        let mut segments = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                        end += 1;
                    }
                    let name: String = chars[start..end].iter().collect();
                    if name.is_empty() {
                        return Err(PathError::EmptyField);
                    }
                    if name == "*" {
                        return Err(PathError::Wildcard);
                    }
                    segments.push(Segment::Key(name));
                    i = end;
                }
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|c| *c == ']')
                        .map(|p| p + i)
                        .ok_or(PathError::UnclosedBracket)?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let quoted = (inner.starts_with('\'') && inner.ends_with('\''))
                        || (inner.starts_with('"') && inner.ends_with('"'));
                    if quoted && inner.len() >= 2 {
                        segments.push(Segment::Key(inner[1..inner.len() - 1].to_string()));
                    } else if let Ok(index) = inner.parse::<usize>() {
                        segments.push(Segment::Index(index));
                    } else {
                        return Err(PathError::UnsupportedBracket { inner });
                    }
                    i = close + 1;
                }
                other => return Err(PathError::Unexpected { found: other }),
            }
        }
        Ok(Self {
            root,
            segments,
            text: text.to_string(),
        })
    }

    /// Whether the path reads the context object (`$$`).
    pub fn is_context(&self) -> bool {
        self.root == Root::Context
    }

    /// Whether the path is `$` itself.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The value at this path, if there is one.
    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        let mut current = value;
        for segment in &self.segments {
            current = match (segment, current) {
                (Segment::Key(k), Value::Object(map)) => map.get(k)?,
                (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// Puts `new` at this path inside `target` (a ResultPath): `$` replaces the whole
    /// target; missing objects on the way are created; a non-object on the way, or an
    /// index past an array's end, is an error.
    pub fn set(&self, target: Value, new: Value) -> Result<Value, PathError> {
        if self.root == Root::Context {
            return Err(PathError::ContextNotWritable {
                path: self.text.clone(),
            });
        }
        let mut target = target;
        set_in(&mut target, &self.segments, new).map_err(|problem| PathError::CannotSet {
            path: self.text.clone(),
            problem,
        })?;
        Ok(target)
    }
}

fn set_in(slot: &mut Value, segments: &[Segment], new: Value) -> Result<(), SetProblem> {
    let Some((first, rest)) = segments.split_first() else {
        *slot = new;
        return Ok(());
    };
    match first {
        Segment::Key(key) => {
            if slot.is_null() {
                *slot = Value::Object(Map::new());
            }
            let Value::Object(map) = slot else {
                return Err(SetProblem::NotAnObject { key: key.clone() });
            };
            let child = map.entry(key.clone()).or_insert(Value::Null);
            set_in(child, rest, new)
        }
        Segment::Index(index) => {
            let Value::Array(items) = slot else {
                return Err(SetProblem::NotAnArray { index: *index });
            };
            let len = items.len();
            let child = items
                .get_mut(*index)
                .ok_or(SetProblem::PastTheEnd { index: *index, len })?;
            set_in(child, rest, new)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    fn get(path: &str, value: &Value) -> Option<Value> {
        Path::parse(path).ok()?.get(value).cloned()
    }

    #[test]
    fn paths_of_the_subset_read_what_they_name() {
        let doc = json!({"a": {"b": [10, {"c": "x"}]}, "odd key": 1});
        let cases = [
            ("$", Some(doc.clone())),
            ("$.a.b[0]", Some(json!(10))),
            ("$.a.b[1].c", Some(json!("x"))),
            ("$['odd key']", Some(json!(1))),
            ("$[\"a\"]['b'][0]", Some(json!(10))),
            ("$.a.missing", None),
            ("$.a.b[7]", None),
            ("$.a.b.c", None),
        ];
        for (path, expected) in cases {
            assert_eq!(get(path, &doc), expected, "{path}");
        }
    }

    #[test]
    fn paths_outside_the_subset_are_rejected_with_a_reason() {
        for bad in [
            "a.b",
            "$..a",
            "$.a[*]",
            "$.*",
            "$.a[1:2]",
            "$.a[",
            "$.a[?(@.b)]",
            "$ a",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn a_context_path_is_recognised() {
        let path = Path::parse("$$.Execution.Id").unwrap();
        assert!(path.is_context());
        assert_eq!(
            path.get(&json!({"Execution": {"Id": "x"}})),
            Some(&json!("x"))
        );
    }

    #[test]
    fn setting_creates_missing_objects_and_replaces_existing_values() {
        let cases = [
            ("$", json!({"a": 1}), json!(5), json!(5)),
            ("$.r", json!({"a": 1}), json!(5), json!({"a": 1, "r": 5})),
            ("$.a", json!({"a": 1}), json!(5), json!({"a": 5})),
            (
                "$.x.y.z",
                json!({}),
                json!(true),
                json!({"x": {"y": {"z": true}}}),
            ),
            (
                "$.l[1]",
                json!({"l": [0, 0]}),
                json!(9),
                json!({"l": [0, 9]}),
            ),
        ];
        for (path, target, new, expected) in cases {
            let out = Path::parse(path).unwrap().set(target, new).unwrap();
            assert_eq!(out, expected, "{path}");
        }
    }

    #[test]
    fn setting_through_a_scalar_or_past_an_array_fails() {
        assert!(
            Path::parse("$.a.b")
                .unwrap()
                .set(json!({"a": 1}), json!(2))
                .is_err()
        );
        assert!(
            Path::parse("$.l[3]")
                .unwrap()
                .set(json!({"l": []}), json!(2))
                .is_err()
        );
        assert!(
            Path::parse("$$.x")
                .unwrap()
                .set(json!({}), json!(2))
                .is_err()
        );
    }
}
