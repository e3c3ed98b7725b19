// SPDX-License-Identifier: GPL-2.0

//! The kernel functions this module probes: their symbols and their arguments, read with the types of
//! their prototypes.
//!
//! Symbols (x86_64, 6.12): the three IPI send paths are reached through `smp_ops`, so they are never
//! inlined; `resched_curr` became `__resched_curr(rq, tif)` in 6.13, so both names are tried.
//! C sources: [`arch/x86/kernel/smp.c`](srctree/arch/x86/kernel/smp.c),
//! [`kernel/sched/core.c`](srctree/kernel/sched/core.c)

use super::cpu::{self, CpuMask};
use super::kprobe::{Function, Regs, RetRegs};
use kernel::c_str;
use kernel::prelude::*;

/// `void native_smp_send_reschedule(int cpu)`: a reschedule IPI to `cpu`.
pub(crate) enum SmpSendReschedule {}

/// `void native_send_call_func_single_ipi(int cpu)`: a call-function-single IPI to `cpu`.
pub(crate) enum SendCallFuncSingleIpi {}

/// `void native_send_call_func_ipi(const struct cpumask *mask)`: call-function IPIs to `mask`.
pub(crate) enum SendCallFuncIpi {}

/// `void resched_curr(struct rq *rq)` / `void __resched_curr(struct rq *rq, int tif)`.
pub(crate) enum ReschedCurr {}

/// `bool ttwu_queue_wakelist(struct task_struct *p, int cpu, int wake_flags)`.
pub(crate) enum TtwuQueueWakelist {}

// SAFETY: The symbol has the documented prototype.
unsafe impl Function for SmpSendReschedule {
    const SYMBOLS: &'static [&'static CStr] = &[c_str!("native_smp_send_reschedule")];
}

// SAFETY: The symbol has the documented prototype.
unsafe impl Function for SendCallFuncSingleIpi {
    const SYMBOLS: &'static [&'static CStr] = &[c_str!("native_send_call_func_single_ipi")];
}

// SAFETY: The symbol has the documented prototype.
unsafe impl Function for SendCallFuncIpi {
    const SYMBOLS: &'static [&'static CStr] = &[c_str!("native_send_call_func_ipi")];
}

// SAFETY: Both symbols take the `struct rq *` first.
unsafe impl Function for ReschedCurr {
    const SYMBOLS: &'static [&'static CStr] = &[c_str!("__resched_curr"), c_str!("resched_curr")];
}

// SAFETY: The symbol has the documented prototype.
unsafe impl Function for TtwuQueueWakelist {
    const SYMBOLS: &'static [&'static CStr] = &[c_str!("ttwu_queue_wakelist")];
}

/// Functions whose first argument is the target CPU (`int cpu`).
pub(crate) trait TargetCpu: Function {}

impl TargetCpu for SmpSendReschedule {}
impl TargetCpu for SendCallFuncSingleIpi {}

impl<F: TargetCpu> Regs<'_, F> {
    /// The target CPU.
    pub(crate) fn target_cpu(&self) -> usize {
        self.arg(0) as u32 as usize
    }
}

impl Regs<'_, SendCallFuncIpi> {
    /// The target CPUs.
    pub(crate) fn mask(&self) -> CpuMask<'_> {
        // SAFETY: The first argument is a `const struct cpumask *` (`Function` contract) that the
        // caller keeps valid for the whole call, and the borrow ends with the handler's.
        unsafe { CpuMask::from_raw(self.arg(0)) }
    }
}

impl Regs<'_, ReschedCurr> {
    /// The CPU of the runqueue whose current task is asked to reschedule.
    pub(crate) fn rq_cpu(&self) -> usize {
        // SAFETY: The first argument is a `struct rq *` (`Function` contract); runqueues live as long
        // as the kernel.
        unsafe { cpu::rq_cpu(self.arg(0)) }
    }
}

impl Regs<'_, ReschedCurr> {
    /// Whether the runqueue's current task is already marked to reschedule (before this call marks it).
    pub(crate) fn already_marked(&self) -> bool {
        // SAFETY: The first argument is a `struct rq *` (`Function` contract); the handler runs with
        // preemption off, so `rq->curr` stays valid while it is read.
        unsafe { cpu::rq_curr_marked(self.arg(0)) }
    }
}

impl Regs<'_, TtwuQueueWakelist> {
    /// The CPU on whose wakelist the task would be queued.
    pub(crate) fn cpu(&self) -> usize {
        self.arg(1) as u32 as usize
    }
}

impl RetRegs<'_, TtwuQueueWakelist> {
    /// Whether the call queued the wakeup (returned true).
    pub(crate) fn queued(&self) -> bool {
        // A C `bool` is returned in the low byte of the return register.
        self.return_value() & 0xff != 0
    }
}
