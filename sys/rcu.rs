// SPDX-License-Identifier: GPL-2.0

//! Waiting for every probe handler in flight: a safe wrapper over `synchronize_rcu` (and, on 7.x, a
//! `tracepoint_srcu` grace period).
//!
//! Kprobe and kretprobe handlers and preempt notifiers run with preemption disabled, which makes them
//! RCU read-side critical sections. Tracepoint probes did too until 6.12; on 7.x they are SRCU-fast
//! read-side critical sections of `tracepoint_srcu` (`__DECLARE_TRACE` in include/linux/tracepoint.h),
//! whose grace period C `rrp_synchronize_handlers` waits for beside RCU's where the tree says so. Once
//! [`synchronize`] returns, every handler that was running when it was called has returned, and every
//! later one sees what was stored before.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)

use super::bindings;

/// Waits until every handler running now has returned (may sleep: process context only).
pub(crate) fn synchronize() {
    // SAFETY: `synchronize_rcu` and `synchronize_srcu` may be called from any sleepable
    // context; debugfs writes and module init/exit, the only callers, are.
    unsafe { bindings::rrp_synchronize_handlers() };
}

/// Runs `f` in an RCU read-side critical section (no sleeping in `f`).
pub(crate) fn read_lock<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: No preconditions; balanced below.
    unsafe { bindings::rrp_rcu_read_lock() };
    let r = f();
    // SAFETY: Balances the lock above, in the same context.
    unsafe { bindings::rrp_rcu_read_unlock() };
    r
}
