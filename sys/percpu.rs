// SPDX-License-Identifier: GPL-2.0

//! Per-cpu arrays of `u64` counters: a safe wrapper over `alloc_percpu`, `this_cpu_inc` and
//! `per_cpu_ptr`.
//!
//! C header: [`include/linux/percpu.h`](srctree/include/linux/percpu.h)

use super::{bindings, cpu};
use kernel::prelude::*;

/// An array of `len` counters on every possible CPU.
///
/// Incrementing touches only the current CPU's copy with one IRQ-safe instruction (no lock, no atomic,
/// no shared cache line). Reads of other CPUs' copies are single aligned 64-bit loads, so they never
/// see a torn value.
///
/// # Invariants
///
/// `base` is a per-cpu allocation of `len` `u64`s from `__alloc_percpu`, freed only in `drop`.
pub(crate) struct PerCpuArray {
    base: *mut u64,
    len: usize,
}

// SAFETY: Each CPU changes only its own copy (`this_cpu_inc`), other accesses are whole-word volatile
// loads and stores, so the array may be shared and sent between threads.
unsafe impl Send for PerCpuArray {}
// SAFETY: See `Send`.
unsafe impl Sync for PerCpuArray {}

impl PerCpuArray {
    /// Allocates `len` zeroed counters on every possible CPU.
    pub(crate) fn new(len: usize) -> Result<Self> {
        let size = len.checked_mul(core::mem::size_of::<u64>()).ok_or(EINVAL)?;
        // SAFETY: `__alloc_percpu` may be called with any size and a power-of-two alignment; it returns
        // zeroed memory or null.
        let base = unsafe { bindings::rrp_alloc_percpu(size, core::mem::align_of::<u64>()) };
        if base.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: `base` is a fresh per-cpu allocation of `len` u64s.
        Ok(Self {
            base: base.cast(),
            len,
        })
    }

    /// The number of counters per CPU.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Adds one to counter `idx` of the current CPU; an index out of range is ignored.
    #[inline]
    pub(crate) fn inc(&self, idx: usize) {
        if idx < self.len {
            // SAFETY: `base` is a live per-cpu array of `len` u64s (invariant) and `idx < len`.
            unsafe { bindings::rrp_this_cpu_inc(self.base, idx as u32) };
        }
    }

    fn cpu_slot(&self, cpu: usize, idx: usize) -> Option<*mut u64> {
        if idx >= self.len || !cpu::is_possible(cpu) {
            return None;
        }
        // SAFETY: `cpu` is a possible CPU, so it has a copy of the live array (invariant).
        let copy = unsafe { bindings::rrp_per_cpu_ptr(self.base, cpu as u32) };
        // SAFETY: `idx < len`, so the result stays inside that CPU's copy.
        Some(unsafe { copy.add(idx) })
    }

    /// Counter `idx` of CPU `cpu` (0 for an impossible CPU or an index out of range).
    pub(crate) fn get(&self, cpu: usize, idx: usize) -> u64 {
        match self.cpu_slot(cpu, idx) {
            // SAFETY: `slot` is an aligned `u64` inside the live allocation; a racing `this_cpu_inc` on
            // its owner CPU is a single instruction, so the volatile load sees the old or new value.
            Some(slot) => unsafe { slot.read_volatile() },
            None => 0,
        }
    }

    /// Sets every counter of every possible CPU to zero.
    ///
    /// An increment racing with this lands either before (and is zeroed) or after (and is kept).
    pub(crate) fn zero(&self) {
        for cpu in 0..cpu::nr_cpu_ids() {
            for idx in 0..self.len {
                if let Some(slot) = self.cpu_slot(cpu, idx) {
                    // SAFETY: as in `get`; an aligned 64-bit store is not torn.
                    unsafe { slot.write_volatile(0) };
                }
            }
        }
    }
}

impl Drop for PerCpuArray {
    fn drop(&mut self) {
        // SAFETY: `base` came from `__alloc_percpu` and is freed only here (invariant).
        unsafe { bindings::free_percpu(self.base.cast()) };
    }
}
