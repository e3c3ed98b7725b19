// SPDX-License-Identifier: GPL-2.0

//! What a hit of each probe counts, and the probes that make up the module.
//!
//! IPI sends come from the kernel's own `ipi:ipi_send_cpu` and `ipi:ipi_send_cpumask` tracepoints
//! (6.4+: a direct call, no register save, no kprobe lookup), with kprobes on the x86 `native_*` send
//! functions as the fallback where a tracepoint is missing. `ttwu_queue_wakelist` has no tracepoint, but
//! each wakeup it queues is queued through `csd:csd_queue_cpu` as a task's wakelist entry: WKL counts
//! there (a kretprobe on the function is the fallback). Reschedule requests come from
//! `sched_set_need_resched_tp` where the kernel has it (6.16+: each need-resched flag newly set, lazy or
//! not), else from a kprobe on `__resched_curr` or `resched_curr` (each call, flag already set or not).
//! The probed functions' symbols and typed arguments are in [`crate::sys::probed`].

use crate::logic::counters::{Local, PerTarget, Tag};
use crate::logic::engine::{Engine, Window};
use crate::logic::latency::Kind;
use crate::sys::cpu::{self, CpuMask};
use crate::sys::kprobe::{Handler, Kprobe, Kretprobe, Probe, Regs, RetHandler, RetRegs};
use crate::sys::probed::{
    Function, ReschedCurr, SendCallFuncIpi, SendCallFuncSingleIpi, SmpSendReschedule, TargetCpu,
    TtwuQueueWakelist,
};
use crate::sys::stacktrace::Stack;
use crate::sys::tracepoint::{
    CsdQueueCpu, Here, IpiEntry, IpiSendCpu, IpiSendCpumask, SetNeedResched, TracepointProbe,
    Vector, VectorEntry,
};
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use kernel::prelude::*;
use kernel::sync::Arc;

/// `native_smp_send_reschedule(int cpu)` and `native_send_call_func_single_ipi(int cpu)`: one IPI from
/// this CPU to `cpu`.
pub(crate) struct IpiOne<F: TargetCpu> {
    engine: Arc<Engine>,
    array: PerTarget,
    tag: Tag,
    kind: Kind,
    _function: PhantomData<F>,
}

impl<F: TargetCpu> Handler for IpiOne<F> {
    type Function = F;

    #[inline]
    fn hit(&self, regs: &Regs<'_, F>) {
        let window = self.engine.window();
        let target = regs.target_cpu();
        window.counters.sent(self.array, target);
        self.engine.latency().ipi_sent(self.kind, target);
        record_stack(&self.engine, window, self.tag, regs);
    }
}

/// Records the stack of a hit of `tag` in `window` when stack attribution is on (one load and a branch
/// when off).
#[inline]
fn record_stack<F: Function>(engine: &Engine, window: &Window, tag: Tag, regs: &Regs<'_, F>) {
    if engine.stacks_enabled() {
        record_regs_stack(engine, window, tag, regs);
    }
}

/// The recording itself, out of line: the handlers' own frames stay small while recording is off.
#[cold]
#[inline(never)]
fn record_regs_stack<F: Function>(engine: &Engine, window: &Window, tag: Tag, regs: &Regs<'_, F>) {
    engine.record(window, tag, &Stack::from_regs(regs));
}

/// Records the stack of a tracepoint hit of `tag` in `window` when stack attribution is on (one load
/// and a branch when off).
#[inline]
fn record_here(engine: &Engine, window: &Window, tag: Tag, here: &Here<'_>) {
    if engine.stacks_enabled() {
        record_here_stack(engine, window, tag, here);
    }
}

/// The recording itself, out of line (see [`record_regs_stack`]).
#[cold]
#[inline(never)]
fn record_here_stack(engine: &Engine, window: &Window, tag: Tag, here: &Here<'_>) {
    engine.record(window, tag, &here.stack());
}

/// `native_send_call_func_ipi(const struct cpumask *mask)`: one send to every CPU in `mask`.
pub(crate) struct IpiMany {
    engine: Arc<Engine>,
}

impl Handler for IpiMany {
    type Function = SendCallFuncIpi;

    #[inline]
    fn hit(&self, regs: &Regs<'_, SendCallFuncIpi>) {
        let window = self.engine.window();
        sent_many(&self.engine, window, regs.mask().iter());
        record_stack(&self.engine, window, Tag::Cfm, regs);
    }
}

/// Counts one call-function (many) send from this CPU to the CPUs of `targets` in `window`, and starts
/// their delivery intervals: one walk of the mask, at most one clock reading.
#[inline]
fn sent_many(engine: &Engine, window: &Window, targets: impl Iterator<Item = usize>) {
    let latency = engine.latency().enabled().then(|| engine.latency());
    let mut now = None;
    window.counters.local(Local::CfmCalls);
    for target in targets {
        window.counters.sent(PerTarget::Cfm, target);
        if let Some(latency) = latency {
            latency.ipi_sent_many(target, &mut now);
        }
    }
}

/// `resched_curr(struct rq *rq)` / `__resched_curr(struct rq *rq, int tif)`: a request from this CPU
/// that `rq`'s CPU reschedule.
pub(crate) struct Resched {
    engine: Arc<Engine>,
}

impl Handler for Resched {
    type Function = ReschedCurr;

    #[inline]
    fn hit(&self, regs: &Regs<'_, ReschedCurr>) {
        let window = self.engine.window();
        let (this, target) = (cpu::this_cpu(), regs.rq_cpu());
        window.counters.resched(this, target);
        self.engine
            .latency()
            .resched_requested(this, target, || regs.already_marked());
        record_stack(&self.engine, window, Tag::Rsc, regs);
    }
}

/// `sched_set_need_resched_tp(tsk, cpu, tif)`: this CPU newly set a need-resched flag (lazy or not) of
/// `cpu`'s current task, which was not marked before (so a reschedule interval starts or restarts).
pub(crate) struct NeedResched {
    engine: Arc<Engine>,
}

impl SetNeedResched for NeedResched {
    #[inline]
    fn set_need_resched(&self, target: usize, here: &Here<'_>) {
        let window = self.engine.window();
        let this = cpu::this_cpu();
        window.counters.resched(this, target);
        self.engine
            .latency()
            .resched_requested(this, target, || false);
        record_here(&self.engine, window, Tag::Rsc, here);
    }
}

/// `ipi:ipi_send_cpu(cpu, callsite, callback)`: a reschedule IPI when `callback` is NULL
/// (`smp_send_reschedule()`), else a call-function-single IPI when it goes to another CPU
/// (`send_call_function_single_ipi()`); an IPI to the sending CPU with a callback is `irq_work_raise()`'s
/// self-IPI, not counted (call-function IPIs are never sent to the sending CPU: it runs the call).
pub(crate) struct IpiCpu {
    engine: Arc<Engine>,
}

impl IpiSendCpu for IpiCpu {
    #[inline]
    fn ipi_send_cpu(&self, target: usize, callback: usize, here: &Here<'_>) {
        let (array, tag, kind) = if callback == 0 {
            (PerTarget::Res, Tag::Res, Kind::Res)
        } else if target != cpu::this_cpu() {
            (PerTarget::Cfs, Tag::Cfs, Kind::Cfs)
        } else {
            return;
        };
        let window = self.engine.window();
        window.counters.sent(array, target);
        self.engine.latency().ipi_sent(kind, target);
        record_here(&self.engine, window, tag, here);
    }
}

/// `ipi:ipi_send_cpumask(mask, callsite, callback)`: call-function IPIs to every CPU of `mask`.
pub(crate) struct IpiMask {
    engine: Arc<Engine>,
}

impl IpiSendCpumask for IpiMask {
    #[inline]
    fn ipi_send_cpumask(&self, mask: &CpuMask<'_>, _callback: usize, here: &Here<'_>) {
        let window = self.engine.window();
        sent_many(&self.engine, window, mask.iter());
        record_here(&self.engine, window, Tag::Cfm, here);
    }
}

/// `csd:csd_queue_cpu(cpu, callsite, func, csd)`: a call of `func` queued for `cpu` by this CPU, counted
/// per function (`callbacks`); when the entry is a task's wakelist entry, a wakeup queued on `cpu`'s
/// wakelist (WKL): `ttwu_queue_wakelist()` queues exactly one such entry each time it returns true, so
/// this counts the same events as a kretprobe on it, without one.
pub(crate) struct CsdQueue {
    engine: Arc<Engine>,
}

impl CsdQueueCpu for CsdQueue {
    #[inline]
    fn csd_queue_cpu(&self, cpu: usize, func: usize, wakeup: bool, here: &Here<'_>) {
        let window = self.engine.window();
        window.counters.queued(self.engine.functions().slot(func));
        if wakeup {
            window.counters.sent(PerTarget::Wkl, cpu);
            record_here(&self.engine, window, Tag::Wkl, here);
        }
    }
}

/// `bool ttwu_queue_wakelist(struct task_struct *p, int cpu, int wake_flags)`, the fallback where
/// `csd:csd_queue_cpu` is missing: remembers `cpu` (and the stack, when stack attribution is on) at
/// entry, and counts the wakeup when the function returns true (it queued `p` on `cpu`'s wakelist). So
/// WKL stacks are those of queued wakeups, as the WKL rows.
pub(crate) struct Wakelist {
    engine: Arc<Engine>,
}

/// What [`Wakelist`] keeps from entry to return of one call.
#[derive(Clone, Copy)]
pub(crate) struct WakeCall {
    target: u32,
    stack: Option<Stack>,
}

impl RetHandler for Wakelist {
    type Function = TtwuQueueWakelist;
    type Data = WakeCall;

    fn entry<'d>(
        &self,
        regs: &Regs<'_, TtwuQueueWakelist>,
        data: &'d mut MaybeUninit<WakeCall>,
    ) -> Option<&'d mut WakeCall> {
        self.engine.window().counters.wakelist_attempt();
        // Only the target and the option's tag are written unless a stack is taken.
        let call = data.write(WakeCall {
            target: regs.cpu() as u32,
            stack: None,
        });
        if self.engine.stacks_enabled() {
            call.stack = Some(Stack::from_regs(regs));
        }
        Some(call)
    }

    /// Counts in the window active at return, where the stack goes too (`record` checks again that
    /// recording is on: it may have been turned off since the entry).
    fn ret(&self, call: &WakeCall, regs: &RetRegs<'_, TtwuQueueWakelist>) {
        if regs.queued() {
            let window = self.engine.window();
            window.counters.sent(PerTarget::Wkl, call.target as usize);
            if let Some(stack) = &call.stack {
                self.engine.record(window, Tag::Wkl, stack);
            }
        }
    }
}

/// x86 `irq_vectors:*_entry`: an IPI of `kind` is received on this CPU (its handler starts).
pub(crate) struct IpiReceived {
    engine: Arc<Engine>,
    kind: Kind,
}

impl VectorEntry for IpiReceived {
    #[inline]
    fn vector_entry(&self) {
        let window = self.engine.window();
        self.engine
            .latency()
            .ipi_received(&window.counters, self.kind, cpu::this_cpu());
    }
}

/// arm64 `ipi:ipi_entry`: `IPI0` ("Rescheduling interrupts") and `IPI1` ("Function call interrupts")
/// received on this CPU. arm64 sends both call-function kinds as `IPI1`: it is counted as received
/// under CFS, and ends the delivery intervals of both kinds.
pub(crate) struct IpiEntryReceived {
    engine: Arc<Engine>,
}

impl IpiEntry for IpiEntryReceived {
    fn ipi_entry(&self, reason: &[u8]) {
        let kind = match reason {
            b"Rescheduling interrupts" => Kind::Res,
            b"Function call interrupts" => Kind::Cfs,
            _ => return,
        };
        let window = self.engine.window();
        let latency = self.engine.latency();
        let cpu = cpu::this_cpu();
        latency.ipi_received(&window.counters, kind, cpu);
        if kind == Kind::Cfs {
            latency.ipi_delivered(&window.counters, Kind::Cfm, cpu);
        }
    }
}

/// Whether this build counts with the fallbacks only (`make fallback`: built with
/// `RRP_FALLBACK_ONLY=1`), as on a kernel without the `ipi:*` and `csd:*` tracepoints: kprobes on the send
/// functions and a kretprobe on `ttwu_queue_wakelist`. The boot test checks that build too.
fn fallback_only() -> bool {
    option_env!("RRP_FALLBACK_ONLY") == Some("1")
}

/// The tracepoint probe `register` makes, or `ENOENT` in a fallback-only build.
fn unless_fallback<T>(register: impl FnOnce() -> Result<T>) -> Result<T> {
    if fallback_only() {
        Err(ENOENT)
    } else {
        register()
    }
}

/// How received IPIs are counted.
enum Received {
    /// x86 `irq_vectors:*_entry`, one per kind of [`Kind::ALL`] (`None` where the kernel lacks it).
    Vectors([Option<TracepointProbe<IpiReceived>>; 3]),
    /// arm64 `ipi:ipi_entry`: one tracepoint for every IPI; the call-function kinds are not apart.
    /// Held to stay registered.
    IpiEntry {
        _probe: TracepointProbe<IpiEntryReceived>,
    },
}

/// How IPI sends to one CPU (RES, CFS) are counted: the tracepoint, or kprobes on both send functions.
enum OneTarget {
    Tracepoint(TracepointProbe<IpiCpu>),
    Kprobes {
        res: Pin<KBox<Kprobe<IpiOne<SmpSendReschedule>>>>,
        cfs: Pin<KBox<Kprobe<IpiOne<SendCallFuncSingleIpi>>>>,
    },
}

/// How call-function IPIs to a mask (CFM) are counted.
enum ManyTargets {
    Tracepoint(TracepointProbe<IpiMask>),
    Kprobe(Pin<KBox<Kprobe<IpiMany>>>),
}

/// How queued wakeups (WKL) are counted.
enum Wakeups {
    /// `csd:csd_queue_cpu`, which also counts `callbacks`.
    Tracepoint(TracepointProbe<CsdQueue>),
    /// A kretprobe on `ttwu_queue_wakelist`, where the tracepoint is missing (no `callbacks` then).
    Kretprobe(Pin<KBox<Kretprobe<Wakelist>>>),
}

/// How reschedule requests (RSC) are counted.
enum Requests {
    /// `sched_set_need_resched_tp`: each flag newly set.
    Tracepoint(TracepointProbe<NeedResched>),
    /// A kprobe on `__resched_curr` or `resched_curr`, where the tracepoint is missing: each call.
    Kprobe(Pin<KBox<Kprobe<Resched>>>),
}

/// Every probe of the module; dropping it unregisters them all.
pub(crate) struct Probes {
    one: OneTarget,
    many: ManyTargets,
    rsc: Requests,
    wkl: Wakeups,
    /// The receive side.
    received: Received,
}

impl Probes {
    /// Registers every probe counting into `engine`. A probe that fails is logged and left out; if none
    /// registers, this fails with the first error.
    pub(crate) fn new(engine: &Arc<Engine>) -> Result<Self> {
        fn one<F: TargetCpu>(
            engine: &Arc<Engine>,
            array: PerTarget,
            tag: Tag,
            kind: Kind,
        ) -> IpiOne<F> {
            IpiOne {
                engine: engine.clone(),
                array,
                tag,
                kind,
                _function: PhantomData,
            }
        }
        let received = |kind: Kind, vector: Vector| -> Result<Result<_>> {
            let handler = Arc::new(
                IpiReceived {
                    engine: engine.clone(),
                    kind,
                },
                GFP_KERNEL,
            )?;
            Ok(TracepointProbe::vector_entry(vector, handler))
        };
        // The receive side first: an IPI is then never counted as sent (and as coalesced) for want of
        // its receive probe. x86's vector tracepoints; arm and arm64 fire `ipi:ipi_entry` instead
        // (other architectures have it but never fire it, so it is not tried there: `received` then
        // says "not counted").
        let vectors = [
            (Kind::Res, Vector::Reschedule),
            (Kind::Cfs, Vector::CallFunctionSingle),
            (Kind::Cfm, Vector::CallFunction),
        ]
        .map(|(kind, vector)| {
            received(kind, vector).map(|r| {
                r.inspect_err(|e| {
                    if cfg!(target_arch = "x86_64") {
                        pr_info!(
                            "tracepoint {}: error {}; {} not counted as received\n",
                            vector.entry().to_str().unwrap_or("?"),
                            e.to_errno(),
                            kind.name()
                        )
                    }
                })
                .ok()
            })
        });
        let [res, cfs, cfm] = vectors;
        let vectors = [res?, cfs?, cfm?];
        let received = if !cfg!(any(target_arch = "aarch64", target_arch = "arm")) {
            Received::Vectors(vectors)
        } else {
            let handler = Arc::new(
                IpiEntryReceived {
                    engine: engine.clone(),
                },
                GFP_KERNEL,
            )?;
            match TracepointProbe::ipi_entry(handler) {
                Ok(tp) => Received::IpiEntry { _probe: tp },
                Err(e) => {
                    pr_info!(
                        "tracepoint ipi_entry: error {}; received IPIs not counted\n",
                        e.to_errno()
                    );
                    Received::Vectors(vectors)
                }
            }
        };
        let ipi_cpu = Arc::new(
            IpiCpu {
                engine: engine.clone(),
            },
            GFP_KERNEL,
        )?;
        let one = match unless_fallback(|| TracepointProbe::ipi_send_cpu(ipi_cpu)) {
            Ok(tp) => OneTarget::Tracepoint(tp),
            Err(e) => {
                pr_info!(
                    "tracepoint ipi_send_cpu: error {}; RES and CFS by kprobes\n",
                    e.to_errno()
                );
                OneTarget::Kprobes {
                    res: KBox::pin_init(
                        Kprobe::new(one(engine, PerTarget::Res, Tag::Res, Kind::Res)),
                        GFP_KERNEL,
                    )?,
                    cfs: KBox::pin_init(
                        Kprobe::new(one(engine, PerTarget::Cfs, Tag::Cfs, Kind::Cfs)),
                        GFP_KERNEL,
                    )?,
                }
            }
        };
        let ipi_mask = Arc::new(
            IpiMask {
                engine: engine.clone(),
            },
            GFP_KERNEL,
        )?;
        let many = match unless_fallback(|| TracepointProbe::ipi_send_cpumask(ipi_mask)) {
            Ok(tp) => ManyTargets::Tracepoint(tp),
            Err(e) => {
                pr_info!(
                    "tracepoint ipi_send_cpumask: error {}; CFM by kprobe\n",
                    e.to_errno()
                );
                ManyTargets::Kprobe(KBox::pin_init(
                    Kprobe::new(IpiMany {
                        engine: engine.clone(),
                    }),
                    GFP_KERNEL,
                )?)
            }
        };
        let csd = Arc::new(
            CsdQueue {
                engine: engine.clone(),
            },
            GFP_KERNEL,
        )?;
        let wkl = match unless_fallback(|| TracepointProbe::csd_queue_cpu(csd)) {
            Ok(tp) => Wakeups::Tracepoint(tp),
            Err(e) => {
                pr_info!(
                    "tracepoint csd_queue_cpu: error {}; WKL by kretprobe, no callbacks\n",
                    e.to_errno()
                );
                // Calls in flight at once: one per CPU and context (task, softirq, hardirq, NMI), twice
                // over, so that a lack of instances never drops a wakeup.
                Wakeups::Kretprobe(KBox::pin_init(
                    Kretprobe::new(
                        8 * cpu::nr_cpu_ids() as i32,
                        Wakelist {
                            engine: engine.clone(),
                        },
                    ),
                    GFP_KERNEL,
                )?)
            }
        };
        let need = Arc::new(
            NeedResched {
                engine: engine.clone(),
            },
            GFP_KERNEL,
        )?;
        let rsc = match unless_fallback(|| TracepointProbe::set_need_resched(need)) {
            Ok(tp) => Requests::Tracepoint(tp),
            Err(e) => {
                pr_info!(
                    "tracepoint sched_set_need_resched_tp: error {}; RSC by kprobe\n",
                    e.to_errno()
                );
                Requests::Kprobe(KBox::pin_init(
                    Kprobe::new(Resched {
                        engine: engine.clone(),
                    }),
                    GFP_KERNEL,
                )?)
            }
        };
        let probes = Self {
            one,
            many,
            rsc,
            wkl,
            received,
        };
        let mut first_error = None;
        let mut registered = 0;
        for (tag, probe) in probes.list() {
            match probe.status() {
                Ok(()) => registered += 1,
                Err(e) => {
                    pr_warn!(
                        "{} {} on {} failed: {}\n",
                        tag.name(),
                        probe.via(),
                        probe.symbol().to_str().unwrap_or("?"),
                        e.to_errno()
                    );
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if registered == 0 => Err(e),
            _ => Ok(probes),
        }
    }

    /// Whether IPIs of `kind` are counted as received.
    pub(crate) fn has_received(&self, kind: Kind) -> bool {
        match &self.received {
            Received::Vectors(v) => v[kind as usize].is_some(),
            Received::IpiEntry { .. } => true,
        }
    }

    /// Whether received call-function IPIs are counted apart per kind (x86's two vectors), or all
    /// under CFS (arm64's one IPI).
    pub(crate) fn received_calls_apart(&self) -> bool {
        matches!(self.received, Received::Vectors(_))
    }

    /// Whether `csd:csd_queue_cpu` counts the queued functions (and the queued wakeups).
    pub(crate) fn has_callbacks(&self) -> bool {
        matches!(self.wkl, Wakeups::Tracepoint(_))
    }

    /// The probes with their tags, in display order ([`Tag::ALL`]); RES and CFS share the
    /// `ipi_send_cpu` tracepoint when it is used.
    pub(crate) fn list(&self) -> [(Tag, &dyn Probe); Tag::ALL.len()] {
        let (res, cfs): (&dyn Probe, &dyn Probe) = match &self.one {
            OneTarget::Tracepoint(tp) => (tp, tp),
            OneTarget::Kprobes { res, cfs } => (&**res, &**cfs),
        };
        let cfm: &dyn Probe = match &self.many {
            ManyTargets::Tracepoint(tp) => tp,
            ManyTargets::Kprobe(kp) => &**kp,
        };
        let rsc: &dyn Probe = match &self.rsc {
            Requests::Tracepoint(tp) => tp,
            Requests::Kprobe(kp) => &**kp,
        };
        let wkl: &dyn Probe = match &self.wkl {
            Wakeups::Tracepoint(tp) => tp,
            Wakeups::Kretprobe(rp) => &**rp,
        };
        [
            (Tag::Res, res),
            (Tag::Cfs, cfs),
            (Tag::Cfm, cfm),
            (Tag::Rsc, rsc),
            (Tag::Wkl, wkl),
        ]
    }
}
