// SPDX-License-Identifier: GPL-2.0

//! Attached tasks: a preempt notifier on every task that asked for one and on the tasks it creates
//! afterwards, its per-task counts, and the scheduler hooks that attach children, detach exiting
//! tasks and count every context switch.
//!
//! Every attachment holds a reference on the module ([`Notifiers`]), so the module cannot be unloaded
//! while a task is attached (`rmmod` reports it in use); a task is detached by itself (`detach`) or
//! when it exits. The table is bounded (`attach_capacity`); a task refused for lack of room is counted
//! and shown in `tasks`.

use crate::logic::counters::{Hist, Local};
use crate::logic::engine::Engine;
use crate::logic::ratelimit::warn_ratelimited;
use crate::sys::hotplug::CpuPrepare;
use crate::sys::notifier::{self, Notifiers};
use crate::sys::task::{Current, NewTask, Task, TaskExt, TaskSlot, Woken, COMM_LEN};
use crate::sys::taskwork::{self, TaskWork};
use crate::sys::time::now_ns;
use crate::sys::tracepoint::{
    SchedProcessExit, SchedProcessFork, SchedSwitch, SchedWakeup, TracepointProbe,
};
use core::sync::atomic::{
    AtomicI32, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::prelude::*;
use kernel::sync::Arc;

/// Adds one to a counter that only one context ever writes (the task's own context switches).
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
}

const NO_CPU: u32 = u32::MAX;

/// Slots of the attach table, allocated at load: the most `attach_capacity` accepts.
pub(crate) const MAX_ATTACHED: usize = 4096;

/// Tasks that may be attached at once unless `attach_capacity` says otherwise.
pub(crate) const DEFAULT_ATTACHED: usize = 1024;

/// Attach and detach works (`attach PID`, `detach PID`) that may be pending at once, one per thread:
/// each is a small allocation holding a module reference until its thread runs it, which a stopped,
/// traced or blocked thread may put off for as long as it stays so.
pub(crate) const MAX_PENDING: usize = MAX_ATTACHED;

/// Preemptors each attached task keeps, most frequent shown first; others are counted together.
pub(crate) const PREEMPTORS: usize = 8;

/// A task that took an attached task's CPU by preempting it, and how often. Written only at that
/// task's own switches (one CPU at a time); read by `preempted_by`.
struct Preemptor {
    /// 0: unused.
    pid: AtomicI32,
    count: AtomicU64,
    /// `comm`, 8 bytes per word.
    comm: [AtomicU64; COMM_LEN / 8],
}

impl Preemptor {
    fn new() -> Self {
        Self {
            pid: AtomicI32::new(0),
            count: AtomicU64::new(0),
            comm: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

/// What an attached task's notifier counts: one slot of the attach table, reused from task to task.
pub(crate) struct Tracker {
    task: TaskSlot,
    engine: Arc<Engine>,
    ins: AtomicU64,
    outs: AtomicU64,
    preempted: AtomicU64,
    voluntary: AtomicU64,
    migrations: AtomicU64,
    last_cpu: AtomicU32,
    /// When it was last woken, since it last left a CPU (0: not since).
    woken_at: AtomicU64,
    /// When its current slice began (0: not running, or latency recording was off then).
    slice_start: AtomicU64,
    preemptors: [Preemptor; PREEMPTORS],
    /// Preemptions by tasks that found no room in `preemptors`.
    preemptors_other: AtomicU64,
}

// A slot (the notifier, its index and this) stays under 512 bytes, as the README states.
const _: () = assert!(core::mem::size_of::<Tracker>() <= 512 - 32);

impl Tracker {
    /// An unused slot.
    fn new(engine: Arc<Engine>) -> Self {
        Self {
            task: TaskSlot::new(),
            engine,
            ins: AtomicU64::new(0),
            outs: AtomicU64::new(0),
            preempted: AtomicU64::new(0),
            voluntary: AtomicU64::new(0),
            migrations: AtomicU64::new(0),
            last_cpu: AtomicU32::new(NO_CPU),
            woken_at: AtomicU64::new(0),
            slice_start: AtomicU64::new(0),
            preemptors: [(); PREEMPTORS].map(|()| Preemptor::new()),
            preemptors_other: AtomicU64::new(0),
        }
    }

    /// Counts from zero for a task just attached; `running_on` is its CPU if it is running now (the
    /// calling task attaching itself counts as switched in there), `None` for a new task.
    fn start(&self, running_on: Option<usize>) {
        self.ins.store(u64::from(running_on.is_some()), Relaxed);
        self.outs.store(0, Relaxed);
        self.preempted.store(0, Relaxed);
        self.voluntary.store(0, Relaxed);
        self.migrations.store(0, Relaxed);
        self.last_cpu
            .store(running_on.map_or(NO_CPU, |c| c as u32), Relaxed);
        self.woken_at.store(0, Relaxed);
        let start = running_on.is_some() && self.engine.latency().enabled();
        self.slice_start
            .store(if start { now_ns() } else { 0 }, Relaxed);
        for p in &self.preemptors {
            p.pid.store(0, Relaxed);
            p.count.store(0, Relaxed);
        }
        self.preemptors_other.store(0, Relaxed);
    }

    /// The attached task's thread id and name (`None` while the slot is unused), read under RCU.
    fn identity(&self) -> Option<(i32, [u8; COMM_LEN])> {
        self.task
            .with(|task| task.map(|task| (task.tid(), task.comm())))
    }

    /// Counts a preemption by `next`: in its entry, else in a free one, else with the others.
    fn preempted_by(&self, next: &Task) {
        let pid = next.tid();
        let mut free = None;
        for p in &self.preemptors {
            match p.pid.load(Relaxed) {
                0 => {
                    free.get_or_insert(p);
                }
                q if q == pid => {
                    bump(&p.count);
                    return;
                }
                _ => {}
            }
        }
        let Some(p) = free else {
            bump(&self.preemptors_other);
            return;
        };
        // The scheduler holds the runqueue lock: `comm()` would take `next`'s task_lock.
        let comm = next.comm_nolock();
        for (i, word) in p.comm.iter().enumerate() {
            let mut w = [0u8; 8];
            for (j, b) in w.iter_mut().enumerate() {
                *b = comm.get(8 * i + j).copied().unwrap_or(0);
            }
            word.store(u64::from_ne_bytes(w), Relaxed);
        }
        p.count.store(1, Relaxed);
        // Published last: a reader that sees the pid sees its name.
        p.pid.store(pid, Release);
    }
}

impl notifier::Handler for Tracker {
    /// Counts the switch in; when latency recording is on, starts the slice and measures the wait
    /// since the wakeup, if the task was woken since it last left a CPU.
    fn sched_in(&self, cpu: usize, me: &Task) {
        let counters = &self.engine.window().counters;
        bump(&self.ins);
        counters.local(Local::SchedIn);
        let last = self.last_cpu.swap(cpu as u32, Relaxed);
        if last != NO_CPU && last as usize != cpu {
            bump(&self.migrations);
            counters.local(Local::Migrated);
        }
        let woken = self.woken_at.swap(0, Relaxed);
        if self.engine.latency().enabled() {
            let now = self.engine.latency().switch_now(me);
            self.slice_start.store(now, Relaxed);
            if woken != 0 {
                counters.record(Hist::WakeupToRun, now.saturating_sub(woken));
            }
        }
    }

    /// Counts the switch out, preempted or blocking; ends the slice; counts who preempted it (never the
    /// idle task).
    fn sched_out(&self, prev: &Task, next: &Task) {
        let counters = &self.engine.window().counters;
        bump(&self.outs);
        counters.local(Local::SchedOut);
        let preempted = prev.is_running();
        if preempted {
            bump(&self.preempted);
            counters.local(Local::Preempted);
            if !next.is_idle() {
                self.preempted_by(next);
            }
        } else {
            bump(&self.voluntary);
            counters.local(Local::Voluntary);
        }
        // A wakeup before this switch (the task was still running) is not what the next switch in
        // answers.
        self.woken_at.store(0, Relaxed);
        let start = self.slice_start.swap(0, Relaxed);
        if start != 0 && self.engine.latency().enabled() {
            let hist = if preempted {
                Hist::SlicePreempted
            } else {
                Hist::SliceBlocked
            };
            let now = self.engine.latency().switch_now(next);
            counters.record(hist, now.saturating_sub(start));
        }
    }
}

/// The tasks that preempted one attached task, most frequent first.
pub(crate) struct PreemptedBy {
    pub(crate) pid: i32,
    pub(crate) comm: [u8; COMM_LEN],
    /// (pid, comm, count), most frequent first.
    pub(crate) by: KVec<(i32, [u8; COMM_LEN], u64)>,
    /// Preemptions by tasks that found no room in the table.
    pub(crate) others: u64,
}

/// One line of the `tasks` file.
pub(crate) struct TaskRow {
    pub(crate) pid: i32,
    pub(crate) comm: [u8; COMM_LEN],
    pub(crate) ins: u64,
    pub(crate) outs: u64,
    pub(crate) preempted: u64,
    pub(crate) voluntary: u64,
    pub(crate) migrations: u64,
    pub(crate) last_cpu: Option<u32>,
}

/// The attached tasks: a table of [`MAX_ATTACHED`] notifiers allocated at load, of which
/// `attach_capacity` may be in use. Attaching, at fork too, and detaching allocate nothing and take no
/// lock.
pub(crate) struct Tasks {
    attached: Notifiers<Tracker>,
    engine: Arc<Engine>,
    /// Attach and detach works queued and not run yet (at most [`MAX_PENDING`]).
    pending: AtomicUsize,
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
        })
    }

    /// `attach` written by the calling task: registers a notifier on it. Attaching twice is a no-op;
    /// `ENOSPC` when `attach_capacity` tasks are attached.
    ///
    /// May sleep the first time (turning preempt notifiers on): process context only (the `attach`
    /// write, and the works `attach PID` queues, which run as the thread returns to user space).
    pub(crate) fn attach_current(&self, me: &Current<'_>) -> Result {
        self.attached.enable();
        self.attached
            .attach(me, |t, cpu| {
                t.task.set_current(me);
                t.start(Some(cpu));
            })
            .map(|_| ())
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
            let Some((pid, comm)) = t.identity() else {
                return Ok(());
            };
            let last = t.last_cpu.load(Relaxed);
            rows.push(
                TaskRow {
                    pid,
                    comm,
                    ins: t.ins.load(Relaxed),
                    outs: t.outs.load(Relaxed),
                    preempted: t.preempted.load(Relaxed),
                    voluntary: t.voluntary.load(Relaxed),
                    migrations: t.migrations.load(Relaxed),
                    last_cpu: (last != NO_CPU).then_some(last),
                },
                GFP_KERNEL,
            )?;
            Ok(())
        })?;
        Ok(rows)
    }

    /// Who preempted each attached task.
    pub(crate) fn preempted_by(&self) -> Result<KVec<PreemptedBy>> {
        let mut rows = KVec::new();
        self.attached.for_each(|t| {
            let Some((pid, comm)) = t.identity() else {
                return Ok(());
            };
            let mut by = KVec::with_capacity(PREEMPTORS, GFP_KERNEL)?;
            for p in &t.preemptors {
                let who = p.pid.load(Acquire);
                if who == 0 {
                    continue;
                }
                let mut comm = [0u8; COMM_LEN];
                for (i, b) in comm.iter_mut().enumerate() {
                    let word = p.comm.get(i / 8).map_or(0, |w| w.load(Relaxed));
                    *b = word.to_ne_bytes()[i % 8];
                }
                by.push((who, comm, p.count.load(Relaxed)), GFP_KERNEL)?;
            }
            by.sort_unstable_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
            rows.push(
                PreemptedBy {
                    pid,
                    comm,
                    by,
                    others: t.preemptors_other.load(Relaxed),
                },
                GFP_KERNEL,
            )?;
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
        if self.attached.is_attached(parent) {
            let _ = self.attached.attach_new(child, |t| {
                t.task.set_new(child);
                t.start(None);
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
            t.woken_at.store(now_ns().max(1), Relaxed);
        }
    }
}

impl SchedProcessExit for Tasks {
    /// Detaches the exiting task, if it is attached.
    fn sched_process_exit(&self, task: &Current<'_>) {
        // `ENOENT` (not attached) is the common case.
        let _ = self.attached.detach(task, |t| t.task.clear_current(task));
    }
}

impl SchedSwitch for Engine {
    /// Counts every context switch, and those that preempted the previous task; ends the reschedule
    /// interval in progress for this CPU.
    fn sched_switch(&self, preempt: bool, prev: &Task, next: &Task, prev_state: u32) {
        let counters = &self.window().counters;
        counters.local(Local::Switches);
        if preempt {
            counters.local(Local::SwitchesPreempt);
        }
        self.latency()
            .switched(counters, prev, next, preempt, prev_state);
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
