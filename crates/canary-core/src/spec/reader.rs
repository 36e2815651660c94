//! Reading one field of deploy.json: present or not, of the right JSON type, within its
//! range; every problem is collected with the field's name and value.

use serde_json::{Map, Value};

use super::FieldError;

pub(super) struct Reader<'a> {
    pub(super) map: &'a Map<String, Value>,
    pub(super) errors: Vec<FieldError>,
}

impl<'a> Reader<'a> {
    pub(super) fn fail(&mut self, field: &str, value: Option<&Value>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, value, message));
    }

    pub(super) fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    pub(super) fn required(&mut self, field: &str, hint: &str) -> Option<&'a Value> {
        let v = self.get(field);
        if v.is_none() {
            self.fail(field, None, format!("is required{hint}"));
        }
        v
    }

    pub(super) fn string<'b>(&mut self, field: &str, v: Option<&'b Value>) -> Option<&'b str> {
        match v? {
            Value::String(s) => Some(s),
            other => {
                self.fail(
                    field,
                    Some(other),
                    format!("must be a string, not {}", kind(other)),
                );
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    pub(super) fn integer(
        &mut self,
        field: &str,
        v: Option<&Value>,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Option<u64> {
        let v = v?;
        let n = match v {
            Value::Number(n) => n,
            other => {
                self.fail(
                    field,
                    Some(other),
                    format!("must be a whole number{unit}, not {}", kind(other)),
                );
                return None;
            }
        };
        let Some(i) = n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
        else {
            self.fail(field, Some(v), format!("must be a whole number{unit}"));
            return None;
        };
        if i < i128::from(min) || i > i128::from(max) {
            self.fail(
                field,
                Some(v),
                format!("must be between {min} and {max}{unit}"),
            );
            return None;
        }
        u64::try_from(i).ok()
    }

    pub(super) fn number(
        &mut self,
        field: &str,
        v: Option<&Value>,
        min: f64,
        max: f64,
    ) -> Option<f64> {
        let v = v?;
        let Some(x) = v.as_f64() else {
            self.fail(field, Some(v), format!("must be a number, not {}", kind(v)));
            return None;
        };
        if !(min..=max).contains(&x) {
            self.fail(field, Some(v), format!("must be between {min} and {max}"));
            return None;
        }
        Some(x)
    }
}

/// What kind of JSON value `v` is, for messages ("a string", "an object").
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
