// SPDX-License-Identifier: GPL-2.0

//! The preemption model in force: `none`, `voluntary`, `full`, `lazy` or `rt`
//! (`preempt_model_*()`, [`include/linux/preempt.h`](srctree/include/linux/preempt.h)). With
//! `CONFIG_PREEMPT_DYNAMIC` it is chosen at boot (`preempt=`) and may change at run time
//! (`/sys/kernel/debug/sched/preempt`), so it is read each time.

use super::bindings;
use kernel::prelude::*;

/// The model's name, as `/sys/kernel/debug/sched/preempt` writes it (`rt` with `PREEMPT_RT`).
pub(crate) fn model() -> &'static CStr {
    // SAFETY: The helper only calls the `preempt_model_*()` functions, callable in any context.
    let name = unsafe { bindings::rrp_preempt_model() };
    // SAFETY: `name` is one of the helper's string literals, which live as long as the module.
    unsafe { CStr::from_char_ptr(name) }
}

/// Whether the model may change at run time (`CONFIG_PREEMPT_DYNAMIC`).
pub(crate) fn dynamic() -> bool {
    // SAFETY: The helper only reads a configuration constant.
    unsafe { bindings::rrp_preempt_dynamic() }
}
