// SPDX-License-Identifier: GPL-2.0

//! Preempt notifiers: per-task sched_in/sched_out callbacks, a safe wrapper over `preempt_notifier_*`.
//!
//! A notifier sits on one task's list, which the scheduler walks without a lock at that task's context
//! switches. So a notifier is registered and unregistered only by its task ([`Current`]) or, for a new
//! task, by its creator before it first runs ([`NewTask`]), and it lives until its task unregistered it.
//! [`Notifiers`] keeps every notifier it registered, each with a reference on the module, so that neither
//! the notifier nor the module's code goes away while a task still carries it.
//!
//! C header: [`include/linux/preempt.h`](srctree/include/linux/preempt.h)

use super::bindings;
use super::module::ModuleRef;
use super::task::{self, Current, NewTask, Task};
use kernel::alloc::Flags;
use kernel::ffi::c_int;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::SpinLock;
use kernel::types::Opaque;

/// What a notifier calls. Both run in scheduler context and must not sleep, allocate or panic;
/// `sched_out` runs with the runqueue lock held and IRQs off.
pub(crate) trait Handler: Send + Sync {
    /// The task is about to run on `cpu`.
    fn sched_in(&self, cpu: usize);
    /// The task `prev` (still `current`) is being switched out for `next`.
    fn sched_out(&self, prev: &Task, next: &Task);
}

/// A preempt notifier calling `H`.
///
/// # Invariants
///
/// `n` is initialised with the `ops` of the [`Notifiers<H>`] that made it, and is the first field of
/// this `#[repr(C)]` struct, so a pointer to it is a pointer to `Self`.
#[pin_data]
#[repr(C)]
struct PreemptNotifier<H: Handler> {
    #[pin]
    n: Opaque<bindings::preempt_notifier>,
    handler: H,
}

// SAFETY: The C part is only touched by its task and the scheduler (under the rules of the module
// documentation); the handler is `Sync`.
unsafe impl<H: Handler> Sync for PreemptNotifier<H> {}
// SAFETY: As for `Sync`; freeing happens on any thread once it is off every list; `H: Send`.
unsafe impl<H: Handler> Send for PreemptNotifier<H> {}

impl<H: Handler> PreemptNotifier<H> {
    /// An unregistered notifier with `ops`.
    fn new(handler: H, ops: *mut bindings::preempt_ops) -> impl PinInit<Self> {
        // The trampolines cast a pointer to `n` into one to `Self`.
        kernel::build_assert!(core::mem::offset_of!(Self, n) == 0);
        // INVARIANT: `n` is initialised with `ops`, which the caller takes from its `Notifiers`.
        pin_init!(Self {
            // SAFETY: `n` is writable storage for a notifier; `preempt_notifier_init` only stores `ops`.
            n <- Opaque::ffi_init(move |n| unsafe { bindings::rrp_preempt_notifier_init(n, ops) }),
            handler,
        })
    }
}

/// A notifier this set registered, with the module reference it holds; the notifier is freed first.
struct Entry<H: Handler> {
    notifier: Pin<KBox<PreemptNotifier<H>>>,
    _module: ModuleRef,
}

/// The notifiers with handler `H` that tasks carry, and the static key that turns notifiers on.
///
/// The set's `ops` is an allocation of its own, so its address is unique to this set: a notifier on a
/// task's list is one of ours exactly when its `ops` points there.
///
/// # Invariants
///
/// `ops` comes from `KBox::into_raw` and is freed only when no entry is left. Every entry of `list`
/// is registered on exactly one task, with `ops`, by [`Self::attach`] or [`Self::attach_new`], and is
/// removed only after that task unregistered it. Each holds a module reference, so the module, which
/// owns this set, is not unloaded while the list is not empty.
#[pin_data(PinnedDrop)]
pub(crate) struct Notifiers<H: Handler> {
    ops: *mut bindings::preempt_ops,
    #[pin]
    list: SpinLock<KVec<Option<Entry<H>>>>,
    module: &'static ThisModule,
    _enabled: Enabled,
}

// SAFETY: `ops` is only read (by the scheduler, through the notifiers) after construction; the list
// is behind a spinlock; `H: Send + Sync`.
unsafe impl<H: Handler> Send for Notifiers<H> {}
// SAFETY: As for `Send`.
unsafe impl<H: Handler> Sync for Notifiers<H> {}

impl<H: Handler> Notifiers<H> {
    /// An empty set; turns preempt notifiers on (may sleep) until it is dropped.
    pub(crate) fn new(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let ops = bindings::preempt_ops {
            sched_in: Some(sched_in::<H>),
            sched_out: Some(sched_out::<H>),
        };
        try_pin_init!(Self {
            // INVARIANT: from `KBox::into_raw`.
            ops: KBox::into_raw(KBox::new(ops, GFP_KERNEL)?),
            list <- new_spinlock!(KVec::new(), "resched_notifiers"),
            module,
            _enabled: Enabled::new(),
        })
    }

    fn ops(&self) -> *mut bindings::preempt_ops {
        // The C side never writes through this pointer.
        self.ops
    }

    /// This set's notifier on the calling task, if it has one.
    fn find(&self, me: &Current<'_>) -> Option<*mut bindings::preempt_notifier> {
        // SAFETY: The calling task's list changes only in its own context (`Current`), so it can be
        // walked here.
        let n = unsafe { bindings::rrp_preempt_notifier_find(me.as_raw(), self.ops()) };
        (!n.is_null()).then_some(n)
    }

    /// Whether the calling task carries a notifier of this set.
    pub(crate) fn is_attached(&self, me: &Current<'_>) -> bool {
        self.find(me).is_some()
    }

    /// Keeps a new notifier calling `handler` in the list, with a module reference; returns its C part.
    fn insert(&self, handler: H, flags: Flags) -> Result<*mut bindings::preempt_notifier> {
        let module = ModuleRef::try_get(self.module).ok_or(ENODEV)?;
        let notifier = KBox::pin_init(PreemptNotifier::new(handler, self.ops()), flags)?;
        let n = notifier.n.get();
        let entry = Entry {
            notifier,
            _module: module,
        };
        let mut list = self.list.lock();
        if let Some(slot) = list.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(entry);
        } else {
            list.push(Some(entry), GFP_ATOMIC)?;
        }
        Ok(n)
    }

    /// Registers a notifier calling `handler` on the calling task; `Ok(false)` (and `handler` dropped)
    /// if it carries one of this set already.
    pub(crate) fn attach(&self, me: &Current<'_>, handler: H, flags: Flags) -> Result<bool> {
        if self.is_attached(me) {
            return Ok(false);
        }
        let n = self.insert(handler, flags)?;
        // SAFETY: `n` is in `list`, pinned and not registered; `Current` is the calling task in a
        // context where it may change its own list; it stays in `list` until this task unregistered
        // it in `detach` (type invariant).
        unsafe { bindings::rrp_preempt_notifier_register_current(n) };
        Ok(true)
    }

    /// Registers a notifier calling `handler` on `child`, which has not run yet.
    pub(crate) fn attach_new(&self, child: &NewTask<'_>, handler: H, flags: Flags) -> Result {
        let n = self.insert(handler, flags)?;
        // SAFETY: `n` is in `list`, pinned and not registered; nothing walks `child`'s list before it
        // first runs (`NewTask`); `child` unregisters it in `detach` (type invariant).
        unsafe { bindings::rrp_preempt_notifier_register_new(n, child.as_raw()) };
        Ok(())
    }

    /// Unregisters and frees the calling task's notifier of this set; `ENOENT` if it has none.
    pub(crate) fn detach(&self, me: &Current<'_>) -> Result {
        let n = self.find(me).ok_or(ENOENT)?;
        // SAFETY: `n` is registered on the calling task, which may change its own list here (`Current`).
        unsafe { bindings::rrp_preempt_notifier_unregister_current(n) };
        let removed = self
            .list
            .lock()
            .iter_mut()
            .find(|slot| {
                slot.as_ref()
                    .is_some_and(|e| core::ptr::eq(e.notifier.n.get(), n))
            })
            .and_then(Option::take);
        // Freed here, outside the lock: the notifier first, then its module reference.
        drop(removed);
        Ok(())
    }

    /// Calls `f` with the handler of every registered notifier, under the list's spinlock.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&H) -> Result) -> Result {
        let list = self.list.lock();
        list.iter()
            .flatten()
            .try_for_each(|e| f(&e.notifier.handler))
    }
}

#[pinned_drop]
impl<H: Handler> PinnedDrop for Notifiers<H> {
    fn drop(self: Pin<&mut Self>) {
        // Cannot happen (type invariant: each entry holds a module reference). Should it, a notifier
        // still on a task's list must not be freed: leak it, with the `ops` it points to.
        let mut list = self.list.lock();
        let mut left = 0;
        for slot in list.iter_mut() {
            if let Some(entry) = slot.take() {
                left += 1;
                core::mem::forget(entry);
            }
        }
        if left > 0 {
            pr_err!(
                "{} preempt notifiers still registered at unload; leaked\n",
                left
            );
        } else {
            // SAFETY: `ops` came from `KBox::into_raw` and no notifier points to it (invariant).
            drop(unsafe { KBox::from_raw(self.ops) });
        }
    }
}

/// `sched_in` trampoline.
///
/// # Safety
///
/// Called by the scheduler with a registered notifier of a `PreemptNotifier<H>`.
unsafe extern "C" fn sched_in<H: Handler>(n: *mut bindings::preempt_notifier, cpu: c_int) {
    // SAFETY: `n` is the first field of a live `PreemptNotifier<H>` (type invariant).
    let this = unsafe { &*n.cast::<PreemptNotifier<H>>() };
    this.handler.sched_in(cpu as usize);
}

/// `sched_out` trampoline.
///
/// # Safety
///
/// As for [`sched_in`]; the task switched out is `current`, `next` a live task.
unsafe extern "C" fn sched_out<H: Handler>(
    n: *mut bindings::preempt_notifier,
    next: *mut bindings::task_struct,
) {
    // SAFETY: `n` is the first field of a live `PreemptNotifier<H>` (type invariant).
    let this = unsafe { &*n.cast::<PreemptNotifier<H>>() };
    // SAFETY: The scheduler holds `next` for the duration of the switch.
    let next = unsafe { task::from_raw(next) };
    // SAFETY: Used only within this call.
    let prev = unsafe { task::current() };
    this.handler.sched_out(prev, next);
}

/// Keeps the preempt-notifier static key on (`preempt_notifier_inc`) while it lives.
struct Enabled(());

impl Enabled {
    /// Turns preempt notifiers on (may sleep).
    fn new() -> Self {
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
