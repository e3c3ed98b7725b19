// SPDX-License-Identifier: GPL-2.0

//! The clocks latencies, intervals and log rate limits are measured with: a safe wrapper over
//! `ktime_get_mono_fast_ns()`, and [`Cycles`], the cheaper counter that times intervals begun and
//! ended on one CPU.
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

/// A counter for intervals that begin and end on the same CPU (an interrupt handler, a softirq, a
/// queued call): x86's TSC read in place, where it counts at a constant rate, else [`now_ns`].
///
/// `ktime_get_mono_fast_ns()` is a call, a seqcount loop and an indirect call to the clocksource's
/// `read` (about 40 instructions on x86 when that is the TSC, `kernel/time/timekeeping.c`); the TSC
/// read in place is one instruction, and a difference of two readings becomes nanoseconds by one
/// multiplication. Readings of one CPU compare only with readings of the same CPU, taken with the same
/// `Cycles`: the choice is made once, at load, and kept.
#[derive(Clone, Copy)]
pub(crate) struct Cycles {
    /// Whether readings are the TSC's (else [`now_ns`]'s).
    tsc: bool,
    /// Nanoseconds per count, times 2^32.
    mult: u64,
}

impl Cycles {
    /// The TSC where the kernel's TSC counts at a rate that never changes (`rrp_tsc_khz()`, see
    /// `sys/helpers.c`), else the monotonic clock (a count is a nanosecond).
    pub(crate) fn new() -> Self {
        // SAFETY: No preconditions; it reads boot CPU flags and `tsc_khz`.
        let khz = u64::from(unsafe { bindings::rrp_tsc_khz() });
        if cfg!(target_arch = "x86_64") && khz != 0 {
            Self {
                tsc: true,
                mult: (1_000_000u64 << 32) / khz,
            }
        } else {
            Self {
                tsc: false,
                mult: 1 << 32,
            }
        }
    }

    /// The TSC's rate in kHz if it is what this counter reads.
    pub(crate) fn tsc_khz(&self) -> Option<u64> {
        self.tsc
            .then(|| ((1_000_000u128 << 32) / u128::from(self.mult.max(1))) as u64)
    }

    /// The counter now (comparable only with this CPU's readings).
    #[inline(always)]
    pub(crate) fn now(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.tsc {
            return rdtsc();
        }
        now_ns()
    }

    /// Nanoseconds in `counts` of this counter.
    #[inline(always)]
    pub(crate) fn ns(&self, counts: u64) -> u64 {
        ((u128::from(counts) * u128::from(self.mult)) >> 32) as u64
    }
}

/// The TSC (not ordered against the instructions around it: an interval's ends move by a few
/// cycles at most, as `rdtsc()` without a fence does in `arch/x86/include/asm/msr.h`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `rdtsc` only reads the time-stamp counter into eax:edx; it touches no memory, no
    // stack and no flags. Only called where `rrp_tsc_khz()` said the CPU has a TSC the kernel uses
    // (CR4.TSD is never set for the kernel: it faults only at CPL > 0).
    unsafe {
        core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi,
            options(nomem, nostack, preserves_flags));
    }
    (u64::from(hi) << 32) | u64::from(lo)
}
