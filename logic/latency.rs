// SPDX-License-Identifier: GPL-2.0

//! How long: from a reschedule request to the context switch that answers it, and from an IPI's send
//! to its handler on the target CPU.
//!
//! A start is kept per target CPU (and per IPI kind) as a timestamp in one atomic word: the first
//! request or send since the last end claims it (compare-and-exchange from 0), later ones find it taken
//! (they are answered by the same switch or coalesced into the same interrupt). The end takes it back
//! (exchange with 0) on the target CPU, which adds the interval to its own per-cpu histogram in the
//! active window. So the hot paths load a word and, only when they start or end an interval, read the
//! clock and make one atomic exchange; nothing is allocated or locked.

use crate::logic::counters::{Counters, Hist, Local, PerTarget, Tag};
use crate::sys::cpu;
use crate::sys::percpu::PerCpuBlock;
use crate::sys::task::{Task, TaskExt};
use crate::sys::time::now_ns;
use crate::sys::tracepoint::{Request, Vector};
use core::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Relaxed, SeqCst},
};
use kernel::prelude::*;

/// The IPI kinds whose delivery is measured, by their handler on the target CPU.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Reschedule IPIs (`reschedule_entry`).
    Res = 0,
    /// Call-function-single IPIs (`call_function_single_entry`).
    Cfs = 1,
    /// Call-function IPIs to a mask (`call_function_entry`).
    Cfm = 2,
}

impl Kind {
    /// Every kind, in display order.
    pub(crate) const ALL: [Kind; 3] = [Kind::Res, Kind::Cfs, Kind::Cfm];

    /// The tag of its sends.
    pub(crate) const fn tag(self) -> Tag {
        match self {
            Kind::Res => Tag::Res,
            Kind::Cfs => Tag::Cfs,
            Kind::Cfm => Tag::Cfm,
        }
    }

    /// The per-target array of its sends.
    pub(crate) const fn array(self) -> PerTarget {
        match self {
            Kind::Res => PerTarget::Res,
            Kind::Cfs => PerTarget::Cfs,
            Kind::Cfm => PerTarget::Cfm,
        }
    }

    /// The x86 vector whose handler receives it.
    pub(crate) const fn vector(self) -> Vector {
        match self {
            Kind::Res => Vector::Reschedule,
            Kind::Cfs => Vector::CallFunctionSingle,
            Kind::Cfm => Vector::CallFunction,
        }
    }

    /// The kind as the tables show it (the tag of its send).
    pub(crate) fn name(self) -> &'static str {
        self.tag().name()
    }

    /// The counter of this kind's received IPIs.
    pub(crate) fn received(self) -> Local {
        match self {
            Kind::Res => Local::ReceivedRes,
            Kind::Cfs => Local::ReceivedCfs,
            Kind::Cfm => Local::ReceivedCfm,
        }
    }

    /// The histogram of this kind's delivery.
    pub(crate) fn delivery(self) -> Hist {
        match self {
            Kind::Res => Hist::DeliveryRes,
            Kind::Cfs => Hist::DeliveryCfs,
            Kind::Cfm => Hist::DeliveryCfm,
        }
    }
}

/// Start slots per CPU: one per IPI kind, one for reschedule requests.
const SLOTS: usize = 4;
const RESCHED: usize = 3;

/// A reschedule start made by another CPU has this bit set (the timestamp is shifted past the flags).
const REMOTE: u64 = 1;
/// A reschedule start by a lazy request has this bit set.
const LAZY: u64 = 2;
/// ... and this one once an immediate request promoted it.
const PROMOTED: u64 = 4;
/// The flags' width: the timestamp is shifted past them.
const FLAGS: u32 = 3;

/// The intervals in progress, and whether latency recording is on.
pub(crate) struct Latency {
    /// `SLOTS` words per CPU id: 0, or the start of the interval in progress.
    starts: KVec<AtomicU64>,
    on: AtomicBool,
    /// Per CPU, the clock reading of the context switch in progress there ([`SWITCH_NOW`]) and the
    /// task it switches to ([`SWITCH_TO`], 0: not read yet in this switch), see [`Self::switch_now`];
    /// and the task it switches out with how it leaves ([`SWITCH_OUT`], see [`Self::left_runnable`]).
    switch: PerCpuBlock<3>,
}

const SWITCH_NOW: usize = 0;
const SWITCH_TO: usize = 1;
const SWITCH_OUT: usize = 2;

/// A task's identity for [`Latency::switch_now`]: the address of its `task_struct`.
fn task_key(task: &Task) -> u64 {
    core::ptr::from_ref(task) as usize as u64
}

impl Latency {
    /// Recording on, nothing in progress, for CPU ids below `cpus`.
    pub(crate) fn new(cpus: usize) -> Result<Self> {
        let mut starts = KVec::with_capacity(SLOTS * cpus, GFP_KERNEL)?;
        for _ in 0..SLOTS * cpus {
            starts.push(AtomicU64::new(0), GFP_KERNEL)?;
        }
        Ok(Self {
            starts,
            on: AtomicBool::new(true),
            switch: PerCpuBlock::new()?,
        })
    }

    /// Bytes the start slots of `cpus` CPU ids take (and the switch in progress, three words per CPU).
    pub(crate) fn bytes(cpus: usize) -> usize {
        (SLOTS + 3) * cpus * core::mem::size_of::<AtomicU64>()
    }

    /// The clock reading of the context switch to `next` in progress on this CPU: read by the first
    /// handler of the switch that needs it, reused by the others, so a switch reads the clock once.
    ///
    /// A switch's handlers run on one CPU, in order, with the runqueue locked and interrupts off until
    /// the last, which runs with preemption still off: `trace_sched_switch()` in `__schedule()`, then
    /// `context_switch()` -> `prepare_task_switch()` -> `fire_sched_out_preempt_notifiers(prev, next)`,
    /// then `finish_task_switch()` -> `fire_sched_in_preempt_notifiers(current)` (kernel/sched/core.c:
    /// 6.12 lines 6749, 5163 and 5247; 7.3 lines 7281, 5316 and 5400). `sched_switch`, which runs
    /// first in every switch, resets the word ([`Self::switched`]), so no reading outlives its switch.
    /// Nothing in interrupt context writes these words.
    #[inline]
    pub(crate) fn switch_now(&self, next: &Task) -> u64 {
        let key = task_key(next);
        if self.switch.read(SWITCH_TO) == key {
            return self.switch.read(SWITCH_NOW);
        }
        let now = now_ns();
        self.switch.write(SWITCH_NOW, now);
        self.switch.write(SWITCH_TO, key);
        now
    }

    /// Whether `prev`, switched out on this CPU, leaves it still runnable, as this switch's
    /// `sched_switch` saw it (preempted, or not blocking: `prev_state` 0); `None` if this CPU's last
    /// `sched_switch` was not `prev`'s. For the attached tasks' `sched_out`, which runs later in the same
    /// switch (the order in [`Self::switch_now`]): by then a task preempted while it was about to block
    /// (its state already set, as on its way into `schedule()` or a PREEMPT_RT lock) still has that
    /// state, which `task_is_running()` would read as blocking.
    #[inline]
    pub(crate) fn left_runnable(&self, prev: &Task) -> Option<bool> {
        let out = self.switch.read(SWITCH_OUT);
        (out & !1 == task_key(prev)).then_some(out & 1 != 0)
    }

    /// Whether intervals are measured.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Turns measuring on or off. Callers serialize this and, after turning it off, wait until no
    /// handler still measures before turning it on again ([`crate::logic::engine::Engine`]): the
    /// intervals in progress are forgotten then, so that none spans the time it was off.
    pub(crate) fn set_enabled(&self, on: bool) {
        if on {
            self.forget();
        }
        self.on.store(on, SeqCst);
    }

    /// Forgets every interval in progress (a `reset`: none spans it).
    pub(crate) fn forget(&self) {
        for start in self.starts.iter() {
            start.store(0, Relaxed);
        }
    }

    /// Forgets the intervals in progress towards `cpu`, which is offline and about to come up: one begun
    /// before it went down (an IPI it never took, a request its last switch did not answer) would
    /// otherwise end at its first IPI or switch after, spanning the time it was offline.
    pub(crate) fn forget_cpu(&self, cpu: usize) {
        for which in 0..SLOTS {
            if let Some(start) = self.slot(cpu, which) {
                start.store(0, Relaxed);
            }
        }
    }

    /// Wrapping arithmetic: no overflow check (and no panic path) in the handlers; CPU ids come from
    /// the kernel, far below where `cpu * SLOTS` could wrap, and `get` checks the index.
    #[inline]
    fn slot(&self, cpu: usize, which: usize) -> Option<&AtomicU64> {
        self.starts.get(cpu.wrapping_mul(SLOTS).wrapping_add(which))
    }

    /// Claims `slot` for an interval starting now, unless one is in progress; `flags` are kept with it.
    #[inline]
    fn start(slot: &AtomicU64, flags: u64) {
        Self::start_at(slot, flags, &mut None);
    }

    /// The start word of an interval starting at `now` with `flags`.
    #[inline]
    fn stamp(now: u64, flags: u64) -> u64 {
        (now.max(1) << FLAGS) | flags
    }

    /// [`Self::start`] with the clock read at most once for several slots: `now` is read on first need
    /// and kept.
    #[inline]
    fn start_at(slot: &AtomicU64, flags: u64, now: &mut Option<u64>) {
        if slot.load(Relaxed) == 0 {
            let now = *now.get_or_insert_with(now_ns);
            let stamp = Self::stamp(now, flags);
            // Lost to another start: the interval began a little earlier, on that CPU.
            let _ = slot.compare_exchange(0, stamp, Relaxed, Relaxed);
        }
    }

    /// Ends the interval in `slot`, if one is in progress: its length in ns.
    #[inline]
    fn end(slot: &AtomicU64) -> Option<u64> {
        if slot.load(Relaxed) == 0 {
            return None;
        }
        let stamp = slot.swap(0, Relaxed);
        (stamp != 0).then(|| now_ns().saturating_sub(stamp >> FLAGS))
    }

    /// An IPI of `kind` is about to be sent to `target`.
    #[inline]
    pub(crate) fn ipi_sent(&self, kind: Kind, target: usize) {
        if self.enabled() {
            if let Some(slot) = self.slot(target, kind as usize) {
                Self::start(slot, 0);
            }
        }
    }

    /// A call-function IPI is about to be sent to `target`, one of a mask: `now` is the send's clock
    /// reading, taken once for the whole mask (see [`Self::start_at`]).
    #[inline]
    pub(crate) fn ipi_sent_many(&self, target: usize, now: &mut Option<u64>) {
        if let Some(slot) = self.slot(target, Kind::Cfm as usize) {
            Self::start_at(slot, 0, now);
        }
    }

    /// The handler of an IPI of `kind` starts on this CPU, `cpu`: counts it, and measures its delivery
    /// from the first send still pending.
    #[inline]
    pub(crate) fn ipi_received(&self, counters: &Counters, kind: Kind, cpu: usize) {
        counters.local(kind.received());
        self.ipi_delivered(counters, kind, cpu);
    }

    /// An IPI that delivers sends of `kind` starts its handler on `cpu`, counted under another kind
    /// (arm64's one call-function IPI delivers both call-function kinds): ends the interval of `kind`.
    #[inline]
    pub(crate) fn ipi_delivered(&self, counters: &Counters, kind: Kind, cpu: usize) {
        if self.enabled() {
            if let Some(ns) = self.slot(cpu, kind as usize).and_then(Self::end) {
                counters.record(kind.delivery(), ns);
            }
        }
    }

    /// CPU `this` asks CPU `target` to reschedule (`resched_curr`), a `request` of its kind; `marked`
    /// tells whether the target's current task is still marked from an earlier request.
    ///
    /// An interval in progress whose task is no longer marked was answered by a `__schedule()` that
    /// picked the same task again, which fires no `sched_switch`: it is dropped, and this request starts
    /// a new one. (A request so answered and followed by no other one still ends at the next switch.)
    /// A promotion (an immediate request while a lazy one is pending) marks the lazy interval in
    /// progress: the wait goes on from the lazy request.
    #[inline]
    pub(crate) fn resched_requested(
        &self,
        this: usize,
        target: usize,
        request: Request,
        marked: impl FnOnce() -> bool,
    ) {
        if !self.enabled() {
            return;
        }
        let Some(slot) = self.slot(target, RESCHED) else {
            return;
        };
        let flags = u64::from(this != target) | if request == Request::Lazy { LAZY } else { 0 };
        let old = slot.load(Relaxed);
        if old == 0 {
            Self::start(slot, flags);
        } else if request == Request::Promoted && old & LAZY != 0 {
            // Lost to the switch that ends it: the promotion came too late to matter.
            let _ = slot.compare_exchange(old, old | PROMOTED, Relaxed, Relaxed);
        } else if !marked() {
            let stamp = Self::stamp(now_ns(), flags);
            let _ = slot.compare_exchange(old, stamp, Relaxed, Relaxed);
        }
    }

    /// This CPU switches from `prev` to `next`, preempted (`preempt`) or not, `prev_state` its state
    /// when the switch began (the task blocks when it was not preempted and its state is not 0): ends
    /// the reschedule interval in progress for it, and counts how that switch went. The first handler
    /// of every switch: it starts the switch's clock reading afresh ([`Self::switch_now`]).
    #[inline]
    pub(crate) fn switched(
        &self,
        counters: &Counters,
        prev: &Task,
        next: &Task,
        preempt: bool,
        prev_state: u32,
    ) {
        self.switch.write(SWITCH_TO, 0);
        // Task structures are aligned to at least a cache line (`task_struct_cachep`, kernel/fork.c:
        // `max3(L1_CACHE_BYTES, ...)`; `init_task` is `__aligned(L1_CACHE_BYTES)`), so bit 0 is free.
        let runnable = preempt || prev_state == 0;
        self.switch
            .write(SWITCH_OUT, task_key(prev) | u64::from(runnable));
        if !self.enabled() {
            return;
        }
        let Some(slot) = self.slot(cpu::this_cpu(), RESCHED) else {
            return;
        };
        if slot.load(Relaxed) == 0 {
            return;
        }
        let stamp = slot.swap(0, Relaxed);
        if stamp == 0 {
            return;
        }
        let ns = self.switch_now(next).saturating_sub(stamp >> FLAGS);
        let hist = if stamp & LAZY != 0 {
            if stamp & PROMOTED != 0 {
                counters.local(Local::ReschedPromoted);
            }
            Hist::ReschedLazy
        } else if stamp & REMOTE != 0 {
            Hist::ReschedRemote
        } else {
            Hist::ReschedLocal
        };
        counters.record(hist, ns);
        counters.local(if !preempt && prev_state != 0 {
            Local::ReschedBlocked
        } else if prev.is_idle() {
            Local::ReschedIdle
        } else {
            Local::ReschedPreempted
        });
    }
}
