// SPDX-License-Identifier: GPL-2.0

//! Counts, per CPU, who sends inter-processor interrupts to whom and how often the scheduler asks a
//! CPU to reschedule (kprobes on the IPI send paths, `resched_curr` and `ttwu_queue_wakelist`), and
//! when attached tasks are switched out, preempted or blocking (preempt notifiers); on request, from which
//! kernel stacks each kind of event comes.
//!
//! Everything is read with `cat` under `/sys/kernel/debug/resched/` (see README.md for each file).

use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

mod bindings;
mod counters;
mod cpu;
mod debugfs;
mod kprobe;
mod notifier;
mod percpu;
mod probes;
mod report;
mod stacks;
mod stacktrace;
mod tasks;
mod tracepoint;

use counters::Counters;
use counters::Tag;
use debugfs::{Dir, File};
use probes::Probes;
use stacks::Stacks;
use tasks::Hooks;

module! {
    type: ReschedProbe,
    name: "resched_probe",
    author: "rust_resched_probe developers",
    description: "Counts IPIs and reschedule requests per CPU, read through debugfs",
    license: "GPL",
}

/// The debugfs files, each owning what it reads.
struct Files {
    _cpus: File<report::Cpus>,
    _ipi: File<report::Ipi>,
    _targets: File<report::Targets>,
    _matrix: File<report::Matrix>,
    _probes: File<report::ProbeList>,
    _reset: File<report::Reset>,
    _sched: File<report::Sched>,
    _tasks: File<report::TaskList>,
    _attach: File<report::Attach>,
    _stacks_enable: File<report::StacksEnable>,
    _stacks_capacity: File<report::StacksCapacity>,
    _stacks: StackFiles,
}

/// `stacks/<tag>` for each tag; the files go before their directory.
struct StackFiles {
    _files: KVec<File<report::StackFile>>,
    _dir: Dir,
}

impl StackFiles {
    fn new(parent: &Dir, module: &'static ThisModule, stacks: &Arc<Stacks>) -> Result<Self> {
        let dir = parent.subdir(c_str!("stacks"))?;
        let mut files = KVec::with_capacity(Tag::ALL.len(), GFP_KERNEL)?;
        let names = [
            c_str!("RES"),
            c_str!("CFS"),
            c_str!("CFM"),
            c_str!("RSC"),
            c_str!("WKL"),
        ];
        for (tag, name) in Tag::ALL.into_iter().zip(names) {
            let node = report::StackFile {
                stacks: stacks.clone(),
                tag,
            };
            files.push(File::new(&dir, name, module, node)?, GFP_KERNEL)?;
        }
        Ok(Self {
            _files: files,
            _dir: dir,
        })
    }
}

impl Files {
    fn new(
        dir: &Dir,
        module: &'static ThisModule,
        probes: &Arc<Probes>,
        hooks: &Hooks,
        c: &Arc<Counters>,
        stacks: &Arc<Stacks>,
    ) -> Result<Self> {
        Ok(Self {
            _cpus: File::new(dir, c_str!("cpus"), module, report::Cpus)?,
            _ipi: File::new(dir, c_str!("ipi"), module, report::Ipi(c.clone()))?,
            _targets: File::new(dir, c_str!("targets"), module, report::Targets(c.clone()))?,
            _matrix: File::new(dir, c_str!("matrix"), module, report::Matrix(c.clone()))?,
            _probes: File::new(
                dir,
                c_str!("probes"),
                module,
                report::ProbeList {
                    probes: probes.clone(),
                    counters: c.clone(),
                },
            )?,
            _reset: File::new(
                dir,
                c_str!("reset"),
                module,
                report::Reset {
                    counters: c.clone(),
                    stacks: stacks.clone(),
                },
            )?,
            _sched: File::new(dir, c_str!("sched"), module, report::Sched(c.clone()))?,
            _tasks: File::new(
                dir,
                c_str!("tasks"),
                module,
                report::TaskList(hooks.tasks().clone()),
            )?,
            _attach: File::new(
                dir,
                c_str!("attach"),
                module,
                report::Attach(hooks.tasks().clone()),
            )?,
            _stacks_enable: File::new(
                dir,
                c_str!("stacks_enable"),
                module,
                report::StacksEnable(stacks.clone()),
            )?,
            _stacks_capacity: File::new(
                dir,
                c_str!("stacks_capacity"),
                module,
                report::StacksCapacity(stacks.clone()),
            )?,
            _stacks: StackFiles::new(dir, module, stacks)?,
        })
    }
}

/// The module's state. Its fields are its registrations and drop in order: the files (no reader or
/// writer after), their directory, the probes and the scheduler hooks (no handler runs after); the
/// counters go with the last reference. No task is attached by then: each attachment holds a module
/// reference.
struct ReschedProbe {
    _files: Files,
    _dir: Dir,
    _probes: Arc<Probes>,
    _hooks: Hooks,
}

impl kernel::Module for ReschedProbe {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let counters = Arc::new(Counters::new(cpu::nr_cpu_ids())?, GFP_KERNEL)?;
        let stacks = Arc::new(Stacks::new()?, GFP_KERNEL)?;
        let probes = Arc::new(Probes::new(&counters, &stacks)?, GFP_KERNEL)?;
        let hooks = Hooks::new(counters.clone(), module)?;
        let dir = Dir::new(c_str!("resched"))?;
        let files = Files::new(&dir, module, &probes, &hooks, &counters, &stacks)?;
        pr_info!(
            "resched: loaded, {} CPUs online, files in /sys/kernel/debug/resched/ (stack tables: {} KiB)\n",
            cpu::online().count(),
            stacks.bytes() / 1024
        );
        Ok(Self {
            _files: files,
            _dir: dir,
            _probes: probes,
            _hooks: hooks,
        })
    }
}
