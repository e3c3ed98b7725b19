// SPDX-License-Identifier: GPL-2.0

//! The scheduler's tracepoints this module probes (`sched:*`, and the bare `sched_set_need_resched_tp`):
//! their handler traits, constructors and trampolines, each declared by one [`tracepoint!`].
//!
//! C header: [`include/trace/events/sched.h`](srctree/include/trace/events/sched.h)

use super::super::bindings;
use super::super::task::{self, Current, NewTask, Task, TaskExt, Woken};
use super::{Here, Inner, TracepointProbe};
use kernel::c_str;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;

tracepoint! {
    /// `sched_switch(preempt, prev, next, prev_state)`: every context switch, on its CPU
    /// (`__schedule()`, IRQs off, the runqueue locked).
    trait SchedSwitch {
        /// `prev` is switched out for `next`; `preempt` when `prev` was preempted (it stays
        /// runnable); `prev_state` is `prev`'s state when the switch began: when not preempted, 0 if
        /// it stays runnable (it yielded, or was rescheduled on its way back to user space), else the
        /// state it blocks in.
        fn sched_switch(&self, preempt: bool, prev: &Task, next: &Task, prev_state: u32);
    }
    /// Calls `handler` at every `sched_switch`.
    fn sched_switch = "sched_switch";
    /// `sched_switch` trampoline.
    unsafe extern "C" fn switch_probe(
        inner,
        preempt: bool,
        prev: *mut bindings::task_struct,
        next: *mut bindings::task_struct,
        prev_state: u32,
    ) {
        // SAFETY: The scheduler holds both tasks for the duration of the switch.
        let (prev, next) = unsafe { (task::from_raw(prev), task::from_raw(next)) };
        inner.handler.sched_switch(preempt, prev, next, prev_state);
    }
}

tracepoint! {
    /// `sched_wakeup(p)`: `p`, whose state matched a sleeping state, is made runnable (in the waker, or
    /// on the target CPU for a wakelist wakeup; with `p`'s locks held: no sleeping).
    trait SchedWakeup {
        /// `task` is woken.
        fn sched_wakeup(&self, task: &Woken<'_>);
    }
    /// Calls `handler` at every `sched_wakeup`.
    fn sched_wakeup = "sched_wakeup";
    /// `sched_wakeup` trampoline: `p` is the task `try_to_wake_up()` wakes (`ttwu_do_wakeup()`, after
    /// its state matched).
    unsafe extern "C" fn wakeup_probe(inner, p: *mut bindings::task_struct) {
        // SAFETY: The waker holds `p` for the duration of the wakeup; its state matched a sleeping
        // state (`ttwu_state_match()`), and `try_to_wake_up()` calls `ttwu_do_wakeup()` either for
        // `p == current` (on its CPU) or with `p`'s runqueue lock held (`ttwu_runnable()`,
        // `ttwu_do_activate()` from `ttwu_queue()` and `sched_ttwu_pending()`, kernel/sched/core.c:
        // 3672-3675, 3756-3774, 3783-3803, 3969-3979, 4160-4181 in 6.12).
        let woken = unsafe { Woken::new(task::from_raw(p)) };
        inner.handler.sched_wakeup(&woken);
    }
}

tracepoint! {
    /// `sched_process_fork(parent, child)`: in the parent, before the child first runs
    /// (`kernel_clone()`, preemptible: the trampoline turns preemption off; no sleeping, `GFP_ATOMIC`
    /// only).
    trait SchedProcessFork {
        /// `parent` (the calling task) created `child`.
        fn sched_process_fork(&self, parent: &Current<'_>, child: &NewTask<'_>);
    }
    /// Calls `handler` at every `sched_process_fork`.
    fn sched_process_fork = "sched_process_fork";
    /// `sched_process_fork` trampoline: the tracepoint fires in `parent` before `child` is woken
    /// (`kernel_clone`, before `wake_up_new_task`).
    unsafe extern "C" fn fork_probe(
        inner,
        parent: *mut bindings::task_struct,
        child: *mut bindings::task_struct,
    ) {
        // SAFETY: Used only within this call.
        let me = unsafe { task::current() };
        if task::raw(me) != parent {
            return;
        }
        // SAFETY: `me` is the calling task, in one of its own tracepoints (not a notifier callback).
        let parent = unsafe { Current::new(me) };
        // SAFETY: The creator holds `child`, which is not woken before the tracepoint returns.
        let child = unsafe { NewTask::new(task::from_raw(child)) };
        // Preemption off, as on 6.12 (see the module documentation).
        super::super::cpu::pinned(|_| inner.handler.sched_process_fork(&parent, &child));
    }
}

tracepoint! {
    /// `sched_process_exit(p)` (7.x: `(p, group_dead)`): in the exiting task (`do_exit()`,
    /// preemptible: the trampoline turns preemption off).
    trait SchedProcessExit {
        /// The calling task exits.
        fn sched_process_exit(&self, task: &Current<'_>);
    }
    /// Calls `handler` at every `sched_process_exit`.
    fn sched_process_exit = "sched_process_exit";
    /// `sched_process_exit` trampoline (with `group_dead` where the tree's
    /// include/trace/events/sched.h has it: Kbuild's `rrp_exit_group_dead`).
    unsafe extern "C" fn exit_probe(
        inner,
        p: *mut bindings::task_struct,
        #[cfg(rrp_exit_group_dead)] _group_dead: bool,
    ) {
        // SAFETY: Used only within this call.
        let me = unsafe { task::current() };
        if task::raw(me) != p {
            return;
        }
        // SAFETY: `me` is the calling task, in one of its own tracepoints (not a notifier callback).
        let me = unsafe { Current::new(me) };
        // Preemption off, as on 6.12 (see the module documentation).
        super::super::cpu::pinned(|_| inner.handler.sched_process_exit(&me));
    }
}

/// What kind of need-resched request `sched_set_need_resched_tp` reports.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// `TIF_NEED_RESCHED`, on a task with no lazy request pending: acted on at the next preemption
    /// point (an IPI when remote and the target does not poll).
    Immediate,
    /// `TIF_NEED_RESCHED_LAZY` (7.x, lazy preemption): no IPI; acted on at the return to user space, or
    /// promoted by the next tick.
    Lazy,
    /// `TIF_NEED_RESCHED` on a task whose lazy request is pending: the lazy request promoted (the tick's
    /// `resched_curr()` when the lazy one was not acted on in time), or an immediate request on top.
    Promoted,
}

tracepoint! {
    /// `sched_set_need_resched_tp(tsk, cpu, tif)` (6.16+: a bare tracepoint, no tracefs event): a
    /// need-resched flag, immediate (`TIF_NEED_RESCHED`) or lazy (`TIF_NEED_RESCHED_LAZY`), is newly
    /// set on `tsk` (the current task of `cpu`, or in `__schedule()` and sched_ext the task about to
    /// run there). Fired by `__resched_curr()` (the runqueue locked), before it decides whether an IPI
    /// is needed, and by `set_tsk_need_resched()` through `__trace_set_need_resched()` (`cpu` its
    /// `smp_processor_id()`, which requires preemption off), kernel/sched/core.c.
    trait SetNeedResched {
        /// This CPU asks `cpu` to reschedule; `request` says how. `here` gives the asking CPU's stack.
        fn set_need_resched(&self, cpu: usize, request: Request, here: &Here<'_>);
    }
    /// Calls `handler` at every `sched_set_need_resched_tp` (`ENOENT` where the kernel has no such
    /// tracepoint: before 6.16; its prototype has not changed since it was added).
    fn set_need_resched = "sched_set_need_resched_tp";
    /// `sched_set_need_resched_tp` trampoline: `tsk` is the runqueue's current task (its runqueue is
    /// locked) or the calling CPU's own.
    unsafe extern "C" fn need_resched_probe(
        inner,
        tsk: *mut bindings::task_struct,
        cpu: c_int,
        tif: c_int,
    ) {
        // SAFETY: `tsk` is a live task for the call (above).
        let task = unsafe { task::from_raw(tsk) };
        let request = if task::is_lazy_flag(tif) {
            Request::Lazy
        } else if task.lazy_pending() {
            Request::Promoted
        } else {
            Request::Immediate
        };
        inner
            .handler
            .set_need_resched(cpu as u32 as usize, request, &inner.here());
    }
}

tracepoint! {
    /// `sched:sched_wake_idle_without_ipi(cpu)`: this CPU would have sent `cpu` an IPI (a reschedule
    /// request, a call-function IPI for a queued wakeup, a nohz kick) but found it polling idle, so only
    /// set its flag (`set_nr_and_not_polling()` / `set_nr_if_polling()`, kernel/sched/core.c; preemption
    /// off: the runqueue locked, or `__smp_call_single_queue()`'s callers).
    trait WakeIdleWithoutIpi {
        /// `cpu` is woken without an IPI.
        fn wake_idle_without_ipi(&self, cpu: usize);
    }
    /// Calls `handler` at every `sched_wake_idle_without_ipi`.
    fn wake_idle_without_ipi = "sched_wake_idle_without_ipi";
    /// `sched_wake_idle_without_ipi` trampoline.
    unsafe extern "C" fn wake_idle_probe(inner, cpu: c_int) {
        inner.handler.wake_idle_without_ipi(cpu as u32 as usize);
    }
}
