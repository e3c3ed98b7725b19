// SPDX-License-Identifier: GPL-2.0

//! Preempt notifiers: per-task sched_in/sched_out callbacks, a wrapper over `preempt_notifier_*`.
//!
//! A notifier sits on one task's list, which the scheduler walks without a lock during that task's
//! context switches. So the list may only change from the task itself with preemption off, or before a
//! new task first runs; the registration functions below make their callers promise that.
//!
//! C header: [`include/linux/preempt.h`](srctree/include/linux/preempt.h)

use crate::bindings;
use core::marker::PhantomData;
use core::ptr::addr_of_mut;
use kernel::init::pin_init_from_closure;
use kernel::prelude::*;
use kernel::types::Opaque;

/// A task, borrowed from the kernel for the duration of a callback.
pub(crate) struct Task<'a> {
    ptr: *mut bindings::task_struct,
    _lifetime: PhantomData<&'a bindings::task_struct>,
}

impl Task<'_> {
    /// Borrows the task at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a live task for the lifetime of the returned value.
    pub(crate) unsafe fn from_raw(ptr: *mut bindings::task_struct) -> Self {
        Self {
            ptr,
            _lifetime: PhantomData,
        }
    }

    /// The calling task.
    pub(crate) fn current() -> Task<'static> {
        // SAFETY: `current` is always a live task, for as long as the caller runs.
        unsafe { Task::from_raw(bindings::rrp_current()) }
    }

    /// Its thread id.
    pub(crate) fn pid(&self) -> i32 {
        // SAFETY: `ptr` is live (type invariant of `from_raw`).
        unsafe { bindings::rrp_task_pid(self.ptr) }
    }

    /// Its name (`comm`), NUL-padded.
    pub(crate) fn comm(&self) -> [u8; 16] {
        let mut buf = [0u8; 16];
        // SAFETY: `ptr` is live and `buf` has room for `buf.len()` bytes.
        unsafe { bindings::rrp_task_comm(self.ptr, buf.as_mut_ptr(), buf.len()) };
        buf
    }

    /// Whether it is `TASK_RUNNING` (at sched_out: preempted rather than blocking).
    pub(crate) fn is_running(&self) -> bool {
        // SAFETY: `ptr` is live.
        unsafe { bindings::rrp_task_is_running(self.ptr) }
    }

    /// Whether this is the calling task.
    pub(crate) fn is_current(&self) -> bool {
        // SAFETY: `rrp_current` has no preconditions.
        self.ptr == unsafe { bindings::rrp_current() }
    }
}

/// A counted reference to a task (`get_task_struct`), so that its pid and name can be read later.
///
/// # Invariants
///
/// `ptr` is a live task on which this value holds one reference.
pub(crate) struct TaskRef {
    ptr: *mut bindings::task_struct,
}

// SAFETY: A task reference may be dropped (`put_task_struct`) from any thread.
unsafe impl Send for TaskRef {}
// SAFETY: Only reads of the task go through `&TaskRef`.
unsafe impl Sync for TaskRef {}

impl TaskRef {
    /// Takes a reference on `task`.
    pub(crate) fn new(task: &Task<'_>) -> Self {
        // SAFETY: `task.ptr` is live.
        unsafe { bindings::rrp_get_task_struct(task.ptr) };
        // INVARIANT: we took a reference just above.
        Self { ptr: task.ptr }
    }

    /// The task.
    pub(crate) fn task(&self) -> Task<'_> {
        // SAFETY: The reference keeps the task alive while `self` lives.
        unsafe { Task::from_raw(self.ptr) }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: We hold one reference (type invariant).
        unsafe { bindings::rrp_put_task_struct(self.ptr) };
    }
}

/// What a [`PreemptNotifier`] calls. Both run in scheduler context and must not sleep or panic;
/// `sched_out` runs with the runqueue lock held and IRQs off.
pub(crate) trait Handler: Sync {
    /// The task is about to run on `cpu`.
    fn sched_in(&self, cpu: usize);
    /// The task is being switched out; `prev` is the task itself (still `current`).
    fn sched_out(&self, prev: &Task<'_>);
}

/// The `preempt_ops` of every notifier with handler `H`.
struct Ops<H>(PhantomData<H>);

impl<H: Handler> Ops<H> {
    const OPS: bindings::preempt_ops = bindings::preempt_ops {
        sched_in: Some(sched_in::<H>),
        sched_out: Some(sched_out::<H>),
    };

    fn ptr() -> *mut bindings::preempt_ops {
        // The C side never writes through this pointer.
        (&Self::OPS as *const bindings::preempt_ops).cast_mut()
    }
}

/// A preempt notifier for one task, calling `H`.
///
/// # Invariants
///
/// `n` is initialised with `Ops::<H>::OPS`, and is the first field of this `#[repr(C)]` struct, so a
/// pointer to it is a pointer to `Self`.
#[repr(C)]
pub(crate) struct PreemptNotifier<H: Handler> {
    n: Opaque<bindings::preempt_notifier>,
    handler: H,
}

// SAFETY: The C part is only touched by its task and the scheduler; `H: Sync`.
unsafe impl<H: Handler> Sync for PreemptNotifier<H> {}
// SAFETY: As for `Sync`; freeing may happen on any thread once it is off every list.
unsafe impl<H: Handler + Send> Send for PreemptNotifier<H> {}

impl<H: Handler> PreemptNotifier<H> {
    /// An unregistered notifier.
    pub(crate) fn new(handler: H) -> impl PinInit<Self, Error> {
        // SAFETY: The closure initialises both fields and returns `Ok`.
        unsafe {
            pin_init_from_closure(move |slot: *mut Self| {
                addr_of_mut!((*slot).handler).write(handler);
                let n = Opaque::raw_get(addr_of_mut!((*slot).n));
                // INVARIANT: initialised with `Ops::<H>::OPS`.
                bindings::rrp_preempt_notifier_init(n, Ops::<H>::ptr());
                Ok(())
            })
        }
    }

    /// The handler.
    pub(crate) fn handler(&self) -> &H {
        &self.handler
    }

    /// Registers the notifier on the calling task.
    ///
    /// # Safety
    ///
    /// `preempt_notifier_inc` must be in effect, the notifier must not be registered, and it must be
    /// unregistered by this same task ([`Self::unregister_current`]) before it is freed.
    pub(crate) unsafe fn register_current(self: Pin<&Self>) {
        // SAFETY: The caller upholds the contract; the helper disables preemption around the change.
        unsafe { bindings::rrp_preempt_notifier_register_current(self.n.get()) };
    }

    /// Registers the notifier on `task`, which has not run yet.
    ///
    /// # Safety
    ///
    /// As for [`Self::register_current`], and `task` is a new task that has not been woken yet, and it
    /// is `task` that will unregister the notifier.
    pub(crate) unsafe fn register_new(self: Pin<&Self>, task: &Task<'_>) {
        // SAFETY: Nothing walks `task`'s list before it first runs; the caller upholds the rest.
        unsafe { bindings::rrp_preempt_notifier_register_new(self.n.get(), task.ptr) };
    }

    /// Unregisters the notifier from the calling task.
    ///
    /// # Safety
    ///
    /// The notifier must be registered on the calling task, and this must not be called from a notifier.
    pub(crate) unsafe fn unregister_current(self: Pin<&Self>) {
        // SAFETY: The caller upholds the contract; the helper disables preemption around the change.
        unsafe { bindings::rrp_preempt_notifier_unregister_current(self.n.get()) };
    }

    /// The notifier with handler `H` registered on the calling task, if any.
    ///
    /// # Safety
    ///
    /// Every notifier with `Ops::<H>::OPS` on the task's list must be a live `PreemptNotifier<H>`, for the
    /// returned lifetime.
    pub(crate) unsafe fn find_current<'a>() -> Option<Pin<&'a Self>> {
        // SAFETY: The calling task's own list is only changed by itself, so walking it here is safe.
        let n = unsafe {
            bindings::rrp_preempt_notifier_find(bindings::rrp_current(), Ops::<H>::ptr())
        };
        if n.is_null() {
            return None;
        }
        // SAFETY: Its ops are `Ops::<H>`, so it is the first field of a live `PreemptNotifier<H>` (the
        // caller's contract), which is pinned.
        Some(unsafe { Pin::new_unchecked(&*n.cast::<Self>()) })
    }
}

/// `sched_in` trampoline.
///
/// # Safety
///
/// Called by the scheduler with a registered notifier of a `PreemptNotifier<H>`.
unsafe extern "C" fn sched_in<H: Handler>(n: *mut bindings::preempt_notifier, cpu: i32) {
    // SAFETY: `n` is the first field of a live `PreemptNotifier<H>` (type invariant).
    let this = unsafe { &*n.cast::<PreemptNotifier<H>>() };
    this.handler.sched_in(cpu as usize);
}

/// `sched_out` trampoline.
///
/// # Safety
///
/// As for [`sched_in`]; the task switched out is `current`.
unsafe extern "C" fn sched_out<H: Handler>(
    n: *mut bindings::preempt_notifier,
    _next: *mut bindings::task_struct,
) {
    // SAFETY: `n` is the first field of a live `PreemptNotifier<H>` (type invariant).
    let this = unsafe { &*n.cast::<PreemptNotifier<H>>() };
    this.handler.sched_out(&Task::current());
}

/// Keeps the preempt-notifier static key on (`preempt_notifier_inc`) while it lives.
pub(crate) struct Enabled(());

impl Enabled {
    /// Turns preempt notifiers on (may sleep).
    pub(crate) fn new() -> Self {
        // SAFETY: `preempt_notifier_inc` may be called from process context at any time.
        unsafe { bindings::preempt_notifier_inc() };
        Self(())
    }
}

impl Drop for Enabled {
    fn drop(&mut self) {
        // SAFETY: Balances the `preempt_notifier_inc` of `new`.
        unsafe { bindings::preempt_notifier_dec() };
    }
}
