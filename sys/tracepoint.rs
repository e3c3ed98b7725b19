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
use super::kprobe::Probe;
use super::stacktrace::Stack;
use core::marker::PhantomData;
use kernel::ffi::c_void;
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

mod ipi;
mod irq;
mod sched;
pub(crate) use ipi::*;
pub(crate) use irq::*;
pub(crate) use sched::*;

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
