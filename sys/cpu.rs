// SPDX-License-Identifier: GPL-2.0

//! CPU identity and online state: safe wrappers over `smp_processor_id()`, `cpu_online()` and friends.
//!
//! C header: [`include/linux/cpumask.h`](srctree/include/linux/cpumask.h)

use super::bindings;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The number of possible CPU ids (`nr_cpu_ids`): every CPU id is below this.
///
/// Fixed after boot: asked of C once, then a load (it is used in probe handlers).
#[inline]
pub(crate) fn nr_cpu_ids() -> usize {
    let mut n = NR_CPU_IDS.load(Relaxed);
    if n == 0 {
        // SAFETY: `rrp_nr_cpu_ids` only reads a variable that is fixed after boot.
        n = unsafe { bindings::rrp_nr_cpu_ids() } as usize;
        NR_CPU_IDS.store(n, Relaxed);
    }
    n
}

/// `nr_cpu_ids` (0: not asked yet).
static NR_CPU_IDS: AtomicUsize = AtomicUsize::new(0);

/// The CPU this code runs on.
///
/// Exact in a probe handler (preemption is off there); elsewhere the task may migrate right after.
///
/// On x86-64 this is what `raw_smp_processor_id()` compiles to, one load through `%gs`, with no call
/// (the per-cpu address of the CPU number, `pcpu_hot.cpu_number` on 6.12 and `cpu_number` on 7.x, is asked
/// of C once).
#[inline]
pub(crate) fn this_cpu() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let mut ptr = CPU_NUMBER.load(Relaxed);
        if ptr == 0 {
            // SAFETY: No preconditions: it returns the address of a per-cpu variable.
            ptr = unsafe { bindings::rrp_cpu_number_ptr() } as usize;
            CPU_NUMBER.store(ptr, Relaxed);
        }
        let cpu: u32;
        // SAFETY: `ptr` is the per-cpu address of the CPU number (an `int`), so `%gs:ptr` is the
        // running CPU's copy, which only CPU bring-up writes; a single aligned load.
        unsafe {
            core::arch::asm!(
                "movl %gs:({0}), {1:e}",
                in(reg) ptr,
                out(reg) cpu,
                options(att_syntax, nostack, readonly, preserves_flags)
            )
        };
        cpu as usize
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: `raw_smp_processor_id()` has no preconditions.
    unsafe {
        bindings::rrp_smp_processor_id() as usize
    }
}

/// Runs `f` with preemption off, passing it the CPU it runs on, which stays so until `f` returns (`f`
/// must not sleep).
pub(crate) fn pinned<R>(f: impl FnOnce(usize) -> R) -> R {
    // SAFETY: No preconditions; balanced below, in the same task.
    unsafe { bindings::rrp_preempt_disable() };
    let r = f(this_cpu());
    // SAFETY: Balances the `preempt_disable()` above.
    unsafe { bindings::rrp_preempt_enable() };
    r
}

/// The per-cpu address of the CPU number (0: not asked yet).
#[cfg(target_arch = "x86_64")]
static CPU_NUMBER: AtomicUsize = AtomicUsize::new(0);

/// `offsetof(struct rq, cpu)` (`usize::MAX`: not asked yet).
static RQ_CPU_OFFSET: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Whether CPU `cpu` is possible (has per-cpu storage).
pub(crate) fn is_possible(cpu: usize) -> bool {
    if cpu >= nr_cpu_ids() {
        return false;
    }
    // SAFETY: `cpu < nr_cpu_ids`, so it indexes inside `cpu_possible_mask`.
    unsafe { bindings::rrp_cpu_possible(cpu as u32) }
}

/// Whether CPU `cpu` is online now.
pub(crate) fn is_online(cpu: usize) -> bool {
    if cpu >= nr_cpu_ids() {
        return false;
    }
    // SAFETY: `cpu < nr_cpu_ids`, so it indexes inside `cpu_online_mask`.
    unsafe { bindings::rrp_cpu_online(cpu as u32) }
}

/// The online CPUs, in increasing order.
pub(crate) fn online() -> impl Iterator<Item = usize> {
    (0..nr_cpu_ids()).filter(|&cpu| is_online(cpu))
}

/// A `struct cpumask` borrowed from C for the duration of a call.
pub(crate) struct CpuMask<'a> {
    ptr: *const bindings::cpumask,
    _lifetime: core::marker::PhantomData<&'a bindings::cpumask>,
}

impl CpuMask<'_> {
    /// Borrows the mask at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct cpumask` that stays valid and unchanged for the lifetime of
    /// the returned value.
    pub(super) unsafe fn from_raw(ptr: usize) -> Self {
        Self {
            ptr: ptr as *const bindings::cpumask,
            _lifetime: core::marker::PhantomData,
        }
    }

    /// The CPUs set in the mask, in increasing order.
    ///
    /// Reads the bitmap a word at a time (no call per CPU: this runs in a probe handler).
    pub(crate) fn iter(&self) -> CpuMaskIter<'_> {
        CpuMaskIter {
            mask: self,
            nr: nr_cpu_ids(),
            next_word: 0,
            bits: 0,
            base: 0,
        }
    }

    /// Word `w` of the bitmap.
    ///
    /// # Safety
    ///
    /// `w < nr_cpu_ids().div_ceil(usize::BITS)`.
    #[inline]
    unsafe fn word(&self, w: usize) -> usize {
        // SAFETY: A `struct cpumask` holds at least `nr_cpu_ids` bits in whole `unsigned long`s (the
        // caller keeps `w` below that), and the type invariant keeps it valid while `self` lives.
        unsafe { self.ptr.cast::<usize>().add(w).read_volatile() }
    }
}

/// The CPUs of a [`CpuMask`], in increasing order: [`CpuMask::iter`].
pub(crate) struct CpuMaskIter<'a> {
    mask: &'a CpuMask<'a>,
    nr: usize,
    /// The next word of the bitmap to read.
    next_word: usize,
    /// The bits of the word read last not yet returned.
    bits: usize,
    /// The CPU of that word's bit 0.
    base: usize,
}

impl Iterator for CpuMaskIter<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        const BITS: usize = usize::BITS as usize;
        // Wrapping arithmetic, so that the probes that walk a mask carry no overflow check: `next_word`
        // is at most `usize::MAX / BITS` (the end), whose product with `BITS` does not wrap, and `base`
        // plus a bit position stays below `nr` rounded up to a word.
        while self.bits == 0 {
            let at = self.next_word.wrapping_mul(BITS);
            if at >= self.nr {
                return None;
            }
            // SAFETY: `next_word * BITS < nr` (just checked), so the word is inside the mask.
            self.bits = unsafe { self.mask.word(self.next_word) };
            self.base = at;
            self.next_word = self.next_word.wrapping_add(1);
        }
        let cpu = self.base.wrapping_add(self.bits.trailing_zeros() as usize);
        self.bits &= self.bits.wrapping_sub(1);
        if cpu < self.nr {
            Some(cpu)
        } else {
            // Bits past `nr_cpu_ids` in the last word are not CPUs: the end.
            self.bits = 0;
            self.next_word = usize::MAX / BITS;
            None
        }
    }
}

/// The CPU of a runqueue (`cpu_of(rq)`).
///
/// # Safety
///
/// `rq` must be the address of a live `struct rq` (runqueues live as long as the kernel).
///
/// Reads the field `cpu_of()` reads, at an offset asked of C once: no call on the hot path.
#[inline]
pub(super) unsafe fn rq_cpu(rq: usize) -> usize {
    let mut offset = RQ_CPU_OFFSET.load(Relaxed);
    if offset == usize::MAX {
        // SAFETY: No preconditions: it returns a constant.
        offset = unsafe { bindings::rrp_rq_cpu_offset() } as usize;
        RQ_CPU_OFFSET.store(offset, Relaxed);
    }
    // SAFETY: The caller guarantees `rq` points to a live runqueue, whose `int cpu` is at `offset`; it
    // is set at boot and never changes.
    unsafe { (rq.wrapping_add(offset) as *const i32).read() as usize }
}

/// Whether the current task of the runqueue at `rq` is marked to reschedule (`TIF_NEED_RESCHED`).
///
/// # Safety
///
/// `rq` must point to a live runqueue, and the caller must run with preemption off (so `rq->curr`,
/// freed only after an RCU grace period, stays valid while it is read).
pub(super) unsafe fn rq_curr_marked(rq: usize) -> bool {
    // SAFETY: The caller's promise.
    unsafe { bindings::rrp_rq_curr_need_resched(rq as *mut bindings::rq) }
}
