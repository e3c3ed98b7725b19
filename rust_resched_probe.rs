// SPDX-License-Identifier: GPL-2.0

//! Counts who sends inter-processor interrupts to whom, how often the scheduler asks a CPU to
//! reschedule, and when tasks are switched out.
//!
//! Everything is read with `cat` under `/sys/kernel/debug/resched/`.

use kernel::prelude::*;

mod bindings;
mod cpu;
mod debugfs;
mod report;

module! {
    type: ReschedProbe,
    name: "resched_probe",
    author: "rust_resched_probe developers",
    description: "Counts IPIs, reschedule requests and context switches per CPU, read through debugfs",
    license: "GPL",
}

/// `cpus`: the online CPUs, as a CPU list (`0-3`), the columns every table uses.
struct Cpus;

#[vtable]
impl debugfs::Node for Cpus {
    fn show(&self, out: &mut debugfs::Text) -> Result {
        report::cpu_list(out, cpu::online()).map_err(|_| ENOMEM)
    }
}

/// The module's state: its fields are its registrations, dropped in order (files before their
/// directory).
struct ReschedProbe {
    _cpus: debugfs::File<Cpus>,
    _dir: debugfs::Dir,
}

impl kernel::Module for ReschedProbe {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let dir = debugfs::Dir::new(c_str!("resched"))?;
        let cpus = debugfs::File::new(&dir, c_str!("cpus"), module, Cpus)?;
        pr_info!("resched: loaded, {} CPUs online, files in /sys/kernel/debug/resched/\n", cpu::online().count());
        Ok(Self { _cpus: cpus, _dir: dir })
    }
}
