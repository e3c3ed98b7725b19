// SPDX-License-Identifier: GPL-2.0

//! Who sends what to whom: `ipi` (per sending CPU), `targets` (per target CPU), `matrix` and `pairs`
//! (sender x target), `callbacks` (the functions queued) and `received` (per receiving CPU).

use super::table::{
    columns, header, insert_by_count, render, row, rows_of, table, CpuName, Row, COLUMN,
};
use crate::logic::callbacks::MAX_FUNCS;
use crate::logic::counters::{Local, PerTarget, Reading};
use crate::logic::engine::Engine;
use crate::logic::latency::Kind;
use crate::logic::probes::Probes;
use crate::sys::debugfs::{Node, Shown, Text};
use crate::sys::stacktrace::Symbolizer;
use core::fmt::{self, Write};
use kernel::prelude::*;
use kernel::sync::Arc;

/// `ipi`: what each CPU sent (columns are the sending CPU).
pub(crate) struct Ipi(pub(crate) Arc<Engine>);

#[vtable]
impl Node for Ipi {
    fn show(&self, out: &mut Text) -> Shown {
        render(out, &self.0, |out, cols, s| {
            let sent = |array| move |c| s.sent_by(array, c);
            #[rustfmt::skip]
            let rows = [
                Row("RES", &sent(PerTarget::Res), "Rescheduling IPIs sent"),
                Row("CFS", &sent(PerTarget::Cfs), "Function call (single) IPIs sent"),
                Row("CFM", &|c| s.local(c, Local::CfmCalls), "Function call (many) sends"),
                Row("CFT", &sent(PerTarget::Cfm), "Function call (many) target CPUs"),
                Row("RSC", &|c| s.resched_by(c), "reschedule requests made"),
                Row("RSL", &|c| s.local(c, Local::RscLazy), "... of which lazy (no IPI; at the return to user space or the tick)"),
                Row("RSP", &|c| s.local(c, Local::RscPromoted), "... of which immediate while a lazy one was pending (promoted)"),
                Row("WKL", &sent(PerTarget::Wkl), "Wakeups queued on another CPU's wakelist"),
                Row("NIP", &sent(PerTarget::NoIpi), "IPIs not needed: the target was polling idle"),
            ];
            table(out, cols, 4, &rows)
        })
    }
}

/// `targets`: what each CPU was sent (columns are the target CPU), comparable with /proc/interrupts.
pub(crate) struct Targets(pub(crate) Arc<Engine>);

#[vtable]
impl Node for Targets {
    fn show(&self, out: &mut Text) -> Shown {
        render(out, &self.0, |out, cols, s| {
            let to = |array| move |c| s.sent_to(array, c);
            let cal = |c| s.sent_to(PerTarget::Cfs, c) + s.sent_to(PerTarget::Cfm, c);
            #[rustfmt::skip]
            let rows = [
                Row("RES", &to(PerTarget::Res), "Rescheduling IPIs sent to this CPU"),
                Row("CAL", &cal, "Function call IPIs sent to this CPU (single + many)"),
                Row("RSC", &to(PerTarget::RscRemote), "reschedule requests from other CPUs"),
                Row("WKL", &to(PerTarget::Wkl), "Wakeups queued on this CPU's wakelist"),
                Row("NIP", &to(PerTarget::NoIpi), "IPIs this CPU did not need: it was polling idle"),
            ];
            table(out, cols, 4, &rows)
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
    fn show(&self, out: &mut Text) -> Shown {
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
    fn show(&self, out: &mut Text) -> Shown {
        self.0.read(|window| {
            let (nonzero, top) = Self::top(&window.counters.reading()?)?;
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
    fn show(&self, out: &mut Text) -> Shown {
        let cols = columns()?;
        if !self.probes.has_callbacks() {
            return Ok(writeln!(
                out,
                "# no csd:csd_queue_cpu tracepoint in this kernel"
            )?);
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
                let dropped = |c| r.queued(c, None);
                row(out, &cols, 5, &"CSD", dropped, "(dropped: no slot left)")?;
            }
            Ok(())
        })
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
    fn show(&self, out: &mut Text) -> Shown {
        if Kind::ALL.iter().any(|&k| !self.probes.has_received(k)) {
            return Ok(writeln!(
                out,
                "# not counted: this kernel fires neither irq_vectors:*_entry (x86) nor ipi:ipi_entry (arm64)"
            )?);
        }
        render(out, &self.engine, |out, cols, s| {
            let got = |kind: Kind| move |c| s.local(c, kind.received());
            let cal = |c| got(Kind::Cfs)(c) + got(Kind::Cfm)(c);
            let res_coalesced = |c| {
                s.sent_to(PerTarget::Res, c)
                    .saturating_sub(got(Kind::Res)(c))
            };
            let cal_coalesced = |c| {
                (s.sent_to(PerTarget::Cfs, c) + s.sent_to(PerTarget::Cfm, c)).saturating_sub(cal(c))
            };
            #[rustfmt::skip]
            let rows = [
                Row("RES", &got(Kind::Res), "Rescheduling IPIs received"),
                Row("CAL", &cal, "Function call IPIs received (single + many)"),
                Row("CFS", &got(Kind::Cfs), "... of which single"),
                Row("CFM", &got(Kind::Cfm), "... of which many"),
                Row("RCO", &res_coalesced, "Rescheduling IPIs coalesced (sent - received)"),
                Row("CCO", &cal_coalesced, "Function call IPIs coalesced (sent - received)"),
            ];
            let [res, cal, single, many, coalesced @ ..] = &rows;
            table(out, cols, 4, [res, cal])?;
            // arm64 sends both call-function kinds as one IPI (IPI1): CAL only, no CFS and CFM rows.
            if self.probes.received_calls_apart() {
                rows_of(out, cols, 4, [single, many])?;
            }
            rows_of(out, cols, 4, coalesced)
        })
    }
}
