//! Time as the tasks see it. Production uses the system clock; tests, the demo and the
//! local executor use a manual clock that only moves when told to, so a ten-minute
//! rollout runs in milliseconds and always the same way.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// Now, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;

    /// Now, in whole seconds since the Unix epoch.
    fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// For a virtual clock: move time forward instead of sleeping. Returns `false` for a
    /// real clock, whose caller must sleep for real.
    fn advance(&self, _millis: i64) -> bool {
        false
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when advanced. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    millis: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock that starts at `start_millis`.
    pub fn starting_at(start_millis: i64) -> Self {
        Self {
            millis: Arc::new(AtomicI64::new(start_millis)),
        }
    }

    /// Sets the time.
    pub fn set(&self, millis: i64) {
        self.millis.store(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.millis.load(Ordering::SeqCst)
    }

    fn advance(&self, millis: i64) -> bool {
        self.millis.fetch_add(millis.max(0), Ordering::SeqCst);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_clones_share_it() {
        let a = ManualClock::starting_at(1_000);
        let b = a.clone();
        assert_eq!(a.now_millis(), 1_000);
        assert!(b.advance(2_500));
        assert_eq!(a.now_millis(), 3_500);
        assert_eq!(a.now_secs(), 3);
    }
}
