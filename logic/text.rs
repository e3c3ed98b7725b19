// SPDX-License-Identifier: GPL-2.0

//! Text without the kernel: CPU lists, short labels formatted in place, and the parsers of what the
//! files accept. Only `core`, so that the unit tests (`logic/unit/`) run it as it is on the host.

use core::fmt::{self, Write};

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

/// `input` without one trailing newline.
pub(crate) fn line(input: &[u8]) -> &[u8] {
    input.strip_suffix(b"\n").unwrap_or(input)
}

/// A decimal number without sign, spaces or leading zeros.
pub(crate) fn parse_count(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 9 || digits.first() == Some(&b'0') {
        return None;
    }
    digits.iter().try_fold(0usize, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

/// A task's NUL-padded name as text.
pub(crate) fn comm_str(comm: &[u8]) -> &str {
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    core::str::from_utf8(&comm[..len]).unwrap_or("?")
}
