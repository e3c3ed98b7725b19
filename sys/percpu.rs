// SPDX-License-Identifier: GPL-2.0

//! Per-cpu arrays of `u64` counters: a safe wrapper over `alloc_percpu`, `this_cpu_inc` and
//! `per_cpu_ptr`.
//!
//! C header: [`include/linux/percpu.h`](srctree/include/linux/percpu.h)

use super::{bindings, cpu};
use core::cell::Cell;
use kernel::prelude::*;

/// Counters per `alloc_percpu` allocation: 8 KiB, a quarter of the most one allocation may have
/// (`PCPU_MIN_UNIT_SIZE`, 32 KiB), so that a few hundred CPUs already take several chunks (and the
/// scale test runs the chunked paths).
const CHUNK: usize = 1024;

/// Bytes of per-cpu memory an array of `len` counters takes on each possible CPU.
pub(crate) const fn bytes_per_cpu(len: usize) -> usize {
    len * core::mem::size_of::<u64>()
}

/// An array of `len` counters on every possible CPU, in allocations of at most [`CHUNK`] counters,
/// so that its size is not limited by the per-cpu allocator's 32 KiB.
///
/// Incrementing touches only the current CPU's copy with one IRQ-safe instruction (no lock, no
/// atomic, no shared cache line, no call on x86-64). Reads of other CPUs' copies are single aligned
/// 64-bit loads, so they never see a torn value. No CPU ever writes another CPU's copy while it may be
/// incrementing it: [`Self::zero`] is for arrays nobody increments any more.
///
/// # Invariants
///
/// `chunks[i]` is a per-cpu allocation of `min(CHUNK, len - i * CHUNK)` `u64`s from `__alloc_percpu`,
/// freed only in `drop`, and `chunks` covers `len` counters.
pub(crate) struct PerCpuArray {
    chunks: KVec<*mut u64>,
    len: usize,
}

// SAFETY: Each CPU changes only its own copy (`this_cpu_inc`); other accesses are whole-word volatile
// loads, and stores only to copies no CPU increments; so the array may be shared and sent.
unsafe impl Send for PerCpuArray {}
// SAFETY: See `Send`.
unsafe impl Sync for PerCpuArray {}

impl PerCpuArray {
    /// Allocates `len` zeroed counters on every possible CPU.
    pub(crate) fn new(len: usize) -> Result<Self> {
        let mut this = Self {
            chunks: KVec::with_capacity(len.div_ceil(CHUNK), GFP_KERNEL)?,
            len: 0,
        };
        while this.len < len {
            let n = CHUNK.min(len - this.len);
            // SAFETY: `__alloc_percpu` may be called with any size and a power-of-two alignment; it
            // returns zeroed memory or null.
            let base = unsafe { bindings::rrp_alloc_percpu(n * 8, core::mem::align_of::<u64>()) };
            if base.is_null() {
                return Err(ENOMEM);
            }
            // Room was reserved above, so this does not allocate or fail.
            this.chunks.push(base.cast(), GFP_KERNEL)?;
            // INVARIANT: one more chunk of `n` counters.
            this.len += n;
        }
        Ok(this)
    }

    /// Adds one to counter `idx` of the current CPU; an index out of range is ignored.
    #[inline(always)]
    pub(crate) fn inc(&self, idx: usize) {
        if idx < self.len {
            // SAFETY: `chunks` covers `len` counters (invariant), so chunk `idx / CHUNK` exists.
            let base = unsafe { *self.chunks.get_unchecked(idx / CHUNK) };
            this_cpu_inc(base.wrapping_add(idx % CHUNK));
        }
    }

    /// CPU `cpu`'s counters.
    pub(crate) fn cpu_view(&self, cpu: usize) -> CpuView<'_> {
        CpuView {
            array: self,
            cpu,
            cached: Cell::new((0, core::ptr::null_mut())),
        }
    }

    /// The address of counter `idx` in CPU `cpu`'s copy.
    fn slot(&self, cpu: usize, idx: usize) -> Option<*mut u64> {
        if idx >= self.len || !cpu::is_possible(cpu) {
            return None;
        }
        let base = *self.chunks.get(idx / CHUNK)?;
        // SAFETY: `cpu` is a possible CPU, so it has a copy of the live chunk (invariant).
        let copy = unsafe { bindings::rrp_per_cpu_ptr(base, cpu as u32) };
        // `idx % CHUNK` is inside the chunk (invariant), so this stays inside that CPU's copy.
        Some(copy.wrapping_add(idx % CHUNK))
    }

    /// Sets every counter of every possible CPU to zero. Only for an array that no CPU increments
    /// now (else an increment could be lost or undone); see the callers.
    pub(crate) fn zero(&self) {
        for cpu in 0..cpu::nr_cpu_ids() {
            for (i, _) in self.chunks.iter().enumerate() {
                let n = CHUNK.min(self.len - i * CHUNK);
                let Some(copy) = self.slot(cpu, i * CHUNK) else {
                    continue;
                };
                for idx in 0..n {
                    // SAFETY: `copy` is the start of `cpu`'s copy of chunk `i`, which holds `n` aligned
                    // `u64`s (invariant); no CPU increments the array now (the caller's promise).
                    unsafe { copy.add(idx).write_volatile(0) };
                }
            }
        }
    }
}

impl Drop for PerCpuArray {
    fn drop(&mut self) {
        for &base in self.chunks.iter() {
            // SAFETY: `base` came from `__alloc_percpu` and is freed only here (invariant).
            unsafe { bindings::free_percpu(base.cast()) };
        }
    }
}

/// `N` counters on every possible CPU in one allocation, for the counters whose number does not grow
/// with the CPUs. An index the compiler knows to be below `N` (a constant, an enum's position, a
/// clamped bucket) costs no check: a counter is one instruction through `%gs` on x86-64.
///
/// Concurrency as for [`PerCpuArray`].
///
/// # Invariants
///
/// `base` is a per-cpu allocation of `N` `u64`s from `__alloc_percpu`, freed only in `drop`.
pub(crate) struct PerCpuBlock<const N: usize> {
    base: *mut u64,
}

// SAFETY: As for `PerCpuArray`.
unsafe impl<const N: usize> Send for PerCpuBlock<N> {}
// SAFETY: As for `PerCpuArray`.
unsafe impl<const N: usize> Sync for PerCpuBlock<N> {}

impl<const N: usize> PerCpuBlock<N> {
    /// `N` fits one allocation: at most [`CHUNK`] counters (a quarter of `PCPU_MIN_UNIT_SIZE`).
    const FITS: () = assert!(N > 0 && N <= CHUNK);

    /// Allocates `N` zeroed counters on every possible CPU.
    pub(crate) fn new() -> Result<Self> {
        #[allow(clippy::let_unit_value)]
        let () = Self::FITS;
        // SAFETY: As in `PerCpuArray::new`.
        let base = unsafe { bindings::rrp_alloc_percpu(N * 8, core::mem::align_of::<u64>()) };
        if base.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: a per-cpu allocation of `N` counters.
        Ok(Self { base: base.cast() })
    }

    /// Adds one to counter `idx` of the current CPU; an index out of range is ignored.
    #[inline(always)]
    pub(crate) fn inc(&self, idx: usize) {
        if idx < N {
            this_cpu_inc(self.base.wrapping_add(idx));
        }
    }

    /// Adds `v` to counter `idx` of the current CPU; an index out of range is ignored.
    #[inline(always)]
    pub(crate) fn add(&self, idx: usize, v: u64) {
        if idx < N {
            this_cpu_add(self.base.wrapping_add(idx), v);
        }
    }

    /// Raises counter `idx` of the current CPU to `v` if it is below. A load and a store: the counter
    /// must only be raised from one context on its CPU at a time (an interrupt that raised it between
    /// the two could be undone; the callers raise each counter from one kind of handler only, which
    /// does not interrupt itself).
    #[inline(always)]
    pub(crate) fn raise(&self, idx: usize, v: u64) {
        if idx < N {
            let slot = self.base.wrapping_add(idx);
            if this_cpu_read(slot) < v {
                this_cpu_write(slot, v);
            }
        }
    }

    /// Word `idx` of the current CPU (0 out of range). Callers keep the CPU for as long as the value
    /// means something to them (preemption off).
    #[inline(always)]
    pub(crate) fn read(&self, idx: usize) -> u64 {
        if idx < N {
            this_cpu_read(self.base.wrapping_add(idx))
        } else {
            0
        }
    }

    /// Sets word `idx` of the current CPU to `v`; an index out of range is ignored.
    #[inline(always)]
    pub(crate) fn write(&self, idx: usize, v: u64) {
        if idx < N {
            this_cpu_write(self.base.wrapping_add(idx), v);
        }
    }

    /// CPU `cpu`'s copy, or `None` for an impossible CPU.
    fn copy(&self, cpu: usize) -> Option<*mut u64> {
        // SAFETY: `cpu` is a possible CPU, so it has a copy of the live allocation (invariant).
        cpu::is_possible(cpu).then(|| unsafe { bindings::rrp_per_cpu_ptr(self.base, cpu as u32) })
    }

    /// CPU `cpu`'s counters.
    pub(crate) fn cpu_view(&self, cpu: usize) -> BlockView<'_, N> {
        BlockView {
            copy: self.copy(cpu),
            _block: self,
        }
    }

    /// Sets word `idx` of CPU `cpu` to `v` (nothing for an impossible CPU or an index out of range).
    /// Only for a word that no CPU writes now (else one of the writes is lost).
    pub(crate) fn write_on(&self, cpu: usize, idx: usize, v: u64) {
        if idx < N {
            if let Some(copy) = self.copy(cpu) {
                // SAFETY: `copy` is `cpu`'s copy of `N` aligned `u64`s (invariant) and `idx < N`; no CPU
                // writes the word now (the caller's promise).
                unsafe { copy.add(idx).write_volatile(v) };
            }
        }
    }

    /// Sets every counter of every possible CPU to zero. Only for a block that no CPU increments now.
    pub(crate) fn zero(&self) {
        for cpu in 0..cpu::nr_cpu_ids() {
            if let Some(copy) = self.copy(cpu) {
                for idx in 0..N {
                    // SAFETY: `copy` is `cpu`'s copy of `N` aligned `u64`s (invariant); no CPU
                    // increments the block now (the caller's promise).
                    unsafe { copy.add(idx).write_volatile(0) };
                }
            }
        }
    }
}

impl<const N: usize> Drop for PerCpuBlock<N> {
    fn drop(&mut self) {
        // SAFETY: `base` came from `__alloc_percpu` and is freed only here (invariant).
        unsafe { bindings::free_percpu(self.base.cast()) };
    }
}

/// One CPU's counters of a [`PerCpuBlock`].
pub(crate) struct BlockView<'a, const N: usize> {
    /// That CPU's copy (`None`: an impossible CPU, whose counters read 0).
    copy: Option<*mut u64>,
    _block: &'a PerCpuBlock<N>,
}

impl<const N: usize> BlockView<'_, N> {
    /// Counter `idx` (0 out of range or for an impossible CPU).
    pub(crate) fn get(&self, idx: usize) -> u64 {
        match self.copy {
            // SAFETY: `copy` is a CPU's copy of the block, alive while `_block` is borrowed, and
            // `idx < N` is inside it; a racing `this_cpu_inc` is one instruction (see `CpuView::get`).
            Some(copy) if idx < N => unsafe { copy.add(idx).read_volatile() },
            _ => 0,
        }
    }
}

/// One CPU's counters of a [`PerCpuArray`], read with one `per_cpu_ptr` call per chunk rather than
/// per counter.
pub(crate) struct CpuView<'a> {
    array: &'a PerCpuArray,
    cpu: usize,
    /// The chunk last looked up and its address in `cpu`'s copy (null: none yet).
    cached: Cell<(usize, *mut u64)>,
}

impl CpuView<'_> {
    /// Counter `idx` (0 out of range or for an impossible CPU).
    pub(crate) fn get(&self, idx: usize) -> u64 {
        let chunk = idx / CHUNK;
        let (cached_chunk, mut copy) = self.cached.get();
        if copy.is_null() || cached_chunk != chunk {
            match self.array.slot(self.cpu, chunk * CHUNK) {
                Some(start) => copy = start,
                None => return 0,
            }
            self.cached.set((chunk, copy));
        }
        if idx >= self.array.len {
            return 0;
        }
        // SAFETY: `copy` is the start of `cpu`'s copy of live chunk `chunk`, and `idx % CHUNK` is
        // inside it (`idx < len`); a racing `this_cpu_inc` on its owner CPU is a single instruction,
        // so the volatile load of the aligned `u64` sees the old or the new value.
        unsafe { copy.add(idx % CHUNK).read_volatile() }
    }
}

/// `this_cpu_inc()` on the `u64` at per-cpu address `slot`.
///
/// On x86-64 it is what the C macro compiles to: one `incq` through `%gs`, atomic with respect to
/// interrupts and preemption on the running CPU, with no call. Elsewhere, the C helper.
#[inline(always)]
fn this_cpu_inc(slot: *mut u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `slot` is a per-cpu address inside a live chunk (the caller checked the index), so
    // `%gs:slot` is that counter in the current CPU's copy; the single instruction cannot be torn by an
    // interrupt or a migration.
    unsafe {
        core::arch::asm!("incq %gs:({0})", in(reg) slot, options(att_syntax, nostack))
    };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: As above, through the C macro.
    unsafe {
        bindings::rrp_this_cpu_inc(slot, 0)
    };
}

/// `this_cpu_add()` of `v` to the `u64` at per-cpu address `slot`: one `addq` through `%gs` on x86-64.
#[inline(always)]
fn this_cpu_add(slot: *mut u64, v: u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: As in `this_cpu_inc`: `slot` is a per-cpu address inside a live chunk; one instruction.
    unsafe {
        core::arch::asm!("addq {1}, %gs:({0})", in(reg) slot, in(reg) v, options(att_syntax, nostack))
    };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: As above, through the C macro.
    unsafe {
        bindings::rrp_this_cpu_add(slot, v)
    };
}

/// `this_cpu_read()` of the `u64` at per-cpu address `slot`.
#[inline(always)]
fn this_cpu_read(slot: *mut u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let v: u64;
        // SAFETY: As in `this_cpu_inc`: `slot` is a per-cpu address inside a live chunk; one aligned
        // load.
        unsafe {
            core::arch::asm!(
                "movq %gs:({0}), {1}",
                in(reg) slot,
                out(reg) v,
                options(att_syntax, nostack, readonly, preserves_flags)
            )
        };
        v
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: As above, through the C macro.
    unsafe {
        bindings::rrp_this_cpu_read(slot)
    }
}

/// `this_cpu_write()` of `v` to the `u64` at per-cpu address `slot`.
#[inline(always)]
fn this_cpu_write(slot: *mut u64, v: u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: As in `this_cpu_inc`: `slot` is a per-cpu address inside a live chunk; one aligned store.
    unsafe {
        core::arch::asm!(
            "movq {1}, %gs:({0})",
            in(reg) slot,
            in(reg) v,
            options(att_syntax, nostack, preserves_flags)
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: As above, through the C macro.
    unsafe {
        bindings::rrp_this_cpu_write(slot, v)
    };
}
