// SPDX-License-Identifier: GPL-2.0

//! Typed probes on kernel tracepoints: a safe wrapper over `for_each_kernel_tracepoint` and
//! `tracepoint_probe_register`.
//!
//! Each tracepoint this module uses has a handler trait with its arguments as safe types, and a
//! constructor of [`TracepointProbe`] that registers the matching trampoline, all three declared by
//! one [`tracepoint!`] from the tracepoint's prototype; the probe owns its handler and unregisters
//! before dropping it.
//!
//! Where each handler runs. Until 6.12 every tracepoint probe ran with preemption off
//! (`preempt_disable_notrace()` in `__DO_TRACE`); on 7.x probes run under SRCU-fast
//! (`guard(srcu_fast_notrace)` in `__DECLARE_TRACE`, include/linux/tracepoint.h), in the context of the
//! code that fires the tracepoint. Each trait below says what that context is, from the callers in
//! 7.3.4 (the same in 6.12). The two fired from preemptible code, `sched_process_fork` and
//! `sched_process_exit`, are called here with preemption off, so that every handler runs with
//! preemption off on both kernels, and [`super::cpu::this_cpu`] is exact in every handler. Unloading
//! waits for the handlers in flight with `tracepoint_synchronize_unregister()`, which waits for
//! SRCU-fast readers on 7.x and for preemption-off ones on 6.12; [`super::rcu::synchronize`] too.
//!
//! C header: [`include/linux/tracepoint.h`](srctree/include/linux/tracepoint.h), prototypes in
//! [`include/trace/events/sched.h`](srctree/include/trace/events/sched.h)

use super::bindings;
use super::cpu::CpuMask;
use super::kprobe::Probe;
use super::stacktrace::Stack;
use super::task::{self, Current, NewTask, Task, Woken};
use core::marker::PhantomData;
use kernel::c_str;
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;

/// The bytes of `s`, without its NUL (6.12's `kernel::str::CStr` calls this `as_bytes`, 7.x's
/// `core::ffi::CStr` `to_bytes`).
fn cstr_bytes(s: &CStr) -> &[u8] {
    #[cfg(rrp_core_cstr)]
    return s.to_bytes();
    #[cfg(not(rrp_core_cstr))]
    return s.as_bytes();
}

/// Where a tracepoint fired, for the duration of its probe.
pub(crate) struct Here<'a> {
    tp: *mut bindings::tracepoint,
    _call: PhantomData<&'a ()>,
}

impl Here<'_> {
    /// The stack of the code that fired the tracepoint, starting in the function that fired it.
    pub(crate) fn stack(&self) -> Stack {
        // SAFETY: `tp` is a kernel tracepoint, which lives as long as the kernel.
        let iterator = unsafe { bindings::rrp_tracepoint_iterator(self.tp) } as usize;
        // `__traceiter_<name>` calls the probes when a tracepoint has several: a small function.
        Stack::from_here(|addr| addr.wrapping_sub(iterator) < 256)
    }
}

/// What a registered probe's data points to.
struct Inner<H> {
    tp: *mut bindings::tracepoint,
    handler: Arc<H>,
}

impl<H> Inner<H> {
    /// Where the tracepoint fired, for the call of its probe in progress.
    fn here(&self) -> Here<'_> {
        Here {
            tp: self.tp,
            _call: PhantomData,
        }
    }
}

/// A probe on a kernel tracepoint, calling a handler `H` it owns.
///
/// # Invariants
///
/// `probe` is registered on `inner.tp` with a pointer to `*inner` as its data from construction until
/// `drop`; `probe` is the trampoline of the tracepoint for `H`. `inner` does not move.
pub(crate) struct TracepointProbe<H: Send + Sync> {
    probe: *mut c_void,
    name: &'static CStr,
    inner: KBox<Inner<H>>,
}

// SAFETY: Unregistering may happen from any thread; `H` is `Send + Sync`.
unsafe impl<H: Send + Sync> Send for TracepointProbe<H> {}
// SAFETY: `&self` offers no access to the C side; `H: Sync`.
unsafe impl<H: Send + Sync> Sync for TracepointProbe<H> {}

impl<H: Send + Sync> Probe for TracepointProbe<H> {
    fn via(&self) -> &'static str {
        "tracepoint"
    }

    fn symbol(&self) -> &'static CStr {
        self.name
    }

    /// Registered (else there is no value).
    fn status(&self) -> Result {
        Ok(())
    }

    /// A tracepoint probe is a direct call: it never misses.
    fn missed(&self) -> u64 {
        0
    }
}

struct Search<'a> {
    name: &'a CStr,
    found: *mut bindings::tracepoint,
}

/// `for_each_kernel_tracepoint` callback: remembers the tracepoint called `name`.
///
/// # Safety
///
/// `tp` is a kernel tracepoint and `priv_` the `Search` passed by [`find`].
unsafe extern "C" fn match_name(tp: *mut bindings::tracepoint, priv_: *mut c_void) {
    // SAFETY: `priv_` is the `Search` that `find` passed, alive for the iteration.
    let search = unsafe { &mut *priv_.cast::<Search<'_>>() };
    // SAFETY: A tracepoint's name is a NUL-terminated string in kernel data.
    let name = unsafe { CStr::from_char_ptr(bindings::rrp_tracepoint_name(tp)) };
    if cstr_bytes(name) == cstr_bytes(search.name) {
        search.found = tp;
    }
}

/// The kernel's (not a module's) tracepoint called `name`.
fn find(name: &CStr) -> Result<*mut bindings::tracepoint> {
    let mut search = Search {
        name,
        found: core::ptr::null_mut(),
    };
    // SAFETY: `match_name` has the callback's prototype and `search` outlives the call.
    unsafe {
        bindings::for_each_kernel_tracepoint(
            Some(match_name),
            core::ptr::from_mut(&mut search).cast(),
        )
    };
    if search.found.is_null() {
        Err(ENOENT)
    } else {
        Ok(search.found)
    }
}

impl<H: Send + Sync> TracepointProbe<H> {
    /// Registers `probe` on the tracepoint called `name`, with the new `Inner` holding `handler` as
    /// its data.
    ///
    /// # Safety
    ///
    /// `probe` must be an `extern "C"` function taking a `*const Inner<H>` and then the tracepoint's
    /// arguments (`TP_PROTO`), safe to call in the tracepoint's context.
    unsafe fn register(name: &'static CStr, probe: *mut c_void, handler: Arc<H>) -> Result<Self> {
        let tp = find(name)?;
        let inner = KBox::new(Inner { tp, handler }, GFP_KERNEL)?;
        let data = core::ptr::from_ref(&*inner).cast_mut().cast::<c_void>();
        // SAFETY: `tp` is a kernel tracepoint; the caller vouches for `probe`; `data` stays valid
        // until `drop` unregistered the probe (`inner` is owned by `Self` and does not move).
        kernel::error::to_result(unsafe { bindings::tracepoint_probe_register(tp, probe, data) })?;
        // INVARIANT: registered just above.
        Ok(Self { probe, name, inner })
    }
}

/// Declares a tracepoint's handler trait and the constructor of [`TracepointProbe`] that registers its
/// trampoline, from the tracepoint's name and prototype (`TP_PROTO`, written once: the trampoline takes
/// exactly these arguments after the data pointer, which kCFI checks at every indirect call).
///
/// The trampoline's body sees `inner`, the probe's live [`Inner`], and the arguments; it converts them
/// to safe types (each `unsafe` block saying why here) and calls the handler.
macro_rules! tracepoint {
    (
        $(#[$trait_doc:meta])*
        trait $trait:ident {
            $(#[$method_doc:meta])*
            fn $method:ident(&self $(, $arg:ident: $arg_ty:ty)* $(,)?);
        }
        $(#[$ctor_doc:meta])*
        fn $ctor:ident = $name:literal;
        $(#[$probe_doc:meta])*
        unsafe extern "C" fn $probe:ident(
            $inner:ident $(, $(#[$c_attr:meta])* $c_arg:ident: $c_ty:ty)* $(,)?
        ) $body:block
    ) => {
        $(#[$trait_doc])*
        pub(crate) trait $trait: Send + Sync {
            $(#[$method_doc])*
            fn $method(&self $(, $arg: $arg_ty)*);
        }

        impl<H: $trait> TracepointProbe<H> {
            $(#[$ctor_doc])*
            pub(crate) fn $ctor(handler: Arc<H>) -> Result<Self> {
                // SAFETY: The trampoline takes the data pointer, then the tracepoint's `TP_PROTO` (the
                // prototype this macro was given), and runs in the tracepoint's context.
                unsafe { Self::register(c_str!($name), $probe::<H> as *mut c_void, handler) }
            }
        }

        $(#[$probe_doc])*
        ///
        /// # Safety
        ///
        /// Registered by the constructor above: `data` is its live `Inner<H>`, the arguments are the
        /// tracepoint's.
        unsafe extern "C" fn $probe<H: $trait>(
            data: *mut c_void
            $(, $(#[$c_attr])* $c_arg: $c_ty)*
        ) {
            // SAFETY: `data` is the `Inner` the probe keeps alive while registered.
            let $inner = unsafe { &*data.cast::<Inner<H>>() };
            $body
        }
    };
}

tracepoint! {
    /// `sched_switch(preempt, prev, next, prev_state)`: every context switch, on its CPU
    /// (`__schedule()`, IRQs off, the runqueue locked).
    trait SchedSwitch {
        /// `prev` is switched out for `next`; `preempt` when `prev` was preempted (it stays
        /// runnable); `prev_state` is `prev`'s state when the switch began: when not preempted, 0 if
        /// it stays runnable (it yielded, or was rescheduled on its way back to user space), else the
        /// state it blocks in.
        fn sched_switch(&self, preempt: bool, prev: &Task, next: &Task, prev_state: u32);
    }
    /// Calls `handler` at every `sched_switch`.
    fn sched_switch = "sched_switch";
    /// `sched_switch` trampoline.
    unsafe extern "C" fn switch_probe(
        inner,
        preempt: bool,
        prev: *mut bindings::task_struct,
        next: *mut bindings::task_struct,
        prev_state: u32,
    ) {
        // SAFETY: The scheduler holds both tasks for the duration of the switch.
        let (prev, next) = unsafe { (task::from_raw(prev), task::from_raw(next)) };
        inner.handler.sched_switch(preempt, prev, next, prev_state);
    }
}

tracepoint! {
    /// `sched_wakeup(p)`: `p`, whose state matched a sleeping state, is made runnable (in the waker, or
    /// on the target CPU for a wakelist wakeup; with `p`'s locks held: no sleeping).
    trait SchedWakeup {
        /// `task` is woken.
        fn sched_wakeup(&self, task: &Woken<'_>);
    }
    /// Calls `handler` at every `sched_wakeup`.
    fn sched_wakeup = "sched_wakeup";
    /// `sched_wakeup` trampoline: `p` is the task `try_to_wake_up()` wakes (`ttwu_do_wakeup()`, after
    /// its state matched).
    unsafe extern "C" fn wakeup_probe(inner, p: *mut bindings::task_struct) {
        // SAFETY: The waker holds `p` for the duration of the wakeup; its state matched a sleeping
        // state (`ttwu_state_match()`), and `try_to_wake_up()` calls `ttwu_do_wakeup()` either for
        // `p == current` (on its CPU) or with `p`'s runqueue lock held (`ttwu_runnable()`,
        // `ttwu_do_activate()` from `ttwu_queue()` and `sched_ttwu_pending()`, kernel/sched/core.c:
        // 3672-3675, 3756-3774, 3783-3803, 3969-3979, 4160-4181 in 6.12).
        let woken = unsafe { Woken::new(task::from_raw(p)) };
        inner.handler.sched_wakeup(&woken);
    }
}

tracepoint! {
    /// `sched_process_fork(parent, child)`: in the parent, before the child first runs
    /// (`kernel_clone()`, preemptible: the trampoline turns preemption off; no sleeping, `GFP_ATOMIC`
    /// only).
    trait SchedProcessFork {
        /// `parent` (the calling task) created `child`.
        fn sched_process_fork(&self, parent: &Current<'_>, child: &NewTask<'_>);
    }
    /// Calls `handler` at every `sched_process_fork`.
    fn sched_process_fork = "sched_process_fork";
    /// `sched_process_fork` trampoline: the tracepoint fires in `parent` before `child` is woken
    /// (`kernel_clone`, before `wake_up_new_task`).
    unsafe extern "C" fn fork_probe(
        inner,
        parent: *mut bindings::task_struct,
        child: *mut bindings::task_struct,
    ) {
        // SAFETY: Used only within this call.
        let me = unsafe { task::current() };
        if task::raw(me) != parent {
            return;
        }
        // SAFETY: `me` is the calling task, in one of its own tracepoints (not a notifier callback).
        let parent = unsafe { Current::new(me) };
        // SAFETY: The creator holds `child`, which is not woken before the tracepoint returns.
        let child = unsafe { NewTask::new(task::from_raw(child)) };
        // Preemption off, as on 6.12 (see the module documentation).
        super::cpu::pinned(|_| inner.handler.sched_process_fork(&parent, &child));
    }
}

tracepoint! {
    /// `sched_process_exit(p)` (7.x: `(p, group_dead)`): in the exiting task (`do_exit()`,
    /// preemptible: the trampoline turns preemption off).
    trait SchedProcessExit {
        /// The calling task exits.
        fn sched_process_exit(&self, task: &Current<'_>);
    }
    /// Calls `handler` at every `sched_process_exit`.
    fn sched_process_exit = "sched_process_exit";
    /// `sched_process_exit` trampoline (with `group_dead` where the tree's
    /// include/trace/events/sched.h has it: Kbuild's `rrp_exit_group_dead`).
    unsafe extern "C" fn exit_probe(
        inner,
        p: *mut bindings::task_struct,
        #[cfg(rrp_exit_group_dead)] _group_dead: bool,
    ) {
        // SAFETY: Used only within this call.
        let me = unsafe { task::current() };
        if task::raw(me) != p {
            return;
        }
        // SAFETY: `me` is the calling task, in one of its own tracepoints (not a notifier callback).
        let me = unsafe { Current::new(me) };
        // Preemption off, as on 6.12 (see the module documentation).
        super::cpu::pinned(|_| inner.handler.sched_process_exit(&me));
    }
}

/// What kind of need-resched request `sched_set_need_resched_tp` reports.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// `TIF_NEED_RESCHED`, on a task with no lazy request pending: acted on at the next preemption
    /// point (an IPI when remote and the target does not poll).
    Immediate,
    /// `TIF_NEED_RESCHED_LAZY` (7.x, lazy preemption): no IPI; acted on at the return to user space, or
    /// promoted by the next tick.
    Lazy,
    /// `TIF_NEED_RESCHED` on a task whose lazy request is pending: the lazy request promoted (the tick's
    /// `resched_curr()` when the lazy one was not acted on in time), or an immediate request on top.
    Promoted,
}

tracepoint! {
    /// `sched_set_need_resched_tp(tsk, cpu, tif)` (6.16+: a bare tracepoint, no tracefs event): a
    /// need-resched flag, immediate (`TIF_NEED_RESCHED`) or lazy (`TIF_NEED_RESCHED_LAZY`), is newly
    /// set on `tsk` (the current task of `cpu`, or in `__schedule()` and sched_ext the task about to
    /// run there). Fired by `__resched_curr()` (the runqueue locked), before it decides whether an IPI
    /// is needed, and by `set_tsk_need_resched()` through `__trace_set_need_resched()` (`cpu` its
    /// `smp_processor_id()`, which requires preemption off), kernel/sched/core.c.
    trait SetNeedResched {
        /// This CPU asks `cpu` to reschedule; `request` says how. `here` gives the asking CPU's stack.
        fn set_need_resched(&self, cpu: usize, request: Request, here: &Here<'_>);
    }
    /// Calls `handler` at every `sched_set_need_resched_tp` (`ENOENT` where the kernel has no such
    /// tracepoint: before 6.16; its prototype has not changed since it was added).
    fn set_need_resched = "sched_set_need_resched_tp";
    /// `sched_set_need_resched_tp` trampoline: `tsk` is the runqueue's current task (its runqueue is
    /// locked) or the calling CPU's own.
    unsafe extern "C" fn need_resched_probe(
        inner,
        tsk: *mut bindings::task_struct,
        cpu: c_int,
        tif: c_int,
    ) {
        // SAFETY: `tsk` is valid for the call (above); the helper tests one bit of its thread flags.
        let request = match unsafe { bindings::rrp_resched_kind(tsk, tif) } {
            1 => Request::Lazy,
            2 => Request::Promoted,
            _ => Request::Immediate,
        };
        inner
            .handler
            .set_need_resched(cpu as u32 as usize, request, &inner.here());
    }
}

tracepoint! {
    /// `sched:sched_wake_idle_without_ipi(cpu)`: this CPU would have sent `cpu` an IPI (a reschedule
    /// request, a call-function IPI for a queued wakeup, a nohz kick) but found it polling idle, so only
    /// set its flag (`set_nr_and_not_polling()` / `set_nr_if_polling()`, kernel/sched/core.c; preemption
    /// off: the runqueue locked, or `__smp_call_single_queue()`'s callers).
    trait WakeIdleWithoutIpi {
        /// `cpu` is woken without an IPI.
        fn wake_idle_without_ipi(&self, cpu: usize);
    }
    /// Calls `handler` at every `sched_wake_idle_without_ipi`.
    fn wake_idle_without_ipi = "sched_wake_idle_without_ipi";
    /// `sched_wake_idle_without_ipi` trampoline.
    unsafe extern "C" fn wake_idle_probe(inner, cpu: c_int) {
        inner.handler.wake_idle_without_ipi(cpu as u32 as usize);
    }
}

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

/// The x86 IPI vectors whose handlers have an `irq_vectors` entry tracepoint.
#[derive(Clone, Copy)]
pub(crate) enum Vector {
    /// `RESCHEDULE_VECTOR`: `reschedule_entry` (`/proc/interrupts` RES).
    Reschedule,
    /// `CALL_FUNCTION_SINGLE_VECTOR`: `call_function_single_entry` (part of CAL).
    CallFunctionSingle,
    /// `CALL_FUNCTION_VECTOR`: `call_function_entry` (part of CAL).
    CallFunction,
}

impl Vector {
    /// The entry tracepoint's name.
    pub(crate) fn entry(self) -> &'static CStr {
        match self {
            Vector::Reschedule => c_str!("reschedule_entry"),
            Vector::CallFunctionSingle => c_str!("call_function_single_entry"),
            Vector::CallFunction => c_str!("call_function_entry"),
        }
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

impl<H: Send + Sync> Drop for TracepointProbe<H> {
    fn drop(&mut self) {
        let data = core::ptr::from_ref(&*self.inner)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: Registered with these arguments (type invariant).
        unsafe { bindings::tracepoint_probe_unregister(self.inner.tp, self.probe, data) };
        // SAFETY: It sleeps: `drop` runs in process context (module exit, or init failing). Once it
        // returns, no call of `probe` is in progress, so `inner` (dropped after this) is no longer
        // used. (`tracepoint_probe_unregister` fails only with `-ENOENT`, for a probe not registered.)
        unsafe { bindings::rrp_tracepoint_synchronize_unregister() };
    }
}
