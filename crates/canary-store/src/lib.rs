//! Deployment state in S3 (the shared stack's bucket): each service's stable version
//! and image, a version counter that never goes back, the history of deployments, the
//! rendered manifest of each version, the per-service lock and the abort marker.
//!
//! [`DeploymentStore`] holds the logic; it is written against the narrow
//! [`ObjectStore`] trait, implemented on S3 ([`S3Objects`], aws-sdk-s3) and in memory
//! ([`MemoryObjects`], same conditional semantics, for tests and local runs).
//!
//! # Where things are
//!
//! | module | what it does |
//! |---|---|
//! | `store` | [`DeploymentStore`]: construction, the key of each object, JSON read/write |
//! | `service` | [`ServiceRef`], the unit of versions and locking |
//! | `lock` | take (or take over from an ended execution), renew, read, release and break the lock ([`LockInfo`], [`TakeLock`]) |
//! | `state` | `state.json` ([`State`]): read-modify-write, adopting a stable version |
//! | `records` | history records ([`Record`]): `begin`, progress, `finish_*`, `history` |
//! | `manifests` | rendered manifests |
//! | `requests` | operator requests to a running deployment ([`Abort`]) |
//! | `status` | what `canary status` shows ([`Status`]) |
//! | `objects`, `s3` | the [`ObjectStore`] trait, in memory and on S3 |
//! | `error` | [`StoreError`] and its state machine error names |
//!
//! Nothing failed is read as "nothing there": an object that does not parse is
//! [`StoreError::Corrupt`] naming its key, a document that does not serialize is
//! [`StoreError::Serialize`] and is not written.
//!
//! # S3 layout
//!
//! Keys live under an optional prefix ([`DeploymentStore::with_prefix`]), then
//! `<cluster>/<namespace>/<service>/`:
//!
//! | key | written by | content |
//! |---|---|---|
//! | `state.json` | `begin`, `finish_*`, `adopt_stable` (conditional `If-Match` read-modify-write) | [`State`] |
//! | `history/<version>.json` | `begin`, `record_progress`, `finish_*` (`finish_recovered` for a stopped one) | [`Record`], one per deployment, keyed by version |
//! | `manifests/<version>.yaml` | `put_manifest` | the rendered template of that version |
//! | `lock.json` | `take_lock` / `take_lock_as` (`If-None-Match: *`, or `If-Match` over a released marker or an ended holder's lock), `renew_lock`, `release_lock` / `break_lock` (`If-Match` on the ETag just read) | held or released marker |
//! | `notifications/<version>.json` | `record_notification_failure` (a notification that could not be sent) | [`NotificationFailures`] |
//! | `abort.json` | `request_abort` (`canary abort`); deleted by `begin` and `finish_*` | [`Abort`] |
//! | `approve.json` | `request_approval` (`canary approve`); deleted when used, and by `begin` and `finish_*` | `canary_core::decide::Approval` |
//! | `promote.json` | `request_promotion` (`canary promote`); deleted when used, and by `begin` and `finish_*` | `canary_core::decide::PromoteRequest` |
//!
//! Times are Unix seconds. The JSON shapes:
//!
//! ```json
//! // state.json
//! {"stable_version": 3, "stable_image": "repo/app:3", "version_counter": 4, "updated_at": 1767225600,
//!  "in_progress": {"execution": "arn:...:exec-7", "version": 4, "image": "repo/app:4", "started_at": 1767225600}}
//! // history/4.json
//! {"version": 4, "execution": "arn:...:exec-7", "image": "repo/app:4",
//!  "previous_version": 3, "previous_image": "repo/app:3",
//!  "started_at": 1767225600, "ended_at": 1767226800,
//!  "outcome": {"status": "rolled_back", "reason": "12 errors over 600 s (4 datapoints): more than failure_threshold_value 0"},
//!  "weight": 0, "max_weight": 20,
//!  "verdicts": [{"status": "unhealthy", "errors": 12.0, "window_seconds": 600, "datapoints": 4, "reason": "..."}],
//!  "manifest_key": "c1/yelb/yelb-appserver/manifests/4.yaml", "updated_at": 1767226800}
//! // lock.json while held (a terminal's `canary run` adds its lease, "expires_at"),
//! // then after release (or `canary unlock`: "by": "unlock by <who>")
//! {"state": "held", "execution": "arn:...:exec-7", "since": 1767225600, "nonce": "..."}
//! {"state": "held", "execution": "web-local-1767225600", "since": 1767225600, "nonce": "...", "expires_at": 1767225660}
//! {"state": "released", "execution": "arn:...:exec-7", "at": 1767226800, "by": "arn:...:exec-7"}
//! // abort.json
//! {"by": "alice", "reason": "bad release", "at": 1767226000}
//! ```
//!
//! # The lock
//!
//! The lock token is the `nonce` of the `lock.json` that `take_lock` wrote: it names
//! this take of the lock, and survives a lease renewal (which rewrites the object).
//! `lock.json` is never deleted: releasing writes a "released" marker with `If-Match`
//! on the ETag just read (after checking holder and token), so a release can tell "I
//! released it already" (idempotent) from "someone broke or took it"
//! ([`StoreError::LockLost`]). Taking a released lock is an `If-Match` on the marker;
//! taking an absent one is `If-None-Match: *`. Either way exactly one of two concurrent
//! takers wins; the other reads the holder and fails with [`StoreError::Locked`], having
//! written nothing. The execution that holds the lock may take it again (a retried
//! render-template) and gets the same token. (Locks taken before the nonce was the
//! token handed out their ETag as the token; it is still accepted.)
//!
//! Whether the holder still runs: a `canary run` in a terminal holds a lease
//! (`expires_at`, renewed every third of it); a Step Functions execution holds none,
//! and Step Functions says whether it runs. A recovery takes the lock over from a
//! holder known to have ended ([`TakeLock::replacing`], a conditional write on what it
//! read), restores the service and ends the orphaned record with
//! [`DeploymentStore::finish_recovered`].
//!
//! # A deployment's calls
//!
//! `take_lock` → `begin` (new version = counter + 1; retried by the same execution: the
//! same version) → `put_manifest` → `record_progress` (each shift / check) →
//! `finish_promoted` or `finish_rolled_back`, which write the record and the state,
//! clear the abort marker and **release the lock** (the caller does not). Every step is
//! safe to retry.
//!
//! A store that starts empty beside a cluster that already serves a version (`canary
//! run` with an in-memory store) first calls `adopt_stable`, so that the next `begin`
//! deploys the version after it.

mod error;
mod lock;
mod manifests;
mod notifications;
mod objects;
mod records;
mod requests;
mod s3;
mod service;
mod state;
mod status;
mod store;

pub use error::{Cause, StoreError};
pub use lock::{LockInfo, TakeLock};
pub use notifications::NotificationFailures;
pub use objects::{MemoryObjects, Object, ObjectStore, PutCondition, PutResult};
pub use records::{Begin, Finish, MAX_VERDICTS, Record, RecoveredEnd};
pub use requests::Abort;
pub use s3::S3Objects;
pub use service::ServiceRef;
pub use state::{InProgress, State};
pub use status::Status;
pub use store::DeploymentStore;
