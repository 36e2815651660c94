//! The decisions: what the state machine does next, one file per question, all pure.
//!
//! - `readiness.rs`: after the objects are applied and after each readiness probe —
//!   wait, shift, or fail with `CanaryNotReady`; how long one invocation watches.
//! - `shift.rs`: after a shift — check, or promote a first deployment; how long a
//!   weight is held.
//! - `check.rs`: after a health check (verdict → next step) — check again, shift,
//!   promote or roll back; which checks one invocation makes itself.
//! - `gates.rs`: gates and a person's hand — pause for an approval, approve, promote
//!   by hand, a gate's timeout.
//! - `holds.rs`: how many `hold` verdicts in a row are too many.
//! - `rollback.rs`: how to roll back (back to stable, remove a failed first deployment,
//!   or complete a promotion when the stable version is gone), which errors roll back,
//!   and the sentence the record keeps.
//! - `recovery.rs`: a deployment that ended without finishing — whether the lock's
//!   holder still runs (its lease, or what Step Functions says), what restores the
//!   service, and the sentence its record keeps.
//! - `promotion.rs`: the sentence of a promotion.
//! - `finish.rs`: the document once a deployment has ended.
//!
//! The handlers read input, call the I/O and these decisions, and write the result;
//! they decide nothing themselves.

pub mod check;
pub mod finish;
pub mod gates;
pub mod holds;
pub mod promotion;
pub mod readiness;
pub mod recovery;
pub mod rollback;
pub mod shift;

pub use check::InlineChecks;
pub use gates::{Approval, GateEvents, PromoteRequest, Requests};
pub use readiness::{NotReady, ReadyProbe, ReadyWatch};
pub use recovery::{HolderState, NoSafeVersion, RecoveryPlan};
pub use rollback::{NothingCanServe, RollbackPlan};
