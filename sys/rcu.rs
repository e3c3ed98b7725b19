// SPDX-License-Identifier: GPL-2.0

//! Waiting for every probe handler in flight: a safe wrapper over `synchronize_rcu`.
//!
//! Kprobe, kretprobe and tracepoint handlers and preempt notifiers all run with preemption disabled,
//! which makes them RCU read-side critical sections: once [`synchronize`] returns, every handler that
//! was running when it was called has returned, and every later one sees what was stored before.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)

use super::bindings;

/// Waits until every handler running now has returned (may sleep: process context only).
pub(crate) fn synchronize() {
    // SAFETY: `synchronize_rcu` may be called from any sleepable context; debugfs writes and module
    // init/exit, the only callers, are.
    unsafe { bindings::synchronize_rcu() };
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
