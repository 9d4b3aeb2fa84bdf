//! Time as the playground sees it: a base clock plus an offset that the control API can shift,
//! so tests make sessions, codes and device grants expire without waiting.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    fn now_ms(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the playground reads the wall clock
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// The playground's clock: `base` plus an offset moved by `/__playground/clock`.
#[derive(Debug, Clone)]
pub(crate) struct ShiftedClock {
    base: Arc<dyn Clock>,
    offset_ms: Arc<AtomicI64>,
}

impl ShiftedClock {
    pub(crate) fn new(base: Arc<dyn Clock>) -> Self {
        Self { base, offset_ms: Arc::new(AtomicI64::new(0)) }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.base.now_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves playground time forward (or back, with a negative value).
    pub(crate) fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        self.offset_ms.store(0, Ordering::Relaxed);
    }
}
