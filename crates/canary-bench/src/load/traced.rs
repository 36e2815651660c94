//! An ObjectStore that counts every S3 request by the execution that made it and logs
//! every write (`TracedObjects`): what the lock and isolation checks read.

#[allow(clippy::wildcard_imports)]
use super::*;

// ---------------------------------------------------------------------------------
// S3 traced: every request counted, every write attributed to its execution.

tokio::task_local! {
    /// The execution whose future is running (its id, `$$.Execution.Id`).
    pub(super) static EXECUTION: String;
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// A put with its condition; `new_etag` when written.
    Put {
        condition: PutCondition,
        new_etag: Option<String>,
        body: Vec<u8>,
    },
    /// A delete.
    Delete,
}

/// One write to S3, in the order the writers saw their answers.
#[derive(Debug, Clone)]
pub struct WriteRecord {
    /// Position in the log.
    pub seq: u64,
    /// The execution that wrote it (`None`: outside every execution).
    pub execution: Option<String>,
    /// The key.
    pub key: String,
    /// What it did.
    pub op: WriteOp,
    /// Whether it failed with an error (not a failed condition).
    pub error: bool,
}

impl WriteRecord {
    /// Whether the object changed.
    pub fn changed(&self) -> bool {
        !self.error
            && match &self.op {
                WriteOp::Put { new_etag, .. } => new_etag.is_some(),
                WriteOp::Delete => true,
            }
    }
}

/// An [`ObjectStore`] that forwards to another, counting every request by the execution
/// that made it and logging every write.
#[derive(Debug)]
pub struct TracedObjects {
    pub(super) inner: Arc<dyn ObjectStore>,
    pub(super) seq: AtomicU64,
    pub(super) writes: Mutex<Vec<WriteRecord>>,
    pub(super) requests: Mutex<HashMap<Option<String>, u64>>,
}

impl TracedObjects {
    /// Traces `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            seq: AtomicU64::new(0),
            writes: Mutex::new(Vec::new()),
            requests: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn who() -> Option<String> {
        EXECUTION.try_with(Clone::clone).ok()
    }

    pub(super) fn count(&self) -> Option<String> {
        let who = Self::who();
        if let Ok(mut r) = self.requests.lock() {
            *r.entry(who.clone()).or_default() += 1;
        }
        who
    }

    pub(super) fn log(&self, execution: Option<String>, key: &str, op: WriteOp, error: bool) {
        if let Ok(mut w) = self.writes.lock() {
            let seq = self.seq.fetch_add(1, Ordering::SeqCst);
            w.push(WriteRecord {
                seq,
                execution,
                key: key.to_owned(),
                op,
                error,
            });
        }
    }

    /// Every write so far, in log order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.writes.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Requests so far by execution (`None`: made outside any execution).
    pub fn requests(&self) -> HashMap<Option<String>, u64> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Forgets the writes and counts so far.
    pub fn reset(&self) {
        if let Ok(mut w) = self.writes.lock() {
            w.clear();
        }
        if let Ok(mut r) = self.requests.lock() {
            r.clear();
        }
    }
}

#[async_trait]
impl ObjectStore for TracedObjects {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        self.count();
        self.inner.get(key).await
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<PutResult, StoreError> {
        let who = self.count();
        let result = self
            .inner
            .put(key, body.clone(), content_type, condition.clone())
            .await;
        let new_etag = match &result {
            Ok(PutResult::Written(e)) => Some(e.clone()),
            _ => None,
        };
        let op = WriteOp::Put {
            condition,
            new_etag,
            body,
        };
        self.log(who, key, op, result.is_err());
        result
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let who = self.count();
        let result = self.inner.delete(key).await;
        self.log(who, key, WriteOp::Delete, result.is_err());
        result
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.count();
        self.inner.list(prefix).await
    }
}
