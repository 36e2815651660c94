//! Payload templates: `Parameters` and `ResultSelector`. A key ending in `.$` takes its
//! value from a path into the input (`$…`) or the context object (`$$…`); every other
//! value is copied as written. Intrinsic functions (`States.Format(…)`, …) are not
//! supported and are rejected when the definition is loaded.

use serde_json::{Map, Value};

use crate::path::Path;

/// A parsed payload template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Template {
    /// A value copied as written.
    Literal(Value),
    /// A value read from a path.
    Path(Path),
    /// An object whose fields are templates.
    Object(Vec<(String, Template)>),
    /// An array whose items are templates.
    Array(Vec<Template>),
}

/// Why a template could not be parsed: `(field, message)`.
#[derive(Debug)]
pub(crate) enum TemplateError {
    /// `field` holds a path outside the subset.
    Path {
        field: String,
        path: String,
        reason: crate::path::PathError,
    },
    /// `field` holds an intrinsic function or a non-string.
    Invalid { field: String, message: String },
}

impl Template {
    /// Parses a template; `field` names it in errors (`Parameters`, `ResultSelector`).
    pub(crate) fn parse(field: &str, value: &Value) -> Result<Self, TemplateError> {
        match value {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, inner) in map {
                    let here = format!("{field}.{key}");
                    if let Some(name) = key.strip_suffix(".$") {
                        let Value::String(text) = inner else {
                            return Err(TemplateError::Invalid {
                                field: here,
                                message: format!("a `.$` field takes a path string, got {inner}"),
                            });
                        };
                        if text.starts_with("States.") {
                            return Err(TemplateError::Invalid {
                                field: here,
                                message: format!(
                                    "the intrinsic function `{text}` is not supported"
                                ),
                            });
                        }
                        let path = Path::parse(text).map_err(|reason| TemplateError::Path {
                            field: here.clone(),
                            path: text.clone(),
                            reason,
                        })?;
                        fields.push((name.to_string(), Template::Path(path)));
                    } else {
                        fields.push((key.clone(), Template::parse(&here, inner)?));
                    }
                }
                Ok(Template::Object(fields))
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| Template::parse(&format!("{field}[{i}]"), item))
                .collect::<Result<Vec<_>, _>>()
                .map(Template::Array),
            other => Ok(Template::Literal(other.clone())),
        }
    }

    /// Builds the payload. A path that names nothing is an error (`States.Runtime`).
    pub(crate) fn render(&self, input: &Value, context: &Value) -> Result<Value, String> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Path(path) => {
                let source = if path.is_context() { context } else { input };
                path.get(source).cloned().ok_or_else(|| {
                    format!("the path `{path}` in a payload template names nothing in the input")
                })
            }
            Template::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (key, t) in fields {
                    map.insert(key.clone(), t.render(input, context)?);
                }
                Ok(Value::Object(map))
            }
            Template::Array(items) => items
                .iter()
                .map(|t| t.render(input, context))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_template_copies_literals_and_fills_paths_from_input_and_context() {
        let t = Template::parse(
            "Parameters",
            &json!({
                "fixed": "apply",
                "doc.$": "$",
                "nested": {"name.$": "$.deployment.name", "list": [1, {"id.$": "$$.Execution.Id"}]}
            }),
        )
        .unwrap();
        let input = json!({"deployment": {"name": "yelb"}});
        let context = json!({"Execution": {"Id": "arn:x"}});
        assert_eq!(
            t.render(&input, &context).unwrap(),
            json!({
                "fixed": "apply",
                "doc": input,
                "nested": {"name": "yelb", "list": [1, {"id": "arn:x"}]}
            })
        );
    }

    #[test]
    fn a_path_that_names_nothing_is_a_runtime_error() {
        let t = Template::parse("Parameters", &json!({"x.$": "$.missing"})).unwrap();
        assert!(t.render(&json!({}), &json!({})).is_err());
    }

    #[test]
    fn intrinsic_functions_and_bad_paths_are_rejected_when_parsed() {
        for bad in [
            json!({"x.$": "States.Format('{}', $.a)"}),
            json!({"x.$": "$..a"}),
            json!({"x.$": 3}),
            json!({"a": {"x.$": "nope"}}),
        ] {
            assert!(Template::parse("Parameters", &bad).is_err(), "{bad}");
        }
    }
}
