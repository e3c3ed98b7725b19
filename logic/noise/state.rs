// SPDX-License-Identifier: GPL-2.0

//! Each CPU's intervals in progress (the hard interrupt levels, the softirq, the queued call, the
//! kernel thread's turn), how each one ends in the window's counters, and the layout of the per-CPU
//! state they and the slots (`slots.rs`) live in.

use super::{
    Hard, NoiseCounters, BUCKETS, FUNC_SLOTS, HARD_SOURCES, IRQ_SLOTS, NAME_WORDS, SOFTIRQS,
    TASK_SLOTS, VECTORS, WORDS,
};
use crate::sys::cpu;
use crate::sys::percpu::{bytes_per_cpu, PerCpuBlock};
use crate::sys::task::{Task, TaskExt};
use crate::sys::time::{self, Cycles};
use crate::sys::tracepoint::IrqAction;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
use kernel::prelude::*;

// The words of each CPU's state (not per window): the intervals in progress and the slot keys.
/// Hard interrupt intervals in progress, one inside the other (a demultiplexing handler, vmd's or a
/// GPIO controller's, runs its child interrupts' handlers inside its own through
/// `generic_handle_irq()`); deeper ones are not timed.
pub(super) const LEVELS: usize = 4;
/// How many of the levels are in progress.
pub(super) const HARD_DEPTH: usize = 0;
/// The words of level `l`: the clock reading at its entry, its key (its index in the hard block,
/// and for a device interrupt `irq + 1` in the upper half), and [`HARD_TOTAL`] at its entry.
#[inline(always)]
pub(super) const fn level(l: usize) -> usize {
    1 + l * 3
}
pub(super) const L_START: usize = 0;
pub(super) const L_KEY: usize = 1;
pub(super) const L_TOTAL_AT: usize = 2;
/// In a level's key: a device interrupt's second or later handler (shared lines), whose time counts
/// but not as an interruption of its own (`/proc/interrupts` counts the line once).
pub(super) const SECONDARY: u64 = 1 << 31;
/// Clock reading at the entry of the softirq in progress (0: none).
pub(super) const SOFT_START: usize = level(LEVELS);
/// [`HARD_TOTAL`] at that entry.
pub(super) const SOFT_HARD_AT: usize = SOFT_START + 1;
/// Clock reading at the entry of the queued function in progress (0: none).
pub(super) const FUNC_START: usize = SOFT_START + 2;
/// Its address.
pub(super) const FUNC_KEY: usize = SOFT_START + 3;
/// Its slot.
pub(super) const FUNC_SLOT: usize = SOFT_START + 4;
/// Nanoseconds of hard interrupt handlers measured on this CPU since the load, each counted once (a
/// level's own time leaves out the levels inside it).
pub(super) const HARD_TOTAL: usize = SOFT_START + 5;
/// Nanoseconds of softirqs measured on this CPU since the load (their own time).
pub(super) const SOFT_TOTAL: usize = SOFT_START + 6;
/// Clock reading at the switch to the kernel thread running on this CPU (0: none).
pub(super) const TASK_START: usize = SOFT_START + 7;
/// Its `pid + 1`.
pub(super) const TASK_PID: usize = SOFT_START + 8;
/// Its slot.
pub(super) const TASK_SLOT: usize = SOFT_START + 9;
/// [`HARD_TOTAL`] + [`SOFT_TOTAL`] at that switch.
pub(super) const TASK_TAKEN_AT: usize = SOFT_START + 10;
/// The vector of the softirq in progress.
pub(super) const SOFT_VEC: usize = SOFT_START + 11;
/// `irq + 1` of each device interrupt slot (0: free; with [`HIDDEN`]: an interrupt not followed).
pub(super) const IRQ_KEYS: usize = SOFT_START + 12;
/// In a slot's key: the interrupt is hidden from `/proc/interrupts`' numbered lines (arm64's IPIs,
/// followed as IPIs through `ipi_entry`), so its handlers are not timed as a device's.
pub(super) const HIDDEN: u64 = 1 << 63;
/// The address of the handler whose runs count as each slot's interruptions on this CPU (its first;
/// on a per-CPU line the one this CPU runs), as last looked up.
pub(super) const IRQ_FIRST: usize = IRQ_KEYS + IRQ_SLOTS;
/// The name of each slot's interrupt, [`NAME_WORDS`] words each.
pub(super) const IRQ_NAMES: usize = IRQ_FIRST + IRQ_SLOTS;
/// The address of each function slot's function (0: free).
pub(super) const FUNC_KEYS: usize = IRQ_NAMES + IRQ_SLOTS * NAME_WORDS;
/// The name of each kernel thread slot's tasks, its key, [`TASK_NAME_WORDS`] words each (first word
/// 0: free). By name, not pid: kworkers come and go, and a new one takes a gone one's name.
pub(super) const TASK_NAMES: usize = FUNC_KEYS + FUNC_SLOTS;
pub(super) const TASK_NAME_WORDS: usize = 2;
pub(super) const STATE: usize = TASK_NAMES + TASK_SLOTS * TASK_NAME_WORDS;

/// Whether softirqs are timed: not on PREEMPT_RT, where they run in preemptible tasks (several per
/// CPU may be in progress, one preempting another), so that one interval per CPU cannot follow
/// them; there they are counted at their entry, as `/proc/softirqs` counts them.
pub(crate) const TIMED_SOFTIRQS: bool = !cfg!(CONFIG_PREEMPT_RT);

/// Each CPU's intervals in progress and slot keys, and whether the IPI entries start intervals.
pub(crate) struct Noise {
    pub(super) state: PerCpuBlock<STATE>,
    /// The module's clock read raw, which the hard interrupts', softirqs' and queued calls' intervals
    /// are timed with: they begin and end on one CPU. (Kernel threads' turns take its nanoseconds: a
    /// turn across a reset counts from the window's start.)
    clock: Cycles,
    /// `noise_enable`: whether the interruption probes are registered, so that the IPIs' entries
    /// (shared with `received`) start intervals.
    on: AtomicBool,
}

impl Noise {
    /// Nothing in progress, every slot free, on.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            state: PerCpuBlock::new()?,
            clock: Cycles::new(),
            on: AtomicBool::new(true),
        })
    }

    /// Whether the interruption probes are on.
    #[inline]
    pub(crate) fn on(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// Lets the IPIs' entries start intervals (`on`) or not.
    pub(crate) fn set_on(&self, on: bool) {
        self.on.store(on, Relaxed);
    }

    /// Forgets the intervals in progress on every CPU (the slots stay). Only while no handler
    /// writes them: the interruption probes unregistered and [`Self::on`] false.
    pub(crate) fn forget(&self) {
        for cpu in 0..cpu::nr_cpu_ids() {
            for word in [HARD_DEPTH, SOFT_START, FUNC_START, TASK_START] {
                self.state.write_on(cpu, word, 0);
            }
        }
    }

    /// Bytes of per-cpu memory the state takes on each CPU.
    pub(crate) fn bytes_per_cpu() -> usize {
        bytes_per_cpu(STATE)
    }

    /// The handler of vector `hard` starts on this CPU (nothing while the group is off: the IPIs'
    /// entries are `received`'s probes, always registered).
    #[inline]
    pub(crate) fn vector_entry(&self, hard: Hard) {
        if self.on() {
            self.hard_entry(hard as u64);
        }
    }

    /// The handler of vector `hard` returns on this CPU: its interval ends in `counters`.
    #[inline]
    pub(crate) fn vector_exit(&self, counters: &NoiseCounters, hard: Hard) {
        self.hard_exit(counters, |key| key == hard as u64);
    }

    /// Handler `action` of device interrupt `irq` starts on this CPU (nothing for a hidden one).
    #[inline]
    pub(crate) fn irq_entry(&self, irq: u32, action: &IrqAction<'_>) {
        if let Some((slot, first)) = self.irq_slot(irq, action) {
            let secondary = if first { 0 } else { SECONDARY };
            self.hard_entry(((u64::from(irq) + 1) << 32) | secondary | (VECTORS + slot) as u64);
        }
    }

    /// A handler of device interrupt `irq` returns on this CPU: its interval ends in `counters`.
    #[inline]
    pub(crate) fn irq_exit(&self, counters: &NoiseCounters, irq: u32) {
        self.hard_exit(counters, |key| key >> 32 == u64::from(irq) + 1);
    }

    /// Starts a hard interrupt interval of `key`, inside those in progress.
    #[inline(always)]
    fn hard_entry(&self, key: u64) {
        let mut depth = self.state.read(HARD_DEPTH) as usize;
        // A vector's handler never runs inside another hard interval (every one of them runs with
        // interrupts off; arm64's IPIs run inside their hidden line's handler, which has no level):
        // levels under a vector's entry are ones whose exits were not seen (their probes registered
        // after their entries'), dropped. A device handler may run inside any other (a timer or
        // irq_work callback, or a demultiplexing handler, calling `generic_handle_irq()`).
        if key >> 32 == 0 {
            depth = 0;
        }
        if depth >= LEVELS {
            return;
        }
        let at = level(depth);
        self.state.write(at + L_KEY, key);
        self.state
            .write(at + L_TOTAL_AT, self.state.read(HARD_TOTAL));
        self.state.write(HARD_DEPTH, depth as u64 + 1);
        self.state.write(at + L_START, self.clock.now());
    }

    /// Ends the innermost hard interrupt interval whose key `is` (and drops those inside it, whose
    /// exits were not seen); nothing if none is in progress. Its own time, without the intervals
    /// inside it, is recorded in `counters`.
    #[inline(always)]
    fn hard_exit(&self, counters: &NoiseCounters, is: impl Fn(u64) -> bool) {
        let depth = (self.state.read(HARD_DEPTH) as usize).min(LEVELS);
        for l in (0..depth).rev() {
            let at = level(l);
            let key = self.state.read(at + L_KEY);
            if !is(key) {
                continue;
            }
            self.state.write(HARD_DEPTH, l as u64);
            let counts = self
                .clock
                .now()
                .saturating_sub(self.state.read(at + L_START));
            let ns = self.clock.ns(counts);
            let total = self.state.read(HARD_TOTAL);
            let inside = total.wrapping_sub(self.state.read(at + L_TOTAL_AT));
            let own = ns.saturating_sub(inside);
            self.state.write(HARD_TOTAL, total.wrapping_add(own));
            let at = ((key & 0xffff) as usize % HARD_SOURCES) * WORDS;
            if key & SECONDARY == 0 {
                NoiseCounters::record(&counters.hard, at, own);
            } else {
                counters.hard.add(at + BUCKETS, own);
            }
            return;
        }
    }

    /// Softirq `vec` starts on this CPU, where it is not timed ([`TIMED_SOFTIRQS`]): counted now.
    #[inline]
    pub(crate) fn softirq_count(&self, counters: &NoiseCounters, vec: usize) {
        if vec < SOFTIRQS {
            counters.soft.inc(vec * WORDS);
        }
    }

    /// A softirq starts on this CPU (softirq context: no other softirq starts here before it returns,
    /// [`TIMED_SOFTIRQS`]).
    #[inline]
    pub(crate) fn softirq_entry(&self, vec: usize) {
        let (now, hard) = self.clock_and_hard();
        self.state.write(SOFT_VEC, vec as u64);
        self.state.write(SOFT_HARD_AT, hard);
        self.state.write(SOFT_START, now);
    }

    /// The clock and [`HARD_TOTAL`] read together, with interrupts on: read again until no hard
    /// interrupt ended between the two (one that did would count as inside an interval it is not in).
    #[inline(always)]
    fn clock_and_hard(&self) -> (u64, u64) {
        loop {
            let hard = self.state.read(HARD_TOTAL);
            let now = self.clock.now();
            if self.state.read(HARD_TOTAL) == hard {
                return (now, hard);
            }
        }
    }

    /// Softirq `vec` returns on this CPU: its time, less the hard interrupts' in it, ends in `counters`.
    #[inline]
    pub(crate) fn softirq_exit(&self, counters: &NoiseCounters, vec: usize) {
        let start = self.state.read(SOFT_START);
        if start == 0 || vec >= SOFTIRQS {
            return;
        }
        self.state.write(SOFT_START, 0);
        if self.state.read(SOFT_VEC) != vec as u64 {
            return;
        }
        let (now, hard) = self.clock_and_hard();
        let all = self.clock.ns(now.saturating_sub(start));
        let hard = hard.wrapping_sub(self.state.read(SOFT_HARD_AT));
        let own = all.saturating_sub(hard);
        self.state.add(SOFT_TOTAL, own);
        NoiseCounters::record(&counters.soft, vec * WORDS, own);
    }

    /// Queued function `func` starts on this CPU (interrupts off).
    #[inline]
    pub(crate) fn func_entry(&self, func: usize) {
        // The last function's slot is still its own (slots are never given back).
        if self.state.read(FUNC_KEY) != func as u64 {
            let slot = self.func_slot(func);
            self.state.write(FUNC_KEY, func as u64);
            self.state.write(FUNC_SLOT, slot as u64);
        }
        self.state.write(FUNC_START, self.clock.now());
    }

    /// Queued function `func` returns on this CPU: its interval ends in `counters`.
    #[inline]
    pub(crate) fn func_exit(&self, counters: &NoiseCounters, func: usize) {
        let start = self.state.read(FUNC_START);
        if start == 0 || self.state.read(FUNC_KEY) != func as u64 {
            return;
        }
        self.state.write(FUNC_START, 0);
        let ns = self.clock.ns(self.clock.now().saturating_sub(start));
        let slot = (self.state.read(FUNC_SLOT) as usize).min(FUNC_SLOTS);
        NoiseCounters::record(&counters.soft, (SOFTIRQS + slot) * WORDS, ns);
    }

    /// This CPU switches from `prev` to `next` (`sched_switch`: interrupts off, the runqueue locked):
    /// the kernel thread running since the last switch, if any, ends its turn; a kernel thread
    /// switched in starts one. Nothing else for switches between other tasks (a load and a test).
    #[inline]
    pub(crate) fn switched(&self, counters: &NoiseCounters, since: u64, prev: &Task, next: &Task) {
        if self.state.read(TASK_START) != 0 {
            self.task_out(counters, since, prev);
        }
        if next.is_kthread() {
            self.task_in(next);
        }
    }

    /// The kernel thread `prev` leaves the CPU: its turn's time since the turn or `since` (the
    /// window's start: a turn across a reset counts from it), less the interruptions measured in the
    /// turn, ends in `counters` (nothing if the turn in progress was another task's: a switch not
    /// seen).
    fn task_out(&self, counters: &NoiseCounters, since: u64, prev: &Task) {
        let start = self.state.read(TASK_START).max(since);
        self.state.write(TASK_START, 0);
        if self.state.read(TASK_PID) != pid_key(prev) {
            return;
        }
        let ns = time::now_ns().saturating_sub(start);
        let taken = self.taken();
        let own = ns.saturating_sub(taken.wrapping_sub(self.state.read(TASK_TAKEN_AT)));
        let slot = (self.state.read(TASK_SLOT) as usize).min(TASK_SLOTS);
        NoiseCounters::record(&counters.tasks, slot * WORDS, own);
    }

    /// The kernel thread `next` comes on the CPU: its turn starts.
    fn task_in(&self, next: &Task) {
        let slot = self.task_slot(next);
        self.state.write(TASK_PID, pid_key(next));
        self.state.write(TASK_SLOT, slot as u64);
        self.state.write(TASK_TAKEN_AT, self.taken());
        self.state.write(TASK_START, time::now_ns());
    }

    /// The time of hard interrupts and softirqs measured on this CPU since the load.
    fn taken(&self) -> u64 {
        self.state
            .read(HARD_TOTAL)
            .wrapping_add(self.state.read(SOFT_TOTAL))
    }
}

/// The slot key of task `task`: its pid + 1 (never 0).
fn pid_key(task: &Task) -> u64 {
    u64::from(task.tid() as u32) + 1
}
