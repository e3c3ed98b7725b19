// SPDX-License-Identifier: GPL-2.0

//! What interrupts each CPU, and for how long: the handlers of device interrupts, of the x86 system
//! vectors (the local timer, the IPIs, irq_work), the softirqs and the cross-CPU calls queued for the
//! CPU, each a *source* with its count and a log2 histogram of the time it took, per CPU and window.
//!
//! Each source is timed from its entry tracepoint to its exit tracepoint on the interrupted CPU, one
//! clock reading at each end. Hard interrupt handlers run with interrupts off: device handlers between
//! `irq_handler_entry` and `irq_handler_exit` in `__handle_irq_event_percpu()` (kernel/irq/handle.c:157-159
//! in 6.12, 201-212 in 7.3, which warns right after if a handler turned interrupts on) and the per-CPU
//! flow handlers (kernel/irq/chip.c); x86's system vectors between their `irq_vectors` entry and exit
//! (arch/x86/kernel/smp.c, irq_work.c, apic/apic.c), in the `DEFINE_IDTENTRY_SYSVEC` bodies that run
//! with interrupts off. They nest only where a device handler runs other interrupts' handlers inside
//! its own (`generic_handle_irq()` from a demultiplexing handler: vmd, GPIO controllers), so each CPU
//! keeps a short stack of intervals in progress, and a handler's time leaves out the handlers inside
//! it. The irq tracepoints also fire in NMI flow handlers (`handle_fasteoi_nmi()`); those calls are left
//! out by the trampolines. A shared line runs each of its handlers in turn: each one's time counts, the
//! line's interruption once (at its first handler, as `/proc/interrupts` counts it; an edge replayed
//! while the line was busy on another CPU counts again here, and nested threaded handlers, which fire no
//! tracepoint, not at all). Lines hidden from
//! `/proc/interrupts` (arm64's IPIs, which pass `irq_handler_entry` too) are left to the IPI
//! tracepoints.
//!
//! Queued calls run between `csd_function_entry` and `csd_function_exit` (`csd_do_func()`,
//! kernel/smp.c:130-136 in 6.12, 139-145 in 7.3), always with interrupts off (its callers: the
//! call-function IPIs, and `flush_smp_call_function_queue()` and the local calls under
//! `local_irq_save()`), so they do not nest. Softirqs run between `softirq_entry` and `softirq_exit` in
//! `handle_softirqs()` (kernel/softirq.c:578-580 in 6.12, 644-646 in 7.3) with interrupts on, one at a
//! time per CPU (softirq context is not preemptible); hard interrupts may come in between, and a
//! softirq's time leaves out the hard interrupt time spent inside it (each CPU keeps the total hard
//! interrupt time it measured, read at the softirq's entry and exit), so that the sources' times add up
//! to the time taken from the CPU without counting any twice. On PREEMPT_RT softirqs run in preemptible
//! tasks, several may be in progress on a CPU, and they are counted, not timed ([`TIMED_SOFTIRQS`]);
//! device handlers there are mostly threaded, and only their hard interrupt part is timed. Queued calls
//! run inside the call-function IPI (or from the idle loop, with interrupts off): their time is a
//! breakdown of CAL's, not added to it.
//!
//! Beside the interruptions, each CPU's kernel threads (kworkers, ksoftirqd, migration, the threaded
//! interrupt handlers of PREEMPT_RT) are timed from the `sched_switch` that puts them on the CPU to
//! the one that takes them off (with interrupts off and the runqueue locked), less the interruptions
//! measured meanwhile: a task's turn, not an interruption, so shown beside the sources and not added
//! to the time they took. User tasks are not followed here (attach them).
//!
//! Device interrupts, queued functions and kernel threads are keyed per CPU in small tables fixed at load, a slot
//! claimed at a key's first sight on that CPU and kept (so a slot's counters keep their meaning across
//! resets); keys beyond them count in one `other` source each, never lost. Only the interrupted CPU
//! writes its state and its counters, in the context of the interruption.

use crate::logic::histogram::Histogram;
use crate::sys::cpu;
use crate::sys::percpu::{bytes_per_cpu, BlockView, PerCpuBlock};
use crate::sys::task::{Task, TaskExt, COMM_LEN};
use crate::sys::time;
use crate::sys::tracepoint::{counted_action, IrqAction};
use core::sync::atomic::{
    fence, AtomicBool, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use kernel::prelude::*;

/// Buckets of a source's histogram: `[0]`, `[1]`, then powers of two up to `[1G, ...)` (the last takes
/// everything above).
pub(crate) const BUCKETS: usize = 32;
/// Counters per source: the buckets, then the sum, the largest value and the complement of the
/// smallest (as [`crate::logic::histogram`]).
const WORDS: usize = BUCKETS + 3;

/// Device interrupts counted apart per CPU; the others count as one `other` source.
pub(crate) const IRQ_SLOTS: usize = 16;
/// Queued functions counted apart per CPU; the others count as one `other` source.
pub(crate) const FUNC_SLOTS: usize = 16;
/// Kernel threads counted apart per CPU; the others count as one `other` source.
pub(crate) const TASK_SLOTS: usize = 8;
/// Softirq vectors (`NR_SOFTIRQS`, the same in 6.12 and 7.3).
pub(crate) const SOFTIRQS: usize = 10;
/// Softirq names, as `/proc/softirqs` shows them.
pub(crate) const SOFTIRQ_NAMES: [&str; SOFTIRQS] = [
    "HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER", "RCU",
];
/// Bytes of a device interrupt's name kept (with its NUL).
const NAME_BYTES: usize = 24;
const NAME_WORDS: usize = NAME_BYTES / 8;

/// The system vectors followed (x86; arm64's IPIs as far as they are the same).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hard {
    /// The local timer interrupt (x86 `LOC`; arm64's timer is a device interrupt, `arch_timer`).
    Timer = 0,
    /// The reschedule IPI (`RES`).
    Res = 1,
    /// The call-function IPIs, single and many (`CAL`).
    Cal = 2,
    /// The irq_work self-IPI (`IWI`).
    IrqWork = 3,
}

const VECTORS: usize = 4;

impl Hard {
    /// Every vector, in display order.
    pub(crate) const ALL: [Hard; VECTORS] = [Hard::Timer, Hard::Res, Hard::Cal, Hard::IrqWork];

    /// The `/proc/interrupts` name of the vector.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Hard::Timer => "LOC",
            Hard::Res => "RES",
            Hard::Cal => "CAL",
            Hard::IrqWork => "IWI",
        }
    }

    /// What the vector is, as `/proc/interrupts` says.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Hard::Timer => "Local timer interrupts",
            Hard::Res => "Rescheduling interrupts",
            Hard::Cal => "Function call interrupts",
            Hard::IrqWork => "IRQ work interrupts",
        }
    }
}

/// Sources of the hard block: the vectors, then the device interrupt slots and their `other`.
const HARD_SOURCES: usize = VECTORS + IRQ_SLOTS + 1;
/// Sources of the soft block: the softirqs, then the function slots and their `other`.
const SOFT_SOURCES: usize = SOFTIRQS + FUNC_SLOTS + 1;
/// Sources of the task block: the kernel thread slots and their `other`.
const TASK_SOURCES: usize = TASK_SLOTS + 1;
/// Every source.
const SOURCES: usize = HARD_SOURCES + SOFT_SOURCES + TASK_SOURCES;
const HARD_LEN: usize = HARD_SOURCES * WORDS;
const SOFT_LEN: usize = SOFT_SOURCES * WORDS;
const TASK_LEN: usize = TASK_SOURCES * WORDS;

/// A source of interruptions, as the files show it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A system vector.
    Vector(Hard),
    /// Device interrupt slot `n` (`IRQ_SLOTS`: the others).
    Irq(usize),
    /// Softirq `n`.
    Softirq(usize),
    /// Function slot `n` (`FUNC_SLOTS`: the others).
    Func(usize),
    /// Kernel thread slot `n` (`TASK_SLOTS`: the others).
    Task(usize),
}

impl Source {
    /// Every source: vectors, device interrupts, softirqs, functions.
    pub(crate) fn all() -> [Source; SOURCES] {
        core::array::from_fn(|i| match i {
            i if i < VECTORS => Source::Vector(Hard::ALL[i]),
            i if i < HARD_SOURCES => Source::Irq(i - VECTORS),
            i if i < HARD_SOURCES + SOFTIRQS => Source::Softirq(i - HARD_SOURCES),
            i if i < HARD_SOURCES + SOFT_SOURCES => Source::Func(i - HARD_SOURCES - SOFTIRQS),
            i => Source::Task(i - HARD_SOURCES - SOFT_SOURCES),
        })
    }

    /// Whether the source's time is part of the time taken from the CPU by interruptions (a
    /// function's is part of CAL's, or of the idle loop's; a kernel thread's is a task's turn on the
    /// CPU, shown beside them).
    pub(crate) fn stolen(self) -> bool {
        !matches!(self, Source::Func(_) | Source::Task(_))
    }
}

/// One window's counters of every source on every CPU.
pub(crate) struct NoiseCounters {
    hard: PerCpuBlock<HARD_LEN>,
    soft: PerCpuBlock<SOFT_LEN>,
    tasks: PerCpuBlock<TASK_LEN>,
}

impl NoiseCounters {
    /// Zeroed counters.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            hard: PerCpuBlock::new()?,
            soft: PerCpuBlock::new()?,
            tasks: PerCpuBlock::new()?,
        })
    }

    /// Bytes of per-cpu memory the counters take on each CPU.
    pub(crate) fn bytes_per_cpu() -> usize {
        bytes_per_cpu(HARD_LEN) + bytes_per_cpu(SOFT_LEN) + bytes_per_cpu(TASK_LEN)
    }

    /// Adds `ns` to the histogram at `at` of `block`, on this CPU.
    #[inline(always)]
    fn record<const N: usize>(block: &PerCpuBlock<N>, at: usize, ns: u64) {
        let bucket = (64 - ns.leading_zeros() as usize).min(BUCKETS - 1);
        block.inc(at + bucket);
        block.add(at + BUCKETS, ns);
        block.raise(at + BUCKETS + 1, ns);
        block.raise(at + BUCKETS + 2, !ns);
    }

    /// Zeroes every counter. Only for a window that no handler counts into any more.
    pub(crate) fn zero(&self) {
        self.hard.zero();
        self.soft.zero();
        self.tasks.zero();
    }

    /// CPU `cpu`'s counters, read in place.
    pub(crate) fn reading(&self, cpu: usize) -> NoiseReading<'_> {
        NoiseReading {
            hard: self.hard.cpu_view(cpu),
            soft: self.soft.cpu_view(cpu),
            tasks: self.tasks.cpu_view(cpu),
        }
    }
}

/// One CPU's counters of a window, read in place.
pub(crate) struct NoiseReading<'a> {
    hard: BlockView<'a, HARD_LEN>,
    soft: BlockView<'a, SOFT_LEN>,
    tasks: BlockView<'a, TASK_LEN>,
}

impl NoiseReading<'_> {
    /// The histogram of `source`'s times on this CPU.
    pub(crate) fn hist(&self, source: Source) -> Histogram {
        match source {
            Source::Vector(v) => hist_at(&self.hard, v as usize),
            Source::Irq(slot) => hist_at(&self.hard, VECTORS + slot.min(IRQ_SLOTS)),
            Source::Softirq(v) => hist_at(&self.soft, v.min(SOFTIRQS - 1)),
            Source::Func(slot) => hist_at(&self.soft, SOFTIRQS + slot.min(FUNC_SLOTS)),
            Source::Task(slot) => hist_at(&self.tasks, slot.min(TASK_SLOTS)),
        }
    }
}

/// The histogram of source `at` of a block.
fn hist_at<const N: usize>(view: &BlockView<'_, N>, at: usize) -> Histogram {
    let at = at * WORDS;
    Histogram::from_words_of(BUCKETS, |w| view.get(at + w))
}

// The words of each CPU's state (not per window): the intervals in progress and the slot keys.
/// Hard interrupt intervals in progress, one inside the other (a demultiplexing handler, vmd's or a
/// GPIO controller's, runs its child interrupts' handlers inside its own through
/// `generic_handle_irq()`); deeper ones are not timed.
const LEVELS: usize = 4;
/// How many of the levels are in progress.
const HARD_DEPTH: usize = 0;
/// The words of level `l`: the clock reading at its entry, its key (its index in the hard block,
/// and for a device interrupt `irq + 1` in the upper half), and [`HARD_TOTAL`] at its entry.
const fn level(l: usize) -> usize {
    1 + l * 3
}
const L_START: usize = 0;
const L_KEY: usize = 1;
const L_TOTAL_AT: usize = 2;
/// In a level's key: a device interrupt's second or later handler (shared lines), whose time counts
/// but not as an interruption of its own (`/proc/interrupts` counts the line once).
const SECONDARY: u64 = 1 << 31;
/// Clock reading at the entry of the softirq in progress (0: none).
const SOFT_START: usize = level(LEVELS);
/// [`HARD_TOTAL`] at that entry.
const SOFT_HARD_AT: usize = SOFT_START + 1;
/// Clock reading at the entry of the queued function in progress (0: none).
const FUNC_START: usize = SOFT_START + 2;
/// Its address.
const FUNC_KEY: usize = SOFT_START + 3;
/// Its slot.
const FUNC_SLOT: usize = SOFT_START + 4;
/// Nanoseconds of hard interrupt handlers measured on this CPU since the load, each counted once (a
/// level's own time leaves out the levels inside it).
const HARD_TOTAL: usize = SOFT_START + 5;
/// Nanoseconds of softirqs measured on this CPU since the load (their own time).
const SOFT_TOTAL: usize = SOFT_START + 6;
/// Clock reading at the switch to the kernel thread running on this CPU (0: none).
const TASK_START: usize = SOFT_START + 7;
/// Its `pid + 1`.
const TASK_PID: usize = SOFT_START + 8;
/// Its slot.
const TASK_SLOT: usize = SOFT_START + 9;
/// [`HARD_TOTAL`] + [`SOFT_TOTAL`] at that switch.
const TASK_TAKEN_AT: usize = SOFT_START + 10;
/// The vector of the softirq in progress.
const SOFT_VEC: usize = SOFT_START + 11;
/// `irq + 1` of each device interrupt slot (0: free; with [`HIDDEN`]: an interrupt not followed).
const IRQ_KEYS: usize = SOFT_START + 12;
/// In a slot's key: the interrupt is hidden from `/proc/interrupts`' numbered lines (arm64's IPIs,
/// followed as IPIs through `ipi_entry`), so its handlers are not timed as a device's.
const HIDDEN: u64 = 1 << 63;
/// The address of the handler whose runs count as each slot's interruptions on this CPU (its first;
/// on a per-CPU line the one this CPU runs), as last looked up.
const IRQ_FIRST: usize = IRQ_KEYS + IRQ_SLOTS;
/// The name of each slot's interrupt, [`NAME_WORDS`] words each.
const IRQ_NAMES: usize = IRQ_FIRST + IRQ_SLOTS;
/// The address of each function slot's function (0: free).
const FUNC_KEYS: usize = IRQ_NAMES + IRQ_SLOTS * NAME_WORDS;
/// The name of each kernel thread slot's tasks, its key, [`TASK_NAME_WORDS`] words each (first word
/// 0: free). By name, not pid: kworkers come and go, and a new one takes a gone one's name.
const TASK_NAMES: usize = FUNC_KEYS + FUNC_SLOTS;
const TASK_NAME_WORDS: usize = 2;
const STATE: usize = TASK_NAMES + TASK_SLOTS * TASK_NAME_WORDS;

/// Whether softirqs are timed: not on PREEMPT_RT, where they run in preemptible tasks (several per
/// CPU may be in progress, one preempting another), so that one interval per CPU cannot follow
/// them; there they are counted at their entry, as `/proc/softirqs` counts them.
pub(crate) const TIMED_SOFTIRQS: bool = !cfg!(CONFIG_PREEMPT_RT);

/// Each CPU's intervals in progress and slot keys, and whether the IPI entries start intervals.
pub(crate) struct Noise {
    state: PerCpuBlock<STATE>,
    /// `noise_enable`: whether the interruption probes are registered, so that the IPIs' entries
    /// (shared with `received`) start intervals.
    on: AtomicBool,
}

impl Noise {
    /// Nothing in progress, every slot free, on.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            state: PerCpuBlock::new()?,
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
        self.state.write(at + L_START, time::now_ns());
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
            let ns = time::now_ns().saturating_sub(self.state.read(at + L_START));
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

    /// The slot of device interrupt `irq` on this CPU ([`IRQ_SLOTS`] when every slot is another
    /// interrupt's), claimed (and its name kept) at its first sight here, and whether `action` is
    /// its first handler; `None` for an interrupt not followed (hidden). Interrupts off: no other
    /// writer.
    #[inline]
    fn irq_slot(&self, irq: u32, action: &IrqAction<'_>) -> Option<(usize, bool)> {
        let key = u64::from(irq) + 1;
        let home = irq as usize % IRQ_SLOTS;
        for i in 0..IRQ_SLOTS {
            let slot = (home + i) % IRQ_SLOTS;
            match self.state.read(IRQ_KEYS + slot) {
                k if k == key => {
                    let first = self.state.read(IRQ_FIRST + slot) == action.addr() as u64
                        || self.first_changed(slot, irq, action);
                    return Some((slot, first));
                }
                k if k == key | HIDDEN => return None,
                0 => return self.claim_irq(slot, irq, action),
                _ => {}
            }
        }
        let (counted, hidden) = counted_action(irq, action);
        (!hidden).then_some((IRQ_SLOTS, counted == action.addr()))
    }

    /// Whether `action`'s runs count as `irq`'s interruptions, looked up (a shared line's second
    /// handler, or a line whose handlers changed), the answer kept for `slot`.
    #[cold]
    fn first_changed(&self, slot: usize, irq: u32, action: &IrqAction<'_>) -> bool {
        let (counted, _) = counted_action(irq, action);
        self.state.write(IRQ_FIRST + slot, counted as u64);
        counted == action.addr()
    }

    /// Claims `slot` for `irq`: marks it hidden, or keeps its first handler and `action`'s name (cut
    /// to fit) before publishing the key.
    #[cold]
    fn claim_irq(&self, slot: usize, irq: u32, action: &IrqAction<'_>) -> Option<(usize, bool)> {
        let key = u64::from(irq) + 1;
        let (first, hidden) = counted_action(irq, action);
        if hidden {
            self.state.write(IRQ_KEYS + slot, key | HIDDEN);
            return None;
        }
        let name = action.name();
        let mut bytes = [0u8; NAME_BYTES];
        let n = name.len().min(NAME_BYTES - 1);
        bytes[..n].copy_from_slice(&name[..n]);
        for (w, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let at = IRQ_NAMES + slot * NAME_WORDS + w;
            self.state.write(at, u64::from_ne_bytes(word));
        }
        self.state.write(IRQ_FIRST + slot, first as u64);
        // Readers on other CPUs read the key, then the name (`Keys::irq`).
        fence(Release);
        self.state.write(IRQ_KEYS + slot, key);
        Some((slot, first == action.addr()))
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
            let now = time::now_ns();
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
        let all = now.saturating_sub(start);
        let hard = hard.wrapping_sub(self.state.read(SOFT_HARD_AT));
        let own = all.saturating_sub(hard);
        self.state.add(SOFT_TOTAL, own);
        NoiseCounters::record(&counters.soft, vec * WORDS, own);
    }

    /// Queued function `func` starts on this CPU (interrupts off).
    #[inline]
    pub(crate) fn func_entry(&self, func: usize) {
        let slot = self.func_slot(func);
        self.state.write(FUNC_KEY, func as u64);
        self.state.write(FUNC_SLOT, slot as u64);
        self.state.write(FUNC_START, time::now_ns());
    }

    /// Queued function `func` returns on this CPU: its interval ends in `counters`.
    #[inline]
    pub(crate) fn func_exit(&self, counters: &NoiseCounters, func: usize) {
        let start = self.state.read(FUNC_START);
        if start == 0 || self.state.read(FUNC_KEY) != func as u64 {
            return;
        }
        self.state.write(FUNC_START, 0);
        let ns = time::now_ns().saturating_sub(start);
        let slot = (self.state.read(FUNC_SLOT) as usize).min(FUNC_SLOTS);
        NoiseCounters::record(&counters.soft, (SOFTIRQS + slot) * WORDS, ns);
    }

    /// The slot of `func` on this CPU, claimed at its first sight here; [`FUNC_SLOTS`] when every slot
    /// is another function's. Interrupts off: no other writer.
    #[inline]
    fn func_slot(&self, func: usize) -> usize {
        let key = func as u64;
        let home = ((key >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize % FUNC_SLOTS;
        for i in 0..FUNC_SLOTS {
            let slot = (home + i) % FUNC_SLOTS;
            match self.state.read(FUNC_KEYS + slot) {
                k if k == key => return slot,
                0 => {
                    self.state.write(FUNC_KEYS + slot, key);
                    return slot;
                }
                _ => {}
            }
        }
        FUNC_SLOTS
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

    /// The slot of kernel thread `task`'s name on this CPU, claimed at the name's first turn here;
    /// [`TASK_SLOTS`] when every slot is another name's. Interrupts off: no other writer.
    fn task_slot(&self, task: &Task) -> usize {
        let name = task.comm_words();
        let home = (name[0] ^ name[1]).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 61;
        for i in 0..TASK_SLOTS {
            let slot = (home as usize + i) % TASK_SLOTS;
            let at = TASK_NAMES + slot * TASK_NAME_WORDS;
            match self.state.read(at) {
                0 if name[0] != 0 => {
                    // Readers on other CPUs read the first word, then the second (`Keys::task`).
                    self.state.write(at + 1, name[1]);
                    fence(Release);
                    self.state.write(at, name[0]);
                    return slot;
                }
                w if w == name[0] && self.state.read(at + 1) == name[1] => return slot,
                _ => {}
            }
        }
        TASK_SLOTS
    }

    /// CPU `cpu`'s slot keys, read in place.
    pub(crate) fn keys(&self, cpu: usize) -> Keys<'_> {
        Keys(self.state.cpu_view(cpu))
    }
}

/// The slot key of task `task`: its pid + 1 (never 0).
fn pid_key(task: &Task) -> u64 {
    u64::from(task.tid() as u32) + 1
}

/// One CPU's slot keys.
pub(crate) struct Keys<'a>(BlockView<'a, STATE>);

impl Keys<'_> {
    /// The device interrupt of `slot` (`None`: free, or the `other` slot).
    pub(crate) fn irq(&self, slot: usize) -> Option<u32> {
        if slot >= IRQ_SLOTS {
            return None;
        }
        let key = self.0.get(IRQ_KEYS + slot);
        // The name was written before the key (`Noise::claim_irq`).
        fence(Acquire);
        match key {
            0 => None,
            k if k & HIDDEN != 0 => None,
            k => Some((k - 1) as u32),
        }
    }

    /// The name kept for the device interrupt of `slot`.
    pub(crate) fn irq_name(&self, slot: usize) -> [u8; NAME_BYTES] {
        let mut bytes = [0u8; NAME_BYTES];
        if slot < IRQ_SLOTS {
            for (w, chunk) in bytes.chunks_exact_mut(8).enumerate() {
                let word = self.0.get(IRQ_NAMES + slot * NAME_WORDS + w);
                chunk.copy_from_slice(&word.to_ne_bytes());
            }
        }
        bytes
    }

    /// The name of the kernel threads of `slot` (`None`: free, or the `other` slot).
    pub(crate) fn task(&self, slot: usize) -> Option<[u8; COMM_LEN]> {
        if slot >= TASK_SLOTS {
            return None;
        }
        let at = TASK_NAMES + slot * TASK_NAME_WORDS;
        let first = self.0.get(at);
        // The second word was written before the first (`Noise::task_slot`).
        fence(Acquire);
        if first == 0 {
            return None;
        }
        let mut name = [0u8; COMM_LEN];
        name[..8].copy_from_slice(&first.to_ne_bytes());
        name[8..].copy_from_slice(&self.0.get(at + 1).to_ne_bytes());
        Some(name)
    }

    /// The function of `slot` (0: free, or the `other` slot).
    pub(crate) fn func(&self, slot: usize) -> usize {
        if slot >= FUNC_SLOTS {
            return 0;
        }
        self.0.get(FUNC_KEYS + slot) as usize
    }
}
