//! Injected time, so snapshots, retention and eviction are deterministic in tests.

use std::sync::atomic::{AtomicI64, Ordering};

/// A source of "now" in nanoseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current time in ns since the epoch.
    fn now_ns(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct MockClock(AtomicI64);

impl MockClock {
    /// A clock at `ns`.
    pub fn new(ns: i64) -> Self {
        Self(AtomicI64::new(ns))
    }
    /// Moves the clock to `ns`.
    pub fn set(&self, ns: i64) {
        self.0.store(ns, Ordering::SeqCst);
    }
}

impl Clock for MockClock {
    fn now_ns(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
