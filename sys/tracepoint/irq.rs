// SPDX-License-Identifier: GPL-2.0

//! The tracepoints of what interrupts a CPU (`irq:irq_handler_*`, `irq:softirq_*`,
//! `csd:csd_function_*`, x86 `irq_vectors:*_exit` and the local timer's and irq_work's entries, arm64
//! `ipi:ipi_exit`): their handler traits, constructors and trampolines.
//!
//! Every one of them fires on the interrupted CPU, in the context of what interrupts it: hard interrupt
//! context with interrupts off (device handlers: `__handle_irq_event_percpu()` and the per-CPU flow
//! handlers of kernel/irq/chip.c, which warn if a handler turned interrupts on; x86 system vectors),
//! softirq context (`handle_softirqs()`, interrupts on: hard interrupts may come in between entry and
//! exit), or wherever queued cross-CPU calls run (`csd_do_func()`, kernel/smp.c: from the call-function
//! IPIs, or from `flush_smp_call_function_queue()` in the idle loop, both with interrupts off).
//!
//! C headers: [`include/trace/events/irq.h`](srctree/include/trace/events/irq.h),
//! [`include/trace/events/csd.h`](srctree/include/trace/events/csd.h),
//! [`arch/x86/include/asm/trace/irq_vectors.h`](srctree/arch/x86/include/asm/trace/irq_vectors.h)

use super::super::bindings;
use super::{cstr_bytes, Inner, TracepointProbe};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::c_str;
use kernel::ffi::{c_char, c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;

/// A device interrupt's handler (`struct irqaction`), for the duration of the probe that sees it. Kept
/// as a raw pointer: other CPUs may change some of its fields meanwhile (`thread_flags`), so no Rust
/// reference to it is made.
pub(crate) struct IrqAction<'a> {
    action: NonNull<bindings::irqaction>,
    _call: PhantomData<&'a bindings::irqaction>,
}

impl IrqAction<'_> {
    /// The name the handler was requested with, as `/proc/interrupts` shows it (empty if none).
    pub(crate) fn name(&self) -> &[u8] {
        // SAFETY: `action` is a live `struct irqaction` (see the trampoline); the helper reads its
        // `name`, which is set before the action is installed and not changed after.
        let name: *const c_char = unsafe { bindings::rrp_irqaction_name(self.action.as_ptr()) };
        if name.is_null() {
            return b"";
        }
        // SAFETY: `request_irq()` and its kin keep `name`, a NUL-terminated string, for as long as the
        // action is installed, which includes the handler's call that fires this tracepoint.
        cstr_bytes(unsafe { CStr::from_char_ptr(name) })
    }

    /// The handler's address, to compare with [`counted_action`]'s.
    pub(crate) fn addr(&self) -> usize {
        self.action.as_ptr() as usize
    }
}

/// The address of the handler of device interrupt `irq` whose runs count as the line's interruptions,
/// as `/proc/interrupts` counts them (the first handler of the line; for a per-CPU line the one
/// running, `action`), and whether the interrupt is hidden from `/proc/interrupts`' numbered lines
/// (arm64's IPIs, counted as `IPIn` lines apart). A descriptor lookup: for the first sight of an
/// interrupt on a CPU, and for the second handlers of shared lines.
pub(crate) fn counted_action(irq: u32, action: &IrqAction<'_>) -> (usize, bool) {
    let mut hidden = false;
    // SAFETY: The helper looks `irq` up (RCU-safe, any context) and only reads words of its
    // descriptor; `action` is only compared; `hidden` is a valid `bool` to write.
    let counted =
        unsafe { bindings::rrp_irq_counted_action(irq, action.action.as_ptr(), &mut hidden) };
    (counted as usize, hidden)
}

/// Whether the CPU is in NMI context, where the irq tracepoints also fire (NMI flow handlers).
fn in_nmi() -> bool {
    // SAFETY: Reads the current CPU's preempt count; callable from any context.
    unsafe { bindings::rrp_in_nmi() }
}

tracepoint! {
    /// `irq_handler_entry(irq, action)`: the handler `action` of device interrupt `irq` starts on this
    /// CPU (hard interrupt context, interrupts off). Calls in NMI context (NMI flow handlers,
    /// kernel/irq/chip.c `handle_fasteoi_nmi()`, arm64 pseudo-NMIs) are left out.
    trait IrqHandlerEntry {
        /// The handler `action` of interrupt `irq` starts.
        fn irq_handler_entry(&self, irq: u32, action: &IrqAction<'_>);
    }
    /// Calls `handler` each time a device interrupt's handler starts.
    fn irq_handler_entry = "irq_handler_entry";
    /// `irq_handler_entry` trampoline: `action` is the handler about to run.
    unsafe extern "C" fn irq_handler_entry_probe(
        inner,
        irq: c_int,
        action: *mut bindings::irqaction,
    ) {
        let Some(action) = NonNull::new(action) else {
            return;
        };
        if in_nmi() {
            return;
        }
        // The flow handler holds `action` (it is on the interrupt's action list, removed only after
        // `synchronize_irq()`) for the duration of its call, which includes this one.
        let action = IrqAction {
            action,
            _call: PhantomData,
        };
        inner.handler.irq_handler_entry(irq as u32, &action);
    }
}

tracepoint! {
    /// `irq_handler_exit(irq, action, ret)`: the handler of device interrupt `irq` returned (hard
    /// interrupt context, interrupts off). Calls in NMI context are left out.
    trait IrqHandlerExit {
        /// The handler of interrupt `irq` returned.
        fn irq_handler_exit(&self, irq: u32);
    }
    /// Calls `handler` each time a device interrupt's handler returns.
    fn irq_handler_exit = "irq_handler_exit";
    /// `irq_handler_exit` trampoline.
    unsafe extern "C" fn irq_handler_exit_probe(
        inner,
        irq: c_int,
        _action: *mut bindings::irqaction,
        _ret: c_int,
    ) {
        if !in_nmi() {
            inner.handler.irq_handler_exit(irq as u32);
        }
    }
}

tracepoint! {
    /// `softirq_entry(vec_nr)`: softirq `vec_nr` starts on this CPU (`handle_softirqs()`: softirq
    /// context, interrupts on; on PREEMPT_RT in a task, with bottom halves off).
    trait SoftirqEntry {
        /// Softirq `vec` starts.
        fn softirq_entry(&self, vec: usize);
    }
    /// Calls `handler` each time a softirq starts.
    fn softirq_entry = "softirq_entry";
    /// `softirq_entry` trampoline.
    unsafe extern "C" fn softirq_entry_probe(inner, vec_nr: c_uint) {
        inner.handler.softirq_entry(vec_nr as usize);
    }
}

tracepoint! {
    /// `softirq_exit(vec_nr)`: softirq `vec_nr` returned on this CPU.
    trait SoftirqExit {
        /// Softirq `vec` returned.
        fn softirq_exit(&self, vec: usize);
    }
    /// Calls `handler` each time a softirq returns.
    fn softirq_exit = "softirq_exit";
    /// `softirq_exit` trampoline.
    unsafe extern "C" fn softirq_exit_probe(inner, vec_nr: c_uint) {
        inner.handler.softirq_exit(vec_nr as usize);
    }
}

tracepoint! {
    /// `csd_function_entry(func, csd)`: a cross-CPU call starts on this CPU (`csd_do_func()`, interrupts
    /// off); `csd` is NULL for a CPU's call of its own function (`smp_call_function*()` on itself),
    /// which nothing queued.
    trait CsdFunctionEntry {
        /// Queued function `func` starts.
        fn csd_function_entry(&self, func: usize);
    }
    /// Calls `handler` each time a queued cross-CPU call starts.
    fn csd_function_entry = "csd_function_entry";
    /// `csd_function_entry` trampoline: calls without a `csd` are left out.
    unsafe extern "C" fn csd_function_entry_probe(
        inner,
        func: unsafe extern "C" fn(*mut c_void),
        csd: *mut bindings::__call_single_data,
    ) {
        if !csd.is_null() {
            inner.handler.csd_function_entry(func as usize);
        }
    }
}

tracepoint! {
    /// `csd_function_exit(func, csd)`: a cross-CPU call returned on this CPU.
    trait CsdFunctionExit {
        /// Queued function `func` returned.
        fn csd_function_exit(&self, func: usize);
    }
    /// Calls `handler` each time a queued cross-CPU call returns.
    fn csd_function_exit = "csd_function_exit";
    /// `csd_function_exit` trampoline: calls without a `csd` are left out.
    unsafe extern "C" fn csd_function_exit_probe(
        inner,
        func: unsafe extern "C" fn(*mut c_void),
        csd: *mut bindings::__call_single_data,
    ) {
        if !csd.is_null() {
            inner.handler.csd_function_exit(func as usize);
        }
    }
}

tracepoint! {
    /// `ipi:ipi_exit(reason)` (arm64, arm: `do_handle_IPI()`): the handler of an IPI returns on this
    /// CPU (see [`super::IpiEntry`] for its contexts, NMI among them).
    trait IpiExit {
        /// An IPI whose `/proc/interrupts` name is `reason` returns. As for `ipi_entry`: look at
        /// `reason` first and do nothing for IPIs not counted.
        fn ipi_exit(&self, reason: &[u8]);
    }
    /// Calls `handler` each time an IPI handler returns, on architectures that fire `ipi:ipi_exit`.
    fn ipi_exit = "ipi_exit";
    /// `ipi:ipi_exit` trampoline: `reason` as for `ipi_entry`.
    unsafe extern "C" fn ipi_exit_probe(inner, reason: *const c_char) {
        if reason.is_null() {
            return;
        }
        // SAFETY: As in `ipi_entry_probe`: a string literal of `ipi_types[]`.
        let reason = unsafe { CStr::from_char_ptr(reason) };
        inner.handler.ipi_exit(cstr_bytes(reason));
    }
}

/// x86 `irq_vectors:<vector>_exit(vector)`, and the entries of the vectors other than the IPIs':
/// the handler of a system vector returns (starts) on this CPU, in hard interrupt context with
/// interrupts off. Tracepoints of one prototype: the constructors take the [`Vector`](super::Vector).
pub(crate) trait VectorExit: Send + Sync {
    /// The handler of the vector this probe was registered for returns.
    fn vector_exit(&self);
}

/// `irq_vectors:*_exit` trampoline.
///
/// # Safety
///
/// Registered by [`TracepointProbe::vector_exit`]: `data` is its live `Inner<H>`.
unsafe extern "C" fn vector_exit_probe<H: VectorExit>(data: *mut c_void, _vector: c_int) {
    // SAFETY: `data` is the `Inner` the probe keeps alive while registered.
    let inner = unsafe { &*data.cast::<Inner<H>>() };
    inner.handler.vector_exit();
}

impl<H: VectorExit> TracepointProbe<H> {
    /// Calls `handler` each time the handler of `vector` returns (`ENOENT` where the kernel has no such
    /// tracepoint: not x86).
    pub(crate) fn vector_exit(vector: super::Vector, handler: Arc<H>) -> Result<Self> {
        // SAFETY: Every `irq_vectors` exit tracepoint has the prototype `(int vector)`, which
        // `vector_exit_probe` has after the data pointer.
        unsafe {
            Self::register(
                vector.exit(),
                vector_exit_probe::<H> as *mut c_void,
                handler,
            )
        }
    }
}

/// The name of an x86 vector's exit tracepoint.
pub(super) fn exit_name(vector: super::Vector) -> &'static CStr {
    use super::Vector::*;
    match vector {
        Reschedule => c_str!("reschedule_exit"),
        CallFunctionSingle => c_str!("call_function_single_exit"),
        CallFunction => c_str!("call_function_exit"),
        LocalTimer => c_str!("local_timer_exit"),
        IrqWork => c_str!("irq_work_exit"),
    }
}
