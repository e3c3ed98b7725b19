// SPDX-License-Identifier: GPL-2.0

//! The probed kernel functions: which symbols, how their arguments are read, and what a hit counts.
//!
//! Symbols (x86_64, 6.12): the three IPI send paths are reached through `smp_ops`, so they are never
//! inlined; `resched_curr` became `__resched_curr(rq, tif)` in 6.13, so both names are tried.

use crate::counters::{Counters, PerTarget, Tag};
use crate::cpu::{self, CpuMask};
use crate::kprobe::{Handler, Kprobe, Kretprobe, Probe, Regs, RetHandler};
use crate::stacks::Stacks;
use crate::stacktrace::Stack;
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

const RES_SYMBOLS: &[&CStr] = &[c_str!("native_smp_send_reschedule")];
const CFS_SYMBOLS: &[&CStr] = &[c_str!("native_send_call_func_single_ipi")];
const CFM_SYMBOLS: &[&CStr] = &[c_str!("native_send_call_func_ipi")];
const RSC_SYMBOLS: &[&CStr] = &[c_str!("__resched_curr"), c_str!("resched_curr")];
const WKL_SYMBOLS: &[&CStr] = &[c_str!("ttwu_queue_wakelist")];

/// `native_smp_send_reschedule(int cpu)` and `native_send_call_func_single_ipi(int cpu)`: one IPI from
/// this CPU to `cpu`.
pub(crate) struct IpiOne {
    counters: Arc<Counters>,
    stacks: Arc<Stacks>,
    array: PerTarget,
    tag: Tag,
}

impl Handler for IpiOne {
    fn hit(&self, regs: &Regs) {
        self.counters.sent(self.array, regs.arg(0) as u32 as usize);
        record_stack(&self.stacks, self.tag, regs);
    }
}

/// Records the stack of a hit of `tag` when stack attribution is on (one load and a branch when off).
#[inline]
fn record_stack(stacks: &Stacks, tag: Tag, regs: &Regs) {
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
    fn hit(&self, regs: &Regs) {
        // SAFETY: The first argument of `native_send_call_func_ipi` is a `const struct cpumask *` that
        // the caller keeps valid for the whole call, and this handler runs within the call.
        let mask = unsafe { CpuMask::from_raw(regs.arg(0)) };
        self.counters.sent_many(mask.iter());
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
    fn hit(&self, regs: &Regs) {
        // SAFETY: The first argument of `resched_curr`/`__resched_curr` is a `struct rq *` of a
        // runqueue, which lives as long as the kernel; its lock is held for the call.
        let target = unsafe { cpu::rq_cpu(regs.arg(0)) };
        self.counters.resched(cpu::this_cpu(), target);
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
    type Data = WakeCall;

    fn entry(&self, regs: &Regs) -> Option<WakeCall> {
        self.counters.wakelist_attempt();
        Some(WakeCall {
            target: regs.arg(1) as u32,
            stack: self.stacks.enabled().then(|| Stack::from_regs(regs)),
        })
    }

    fn ret(&self, call: WakeCall, regs: &Regs) {
        // A C `bool` is returned in the low byte of the return register.
        if regs.return_value() & 0xff != 0 {
            self.counters.sent(PerTarget::Wkl, call.target as usize);
            if let Some(stack) = &call.stack {
                self.stacks.record(Tag::Wkl, stack);
            }
        }
    }
}

/// Every probe of the module; dropping it unregisters them all.
pub(crate) struct Probes {
    res: Pin<KBox<Kprobe<IpiOne>>>,
    cfs: Pin<KBox<Kprobe<IpiOne>>>,
    cfm: Pin<KBox<Kprobe<IpiMany>>>,
    rsc: Pin<KBox<Kprobe<Resched>>>,
    wkl: Pin<KBox<Kretprobe<Wakelist>>>,
}

impl Probes {
    /// Registers every probe counting into `counters` (and `stacks` when on). A probe that fails is
    /// logged and left out; if none registers, this fails with the first error.
    pub(crate) fn new(counters: &Arc<Counters>, stacks: &Arc<Stacks>) -> Result<Self> {
        let one = |array, tag| IpiOne {
            counters: counters.clone(),
            stacks: stacks.clone(),
            array,
            tag,
        };
        let probes = Self {
            res: KBox::pin_init(
                Kprobe::new(RES_SYMBOLS, one(PerTarget::Res, Tag::Res)),
                GFP_KERNEL,
            )?,
            cfs: KBox::pin_init(
                Kprobe::new(CFS_SYMBOLS, one(PerTarget::Cfs, Tag::Cfs)),
                GFP_KERNEL,
            )?,
            cfm: KBox::pin_init(
                Kprobe::new(
                    CFM_SYMBOLS,
                    IpiMany {
                        counters: counters.clone(),
                        stacks: stacks.clone(),
                    },
                ),
                GFP_KERNEL,
            )?,
            rsc: KBox::pin_init(
                Kprobe::new(
                    RSC_SYMBOLS,
                    Resched {
                        counters: counters.clone(),
                        stacks: stacks.clone(),
                    },
                ),
                GFP_KERNEL,
            )?,
            // Calls in flight at once: one per CPU and context (task, softirq, hardirq, NMI), twice over,
            // so that a lack of instances never drops a wakeup.
            wkl: KBox::pin_init(
                Kretprobe::new(
                    WKL_SYMBOLS,
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
                        "resched: {} probe on {} failed: {}\n",
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

    /// The probes with their tags, in display order.
    pub(crate) fn list(&self) -> [(Tag, &dyn Probe); 5] {
        [
            (Tag::Res, &*self.res),
            (Tag::Cfs, &*self.cfs),
            (Tag::Cfm, &*self.cfm),
            (Tag::Rsc, &*self.rsc),
            (Tag::Wkl, &*self.wkl),
        ]
    }
}
