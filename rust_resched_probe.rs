// SPDX-License-Identifier: GPL-2.0

//! Counts, per CPU, who sends inter-processor interrupts to whom and how often the scheduler asks a
//! CPU to reschedule (the kernel's `ipi:*`, `csd:*` and `sched:*` tracepoints, a kprobe on
//! `resched_curr`; kprobes on the send functions where the tracepoints are missing), and when attached
//! tasks are switched out, preempted or blocking (preempt notifiers); on request, from which kernel
//! stacks each kind of event comes.
//!
//! Everything is read with `cat` under `/sys/kernel/debug/resched/` (docs/debugfs.md: one entry per file).
//! [`logic`] holds what is counted and shown; [`sys`] the thin safe wrappers over the C it reaches.

use kernel::prelude::*;
use kernel::sync::Arc;

#[deny(unsafe_code)]
mod logic;
mod sys;

use logic::engine::Engine;
use logic::probes::Probes;
use logic::report::Files;
use logic::tasks::Hooks;

// `authors: [..]` on 7.x, `author:` on 6.12 (Kbuild's `rrp_module_authors`, found in the kernel tree).
#[cfg(rrp_module_authors)]
module! {
    type: ReschedProbe,
    name: "resched_probe",
    authors: ["rust_resched_probe developers"],
    description: "Counts IPIs and reschedule requests per CPU, read through debugfs",
    license: "GPL",
}
#[cfg(not(rrp_module_authors))]
module! {
    type: ReschedProbe,
    name: "resched_probe",
    author: "rust_resched_probe developers",
    description: "Counts IPIs and reschedule requests per CPU, read through debugfs",
    license: "GPL",
}

/// The module's state: its registrations, in drop order.
///
/// The files go first (no reader or writer after), then the probes and the scheduler hooks (no handler
/// runs after); the engine (counters and stack tables) goes with the last reference to it. No task is
/// attached by then: each attachment holds a module reference.
struct ReschedProbe {
    _files: Files,
    _probes: Arc<Probes>,
    _hooks: Hooks,
}

impl kernel::Module for ReschedProbe {
    fn init(module: &'static ThisModule) -> Result<Self> {
        sys::task::init_offsets();
        let clock = sys::time::init();
        let cpus = sys::cpu::nr_cpu_ids();
        let engine = Arc::pin_init(Engine::new(cpus)?, GFP_KERNEL)?;
        let probes = Arc::new(Probes::new(&engine)?, GFP_KERNEL)?;
        let hooks = Hooks::new(engine.clone(), module)?;
        let files = Files::new(&engine, &probes, hooks.tasks())?;
        pr_info!(
            "loaded, {} CPUs online of {} possible, files in /sys/kernel/debug/resched/ (memory: {} KiB)\n",
            sys::cpu::online().count(),
            cpus,
            Engine::bytes(cpus) / 1024
        );
        match clock {
            Some(hz) => pr_info!(
                "clock: {} ({hz} Hz)\n",
                if cfg!(target_arch = "x86_64") {
                    "the TSC"
                } else {
                    "the architected counter"
                }
            ),
            None => pr_info!("clock: ktime_get_mono_fast_ns()\n"),
        }
        Ok(Self {
            _files: files,
            _probes: probes,
            _hooks: hooks,
        })
    }
}
