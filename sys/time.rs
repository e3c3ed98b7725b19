// SPDX-License-Identifier: GPL-2.0

//! The clock latencies and log rate limits are measured with: a safe wrapper over
//! `ktime_get_mono_fast_ns()`.
//!
//! C header: [`include/linux/timekeeping.h`](srctree/include/linux/timekeeping.h)

use super::bindings;

/// Nanoseconds of `CLOCK_MONOTONIC`, the same on every CPU, callable from any context (NMI too).
///
/// It is what BPF's `bpf_ktime_get_ns()` (bpftrace's `nsecs`) and ftrace's `mono` trace clock read, so
/// intervals measured here and there compare.
#[inline]
pub(crate) fn now_ns() -> u64 {
    // SAFETY: No preconditions; it only reads the timekeeper (NMI-safe).
    unsafe { bindings::ktime_get_mono_fast_ns() }
}

/// Milliseconds of the same clock.
#[inline]
pub(crate) fn now_ms() -> i64 {
    (now_ns() / 1_000_000) as i64
}
