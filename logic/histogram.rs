// SPDX-License-Identifier: GPL-2.0

//! Log2 histograms of nanoseconds, as bpftrace's `hist()` keeps and prints them: bucket 0 holds 0,
//! bucket 1 holds 1, bucket `k >= 2` holds `[2^(k-1), 2^k)`.
//!
//! A histogram is [`WORDS`] per-cpu counters (see [`crate::logic::counters`]): the buckets, the sum,
//! the largest value and the complement of the smallest (so that both extremes only ever rise and a
//! zeroed histogram is empty).

use crate::logic::text::FixedText;
use core::fmt::{self, Write};

/// Buckets per histogram: every `u64` fits (the last bucket also takes what lies beyond it).
pub(crate) const BUCKETS: usize = 64;
/// Word of the sum of the values.
pub(crate) const SUM: usize = BUCKETS;
/// Word of the largest value.
pub(crate) const MAX: usize = BUCKETS + 1;
/// Word of the complement (`!v`) of the smallest value.
pub(crate) const NOT_MIN: usize = BUCKETS + 2;
/// Counters per histogram.
pub(crate) const WORDS: usize = BUCKETS + 3;

/// Width of the bar of the fullest bucket, as bpftrace.
const BAR: usize = 52;

/// The bucket of `ns`.
#[inline]
pub(crate) fn bucket(ns: u64) -> usize {
    (64 - ns.leading_zeros() as usize).min(BUCKETS - 1)
}

/// The smallest value of bucket `k`.
fn low(k: usize) -> u64 {
    if k == 0 {
        0
    } else {
        1u64 << (k - 1)
    }
}

/// A power of two (or 0) as bpftrace writes bucket bounds: `512`, `1K`, `64M`.
struct Bound(u64);

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = self.0;
        for suffix in ["", "K", "M", "G", "T", "P"] {
            if v < 1024 || v % 1024 != 0 {
                return write!(f, "{v}{suffix}");
            }
            v /= 1024;
        }
        write!(f, "{v}E")
    }
}

/// A bucket's range as bpftrace writes it: `[0]`, `[1]`, `[2, 4)`, `[1K, 2K)`; the histogram's last
/// bucket (the second field) is open: `[1G, ...)`.
struct Range(usize, usize);

impl fmt::Display for Range {
    /// Honours the formatter's width and alignment (the bucket column is padded).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            k @ (0 | 1) => FixedText::<32>::padded(f, format_args!("[{k}]")),
            k if k == self.1 => {
                FixedText::<32>::padded(f, format_args!("[{}, ...)", Bound(low(k))))
            }
            k => FixedText::<32>::padded(
                f,
                format_args!("[{}, {})", Bound(low(k)), Bound(low(k + 1))),
            ),
        }
    }
}

/// A histogram read from the counters of one CPU, or merged over several.
#[derive(Clone)]
pub(crate) struct Histogram {
    buckets: [u64; BUCKETS],
    sum: u64,
    max: u64,
    /// `u64::MAX` while empty.
    min: u64,
    /// The last bucket kept, which also takes every larger value.
    last: usize,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: [0; BUCKETS],
            sum: 0,
            max: 0,
            min: u64::MAX,
            last: BUCKETS - 1,
        }
    }
}

impl Histogram {
    /// The histogram whose counter `word` reads `get(word)`.
    pub(crate) fn from_words(get: impl Fn(usize) -> u64) -> Self {
        Self::from_words_of(BUCKETS, get)
    }

    /// The histogram of `buckets` buckets (at most [`BUCKETS`], the last one taking every larger
    /// value), whose counter `word` reads `get(word)`: the buckets, then the sum, the largest value and
    /// the complement of the smallest.
    pub(crate) fn from_words_of(buckets: usize, get: impl Fn(usize) -> u64) -> Self {
        let n = buckets.clamp(2, BUCKETS);
        let mut h = Self {
            last: n - 1,
            ..Self::default()
        };
        for (k, b) in h.buckets.iter_mut().enumerate().take(n) {
            *b = get(k);
        }
        h.sum = get(n);
        h.max = get(n + 1);
        h.min = !get(n + 2);
        h
    }

    /// The sum of the values.
    pub(crate) fn sum(&self) -> u64 {
        self.sum
    }

    /// Adds `other`'s values to these.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (b, o) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *b += o;
        }
        self.sum = self.sum.wrapping_add(other.sum);
        self.max = self.max.max(other.max);
        self.min = self.min.min(other.min);
        self.last = self.last.max(other.last);
    }

    /// Values recorded.
    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The bucket holding the `pct`-th percentile (`None` when empty).
    fn percentile_bucket(&self, pct: u64) -> Option<usize> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        // The smallest bucket whose running total reaches pct% of the values (at least one).
        let want = (count * pct).div_ceil(100).max(1);
        let mut seen = 0;
        for (k, &b) in self.buckets.iter().enumerate() {
            seen += b;
            if seen >= want {
                return Some(k);
            }
        }
        Some(self.last)
    }

    /// The upper bound of the bucket holding the `pct`-th percentile: the percentile is below it (0
    /// when empty).
    pub(crate) fn percentile_below(&self, pct: u64) -> u64 {
        match self.percentile_bucket(pct) {
            None => 0,
            Some(k) if k >= self.last => u64::MAX,
            Some(k) => low(k + 1),
        }
    }

    /// The largest value (0 when empty).
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// One line: `count N, sum N ns, min N ns, max N ns, mean N ns, p50 in [a, b), p99 in [c, d)`.
    pub(crate) fn write_summary(&self, out: &mut impl Write) -> fmt::Result {
        let count = self.count();
        if count == 0 {
            return writeln!(out, "count 0");
        }
        write!(
            out,
            "count {count}, sum {} ns, min {} ns, max {} ns, mean {} ns",
            self.sum,
            self.min,
            self.max,
            self.sum / count
        )?;
        for pct in [50, 99] {
            if let Some(k) = self.percentile_bucket(pct) {
                write!(out, ", p{pct} in {}", Range(k, self.last))?;
            }
        }
        writeln!(out)
    }

    /// The buckets from the first to the last nonempty one, as bpftrace's `hist()`: the range, the
    /// count and a bar scaled to the fullest bucket.
    pub(crate) fn write_buckets(&self, out: &mut impl Write) -> fmt::Result {
        let Some(first) = self.buckets.iter().position(|&b| b != 0) else {
            return Ok(());
        };
        let last = self.buckets.iter().rposition(|&b| b != 0).unwrap_or(first);
        let top = self.buckets.iter().copied().max().unwrap_or(1).max(1);
        for k in first..=last {
            let b = self.buckets[k];
            let bar = (b.saturating_mul(BAR as u64) / top).min(BAR as u64) as usize;
            write!(out, "{:<16}{b:>8} |", Range(k, self.last))?;
            for _ in 0..bar {
                out.write_char('@')?;
            }
            writeln!(out, "{:width$}|", "", width = BAR - bar)?;
        }
        Ok(())
    }
}
