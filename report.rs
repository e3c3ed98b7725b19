// SPDX-License-Identifier: GPL-2.0

//! Formatting of the debugfs tables: pure logic over numbers, no C.

use core::fmt::{self, Write};

/// Writes `cpus` (increasing) as a kernel CPU list, e.g. `0-3,6`, and a newline.
pub(crate) fn cpu_list(out: &mut impl Write, cpus: impl Iterator<Item = usize>) -> fmt::Result {
    let mut run: Option<(usize, usize)> = None;
    let mut first = true;
    let mut flush = |out: &mut dyn Write, (lo, hi): (usize, usize)| -> fmt::Result {
        let sep = if first { "" } else { "," };
        first = false;
        if lo == hi {
            write!(out, "{sep}{lo}")
        } else {
            write!(out, "{sep}{lo}-{hi}")
        }
    };
    for cpu in cpus {
        run = match run {
            Some((lo, hi)) if cpu == hi + 1 => Some((lo, cpu)),
            Some(done) => {
                flush(out, done)?;
                Some((cpu, cpu))
            }
            None => Some((cpu, cpu)),
        };
    }
    if let Some(done) = run {
        flush(out, done)?;
    }
    writeln!(out)
}
