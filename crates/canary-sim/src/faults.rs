//! Fault injection and request accounting: every request the server receives is
//! recorded, and an injected [`Fault`] answers the Nth matching request (and optionally
//! the following ones) with an error or never answers it at all.

/// What an injected fault does to the request it fires on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer 500 with an `InternalError` Status.
    InternalError,
    /// Answer 409 with a `Conflict` Status (as for a stale resourceVersion).
    Conflict,
    /// Answer 429 with a `TooManyRequests` Status and a `Retry-After` header.
    TooManyRequests {
        /// Seconds sent in `Retry-After`.
        retry_after_secs: u64,
    },
    /// Never answer: the request is held for an hour (or until the server shuts down),
    /// far longer than any client timeout, without blocking other requests.
    Hang,
}

/// A fault to inject with [`crate::SimCluster::inject_fault`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// HTTP method to match (`GET`, `PATCH`, ...; any case); `None` matches every method.
    pub method: Option<String>,
    /// A substring the request path must contain (e.g. `/virtualrouters/`); empty
    /// matches every path.
    pub path_contains: String,
    /// The fault fires on the Nth matching request (1 = the first).
    pub nth: usize,
    /// ... and on this many matching requests after it (0 = only the Nth).
    pub times: usize,
    /// What the fault does.
    pub action: FaultAction,
}

impl Fault {
    /// A fault on the first request matching `method` (`None`: any) and `path_contains`.
    pub fn new(method: Option<&str>, path_contains: &str, action: FaultAction) -> Self {
        Self {
            method: method.map(str::to_string),
            path_contains: path_contains.to_string(),
            nth: 1,
            times: 0,
            action,
        }
    }

    /// Fires on the `nth` matching request (1-based) instead of the first.
    #[must_use]
    pub fn on_nth(mut self, nth: usize) -> Self {
        self.nth = nth.max(1);
        self
    }

    /// Also fires on the `times` matching requests that follow the first firing.
    #[must_use]
    pub fn and_following(mut self, times: usize) -> Self {
        self.times = times;
        self
    }

    /// Whether a request matches the fault's method and path.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_ref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.contains(&self.path_contains)
    }
}

/// One request received by the simulated API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// When it arrived, on the simulator's clock (ms since the epoch).
    pub at_millis: i64,
    /// HTTP method, upper case.
    pub method: String,
    /// The path, e.g. `/apis/apps/v1/namespaces/yelb/deployments/web-1`.
    pub path: String,
    /// The raw query string (without `?`), empty when there is none.
    pub query: String,
    /// Whether the method writes: POST, PUT, PATCH or DELETE.
    pub write: bool,
    /// The injected fault that answered it, if one did.
    pub fault: Option<FaultAction>,
}

/// A fault with the number of matching requests it has seen.
#[derive(Debug, Clone)]
pub(crate) struct ArmedFault {
    pub fault: Fault,
    pub seen: usize,
}

/// Counts the request against every armed fault; returns the action of the first one
/// that fires.
pub(crate) fn check(faults: &mut [ArmedFault], method: &str, path: &str) -> Option<FaultAction> {
    let mut fired = None;
    for armed in faults.iter_mut() {
        if !armed.fault.matches(method, path) {
            continue;
        }
        armed.seen += 1;
        let first = armed.fault.nth;
        if fired.is_none() && armed.seen >= first && armed.seen <= first + armed.fault.times {
            fired = Some(armed.fault.action);
        }
    }
    fired
}

/// Whether an HTTP method writes.
pub(crate) fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_fires_on_the_nth_match_and_the_following_ones_only() {
        let fault = Fault::new(Some("patch"), "/virtualrouters/", FaultAction::Conflict)
            .on_nth(2)
            .and_following(1);
        let mut armed = vec![ArmedFault { fault, seen: 0 }];
        let path = "/apis/appmesh.k8s.aws/v1beta2/namespaces/n/virtualrouters/r";
        assert_eq!(check(&mut armed, "GET", path), None);
        assert_eq!(check(&mut armed, "PATCH", path), None);
        assert_eq!(
            check(&mut armed, "PATCH", path),
            Some(FaultAction::Conflict)
        );
        assert_eq!(
            check(&mut armed, "PATCH", path),
            Some(FaultAction::Conflict)
        );
        assert_eq!(check(&mut armed, "PATCH", path), None);
    }
}
