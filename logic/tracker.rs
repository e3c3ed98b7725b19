// SPDX-License-Identifier: GPL-2.0

//! What an attached task's preempt notifier counts ([`Tracker`]): its switches in and out, how each
//! slice ended, its migrations, who preempted it, and (latency recording on) its waits and slices.
//! One slot of the attach table of [`crate::logic::tasks`], reused from task to task.

use crate::logic::counters::{Hist, Local};
use crate::logic::engine::Engine;
use crate::logic::exited::{Exited, Preemptor as Folded};
use crate::sys::notifier;
use crate::sys::task::{Task, TaskExt, TaskSlot, COMM_LEN};
use crate::sys::time::now_ns;
use core::sync::atomic::{
    AtomicI32, AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use kernel::prelude::*;
use kernel::sync::Arc;

/// Adds one to a counter that only one context ever writes (the task's own context switches).
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed).wrapping_add(1), Relaxed);
}

const NO_CPU: u32 = u32::MAX;

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
    pub(super) task: TaskSlot,
    engine: Arc<Engine>,
    /// The process that attached it (see [`crate::logic::exited`]): its own, or its creator's.
    root: AtomicI32,
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

// A slot (the notifier, its index and this) stays under 512 bytes, as docs/design.md states.
const _: () = assert!(core::mem::size_of::<Tracker>() <= 512 - 32);

impl Tracker {
    /// An unused slot.
    pub(super) fn new(engine: Arc<Engine>) -> Self {
        Self {
            task: TaskSlot::new(),
            engine,
            root: AtomicI32::new(0),
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

    /// Counts from zero for a task just attached by `root`; `running_on` is its CPU if it is running now
    /// (the calling task attaching itself counts as switched in there), `None` for a new task.
    pub(super) fn start(&self, running_on: Option<usize>, root: i32) {
        self.root.store(root, Relaxed);
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

    /// Remembers that the task was woken now, for its wait until it runs.
    pub(super) fn woken(&self) {
        self.woken_at.store(now_ns().max(1), Relaxed);
    }

    /// Its line of the `tasks` file (`None` while the slot is unused).
    pub(super) fn row(&self) -> Option<TaskRow> {
        let (pid, comm) = self.identity()?;
        let last = self.last_cpu.load(Relaxed);
        Some(TaskRow {
            pid,
            comm,
            ins: self.ins.load(Relaxed),
            outs: self.outs.load(Relaxed),
            preempted: self.preempted.load(Relaxed),
            voluntary: self.voluntary.load(Relaxed),
            migrations: self.migrations.load(Relaxed),
            last_cpu: (last != NO_CPU).then_some(last),
        })
    }

    /// The process that attached it.
    pub(super) fn root(&self) -> i32 {
        self.root.load(Relaxed)
    }

    /// Its preemptors as they stand (pid 0: an unused entry).
    fn preemptors(&self) -> [Folded; PREEMPTORS] {
        let mut by = [(0, [0u8; COMM_LEN], 0); PREEMPTORS];
        for (p, out) in self.preemptors.iter().zip(by.iter_mut()) {
            let who = p.pid.load(Acquire);
            if who == 0 {
                continue;
            }
            let mut comm = [0u8; COMM_LEN];
            for (i, b) in comm.iter_mut().enumerate() {
                let word = p.comm.get(i / 8).map_or(0, |w| w.load(Relaxed));
                *b = word.to_ne_bytes()[i % 8];
            }
            *out = (who, comm, p.count.load(Relaxed));
        }
        by
    }

    /// Who preempted the task, most frequent first (`None` while the slot is unused).
    pub(super) fn preempted_by_row(&self) -> Result<Option<PreemptedBy>> {
        let Some((pid, comm)) = self.identity() else {
            return Ok(None);
        };
        let mut by = KVec::with_capacity(PREEMPTORS, GFP_KERNEL)?;
        for p in self.preemptors().into_iter().filter(|p| p.0 != 0) {
            by.push(p, GFP_KERNEL)?;
        }
        by.sort_unstable_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        Ok(Some(PreemptedBy {
            pid,
            comm,
            by,
            others: self.preemptors_other.load(Relaxed),
        }))
    }

    /// At the exit of its task `me` (which runs it: its counts are final), folds who preempted it into
    /// its root's entry of `exited`.
    pub(super) fn exited(&self, exited: &Exited, me: &Task) {
        exited.fold(
            self.root(),
            me.tid(),
            // In the exit tracepoint: no `task_lock()` (a spinlock_t, which sleeps on PREEMPT_RT).
            me.comm_nolock(),
            &self.preemptors(),
            self.preemptors_other.load(Relaxed),
        );
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
        let preempted = self
            .engine
            .latency()
            .left_runnable(prev)
            .unwrap_or_else(|| prev.is_running());
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
