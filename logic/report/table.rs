// SPDX-License-Identifier: GPL-2.0

//! How the files lay out their text: tables in the /proc/interrupts layout (a header of `CPU<n>`
//! columns, one row per counter) and histograms (the pure text helpers are in [`crate::logic::text`]).

use crate::logic::counters::{Hist, Reading};
use crate::logic::engine::Engine;
use crate::logic::histogram::Histogram;
use crate::logic::text::FixedText;
use crate::sys::cpu;
use crate::sys::debugfs::{Shown, Text};
use core::fmt::{self, Write};
use kernel::prelude::*;

/// Width of one CPU column, as in /proc/interrupts (`%10u` and a space).
pub(super) const COLUMN: usize = 11;

/// Writes a table header: `label_width` blanks, then a right-aligned `CPU<n>` for each CPU of `cols`.
pub(super) fn header(out: &mut impl Write, cols: &[usize], label_width: usize) -> fmt::Result {
    write!(out, "{:label_width$}", "")?;
    for &cpu in cols {
        write!(out, "{:>COLUMN$}", CpuName(cpu))?;
    }
    writeln!(out)
}

/// One row of a table: its label, its value per CPU, and what it counts.
pub(super) struct Row<'a>(
    pub(super) &'a str,
    pub(super) &'a dyn Fn(usize) -> u64,
    pub(super) &'a str,
);

/// Writes a table: its header, then each of `rows`, labels padded to `label_width`.
pub(super) fn table<'a>(
    out: &mut impl Write,
    cols: &[usize],
    label_width: usize,
    rows: impl IntoIterator<Item = &'a Row<'a>>,
) -> fmt::Result {
    header(out, cols, label_width)?;
    rows_of(out, cols, label_width, rows)
}

/// Writes each of `rows` (no header), labels padded to `label_width`.
pub(super) fn rows_of<'a>(
    out: &mut impl Write,
    cols: &[usize],
    label_width: usize,
    rows: impl IntoIterator<Item = &'a Row<'a>>,
) -> fmt::Result {
    for Row(label, value, desc) in rows {
        row(out, cols, label_width, label, value, desc)?;
    }
    Ok(())
}

/// Writes a table row: `<label>:` padded to `label_width`, `value` of each CPU of `cols`, and `desc`.
pub(super) fn row(
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
pub(super) struct CpuName(pub(super) usize);

impl fmt::Display for CpuName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FixedText::<16>::padded(f, format_args!("CPU{}", self.0))
    }
}

/// `<label>:`, padded as a whole.
struct Label<'a>(&'a dyn fmt::Display);

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        FixedText::<16>::padded(f, format_args!("{}:", self.0))
    }
}

/// The online CPUs: the columns of every table.
pub(super) fn columns() -> Result<KVec<usize>> {
    let mut cols = KVec::new();
    for cpu in cpu::online() {
        cols.push(cpu, GFP_KERNEL)?;
    }
    Ok(cols)
}

/// Renders with `f` from the active window, read in place with no reset meanwhile, the online CPUs as
/// columns.
pub(super) fn render(
    out: &mut Text,
    engine: &Engine,
    f: impl FnOnce(&mut Text, &[usize], &Reading<'_>) -> fmt::Result,
) -> Shown {
    let cols = columns()?;
    engine.read(|window| {
        let reading = window.counters.reading()?;
        Ok(f(out, &cols, &reading)?)
    })
}

/// Inserts `item` counted `count` into `list`, kept most counted first (ties in insertion order) and
/// at most `max` long (the least counted gives way). An insertion, not a slice sort: see `stacks.rs`.
pub(super) fn insert_by_count<T>(
    list: &mut KVec<(u64, T)>,
    count: u64,
    item: T,
    max: usize,
) -> Result {
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

/// Writes `@name: <summary>` and the buckets of `h`, then a blank line.
pub(super) fn histogram(out: &mut impl Write, name: &str, h: &Histogram) -> fmt::Result {
    write!(out, "@{name}: ")?;
    h.write_summary(out)?;
    h.write_buckets(out)?;
    writeln!(out)
}

/// Writes the rows `<P>N:` (count), `<P>50:`, `<P>99:` (upper bounds of their buckets) and `<P>MX:`
/// (largest) of histogram `hist` per CPU of `cols`.
pub(super) fn histogram_rows(
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
