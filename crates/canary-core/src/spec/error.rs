//! The errors of deploy.json: one problem with one field (naming the field and quoting
//! the value), and every problem of one document together.

use std::fmt;

use serde_json::Value;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field (`percentage_step`, `steps[2]`, `config_file`, ...).
    pub field: String,
    /// The offending value as JSON, when there is one.
    pub value: Option<String>,
    /// What is wrong, as a sentence fragment.
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        value: Option<&Value>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: value.map(quote),
            message: message.into(),
        }
    }
}

fn quote(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "`{}` = {v}: {}", self.field, self.message),
            None => write!(f, "`{}`: {}", self.field, self.message),
        }
    }
}

/// Every problem found in one deploy.json.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "deploy.json has {n} problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}
