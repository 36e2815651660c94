//! Label selectors (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and the small field
//! selector subset (`metadata.name`, `metadata.namespace`) that list requests accept.

use serde_json::Value;

use crate::error::ApiError;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector; all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// Splits at commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_set(rest: &str, raw: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to parse requirement: `{raw}`: expected a set in parentheses"
            ))
        })?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn check_key(key: &str, raw: &str) -> Result<String, ApiError> {
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(ApiError::bad_request(format!(
            "unable to parse requirement: `{raw}`: invalid label key"
        )));
    }
    Ok(key.to_string())
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for raw in split_top_level(s) {
            let part = raw.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(check_key(k, part)?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Equals(check_key(k, part)?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Equals(check_key(k, part)?, v.trim().to_string())
            } else if let Some(key) = part.strip_prefix('!') {
                Requirement::DoesNotExist(check_key(key, part)?)
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(check_key(k, part)?, parse_set(rest, part)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Requirement::In(check_key(k, part)?, parse_set(rest, part)?)
            } else {
                Requirement::Exists(check_key(part, part)?)
            };
            requirements.push(req);
        }
        Ok(Self { requirements })
    }

    /// Whether an object (its `metadata.labels`) satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, set) => get(k).is_some_and(|v| set.iter().any(|s| s == v)),
            Requirement::NotIn(k, set) => get(k).is_none_or(|v| !set.iter().any(|s| s == v)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector over `metadata.name` and `metadata.namespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<(String, bool, String)>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut requirements = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: `{part}`"
                )));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: `{field}` (the simulator supports metadata.name and metadata.namespace)"
                )));
            }
            requirements.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(Self { requirements })
    }

    /// Whether an object satisfies every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|(field, equal, value)| {
            let pointer = if field == "metadata.name" {
                "/metadata/name"
            } else {
                "/metadata/namespace"
            };
            let actual = object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default();
            (actual == value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({ "metadata": { "name": "x", "labels": labels } })
    }

    #[test]
    fn equality_inequality_set_and_existence_requirements_all_apply() {
        let o = obj(json!({ "app": "web", "version": "2", "tier": "front" }));
        let yes = [
            "app=web",
            "app==web",
            "app!=db",
            "version in (1, 2)",
            "version notin (3)",
            "tier",
            "!missing",
            "app=web,version in (2,3),!missing",
            "",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s)
                    .map(|sel| sel.matches(&o))
                    .unwrap_or(false),
                "{s}"
            );
        }
        let no = [
            "app=db",
            "app!=web",
            "version in (1,3)",
            "version notin (2)",
            "missing",
            "!tier",
        ];
        for s in no {
            assert!(
                !LabelSelector::parse(s)
                    .map(|sel| sel.matches(&o))
                    .unwrap_or(true),
                "{s}"
            );
        }
    }

    #[test]
    fn a_set_without_parentheses_is_a_bad_request() {
        assert!(matches!(
            LabelSelector::parse("a in x"),
            Err(ApiError::BadRequest { .. })
        ));
    }

    #[test]
    fn field_selectors_match_name_and_namespace() {
        let o = json!({ "metadata": { "name": "a", "namespace": "n" } });
        let sel = FieldSelector::parse("metadata.name=a,metadata.namespace!=m").ok();
        assert!(sel.is_some_and(|s| s.matches(&o)));
        assert!(FieldSelector::parse("spec.x=1").is_err());
    }
}
