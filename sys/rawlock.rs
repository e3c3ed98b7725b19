// SPDX-License-Identifier: GPL-2.0

//! A raw spinlock around data that the scheduler's hooks change: `raw_spinlock_t` never sleeps, on
//! PREEMPT_RT too (where the kernel crate's `SpinLock`, a `spinlock_t`, does), and it is held with
//! interrupts off, so it may be taken in a tracepoint probe. The 6.12 kernel crate has no raw lock.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)

use super::bindings;
use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::prelude::*;

/// `data` behind a raw spinlock, reached only through [`Self::with`].
///
/// # Invariants
///
/// `lock` is a `raw_spinlock_t` from `rrp_raw_lock_new()`, initialised, freed only in `drop`; `data`
/// is reached only while it is held.
pub(crate) struct RawSpinLock<T> {
    lock: NonNull<c_void>,
    data: UnsafeCell<T>,
}

// SAFETY: The lock is a kernel object any thread may take and free; the data moves with it.
unsafe impl<T: Send> Send for RawSpinLock<T> {}
// SAFETY: The data is reached only under the lock (type invariant), by one thread at a time.
unsafe impl<T: Send> Sync for RawSpinLock<T> {}

impl<T> RawSpinLock<T> {
    /// The lock around `data`. Allocates: process context.
    pub(crate) fn new(data: T) -> Result<Self> {
        // SAFETY: `rrp_raw_lock_new()` allocates with GFP_KERNEL (process context, the caller's
        // contract) and returns an initialised lock or null.
        let lock = NonNull::new(unsafe { bindings::rrp_raw_lock_new() }).ok_or(ENOMEM)?;
        // INVARIANT: initialised above.
        Ok(Self {
            lock,
            data: UnsafeCell::new(data),
        })
    }

    /// Runs `f` on the data with the lock held and interrupts off. `f` must be short, must not sleep
    /// (no allocation but `GFP_ATOMIC`, no sleeping lock) and must not take this lock again.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: `lock` is an initialised raw spinlock (type invariant).
        let flags = unsafe { bindings::rrp_raw_lock(self.lock.as_ptr()) };
        // SAFETY: The lock is held until below, so this is the only reference to the data.
        let r = f(unsafe { &mut *self.data.get() });
        // SAFETY: Taken above on this CPU with these flags.
        unsafe { bindings::rrp_raw_unlock(self.lock.as_ptr(), flags) };
        r
    }
}

impl<T> Drop for RawSpinLock<T> {
    fn drop(&mut self) {
        // SAFETY: Allocated by `rrp_raw_lock_new()` (type invariant); `&mut self`: nobody holds it.
        unsafe { bindings::rrp_raw_lock_free(self.lock.as_ptr()) };
    }
}
