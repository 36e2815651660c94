//! Which service an execution belongs to, read from its name.
//!
//! A pipeline deploys only its own service. The pipeline stack sets the Step Functions
//! action's `ExecutionNamePrefix` to `<namespace>_<service>_`, and CodePipeline names
//! each execution `<prefix>-<action execution id>` (a 36-character UUID); `canary
//! start` names its executions `<namespace>_<service>_<suffix>` the same way. The
//! repository behind a pipeline controls deploy.json but not that name (it comes from
//! the stack), so render-template compares the two before it takes any lock.
//!
//! The form, and why it cannot be read two ways: namespaces and service names are DNS
//! labels (`[a-z0-9-]`, which may contain `--`, so `--` could not separate them), and
//! neither may contain `_`; so the first `_` ends the namespace and the second ends the
//! service, whatever follows. The cluster is not in the name: Step Functions allows 80
//! characters and CodePipeline takes 37 of them, which leaves 43 for the prefix, and a
//! cluster name alone may have 100. The build's `canary prepare` checks the cluster
//! (`CANARY_CLUSTER`), and each pipeline's stack names the one cluster it deploys to.
//!
//! A name without any `_` carries no owner: executions started before pipelines named
//! them (the old `<service>-<uuid>` and `canary start`'s `<service>-<time>`), the local
//! executor's and a console start's. They are accepted ([`NameOwner::Unowned`]):
//! whoever may call StartExecution directly chooses the name anyway, so refusing
//! unprefixed names would stop no person, only break older pipelines until their stacks
//! are updated; the check exists for pipelines, whose names CodePipeline sets from the
//! stack. A name with a `_` claims an owner and must be of the form above.

use std::fmt;

/// The longest execution name Step Functions accepts.
pub const MAX_NAME: usize = 80;
/// What CodePipeline's Step Functions action appends to `ExecutionNamePrefix`: `-` and
/// the action execution id, a UUID.
pub const PIPELINE_SUFFIX_LEN: usize = 37;
/// The separator after the namespace and after the service (never in a DNS label).
pub const SEPARATOR: char = '_';

/// `<namespace>_<service>_`: the owner prefix of the executions of one service.
pub fn prefix(namespace: &str, service: &str) -> String {
    format!("{namespace}{SEPARATOR}{service}{SEPARATOR}")
}

/// The prefix for `namespace` and `service` if a pipeline can use it: both DNS labels,
/// and short enough that CodePipeline's suffix still fits in an execution name.
pub fn pipeline_prefix(namespace: &str, service: &str) -> Result<String, String> {
    for (what, value) in [("namespace", namespace), ("service", service)] {
        if !is_dns_label(value) {
            return Err(format!(
                "{what} `{value}` is not a DNS label (1 to 63 of a-z, 0-9 and `-`, starting and ending with a letter or digit)"
            ));
        }
    }
    let p = prefix(namespace, service);
    if p.len() + PIPELINE_SUFFIX_LEN > MAX_NAME {
        return Err(format!(
            "the execution name prefix `{p}` has {} characters: with CodePipeline's {PIPELINE_SUFFIX_LEN}-character suffix it exceeds Step Functions' {MAX_NAME}; namespace and service together may have at most {} characters",
            p.len(),
            MAX_NAME - PIPELINE_SUFFIX_LEN - 2
        ));
    }
    Ok(p)
}

/// The execution's name: the last part of an execution ARN
/// (`arn:aws:states:<region>:<account>:execution:<state machine>:<name>`), or the id
/// itself when it is not an ARN.
pub fn execution_name(execution: &str) -> &str {
    if execution.starts_with("arn:") {
        execution.rsplit(':').next().unwrap_or(execution)
    } else {
        execution
    }
}

/// What an execution's name says about its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameOwner<'a> {
    /// `<namespace>_<service>_<suffix>`.
    Owned {
        namespace: &'a str,
        service: &'a str,
    },
    /// No `_` in the name: no owner said.
    Unowned,
}

/// Reads the owner from an execution's name (or ARN). A name with a `_` that is not
/// `<namespace>_<service>_<suffix>` is an error naming it.
pub fn parse(execution: &str) -> Result<NameOwner<'_>, String> {
    let name = execution_name(execution);
    if !name.contains(SEPARATOR) {
        return Ok(NameOwner::Unowned);
    }
    let mut parts = name.splitn(3, SEPARATOR);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(namespace), Some(service), Some(_))
            if is_dns_label(namespace) && is_dns_label(service) =>
        {
            Ok(NameOwner::Owned { namespace, service })
        }
        _ => Err(format!(
            "execution name `{name}` contains `_` but is not `<namespace>_<service>_<suffix>` (the owner prefix pipelines and `canary start` give); a name without an owner has no `_`"
        )),
    }
}

/// The execution's name says it belongs to another service than the one deploy.json
/// deploys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerMismatch {
    pub name: String,
    pub owner: (String, String),
    pub deploys: (String, String),
}

impl fmt::Display for OwnerMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "execution `{}` belongs to service `{}` in namespace `{}` (its name's owner prefix `{}`) but deploy.json deploys `{}` in namespace `{}`: a pipeline deploys only its own service",
            self.name,
            self.owner.1,
            self.owner.0,
            prefix(&self.owner.0, &self.owner.1),
            self.deploys.1,
            self.deploys.0,
        )
    }
}

/// Checks that `execution` may deploy `service` in `namespace`: its name has no owner
/// prefix, or that prefix names them. `Err` carries the message to give.
pub fn check(execution: &str, namespace: &str, service: &str) -> Result<(), String> {
    match parse(execution)? {
        NameOwner::Unowned => Ok(()),
        NameOwner::Owned {
            namespace: n,
            service: s,
        } if n == namespace && s == service => Ok(()),
        NameOwner::Owned {
            namespace: n,
            service: s,
        } => Err(OwnerMismatch {
            name: execution_name(execution).to_owned(),
            owner: (n.to_owned(), s.to_owned()),
            deploys: (namespace.to_owned(), service.to_owned()),
        }
        .to_string()),
    }
}

/// 1 to 63 of `a-z`, `0-9` and `-`, starting and ending with a letter or digit.
pub fn is_dns_label(s: &str) -> bool {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 63 && ok(first) && ok(last) && bytes.iter().all(|&b| ok(b) || b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "1624a1d1-3699-43f0-8e1e-6bafd7fde791";

    #[test]
    fn a_pipeline_name_reads_back_its_owner() {
        let p = pipeline_prefix("yelb", "yelb-appserver").unwrap_or_default();
        assert_eq!(p, "yelb_yelb-appserver_");
        let arn = format!("arn:aws:states:eu-west-1:123456789012:execution:eks-canary:{p}-{UUID}");
        assert_eq!(
            parse(&arn),
            Ok(NameOwner::Owned {
                namespace: "yelb",
                service: "yelb-appserver"
            })
        );
        assert!(check(&arn, "yelb", "yelb-appserver").is_ok());
    }

    #[test]
    fn another_service_or_namespace_is_refused_naming_both() {
        let name = format!("yelb_yelb-ui_-{UUID}");
        let e = check(&name, "yelb", "yelb-appserver")
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("`yelb-ui`") && e.contains("`yelb-appserver`"),
            "{e}"
        );
        let e = check(&name, "other", "yelb-ui").err().unwrap_or_default();
        assert!(
            e.contains("namespace `yelb`") && e.contains("namespace `other`"),
            "{e}"
        );
    }

    #[test]
    fn double_dashes_cannot_shift_the_boundary() {
        // with `--` as the separator these two would read the same
        assert_eq!(
            parse("a--b_c_x"),
            Ok(NameOwner::Owned {
                namespace: "a--b",
                service: "c"
            })
        );
        assert_eq!(
            parse("a_b--c_x"),
            Ok(NameOwner::Owned {
                namespace: "a",
                service: "b--c"
            })
        );
    }

    #[test]
    fn names_without_an_owner_are_accepted_and_malformed_ones_refused() {
        assert_eq!(
            parse("yelb-appserver-20260101T000000Z"),
            Ok(NameOwner::Unowned)
        );
        assert_eq!(parse("local-1767225600000"), Ok(NameOwner::Unowned));
        assert!(check("exec-1", "yelb", "anything").is_ok());
        for bad in [
            "my_run",
            "Yelb_app_x",
            "yelb_app",
            "_yelb_app",
            "yelb__x",
            "yelb_-app_x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_that_leave_no_room_for_codepipeline_are_refused() {
        let service = "s".repeat(40);
        // 43 characters, and CodePipeline's 37 make 80
        assert_eq!(pipeline_prefix("n", &service).map(|p| p.len()), Ok(43));
        let e = pipeline_prefix("ns", &service).err().unwrap_or_default();
        assert!(e.contains("exceeds Step Functions' 80"), "{e}");
        assert!(pipeline_prefix("Yelb", "x").is_err());
    }
}
