// SPDX-License-Identifier: GPL-2.0

//! Work a task runs in its own context: a safe wrapper over `task_work_add()` (`TWA_SIGNAL`) and the
//! walk over a process's threads.
//!
//! A preempt notifier may only be registered by its own task, so attaching a running process by pid
//! queues a work on each of its threads, which then attaches itself ([`Current`]). Each pending work
//! holds a module reference (the C side drops it last, by a tail call into `module_put()`).
//!
//! C header: [`include/linux/task_work.h`](srctree/include/linux/task_work.h)

use super::bindings;
use super::task::{self, Current, Task, TaskExt};
use kernel::ffi::c_void;
use kernel::prelude::*;

/// What a thread runs in its own context.
pub(crate) trait TaskWork: Send + 'static {
    /// Runs in the task `me`, when it next runs after [`queue`]; not if it is exiting by then.
    fn run(self, me: &Current<'_>);
}

/// A queued work: the C part first, so that a pointer to it is a pointer to the whole.
#[repr(C)]
struct Work<W: TaskWork> {
    raw: bindings::rrp_work,
    work: Option<W>,
}

/// Queues `work` on `task`. `EPERM` for a kernel thread (it never returns to user space), `ESRCH` for
/// a task that is exiting, `ENODEV` while the module is going away. May be called under RCU (it does
/// not sleep: the allocation is atomic).
pub(crate) fn queue<W: TaskWork>(task: &Task, work: W) -> Result {
    let boxed = KBox::new(
        Work {
            raw: bindings::rrp_work {
                head: Default::default(),
                run: Some(run::<W>),
            },
            work: Some(work),
        },
        GFP_ATOMIC,
    )?;
    let ptr = KBox::into_raw(boxed);
    // `raw` is the first field of the `#[repr(C)]` struct.
    let raw = ptr.cast::<bindings::rrp_work>();
    // SAFETY: `task` is a live task; `raw` points into the allocation just leaked, which stays valid
    // until `run` takes it back (only after a successful add).
    let rc = unsafe { bindings::rrp_task_work_add(task::raw(task), raw) };
    if rc != 0 {
        // SAFETY: Not queued: the allocation is still ours.
        drop(unsafe { KBox::from_raw(ptr) });
        return Err(Error::from_errno(rc));
    }
    Ok(())
}

/// The work's trampoline, called by the C side in the task's own context.
///
/// # Safety
///
/// `w` is the `raw` field of a `Work<W>` leaked by [`queue`], passed once.
unsafe extern "C" fn run<W: TaskWork>(w: *mut bindings::rrp_work) {
    // SAFETY: `raw` is the first field of the `#[repr(C)]` `Work<W>` that `queue` leaked.
    let mut boxed = unsafe { KBox::from_raw(w.cast::<Work<W>>()) };
    // SAFETY: Task work runs in process context in its own task, outside any notifier callback, so it
    // may change its own notifier list; the borrow ends with this call.
    let me = unsafe { Current::new(task::current()) };
    // At exit (`exit_task_work()`) the task has passed its exit tracepoint, which detaches it: a work
    // must not attach it then, so none runs.
    if let Some(work) = boxed.work.take().filter(|_| !me.task().is_exiting()) {
        work.run(&me);
    }
}

/// Calls `f` for every thread of the process `pid` (a thread-group id), under RCU: `f` must not
/// sleep. `ESRCH` when there is no such process.
pub(crate) fn for_each_thread<F: FnMut(&Task)>(pid: i32, mut f: F) -> Result {
    /// # Safety
    ///
    /// `data` is a live `F` not otherwise borrowed; `t` a live thread for the call.
    unsafe extern "C" fn each<F: FnMut(&Task)>(t: *mut bindings::task_struct, data: *mut c_void) {
        // SAFETY: The caller's promise: `data` is the `F` passed below, `t` a live thread (RCU).
        let (f, t) = unsafe { (&mut *data.cast::<F>(), task::from_raw(t)) };
        f(t);
    }
    // SAFETY: `each::<F>` takes the `F` that `data` points to, which outlives the call; the C walk
    // passes live threads under RCU.
    let rc = unsafe {
        bindings::rrp_for_each_thread(
            pid,
            Some(each::<F>),
            core::ptr::from_mut(&mut f).cast::<c_void>(),
        )
    };
    kernel::error::to_result(rc)
}
