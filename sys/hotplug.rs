// SPDX-License-Identifier: GPL-2.0

//! CPU hotplug: a safe wrapper over a dynamic `cpuhp` state whose callback runs before a CPU is brought
//! up (`CPUHP_BP_PREPARE_DYN`), one instance per handler.
//!
//! The callback runs on a control CPU while the CPU coming up is still offline: nothing runs on it, so
//! per-CPU state that only that CPU ends (an interval in progress) can be reset without a race with it.
//!
//! C header: [`include/linux/cpuhotplug.h`](srctree/include/linux/cpuhotplug.h)

use super::bindings;
use kernel::c_str;
use kernel::ffi::{c_int, c_uint};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::Opaque;

/// What runs before a CPU comes online.
pub(crate) trait Prepare: Send + Sync {
    /// CPU `cpu` is about to be brought up (process context; it may sleep, but should be quick).
    fn prepare(&self, cpu: usize);
}

/// The registered instance: the C node first, so that a pointer to it is a pointer to the whole.
#[repr(C)]
struct Inner<H> {
    node: Opaque<bindings::hlist_node>,
    handler: Arc<H>,
}

/// A dynamic hotplug state calling `H` before each CPU comes online.
///
/// # Invariants
///
/// `state` is a multi-instance state set up with `startup::<H>`, and `inner.node` is its one instance
/// from construction until `drop`; `inner` does not move (it is boxed).
pub(crate) struct CpuPrepare<H: Prepare> {
    state: c_int,
    inner: KBox<Inner<H>>,
}

// SAFETY: Removing the state may happen from any thread; `H` is `Send + Sync`.
unsafe impl<H: Prepare> Send for CpuPrepare<H> {}
// SAFETY: `&self` offers no access to the C side; `H: Sync`.
unsafe impl<H: Prepare> Sync for CpuPrepare<H> {}

impl<H: Prepare> CpuPrepare<H> {
    /// Calls `handler` before every CPU comes online from now on (process context: it may sleep).
    pub(crate) fn new(handler: Arc<H>) -> Result<Self> {
        let inner = KBox::new(
            Inner {
                node: Opaque::uninit(),
                handler,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: The name is a static string; `startup::<H>` has the callback's prototype and is only
        // given nodes added below, each the first field of an `Inner<H>`.
        let state = unsafe {
            bindings::rrp_cpuhp_setup_prepare(
                c_str!("resched_probe:prepare").as_char_ptr(),
                Some(startup::<H>),
            )
        };
        if state < 0 {
            return Err(Error::from_errno(state));
        }
        // SAFETY: `state` was just set up; the node is writable storage that lives (boxed, unmoved)
        // until `drop` removes it.
        let rc = unsafe { bindings::rrp_cpuhp_add_instance(state, inner.node.get()) };
        if rc < 0 {
            // SAFETY: Set up above, with no instance.
            unsafe { bindings::rrp_cpuhp_remove_state(state) };
            return Err(Error::from_errno(rc));
        }
        // INVARIANT: set up and added above.
        Ok(Self { state, inner })
    }
}

impl<H: Prepare> Drop for CpuPrepare<H> {
    fn drop(&mut self) {
        // SAFETY: The instance was added to `state` (type invariant); removing it waits for a callback
        // in progress (both take the hotplug lock), after which `inner` is no longer used.
        unsafe { bindings::rrp_cpuhp_remove_instance(self.state, self.inner.node.get()) };
        // SAFETY: Set up by `new` and now without instances.
        unsafe { bindings::rrp_cpuhp_remove_state(self.state) };
    }
}

/// The state's startup callback.
///
/// # Safety
///
/// `node` is the node of a live `Inner<H>` (the first field of that `#[repr(C)]` struct).
unsafe extern "C" fn startup<H: Prepare>(cpu: c_uint, node: *mut bindings::hlist_node) -> c_int {
    // SAFETY: The caller's promise; `Opaque<T>` has the layout of `T`.
    let inner = unsafe { &*node.cast::<Inner<H>>() };
    inner.handler.prepare(cpu as usize);
    0
}
