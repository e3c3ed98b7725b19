// SPDX-License-Identifier: GPL-2.0

//! CPU identity and online state: safe wrappers over `smp_processor_id()`, `cpu_online()` and friends.
//!
//! C header: [`include/linux/cpumask.h`](srctree/include/linux/cpumask.h)

use super::bindings;

/// The number of possible CPU ids (`nr_cpu_ids`): every CPU id is below this.
pub(crate) fn nr_cpu_ids() -> usize {
    // SAFETY: `rrp_nr_cpu_ids` only reads a variable that is fixed after boot.
    unsafe { bindings::rrp_nr_cpu_ids() as usize }
}

/// The CPU this code runs on.
///
/// Exact in a probe handler (preemption is off there); elsewhere the task may migrate right after.
pub(crate) fn this_cpu() -> usize {
    // SAFETY: `raw_smp_processor_id()` has no preconditions.
    unsafe { bindings::rrp_smp_processor_id() as usize }
}

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
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        const BITS: usize = usize::BITS as usize;
        let nr = nr_cpu_ids();
        (0..nr.div_ceil(BITS)).flat_map(move |w| {
            // SAFETY: A `struct cpumask` holds at least `nr_cpu_ids` bits in whole `unsigned long`s, and
            // the type invariant keeps it valid while `self` lives.
            let mut word = unsafe { self.ptr.cast::<usize>().add(w).read_volatile() };
            core::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let bit = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(w * BITS + bit)
            })
            .take_while(move |&cpu| cpu < nr)
        })
    }
}

/// The CPU of a runqueue (`cpu_of(rq)`).
///
/// # Safety
///
/// `rq` must be the address of a live `struct rq` (runqueues live as long as the kernel).
pub(super) unsafe fn rq_cpu(rq: usize) -> usize {
    // SAFETY: The caller guarantees `rq` points to a runqueue; `cpu_of` reads its `cpu` field.
    unsafe { bindings::rrp_rq_cpu(rq as *mut bindings::rq) as usize }
}
