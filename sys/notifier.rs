// SPDX-License-Identifier: GPL-2.0

//! Preempt notifiers: per-task sched_in/sched_out callbacks, a safe wrapper over `preempt_notifier_*`.
//!
//! A notifier sits on one task's list, which the scheduler walks without a lock at that task's context
//! switches. So a notifier is registered and unregistered only by its task ([`Current`]) or, for a new
//! task, by its creator before it first runs ([`NewTask`]), and it lives until its task unregistered it.
//! [`Notifiers`] is a table of notifiers allocated at load; each one a task carries holds a reference on
//! the module, so that neither the notifier nor the module's code goes away while a task still carries
//! it.
//!
//! C header: [`include/linux/preempt.h`](srctree/include/linux/preempt.h)

use super::bindings;
use super::cpu;
use super::module::ModuleRef;
use super::task::{self, Current, NewTask, Task, Woken};
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::types::Opaque;

/// What a notifier calls. Both run in scheduler context and must not sleep, allocate or panic;
/// `sched_out` runs with the runqueue lock held and IRQs off.
pub(crate) trait Handler: Send + Sync {
    /// The task `me` (now `current`) is about to run on `cpu`.
    fn sched_in(&self, cpu: usize, me: &Task);
    /// The task `prev` (still `current`) is being switched out for `next`.
    fn sched_out(&self, prev: &Task, next: &Task);
}

/// A preempt notifier calling `H`, in slot `index` of its [`Notifiers`].
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
    index: usize,
    /// The task it is registered on (stored before each registration): the trampolines' `current`,
    /// without a call to C (see [`sched_in`]).
    owner: AtomicPtr<bindings::task_struct>,
    handler: H,
}

// SAFETY: The C part is only touched by its task and the scheduler (under the rules of the module
// documentation); the handler is `Sync`.
unsafe impl<H: Handler> Sync for PreemptNotifier<H> {}
// SAFETY: As for `Sync`; freeing happens on any thread once it is off every list; `H: Send`.
unsafe impl<H: Handler> Send for PreemptNotifier<H> {}

impl<H: Handler> PreemptNotifier<H> {
    /// An unregistered notifier with `ops`.
    fn new(index: usize, handler: H, ops: *mut bindings::preempt_ops) -> impl PinInit<Self> {
        // The trampolines cast a pointer to `n` into one to `Self`.
        build_assert!(core::mem::offset_of!(Self, n) == 0);
        // INVARIANT: `n` is initialised with `ops`, which the caller takes from its `Notifiers`.
        pin_init!(Self {
            // SAFETY: `n` is writable storage for a notifier; `preempt_notifier_init` only stores `ops`.
            n <- Opaque::ffi_init(move |n| unsafe { bindings::rrp_preempt_notifier_init(n, ops) }),
            index,
            owner: AtomicPtr::new(core::ptr::null_mut()),
            handler,
        })
    }
}

/// A table of preempt notifiers with handler `H`, allocated at load, that tasks carry; and the static
/// key that turns notifiers on, from the first attach.
///
/// Attaching and detaching allocate nothing and take no lock: a slot is claimed and freed with one
/// atomic operation on a bitmap, and found again from the task's own notifier list. So both may happen
/// in a tracepoint (fork, exit), on PREEMPT_RT too. At most `limit` slots are in use; an attach beyond
/// it is refused and counted ([`Self::full`]).
///
/// The table's `ops` is an allocation of its own, so its address is unique to this table: a notifier on
/// a task's list is one of ours exactly when its `ops` points there.
///
/// # Invariants
///
/// `ops` comes from `KBox::into_raw`. Bit `i` of `used` is set while slot `i` is being attached, is
/// registered on exactly one task (by [`Self::attach`] or [`Self::attach_new`]), or is being detached
/// by that task; such a slot holds one module reference, so the module, which owns this table, is not
/// unloaded while a bit is set. `attached` counts the set bits (or is about to).
pub(crate) struct Notifiers<H: Handler> {
    ops: *mut bindings::preempt_ops,
    slots: KVec<Pin<KBox<PreemptNotifier<H>>>>,
    used: KVec<AtomicU64>,
    attached: AtomicUsize,
    limit: AtomicUsize,
    full: AtomicU64,
    module: &'static ThisModule,
    /// Whether this table turned the preempt-notifier static key on (see [`Self::enable`]).
    key_on: AtomicBool,
    /// How many times it did (two first attachers may both have): as many `preempt_notifier_dec` at
    /// unload.
    key_refs: AtomicUsize,
}

// SAFETY: `ops` is only read (by the scheduler, through the notifiers) after construction; the rest
// is atomics and slots whose handlers are `Send + Sync`.
unsafe impl<H: Handler> Send for Notifiers<H> {}
// SAFETY: As for `Send`.
unsafe impl<H: Handler> Sync for Notifiers<H> {}

impl<H: Handler> Notifiers<H> {
    /// A table of `len` slots whose handlers `make` builds now, `limit` of them usable at once.
    /// Preempt notifiers stay off (the kernel's context switches skip them) until [`Self::enable`].
    pub(crate) fn new(
        module: &'static ThisModule,
        len: usize,
        limit: usize,
        mut make: impl FnMut() -> H,
    ) -> Result<Self> {
        let ops = KBox::new(
            bindings::preempt_ops {
                sched_in: Some(sched_in::<H>),
                sched_out: Some(sched_out::<H>),
            },
            GFP_KERNEL,
        )?;
        let ops = KBox::into_raw(ops);
        let mut this = Self {
            // INVARIANT: from `KBox::into_raw`; no bit set yet.
            ops,
            slots: KVec::new(),
            used: KVec::new(),
            attached: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit.min(len)),
            full: AtomicU64::new(0),
            module,
            key_on: AtomicBool::new(false),
            key_refs: AtomicUsize::new(0),
        };
        this.slots.reserve(len, GFP_KERNEL)?;
        for index in 0..len {
            let slot = KBox::pin_init(PreemptNotifier::new(index, make(), ops), GFP_KERNEL)?;
            this.slots.push(slot, GFP_KERNEL)?;
        }
        for _ in 0..len.div_ceil(64) {
            this.used.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        Ok(this)
    }

    /// Slots in the table.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Slots that may be in use at once.
    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Relaxed)
    }

    /// Lets `limit` slots (1 to [`Self::len`]) be in use at once; tasks attached beyond a lower limit
    /// stay attached.
    pub(crate) fn set_limit(&self, limit: usize) -> Result {
        if !(1..=self.len()).contains(&limit) {
            return Err(EINVAL);
        }
        self.limit.store(limit, Relaxed);
        Ok(())
    }

    /// Attaches refused because `limit` slots were in use.
    pub(crate) fn full(&self) -> u64 {
        self.full.load(Relaxed)
    }

    /// This table's notifier on the calling task, if it has one.
    fn find(&self, me: &Current<'_>) -> Option<&PreemptNotifier<H>> {
        // SAFETY: The calling task's list changes only in its own context (`Current`), so it can be
        // walked here.
        let n = unsafe { bindings::rrp_preempt_notifier_find(me.as_raw(), self.ops) };
        // SAFETY: A notifier with our `ops` is the first field of one of our slots (type invariants),
        // which live as long as `self`.
        (!n.is_null()).then(|| unsafe { &*n.cast::<PreemptNotifier<H>>() })
    }

    /// The handler of this table's notifier on a task being woken, if it carries one and is off its CPU
    /// (no walk at all while no task is attached). A task still on its CPU may be changing its list
    /// (`Woken`); its next switch out forgets the wakeup anyway.
    pub(crate) fn find_woken(&self, woken: &Woken<'_>) -> Option<&H> {
        if self.attached.load(Relaxed) == 0 || !woken.is_off_cpu() {
            return None;
        }
        // SAFETY: A task being woken off its CPU cannot change its own list until the wakeup is over
        // (`Woken`), and nobody else changes it.
        let n = unsafe { bindings::rrp_preempt_notifier_find(woken.as_raw(), self.ops) };
        // SAFETY: A notifier with our `ops` is the first field of one of our slots (type invariants),
        // which live as long as `self`.
        (!n.is_null()).then(|| unsafe { &(*n.cast::<PreemptNotifier<H>>()).handler })
    }

    /// The handler of this table's notifier on the calling task, if it carries one.
    pub(crate) fn handler_of(&self, me: &Current<'_>) -> Option<&H> {
        self.find(me).map(|n| &n.handler)
    }

    /// Claims a free slot within `limit` and a module reference for it; `ENOSPC` (counted) when `limit`
    /// slots are in use.
    fn claim(&self) -> Result<&PreemptNotifier<H>> {
        if self.attached.fetch_add(1, Relaxed) >= self.limit() {
            self.attached.fetch_sub(1, Relaxed);
            self.full.fetch_add(1, Relaxed);
            return Err(ENOSPC);
        }
        let Some(module) = ModuleRef::try_get(self.module) else {
            self.attached.fetch_sub(1, Relaxed);
            return Err(ENODEV);
        };
        for (w, word) in self.used.iter().enumerate() {
            let mut bits = word.load(Relaxed);
            while bits != u64::MAX {
                let bit = (!bits).trailing_zeros() as usize;
                let index = w * 64 + bit;
                if index >= self.slots.len() {
                    break;
                }
                match word.compare_exchange(bits, bits | 1 << bit, Acquire, Relaxed) {
                    Ok(_) => {
                        // INVARIANT: the slot's bit is set and it holds this module reference.
                        module.hold();
                        return self.slots.get(index).map(|s| &**s).ok_or(EINVAL);
                    }
                    Err(now) => bits = now,
                }
            }
        }
        // `attached` < `limit` <= slots, so a bit was free: not reached.
        self.attached.fetch_sub(1, Relaxed);
        Err(ENOSPC)
    }

    /// Frees slot `index` and its module reference.
    ///
    /// # Safety
    ///
    /// The slot is claimed and registered on no task.
    unsafe fn release(&self, index: usize) {
        if let Some(word) = self.used.get(index / 64) {
            word.fetch_and(!(1 << (index % 64)), Release);
        }
        self.attached.fetch_sub(1, Relaxed);
        // SAFETY: The slot held one module reference (type invariant), given back once.
        unsafe { ModuleRef::put_held(self.module) };
    }

    /// Turns preempt notifiers on (`preempt_notifier_inc`, a static key) unless this table did already;
    /// they stay on until the table is dropped. Until the first attach the kernel's context switches
    /// skip the notifier lists altogether (`fire_sched_{in,out}_preempt_notifiers()` in
    /// kernel/sched/core.c test the key first), so loading the module costs a switch nothing here.
    ///
    /// May sleep (`static_key_slow_inc()` takes `cpus_read_lock()`): call it from process context
    /// before [`Self::attach`], and before queueing works that attach. [`Self::attach_new`] needs no
    /// call: it attaches only the children of attached tasks, so the key is on.
    pub(crate) fn enable(&self) {
        if self.key_on.load(Acquire) {
            return;
        }
        // SAFETY: Process context (the caller's contract above); balanced in `drop`.
        unsafe { bindings::preempt_notifier_inc() };
        self.key_refs.fetch_add(1, Relaxed);
        // Release: who sees it on sees the key enabled (the increment returned once it was patched in).
        self.key_on.store(true, Release);
    }

    /// Registers a notifier on the calling task, first calling `start` with its handler and the CPU the
    /// task runs on, with preemption off until the notifier is registered (so the task cannot move to
    /// another CPU, or spend time off it, between the two); `Ok(false)` if it carries one of this table
    /// already. No allocation, no lock; `start` must not sleep.
    ///
    /// Preempt notifiers must be on ([`Self::enable`]): a notifier registered while they are off
    /// would be silent. Refused with `EINVAL` otherwise.
    pub(crate) fn attach(&self, me: &Current<'_>, start: impl FnOnce(&H, usize)) -> Result<bool> {
        if !self.key_on.load(Acquire) {
            return Err(EINVAL);
        }
        if self.find(me).is_some() {
            return Ok(false);
        }
        let slot = self.claim()?;
        slot.owner.store(me.as_raw(), Relaxed);
        cpu::pinned(|cpu| {
            start(&slot.handler, cpu);
            // SAFETY: The slot is claimed (so not registered) and pinned; `Current` is the calling task
            // in a context where it may change its own list, with preemption off as
            // `preempt_notifier_register()` wants; it stays claimed until this task unregistered it in
            // `detach` (type invariant).
            unsafe { bindings::rrp_preempt_notifier_register_current(slot.n.get()) };
        });
        Ok(true)
    }

    /// Registers a notifier on `child`, which has not run yet, first calling `start` with its handler.
    /// No allocation, no lock.
    pub(crate) fn attach_new(&self, child: &NewTask<'_>, start: impl FnOnce(&H)) -> Result {
        let slot = self.claim()?;
        slot.owner.store(child.as_raw(), Relaxed);
        start(&slot.handler);
        // SAFETY: The slot is claimed and pinned; nothing walks `child`'s list before it first runs
        // (`NewTask`); `child` unregisters it in `detach` (type invariant).
        unsafe { bindings::rrp_preempt_notifier_register_new(slot.n.get(), child.as_raw()) };
        Ok(())
    }

    /// Unregisters the calling task's notifier of this table, calls `stop` with its handler and frees
    /// the slot; `ENOENT` if it has none. No allocation, no lock.
    pub(crate) fn detach(&self, me: &Current<'_>, stop: impl FnOnce(&H)) -> Result {
        let slot = self.find(me).ok_or(ENOENT)?;
        // SAFETY: It is registered on the calling task, which may change its own list here (`Current`).
        unsafe { bindings::rrp_preempt_notifier_unregister_current(slot.n.get()) };
        stop(&slot.handler);
        // SAFETY: Claimed (it was registered) and now on no list.
        unsafe { self.release(slot.index) };
        Ok(())
    }

    /// Calls `f` with the handler of every slot in use (a slot being attached or detached may be seen
    /// half set up: handlers keep their state in atomics).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&H) -> Result) -> Result {
        for (index, slot) in self.slots.iter().enumerate() {
            let in_use = self
                .used
                .get(index / 64)
                .is_some_and(|w| w.load(Acquire) & (1 << (index % 64)) != 0);
            if in_use {
                f(&slot.handler)?;
            }
        }
        Ok(())
    }
}

impl<H: Handler> Drop for Notifiers<H> {
    fn drop(&mut self) {
        // Cannot happen (type invariant: a slot in use holds a module reference). Should it, a notifier
        // still on a task's list must not be freed: leak the table, with the `ops` it points to.
        let left = self.attached.load(Relaxed);
        if left > 0 {
            pr_err!(
                "{} preempt notifiers still registered at unload; leaked\n",
                left
            );
            core::mem::forget(core::mem::take(&mut self.slots));
        } else {
            // SAFETY: `ops` came from `KBox::into_raw` and no notifier is registered (invariant).
            drop(unsafe { KBox::from_raw(self.ops) });
        }
        for _ in 0..self.key_refs.load(Relaxed) {
            // SAFETY: Balances a `preempt_notifier_inc` of `enable`; process context (unload).
            unsafe { bindings::preempt_notifier_dec() };
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
    // SAFETY: The scheduler calls a notifier only from the list of `current`, the task switched in
    // (`fire_sched_in_preempt_notifiers(current)` in finish_task_switch(), walking `curr`'s list:
    // kernel/sched/core.c, 6.12 lines 5247 and 4916-4921, 7.3 lines 5400 and 5042-5047), and a
    // notifier is on its owner's list only, from the registration that follows the owner's store
    // (`attach`, `attach_new`) to its unregistration, so the owner is `current`, live during this
    // call. (A reading on this CPU of a store made before the registration: the list that led here
    // was written after it, and reached this CPU through the scheduler's locks.)
    let me = unsafe { task::from_raw(this.owner.load(Relaxed)) };
    this.handler.sched_in(cpu as usize, me);
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
    // SAFETY: As in `sched_in`: the scheduler walks the list of the task switched out, still
    // `current` (`fire_sched_out_preempt_notifiers(prev, next)` in prepare_task_switch(): 6.12 lines
    // 5163 and 4931-4937, 7.3 lines 5316 and 5057-5063), and that is the owner.
    let prev = unsafe { task::from_raw(this.owner.load(Relaxed)) };
    this.handler.sched_out(prev, next);
}
