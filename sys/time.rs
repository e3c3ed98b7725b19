// SPDX-License-Identifier: GPL-2.0

//! The module's clock, which latencies and interruptions are measured with: a counter read where the
//! kernel's is fit to compare between CPUs (x86's TSC read in place, arm64's architected counter), else
//! `ktime_get_mono_fast_ns()`; the raw counts of the same clock ([`Cycles`]) for intervals begun and
//! ended on one CPU; and the monotonic clock for log rate limits.
//!
//! C header: [`include/linux/timekeeping.h`](srctree/include/linux/timekeeping.h)

use super::bindings;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use kernel::prelude::*;

/// Nanoseconds per count, times 2^32, when the counter is the module's clock; 0 when
/// `ktime_get_mono_fast_ns()` is. Set once by [`init`], at load, before any probe can read a clock, and
/// never changed: every reading the module compares comes from the same clock.
static MULT: AtomicU64 = AtomicU64::new(0);

/// Chooses the module's clock, once, at load: the counter where the kernel's is synchronized across
/// CPUs, never halts, counts at a rate that never changes, and agrees with the monotonic clock
/// (`rrp_clock_hz()` in `sys/helpers.c` names the kernel lines), else the monotonic clock. Returns the
/// counter's rate in Hz if it was chosen.
pub(crate) fn init() -> Option<u64> {
    // SAFETY: No preconditions; process context (load): it reads CPU flags, `tsc_khz` or CNTFRQ_EL0,
    // and spins 2 ms with preemption off.
    let hz = unsafe { bindings::rrp_clock_hz() };
    if hz == 0 {
        return None;
    }
    MULT.store((1_000_000_000u64 << 32) / hz, Relaxed);
    Some(hz)
}

/// Nanoseconds of the module's clock (see [`init`]), comparable between CPUs, callable from any
/// context (NMI too). With x86's TSC, one instruction and a multiplication where
/// `ktime_get_mono_fast_ns()` is a call, a seqcount loop and an indirect call to the clocksource's
/// `read` (about 40 instructions, `kernel/time/timekeeping.c`); arm64's counter is a call and the
/// kernel's indirect one.
#[inline]
pub(crate) fn now_ns() -> u64 {
    let mult = MULT.load(Relaxed);
    if mult != 0 {
        return ((u128::from(counter()) * u128::from(mult)) >> 32) as u64;
    }
    mono_ns()
}

/// Nanoseconds of `CLOCK_MONOTONIC`, the same on every CPU, callable from any context (NMI too).
///
/// It is what BPF's `bpf_ktime_get_ns()` (bpftrace's `nsecs`) and ftrace's `mono` trace clock read, so
/// intervals measured here and there compare.
#[inline]
pub(crate) fn mono_ns() -> u64 {
    // SAFETY: No preconditions; it only reads the timekeeper (NMI-safe).
    unsafe { bindings::ktime_get_mono_fast_ns() }
}

/// Milliseconds of the monotonic clock.
#[inline]
pub(crate) fn now_ms() -> i64 {
    (mono_ns() / 1_000_000) as i64
}

/// The module's clock for intervals that begin and end on the same CPU (an interrupt handler, a
/// softirq, a queued call), read raw: the counter's counts where it is the module's clock, converted to
/// nanoseconds once per interval; else [`now_ns`].
#[derive(Clone, Copy)]
pub(crate) struct Cycles {
    /// Whether readings are the counter's (else [`now_ns`]'s).
    counter: bool,
    /// Nanoseconds per count, times 2^32.
    mult: u64,
}

impl Cycles {
    /// The counter of the module's clock ([`init`] has run).
    pub(crate) fn new() -> Self {
        match MULT.load(Relaxed) {
            0 => Self {
                counter: false,
                mult: 1 << 32,
            },
            mult => Self {
                counter: true,
                mult,
            },
        }
    }

    /// The counter now (comparable only with this CPU's readings).
    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        if self.counter {
            return counter();
        }
        now_ns()
    }

    /// Nanoseconds in `counts` of this counter.
    #[inline(always)]
    pub(crate) fn ns(&self, counts: u64) -> u64 {
        ((u128::from(counts) * u128::from(self.mult)) >> 32) as u64
    }
}

/// The counter: x86's TSC (not ordered against the instructions around it: an interval's ends move
/// by a few cycles at most, as `rdtsc()` without a fence does in `arch/x86/include/asm/msr.h`). Only
/// called where `rrp_clock_hz()` chose it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn counter() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `rdtsc` only reads the time-stamp counter into eax:edx; it touches no memory, no
    // stack and no flags. `rrp_clock_hz()` chose it only where the CPU has a TSC the kernel uses
    // (CR4.TSD is never set for the kernel: it faults only at CPL > 0).
    unsafe {
        core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi,
            options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The counter elsewhere: arm64's architected counter through the kernel (`rrp_counter()`); 0 where
/// there is none (then `rrp_clock_hz()` never chose it).
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn counter() -> u64 {
    // SAFETY: No preconditions; callable from any context (the kernel's counter read is `noinstr`).
    unsafe { bindings::rrp_counter() }
}

/// Whether the TSC is the module's clock and the kernel has marked it unstable since the load (a CPU
/// brought up out of sync, an idle state that stops it): readings compared between CPUs may then be
/// off until the module is loaded again. Logged once. Process context (a file's read).
pub(crate) fn stale() -> bool {
    static LOGGED: AtomicBool = AtomicBool::new(false);
    // SAFETY: No preconditions; it reads a flag of the kernel's.
    if MULT.load(Relaxed) == 0 || !unsafe { bindings::rrp_tsc_unstable() } {
        return false;
    }
    if !LOGGED.swap(true, Relaxed) {
        pr_warn!("the kernel marked the TSC unstable after the load: latencies between CPUs may be off until the module is loaded again\n");
    }
    true
}
