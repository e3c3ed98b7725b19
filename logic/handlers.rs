// SPDX-License-Identifier: GPL-2.0

//! What a hit of each probe counts: one handler per probed event, each counting into the engine's
//! active window and timing what it starts or ends. [`crate::logic::probes`] registers them.

use crate::logic::counters::{Local, PerTarget, Tag};
use crate::logic::engine::{Engine, Window};
use crate::logic::latency::Kind;
use crate::logic::noise::{Hard, TIMED_SOFTIRQS};
use crate::sys::cpu::{self, CpuMask};
use crate::sys::kprobe::{Function, Handler, Regs, RetHandler, RetRegs};
use crate::sys::probed::{ReschedCurr, SendCallFuncIpi, TargetCpu, TtwuQueueWakelist};
use crate::sys::stacktrace::{Stack, MAX_FRAMES};
use crate::sys::tracepoint::{
    CsdFunctionEntry, CsdFunctionExit, CsdQueueCpu, Here, IpiEntry, IpiExit, IpiSendCpu,
    IpiSendCpumask, IrqAction, IrqHandlerEntry, IrqHandlerExit, Request, SetNeedResched,
    SoftirqEntry, SoftirqExit, VectorEntry, VectorExit, WakeIdleWithoutIpi,
};
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use kernel::sync::Arc;

/// `native_smp_send_reschedule(int cpu)` and `native_send_call_func_single_ipi(int cpu)`: one IPI from
/// this CPU to `cpu`.
pub(crate) struct IpiOne<F: TargetCpu> {
    pub(super) engine: Arc<Engine>,
    kind: Kind,
    _function: PhantomData<F>,
}

impl<F: TargetCpu> IpiOne<F> {
    /// Counts the sends of `kind` (RES or CFS) that `F` makes.
    pub(super) fn new(engine: &Arc<Engine>, kind: Kind) -> Self {
        Self {
            engine: engine.clone(),
            kind,
            _function: PhantomData,
        }
    }
}

impl<F: TargetCpu> Handler for IpiOne<F> {
    type Function = F;

    #[inline]
    fn hit(&self, regs: &Regs<'_, F>) {
        let window = self.engine.window();
        let target = regs.target_cpu();
        window.counters.sent(self.kind.array(), target);
        self.engine.latency().ipi_sent(self.kind, target);
        record_stack(&self.engine, window, self.kind.tag(), regs);
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
    pub(super) engine: Arc<Engine>,
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
    pub(super) engine: Arc<Engine>,
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
            .resched_requested(this, target, Request::Immediate, || regs.already_marked());
        record_stack(&self.engine, window, Tag::Rsc, regs);
    }
}

/// `sched_set_need_resched_tp(tsk, cpu, tif)`: this CPU newly set a need-resched flag (lazy or not) of
/// `cpu`'s current task, which was not marked before (so a reschedule interval starts or restarts), or
/// promoted its pending lazy request to an immediate one.
pub(crate) struct NeedResched {
    pub(super) engine: Arc<Engine>,
}

impl SetNeedResched for NeedResched {
    #[inline]
    fn set_need_resched(&self, target: usize, request: Request, here: &Here<'_>) {
        let window = self.engine.window();
        let this = cpu::this_cpu();
        window.counters.resched(this, target);
        match request {
            Request::Immediate => {}
            Request::Lazy => window.counters.local(Local::RscLazy),
            Request::Promoted => window.counters.local(Local::RscPromoted),
        }
        self.engine
            .latency()
            .resched_requested(this, target, request, || false);
        record_here(&self.engine, window, Tag::Rsc, here);
    }
}

/// `sched:sched_wake_idle_without_ipi(cpu)`: this CPU found `cpu` polling idle and woke it without an
/// IPI (a reschedule request, or a call queued for it).
pub(crate) struct IdleWake {
    pub(super) engine: Arc<Engine>,
}

impl WakeIdleWithoutIpi for IdleWake {
    #[inline]
    fn wake_idle_without_ipi(&self, cpu: usize) {
        self.engine.window().counters.sent(PerTarget::NoIpi, cpu);
    }
}

/// `ipi:ipi_send_cpu(cpu, callsite, callback)`: a reschedule IPI when `callback` is NULL
/// (`smp_send_reschedule()`), else a call-function-single IPI when it goes to another CPU
/// (`send_call_function_single_ipi()`); an IPI to the sending CPU with a callback is `irq_work_raise()`'s
/// self-IPI, not counted (call-function IPIs are never sent to the sending CPU: it runs the call).
pub(crate) struct IpiCpu {
    pub(super) engine: Arc<Engine>,
}

impl IpiSendCpu for IpiCpu {
    #[inline]
    fn ipi_send_cpu(&self, target: usize, callback: usize, here: &Here<'_>) {
        let kind = if callback == 0 {
            Kind::Res
        } else if target != cpu::this_cpu() {
            Kind::Cfs
        } else {
            return;
        };
        let window = self.engine.window();
        window.counters.sent(kind.array(), target);
        self.engine.latency().ipi_sent(kind, target);
        record_here(&self.engine, window, kind.tag(), here);
    }
}

/// `ipi:ipi_send_cpumask(mask, callsite, callback)`: call-function IPIs to every CPU of `mask`.
pub(crate) struct IpiMask {
    pub(super) engine: Arc<Engine>,
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
    pub(super) engine: Arc<Engine>,
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
    pub(super) engine: Arc<Engine>,
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
    /// recording is on: it may have been turned off since the entry). A call whose entry came while
    /// recording was off has no stack: if recording is on at its return, it counts as dropped, so that
    /// the table's stacks and dropped hits still add up to the hits (seen in CI: a call straddling
    /// `stacks_enable` and a reset).
    fn ret(&self, call: &WakeCall, regs: &RetRegs<'_, TtwuQueueWakelist>) {
        if regs.queued() {
            let window = self.engine.window();
            window.counters.sent(PerTarget::Wkl, call.target as usize);
            let none = Stack {
                frames: [0; MAX_FRAMES],
            };
            self.engine
                .record(window, Tag::Wkl, call.stack.as_ref().unwrap_or(&none));
        }
    }
}

/// x86 `irq_vectors:*_entry`: an IPI of `kind` is received on this CPU (its handler starts).
pub(crate) struct IpiReceived {
    pub(super) engine: Arc<Engine>,
    pub(super) kind: Kind,
}

impl VectorEntry for IpiReceived {
    #[inline]
    fn vector_entry(&self) {
        let window = self.engine.window();
        self.engine
            .latency()
            .ipi_received(&window.counters, self.kind, cpu::this_cpu());
        let hard = if self.kind == Kind::Res {
            Hard::Res
        } else {
            Hard::Cal
        };
        self.engine.noise().vector_entry(hard);
    }
}

/// arm64 `ipi:ipi_entry`: `IPI0` ("Rescheduling interrupts") and `IPI1` ("Function call interrupts")
/// received on this CPU. arm64 sends both call-function kinds as `IPI1`: it is counted as received
/// under CFS, and ends the delivery intervals of both kinds.
pub(crate) struct IpiEntryReceived {
    pub(super) engine: Arc<Engine>,
}

impl IpiEntry for IpiEntryReceived {
    fn ipi_entry(&self, reason: &[u8]) {
        let Some(hard) = arm64_ipi(reason) else {
            return;
        };
        self.engine.noise().vector_entry(hard);
        let kind = match hard {
            Hard::Res => Kind::Res,
            Hard::Cal => Kind::Cfs,
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

/// The vector of an arm64 IPI, by its `/proc/interrupts` name (`None`: not followed; the CPU-stop and
/// backtrace IPIs among them, which may come as NMIs).
fn arm64_ipi(reason: &[u8]) -> Option<Hard> {
    match reason {
        b"Rescheduling interrupts" => Some(Hard::Res),
        b"Function call interrupts" => Some(Hard::Cal),
        b"IRQ work interrupts" => Some(Hard::IrqWork),
        _ => None,
    }
}

/// x86 `irq_vectors:*_exit` of the IPIs, and the local timer's and irq_work's entries and exits: the
/// handler of vector `hard` starts or returns on this CPU.
pub(crate) struct VectorNoise {
    pub(super) engine: Arc<Engine>,
    pub(super) hard: Hard,
}

impl VectorEntry for VectorNoise {
    #[inline]
    fn vector_entry(&self) {
        self.engine.noise().vector_entry(self.hard);
    }
}

impl VectorExit for VectorNoise {
    #[inline]
    fn vector_exit(&self) {
        let window = self.engine.window();
        self.engine.noise().vector_exit(&window.noise, self.hard);
    }
}

/// What else interrupts a CPU: device interrupt handlers, softirqs, queued cross-CPU calls, and
/// arm64's IPI exits.
pub(crate) struct Interrupts {
    pub(super) engine: Arc<Engine>,
}

impl IrqHandlerEntry for Interrupts {
    #[inline]
    fn irq_handler_entry(&self, irq: u32, action: &IrqAction<'_>) {
        self.engine.noise().irq_entry(irq, action);
    }
}

impl IrqHandlerExit for Interrupts {
    #[inline]
    fn irq_handler_exit(&self, irq: u32) {
        let window = self.engine.window();
        self.engine.noise().irq_exit(&window.noise, irq);
    }
}

impl SoftirqEntry for Interrupts {
    #[inline]
    fn softirq_entry(&self, vec: usize) {
        if TIMED_SOFTIRQS {
            self.engine.noise().softirq_entry(vec);
        } else {
            let window = self.engine.window();
            self.engine.noise().softirq_count(&window.noise, vec);
        }
    }
}

impl SoftirqExit for Interrupts {
    #[inline]
    fn softirq_exit(&self, vec: usize) {
        if !TIMED_SOFTIRQS {
            return;
        }
        let window = self.engine.window();
        self.engine.noise().softirq_exit(&window.noise, vec);
    }
}

impl CsdFunctionEntry for Interrupts {
    #[inline]
    fn csd_function_entry(&self, func: usize) {
        self.engine.noise().func_entry(func);
    }
}

impl CsdFunctionExit for Interrupts {
    #[inline]
    fn csd_function_exit(&self, func: usize) {
        let window = self.engine.window();
        self.engine.noise().func_exit(&window.noise, func);
    }
}

impl IpiExit for Interrupts {
    fn ipi_exit(&self, reason: &[u8]) {
        if let Some(hard) = arm64_ipi(reason) {
            let window = self.engine.window();
            self.engine.noise().vector_exit(&window.noise, hard);
        }
    }
}
