// SPDX-License-Identifier: GPL-2.0

//! Probes on kernel tracepoints found by name: a wrapper over `for_each_kernel_tracepoint` and
//! `tracepoint_probe_register`.
//!
//! C header: [`include/linux/tracepoint.h`](srctree/include/linux/tracepoint.h)

use crate::bindings;
use kernel::ffi::c_void;
use kernel::prelude::*;

/// A probe function registered on a tracepoint, with its data pointer.
///
/// # Invariants
///
/// `probe` is registered on `tp` with `data` from construction until `drop`.
pub(crate) struct TracepointProbe {
    tp: *mut bindings::tracepoint,
    probe: *mut c_void,
    data: *mut c_void,
}

// SAFETY: Unregistering may happen from any thread.
unsafe impl Send for TracepointProbe {}
// SAFETY: No method takes `&self`.
unsafe impl Sync for TracepointProbe {}

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
    if name.as_bytes() == search.name.as_bytes() {
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
            (&mut search as *mut Search<'_>).cast(),
        )
    };
    if search.found.is_null() {
        Err(ENOENT)
    } else {
        Ok(search.found)
    }
}

impl TracepointProbe {
    /// Registers `probe` with `data` on the tracepoint called `name`.
    ///
    /// # Safety
    ///
    /// `probe` must be an `extern "C"` function taking `data` and then the tracepoint's arguments
    /// (`TP_PROTO`), safe to call in the tracepoint's context; `data` must stay valid until the value is
    /// dropped.
    pub(crate) unsafe fn register(
        name: &CStr,
        probe: *mut c_void,
        data: *mut c_void,
    ) -> Result<Self> {
        let tp = find(name)?;
        // SAFETY: `tp` is a kernel tracepoint; the caller vouches for `probe` and `data`.
        kernel::error::to_result(unsafe { bindings::tracepoint_probe_register(tp, probe, data) })?;
        // INVARIANT: registered just above.
        Ok(Self { tp, probe, data })
    }
}

impl Drop for TracepointProbe {
    fn drop(&mut self) {
        // SAFETY: Registered with these arguments (type invariant).
        unsafe { bindings::tracepoint_probe_unregister(self.tp, self.probe, self.data) };
        // SAFETY: No precondition. Once it returns, no call of `probe` is in progress, so `data` (which
        // the owner drops after this) is no longer used.
        unsafe { bindings::rrp_tracepoint_synchronize_unregister() };
    }
}
