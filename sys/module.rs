// SPDX-License-Identifier: GPL-2.0

//! References on this module: a safe wrapper over `try_module_get` and `module_put`.
//!
//! C header: [`include/linux/module.h`](srctree/include/linux/module.h)

use super::bindings;
use kernel::prelude::*;

/// One reference on a module, released when dropped: while it lives, the module cannot be unloaded.
///
/// # Invariants
///
/// This value holds one reference on `module`, taken by `try_module_get`.
pub(crate) struct ModuleRef {
    module: &'static ThisModule,
}

impl ModuleRef {
    /// Takes a reference on `module`, unless it is being unloaded (`None` then).
    pub(crate) fn try_get(module: &'static ThisModule) -> Option<Self> {
        // SAFETY: `module` is this module's `THIS_MODULE`, valid while its code runs.
        let got = unsafe { bindings::try_module_get(module.as_ptr().cast()) };
        // INVARIANT: `try_module_get` returned true, so we hold a reference.
        got.then_some(Self { module })
    }
}

impl ModuleRef {
    /// Keeps the reference without a value to hold it, for a holder that cannot own one (a slot of a
    /// table preallocated at load); [`Self::put_held`] gives it back.
    pub(crate) fn hold(self) {
        core::mem::forget(self);
    }

    /// Gives back a reference kept by [`Self::hold`].
    ///
    /// # Safety
    ///
    /// The caller must own one reference on `module` kept by `hold`, and give it back once.
    pub(crate) unsafe fn put_held(module: &'static ThisModule) {
        // INVARIANT: rebuilt from the reference the caller owns; dropped at once.
        drop(Self { module });
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: We hold one reference (type invariant); this gives it back.
        unsafe { bindings::module_put(self.module.as_ptr().cast()) };
    }
}
