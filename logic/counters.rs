// SPDX-License-Identifier: GPL-2.0

//! The IPI and resched counters, and the one list of tags (the kinds of event) that the tables, the
//! stack files and the tests follow: what each probe hit adds, and the per-CPU totals read from them.
//!
//! Each CPU counts what it *sends* in its own per-cpu copy, indexed by target CPU where there is one,
//! so a handler touches one local word. Totals by target are sums over senders at read time.

use crate::logic::callbacks::MAX_FUNCS;
use crate::logic::histogram::{self, Histogram};
use crate::sys::percpu::{bytes_per_cpu, BlockView, CpuView, PerCpuArray, PerCpuBlock};
use kernel::c_str;
use kernel::prelude::*;

/// The kinds of event counted, one per probe.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tag {
    /// Reschedule IPIs (`native_smp_send_reschedule`).
    Res,
    /// Call-function-single IPIs (`native_send_call_func_single_ipi`).
    Cfs,
    /// Call-function IPIs to a mask of CPUs (`native_send_call_func_ipi`).
    Cfm,
    /// Reschedule requests (`resched_curr`).
    Rsc,
    /// Wakeups queued on another CPU's wakelist (`ttwu_queue_wakelist` returning true).
    Wkl,
}

impl Tag {
    /// Every tag, in display order.
    pub(crate) const ALL: [Tag; 5] = [Tag::Res, Tag::Cfs, Tag::Cfm, Tag::Rsc, Tag::Wkl];

    /// The tag's position in [`Tag::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The tag as shown in the tables and as the name of its `stacks/` file.
    pub(crate) fn c_name(self) -> &'static CStr {
        match self {
            Tag::Res => c_str!("RES"),
            Tag::Cfs => c_str!("CFS"),
            Tag::Cfm => c_str!("CFM"),
            Tag::Rsc => c_str!("RSC"),
            Tag::Wkl => c_str!("WKL"),
        }
    }

    /// The tag as shown in the tables.
    pub(crate) fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("?")
    }
}

/// Per-target counter arrays kept by each sending CPU.
#[derive(Clone, Copy)]
pub(crate) enum PerTarget {
    /// Reschedule IPIs sent to the target.
    Res = 0,
    /// Call-function-single IPIs sent to the target.
    Cfs = 1,
    /// Call-function (many) IPIs whose mask held the target.
    Cfm = 2,
    /// `resched_curr` calls for the target's runqueue from another CPU.
    RscRemote = 3,
    /// Wakeups queued on the target's wakelist.
    Wkl = 4,
    /// IPIs the target did not need: it was polling idle (`sched_wake_idle_without_ipi`).
    NoIpi = 5,
}

const PER_TARGET_ARRAYS: usize = 6;

impl PerTarget {
    /// Every array, in display order.
    pub(crate) const ALL: [PerTarget; PER_TARGET_ARRAYS] = [
        PerTarget::Res,
        PerTarget::Cfs,
        PerTarget::Cfm,
        PerTarget::RscRemote,
        PerTarget::Wkl,
        PerTarget::NoIpi,
    ];

    /// The kind as the sparse view shows it (the tag of the probe that counts it).
    pub(crate) fn name(self) -> &'static str {
        match self {
            PerTarget::Res => "RES",
            PerTarget::Cfs => "CFS",
            PerTarget::Cfm => "CFM",
            PerTarget::RscRemote => "RSC",
            PerTarget::Wkl => "WKL",
            PerTarget::NoIpi => "NIP",
        }
    }
}

/// Counters kept by each CPU about itself.
#[derive(Clone, Copy)]
pub(crate) enum Local {
    /// Call-function (many) sends made.
    CfmCalls = 0,
    /// `resched_curr` calls for this CPU's own runqueue.
    OwnResched = 1,
    /// Attached tasks switched in here.
    SchedIn = 2,
    /// Attached tasks switched out here.
    SchedOut = 3,
    /// ... of which still runnable (preempted).
    Preempted = 4,
    /// ... of which blocking (voluntary).
    Voluntary = 5,
    /// Attached tasks switched in here after last running on another CPU.
    Migrated = 6,
    /// Context switches of any task (`sched_switch`).
    Switches = 7,
    /// ... of which the previous task was preempted.
    SwitchesPreempt = 8,
    /// Reschedule IPIs received (`reschedule_entry`).
    ReceivedRes = 9,
    /// Call-function-single IPIs received (`call_function_single_entry`).
    ReceivedCfs = 10,
    /// Call-function IPIs received (`call_function_entry`).
    ReceivedCfm = 11,
    /// Measured reschedule requests that ended with the task preempted (still runnable).
    ReschedPreempted = 12,
    /// ... that ended with the task blocking (a voluntary switch).
    ReschedBlocked = 13,
    /// ... that ended with the idle task leaving the CPU.
    ReschedIdle = 14,
    /// Lazy reschedule requests made (`TIF_NEED_RESCHED_LAZY`, 7.x).
    RscLazy = 15,
    /// Immediate reschedule requests made for a CPU whose lazy request was pending (promoted).
    RscPromoted = 16,
    /// Measured lazy requests promoted to immediate before the switch that ended them.
    ReschedPromoted = 17,
}

const LOCALS: usize = 18;

/// The latency histograms each CPU keeps (see [`crate::logic::latency`]).
#[derive(Clone, Copy)]
pub(crate) enum Hist {
    /// Reschedule requests this CPU made for itself, to its next context switch.
    ReschedLocal = 0,
    /// Reschedule requests another CPU made for this one, to its next context switch.
    ReschedRemote = 1,
    /// Reschedule IPIs, from the first pending send to the handler on this CPU.
    DeliveryRes = 2,
    /// Call-function-single IPIs, likewise.
    DeliveryCfs = 3,
    /// Call-function (many) IPIs, likewise.
    DeliveryCfm = 4,
    /// Attached tasks switched in here, from their wakeup.
    WakeupToRun = 5,
    /// Attached tasks' time on this CPU, for slices that ended in a preemption.
    SlicePreempted = 6,
    /// ... for slices that ended with the task blocking.
    SliceBlocked = 7,
    /// Lazy reschedule requests for this CPU (by any CPU), to its next context switch.
    ReschedLazy = 8,
}

const HISTS: usize = 9;

/// The counters whose number is fixed (a [`PerCpuBlock`] per window): the locals, the wakelist
/// attempts (every other probe's hits follow from its event counts), the calls queued per function
/// slot ([`MAX_FUNCS`], and one for the functions that found no slot), then the histograms
/// ([`histogram::WORDS`] each). Every index is a constant or a clamped offset below [`HEAD`], so the
/// handlers' counters carry no bounds check.
mod head {
    use super::{histogram, Hist, Local, HISTS, LOCALS, MAX_FUNCS};

    #[inline(always)]
    pub(super) const fn local(local: Local) -> usize {
        local as usize
    }
    pub(super) const WAKELIST_ATTEMPTS: usize = LOCALS;
    #[inline(always)]
    pub(super) fn queued(slot: usize) -> usize {
        WAKELIST_ATTEMPTS + 1 + slot.min(MAX_FUNCS)
    }
    const HISTS_AT: usize = WAKELIST_ATTEMPTS + 1 + MAX_FUNCS + 1;
    /// The first word of histogram `hist`.
    #[inline(always)]
    pub(super) const fn hist(hist: Hist) -> usize {
        HISTS_AT + hist as usize * histogram::WORDS
    }
    /// Counters in the block: 687.
    pub(crate) const LEN: usize = HISTS_AT + HISTS * histogram::WORDS;
}

/// Counters per CPU whose number is fixed.
const HEAD: usize = head::LEN;

/// Layout of the counters that grow with the CPUs: `PER_TARGET_ARRAYS` arrays of `cpus` targets.
#[derive(Clone, Copy)]
struct Layout {
    cpus: usize,
}

// The offsets use wrapping arithmetic: they cannot overflow for any CPU count the per-cpu allocation
// accepts, and every access checks its index against the array's length (a wrong offset would be
// ignored, never written), so the hot paths carry no overflow checks.
impl Layout {
    #[inline]
    fn to(self, array: PerTarget, target: usize) -> usize {
        (array as usize)
            .wrapping_mul(self.cpus)
            .wrapping_add(target)
    }
    #[inline]
    fn len(self) -> usize {
        PER_TARGET_ARRAYS * self.cpus
    }
}

/// One window's counters: the probe handlers add to them, the debugfs files read them.
pub(crate) struct Counters {
    layout: Layout,
    /// The fixed counters ([`head`]).
    head: PerCpuBlock<HEAD>,
    /// The per-target arrays ([`Layout`]).
    targets: PerCpuArray,
}

impl Counters {
    /// Allocates zeroed counters for CPU ids below `cpus`.
    pub(crate) fn new(cpus: usize) -> Result<Self> {
        let layout = Layout { cpus };
        Ok(Self {
            layout,
            head: PerCpuBlock::new()?,
            targets: PerCpuArray::new(layout.len())?,
        })
    }

    /// Bytes of per-cpu memory the counters of `cpus` CPU ids take, over all of them: each CPU keeps
    /// `6 * cpus + 687` counters of 8 bytes (84 single counters, 9 histograms of 67).
    pub(crate) fn bytes(cpus: usize) -> usize {
        cpus * (bytes_per_cpu(HEAD) + bytes_per_cpu(Layout { cpus }.len()))
    }

    /// Counts one call queued for another CPU, of the function in `slot` (`None`: no slot left).
    #[inline]
    pub(crate) fn queued(&self, slot: Option<usize>) {
        self.head.inc(head::queued(slot.unwrap_or(MAX_FUNCS)));
    }

    /// Counts one call of `ttwu_queue_wakelist` on this CPU, queued or not.
    #[inline]
    pub(crate) fn wakelist_attempt(&self) {
        self.head.inc(head::WAKELIST_ATTEMPTS);
    }

    /// Counts an event of `array` sent from this CPU to `target`. A target out of range (never seen:
    /// the probed functions take a valid CPU) is counted on target 0 rather than lost.
    #[inline]
    pub(crate) fn sent(&self, array: PerTarget, target: usize) {
        let target = if target < self.layout.cpus { target } else { 0 };
        self.targets.inc(self.layout.to(array, target));
    }

    /// Counts one `local` event on this CPU.
    #[inline]
    pub(crate) fn local(&self, local: Local) {
        self.head.inc(head::local(local));
    }

    /// Counts a reschedule request made on CPU `this` for CPU `target`'s runqueue.
    #[inline]
    pub(crate) fn resched(&self, this: usize, target: usize) {
        if this == target {
            self.local(Local::OwnResched);
        } else {
            self.sent(PerTarget::RscRemote, target);
        }
    }

    /// Adds an interval of `ns` nanoseconds to this CPU's histogram `hist`. Each histogram is written by
    /// one kind of handler, which never interrupts itself on its CPU (see [`PerCpuBlock::raise`]): the
    /// IPI entries in hard interrupt context, `sched_switch` and the notifiers in the scheduler.
    #[inline]
    pub(crate) fn record(&self, hist: Hist, ns: u64) {
        let at = head::hist(hist);
        self.head.inc(at + histogram::bucket(ns));
        self.head.add(at + histogram::SUM, ns);
        self.head.raise(at + histogram::MAX, ns);
        self.head.raise(at + histogram::NOT_MIN, !ns);
    }

    /// Zeroes every counter. Only for a window that no handler counts into any more.
    pub(crate) fn zero(&self) {
        self.head.zero();
        self.targets.zero();
    }

    /// The counters as they are now, read in place (no copy): one view per CPU.
    pub(crate) fn reading(&self) -> Result<Reading<'_>> {
        let mut views = KVec::with_capacity(self.layout.cpus, GFP_KERNEL)?;
        let mut heads = KVec::with_capacity(self.layout.cpus, GFP_KERNEL)?;
        for cpu in 0..self.layout.cpus {
            views.push(self.targets.cpu_view(cpu), GFP_KERNEL)?;
            heads.push(self.head.cpu_view(cpu), GFP_KERNEL)?;
        }
        Ok(Reading {
            layout: self.layout,
            views,
            heads,
        })
    }
}

/// The counters of a window, read in place, with the totals the tables show.
pub(crate) struct Reading<'a> {
    layout: Layout,
    views: KVec<CpuView<'a>>,
    heads: KVec<BlockView<'a, HEAD>>,
}

impl Reading<'_> {
    fn get(&self, cpu: usize, idx: usize) -> u64 {
        self.views.get(cpu).map_or(0, |v| v.get(idx))
    }

    fn get_head(&self, cpu: usize, idx: usize) -> u64 {
        self.heads.get(cpu).map_or(0, |v| v.get(idx))
    }

    /// Every CPU id, sender or target.
    pub(crate) fn senders(&self) -> core::ops::Range<usize> {
        0..self.layout.cpus
    }

    /// What CPU `sender` sent of `array` to CPU `target`.
    pub(crate) fn pair(&self, array: PerTarget, sender: usize, target: usize) -> u64 {
        if target >= self.layout.cpus {
            return 0;
        }
        self.get(sender, self.layout.to(array, target))
    }

    /// What CPU `sender` sent of `array`, over all targets.
    pub(crate) fn sent_by(&self, array: PerTarget, sender: usize) -> u64 {
        (0..self.layout.cpus)
            .map(|t| self.pair(array, sender, t))
            .sum()
    }

    /// What all CPUs sent of `array` to CPU `target`.
    pub(crate) fn sent_to(&self, array: PerTarget, target: usize) -> u64 {
        self.senders().map(|s| self.pair(array, s, target)).sum()
    }

    /// Counter `local` of CPU `cpu`.
    pub(crate) fn local(&self, cpu: usize, local: Local) -> u64 {
        self.get_head(cpu, head::local(local))
    }

    /// Calls queued by CPU `cpu` of the function in `slot` (`None`: those that found no slot).
    pub(crate) fn queued(&self, cpu: usize, slot: Option<usize>) -> u64 {
        self.get_head(cpu, head::queued(slot.unwrap_or(MAX_FUNCS)))
    }

    /// Histogram `hist` of CPU `cpu`.
    pub(crate) fn hist(&self, cpu: usize, hist: Hist) -> Histogram {
        Histogram::from_words(|word| self.get_head(cpu, head::hist(hist) + word))
    }

    /// Histogram `hist` over all CPUs.
    pub(crate) fn hist_all(&self, hist: Hist) -> Histogram {
        let mut all = Histogram::default();
        for cpu in self.senders() {
            all.merge(&self.hist(cpu, hist));
        }
        all
    }

    /// Reschedule requests made on CPU `cpu`, local and remote.
    pub(crate) fn resched_by(&self, cpu: usize) -> u64 {
        self.local(cpu, Local::OwnResched) + self.sent_by(PerTarget::RscRemote, cpu)
    }

    /// Probe hits of `tag` over all CPUs: each hit of RES, CFS, CFM and RSC adds exactly one event
    /// count; WKL counts its calls of `ttwu_queue_wakelist` apart when a kretprobe counts it, and is hit
    /// once per queued wakeup when `csd_queue_cpu` counts it (`wkl_by_csd`).
    pub(crate) fn hits(&self, tag: Tag, wkl_by_csd: bool) -> u64 {
        let each = |f: &dyn Fn(usize) -> u64| self.senders().map(f).sum::<u64>();
        match tag {
            Tag::Res => each(&|c| self.sent_by(PerTarget::Res, c)),
            Tag::Cfs => each(&|c| self.sent_by(PerTarget::Cfs, c)),
            Tag::Cfm => each(&|c| self.local(c, Local::CfmCalls)),
            Tag::Rsc => each(&|c| self.resched_by(c)),
            Tag::Wkl if wkl_by_csd => each(&|c| self.sent_by(PerTarget::Wkl, c)),
            Tag::Wkl => each(&|c| self.get_head(c, head::WAKELIST_ATTEMPTS)),
        }
    }
}
