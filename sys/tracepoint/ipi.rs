// SPDX-License-Identifier: GPL-2.0

//! The IPI and cross-CPU call tracepoints this module probes (`ipi:*`, `csd:*`, x86 `irq_vectors:*`):
//! their handler traits, constructors and trampolines (one [`tracepoint!`] each, but the three
//! `irq_vectors` entries, which share one prototype).
//!
//! C headers: [`include/trace/events/ipi.h`](srctree/include/trace/events/ipi.h),
//! [`include/trace/events/csd.h`](srctree/include/trace/events/csd.h)

use super::super::bindings;
use super::super::cpu::CpuMask;
use super::{cstr_bytes, Here, Inner, TracepointProbe};
use kernel::c_str;
use kernel::ffi::{c_char, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;

tracepoint! {
    /// `ipi_send_cpu(cpu, callsite, callback)` (may run in NMI: no locks): an IPI to one CPU is about
    /// to be sent, from `smp_send_reschedule()` (callback NULL; its callers hold a runqueue lock or
    /// have preemption off), `send_call_function_single_ipi()` (callback
    /// `generic_smp_call_function_single_interrupt`; from `__smp_call_single_queue()`, whose callers
    /// have preemption off) or `irq_work_raise()` (a self-IPI, callback the work; preemption off).
    trait IpiSendCpu {
        /// An IPI to `cpu`; `callback` is 0 for NULL. `here` gives the sender's stack.
        fn ipi_send_cpu(&self, cpu: usize, callback: usize, here: &Here<'_>);
    }
    /// Calls `handler` at every `ipi_send_cpu`.
    fn ipi_send_cpu = "ipi_send_cpu";
    /// `ipi_send_cpu` trampoline.
    unsafe extern "C" fn ipi_send_cpu_probe(
        inner,
        cpu: u32,
        _callsite: usize,
        callback: *mut c_void,
    ) {
        let here = inner.here();
        inner
            .handler
            .ipi_send_cpu(cpu as usize, callback as usize, &here);
    }
}

tracepoint! {
    /// `ipi_send_cpumask(mask, callsite, callback)`: call-function IPIs to the CPUs of `mask` are about
    /// to be sent (`send_call_function_ipi_mask()`, from `smp_call_function_many_cond()` after its
    /// `get_cpu()`).
    trait IpiSendCpumask {
        /// IPIs to the CPUs of `mask`. `here` gives the sender's stack.
        fn ipi_send_cpumask(&self, mask: &CpuMask<'_>, callback: usize, here: &Here<'_>);
    }
    /// Calls `handler` at every `ipi_send_cpumask`.
    fn ipi_send_cpumask = "ipi_send_cpumask";
    /// `ipi_send_cpumask` trampoline: `mask` is a valid cpumask for the call.
    unsafe extern "C" fn ipi_send_cpumask_probe(
        inner,
        mask: *const bindings::cpumask,
        _callsite: usize,
        callback: *mut c_void,
    ) {
        // SAFETY: The sender keeps `mask` valid and unchanged while it sends, which includes this
        // call.
        let mask = unsafe { CpuMask::from_raw(mask as usize) };
        inner
            .handler
            .ipi_send_cpumask(&mask, callback as usize, &inner.here());
    }
}

tracepoint! {
    /// `csd_queue_cpu(cpu, callsite, func, csd)` (may run in NMI: no locks): a function call is queued
    /// for `cpu` (`__smp_call_single_queue()`, whose callers have preemption off:
    /// `generic_exec_single()`, `irq_work_queue_on()`, `ttwu_queue_wakelist()` under `p->pi_lock`;
    /// `smp_call_function_many_cond()` after its `get_cpu()`); `func` is the function that will run
    /// there (`sched_ttwu_pending` for wakelist wakeups).
    trait CsdQueueCpu {
        /// `func` queued for `cpu`; `wakeup` when the queued entry is a task's wakelist entry (a
        /// wakeup queued by `ttwu_queue_wakelist()`, `CSD_TYPE_TTWU`). `here` gives the queuing CPU's
        /// stack.
        fn csd_queue_cpu(&self, cpu: usize, func: usize, wakeup: bool, here: &Here<'_>);
    }
    /// Calls `handler` at every `csd_queue_cpu`.
    fn csd_queue_cpu = "csd_queue_cpu";
    /// `csd_queue_cpu` trampoline, with the tracepoint's own prototype (`smp_call_func_t func`,
    /// `call_single_data_t *csd`): `func` is never NULL (kernel/smp.c fires the tracepoint with the
    /// function of a call it queues, or with `sched_ttwu_pending` for a wakelist entry).
    unsafe extern "C" fn csd_queue_cpu_probe(
        inner,
        cpu: u32,
        _callsite: usize,
        func: unsafe extern "C" fn(*mut c_void),
        csd: *mut bindings::__call_single_data,
    ) {
        // Every queued entry starts with a `struct __call_single_node` whose flags hold its type; the
        // queuing code reads them the same way (`CSD_TYPE()`, just before this tracepoint in
        // `__smp_call_single_queue()`). The type bits do not change while the entry is queued.
        // SAFETY: `csd` is the entry being queued, valid for this call (not yet on any list); its
        // flags are an aligned `unsigned int`, read once as `READ_ONCE()` would (another CPU may set
        // other bits of an irq_work's flags meanwhile).
        let flags =
            unsafe { core::ptr::addr_of!((*csd).node.__bindgen_anon_1.u_flags).read_volatile() };
        let wakeup = flags & bindings::CSD_FLAG_TYPE_MASK == bindings::CSD_TYPE_TTWU;
        inner
            .handler
            .csd_queue_cpu(cpu as usize, func as usize, wakeup, &inner.here());
    }
}

tracepoint! {
    /// `ipi:ipi_entry(reason)` (arm64, arm: `do_handle_IPI()`): the handler of an IPI starts on this
    /// CPU, in hard interrupt context, or in NMI context for the CPU-stop IPI with pseudo-NMIs (and
    /// during a panic), `reason` the IPI's line in `/proc/interrupts` (`"Rescheduling interrupts"`,
    /// `"Function call interrupts"`, ...). Other architectures (x86 among them) have the tracepoint
    /// but never fire it.
    trait IpiEntry {
        /// An IPI whose `/proc/interrupts` name is `reason` (without its NUL) is received on this CPU.
        /// An implementation must look at `reason` before doing anything else and do nothing for IPIs
        /// it does not count: this also runs in NMI context.
        fn ipi_entry(&self, reason: &[u8]);
    }
    /// Calls `handler` each time an IPI handler starts, on architectures that fire `ipi:ipi_entry`.
    fn ipi_entry = "ipi_entry";
    /// `ipi:ipi_entry` trampoline: `reason` is a NUL-terminated string literal (an entry of arm64's
    /// `ipi_types[]`), or NULL.
    unsafe extern "C" fn ipi_entry_probe(inner, reason: *const c_char) {
        if reason.is_null() {
            return;
        }
        // SAFETY: `reason` is a NUL-terminated string literal (see above), which lives as long as the
        // kernel; reading it is safe in any context, NMI included.
        let reason = unsafe { CStr::from_char_ptr(reason) };
        inner.handler.ipi_entry(cstr_bytes(reason));
    }
}

/// x86 `irq_vectors:<vector>_entry(vector)` (`reschedule_entry`, `call_function_single_entry`,
/// `call_function_entry`): the IPI handler starts on this CPU, in hard interrupt context with interrupts
/// off, before it counts itself in `/proc/interrupts`. Three tracepoints of one prototype: the
/// constructor takes the [`Vector`].
pub(crate) trait VectorEntry: Send + Sync {
    /// The handler of the IPI this probe was registered for starts on this CPU.
    fn vector_entry(&self);
}

/// `irq_vectors:*_entry` trampoline.
///
/// # Safety
///
/// Registered by [`TracepointProbe::vector_entry`]: `data` is its live `Inner<H>`.
unsafe extern "C" fn vector_entry_probe<H: VectorEntry>(data: *mut c_void, _vector: i32) {
    // SAFETY: `data` is the `Inner` the probe keeps alive while registered.
    let inner = unsafe { &*data.cast::<Inner<H>>() };
    inner.handler.vector_entry();
}

/// The x86 system vectors whose handlers this module follows through their `irq_vectors` entry and
/// exit tracepoints.
#[derive(Clone, Copy)]
pub(crate) enum Vector {
    /// `RESCHEDULE_VECTOR`: `reschedule_entry` (`/proc/interrupts` RES).
    Reschedule,
    /// `CALL_FUNCTION_SINGLE_VECTOR`: `call_function_single_entry` (part of CAL).
    CallFunctionSingle,
    /// `CALL_FUNCTION_VECTOR`: `call_function_entry` (part of CAL).
    CallFunction,
    /// `LOCAL_TIMER_VECTOR`: `local_timer_entry` (`/proc/interrupts` LOC).
    LocalTimer,
    /// `IRQ_WORK_VECTOR`: `irq_work_entry` (`/proc/interrupts` IWI).
    IrqWork,
}

impl Vector {
    /// The entry tracepoint's name.
    pub(crate) fn entry(self) -> &'static CStr {
        match self {
            Vector::Reschedule => c_str!("reschedule_entry"),
            Vector::CallFunctionSingle => c_str!("call_function_single_entry"),
            Vector::CallFunction => c_str!("call_function_entry"),
            Vector::LocalTimer => c_str!("local_timer_entry"),
            Vector::IrqWork => c_str!("irq_work_entry"),
        }
    }

    /// The exit tracepoint's name.
    pub(crate) fn exit(self) -> &'static CStr {
        super::irq::exit_name(self)
    }
}

impl<H: VectorEntry> TracepointProbe<H> {
    /// Calls `handler` each time the handler of `vector` starts (`ENOENT` where the kernel has no such
    /// tracepoint: not x86).
    pub(crate) fn vector_entry(vector: Vector, handler: Arc<H>) -> Result<Self> {
        // SAFETY: Every `irq_vectors` entry tracepoint has the prototype `(int vector)`, which
        // `vector_entry_probe` has after the data pointer.
        unsafe {
            Self::register(
                vector.entry(),
                vector_entry_probe::<H> as *mut c_void,
                handler,
            )
        }
    }
}
