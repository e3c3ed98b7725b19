// SPDX-License-Identifier: GPL-2.0

//! The clock latencies are measured with: a safe wrapper over `local_clock()`.
//!
//! C header: [`include/linux/sched/clock.h`](srctree/include/linux/sched/clock.h)

use super::bindings;

/// Nanoseconds of `local_clock()`: `sched_clock()`, the scheduler's and ftrace's default (`local`)
/// clock, callable from any context (NMI too). Where the kernel marks it stable (`sched_clock: Marking
/// stable` in the boot log: an invariant TSC on x86, the architected timer on arm64) it agrees across
/// CPUs, so an interval may start on one CPU and end on another.
#[inline]
pub(crate) fn now_ns() -> u64 {
    // SAFETY: No preconditions.
    unsafe { bindings::local_clock() }
}
