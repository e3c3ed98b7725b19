// SPDX-License-Identifier: GPL-2.0

//! The debugfs files under `/sys/kernel/debug/resched/`: what each shows (tables in the
//! /proc/interrupts layout) and accepts, and [`Files`], which creates them all.

use crate::logic::callbacks::MAX_FUNCS;
use crate::logic::counters::{Hist, Local, PerTarget, Reading, Tag};
use crate::logic::engine::Engine;
use crate::logic::histogram::Histogram;
use crate::logic::latency::Kind;
use crate::logic::probes::Probes;
use crate::logic::ratelimit::warn_ratelimited;
use crate::logic::stacks::MAX_ENTRIES;
use crate::logic::tasks::{Tasks, MAX_ATTACHED, MAX_PENDING};
use crate::sys::cpu;
use crate::sys::debugfs::{Dir, File, Node, Text};
use crate::sys::stacktrace::{self, Symbolizer};
use crate::sys::task::Current;
use core::fmt::{self, Write};
use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Arc;

/// Width of one CPU column, as in /proc/interrupts (`%10u` and a space).
const COLUMN: usize = 11;

/// Writes `cpus` (increasing) as a kernel CPU list, e.g. `0-3,6`, and a newline.
pub(crate) fn cpu_list(out: &mut impl Write, cpus: impl Iterator<Item = usize>) -> fmt::Result {
    let mut runs: Option<(usize, usize)> = None;
    let mut sep = "";
    let mut flush = |out: &mut dyn Write, (lo, hi): (usize, usize)| -> fmt::Result {
        let r = if lo == hi {
            write!(out, "{sep}{lo}")
        } else {
            write!(out, "{sep}{lo}-{hi}")
        };
        sep = ",";
        r
    };
    for cpu in cpus {
        runs = match runs {
            Some((lo, hi)) if cpu == hi + 1 => Some((lo, cpu)),
            Some(done) => {
                flush(out, done)?;
                Some((cpu, cpu))
            }
            None => Some((cpu, cpu)),
        };
    }
    if let Some(done) = runs {
        flush(out, done)?;
    }
    writeln!(out)
}

/// Writes a table header: `label_width` blanks, then a right-aligned `CPU<n>` for each CPU of `cols`.
fn header(out: &mut impl Write, cols: &[usize], label_width: usize) -> fmt::Result {
    write!(out, "{:label_width$}", "")?;
    for &cpu in cols {
        write!(out, "{:>COLUMN$}", CpuName(cpu))?;
    }
    writeln!(out)
}

/// Writes a table row: `<label>:` padded to `label_width`, `value` of each CPU of `cols`, and `desc`.
fn row(
    out: &mut impl Write,
    cols: &[usize],
    label_width: usize,
    label: &dyn fmt::Display,
    value: impl Fn(usize) -> u64,
    desc: &str,
) -> fmt::Result {
    write!(out, "{:<label_width$}", Label(label))?;
    for &cpu in cols {
        write!(out, "{:>COLUMN$}", value(cpu))?;
    }
    if desc.is_empty() {
        writeln!(out)
    } else {
        writeln!(out, "   {desc}")
    }
}

/// `CPU<n>`, padded as a whole.
struct CpuName(usize);

impl fmt::Display for CpuName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 16];
        let mut w = ByteWriter {
            buf: &mut buf,
            len: 0,
        };
        write!(w, "CPU{}", self.0)?;
        let len = w.len;
        f.pad(core::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
    }
}

/// `<label>:`, padded as a whole.
struct Label<'a>(&'a dyn fmt::Display);

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 16];
        let mut w = ByteWriter {
            buf: &mut buf,
            len: 0,
        };
        write!(w, "{}:", self.0)?;
        let len = w.len;
        f.pad(core::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
    }
}

/// Formats into a fixed buffer (short labels only).
struct ByteWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The online CPUs: the columns of every table.
fn columns() -> Result<KVec<usize>> {
    let mut cols = KVec::new();
    for cpu in cpu::online() {
        cols.push(cpu, GFP_KERNEL)?;
    }
    Ok(cols)
}

/// Renders with `f` from the active window, read in place with no reset meanwhile; formatting can
/// only fail for lack of memory.
fn render(
    out: &mut Text,
    engine: &Engine,
    f: impl FnOnce(&mut Text, &[usize], &Reading<'_>) -> fmt::Result,
) -> Result {
    let cols = columns()?;
    engine.read(|window| {
        let reading = window.counters.reading()?;
        f(out, &cols, &reading).map_err(|_| ENOMEM)
    })
}

/// `cpus`: the online CPUs as a CPU list (`0-3`): the columns every table shows.
pub(crate) struct Cpus;

#[vtable]
impl Node for Cpus {
    fn show(&self, out: &mut Text) -> Result {
        cpu_list(out, cpu::online()).map_err(|_| ENOMEM)
    }
}

/// `ipi`: what each CPU sent (columns are the sending CPU).
pub(crate) struct Ipi(pub(crate) Arc<Engine>);

#[vtable]
impl Node for Ipi {
    fn show(&self, out: &mut Text) -> Result {
        render(out, &self.0, |out, cols, s| {
            header(out, cols, 4)?;
            let sent = |array| move |c| s.sent_by(array, c);
            row(
                out,
                cols,
                4,
                &"RES",
                sent(PerTarget::Res),
                "Rescheduling IPIs sent",
            )?;
            row(
                out,
                cols,
                4,
                &"CFS",
                sent(PerTarget::Cfs),
                "Function call (single) IPIs sent",
            )?;
            row(
                out,
                cols,
                4,
                &"CFM",
                |c| s.local(c, Local::CfmCalls),
                "Function call (many) sends",
            )?;
            row(
                out,
                cols,
                4,
                &"CFT",
                sent(PerTarget::Cfm),
                "Function call (many) target CPUs",
            )?;
            row(
                out,
                cols,
                4,
                &"RSC",
                |c| s.resched_by(c),
                "reschedule requests made",
            )?;
            row(
                out,
                cols,
                4,
                &"WKL",
                sent(PerTarget::Wkl),
                "Wakeups queued on another CPU's wakelist",
            )
        })
    }
}

/// `targets`: what each CPU was sent (columns are the target CPU), comparable with /proc/interrupts.
pub(crate) struct Targets(pub(crate) Arc<Engine>);

#[vtable]
impl Node for Targets {
    fn show(&self, out: &mut Text) -> Result {
        render(out, &self.0, |out, cols, s| {
            header(out, cols, 4)?;
            let to = |array| move |c| s.sent_to(array, c);
            row(
                out,
                cols,
                4,
                &"RES",
                to(PerTarget::Res),
                "Rescheduling IPIs sent to this CPU",
            )?;
            let cal = |c| s.sent_to(PerTarget::Cfs, c) + s.sent_to(PerTarget::Cfm, c);
            row(
                out,
                cols,
                4,
                &"CAL",
                cal,
                "Function call IPIs sent to this CPU (single + many)",
            )?;
            row(
                out,
                cols,
                4,
                &"RSC",
                to(PerTarget::RscRemote),
                "reschedule requests from other CPUs",
            )?;
            row(
                out,
                cols,
                4,
                &"WKL",
                to(PerTarget::Wkl),
                "Wakeups queued on this CPU's wakelist",
            )
        })
    }
}

/// `matrix`: sender x target for reschedule and call-function IPIs.
pub(crate) struct Matrix(pub(crate) Arc<Engine>);

impl Matrix {
    /// One block: a title, a header of target CPUs, one row per sending CPU.
    fn block(
        out: &mut Text,
        cols: &[usize],
        title: &str,
        value: impl Fn(usize, usize) -> u64,
    ) -> fmt::Result {
        writeln!(out, "{title}")?;
        let width = if cols.last().is_some_and(|&c| c >= 10) {
            6
        } else {
            5
        };
        header(out, cols, width)?;
        for &sender in cols {
            row(
                out,
                cols,
                width,
                &CpuName(sender),
                |target| value(sender, target),
                "",
            )?;
        }
        Ok(())
    }
}

#[vtable]
impl Node for Matrix {
    fn show(&self, out: &mut Text) -> Result {
        render(out, &self.0, |out, cols, s| {
            let res = |from, to| s.pair(PerTarget::Res, from, to);
            Self::block(
                out,
                cols,
                "RES: reschedule IPIs (row: sending CPU, column: target CPU)",
                res,
            )?;
            let cal =
                |from, to| s.pair(PerTarget::Cfs, from, to) + s.pair(PerTarget::Cfm, from, to);
            Self::block(
                out,
                cols,
                "CAL: function call IPIs, single + many (row: sending CPU, column: target CPU)",
                cal,
            )
        })
    }
}

/// Inserts `item` counted `count` into `list`, kept most counted first (ties in insertion order) and
/// at most `max` long (the least counted gives way). An insertion, not a slice sort: see `stacks.rs`.
fn insert_by_count<T>(list: &mut KVec<(u64, T)>, count: u64, item: T, max: usize) -> Result {
    if list.len() == max {
        // Full: `item` gets in only if counted more than the least counted.
        match list.last() {
            Some(&(c, _)) if c < count => {}
            _ => return Ok(()),
        }
    }
    let at = list
        .iter()
        .position(|&(c, _)| c < count)
        .unwrap_or(list.len());
    if list.len() < max {
        list.push((count, item), GFP_KERNEL)?;
    } else if let Some(last) = list.last_mut() {
        *last = (count, item);
    }
    let mut i = list.len() - 1;
    while i > at {
        list.swap(i - 1, i);
        i -= 1;
    }
    Ok(())
}

/// `pairs`: the nonzero (sender, target, kind) counts of every possible CPU, most counted first, at most
/// [`Pairs::SHOWN`] of them: the view of `matrix` that stays readable with hundreds of CPUs.
pub(crate) struct Pairs(pub(crate) Arc<Engine>);

/// One line of `pairs` (with its count).
#[derive(Clone, Copy)]
struct Pair {
    kind: PerTarget,
    sender: usize,
    target: usize,
}

impl Pairs {
    /// The most lines shown.
    const SHOWN: usize = 256;

    /// The nonzero pairs of `r`: how many, and the [`Self::SHOWN`] most counted, most first (ties in
    /// sender, target and kind order).
    fn top(r: &Reading<'_>) -> Result<(usize, KVec<(u64, Pair)>)> {
        let mut top = KVec::with_capacity(Self::SHOWN, GFP_KERNEL)?;
        let mut nonzero = 0;
        for sender in r.senders() {
            for target in r.senders() {
                for kind in PerTarget::ALL {
                    let count = r.pair(kind, sender, target);
                    if count > 0 {
                        nonzero += 1;
                        let pair = Pair {
                            kind,
                            sender,
                            target,
                        };
                        insert_by_count(&mut top, count, pair, Self::SHOWN)?;
                    }
                }
            }
        }
        Ok((nonzero, top))
    }
}

#[vtable]
impl Node for Pairs {
    fn show(&self, out: &mut Text) -> Result {
        self.0.read(|window| {
            let (nonzero, top) = Self::top(&window.counters.reading()?)?;
            let r = (|| -> fmt::Result {
                writeln!(
                    out,
                    "{} nonzero (sender, target, kind) pairs, {} most counted shown",
                    nonzero,
                    top.len()
                )?;
                writeln!(
                    out,
                    "{:>12} {:>4} {:>8} {:>8}",
                    "count", "kind", "sender", "target"
                )?;
                for (count, p) in top.iter() {
                    writeln!(
                        out,
                        "{:>12} {:>4} {:>8} {:>8}",
                        count,
                        p.kind.name(),
                        CpuName(p.sender),
                        CpuName(p.target)
                    )?;
                }
                Ok(())
            })();
            r.map_err(|_| ENOMEM)
        })
    }
}

/// `callbacks`: the functions queued to run on other CPUs (`csd:csd_queue_cpu`), one row each in the
/// /proc/interrupts layout: calls queued by each sending CPU, then the function's name; most counted
/// first; a `dropped` row when more distinct functions came than the table holds.
pub(crate) struct Callbacks {
    pub(crate) engine: Arc<Engine>,
    pub(crate) probes: Arc<Probes>,
}

#[vtable]
impl Node for Callbacks {
    fn show(&self, out: &mut Text) -> Result {
        let cols = columns()?;
        if !self.probes.has_callbacks() {
            return writeln!(out, "# no csd:csd_queue_cpu tracepoint in this kernel")
                .map_err(|_| ENOMEM);
        }
        let mut symbols = Symbolizer::new()?;
        self.engine.read(|window| {
            let r = window.counters.reading()?;
            let functions = self.engine.functions();
            // (total, slot) of every slot with a count, most counted first.
            let mut rows = KVec::with_capacity(MAX_FUNCS, GFP_KERNEL)?;
            for slot in 0..MAX_FUNCS {
                let total: u64 = r.senders().map(|c| r.queued(c, Some(slot))).sum();
                if total > 0 && functions.func(slot) != 0 {
                    insert_by_count(&mut rows, total, slot, MAX_FUNCS)?;
                }
            }
            let f = (|| -> fmt::Result {
                header(out, &cols, 5)?;
                for &(_, slot) in rows.iter() {
                    write!(out, "{:<5}", "CSD:")?;
                    for &cpu in cols.iter() {
                        write!(out, "{:>COLUMN$}", r.queued(cpu, Some(slot)))?;
                    }
                    out.write_str("   ")?;
                    symbols.write_function(out, functions.func(slot))?;
                    writeln!(out)?;
                }
                let dropped: u64 = r.senders().map(|c| r.queued(c, None)).sum();
                if dropped > 0 {
                    row(
                        out,
                        &cols,
                        5,
                        &"CSD",
                        |c| r.queued(c, None),
                        "(dropped: no slot left)",
                    )?;
                }
                Ok(())
            })();
            f.map_err(|_| ENOMEM)
        })
    }
}

/// `probes`: one line per tag: tag, symbol (or tracepoint), `ok` or `failed <errno>`, hits, missed,
/// and the mechanism (`via=kprobe`, `via=kretprobe` or `via=tracepoint`).
pub(crate) struct ProbeList {
    pub(crate) probes: Arc<Probes>,
    pub(crate) engine: Arc<Engine>,
}

#[vtable]
impl Node for ProbeList {
    fn show(&self, out: &mut Text) -> Result {
        self.engine
            .read(|window| self.show_in(out, &window.counters.reading()?))
    }
}

impl ProbeList {
    fn show_in(&self, out: &mut Text, snap: &Reading<'_>) -> Result {
        for (tag, probe) in self.probes.list() {
            let symbol = probe.symbol().to_str().unwrap_or("?");
            let r = match probe.status() {
                Ok(()) => write!(out, "{} {} ok", tag.name(), symbol),
                Err(e) => write!(out, "{} {} failed {}", tag.name(), symbol, e.to_errno()),
            };
            r.and_then(|()| {
                writeln!(
                    out,
                    " hits={} missed={} via={}",
                    snap.hits(tag, self.probes.has_callbacks()),
                    probe.missed(),
                    probe.via()
                )
            })
            .map_err(|_| ENOMEM)?;
        }
        Ok(())
    }
}

/// `reset`: writing `1` (with or without a newline) zeroes every counter and empties the stack tables;
/// anything else is `-EINVAL` and changes nothing.
pub(crate) struct Reset {
    pub(crate) engine: Arc<Engine>,
}

#[vtable]
impl Node for Reset {
    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        match input {
            b"1" | b"1\n" => {
                self.engine.reset();
                Ok(())
            }
            _ => {
                warn_ratelimited!(
                    "reset: expected \"1\", got {} bytes; nothing changed\n",
                    input.len()
                );
                Err(EINVAL)
            }
        }
    }
}

/// `input` without one trailing newline.
fn line(input: &[u8]) -> &[u8] {
    input.strip_suffix(b"\n").unwrap_or(input)
}

/// `stacks_enable`: `1` while hits record their stacks, `0` (the default) while not; writing `1` or `0`
/// turns recording on or off (the tables keep what they hold); anything else is `-EINVAL`.
pub(crate) struct StacksEnable(pub(crate) Arc<Engine>);

#[vtable]
impl Node for StacksEnable {
    fn show(&self, out: &mut Text) -> Result {
        writeln!(out, "{}", u8::from(self.0.stacks_enabled())).map_err(|_| ENOMEM)
    }

    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        match line(input) {
            b"1" if !stacktrace::SUPPORTED => {
                warn_ratelimited!(
                    "stacks_enable: stack recording needs the x86-64 unwinder; not on this architecture\n"
                );
                return Err(stacktrace::unsupported());
            }
            b"1" => self.0.set_stacks_enabled(true),
            b"0" => self.0.set_stacks_enabled(false),
            _ => {
                warn_ratelimited!(
                    "stacks_enable: expected \"0\" or \"1\", got {} bytes; nothing changed\n",
                    input.len()
                );
                return Err(EINVAL);
            }
        }
        Ok(())
    }
}

/// `stacks_capacity`: the entries each stack table may use. Writing a number from 1 to the entries
/// allocated at load sets it and empties the tables; refused (`-EBUSY`) while recording is on; anything
/// else is `-EINVAL`.
pub(crate) struct StacksCapacity(pub(crate) Arc<Engine>);

/// A decimal number without sign, spaces or leading zeros.
fn parse_count(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 9 || digits.first() == Some(&b'0') {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

#[vtable]
impl Node for StacksCapacity {
    fn show(&self, out: &mut Text) -> Result {
        writeln!(out, "{}", self.0.capacity()).map_err(|_| ENOMEM)
    }

    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        let r = parse_count(line(input))
            .ok_or(EINVAL)
            .and_then(|n| self.0.set_capacity(n));
        if let Err(e) = r {
            warn_ratelimited!(
                "stacks_capacity: expected a number from 1 to {} while stacks_enable is 0, got {} bytes: error {}; nothing changed\n",
                MAX_ENTRIES,
                input.len(),
                e.to_errno()
            );
        }
        r
    }
}

/// `attach_capacity`: how many tasks may be attached at once (default 1024); writing a number from 1
/// to the slots allocated at load sets it (tasks attached beyond a lower value stay); anything else is
/// `-EINVAL`. An attach beyond it fails with `-ENOSPC` (a new child: not attached), counted in `tasks`.
pub(crate) struct AttachCapacity(pub(crate) Arc<Tasks>);

#[vtable]
impl Node for AttachCapacity {
    fn show(&self, out: &mut Text) -> Result {
        writeln!(out, "{}", self.0.capacity()).map_err(|_| ENOMEM)
    }

    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        let r = parse_count(line(input))
            .ok_or(EINVAL)
            .and_then(|n| self.0.set_capacity(n));
        if r.is_err() {
            warn_ratelimited!(
                "attach_capacity: expected a number from 1 to {}, got {} bytes; nothing changed\n",
                MAX_ATTACHED,
                input.len()
            );
        }
        r
    }
}

/// `stacks/<tag>`: a header (entries used, capacity, dropped hits), then each distinct stack, most
/// counted first: its frames innermost first, as bpftrace prints `kstack`, then its count and CPUs.
pub(crate) struct StackFile {
    pub(crate) engine: Arc<Engine>,
    pub(crate) tag: Tag,
}

#[vtable]
impl Node for StackFile {
    fn show(&self, out: &mut Text) -> Result {
        let seen = self
            .engine
            .read(|window| window.stacks.seen(self.tag, self.engine.capacity()))?;
        let mut symbols = Symbolizer::new()?;
        let r = (|| -> fmt::Result {
            writeln!(
                out,
                "{} stacks: {} of {} entries used, {} dropped, recording {}",
                self.tag.name(),
                seen.used,
                seen.capacity,
                seen.dropped,
                if self.engine.stacks_enabled() {
                    "on"
                } else {
                    "off"
                }
            )?;
            for entry in seen.entries.iter() {
                writeln!(out)?;
                let machinery = symbols.tracepoint_frames(&entry.stack);
                for frame in entry.stack.frames().skip(machinery) {
                    out.write_str("        ")?;
                    symbols.write(out, frame)?;
                    writeln!(out)?;
                }
                write!(out, "    {} hits on CPUs ", entry.count)?;
                cpu_list(out, seen.cpus(entry))?;
            }
            Ok(())
        })();
        r.map_err(|_| ENOMEM)
    }
}

/// `sched`: context switches per CPU, of attached tasks (preempt notifiers) and of every task
/// (`sched_switch`).
pub(crate) struct Sched(pub(crate) Arc<Engine>);

#[vtable]
impl Node for Sched {
    fn show(&self, out: &mut Text) -> Result {
        render(out, &self.0, |out, cols, s| {
            header(out, cols, 4)?;
            let rows = [
                ("IN", Local::SchedIn, "Attached tasks switched in"),
                ("OUT", Local::SchedOut, "Attached tasks switched out"),
                (
                    "PRE",
                    Local::Preempted,
                    "... of which preempted (still runnable)",
                ),
                ("VOL", Local::Voluntary, "... of which blocking (voluntary)"),
                (
                    "MIG",
                    Local::Migrated,
                    "Attached tasks switched in after running on another CPU",
                ),
                ("CSW", Local::Switches, "Context switches, all tasks"),
                (
                    "CSP",
                    Local::SwitchesPreempt,
                    "... of which the previous task was preempted",
                ),
            ];
            for (label, local, desc) in rows {
                row(out, cols, 4, &label, |c| s.local(c, local), desc)?;
            }
            Ok(())
        })
    }
}

/// A task's NUL-padded name as text.
fn comm_str(comm: &[u8]) -> &str {
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    core::str::from_utf8(&comm[..len]).unwrap_or("?")
}

/// `tasks`: one line per attached task.
pub(crate) struct TaskList(pub(crate) Arc<Tasks>);

#[vtable]
impl Node for TaskList {
    fn show(&self, out: &mut Text) -> Result {
        let rows = self.0.rows()?;
        let r = (|| -> fmt::Result {
            writeln!(
                out,
                "{:>8} {:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>4}",
                "PID", "COMM", "IN", "OUT", "PREEMPTED", "VOLUNTARY", "MIGRATED", "CPU"
            )?;
            for t in rows.iter() {
                let comm = comm_str(&t.comm);
                write!(
                    out,
                    "{:>8} {:<16} {:>10} {:>10} {:>10} {:>10} {:>10} ",
                    t.pid, comm, t.ins, t.outs, t.preempted, t.voluntary, t.migrations
                )?;
                match t.last_cpu {
                    Some(cpu) => writeln!(out, "{cpu:>4}")?,
                    None => writeln!(out, "{:>4}", "-")?,
                }
            }
            if let n @ 1.. = self.0.full() {
                writeln!(
                    out,
                    "# {n} tasks not attached: attach_capacity ({}) tasks were attached",
                    self.0.capacity()
                )?;
            }
            match self.0.pending() {
                0 => Ok(()),
                n => writeln!(
                    out,
                    "# {n} attach/detach works wait for their threads to run (at most {MAX_PENDING})"
                ),
            }
        })();
        r.map_err(|_| ENOMEM)
    }
}

/// `received`: the IPIs each CPU received (columns are the receiving CPU), counted where their handler
/// starts (x86 `irq_vectors:*_entry`, arm64 `ipi:ipi_entry`), as /proc/interrupts counts them (x86 RES and
/// CAL, arm64 IPI0 and IPI1; arm64 has one IPI for both call-function kinds, so no CFS/CFM rows there);
/// and `sent - received`, the
/// sends that found one of their kind already pending on the target (coalesced into it).
pub(crate) struct Received {
    pub(crate) engine: Arc<Engine>,
    pub(crate) probes: Arc<Probes>,
}

#[vtable]
impl Node for Received {
    fn show(&self, out: &mut Text) -> Result {
        if Kind::ALL.iter().any(|&k| !self.probes.has_received(k)) {
            return writeln!(
                out,
                "# not counted: this kernel fires neither irq_vectors:*_entry (x86) nor ipi:ipi_entry (arm64)"
            )
            .map_err(|_| ENOMEM);
        }
        render(out, &self.engine, |out, cols, s| {
            let got = |kind: Kind| move |c| s.local(c, kind.received());
            header(out, cols, 4)?;
            row(
                out,
                cols,
                4,
                &"RES",
                got(Kind::Res),
                "Rescheduling IPIs received",
            )?;
            let cal = |c| got(Kind::Cfs)(c) + got(Kind::Cfm)(c);
            row(
                out,
                cols,
                4,
                &"CAL",
                cal,
                "Function call IPIs received (single + many)",
            )?;
            // arm64 sends both call-function kinds as one IPI (IPI1): CAL only.
            if self.probes.received_calls_apart() {
                row(out, cols, 4, &"CFS", got(Kind::Cfs), "... of which single")?;
                row(out, cols, 4, &"CFM", got(Kind::Cfm), "... of which many")?;
            }
            row(
                out,
                cols,
                4,
                &"RCO",
                |c| {
                    s.sent_to(PerTarget::Res, c)
                        .saturating_sub(got(Kind::Res)(c))
                },
                "Rescheduling IPIs coalesced (sent - received)",
            )?;
            row(
                out,
                cols,
                4,
                &"CCO",
                |c| {
                    (s.sent_to(PerTarget::Cfs, c) + s.sent_to(PerTarget::Cfm, c))
                        .saturating_sub(cal(c))
                },
                "Function call IPIs coalesced (sent - received)",
            )
        })
    }
}

/// Writes `@name: <summary>` and the buckets of `h`, then a blank line.
fn histogram(out: &mut impl Write, name: &str, h: &Histogram) -> fmt::Result {
    write!(out, "@{name}: ")?;
    h.write_summary(out)?;
    h.write_buckets(out)?;
    writeln!(out)
}

/// Writes the rows `<P>N:` (count), `<P>50:`, `<P>99:` (upper bounds of their buckets) and `<P>MX:`
/// (largest) of histogram `hist` per CPU of `cols`.
fn histogram_rows(
    out: &mut impl Write,
    cols: &[usize],
    s: &Reading<'_>,
    hist: Hist,
    prefix: &str,
    what: &str,
) -> fmt::Result {
    struct Name<'a>(&'a str, &'a str);
    impl fmt::Display for Name<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}{}", self.0, self.1)
        }
    }
    let h: KVec<Histogram> = {
        let mut v = KVec::new();
        for &c in cols {
            if v.push(s.hist(c, hist), GFP_KERNEL).is_err() {
                return Err(fmt::Error);
            }
        }
        v
    };
    let at = |c: usize| cols.iter().position(|&x| x == c).and_then(|i| h.get(i));
    row(
        out,
        cols,
        5,
        &Name(prefix, "N"),
        |c| at(c).map_or(0, |h| h.count()),
        what,
    )?;
    row(
        out,
        cols,
        5,
        &Name(prefix, "50"),
        |c| at(c).map_or(0, |h| h.percentile_below(50)),
        "... p50 below (ns)",
    )?;
    row(
        out,
        cols,
        5,
        &Name(prefix, "99"),
        |c| at(c).map_or(0, |h| h.percentile_below(99)),
        "... p99 below (ns)",
    )?;
    row(
        out,
        cols,
        5,
        &Name(prefix, "MX"),
        |c| at(c).map_or(0, |h| h.max()),
        "... largest (ns)",
    )
}

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
    fn show(&self, out: &mut Text) -> Result {
        render(out, &self.0, |out, cols, s| {
            writeln!(
                out,
                "# From the first reschedule request for a CPU to that CPU's next context switch (ns)"
            )?;
            latency_off(out, &self.0)?;
            histogram(out, "local", &s.hist_all(Hist::ReschedLocal))?;
            histogram(out, "remote", &s.hist_all(Hist::ReschedRemote))?;
            header(out, cols, 5)?;
            histogram_rows(
                out,
                cols,
                s,
                Hist::ReschedLocal,
                "L",
                "Local requests measured",
            )?;
            histogram_rows(
                out,
                cols,
                s,
                Hist::ReschedRemote,
                "R",
                "Remote requests measured",
            )?;
            let ended = [
                (
                    "PRE",
                    Local::ReschedPreempted,
                    "Ended by preempting a task (it stays runnable)",
                ),
                (
                    "BLK",
                    Local::ReschedBlocked,
                    "Ended by the task blocking (voluntary switch)",
                ),
                (
                    "IDL",
                    Local::ReschedIdle,
                    "Ended by the idle task leaving the CPU",
                ),
            ];
            for (label, local, desc) in ended {
                row(out, cols, 5, &label, |c| s.local(c, local), desc)?;
            }
            Ok(())
        })
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
    fn show(&self, out: &mut Text) -> Result {
        if Kind::ALL.iter().any(|&k| !self.probes.has_received(k)) {
            return writeln!(
                out,
                "# not measured: this kernel fires neither irq_vectors:*_entry (x86) nor ipi:ipi_entry (arm64)"
            )
            .map_err(|_| ENOMEM);
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
    fn show(&self, out: &mut Text) -> Result {
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
    fn show(&self, out: &mut Text) -> Result {
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

/// `preempted_by`: for each attached task, the tasks that took its CPU when it was preempted, most
/// frequent first (the idle task never counts).
pub(crate) struct PreemptedByList(pub(crate) Arc<Tasks>);

#[vtable]
impl Node for PreemptedByList {
    fn show(&self, out: &mut Text) -> Result {
        let rows = self.0.preempted_by()?;
        let r = (|| -> fmt::Result {
            writeln!(
                out,
                "{:>8} {:<16} {:>8} {:<16} {:>10}",
                "PID", "COMM", "BY_PID", "BY_COMM", "COUNT"
            )?;
            for t in rows.iter() {
                let comm = comm_str(&t.comm);
                for (pid, by, count) in t.by.iter() {
                    let by = comm_str(by);
                    writeln!(
                        out,
                        "{:>8} {:<16} {pid:>8} {by:<16} {count:>10}",
                        t.pid, comm
                    )?;
                }
                if t.others != 0 {
                    writeln!(
                        out,
                        "{:>8} {:<16} {:>8} {:<16} {:>10}",
                        t.pid, comm, "-", "(others)", t.others
                    )?;
                }
            }
            Ok(())
        })();
        r.map_err(|_| ENOMEM)
    }
}

/// `latency_enable`: `1` (the default) while intervals are measured, `0` while not; writing `1` or `0`
/// turns it on or off (the histograms keep what they hold); anything else is `-EINVAL`.
pub(crate) struct LatencyEnable(pub(crate) Arc<Engine>);

#[vtable]
impl Node for LatencyEnable {
    fn show(&self, out: &mut Text) -> Result {
        writeln!(out, "{}", u8::from(self.0.latency().enabled())).map_err(|_| ENOMEM)
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

/// `latency/resched` and `latency/ipi`; the files go before their directory.
struct LatencyFiles {
    _resched: File<ReschedLatency>,
    _ipi: File<IpiLatency>,
    _wakeup: File<WakeupLatency>,
    _slices: File<SliceLengths>,
    _dir: Dir,
}

impl LatencyFiles {
    fn new(parent: &Dir, engine: &Arc<Engine>, probes: &Arc<Probes>) -> Result<Self> {
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

/// `attach`: the writing task writes `attach` to attach itself (and the tasks it creates from then
/// on), `detach` to detach itself; anything else is `-EINVAL`.
pub(crate) struct Attach(pub(crate) Arc<Tasks>);

#[vtable]
impl Node for Attach {
    fn store(&self, input: &[u8], writer: &Current<'_>) -> Result {
        let by_pid = |rest: &[u8], attach: bool| -> Result {
            let pid = parse_count(rest)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or(EINVAL)?;
            match self.0.queue_pid(pid, attach) {
                Err(e) if e == EPERM => {
                    warn_ratelimited!(
                        "attach: {pid} is a kernel thread: only user tasks can be attached\n"
                    );
                    Err(e)
                }
                r => r.map(|_| ()),
            }
        };
        let r = match line(input) {
            b"attach" => self.0.attach_current(writer),
            b"detach" => self.0.detach_current(writer),
            l => match (l.strip_prefix(b"attach "), l.strip_prefix(b"detach ")) {
                (Some(pid), _) => by_pid(pid, true),
                (_, Some(pid)) => by_pid(pid, false),
                _ => Err(EINVAL),
            },
        };
        if r == Err(EINVAL) {
            warn_ratelimited!(
                "attach: expected \"attach\", \"detach\", \"attach PID\" or \"detach PID\", got {} bytes\n",
                input.len()
            );
        }
        r
    }
}

/// `stacks/<tag>` for each tag of [`Tag::ALL`]; the files go before their directory.
struct StackFiles {
    _files: KVec<File<StackFile>>,
    _dir: Dir,
}

impl StackFiles {
    fn new(parent: &Dir, engine: &Arc<Engine>) -> Result<Self> {
        let dir = parent.subdir(c_str!("stacks"))?;
        let mut files = KVec::with_capacity(Tag::ALL.len(), GFP_KERNEL)?;
        for tag in Tag::ALL {
            let node = StackFile {
                engine: engine.clone(),
                tag,
            };
            files.push(File::new(&dir, tag.c_name(), node)?, GFP_KERNEL)?;
        }
        Ok(Self {
            _files: files,
            _dir: dir,
        })
    }
}

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
    _attach_capacity: File<AttachCapacity>,
    _stacks_enable: File<StacksEnable>,
    _stacks_capacity: File<StacksCapacity>,
    _stacks: StackFiles,
    _received: File<Received>,
    _latency_enable: File<LatencyEnable>,
    _latency: LatencyFiles,
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
            _attach: file!("attach", Attach(tasks.clone())),
            _dir: dir,
        })
    }
}
