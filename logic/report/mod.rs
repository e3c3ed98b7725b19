// SPDX-License-Identifier: GPL-2.0

//! The debugfs files under `/sys/kernel/debug/resched/`, one file of this folder per family: what
//! each file shows (tables in the /proc/interrupts layout) and accepts. The reference of every file
//! is `docs/debugfs.md`; [`Files`] creates them all.
//!
//! - [`counters`]: `ipi`, `targets`, `matrix`, `pairs`, `callbacks`, `received`
//! - [`latency`]: `latency/{resched,ipi,wakeup,slices}`, `latency_enable`
//! - [`tasks`]: `sched`, `tasks`, `preempted_by`, `preempted_by_exited`, `attach`, `attach_capacity`
//! - [`noise`]: `noise/summary`, `noise/cpuN`, `noise_enable`
//! - [`stacks`]: `stacks/<tag>`, `stacks_enable`, `stacks_capacity`
//! - [`control`]: `cpus`, `probes`, `reset`
//! - [`table`]: the layout they share, and the parsers of what they accept

mod control;
mod counters;
mod latency;
mod noise;
mod stacks;
mod table;
mod tasks;

use crate::logic::engine::Engine;
use crate::logic::probes::Probes;
use crate::logic::tasks::Tasks;
use crate::sys::debugfs::{Dir, File};
use control::{Cpus, ProbeList, Reset};
use counters::{Callbacks, Ipi, Matrix, Pairs, Received, Targets};
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;
use latency::{LatencyEnable, LatencyFiles};
use noise::{NoiseEnable, NoiseFiles};
use stacks::{StackFiles, StacksCapacity, StacksEnable};
use tasks::{Attach, AttachCapacity, PreemptedByExited, PreemptedByList, Sched, TaskList};

/// Every file of the module, each owning what it reads, and their directory (removed last).
///
/// `attach` is created last: once it exists, tasks may attach (and hold the module), so nothing after
/// it may fail.
pub(crate) struct Files {
    _cpus: File<Cpus>,
    _ipi: File<Ipi>,
    _targets: File<Targets>,
    _matrix: File<Matrix>,
    _pairs: File<Pairs>,
    _callbacks: File<Callbacks>,
    _probes: File<ProbeList>,
    _reset: File<Reset>,
    _sched: File<Sched>,
    _tasks: File<TaskList>,
    _preempted_by: File<PreemptedByList>,
    _preempted_by_exited: File<PreemptedByExited>,
    _attach_capacity: File<AttachCapacity>,
    _stacks_enable: File<StacksEnable>,
    _stacks_capacity: File<StacksCapacity>,
    _stacks: StackFiles,
    _received: File<Received>,
    _latency_enable: File<LatencyEnable>,
    _latency: LatencyFiles,
    _noise: NoiseFiles,
    _noise_enable: File<NoiseEnable>,
    _attach: File<Attach>,
    _dir: Dir,
}

impl Files {
    /// Creates `/sys/kernel/debug/resched/` and every file in it.
    pub(crate) fn new(
        engine: &Arc<Engine>,
        probes: &Arc<Probes>,
        tasks: &Arc<Tasks>,
    ) -> Result<Self> {
        let dir = Dir::new(c_str!("resched"))?;
        let c = engine;
        // One file of `dir`.
        macro_rules! file {
            ($name:literal, $node:expr $(,)?) => {
                File::new(&dir, c_str!($name), $node)?
            };
        }
        Ok(Self {
            _cpus: file!("cpus", Cpus),
            _ipi: file!("ipi", Ipi(c.clone())),
            _targets: file!("targets", Targets(c.clone())),
            _matrix: file!("matrix", Matrix(c.clone())),
            _pairs: file!("pairs", Pairs(c.clone())),
            _callbacks: file!(
                "callbacks",
                Callbacks {
                    engine: c.clone(),
                    probes: probes.clone(),
                },
            ),
            _probes: file!(
                "probes",
                ProbeList {
                    probes: probes.clone(),
                    engine: c.clone(),
                },
            ),
            _reset: file!("reset", Reset { engine: c.clone() },),
            _sched: file!("sched", Sched(c.clone())),
            _tasks: file!("tasks", TaskList(tasks.clone())),
            _preempted_by: file!("preempted_by", PreemptedByList(tasks.clone())),
            _preempted_by_exited: file!("preempted_by_exited", PreemptedByExited(tasks.clone())),
            _attach_capacity: file!("attach_capacity", AttachCapacity(tasks.clone())),
            _stacks_enable: file!("stacks_enable", StacksEnable(c.clone())),
            _stacks_capacity: file!("stacks_capacity", StacksCapacity(c.clone())),
            _stacks: StackFiles::new(&dir, c)?,
            _received: file!(
                "received",
                Received {
                    engine: c.clone(),
                    probes: probes.clone(),
                },
            ),
            _latency_enable: file!("latency_enable", LatencyEnable(c.clone())),
            _latency: LatencyFiles::new(&dir, c, probes)?,
            _noise: NoiseFiles::new(&dir, c, probes)?,
            _noise_enable: file!("noise_enable", NoiseEnable(probes.clone())),
            _attach: file!("attach", Attach(tasks.clone())),
            _dir: dir,
        })
    }
}
