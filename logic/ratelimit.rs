// SPDX-License-Identifier: GPL-2.0

//! Rate limiting for kernel log lines that user input can trigger, as C's `printk_ratelimited` does:
//! at most [`BURST`] lines per [`INTERVAL_MS`], then one line saying how many were suppressed.

use crate::sys::time::now_ms;
use core::sync::atomic::{AtomicI64, AtomicU32, Ordering::Relaxed};

/// Length of one interval, in milliseconds (`DEFAULT_RATELIMIT_INTERVAL`).
pub(crate) const INTERVAL_MS: i64 = 5000;
/// Lines allowed per interval (`DEFAULT_RATELIMIT_BURST`).
pub(crate) const BURST: u32 = 10;

/// The state of one rate limit. Approximate under concurrent callers (a line more or less), never
/// blocking.
pub(crate) struct RateLimit {
    start_ms: AtomicI64,
    printed: AtomicU32,
    suppressed: AtomicU32,
}

impl RateLimit {
    /// A limit whose first interval starts with its first line.
    pub(crate) const fn new() -> Self {
        Self {
            start_ms: AtomicI64::new(i64::MIN),
            printed: AtomicU32::new(0),
            suppressed: AtomicU32::new(0),
        }
    }

    /// Whether a line may be printed now: `Some(n)` with the lines suppressed since the last one
    /// printed, or `None` when this one is suppressed.
    pub(crate) fn allow(&self) -> Option<u32> {
        let now = now_ms();
        let start = self.start_ms.load(Relaxed);
        if start == i64::MIN || now.saturating_sub(start) >= INTERVAL_MS {
            self.start_ms.store(now, Relaxed);
            self.printed.store(0, Relaxed);
        }
        if self.printed.fetch_add(1, Relaxed) < BURST {
            Some(self.suppressed.swap(0, Relaxed))
        } else {
            self.suppressed.fetch_add(1, Relaxed);
            None
        }
    }
}

/// `pr_warn!` with a [`RateLimit`] of its own call site (as `printk_ratelimited`), reporting the lines
/// it suppressed before the next one it lets through.
macro_rules! warn_ratelimited {
    ($($arg:tt)*) => {{
        static LIMIT: $crate::logic::ratelimit::RateLimit = $crate::logic::ratelimit::RateLimit::new();
        if let Some(suppressed) = LIMIT.allow() {
            if suppressed > 0 {
                pr_warn!("{} similar messages suppressed\n", suppressed);
            }
            pr_warn!($($arg)*);
        }
    }};
}
pub(crate) use warn_ratelimited;
