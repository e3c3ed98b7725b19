// SPDX-License-Identifier: GPL-2.0

//! Typed probes on kernel tracepoints: a safe wrapper over `for_each_kernel_tracepoint` and
//! `tracepoint_probe_register`.
//!
//! Each tracepoint this module uses has a handler trait with its arguments as safe types, and a
//! constructor of [`TracepointProbe`] that registers the matching trampoline; the probe owns its
//! handler and unregisters before dropping it.
//!
//! C header: [`include/linux/tracepoint.h`](srctree/include/linux/tracepoint.h), prototypes in
//! [`include/trace/events/sched.h`](srctree/include/trace/events/sched.h)

use super::bindings;
use super::task::{self, Current, NewTask, Task};
use kernel::c_str;
use kernel::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::Arc;

/// `sched_switch(preempt, prev, next, prev_state)`: every context switch, on its CPU.
pub(crate) trait SchedSwitch: Send + Sync {
    /// `prev` is switched out for `next`; `preempt` when `prev` was preempted.
    fn sched_switch(&self, preempt: bool, prev: &Task, next: &Task);
}

/// `sched_process_fork(parent, child)`: in the parent, before the child first runs.
pub(crate) trait SchedProcessFork: Send + Sync {
    /// `parent` (the calling task) created `child`.
    fn sched_process_fork(&self, parent: &Current<'_>, child: &NewTask<'_>);
}

/// `sched_process_exit(p)`: in the exiting task.
pub(crate) trait SchedProcessExit: Send + Sync {
    /// The calling task exits.
    fn sched_process_exit(&self, task: &Current<'_>);
}

/// A probe on a kernel tracepoint, calling a handler `H` it owns.
///
/// # Invariants
///
/// `probe` is registered on `tp` with a pointer to `*handler` as its data from construction until
/// `drop`; `probe` is the trampoline of the tracepoint for `H`.
pub(crate) struct TracepointProbe<H: Send + Sync> {
    tp: *mut bindings::tracepoint,
    probe: *mut c_void,
    handler: Arc<H>,
}

// SAFETY: Unregistering may happen from any thread; `H` is `Send + Sync`.
unsafe impl<H: Send + Sync> Send for TracepointProbe<H> {}
// SAFETY: `&self` offers no access to the C side; `H: Sync`.
unsafe impl<H: Send + Sync> Sync for TracepointProbe<H> {}

struct Search<'a> {
    name: &'a CStr,
    found: *mut bindings::tracepoint,
}

/// `for_each_kernel_tracepoint` callback: remembers the tracepoint called `name`.
///
/// # Safety
///
/// `tp` is a kernel tracepoint and `priv_` the `Search` passed by [`find`].
unsafe extern "C" fn match_name(tp: *mut bindings::tracepoint, priv_: *mut c_void) {
    // SAFETY: `priv_` is the `Search` that `find` passed, alive for the iteration.
    let search = unsafe { &mut *priv_.cast::<Search<'_>>() };
    // SAFETY: A tracepoint's name is a NUL-terminated string in kernel data.
    let name = unsafe { CStr::from_char_ptr(bindings::rrp_tracepoint_name(tp)) };
    if name.as_bytes() == search.name.as_bytes() {
        search.found = tp;
    }
}

/// The kernel's (not a module's) tracepoint called `name`.
fn find(name: &CStr) -> Result<*mut bindings::tracepoint> {
    let mut search = Search {
        name,
        found: core::ptr::null_mut(),
    };
    // SAFETY: `match_name` has the callback's prototype and `search` outlives the call.
    unsafe {
        bindings::for_each_kernel_tracepoint(
            Some(match_name),
            (&mut search as *mut Search<'_>).cast(),
        )
    };
    if search.found.is_null() {
        Err(ENOENT)
    } else {
        Ok(search.found)
    }
}

impl<H: Send + Sync> TracepointProbe<H> {
    /// Registers `probe` on the tracepoint called `name`, with `handler` as its data.
    ///
    /// # Safety
    ///
    /// `probe` must be an `extern "C"` function taking a `*const H` and then the tracepoint's
    /// arguments (`TP_PROTO`), safe to call in the tracepoint's context.
    unsafe fn register(name: &CStr, probe: *mut c_void, handler: Arc<H>) -> Result<Self> {
        let tp = find(name)?;
        let data = (&*handler as *const H).cast_mut().cast::<c_void>();
        // SAFETY: `tp` is a kernel tracepoint; the caller vouches for `probe`; `data` stays valid
        // until `drop` unregistered the probe (it is owned by `handler`).
        kernel::error::to_result(unsafe { bindings::tracepoint_probe_register(tp, probe, data) })?;
        // INVARIANT: registered just above.
        Ok(Self { tp, probe, handler })
    }
}

impl<H: SchedSwitch> TracepointProbe<H> {
    /// Calls `handler` at every `sched_switch`.
    pub(crate) fn sched_switch(handler: Arc<H>) -> Result<Self> {
        // SAFETY: `switch_probe` has `sched_switch`'s prototype after the data pointer.
        unsafe {
            Self::register(
                c_str!("sched_switch"),
                switch_probe::<H> as *mut c_void,
                handler,
            )
        }
    }
}

impl<H: SchedProcessFork> TracepointProbe<H> {
    /// Calls `handler` at every `sched_process_fork`.
    pub(crate) fn sched_process_fork(handler: Arc<H>) -> Result<Self> {
        // SAFETY: `fork_probe` has `sched_process_fork`'s prototype after the data pointer.
        unsafe {
            Self::register(
                c_str!("sched_process_fork"),
                fork_probe::<H> as *mut c_void,
                handler,
            )
        }
    }
}

impl<H: SchedProcessExit> TracepointProbe<H> {
    /// Calls `handler` at every `sched_process_exit`.
    pub(crate) fn sched_process_exit(handler: Arc<H>) -> Result<Self> {
        // SAFETY: `exit_probe` has `sched_process_exit`'s prototype after the data pointer.
        unsafe {
            Self::register(
                c_str!("sched_process_exit"),
                exit_probe::<H> as *mut c_void,
                handler,
            )
        }
    }
}

impl<H: Send + Sync> Drop for TracepointProbe<H> {
    fn drop(&mut self) {
        let data = (&*self.handler as *const H).cast_mut().cast::<c_void>();
        // SAFETY: Registered with these arguments (type invariant).
        unsafe { bindings::tracepoint_probe_unregister(self.tp, self.probe, data) };
        // SAFETY: No precondition. Once it returns, no call of `probe` is in progress, so `handler`
        // (dropped after this) is no longer used.
        unsafe { bindings::rrp_tracepoint_synchronize_unregister() };
    }
}

/// `sched_switch` trampoline.
///
/// # Safety
///
/// Registered by [`TracepointProbe::sched_switch`]: `data` is its live `H`, the tasks are live.
unsafe extern "C" fn switch_probe<H: SchedSwitch>(
    data: *mut c_void,
    preempt: bool,
    prev: *mut bindings::task_struct,
    next: *mut bindings::task_struct,
    _prev_state: u32,
) {
    // SAFETY: `data` is the handler the probe keeps alive while registered.
    let handler = unsafe { &*data.cast::<H>() };
    // SAFETY: The scheduler holds both tasks for the duration of the switch.
    let (prev, next) = unsafe { (task::from_raw(prev), task::from_raw(next)) };
    handler.sched_switch(preempt, prev, next);
}

/// `sched_process_fork` trampoline.
///
/// # Safety
///
/// Registered by [`TracepointProbe::sched_process_fork`]: `data` is its live `H`; the tracepoint fires
/// in `parent` before `child` is woken (`kernel_clone`, before `wake_up_new_task`).
unsafe extern "C" fn fork_probe<H: SchedProcessFork>(
    data: *mut c_void,
    parent: *mut bindings::task_struct,
    child: *mut bindings::task_struct,
) {
    // SAFETY: `data` is the handler the probe keeps alive while registered.
    let handler = unsafe { &*data.cast::<H>() };
    // SAFETY: Used only within this call.
    let me = unsafe { task::current() };
    if task::raw(me) != parent {
        return;
    }
    // SAFETY: `me` is the calling task, in one of its own tracepoints (not a notifier callback).
    let parent = unsafe { Current::new(me) };
    // SAFETY: The creator holds `child`, which is not woken before the tracepoint returns.
    let child = unsafe { NewTask::new(task::from_raw(child)) };
    handler.sched_process_fork(&parent, &child);
}

/// `sched_process_exit` trampoline.
///
/// # Safety
///
/// Registered by [`TracepointProbe::sched_process_exit`]: `data` is its live `H`.
unsafe extern "C" fn exit_probe<H: SchedProcessExit>(
    data: *mut c_void,
    p: *mut bindings::task_struct,
) {
    // SAFETY: `data` is the handler the probe keeps alive while registered.
    let handler = unsafe { &*data.cast::<H>() };
    // SAFETY: Used only within this call.
    let me = unsafe { task::current() };
    if task::raw(me) != p {
        return;
    }
    // SAFETY: `me` is the calling task, in one of its own tracepoints (not a notifier callback).
    handler.sched_process_exit(&unsafe { Current::new(me) });
}
