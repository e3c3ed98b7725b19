// SPDX-License-Identifier: GPL-2.0
//! `resched noise -C N [-d S] [--json]`: what interrupted CPU N during S seconds and for how long, the
//! sources ranked by the time they took (two readings of the module's `noise/cpuN`, subtracted).

use crate::module::Module;
use crate::parse::{self, NoiseRow, Pair};
use crate::stat::{duration, thousands};
use anyhow::{bail, Result};
use serde::Serialize;
use std::time::{Duration, Instant};

/// One source over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// `LOC`, `RES`, `CAL`, `IWI`, an interrupt number, a softirq name, `IRQ` or `CSD`.
    pub source: String,
    /// What it is: the vector's or interrupt's name, the queued function.
    pub what: String,
    pub count: u64,
    pub time_ns: u64,
    /// Whether its time is taken from the CPU by interruptions (the queued calls' is part of CAL's;
    /// `TASK` rows are kernel threads' turns on the CPU).
    pub taken: bool,
}

/// The window's sources, most time first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Noise {
    pub schema: &'static str,
    pub cpu: u32,
    pub seconds: f64,
    pub interruptions: u64,
    pub taken_ns: u64,
    pub sources: Vec<Source>,
    /// Who sent the CPU its IPIs over the window (from `pairs`): RES, CFS, CFM targets, WKL queued
    /// wakeups (run as `sched_ttwu_pending`); most first.
    pub senders: Vec<Sender>,
}

/// IPIs of one kind sent to the CPU by one CPU over the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sender {
    pub kind: String,
    pub sender: u32,
    pub count: u64,
}

/// The kinds of `pairs` that interrupt their target.
const SENT_KINDS: [&str; 4] = ["RES", "CFS", "CFM", "WKL"];

/// What each CPU sent `cpu` between two readings of `pairs`, most first. A pair absent before counted
/// from 0 (`pairs` lists the 256 most counted: one that entered the list during the window may be
/// over-counted by what it had before; a reader of hundreds of busy CPUs should read `matrix`).
pub fn senders(cpu: u32, before: &[Pair], after: &[Pair]) -> Vec<Sender> {
    let mut out: Vec<Sender> = after
        .iter()
        .filter(|a| a.target == cpu && SENT_KINDS.contains(&a.kind.as_str()))
        .filter_map(|a| {
            let b = before
                .iter()
                .find(|b| b.target == cpu && b.sender == a.sender && b.kind == a.kind)
                .map_or(0, |b| b.count);
            (a.count > b).then(|| Sender {
                kind: a.kind.clone(),
                sender: a.sender,
                count: a.count - b,
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.count));
    out
}

/// `after - before`, per source (a source absent before counted from 0).
pub fn subtract(
    cpu: u32,
    seconds: f64,
    before: &[NoiseRow],
    after: &[NoiseRow],
    senders: Vec<Sender>,
) -> Result<Noise> {
    let mut sources = Vec::new();
    for a in after {
        let b = before
            .iter()
            .find(|b| b.source == a.source && b.what == a.what);
        let (count, time_ns) = b.map_or((0, 0), |b| (b.count, b.time_ns));
        if a.count < count || a.time_ns < time_ns {
            bail!(
                "noise/cpu{cpu} went backwards (a reset during the window?): {} {}",
                a.source,
                a.what
            );
        }
        if a.count > count {
            sources.push(Source {
                source: a.source.clone(),
                what: a.what.clone(),
                count: a.count - count,
                time_ns: a.time_ns - time_ns,
                taken: !matches!(a.source.as_str(), "CSD" | "TASK"),
            });
        }
    }
    sources.sort_by_key(|s| std::cmp::Reverse((s.taken, s.time_ns)));
    let taken = sources.iter().filter(|s| s.taken);
    Ok(Noise {
        schema: "resched-noise/1",
        cpu,
        seconds,
        interruptions: taken.clone().map(|s| s.count).sum(),
        taken_ns: taken.map(|s| s.time_ns).sum(),
        sources,
        senders,
    })
}

pub fn run(cpu: u32, seconds: f64, json: bool) -> Result<()> {
    let m = Module::open()?;
    let file = format!("noise/cpu{cpu}");
    let before = parse::noise(&m.read(&file)?)?;
    let pairs_before = parse::pairs(&m.read("pairs")?)?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let after = parse::noise(&m.read(&file)?)?;
    let pairs_after = parse::pairs(&m.read("pairs")?)?;
    let sent = senders(cpu, &pairs_before, &pairs_after);
    let n = subtract(cpu, t0.elapsed().as_secs_f64(), &before, &after, sent)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&n)?);
        return Ok(());
    }
    let window = n.seconds * 1e9;
    println!(
        "CPU {} over {:.2} s: {} interruptions took {} ({:.4}% of the time)\n",
        n.cpu,
        n.seconds,
        thousands(n.interruptions),
        duration(n.taken_ns),
        n.taken_ns as f64 * 100.0 / window
    );
    println!(
        "{:<8}{:>12}{:>12}{:>12}{:>10}  what",
        "source", "count", "time", "mean", "share"
    );
    for s in &n.sources {
        println!(
            "{:<8}{:>12}{:>12}{:>12}{:>9.4}%  {}{}",
            s.source,
            thousands(s.count),
            duration(s.time_ns),
            duration(s.time_ns / s.count.max(1)),
            s.time_ns as f64 * 100.0 / window,
            s.what,
            match (s.taken, s.source.as_str()) {
                (true, _) => "",
                (false, "TASK") => " (kernel thread's turn)",
                (false, _) => " (in CAL)",
            }
        );
    }
    if !n.senders.is_empty() {
        println!(
            "\nIPIs sent to CPU {} (kind, sender, count; WKL: run as sched_ttwu_pending)",
            n.cpu
        );
        for s in &n.senders {
            println!("{:<8}CPU{:<8}{:>12}", s.kind, s.sender, thousands(s.count));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(source: &str, what: &str, count: u64, time_ns: u64) -> NoiseRow {
        NoiseRow {
            source: source.into(),
            what: what.into(),
            count,
            time_ns,
        }
    }

    #[test]
    fn subtracts_and_ranks() {
        let before = [
            row("LOC", "Local timer interrupts", 10, 1000),
            row("CSD", "ipi_mb", 1, 50),
        ];
        let after = [
            row("LOC", "Local timer interrupts", 20, 2000),
            row("39", "IRQ virtio1-requests", 3, 3000),
            row("CSD", "ipi_mb", 5, 9050),
        ];
        let n = subtract(3, 1.0, &before, &after, Vec::new()).unwrap();
        let got: Vec<_> = n
            .sources
            .iter()
            .map(|s| (s.source.as_str(), s.count, s.time_ns))
            .collect();
        assert_eq!(got, [("39", 3, 3000), ("LOC", 10, 1000), ("CSD", 4, 9000)]);
        assert_eq!((n.interruptions, n.taken_ns), (13, 4000));
        assert!(subtract(3, 1.0, &after, &before, Vec::new()).is_err());
    }

    fn pair(kind: &str, sender: u32, target: u32, count: u64) -> Pair {
        Pair {
            sender,
            target,
            kind: kind.into(),
            count,
        }
    }

    #[test]
    fn senders_to_one_cpu() {
        let before = [pair("CFS", 0, 3, 10), pair("RES", 1, 3, 5)];
        let after = [
            pair("CFS", 0, 3, 110),
            pair("RES", 1, 3, 5),
            pair("RSC", 1, 3, 50),
            pair("RES", 2, 3, 7),
            pair("CFM", 0, 2, 99),
        ];
        let got: Vec<_> = senders(3, &before, &after)
            .iter()
            .map(|s| (s.kind.clone(), s.sender, s.count))
            .collect();
        assert_eq!(got, [("CFS".into(), 0, 100), ("RES".into(), 2, 7)]);
    }
}
