// SPDX-License-Identifier: GPL-2.0

//! Tasks: the `kernel` crate's [`Task`] plus what this module reads of one (its name, whether it is
//! runnable), and the two kinds of borrowed task whose preempt-notifier list may change.
//!
//! A task's notifier list is walked without a lock at its context switches, so only the task itself may
//! change it, outside the notifier callbacks ([`Current`]), or the task's creator before it first runs
//! ([`NewTask`]). Only the wrappers that know they run in such a context make these values.
//!
//! C header: [`include/linux/sched.h`](srctree/include/linux/sched.h)

use super::bindings;
use core::marker::PhantomData;
use core::sync::atomic::{
    AtomicI32, AtomicPtr, AtomicU32, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed},
};
pub(crate) use kernel::task::Task;

/// The length of a task's name (`TASK_COMM_LEN`).
pub(crate) const COMM_LEN: usize = 16;

/// The C task behind `task`.
pub(super) fn raw(task: &Task) -> *mut bindings::task_struct {
    // `Task` is a transparent wrapper of the C `struct task_struct`.
    core::ptr::from_ref(task).cast_mut().cast()
}

/// Borrows the task at `ptr`.
///
/// # Safety
///
/// `ptr` must point to a live task for the lifetime `'a`.
pub(super) unsafe fn from_raw<'a>(ptr: *mut bindings::task_struct) -> &'a Task {
    // SAFETY: `Task` is a transparent wrapper of `struct task_struct`; the caller vouches for `'a`.
    unsafe { &*ptr.cast::<Task>() }
}

/// The calling task.
///
/// # Safety
///
/// The returned borrow must not outlive the caller's own call (the task cannot end while it runs).
pub(super) unsafe fn current<'a>() -> &'a Task {
    // SAFETY: `current` is always a live task; the caller bounds the borrow to its own call.
    unsafe { from_raw(bindings::rrp_current()) }
}

/// Where the fields that the scheduler hooks read lie in `struct task_struct`, and the bits they test,
/// asked of C once at load ([`init_offsets`]), so that a hook reads a field with one load and no call.
/// Until then every offset is 0 (a read gives the task's first word: inside the task, meaningless) and
/// no flag is lazy.
struct Offsets {
    state: AtomicUsize,
    flags: AtomicUsize,
    pid: AtomicUsize,
    comm: AtomicUsize,
    ti_flags: AtomicUsize,
    pf_idle: AtomicU32,
    pf_kthread: AtomicU32,
    tif_lazy: AtomicI32,
}

static OFFSETS: Offsets = Offsets {
    state: AtomicUsize::new(0),
    flags: AtomicUsize::new(0),
    pid: AtomicUsize::new(0),
    comm: AtomicUsize::new(0),
    ti_flags: AtomicUsize::new(0),
    pf_idle: AtomicU32::new(0),
    pf_kthread: AtomicU32::new(0),
    tif_lazy: AtomicI32::new(-1),
};

/// Asks C where the fields [`TaskExt`] reads lie. Called at load, before any probe or hook is
/// registered (registering publishes the values to the handlers).
pub(crate) fn init_offsets() {
    let mut o = bindings::rrp_task_offsets::default();
    // SAFETY: `o` is a valid, writable `struct rrp_task_offsets`.
    unsafe { bindings::rrp_task_offsets(&mut o) };
    OFFSETS.state.store(o.state, Relaxed);
    OFFSETS.flags.store(o.flags, Relaxed);
    OFFSETS.pid.store(o.pid, Relaxed);
    OFFSETS.comm.store(o.comm, Relaxed);
    OFFSETS.ti_flags.store(o.ti_flags, Relaxed);
    OFFSETS.pf_idle.store(o.pf_idle, Relaxed);
    OFFSETS.pf_kthread.store(o.pf_kthread, Relaxed);
    OFFSETS.tif_lazy.store(o.tif_lazy, Relaxed);
}

/// Whether flag bit `tif` (as `sched_set_need_resched_tp` reports it) is `TIF_NEED_RESCHED_LAZY`: a
/// lazy request (never without lazy preemption).
pub(crate) fn is_lazy_flag(tif: i32) -> bool {
    tif == OFFSETS.tif_lazy.load(Relaxed) && tif >= 0
}

/// The field of type `T` at `offset` in `task`, read once (it may change under the reader, as the
/// kernel's `READ_ONCE()` readers allow).
///
/// # Safety
///
/// `offset` must be that of a field of type `T` in `struct task_struct` (as C reports it: aligned), or
/// 0 with `T` no larger than 16 bytes (a task is far larger).
#[inline(always)]
unsafe fn field<T: Copy>(task: &Task, offset: usize) -> T {
    let at = raw(task).cast::<u8>().wrapping_add(offset).cast::<T>();
    // SAFETY: `task` is live while borrowed and `at` is an aligned field of type `T` inside it (the
    // caller's promise); a racing writer stores whole aligned words.
    unsafe { at.read_volatile() }
}

/// What this module reads of a task beyond the `kernel` crate's accessors.
pub(crate) trait TaskExt {
    /// Its thread id (`task->pid`). The `kernel` crate's `Task::pid()` reads 0 on this kernel (its
    /// bindgen layout of `task_struct` puts `pid` elsewhere), so this reads it in C.
    fn tid(&self) -> i32;
    /// Its process id (`task->tgid`: its thread group's).
    fn process_id(&self) -> i32;
    /// Its name (`comm`), NUL-padded, read under its `task_lock()`: not from the scheduler.
    fn comm(&self) -> [u8; COMM_LEN];
    /// Its name without the lock, for the scheduler's hooks (a task renaming itself meanwhile may give
    /// a mix of both names).
    fn comm_nolock(&self) -> [u8; COMM_LEN];
    /// Its name as two words, read at its offset without a lock or a call, for the scheduler's hooks
    /// (a task renaming itself meanwhile may give a mix of both names).
    fn comm_words(&self) -> [u64; 2];
    /// Whether it is `TASK_RUNNING` (at sched_out: preempted rather than blocking).
    fn is_running(&self) -> bool;
    /// Whether it is a CPU's idle task.
    fn is_idle(&self) -> bool;
    /// Whether it is a kernel thread and not a CPU's idle task (`PF_KTHREAD` without `PF_IDLE`).
    fn is_kthread(&self) -> bool;
    /// Whether a lazy reschedule request is pending on it (`TIF_NEED_RESCHED_LAZY`; never without lazy
    /// preemption).
    fn lazy_pending(&self) -> bool;
    /// Whether it is exiting (`PF_EXITING`: in `do_exit()`).
    fn is_exiting(&self) -> bool;
}

impl TaskExt for Task {
    fn tid(&self) -> i32 {
        // SAFETY: `OFFSETS.pid` is where the task's `pid_t pid` lies (or 0 before `init_offsets`).
        unsafe { field::<i32>(self, OFFSETS.pid.load(Relaxed)) }
    }

    fn process_id(&self) -> i32 {
        // SAFETY: `self` is a live task.
        unsafe { bindings::rrp_task_tgid(raw(self)) }
    }

    fn comm(&self) -> [u8; COMM_LEN] {
        let mut buf = [0u8; COMM_LEN];
        // SAFETY: `self` is a live task and `buf` has room for `buf.len()` bytes.
        unsafe { bindings::rrp_task_comm(raw(self), buf.as_mut_ptr(), buf.len()) };
        buf
    }

    fn comm_nolock(&self) -> [u8; COMM_LEN] {
        let mut buf = [0u8; COMM_LEN];
        // SAFETY: `self` is a live task and `buf` has room for `buf.len()` bytes; no lock is taken.
        unsafe { bindings::rrp_task_comm_nolock(raw(self), buf.as_mut_ptr(), buf.len()) };
        buf
    }

    fn comm_words(&self) -> [u64; 2] {
        // SAFETY: `OFFSETS.comm` is where the task's `char comm[TASK_COMM_LEN]` (16 bytes, checked in
        // C) lies, or 0 before `init_offsets`; `[u8; 16]` needs no alignment.
        let name = unsafe { field::<[u8; COMM_LEN]>(self, OFFSETS.comm.load(Relaxed)) };
        let mut words = [[0u8; 8]; 2];
        words[0].copy_from_slice(&name[..8]);
        words[1].copy_from_slice(&name[8..]);
        [u64::from_ne_bytes(words[0]), u64::from_ne_bytes(words[1])]
    }

    fn is_running(&self) -> bool {
        // SAFETY: `OFFSETS.state` is where the task's `unsigned int __state` lies (or 0 before
        // `init_offsets`). `TASK_RUNNING` is 0 (include/linux/sched.h), as `task_is_running()` tests.
        unsafe { field::<u32>(self, OFFSETS.state.load(Relaxed)) == 0 }
    }

    fn is_idle(&self) -> bool {
        // SAFETY: `OFFSETS.flags` is where the task's `unsigned int flags` lies (or 0 before
        // `init_offsets`); `is_idle_task()` tests `PF_IDLE` in it.
        unsafe {
            field::<u32>(self, OFFSETS.flags.load(Relaxed)) & OFFSETS.pf_idle.load(Relaxed) != 0
        }
    }

    fn is_kthread(&self) -> bool {
        // SAFETY: As in `is_idle`; `PF_KTHREAD` marks kernel threads (`kthread_create()`, and the idle
        // tasks, left out here).
        let flags = unsafe { field::<u32>(self, OFFSETS.flags.load(Relaxed)) };
        let kthread = OFFSETS.pf_kthread.load(Relaxed);
        kthread != 0 && flags & (kthread | OFFSETS.pf_idle.load(Relaxed)) == kthread
    }

    fn lazy_pending(&self) -> bool {
        let bit = OFFSETS.tif_lazy.load(Relaxed);
        if !(0..usize::BITS as i32).contains(&bit) {
            return false;
        }
        // SAFETY: With lazy preemption (`bit` set), `OFFSETS.ti_flags` is where the task's
        // `unsigned long thread_info.flags` lies; `test_tsk_thread_flag()` tests the bit in it.
        let flags = unsafe { field::<usize>(self, OFFSETS.ti_flags.load(Relaxed)) };
        flags & (1 << bit) != 0
    }

    fn is_exiting(&self) -> bool {
        // SAFETY: `self` is a live task.
        unsafe { bindings::rrp_task_is_exiting(raw(self)) }
    }
}

/// The calling task, in a context where it may change its own preempt-notifier list: process context
/// (a debugfs write) or one of its own tracepoints (fork, exit); never a notifier callback.
///
/// Borrowed for the call that received it; it cannot be sent to, or kept for, another task.
pub(crate) struct Current<'a> {
    task: &'a Task,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> Current<'a> {
    /// The calling task.
    ///
    /// # Safety
    ///
    /// `task` must be the calling task, and the caller must be in a context where it may change its
    /// own notifier list (see the type's documentation), for `'a`.
    pub(super) unsafe fn new(task: &'a Task) -> Self {
        Self {
            task,
            _not_send: PhantomData,
        }
    }

    /// The task.
    pub(crate) fn task(&self) -> &'a Task {
        self.task
    }

    /// The C task.
    pub(super) fn as_raw(&self) -> *mut bindings::task_struct {
        raw(self.task)
    }
}

/// A task just created by fork that has not been woken yet: nothing walks its notifier list.
pub(crate) struct NewTask<'a> {
    task: &'a Task,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> NewTask<'a> {
    /// The new task.
    ///
    /// # Safety
    ///
    /// `task` must not have been woken yet, and stay so for `'a`.
    pub(super) unsafe fn new(task: &'a Task) -> Self {
        Self {
            task,
            _not_send: PhantomData,
        }
    }

    /// The task.
    pub(crate) fn task(&self) -> &'a Task {
        self.task
    }

    /// The C task.
    pub(super) fn as_raw(&self) -> *mut bindings::task_struct {
        raw(self.task)
    }
}

/// A task being woken (`sched_wakeup`): its state matched a sleeping state, and the waker holds its
/// runqueue lock unless it is the calling task.
///
/// Its notifier list may be walked only while it is off its CPU ([`Self::is_off_cpu`]): then it cannot
/// start running (it is switched in only under that lock) and so cannot change its own list
/// ([`Current`]) until the wakeup is over, and nobody else changes it. A task still on its CPU may be
/// between `set_current_state()` and `schedule()`: `ttwu_runnable()` wakes it where it runs, after which
/// it runs on and may change its own list while the waker walks it (KVM's `vcpu_put()` unlinks its
/// notifier, and `hlist_del()` poisons the link).
pub(crate) struct Woken<'a> {
    task: &'a Task,
    _not_send: PhantomData<*mut ()>,
}

impl<'a> Woken<'a> {
    /// The task being woken.
    ///
    /// # Safety
    ///
    /// `task` must be a task that `try_to_wake_up()` is waking (its state matched a sleeping state), for
    /// `'a`, and the caller must hold its runqueue lock unless it is the calling task: `p->on_cpu` only
    /// changes under that lock (`prepare_task()` and `finish_task()` in kernel/sched/core.c run within
    /// `__schedule()`'s hold of it).
    pub(super) unsafe fn new(task: &'a Task) -> Self {
        Self {
            task,
            _not_send: PhantomData,
        }
    }

    /// Whether the task is off its CPU (`p->on_cpu` is 0), which stays so until the wakeup is over.
    pub(super) fn is_off_cpu(&self) -> bool {
        // SAFETY: `task` is live; the read is a `READ_ONCE()`.
        !unsafe { bindings::rrp_task_on_cpu(raw(self.task)) }
    }

    /// The C task.
    pub(super) fn as_raw(&self) -> *mut bindings::task_struct {
        raw(self.task)
    }
}

/// A task that a slot of a preallocated table refers to while it is in use: a counted reference
/// (`get_task_struct`) set and cleared through `&self`, read under RCU.
///
/// # Invariants
///
/// `ptr` is null or a task on which this value holds one reference.
pub(crate) struct TaskSlot {
    ptr: AtomicPtr<bindings::task_struct>,
}

// SAFETY: References may be taken and dropped on any thread; the pointer is atomic.
unsafe impl Send for TaskSlot {}
// SAFETY: As for `Send`.
unsafe impl Sync for TaskSlot {}

impl TaskSlot {
    /// An empty slot.
    pub(crate) fn new() -> Self {
        Self {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Refers to the calling task (taking a reference); the slot must be empty.
    pub(crate) fn set_current(&self, me: &Current<'_>) {
        self.set(me.task());
    }

    /// Refers to a new task (taking a reference); the slot must be empty.
    pub(crate) fn set_new(&self, child: &NewTask<'_>) {
        self.set(child.task());
    }

    fn set(&self, task: &Task) {
        // SAFETY: `task` is live.
        unsafe { bindings::rrp_get_task_struct(raw(task)) };
        // INVARIANT: the reference just taken is now the slot's. An earlier one (a misuse: the slot
        // was not empty) is leaked rather than dropped here, which might not be sound (see `with`).
        let _ = self.ptr.swap(raw(task), AcqRel);
    }

    /// Drops the slot's reference if it is to the calling task, which runs (so holds its own).
    pub(crate) fn clear_current(&self, me: &Current<'_>) {
        if self
            .ptr
            .compare_exchange(me.as_raw(), core::ptr::null_mut(), AcqRel, Acquire)
            .is_ok()
        {
            // SAFETY: The slot held one reference on the calling task (invariant), swapped out.
            unsafe { bindings::rrp_put_task_struct(me.as_raw()) };
        }
    }

    /// Calls `f` with the task, if any, under RCU.
    ///
    /// Sound against a concurrent [`Self::clear_current`]: only the task itself clears its slot
    /// (while it runs, so it holds its own reference), and a task's last reference goes after an RCU
    /// grace period that starts after it stopped running (`delayed_put_task_struct`).
    pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&Task>) -> R) -> R {
        super::rcu::read_lock(|| {
            let ptr = self.ptr.load(Acquire);
            if ptr.is_null() {
                f(None)
            } else {
                // SAFETY: See above: `ptr` stays valid until the RCU read section ends.
                f(Some(unsafe { from_raw(ptr) }))
            }
        })
    }
}

impl Drop for TaskSlot {
    fn drop(&mut self) {
        // Only the task may drop the reference (see `with`); a slot still in use when its table goes
        // (it cannot: each attachment holds the module) keeps it: a leak, not a use-after-free.
    }
}
