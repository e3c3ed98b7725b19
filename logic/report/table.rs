// SPDX-License-Identifier: GPL-2.0

//! How the files lay out their text: CPU lists, tables in the /proc/interrupts layout (a header of
//! `CPU<n>` columns, one row per counter), histograms; short labels formatted in place
//! ([`FixedText`]); and the small parsers of what the files accept.

use crate::logic::counters::{Hist, Reading};
use crate::logic::engine::Engine;
use crate::logic::histogram::Histogram;
use crate::sys::cpu;
use crate::sys::debugfs::{Shown, Text};
use core::fmt::{self, Write};
use kernel::prelude::*;

/// Width of one CPU column, as in /proc/interrupts (`%10u` and a space).
pub(super) const COLUMN: usize = 11;

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

/// Up to `N` bytes of text formatted in place (no allocation): a short label that a formatter pads as
/// a whole. Writing more than fits is an error.
pub(crate) struct FixedText<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> FixedText<N> {
    /// Formats `args` in place and pads the result as one string with `f`'s width and alignment.
    pub(crate) fn padded(f: &mut fmt::Formatter<'_>, args: fmt::Arguments<'_>) -> fmt::Result {
        let mut text = Self {
            bytes: [0; N],
            len: 0,
        };
        text.write_fmt(args)?;
        f.pad(text.as_str())
    }

    /// The text written so far.
    fn as_str(&self) -> &str {
        // Only whole `str`s are copied in, so the bytes are UTF-8.
        self.bytes
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("?")
    }
}

impl<const N: usize> Write for FixedText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
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

/// `input` without one trailing newline.
pub(super) fn line(input: &[u8]) -> &[u8] {
    input.strip_suffix(b"\n").unwrap_or(input)
}

/// A decimal number without sign, spaces or leading zeros.
pub(super) fn parse_count(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 9 || digits.first() == Some(&b'0') {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

/// A task's NUL-padded name as text.
pub(super) fn comm_str(comm: &[u8]) -> &str {
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    core::str::from_utf8(&comm[..len]).unwrap_or("?")
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
