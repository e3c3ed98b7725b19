// SPDX-License-Identifier: GPL-2.0

//! `logic/histogram.rs`: the log2 buckets of bpftrace's `hist()`, percentiles and the printed form.

use crate::logic::histogram::{bucket, Histogram, BUCKETS, MAX, NOT_MIN, SUM, WORDS};

/// The histogram of `values`, built as the per-cpu counters hold it.
fn of(values: &[u64]) -> Histogram {
    let mut words = [0u64; WORDS];
    words[NOT_MIN] = !u64::MAX;
    for &v in values {
        words[bucket(v)] += 1;
        words[SUM] = words[SUM].wrapping_add(v);
        words[MAX] = words[MAX].max(v);
        words[NOT_MIN] = words[NOT_MIN].max(!v);
    }
    Histogram::from_words(|w| words[w])
}

#[test]
fn buckets_are_bpftrace_log2() {
    // [0], [1], then [2^(k-1), 2^k).
    assert_eq!(bucket(0), 0);
    assert_eq!(bucket(1), 1);
    assert_eq!(bucket(2), 2);
    assert_eq!(bucket(3), 2);
    assert_eq!(bucket(4), 3);
    assert_eq!(bucket(1023), 10);
    assert_eq!(bucket(1024), 11);
    assert_eq!(bucket(1 << 62), 63);
    // The last bucket takes what lies beyond it.
    assert_eq!(bucket(1 << 63), BUCKETS - 1);
    assert_eq!(bucket(u64::MAX), BUCKETS - 1);
}

#[test]
fn percentiles_are_bucket_upper_bounds() {
    let empty = of(&[]);
    assert_eq!(empty.count(), 0);
    assert_eq!(empty.percentile_below(50), 0);
    assert_eq!(empty.max(), 0);

    // 99 values in [1K, 2K) and one in [1M, 2M): p50 and p99 below 2K, the largest 1.5M.
    let mut v = vec![1500u64; 99];
    v.push(1_500_000);
    let h = of(&v);
    assert_eq!(h.count(), 100);
    assert_eq!(h.percentile_below(50), 2048);
    assert_eq!(h.percentile_below(99), 2048);
    assert_eq!(h.percentile_below(100), 1 << 21);
    assert_eq!(h.max(), 1_500_000);
    // One value: every percentile is its bucket.
    assert_eq!(of(&[5]).percentile_below(1), 8);
    assert_eq!(of(&[u64::MAX]).percentile_below(50), u64::MAX);
}

#[test]
fn merging_adds_counts_and_keeps_extremes() {
    let mut a = of(&[10, 20]);
    a.merge(&of(&[3, 5000]));
    assert_eq!(a.count(), 4);
    assert_eq!(a.max(), 5000);
    let mut s = String::new();
    a.write_summary(&mut s).unwrap();
    assert!(
        s.starts_with("count 4, sum 5033 ns, min 3 ns, max 5000 ns, mean 1258 ns"),
        "{s}"
    );
    // An empty histogram merged changes nothing.
    let mut b = of(&[7]);
    b.merge(&of(&[]));
    let mut t = String::new();
    b.write_summary(&mut t).unwrap();
    assert_eq!(
        t,
        "count 1, sum 7 ns, min 7 ns, max 7 ns, mean 7 ns, p50 in [4, 8), p99 in [4, 8)\n"
    );
}

#[test]
fn printed_as_bpftrace_hist() {
    let h = of(&[0, 1, 2, 3, 1024, 1500, 3 << 20]);
    let mut s = String::new();
    h.write_summary(&mut s).unwrap();
    assert_eq!(
        s,
        "count 7, sum 3148258 ns, min 0 ns, max 3145728 ns, mean 449751 ns, p50 in [2, 4), p99 in [2M, 4M)\n"
    );
    let mut b = String::new();
    h.write_buckets(&mut b).unwrap();
    let lines: Vec<&str> = b.lines().collect();
    // From the first to the last nonempty bucket; the fullest has the 52-character bar.
    assert_eq!(
        lines.first().unwrap(),
        &format!("{:<16}{:>8} |{:<52}|", "[0]", 1, "@".repeat(26))
    );
    assert_eq!(
        lines[2],
        format!("{:<16}{:>8} |{}|", "[2, 4)", 2, "@".repeat(52))
    );
    assert!(
        lines.contains(&format!("{:<16}{:>8} |{:<52}|", "[1K, 2K)", 2, "@".repeat(52)).as_str())
    );
    assert!(lines.contains(&format!("{:<16}{:>8} |{:<52}|", "[512, 1K)", 0, "").as_str()));
    assert_eq!(
        lines.last().unwrap(),
        &format!("{:<16}{:>8} |{:<52}|", "[2M, 4M)", 1, "@".repeat(26))
    );
    // Buckets 0 to 22 ([2M, 4M)).
    assert_eq!(lines.len(), 23, "{b}");
    // Empty: no bucket lines.
    let mut e = String::new();
    of(&[]).write_buckets(&mut e).unwrap();
    assert_eq!(e, "");
}
