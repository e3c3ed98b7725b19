// SPDX-License-Identifier: GPL-2.0

//! What interrupts each CPU and for how long: `noise/cpuN` (one per possible CPU: its sources ranked
//! by the time they took, then their histograms) and `noise/summary` (one line per online CPU).

use super::table::{insert_by_count, CpuName};
use crate::logic::counters::PerTarget;
use crate::logic::engine::{Engine, Window};
use crate::logic::histogram::Histogram;
use crate::logic::noise::{Source, FUNC_SLOTS, IRQ_SLOTS, SOFTIRQ_NAMES, TIMED_SOFTIRQS};
use crate::logic::probes::Probes;
use crate::logic::ratelimit::warn_ratelimited;
use crate::logic::text::{comm_str, line, FixedText};
use crate::sys::cpu;
use crate::sys::debugfs::{Dir, File, Node, Shown, Text};
use crate::sys::stacktrace::Symbolizer;
use crate::sys::task::Current;
use core::fmt::{self, Write};
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

/// The files of `noise/`.
pub(super) struct NoiseFiles {
    _summary: File<Summary>,
    _cpus: KVec<File<CpuNoise>>,
    _dir: Dir,
}

impl NoiseFiles {
    pub(super) fn new(parent: &Dir, engine: &Arc<Engine>, probes: &Arc<Probes>) -> Result<Self> {
        let dir = parent.subdir(c_str!("noise"))?;
        let summary = File::new(
            &dir,
            c_str!("summary"),
            Summary {
                engine: engine.clone(),
                probes: probes.clone(),
            },
        )?;
        let cpus = cpu::nr_cpu_ids();
        let mut files = KVec::with_capacity(cpus, GFP_KERNEL)?;
        for cpu in 0..cpus {
            let mut name = [0u8; 16];
            let len = {
                let mut w = Bytes(&mut name, 0);
                write!(w, "cpu{cpu}").map_err(|_| EINVAL)?;
                w.1
            };
            let name = CStr::from_bytes_with_nul(&name[..=len]).map_err(|_| EINVAL)?;
            let node = CpuNoise {
                engine: engine.clone(),
                probes: probes.clone(),
                cpu,
            };
            files.push(File::new(&dir, name, node)?, GFP_KERNEL)?;
        }
        Ok(Self {
            _summary: summary,
            _cpus: files,
            _dir: dir,
        })
    }
}

/// Writes into a byte buffer, keeping its last byte for a NUL.
struct Bytes<'a>(&'a mut [u8], usize);

impl Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.1 + s.len();
        if end >= self.0.len() {
            return Err(fmt::Error);
        }
        self.0[self.1..end].copy_from_slice(s.as_bytes());
        self.1 = end;
        Ok(())
    }
}

/// A source of one CPU with what it took.
struct Taken {
    source: Source,
    hist: Histogram,
}

/// The sources of CPU `cpu` in `window` that interrupted it, most time first: those that took time
/// from the CPU, then the queued calls (part of CAL's or the idle loop's time).
fn sources(window: &Window, cpu: usize) -> Result<KVVec<Taken>> {
    let reading = window.noise.reading(cpu);
    let mut list = KVVec::new();
    let key = |t: &Taken| (t.source.stolen(), t.hist.sum());
    for source in Source::all() {
        let hist = reading.hist(source);
        if hist.count() == 0 {
            continue;
        }
        list.push(Taken { source, hist }, GFP_KERNEL)?;
        // Into its place: a few dozen sources at most.
        let mut i = list.len() - 1;
        while i > 0 && key(&list[i - 1]) < key(&list[i]) {
            list.swap(i - 1, i);
            i -= 1;
        }
    }
    Ok(list)
}

/// `taken` as a share of `window` nanoseconds: `12.3456%`.
struct Share(u64, u64);

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No 128-bit division in the kernel: exact up to five hours taken, then to a part per million
        // of the window.
        let per_million = match self.0.checked_mul(1_000_000) {
            Some(scaled) => scaled.checked_div(self.1),
            None => self.0.checked_div(self.1 / 1_000_000),
        }
        .unwrap_or(0);
        FixedText::<32>::padded(
            f,
            format_args!("{}.{:04}%", per_million / 10_000, per_million % 10_000),
        )
    }
}

/// Writes a source's key and what it is: `LOC  Local timer interrupts`, `24  virtio0-requests`,
/// `TIMER  softirq`, `fn  flush_tlb_func`.
fn write_label(
    out: &mut impl Write,
    engine: &Engine,
    cpu: usize,
    source: Source,
    kind_width: usize,
) -> fmt::Result {
    let keys = engine.noise().keys(cpu);
    match source {
        Source::Vector(hard) => write!(out, "{:<kind_width$}", hard.name()),
        Source::Irq(slot) => match keys.irq(slot) {
            Some(irq) => write!(out, "{irq:<kind_width$}"),
            None => write!(out, "{:<kind_width$}", "IRQ"),
        },
        Source::Softirq(vec) => write!(out, "{:<kind_width$}", SOFTIRQ_NAMES[vec]),
        Source::Func(_) => write!(out, "{:<kind_width$}", "CSD"),
        Source::Task(_) => write!(out, "{:<kind_width$}", "TASK"),
    }
}

/// Writes what a source is (the last column).
fn write_what(
    out: &mut impl Write,
    engine: &Engine,
    cpu: usize,
    source: Source,
    symbols: &mut Symbolizer,
) -> fmt::Result {
    let keys = engine.noise().keys(cpu);
    match source {
        Source::Vector(hard) => out.write_str(hard.what()),
        Source::Irq(slot) if slot < IRQ_SLOTS => {
            let name = keys.irq_name(slot);
            write!(out, "IRQ {}", comm_str(&name))
        }
        Source::Irq(_) => out.write_str("(other device interrupts: no slot left on this CPU)"),
        Source::Softirq(_) if TIMED_SOFTIRQS => {
            out.write_str("softirq (without the hard interrupts in it)")
        }
        Source::Softirq(_) => {
            out.write_str("softirq (counted, not timed: PREEMPT_RT runs softirqs in tasks)")
        }
        Source::Func(slot) if slot < FUNC_SLOTS => symbols.write_function(out, keys.func(slot)),
        Source::Func(_) => out.write_str("(other queued functions: no slot left on this CPU)"),
        Source::Task(slot) => match keys.task(slot) {
            Some(name) => write!(out, "{} (kernel thread)", comm_str(&name)),
            None => out.write_str("(other kernel threads: no slot left on this CPU)"),
        },
    }
}

/// Writes which of the interruption probes registered, or that the group is off.
fn write_probes(out: &mut impl Write, probes: &Probes) -> Shown {
    let status = probes.noise()?;
    if !status.on {
        writeln!(out, "# noise_enable is 0: nothing is being measured")?;
        return Ok(());
    }
    out.write_str("# probes:")?;
    for symbol in status.symbols.iter() {
        write!(out, " {}", symbol.to_str().unwrap_or("?"))?;
    }
    for (ok, what) in [
        (status.irq, "device interrupts"),
        (status.softirq, "softirqs"),
        (status.csd, "queued calls"),
    ] {
        if !ok {
            write!(out, " (not timed: {what})")?;
        }
    }
    Ok(writeln!(out)?)
}

/// `noise_enable`: `1` (the default) while the interruption probes are registered, `0` while not;
/// writing `1` or `0` registers or unregisters them (the counts stay); anything else is `-EINVAL`.
pub(crate) struct NoiseEnable(pub(crate) Arc<Probes>);

#[vtable]
impl Node for NoiseEnable {
    fn show(&self, out: &mut Text) -> Shown {
        Ok(writeln!(out, "{}", u8::from(self.0.noise()?.on))?)
    }

    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        match line(input) {
            b"1" => self.0.set_noise(true),
            b"0" => self.0.set_noise(false),
            _ => {
                warn_ratelimited!(
                    "noise_enable: expected \"0\" or \"1\", got {} bytes; nothing changed\n",
                    input.len()
                );
                Err(EINVAL)
            }
        }
    }
}

/// `noise/cpuN`: what interrupted CPU N since the load or the last reset, the time each source's
/// handlers took (count, sum, mean, largest), most first, then each one's histogram.
pub(crate) struct CpuNoise {
    engine: Arc<Engine>,
    probes: Arc<Probes>,
    cpu: usize,
}

#[vtable]
impl Node for CpuNoise {
    fn show(&self, out: &mut Text) -> Shown {
        let mut symbols = Symbolizer::new()?;
        let cpu = self.cpu;
        self.engine.read(|window| -> Shown {
            let list = sources(window, cpu)?;
            let age = window.age_ns();
            let (mut hard, mut soft, mut count) = (0u64, 0u64, 0u64);
            for t in list.iter().filter(|t| t.source.stolen()) {
                count += t.hist.count();
                match t.source {
                    Source::Softirq(_) => soft += t.hist.sum(),
                    _ => hard += t.hist.sum(),
                }
            }
            writeln!(
                out,
                "# CPU {cpu}{}: what interrupted it in the last {}.{:06} s (since the load or the last reset), and for how long",
                if cpu::is_online(cpu) { "" } else { " (offline)" },
                age / 1_000_000_000,
                age / 1000 % 1_000_000
            )?;
            writeln!(
                out,
                "# taken: {} ns ({} of the time) in {count} interruptions: hard interrupts {hard} ns, softirqs {soft} ns",
                hard + soft,
                Share(hard + soft, age)
            )?;
            writeln!(
                out,
                "# CSD rows: the queued cross-CPU calls run here, part of CAL's time (or of the idle loop's)"
            )?;
            writeln!(
                out,
                "# TASK rows: the kernel threads' turns on this CPU, without the interruptions in them (not in taken)"
            )?;
            write_probes(out, &self.probes)?;
            writeln!(
                out,
                "{:<8}{:>12}{:>14}{:>10}{:>12}{:>10}  what",
                "source", "count", "time_ns", "mean_ns", "max_ns", "share"
            )?;
            for t in list.iter() {
                write_label(out, &self.engine, cpu, t.source, 8)?;
                let n = t.hist.count();
                write!(
                    out,
                    "{n:>12}{:>14}{:>10}{:>12}{:>10}  ",
                    t.hist.sum(),
                    t.hist.sum() / n.max(1),
                    t.hist.max(),
                    Share(t.hist.sum(), age)
                )?;
                write_what(out, &self.engine, cpu, t.source, &mut symbols)?;
                writeln!(out)?;
            }
            write_senders(out, window, cpu)?;
            for t in list.iter() {
                writeln!(out)?;
                out.write_char('@')?;
                write_label(out, &self.engine, cpu, t.source, 0)?;
                out.write_str(" (")?;
                write_what(out, &self.engine, cpu, t.source, &mut symbols)?;
                out.write_str(") ns: ")?;
                t.hist.write_summary(out)?;
                t.hist.write_buckets(out)?;
            }
            Ok(())
        })
    }
}

/// Senders shown per kind of IPI.
const SENDERS: usize = 4;

/// Writes who sent CPU `cpu` its IPIs in `window`: per kind (RES, CFS, CFM targets, WKL queued
/// wakeups, run here as `sched_ttwu_pending`), the [`SENDERS`] most frequent senders, one line each:
/// `sent KIND CPU<s> COUNT`.
fn write_senders(out: &mut impl Write, window: &Window, cpu: usize) -> Shown {
    let reading = window.counters.reading()?;
    writeln!(out)?;
    writeln!(
        out,
        "# IPIs sent to CPU {cpu} by kind, the {SENDERS} most frequent senders of each (pairs: all)"
    )?;
    writeln!(
        out,
        "{:<6}{:<6}{:<10}{:>12}",
        "sent", "kind", "sender", "count"
    )?;
    for kind in [
        PerTarget::Res,
        PerTarget::Cfs,
        PerTarget::Cfm,
        PerTarget::Wkl,
    ] {
        let mut top = KVec::with_capacity(SENDERS, GFP_KERNEL)?;
        for sender in reading.senders() {
            let count = reading.pair(kind, sender, cpu);
            if count > 0 {
                insert_by_count(&mut top, count, sender, SENDERS)?;
            }
        }
        for (count, sender) in top.iter() {
            writeln!(
                out,
                "{:<6}{:<6}{:<10}{count:>12}",
                "sent",
                kind.name(),
                CpuName(*sender)
            )?;
        }
    }
    Ok(())
}

/// `noise/summary`: per online CPU, the time taken by what interrupted it since the load or the last
/// reset, its share of the window, the interruptions, and the source that took most.
pub(crate) struct Summary {
    engine: Arc<Engine>,
    probes: Arc<Probes>,
}

#[vtable]
impl Node for Summary {
    fn show(&self, out: &mut Text) -> Shown {
        let mut symbols = Symbolizer::new()?;
        self.engine.read(|window| -> Shown {
            let age = window.age_ns();
            writeln!(
                out,
                "# What interrupted each CPU in the last {}.{:06} s, and for how long (noise/cpuN for each source)",
                age / 1_000_000_000,
                age / 1000 % 1_000_000
            )?;
            write_probes(out, &self.probes)?;
            writeln!(
                out,
                "{:<6}{:>14}{:>16}{:>10}  most",
                "cpu", "interruptions", "taken_ns", "share"
            )?;
            for cpu in cpu::online() {
                let list = sources(window, cpu)?;
                let (count, taken) = list
                    .iter()
                    .filter(|t| t.source.stolen())
                    .fold((0, 0), |(c, s), t| (c + t.hist.count(), s + t.hist.sum()));
                write!(
                    out,
                    "{cpu:<6}{count:>14}{taken:>16}{:>10}  ",
                    Share(taken, age)
                )?;
                if let Some(top) = list.iter().find(|t| t.source.stolen()) {
                    write_label(out, &self.engine, cpu, top.source, 0)?;
                    write!(out, " {} ns (", top.hist.sum())?;
                    write_what(out, &self.engine, cpu, top.source, &mut symbols)?;
                    out.write_char(')')?;
                } else {
                    out.write_char('-')?;
                }
                writeln!(out)?;
            }
            Ok(())
        })
    }
}
