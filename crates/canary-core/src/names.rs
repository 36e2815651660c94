//! Name and reference rules: RFC 1123 / RFC 1035 labels, EKS cluster names and container
//! image references. Each check returns a sentence fragment that says what is wrong.
//!
//! These rules also make rendering safe: a value that passes cannot change the YAML
//! structure of a template (no spaces, quotes, colons followed by space, `#`, brackets,
//! newlines, or YAML keywords).

/// What is wrong with a name or an image reference, as a sentence fragment that
/// follows the field's name ("must not be empty", "has an invalid tag `x`").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct NameError {
    /// The fragment, quoting the offending part of the value.
    pub problem: String,
}

impl NameError {
    fn new(problem: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
        }
    }
}

/// Words that YAML reads as something other than a string when they stand alone.
const YAML_WORDS: &[&str] = &["null", "true", "false", "yes", "no", "on", "off", "y", "n"];

/// An RFC 1123 label: lowercase letters, digits and `-`, starting and ending with a
/// letter or digit, at most `max` characters.
pub fn check_dns_label(s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::new("must not be empty"));
    }
    if s.len() > max {
        return Err(NameError::new(format!(
            "is {} characters long; at most {max} are allowed",
            s.len()
        )));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::new(format!(
            "must be an RFC 1123 label (lowercase letters, digits and `-`); `{}` is not allowed",
            c.escape_default()
        )));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(NameError::new(
            "must start and end with a letter or a digit (RFC 1123 label)",
        ));
    }
    if YAML_WORDS.contains(&s) {
        return Err(NameError::new(format!(
            "`{s}` is a YAML keyword and would not be read as a name"
        )));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::new(
            "must contain a letter: YAML would read an all-digit name as a number",
        ));
    }
    yaml_reads_as_itself(s)
}

/// A microservice name: an RFC 1035 label (a Service name must start with a letter) that
/// leaves room for `-<version>` within 63 characters, up to version `max_version`.
pub fn check_service_name(s: &str, max_version: u32) -> Result<(), NameError> {
    let room = 63 - 1 - max_version.to_string().len();
    check_dns_label(s, room).map_err(|e| {
        if s.len() > room {
            NameError::new(format!(
                "{e}, so that `{s}-<version>` still fits in 63 characters"
            ))
        } else {
            e
        }
    })?;
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(NameError::new(
            "must start with a lowercase letter (Service names are RFC 1035 labels)",
        ));
    }
    Ok(())
}

/// An EKS cluster name: 1-100 characters, letters, digits, `-` and `_`, starting with a
/// letter or digit.
pub fn check_cluster_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() || s.len() > 100 {
        return Err(NameError::new(format!(
            "must be 1 to 100 characters long (EKS rule), not {}",
            s.len()
        )));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(NameError::new(
            "must start with a letter or a digit (EKS rule)",
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(NameError::new(format!(
            "may only hold letters, digits, `-` and `_` (EKS rule); `{}` is not allowed",
            c.escape_default()
        )));
    }
    Ok(())
}

/// A container image reference: `[host[:port]/]path[:tag][@algorithm:hex]`.
pub fn check_image(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::new("must not be empty"));
    }
    if s.len() > 1024 {
        return Err(NameError::new(format!(
            "is {} characters long; at most 1024 are allowed",
            s.len()
        )));
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(NameError::new(format!(
            "must not contain whitespace or control characters (found `{}`)",
            c.escape_default()
        )));
    }
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        check_digest(d)?;
    }
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(i) if last_slash.is_none_or(|j| i > j) => (&name_tag[..i], Some(&name_tag[i + 1..])),
        _ => (name_tag, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(NameError::new(format!(
                "has an invalid tag `{t}` (letters, digits, `_`, `.`, `-`; at most 128)"
            )));
        }
    }
    if name.is_empty() {
        return Err(NameError::new("has no repository name"));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    let has_host =
        parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_host {
        check_host(first)?;
        parts.remove(0);
    }
    for p in parts {
        check_path_component(p)?;
    }
    yaml_reads_as_itself(s)
}

/// A value that YAML, standing alone, reads as this very string: not a number (`0`,
/// `1.5`, `1e5`, `0x1f`), a boolean or null, which a template would turn into another
/// type.
fn yaml_reads_as_itself(s: &str) -> Result<(), NameError> {
    match serde_saphyr::from_str::<serde_json::Value>(s) {
        Ok(serde_json::Value::String(read)) if read == s => Ok(()),
        Ok(other) => Err(NameError::new(format!(
            "`{s}` would be read by YAML as {other}, not as this text"
        ))),
        Err(_) => Err(NameError::new(format!("`{s}` is not plain YAML text"))),
    }
}

fn check_host(h: &str) -> Result<(), NameError> {
    let (host, port) = match h.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (h, None),
    };
    if let Some(p) = port
        && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(NameError::new(format!(
            "has an invalid registry port `{p}`"
        )));
    }
    let ok = !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(NameError::new(format!(
            "has an invalid registry host `{host}`"
        )))
    }
}

fn check_path_component(p: &str) -> Result<(), NameError> {
    let bad = || {
        Err(NameError::new(format!(
            "has an invalid repository path component `{p}` (lowercase letters and digits, separated by `.`, `_`, `__` or `-`)"
        )))
    };
    if p.is_empty() || !p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return bad();
    }
    if !p.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return bad();
    }
    if !p
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    {
        return bad();
    }
    Ok(())
}

fn check_digest(d: &str) -> Result<(), NameError> {
    let Some((algo, hex)) = d.split_once(':') else {
        return Err(NameError::new(format!(
            "has an invalid digest `{d}` (expected `sha256:<64 hex digits>`)"
        )));
    };
    let algo_ok = !algo.is_empty()
        && algo.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '_' | '-')
        });
    let hex_ok = hex.len() >= 32
        && hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    let len_ok = algo != "sha256" || hex.len() == 64;
    if algo_ok && hex_ok && len_ok {
        Ok(())
    } else {
        Err(NameError::new(format!(
            "has an invalid digest `{d}` (expected `sha256:<64 hex digits>`)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_from_registries_are_accepted() {
        for ok in [
            "nginx",
            "nginx:1.27",
            "library/nginx:latest",
            "123456789012.dkr.ecr.us-west-2.amazonaws.com/yelb-appserver:build-42",
            "localhost:5000/team/app_x:v1.2.3",
            "public.ecr.aws/nginx/nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "repo/app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(check_image(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn malformed_images_are_rejected() {
        for bad in [
            "",
            "Nginx",
            "nginx:",
            "nginx:bad tag",
            "a//b",
            "-app",
            "app:x\ny: 1",
            "app@sha256:zz",
            "repo/app:{x}",
            "app'",
            "0",
            "1.5",
            "1e5",
        ] {
            assert!(check_image(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn labels_reject_yaml_words_and_numbers() {
        assert!(check_dns_label("null", 63).is_err());
        assert!(check_dns_label("123", 63).is_err());
        assert!(check_dns_label("yelb", 63).is_ok());
        assert!(check_dns_label("a-b", 63).is_ok());
        assert!(check_dns_label("A", 63).is_err());
        assert!(check_dns_label("a_b", 63).is_err());
        assert!(
            check_dns_label("1e5", 63).is_err(),
            "YAML reads 1e5 as a number"
        );
    }

    #[test]
    fn service_name_leaves_room_for_the_version() {
        let long = "a".repeat(57);
        assert!(check_service_name(&long, 99_999).is_ok());
        let too_long = "a".repeat(58);
        let err = check_service_name(&too_long, 99_999).unwrap_err();
        assert!(err.to_string().contains("63"), "{err}");
        assert!(check_service_name("1abc", 99_999).is_err());
    }

    #[test]
    fn cluster_names_follow_eks_rules() {
        assert!(check_cluster_name("blogpost").is_ok());
        assert!(check_cluster_name("my_cluster-1").is_ok());
        assert!(check_cluster_name("_x").is_err());
        assert!(check_cluster_name("a.b").is_err());
        assert!(check_cluster_name(&"a".repeat(101)).is_err());
    }
}
