// SPDX-License-Identifier: GPL-2.0

//! Attached tasks: a preempt notifier on every task that asked for one and on the tasks it creates
//! afterwards, its per-task counts, and the scheduler hooks that attach children, detach exiting
//! tasks and count every context switch.
//!
//! Every attachment holds a reference on the module ([`Notifiers`]), so the module cannot be unloaded
//! while a task is attached (`rmmod` reports it in use); a task is detached by itself (`detach`) or
//! when it exits. The table is bounded (`attach_capacity`); a task refused for lack of room is counted
//! and shown in `tasks`.

use crate::logic::counters::Local;
use crate::logic::engine::Engine;
use crate::logic::exited::{Exited, Root};
use crate::logic::ratelimit::warn_ratelimited;
use crate::logic::tracker::{PreemptedBy, TaskRow, Tracker};
use crate::sys::hotplug::CpuPrepare;
use crate::sys::notifier::Notifiers;
use crate::sys::task::{Current, NewTask, Task, TaskExt, Woken};
use crate::sys::taskwork::{self, TaskWork};
use crate::sys::tracepoint::{
    SchedProcessExit, SchedProcessFork, SchedSwitch, SchedWakeup, TracepointProbe,
};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use kernel::prelude::*;
use kernel::sync::Arc;

/// Slots of the attach table, allocated at load: the most `attach_capacity` accepts.
pub(crate) const MAX_ATTACHED: usize = 4096;

/// Tasks that may be attached at once unless `attach_capacity` says otherwise.
pub(crate) const DEFAULT_ATTACHED: usize = 1024;

/// Attach and detach works (`attach PID`, `detach PID`) that may be pending at once, one per thread:
/// each is a small allocation holding a module reference until its thread runs it, which a stopped,
/// traced or blocked thread may put off for as long as it stays so.
pub(crate) const MAX_PENDING: usize = MAX_ATTACHED;

/// The attached tasks: a table of [`MAX_ATTACHED`] notifiers allocated at load, of which
/// `attach_capacity` may be in use. Attaching, at fork too, and detaching allocate nothing and take no
/// lock.
pub(crate) struct Tasks {
    attached: Notifiers<Tracker>,
    engine: Arc<Engine>,
    /// Attach and detach works queued and not run yet (at most [`MAX_PENDING`]).
    pending: AtomicUsize,
    /// Who preempted the attached tasks that have exited, per root.
    exited: Exited,
}

impl Tasks {
    /// No task attached yet.
    pub(crate) fn new(engine: &Arc<Engine>, module: &'static ThisModule) -> Result<Self> {
        Ok(Self {
            attached: Notifiers::new(module, MAX_ATTACHED, DEFAULT_ATTACHED, || {
                Tracker::new(engine.clone())
            })?,
            engine: engine.clone(),
            pending: AtomicUsize::new(0),
            exited: Exited::new()?,
        })
    }

    /// `attach` written by the calling task: registers a notifier on it. Attaching twice is a no-op;
    /// `ENOSPC` when `attach_capacity` tasks are attached.
    ///
    /// May sleep the first time (turning preempt notifiers on): process context only (the `attach`
    /// write, and the works `attach PID` queues, which run as the thread returns to user space).
    ///
    /// Its process is the root of what it and the tasks it creates leave in `preempted_by_exited`; a
    /// main thread attaching starts its process's entry there afresh.
    pub(crate) fn attach_current(&self, me: &Current<'_>) -> Result {
        self.attached.enable();
        let task = me.task();
        let root = task.process_id();
        let attached = self.attached.attach(me, |t, cpu| {
            t.task.set_current(me);
            t.start(Some(cpu), root);
        })?;
        if attached && task.tid() == root {
            self.exited.forget(root);
        }
        Ok(())
    }

    /// `attach PID` / `detach PID`: queues a work on every thread of process `pid` that attaches
    /// (detaches) the thread in its own context, as soon as it runs. Returns the threads queued; `EPERM`
    /// for a kernel thread, `ESRCH` when there is no such process, `EBUSY` (nothing queued) when the
    /// process has more threads than [`MAX_PENDING`] leaves room for.
    pub(crate) fn queue_pid(self: &Arc<Self>, pid: i32, attach: bool) -> Result<usize> {
        if attach {
            // Here, where it may sleep, so that the works find it on.
            self.attached.enable();
        }
        let mut threads = 0;
        taskwork::for_each_thread(pid, |_| threads += 1)?;
        let mut permits = Permits::reserve(self, threads)?;
        let (mut queued, mut first_error) = (0, None);
        taskwork::for_each_thread(pid, |t| {
            // A thread created since the count takes a permit of its own, if one is left.
            let Some(permit) = permits
                .take()
                .or_else(|| Permits::reserve(self, 1).ok()?.take())
            else {
                first_error.get_or_insert(EBUSY);
                return;
            };
            match taskwork::queue(t, ByPid { permit, attach }) {
                Ok(()) => queued += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        })?;
        if queued == 0 {
            return Err(first_error.unwrap_or(ESRCH));
        }
        Ok(queued)
    }

    /// Attach and detach works queued and not run yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Relaxed)
    }

    /// `detach` written by the calling task: unregisters its notifier.
    pub(crate) fn detach_current(&self, me: &Current<'_>) -> Result {
        self.attached.detach(me, |t| t.task.clear_current(me))
    }

    /// The attached tasks' counts.
    pub(crate) fn rows(&self) -> Result<KVec<TaskRow>> {
        let mut rows = KVec::new();
        self.attached.for_each(|t| {
            if let Some(row) = t.row() {
                rows.push(row, GFP_KERNEL)?;
            }
            Ok(())
        })?;
        Ok(rows)
    }

    /// Who preempted the attached tasks that have exited, per root; and the roots that made room.
    pub(crate) fn preempted_by_exited(&self) -> Result<(KVec<Root>, u64)> {
        self.exited.read()
    }

    /// Who preempted each attached task.
    pub(crate) fn preempted_by(&self) -> Result<KVec<PreemptedBy>> {
        let mut rows = KVec::new();
        self.attached.for_each(|t| {
            if let Some(row) = t.preempted_by_row()? {
                rows.push(row, GFP_KERNEL)?;
            }
            Ok(())
        })?;
        Ok(rows)
    }

    /// Tasks that could not be attached because `attach_capacity` tasks were.
    pub(crate) fn full(&self) -> u64 {
        self.attached.full()
    }

    /// Tasks that may be attached at once.
    pub(crate) fn capacity(&self) -> usize {
        self.attached.limit()
    }

    /// Sets how many tasks may be attached at once (1 to [`MAX_ATTACHED`]).
    pub(crate) fn set_capacity(&self, n: usize) -> Result {
        self.attached.set_limit(n)
    }
}

/// Room for `n` pending attach or detach works in [`Tasks::pending`], given back when dropped.
struct Permits {
    tasks: Arc<Tasks>,
    n: usize,
}

impl Permits {
    /// Room for `n` more works; `EBUSY` (logged) when that would make more than [`MAX_PENDING`].
    fn reserve(tasks: &Arc<Tasks>, n: usize) -> Result<Self> {
        let before = tasks.pending.fetch_add(n, Relaxed);
        if before.saturating_add(n) > MAX_PENDING {
            tasks.pending.fetch_sub(n, Relaxed);
            warn_ratelimited!(
                "attach: {} attach/detach works already wait for their threads to run (at most {}): refused for {} more threads\n",
                before,
                MAX_PENDING,
                n
            );
            return Err(EBUSY);
        }
        Ok(Self {
            tasks: tasks.clone(),
            n,
        })
    }

    /// One of the permits, for one work.
    fn take(&mut self) -> Option<Permits> {
        self.n = self.n.checked_sub(1)?;
        Some(Permits {
            tasks: self.tasks.clone(),
            n: 1,
        })
    }
}

impl Drop for Permits {
    fn drop(&mut self) {
        self.tasks.pending.fetch_sub(self.n, Relaxed);
    }
}

/// What a thread of a process attached or detached by pid runs in its own context; its permit is given
/// back when it has run (or is dropped unrun, at the thread's exit).
struct ByPid {
    permit: Permits,
    attach: bool,
}

impl TaskWork for ByPid {
    /// Attaches (detaches) the calling thread (never an exiting one: [`taskwork`] runs no work then).
    fn run(self, me: &Current<'_>) {
        let tasks = &self.permit.tasks;
        let _ = if self.attach {
            tasks.attach_current(me)
        } else {
            tasks.detach_current(me)
        };
    }
}

impl SchedProcessFork for Tasks {
    /// Attaches `child` when its parent (the calling task) is attached (a full table counts it).
    fn sched_process_fork(&self, parent: &Current<'_>, child: &NewTask<'_>) {
        if let Some(root) = self.attached.handler_of(parent).map(Tracker::root) {
            let _ = self.attached.attach_new(child, |t| {
                t.task.set_new(child);
                t.start(None, root);
            });
        }
    }
}

impl SchedWakeup for Tasks {
    /// Remembers when an attached task is woken, for its wait until it runs (latency recording on).
    fn sched_wakeup(&self, task: &Woken<'_>) {
        if !self.engine.latency().enabled() {
            return;
        }
        if let Some(t) = self.attached.find_woken(task) {
            t.woken();
        }
    }
}

impl SchedProcessExit for Tasks {
    /// Detaches the exiting task, if it is attached, and keeps who preempted it.
    fn sched_process_exit(&self, task: &Current<'_>) {
        // `ENOENT` (not attached) is the common case.
        let _ = self.attached.detach(task, |t| {
            t.exited(&self.exited, task.task());
            t.task.clear_current(task);
        });
    }
}

impl SchedSwitch for Engine {
    /// Counts every context switch, and those that preempted the previous task; ends the reschedule
    /// interval in progress for this CPU; times the kernel threads' turns on it (`noise/`).
    fn sched_switch(&self, preempt: bool, prev: &Task, next: &Task, prev_state: u32) {
        let window = self.window();
        let counters = &window.counters;
        counters.local(Local::Switches);
        if preempt {
            counters.local(Local::SwitchesPreempt);
        }
        self.latency()
            .switched(counters, prev, next, preempt, prev_state);
        let noise = self.noise();
        if noise.on() {
            noise.switched(&window.noise, window.started_ns(), prev, next);
        }
    }
}

/// The scheduler and hotplug hooks, in drop order: tracepoints first (no probe runs after), the hotplug
/// state, then the attached tasks (by then none: each attachment holds a module reference).
pub(crate) struct Hooks {
    _fork: TracepointProbe<Tasks>,
    _exit: TracepointProbe<Tasks>,
    _wakeup: TracepointProbe<Tasks>,
    _switch: TracepointProbe<Engine>,
    /// `None` if the kernel had no dynamic hotplug state left (logged: intervals towards a CPU that went
    /// offline may then span its offline time).
    _hotplug: Option<CpuPrepare<Engine>>,
    tasks: Arc<Tasks>,
}

impl Hooks {
    /// Registers the fork, exit, wakeup and switch probes, and the hotplug
    /// state that forgets a CPU's intervals in progress before it comes back online.
    pub(crate) fn new(engine: Arc<Engine>, module: &'static ThisModule) -> Result<Self> {
        let tasks = Arc::new(Tasks::new(&engine, module)?, GFP_KERNEL)?;
        Ok(Self {
            _fork: TracepointProbe::sched_process_fork(tasks.clone())?,
            _exit: TracepointProbe::sched_process_exit(tasks.clone())?,
            _wakeup: TracepointProbe::sched_wakeup(tasks.clone())?,
            _switch: TracepointProbe::sched_switch(engine.clone())?,
            _hotplug: CpuPrepare::new(engine)
                .inspect_err(|e| {
                    pr_warn!(
                        "no CPU hotplug state ({:?}): an interval towards a CPU that goes offline may span its offline time\n",
                        e
                    )
                })
                .ok(),
            tasks,
        })
    }

    /// The attached tasks.
    pub(crate) fn tasks(&self) -> &Arc<Tasks> {
        &self.tasks
    }
}
