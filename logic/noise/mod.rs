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
use crate::sys::percpu::{bytes_per_cpu, BlockView, PerCpuBlock};
use kernel::prelude::*;

mod probes;
mod slots;
mod state;

pub(crate) use probes::{NoiseGroup, NoiseProbes, NoiseStatus};
pub(crate) use state::{Noise, TIMED_SOFTIRQS};

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
