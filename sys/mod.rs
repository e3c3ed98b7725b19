// SPDX-License-Identifier: GPL-2.0

//! The thin, safe wrappers over the C this module reaches, and the only place with `unsafe`.
//!
//! Each file wraps one kernel facility; `helpers.c` exposes the macros and `static inline` functions
//! among them, as the kernel's own `rust/helpers/` does.

mod bindings;
pub(crate) mod cpu;
pub(crate) mod debugfs;
pub(crate) mod hotplug;
pub(crate) mod kprobe;
pub(crate) mod module;
pub(crate) mod notifier;
pub(crate) mod percpu;
pub(crate) mod preempt;
pub(crate) mod probed;
pub(crate) mod rawlock;
pub(crate) mod rcu;
pub(crate) mod stacktrace;
pub(crate) mod task;
pub(crate) mod taskwork;
pub(crate) mod time;
pub(crate) mod tracepoint;
