// SPDX-License-Identifier: GPL-2.0

//! What interrupts each CPU, and for how long: the handlers of device interrupts, of the x86 system
//! vectors (the local timer, the IPIs, irq_work), the softirqs and the cross-CPU calls queued for the
//! CPU, each a *source* with its count and a log2 histogram of the time it took, per CPU and window.
//!
//! Each source is timed from its entry tracepoint to its exit tracepoint on the interrupted CPU, one
//! clock reading at each end. Hard interrupt handlers run with interrupts off and do not nest, so one
//! interval in progress per CPU suffices for all of them: device handlers between `irq_handler_entry`
//! and `irq_handler_exit` in `__handle_irq_event_percpu()` (kernel/irq/handle.c:157-159 in 6.12,
//! 201-212 in 7.3, which warns right after if a handler turned interrupts on) and the per-CPU flow
//! handlers (kernel/irq/chip.c); x86's system vectors between their `irq_vectors` entry and exit
//! (arch/x86/kernel/smp.c, irq_work.c, apic/apic.c), in the `DEFINE_IDTENTRY_SYSVEC` bodies that run
//! with interrupts off. Queued calls run between `csd_function_entry` and `csd_function_exit`
//! (`csd_do_func()`, kernel/smp.c:130-136 in 6.12, 139-145 in 7.3), always with interrupts off (its
//! callers: the call-function IPIs, and `flush_smp_call_function_queue()` and the local calls under
//! `local_irq_save()`), so they do not nest either. Softirqs run between `softirq_entry` and
//! `softirq_exit` in `handle_softirqs()` (kernel/softirq.c:578-580 in 6.12, 644-646 in 7.3) with
//! interrupts on, one at a time per CPU; hard interrupts may come in between,
//! and a softirq's time leaves out the hard interrupt time spent inside it (each CPU keeps the total
//! hard interrupt time it measured, read at the softirq's entry and exit), so that the sources' times
//! add up to the time taken from the CPU without counting any twice. Queued calls run inside the
//! call-function IPI (or from the idle loop, with interrupts off): their time is a breakdown of CAL's,
//! not added to it.
//!
//! Device interrupts and queued functions are keyed per CPU in small tables fixed at load, a slot
//! claimed at a key's first sight on that CPU and kept (so a slot's counters keep their meaning across
//! resets); keys beyond them count in one `other` source each, never lost. Only the interrupted CPU
//! writes its state and its counters, in the context of the interruption.

use crate::logic::histogram::Histogram;
use crate::sys::cpu;
use crate::sys::percpu::{bytes_per_cpu, BlockView, PerCpuBlock};
use crate::sys::time;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};
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
/// Every source.
const SOURCES: usize = HARD_SOURCES + SOFT_SOURCES;
const HARD_LEN: usize = HARD_SOURCES * WORDS;
const SOFT_LEN: usize = SOFT_SOURCES * WORDS;

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
}

impl Source {
    /// Every source: vectors, device interrupts, softirqs, functions.
    pub(crate) fn all() -> [Source; SOURCES] {
        core::array::from_fn(|i| match i {
            i if i < VECTORS => Source::Vector(Hard::ALL[i]),
            i if i < HARD_SOURCES => Source::Irq(i - VECTORS),
            i if i < HARD_SOURCES + SOFTIRQS => Source::Softirq(i - HARD_SOURCES),
            i => Source::Func(i - HARD_SOURCES - SOFTIRQS),
        })
    }

    /// Whether the source's time is part of the time taken from the CPU (a function's is part of
    /// CAL's, or of the idle loop's).
    pub(crate) fn stolen(self) -> bool {
        !matches!(self, Source::Func(_))
    }
}

/// One window's counters of every source on every CPU.
pub(crate) struct NoiseCounters {
    hard: PerCpuBlock<HARD_LEN>,
    soft: PerCpuBlock<SOFT_LEN>,
}

impl NoiseCounters {
    /// Zeroed counters.
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            hard: PerCpuBlock::new()?,
            soft: PerCpuBlock::new()?,
        })
    }

    /// Bytes of per-cpu memory the counters take on each CPU.
    pub(crate) fn bytes_per_cpu() -> usize {
        bytes_per_cpu(HARD_LEN) + bytes_per_cpu(SOFT_LEN)
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
    }

    /// CPU `cpu`'s counters, read in place.
    pub(crate) fn reading(&self, cpu: usize) -> NoiseReading<'_> {
        NoiseReading {
            hard: self.hard.cpu_view(cpu),
            soft: self.soft.cpu_view(cpu),
        }
    }
}

/// One CPU's counters of a window, read in place.
pub(crate) struct NoiseReading<'a> {
    hard: BlockView<'a, HARD_LEN>,
    soft: BlockView<'a, SOFT_LEN>,
}

impl NoiseReading<'_> {
    /// The histogram of `source`'s times on this CPU.
    pub(crate) fn hist(&self, source: Source) -> Histogram {
        let (hard, at) = match source {
            Source::Vector(v) => (true, v as usize),
            Source::Irq(slot) => (true, VECTORS + slot.min(IRQ_SLOTS)),
            Source::Softirq(v) => (false, v.min(SOFTIRQS - 1)),
            Source::Func(slot) => (false, SOFTIRQS + slot.min(FUNC_SLOTS)),
        };
        let at = at * WORDS;
        if hard {
            Histogram::from_words_of(BUCKETS, |w| self.hard.get(at + w))
        } else {
            Histogram::from_words_of(BUCKETS, |w| self.soft.get(at + w))
        }
    }
}

// The words of each CPU's state (not per window): the intervals in progress and the slot keys.
/// Clock reading at the entry of the hard interrupt source in progress (0: none).
const HARD_START: usize = 0;
/// Its key: its index in the hard block, and for a device interrupt `irq + 1` in the upper half.
const HARD_KEY: usize = 1;
/// Clock reading at the entry of the softirq in progress (0: none).
const SOFT_START: usize = 2;
/// [`HARD_TOTAL`] at that entry.
const SOFT_HARD_AT: usize = 3;
/// Clock reading at the entry of the queued function in progress (0: none).
const FUNC_START: usize = 4;
/// Its address.
const FUNC_KEY: usize = 5;
/// Its slot.
const FUNC_SLOT: usize = 6;
/// Nanoseconds of hard interrupt handlers measured on this CPU since the load.
const HARD_TOTAL: usize = 7;
/// `irq + 1` of each device interrupt slot (0: free).
const IRQ_KEYS: usize = 8;
/// The name of each slot's interrupt, [`NAME_WORDS`] words each.
const IRQ_NAMES: usize = IRQ_KEYS + IRQ_SLOTS;
/// The address of each function slot's function (0: free).
const FUNC_KEYS: usize = IRQ_NAMES + IRQ_SLOTS * NAME_WORDS;
const STATE: usize = FUNC_KEYS + FUNC_SLOTS;

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
            for word in [HARD_START, SOFT_START, FUNC_START] {
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
        let key = self.state.read(HARD_KEY);
        if key == hard as u64 {
            self.hard_exit(counters, key);
        }
    }

    /// A handler of device interrupt `irq`, called `name`, starts on this CPU.
    #[inline]
    pub(crate) fn irq_entry<'a>(&self, irq: u32, name: impl FnOnce() -> &'a [u8]) {
        let slot = self.irq_slot(irq, name);
        self.hard_entry(((u64::from(irq) + 1) << 32) | (VECTORS + slot) as u64);
    }

    /// A handler of device interrupt `irq` returns on this CPU: its interval ends in `counters`.
    #[inline]
    pub(crate) fn irq_exit(&self, counters: &NoiseCounters, irq: u32) {
        let key = self.state.read(HARD_KEY);
        if key >> 32 == u64::from(irq) + 1 {
            self.hard_exit(counters, key);
        }
    }

    #[inline(always)]
    fn hard_entry(&self, key: u64) {
        self.state.write(HARD_KEY, key);
        self.state.write(HARD_START, time::now_ns());
    }

    /// Ends the hard interrupt interval of `key` (the key of the one in progress).
    #[inline(always)]
    fn hard_exit(&self, counters: &NoiseCounters, key: u64) {
        let start = self.state.read(HARD_START);
        if start == 0 {
            return;
        }
        self.state.write(HARD_START, 0);
        let ns = time::now_ns().saturating_sub(start);
        self.state.add(HARD_TOTAL, ns);
        let source = (key & 0xffff_ffff) as usize % HARD_SOURCES;
        NoiseCounters::record(&counters.hard, source * WORDS, ns);
    }

    /// The slot of device interrupt `irq` on this CPU, claimed (and its name kept) at its first sight
    /// here; [`IRQ_SLOTS`] when every slot is another interrupt's. Interrupts off: no other writer.
    #[inline]
    fn irq_slot<'a>(&self, irq: u32, name: impl FnOnce() -> &'a [u8]) -> usize {
        let key = u64::from(irq) + 1;
        let home = irq as usize % IRQ_SLOTS;
        for i in 0..IRQ_SLOTS {
            let slot = (home + i) % IRQ_SLOTS;
            match self.state.read(IRQ_KEYS + slot) {
                k if k == key => return slot,
                0 => {
                    self.claim_irq(slot, key, name());
                    return slot;
                }
                _ => {}
            }
        }
        IRQ_SLOTS
    }

    /// Keeps `name` (cut to fit) for `slot`, then claims it for `key`.
    #[cold]
    fn claim_irq(&self, slot: usize, key: u64, name: &[u8]) {
        let mut bytes = [0u8; NAME_BYTES];
        let n = name.len().min(NAME_BYTES - 1);
        bytes[..n].copy_from_slice(&name[..n]);
        for (w, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let at = IRQ_NAMES + slot * NAME_WORDS + w;
            self.state.write(at, u64::from_ne_bytes(word));
        }
        self.state.write(IRQ_KEYS + slot, key);
    }

    /// A softirq starts on this CPU.
    #[inline]
    pub(crate) fn softirq_entry(&self) {
        self.state.write(SOFT_HARD_AT, self.state.read(HARD_TOTAL));
        self.state.write(SOFT_START, time::now_ns());
    }

    /// Softirq `vec` returns on this CPU: its time, less the hard interrupts' in it, ends in `counters`.
    #[inline]
    pub(crate) fn softirq_exit(&self, counters: &NoiseCounters, vec: usize) {
        let start = self.state.read(SOFT_START);
        if start == 0 || vec >= SOFTIRQS {
            return;
        }
        self.state.write(SOFT_START, 0);
        let all = time::now_ns().saturating_sub(start);
        let hard = self
            .state
            .read(HARD_TOTAL)
            .wrapping_sub(self.state.read(SOFT_HARD_AT));
        NoiseCounters::record(&counters.soft, vec * WORDS, all.saturating_sub(hard));
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

    /// CPU `cpu`'s slot keys, read in place.
    pub(crate) fn keys(&self, cpu: usize) -> Keys<'_> {
        Keys(self.state.cpu_view(cpu))
    }
}

/// One CPU's slot keys.
pub(crate) struct Keys<'a>(BlockView<'a, STATE>);

impl Keys<'_> {
    /// The device interrupt of `slot` (`None`: free, or the `other` slot).
    pub(crate) fn irq(&self, slot: usize) -> Option<u32> {
        if slot >= IRQ_SLOTS {
            return None;
        }
        match self.0.get(IRQ_KEYS + slot) {
            0 => None,
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

    /// The function of `slot` (0: free, or the `other` slot).
    pub(crate) fn func(&self, slot: usize) -> usize {
        if slot >= FUNC_SLOTS {
            return 0;
        }
        self.0.get(FUNC_KEYS + slot) as usize
    }
}
