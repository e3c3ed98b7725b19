// SPDX-License-Identifier: GPL-2.0

//! What a hit of each probed kernel function counts, and the probes that make up the module.
//!
//! The functions themselves, their symbols and typed arguments are in [`crate::sys::probed`].

use crate::logic::counters::{Counters, PerTarget, Tag};
use crate::logic::stacks::Stacks;
use crate::sys::kprobe::{Handler, Kprobe, Kretprobe, Probe, Regs, RetHandler, RetRegs};
use crate::sys::probed::{
    Function, ReschedCurr, SendCallFuncIpi, SendCallFuncSingleIpi, SmpSendReschedule, TargetCpu,
    TtwuQueueWakelist,
};
use crate::sys::{cpu, stacktrace::Stack};
use core::marker::PhantomData;
use kernel::prelude::*;
use kernel::sync::Arc;

/// `native_smp_send_reschedule(int cpu)` and `native_send_call_func_single_ipi(int cpu)`: one IPI from
/// this CPU to `cpu`.
pub(crate) struct IpiOne<F: TargetCpu> {
    counters: Arc<Counters>,
    stacks: Arc<Stacks>,
    array: PerTarget,
    tag: Tag,
    _function: PhantomData<F>,
}

impl<F: TargetCpu> Handler for IpiOne<F> {
    type Function = F;

    fn hit(&self, regs: &Regs<'_, F>) {
        self.counters.sent(self.array, regs.target_cpu());
        record_stack(&self.stacks, self.tag, regs);
    }
}

/// Records the stack of a hit of `tag` when stack attribution is on (one load and a branch when off).
#[inline]
fn record_stack<F: Function>(stacks: &Stacks, tag: Tag, regs: &Regs<'_, F>) {
    if stacks.enabled() {
        stacks.record(tag, &Stack::from_regs(regs));
    }
}

/// `native_send_call_func_ipi(const struct cpumask *mask)`: one send to every CPU in `mask`.
pub(crate) struct IpiMany {
    counters: Arc<Counters>,
    stacks: Arc<Stacks>,
}

impl Handler for IpiMany {
    type Function = SendCallFuncIpi;

    fn hit(&self, regs: &Regs<'_, SendCallFuncIpi>) {
        self.counters.sent_many(regs.mask().iter());
        record_stack(&self.stacks, Tag::Cfm, regs);
    }
}

/// `resched_curr(struct rq *rq)` / `__resched_curr(struct rq *rq, int tif)`: a request from this CPU
/// that `rq`'s CPU reschedule.
pub(crate) struct Resched {
    counters: Arc<Counters>,
    stacks: Arc<Stacks>,
}

impl Handler for Resched {
    type Function = ReschedCurr;

    fn hit(&self, regs: &Regs<'_, ReschedCurr>) {
        self.counters.resched(cpu::this_cpu(), regs.rq_cpu());
        record_stack(&self.stacks, Tag::Rsc, regs);
    }
}

/// `bool ttwu_queue_wakelist(struct task_struct *p, int cpu, int wake_flags)`: remembers `cpu` (and the
/// stack, when stack attribution is on) at entry, and counts the wakeup when the function returns true
/// (it queued `p` on `cpu`'s wakelist). So WKL stacks are those of queued wakeups, as the WKL rows.
pub(crate) struct Wakelist {
    counters: Arc<Counters>,
    stacks: Arc<Stacks>,
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

    fn entry(&self, regs: &Regs<'_, TtwuQueueWakelist>) -> Option<WakeCall> {
        self.counters.wakelist_attempt();
        Some(WakeCall {
            target: regs.cpu() as u32,
            stack: self.stacks.enabled().then(|| Stack::from_regs(regs)),
        })
    }

    fn ret(&self, call: WakeCall, regs: &RetRegs<'_, TtwuQueueWakelist>) {
        if regs.queued() {
            self.counters.sent(PerTarget::Wkl, call.target as usize);
            if let Some(stack) = &call.stack {
                self.stacks.record(Tag::Wkl, stack);
            }
        }
    }
}

/// Every probe of the module; dropping it unregisters them all.
pub(crate) struct Probes {
    res: Pin<KBox<Kprobe<IpiOne<SmpSendReschedule>>>>,
    cfs: Pin<KBox<Kprobe<IpiOne<SendCallFuncSingleIpi>>>>,
    cfm: Pin<KBox<Kprobe<IpiMany>>>,
    rsc: Pin<KBox<Kprobe<Resched>>>,
    wkl: Pin<KBox<Kretprobe<Wakelist>>>,
}

impl Probes {
    /// Registers every probe counting into `counters` (and `stacks` when on). A probe that fails is
    /// logged and left out; if none registers, this fails with the first error.
    pub(crate) fn new(counters: &Arc<Counters>, stacks: &Arc<Stacks>) -> Result<Self> {
        fn one<F: TargetCpu>(
            counters: &Arc<Counters>,
            stacks: &Arc<Stacks>,
            array: PerTarget,
            tag: Tag,
        ) -> IpiOne<F> {
            IpiOne {
                counters: counters.clone(),
                stacks: stacks.clone(),
                array,
                tag,
                _function: PhantomData,
            }
        }
        let probes = Self {
            res: KBox::pin_init(
                Kprobe::new(one(counters, stacks, PerTarget::Res, Tag::Res)),
                GFP_KERNEL,
            )?,
            cfs: KBox::pin_init(
                Kprobe::new(one(counters, stacks, PerTarget::Cfs, Tag::Cfs)),
                GFP_KERNEL,
            )?,
            cfm: KBox::pin_init(
                Kprobe::new(IpiMany {
                    counters: counters.clone(),
                    stacks: stacks.clone(),
                }),
                GFP_KERNEL,
            )?,
            rsc: KBox::pin_init(
                Kprobe::new(Resched {
                    counters: counters.clone(),
                    stacks: stacks.clone(),
                }),
                GFP_KERNEL,
            )?,
            // Calls in flight at once: one per CPU and context (task, softirq, hardirq, NMI), twice over,
            // so that a lack of instances never drops a wakeup.
            wkl: KBox::pin_init(
                Kretprobe::new(
                    8 * cpu::nr_cpu_ids() as i32,
                    Wakelist {
                        counters: counters.clone(),
                        stacks: stacks.clone(),
                    },
                ),
                GFP_KERNEL,
            )?,
        };
        let mut first_error = None;
        let mut registered = 0;
        for (tag, probe) in probes.list() {
            match probe.status() {
                Ok(()) => registered += 1,
                Err(e) => {
                    pr_warn!(
                        "{} probe on {} failed: {}\n",
                        tag.name(),
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

    /// The probes with their tags, in display order ([`Tag::ALL`]).
    pub(crate) fn list(&self) -> [(Tag, &dyn Probe); Tag::ALL.len()] {
        [
            (Tag::Res, &*self.res),
            (Tag::Cfs, &*self.cfs),
            (Tag::Cfm, &*self.cfm),
            (Tag::Rsc, &*self.rsc),
            (Tag::Wkl, &*self.wkl),
        ]
    }
}
