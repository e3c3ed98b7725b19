// SPDX-License-Identifier: GPL-2.0

//! How long: `latency/resched`, `latency/ipi`, `latency/wakeup`, `latency/slices` (histograms over
//! all CPUs, then their summary rows per CPU) and the setting `latency_enable`.

use super::table::{header, histogram, histogram_rows, render, rows_of, Row};
use crate::logic::counters::{Hist, Local};
use crate::logic::engine::Engine;
use crate::logic::latency::Kind;
use crate::logic::probes::Probes;
use crate::logic::ratelimit::warn_ratelimited;
use crate::logic::text::line;
use crate::sys::debugfs::{Dir, File, Node, Shown, Text};
use crate::sys::preempt;
use crate::sys::task::Current;
use core::fmt::{self, Write};
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

/// Writes `# <off>` when latency recording is off.
fn latency_off(out: &mut impl Write, engine: &Engine) -> fmt::Result {
    if engine.latency().enabled() {
        Ok(())
    } else {
        writeln!(out, "# latency_enable is 0: nothing is being measured")
    }
}

/// `latency/resched`: from the first `resched_curr()` that marks a CPU's task to that CPU's next
/// context switch, for requests the CPU made itself (local) and those of other CPUs (remote).
pub(crate) struct ReschedLatency(pub(crate) Arc<Engine>);

#[vtable]
impl Node for ReschedLatency {
    fn show(&self, out: &mut Text) -> Shown {
        render(out, &self.0, |out, cols, s| {
            writeln!(
                out,
                "# From the first reschedule request for a CPU to that CPU's next context switch (ns)"
            )?;
            preempt_model(out)?;
            latency_off(out, &self.0)?;
            histogram(out, "local", &s.hist_all(Hist::ReschedLocal))?;
            histogram(out, "remote", &s.hist_all(Hist::ReschedRemote))?;
            histogram(out, "lazy", &s.hist_all(Hist::ReschedLazy))?;
            header(out, cols, 5)?;
            #[rustfmt::skip]
            let kinds = [
                (Hist::ReschedLocal, "L", "Local immediate requests measured"),
                (Hist::ReschedRemote, "R", "Remote immediate requests measured"),
                (Hist::ReschedLazy, "Z", "Lazy requests measured (local and remote)"),
            ];
            for (hist, prefix, what) in kinds {
                histogram_rows(out, cols, s, hist, prefix, what)?;
            }
            let local = |local| move |c| s.local(c, local);
            #[rustfmt::skip]
            let ended = [
                Row("PRO", &local(Local::ReschedPromoted), "Lazy requests promoted to immediate before their switch"),
                Row("PRE", &local(Local::ReschedPreempted), "Ended by preempting a task (it stays runnable)"),
                Row("BLK", &local(Local::ReschedBlocked), "Ended by the task blocking (voluntary switch)"),
                Row("IDL", &local(Local::ReschedIdle), "Ended by the idle task leaving the CPU"),
            ];
            rows_of(out, cols, 5, &ended)
        })
    }
}

/// Writes `# preemption model: MODEL` (and how to change it, when it can change at run time).
fn preempt_model(out: &mut impl Write) -> fmt::Result {
    let model = preempt::model().to_str().unwrap_or("?");
    if preempt::dynamic() {
        writeln!(
            out,
            "# preemption model: {model} (dynamic: preempt= at boot, /sys/kernel/debug/sched/preempt)"
        )
    } else {
        writeln!(out, "# preemption model: {model}")
    }
}

/// `latency/ipi`: from the first pending send of an IPI to its handler's start on the target CPU, per
/// kind, over all targets and per target.
pub(crate) struct IpiLatency {
    pub(crate) engine: Arc<Engine>,
    pub(crate) probes: Arc<Probes>,
}

#[vtable]
impl Node for IpiLatency {
    fn show(&self, out: &mut Text) -> Shown {
        if Kind::ALL.iter().any(|&k| !self.probes.has_received(k)) {
            return Ok(writeln!(
                out,
                "# not measured: this kernel fires neither irq_vectors:*_entry (x86) nor ipi:ipi_entry (arm64)"
            )?);
        }
        render(out, &self.engine, |out, cols, s| {
            writeln!(
                out,
                "# From the first pending send of an IPI to its handler's start on the target CPU (ns)"
            )?;
            latency_off(out, &self.engine)?;
            for kind in Kind::ALL {
                histogram(out, kind.name(), &s.hist_all(kind.delivery()))?;
            }
            header(out, cols, 5)?;
            let rows = [
                (
                    Kind::Res,
                    "R",
                    "Rescheduling IPIs measured (columns: target CPU)",
                ),
                (Kind::Cfs, "S", "Function call (single) IPIs measured"),
                (Kind::Cfm, "M", "Function call (many) IPIs measured"),
            ];
            for (kind, prefix, what) in rows {
                histogram_rows(out, cols, s, kind.delivery(), prefix, what)?;
            }
            Ok(())
        })
    }
}

/// `latency/wakeup`: attached tasks, from their wakeup to their switch in (the preempt notifier's
/// `sched_in`), per CPU they ran on.
pub(crate) struct WakeupLatency(pub(crate) Arc<Engine>);

#[vtable]
impl Node for WakeupLatency {
    fn show(&self, out: &mut Text) -> Shown {
        render(out, &self.0, |out, cols, s| {
            writeln!(
                out,
                "# Attached tasks: from their wakeup (sched_wakeup) to running (sched_in) (ns)"
            )?;
            latency_off(out, &self.0)?;
            histogram(out, "wakeup", &s.hist_all(Hist::WakeupToRun))?;
            header(out, cols, 5)?;
            histogram_rows(out, cols, s, Hist::WakeupToRun, "W", "Wakeups measured")
        })
    }
}

/// `latency/slices`: attached tasks' time on a CPU per slice, by how the slice ended.
pub(crate) struct SliceLengths(pub(crate) Arc<Engine>);

#[vtable]
impl Node for SliceLengths {
    fn show(&self, out: &mut Text) -> Shown {
        render(out, &self.0, |out, cols, s| {
            writeln!(
                out,
                "# Attached tasks: time on a CPU from sched_in to sched_out, by how it ended (ns)"
            )?;
            latency_off(out, &self.0)?;
            histogram(out, "preempted", &s.hist_all(Hist::SlicePreempted))?;
            histogram(out, "blocked", &s.hist_all(Hist::SliceBlocked))?;
            header(out, cols, 5)?;
            histogram_rows(
                out,
                cols,
                s,
                Hist::SlicePreempted,
                "P",
                "Slices ended by a preemption",
            )?;
            histogram_rows(
                out,
                cols,
                s,
                Hist::SliceBlocked,
                "B",
                "Slices ended by blocking",
            )
        })
    }
}

/// `latency_enable`: `1` (the default) while intervals are measured, `0` while not; writing `1` or `0`
/// turns it on or off (the histograms keep what they hold); anything else is `-EINVAL`.
pub(crate) struct LatencyEnable(pub(crate) Arc<Engine>);

#[vtable]
impl Node for LatencyEnable {
    fn show(&self, out: &mut Text) -> Shown {
        Ok(writeln!(out, "{}", u8::from(self.0.latency().enabled()))?)
    }

    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        match line(input) {
            b"1" => self.0.set_latency_enabled(true),
            b"0" => self.0.set_latency_enabled(false),
            _ => {
                warn_ratelimited!(
                    "latency_enable: expected \"0\" or \"1\", got {} bytes; nothing changed\n",
                    input.len()
                );
                return Err(EINVAL);
            }
        }
        Ok(())
    }
}

/// The files of `latency/`; they go before their directory.
pub(super) struct LatencyFiles {
    _resched: File<ReschedLatency>,
    _ipi: File<IpiLatency>,
    _wakeup: File<WakeupLatency>,
    _slices: File<SliceLengths>,
    _dir: Dir,
}

impl LatencyFiles {
    pub(super) fn new(parent: &Dir, engine: &Arc<Engine>, probes: &Arc<Probes>) -> Result<Self> {
        let dir = parent.subdir(c_str!("latency"))?;
        Ok(Self {
            _resched: File::new(&dir, c_str!("resched"), ReschedLatency(engine.clone()))?,
            _ipi: File::new(
                &dir,
                c_str!("ipi"),
                IpiLatency {
                    engine: engine.clone(),
                    probes: probes.clone(),
                },
            )?,
            _wakeup: File::new(&dir, c_str!("wakeup"), WakeupLatency(engine.clone()))?,
            _slices: File::new(&dir, c_str!("slices"), SliceLengths(engine.clone()))?,
            _dir: dir,
        })
    }
}
