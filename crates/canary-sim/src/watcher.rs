//! Watch (`GET <collection>?watch=true`): a stream of newline-delimited
//! `{"type":"ADDED|MODIFIED|DELETED","object":...}` events, produced by comparing the
//! matching objects with what the watcher has already been sent, every 50 ms (running
//! the simulated controllers each time, so Deployments turn ready on the stream when
//! the clock passes their delay).
//!
//! Simplifications: from `resourceVersion=N`, objects newer than N are sent as
//! MODIFIED and deletions before the watch started are not replayed; no bookmarks; the
//! stream ends after `timeoutSeconds` (default 30 minutes) or at server shutdown.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::SimCluster;
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};

/// How often a watch looks for changes.
const POLL: Duration = Duration::from_millis(50);

/// What one watch stream needs.
#[derive(Debug)]
pub(crate) struct Watch {
    sim: SimCluster,
    rt: &'static ResourceType,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    /// (namespace, name) -> resourceVersion already sent (or known to the client).
    known: BTreeMap<(String, String), String>,
    pending: VecDeque<Value>,
    deadline: Instant,
    shutdown: watch::Receiver<bool>,
}

fn id(obj: &Value) -> (String, String) {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (s("/metadata/namespace"), s("/metadata/name"))
}

fn rv_of(obj: &Value) -> String {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Watch {
    /// A watch from `resource_version` (`None` or `"0"`: every current object is sent
    /// as ADDED first).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        sim: SimCluster,
        rt: &'static ResourceType,
        namespace: Option<String>,
        labels: LabelSelector,
        fields: FieldSelector,
        resource_version: Option<&str>,
        timeout: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let mut w = Self {
            sim,
            rt,
            namespace,
            labels,
            fields,
            known: BTreeMap::new(),
            pending: VecDeque::new(),
            deadline: Instant::now() + timeout,
            shutdown,
        };
        let since = resource_version
            .filter(|rv| !rv.is_empty() && *rv != "0")
            .and_then(|rv| rv.parse::<u64>().ok());
        let current = w.current();
        for obj in current {
            let rv = rv_of(&obj);
            match since {
                Some(n) if rv.parse::<u64>().is_ok_and(|r| r <= n) => {
                    w.known.insert(id(&obj), rv);
                }
                Some(_) => {
                    w.known.insert(id(&obj), rv);
                    w.pending
                        .push_back(json!({ "type": "MODIFIED", "object": obj }));
                }
                None => {
                    w.known.insert(id(&obj), rv);
                    w.pending
                        .push_back(json!({ "type": "ADDED", "object": obj }));
                }
            }
        }
        w
    }

    fn current(&self) -> Vec<Value> {
        let (rt, ns) = (self.rt, self.namespace.as_deref());
        self.sim
            .with_state(|s| s.list(rt, ns, &self.labels, &self.fields))
    }

    /// Compares the matching objects with what was sent and queues the differences.
    fn poll(&mut self) {
        let current = self.current();
        let mut seen = BTreeMap::new();
        for obj in current {
            let key = id(&obj);
            let rv = rv_of(&obj);
            match self.known.get(&key) {
                None => self
                    .pending
                    .push_back(json!({ "type": "ADDED", "object": obj.clone() })),
                Some(old) if *old != rv => self
                    .pending
                    .push_back(json!({ "type": "MODIFIED", "object": obj.clone() })),
                Some(_) => {}
            }
            seen.insert(key, (rv, obj));
        }
        let gone: Vec<(String, String)> = self
            .known
            .keys()
            .filter(|k| !seen.contains_key(*k))
            .cloned()
            .collect();
        for (ns, name) in gone {
            let mut metadata = json!({ "name": name });
            if !ns.is_empty() {
                metadata["namespace"] = json!(ns);
            }
            let rv = self.sim.with_state(|s| s.resource_version());
            metadata["resourceVersion"] = json!(rv);
            let object = json!({ "apiVersion": self.rt.api_version(), "kind": self.rt.kind, "metadata": metadata });
            self.pending
                .push_back(json!({ "type": "DELETED", "object": object }));
        }
        self.known = seen.into_iter().map(|(k, (rv, _))| (k, rv)).collect();
    }

    /// The next event line, or `None` when the stream ends.
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                let mut line = event.to_string();
                line.push('\n');
                return Some((Ok(Bytes::from(line)), self));
            }
            if Instant::now() >= self.deadline || *self.shutdown.borrow() {
                return None;
            }
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = shutdown.wait_for(|stop| *stop) => return None,
            }
            self.poll();
        }
    }

    /// The streaming response body.
    pub(crate) fn into_body(self) -> Body {
        Body::from_stream(futures::stream::unfold(self, Self::next))
    }
}
