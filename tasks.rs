// SPDX-License-Identifier: GPL-2.0

//! Attached tasks: a preempt notifier on every task that asked for one and on the tasks it creates
//! afterwards, its per-task counts, and the scheduler hooks that attach children, detach exiting
//! tasks and count every context switch.
//!
//! Every attachment holds a reference on the module, so the module cannot be unloaded while a task is
//! attached (`rmmod` reports it in use); a task is detached by itself (`detach`) or when it exits.

use crate::counters::{Counters, Local};
use crate::notifier::{self, PreemptNotifier, Task, TaskRef};
use crate::tracepoint::TracepointProbe;
use crate::{bindings, cpu};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use kernel::c_str;
use kernel::ffi::c_void;
use kernel::new_spinlock;
use kernel::prelude::*;
use kernel::sync::{Arc, SpinLock};

/// Adds one to a counter that only one context ever writes (the task's own context switches).
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

const NO_CPU: u32 = u32::MAX;

/// What an attached task's notifier counts.
pub(crate) struct Tracker {
    task: TaskRef,
    counters: Arc<Counters>,
    ins: AtomicU64,
    outs: AtomicU64,
    preempted: AtomicU64,
    voluntary: AtomicU64,
    migrations: AtomicU64,
    last_cpu: AtomicU32,
}

impl Tracker {
    /// Counts for `task`; `running_on` is its CPU if it is running now (the calling task attaching
    /// itself counts as switched in there), `None` for a new task that has not run yet.
    fn new(task: &Task<'_>, counters: Arc<Counters>, running_on: Option<usize>) -> Self {
        Self {
            task: TaskRef::new(task),
            counters,
            ins: AtomicU64::new(u64::from(running_on.is_some())),
            outs: AtomicU64::new(0),
            preempted: AtomicU64::new(0),
            voluntary: AtomicU64::new(0),
            migrations: AtomicU64::new(0),
            last_cpu: AtomicU32::new(running_on.map_or(NO_CPU, |c| c as u32)),
        }
    }
}

impl notifier::Handler for Tracker {
    fn sched_in(&self, cpu: usize) {
        bump(&self.ins);
        self.counters.local(Local::SchedIn);
        let last = self.last_cpu.swap(cpu as u32, Relaxed);
        if last != NO_CPU && last as usize != cpu {
            bump(&self.migrations);
            self.counters.local(Local::Migrated);
        }
    }

    fn sched_out(&self, prev: &Task<'_>) {
        bump(&self.outs);
        self.counters.local(Local::SchedOut);
        if prev.is_running() {
            bump(&self.preempted);
            self.counters.local(Local::Preempted);
        } else {
            bump(&self.voluntary);
            self.counters.local(Local::Voluntary);
        }
    }
}

type Attachment = PreemptNotifier<Tracker>;

/// One line of the `tasks` file.
pub(crate) struct TaskRow {
    pub(crate) pid: i32,
    pub(crate) comm: [u8; 16],
    pub(crate) ins: u64,
    pub(crate) outs: u64,
    pub(crate) preempted: u64,
    pub(crate) voluntary: u64,
    pub(crate) migrations: u64,
    pub(crate) last_cpu: Option<u32>,
}

/// The attached tasks.
///
/// # Invariants
///
/// Every occupied slot of `attached` is registered on exactly one task (its tracker's), holds one
/// reference on `module`, and is emptied only when that task unregisters it. Empty slots are reused.
#[pin_data]
pub(crate) struct Tasks {
    #[pin]
    attached: SpinLock<KVec<Option<Pin<KBox<Attachment>>>>>,
    counters: Arc<Counters>,
    module: &'static ThisModule,
    /// New tasks of attached parents that could not be attached (out of memory).
    failed: AtomicU64,
}

impl Tasks {
    /// No task attached yet.
    pub(crate) fn new(counters: Arc<Counters>, module: &'static ThisModule) -> impl PinInit<Self> {
        pin_init!(Self {
            attached <- new_spinlock!(KVec::new(), "resched_tasks"),
            counters,
            module,
            failed: AtomicU64::new(0),
        })
    }

    /// The calling task's attachment, if it has one.
    fn current_attachment() -> Option<Pin<&'static Attachment>> {
        // SAFETY: Notifiers with `Tracker` ops are only ever `Attachment`s in `attached`, which stay
        // alive until their own task unregisters them; the calling task cannot do that while it runs
        // this, so the borrow lasts as long as the caller uses it (it never stores it).
        unsafe { Attachment::find_current() }
    }

    /// Adds `attachment` to the list and takes a module reference for it; on failure, gives it back.
    fn insert(
        &self,
        attachment: Pin<KBox<Attachment>>,
        get_ref: impl FnOnce() -> bool,
    ) -> Result<*const Attachment> {
        if !get_ref() {
            return Err(ENODEV);
        }
        let ptr: *const Attachment = &*attachment;
        let mut list = self.attached.lock();
        if let Some(slot) = list.iter_mut().find(|slot| slot.is_none()) {
            *slot = Some(attachment);
        } else if let Err(e) = list.push(Some(attachment), GFP_ATOMIC) {
            drop(list);
            self.put_module();
            return Err(e.into());
        }
        Ok(ptr)
    }

    /// Removes `ptr` from the list (it must be unregistered already) and drops its module reference.
    fn remove(&self, ptr: *const Attachment) {
        let removed = self
            .attached
            .lock()
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|a| core::ptr::eq(&**a, ptr)))
            .and_then(Option::take);
        if removed.is_some() {
            // Freed here, outside the lock.
            drop(removed);
            self.put_module();
        }
    }

    fn put_module(&self) {
        // SAFETY: Balances the reference taken when the attachment was inserted.
        unsafe { bindings::module_put(self.module.as_ptr().cast()) };
    }

    /// `attach` written by the calling task: registers a notifier on it. Attaching twice is a no-op.
    pub(crate) fn attach_current(&self) -> Result {
        if Self::current_attachment().is_some() {
            return Ok(());
        }
        let me = Task::current();
        let tracker = Tracker::new(&me, self.counters.clone(), Some(cpu::this_cpu()));
        let attachment = KBox::pin_init(PreemptNotifier::new(tracker), GFP_KERNEL)?;
        // SAFETY: `try_module_get` may be called at any time on a live module.
        let get_ref = || unsafe { bindings::try_module_get(self.module.as_ptr().cast()) };
        let ptr = self.insert(attachment, get_ref)?;
        // SAFETY: `ptr` is in `attached`, pinned and not registered; `Enabled` is in effect while `Tasks`
        // exists; this task unregisters it in `detach_current` or `on_exit` (type invariant).
        unsafe { Pin::new_unchecked(&*ptr).register_current() };
        Ok(())
    }

    /// `detach` written by the calling task: unregisters and frees its notifier.
    pub(crate) fn detach_current(&self) -> Result {
        let attachment = Self::current_attachment().ok_or(ENOENT)?;
        // SAFETY: It is registered on the calling task, and this is not a notifier callback.
        unsafe { attachment.unregister_current() };
        self.remove(&*attachment);
        Ok(())
    }

    /// `sched_process_fork`: attaches `child` when the calling task (its parent) is attached.
    fn on_fork(&self, child: &Task<'_>) {
        if Self::current_attachment().is_none() {
            return;
        }
        let tracker = Tracker::new(child, self.counters.clone(), None);
        let Ok(attachment) = KBox::pin_init(PreemptNotifier::new(tracker), GFP_ATOMIC) else {
            bump(&self.failed);
            return;
        };
        // The parent's attachment holds a module reference, so the module is live: take another.
        let get_ref = || {
            // SAFETY: The module is live (see above).
            unsafe { bindings::__module_get(self.module.as_ptr().cast()) };
            true
        };
        match self.insert(attachment, get_ref) {
            // SAFETY: `ptr` is in `attached`, pinned and not registered; `child` has not been woken
            // yet (the tracepoint fires before `wake_up_new_task`); it unregisters it in `on_exit`.
            Ok(ptr) => unsafe { Pin::new_unchecked(&*ptr).register_new(child) },
            Err(_) => bump(&self.failed),
        }
    }

    /// `sched_process_exit`: detaches the exiting (calling) task.
    fn on_exit(&self) {
        if let Some(attachment) = Self::current_attachment() {
            // SAFETY: Registered on the calling task; a tracepoint is not a notifier callback.
            unsafe { attachment.unregister_current() };
            self.remove(&*attachment);
        }
    }

    /// The attached tasks' counts.
    pub(crate) fn rows(&self) -> Result<KVec<TaskRow>> {
        let list = self.attached.lock();
        let mut rows = KVec::with_capacity(list.len(), GFP_ATOMIC)?;
        for a in list.iter().flatten() {
            let t = a.handler();
            let task = t.task.task();
            let last = t.last_cpu.load(Relaxed);
            rows.push(
                TaskRow {
                    pid: task.pid(),
                    comm: task.comm(),
                    ins: t.ins.load(Relaxed),
                    outs: t.outs.load(Relaxed),
                    preempted: t.preempted.load(Relaxed),
                    voluntary: t.voluntary.load(Relaxed),
                    migrations: t.migrations.load(Relaxed),
                    last_cpu: (last != NO_CPU).then_some(last),
                },
                GFP_ATOMIC,
            )?;
        }
        Ok(rows)
    }

    /// New tasks of attached parents that could not be attached.
    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Relaxed)
    }
}

/// `sched_process_fork(parent, child)` probe; `parent` is the calling task.
///
/// # Safety
///
/// Registered by [`Hooks::new`] with `data` pointing to the live `Tasks`.
unsafe extern "C" fn fork_probe(
    data: *mut c_void,
    _parent: *mut bindings::task_struct,
    child: *mut bindings::task_struct,
) {
    // SAFETY: `data` is the `Tasks` that `Hooks` keeps alive while registered.
    let tasks = unsafe { &*data.cast::<Tasks>() };
    // SAFETY: The child is live for the tracepoint's duration (its creator holds it).
    tasks.on_fork(&unsafe { Task::from_raw(child) });
}

/// `sched_process_exit(p)` probe; `p` is the calling task.
///
/// # Safety
///
/// As for [`fork_probe`].
unsafe extern "C" fn exit_probe(data: *mut c_void, p: *mut bindings::task_struct) {
    // SAFETY: `data` is the `Tasks` that `Hooks` keeps alive while registered.
    let tasks = unsafe { &*data.cast::<Tasks>() };
    // SAFETY: `p` is the exiting task, live while it runs this.
    if unsafe { Task::from_raw(p) }.is_current() {
        tasks.on_exit();
    }
}

/// `sched_switch(preempt, prev, next, prev_state)` probe: counts every context switch.
///
/// # Safety
///
/// Registered by [`Hooks::new`] with `data` pointing to the live `Counters`.
unsafe extern "C" fn switch_probe(
    data: *mut c_void,
    preempt: bool,
    _prev: *mut bindings::task_struct,
    _next: *mut bindings::task_struct,
    _prev_state: u32,
) {
    // SAFETY: `data` is the `Counters` that `Hooks` keeps alive while registered.
    let counters = unsafe { &*data.cast::<Counters>() };
    counters.local(Local::Switches);
    if preempt {
        counters.local(Local::SwitchesPreempt);
    }
}

/// The scheduler hooks, in drop order: tracepoints first (no probe runs after), then what they use.
pub(crate) struct Hooks {
    _fork: TracepointProbe,
    _exit: TracepointProbe,
    _switch: TracepointProbe,
    tasks: Arc<Tasks>,
    _counters: Arc<Counters>,
    _enabled: notifier::Enabled,
}

impl Hooks {
    /// Turns preempt notifiers on and registers the fork, exit and switch probes.
    pub(crate) fn new(counters: Arc<Counters>, module: &'static ThisModule) -> Result<Self> {
        let enabled = notifier::Enabled::new();
        let tasks = Arc::pin_init(Tasks::new(counters.clone(), module), GFP_KERNEL)?;
        let tasks_ptr = (&*tasks as *const Tasks).cast_mut().cast::<c_void>();
        let counters_ptr = (&*counters as *const Counters).cast_mut().cast::<c_void>();
        // Each probe below has its tracepoint's prototype (include/trace/events/sched.h) after the data
        // pointer, and the data (`tasks`, `counters`) lives in `Self`, dropped after the probes.
        // SAFETY: `fork_probe` matches `sched_process_fork(parent, child)`; see above for the data.
        let fork = unsafe {
            TracepointProbe::register(
                c_str!("sched_process_fork"),
                fork_probe as *mut c_void,
                tasks_ptr,
            )
        }?;
        // SAFETY: `exit_probe` matches `sched_process_exit(p)`; see above for the data.
        let exit = unsafe {
            TracepointProbe::register(
                c_str!("sched_process_exit"),
                exit_probe as *mut c_void,
                tasks_ptr,
            )
        }?;
        // SAFETY: `switch_probe` matches `sched_switch(preempt, prev, next, prev_state)`; see above.
        let switch = unsafe {
            TracepointProbe::register(
                c_str!("sched_switch"),
                switch_probe as *mut c_void,
                counters_ptr,
            )
        }?;
        Ok(Self {
            _fork: fork,
            _exit: exit,
            _switch: switch,
            tasks,
            _counters: counters,
            _enabled: enabled,
        })
    }

    /// The attached tasks.
    pub(crate) fn tasks(&self) -> &Arc<Tasks> {
        &self.tasks
    }
}
