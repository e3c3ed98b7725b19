// SPDX-License-Identifier: GPL-2.0
//! Parsers for the module's debugfs files. Their formats are the contract of docs/debugfs.md, which
//! the guest tests hold the module to:
//!
//! - tables (`ipi`, `targets`, `received`, `sched`, and the per-CPU part of the `latency/*` files): a
//!   header line of `CPU<n>` columns, then rows `LABEL:` followed by one number per column and an
//!   optional description;
//! - histograms (`latency/*`): a line `@name: count N, sum N ns, ...`, then bpftrace-style bucket lines
//!   `[lo, hi)  count |@@@|`;
//! - `tasks`, `pairs`, `preempted_by`: a header line, then whitespace-separated columns.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// A /proc/interrupts-style table: the CPU columns and, per row label, one value per column.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Table {
    pub cpus: Vec<u32>,
    pub rows: BTreeMap<String, Vec<u64>>,
}

impl Table {
    /// Value of `row` for CPU `cpu` (0 when absent).
    pub fn get(&self, row: &str, cpu: u32) -> u64 {
        let Some(i) = self.cpus.iter().position(|&c| c == cpu) else {
            return 0;
        };
        self.rows
            .get(row)
            .and_then(|v| v.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Sum of `row` over all CPUs.
    pub fn total(&self, row: &str) -> u64 {
        self.rows.get(row).map_or(0, |v| v.iter().sum())
    }
}

fn is_header(line: &str) -> bool {
    let mut words = line.split_whitespace().peekable();
    words.peek().is_some()
        && words.all(|w| {
            w.strip_prefix("CPU")
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
}

/// The preemption model `latency/resched` names (`# preemption model: lazy ...`), if it does.
pub fn preemption_model(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("# preemption model: "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

/// Parses the first table of `text` (the part from its `CPU<n>` header line on).
pub fn table(text: &str) -> Result<Table> {
    let mut lines = text.lines().skip_while(|l| !is_header(l));
    let header = lines.next().context("no CPU header line")?;
    let cpus: Vec<u32> = header
        .split_whitespace()
        .map(|w| w[3..].parse().context("bad CPU column"))
        .collect::<Result<_>>()?;
    let mut rows = BTreeMap::new();
    for line in lines {
        let Some((label, rest)) = line.split_once(':') else {
            continue;
        };
        let label = label.trim();
        if label.is_empty() || label.contains(char::is_whitespace) {
            continue;
        }
        let values: Vec<u64> = rest
            .split_whitespace()
            .take(cpus.len())
            .map_while(|w| w.parse().ok())
            .collect();
        if values.len() == cpus.len() {
            rows.insert(label.to_string(), values);
        }
    }
    Ok(Table { cpus, rows })
}

/// A log2 histogram as the module prints it: buckets by their lower bound, and the summary numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Histogram {
    pub count: u64,
    pub sum_ns: u64,
    /// Lower bound of each nonempty bucket (ns) and its count; bucket `[lo, 2*lo)`, `[0]` and `[1]`.
    pub buckets: BTreeMap<u64, u64>,
}

impl Histogram {
    /// `self - before`, bucket by bucket (a histogram only grows between resets).
    pub fn since(&self, before: &Histogram) -> Histogram {
        let mut buckets = BTreeMap::new();
        for (&lo, &n) in &self.buckets {
            let d = n.saturating_sub(before.buckets.get(&lo).copied().unwrap_or(0));
            if d > 0 {
                buckets.insert(lo, d);
            }
        }
        Histogram {
            count: self.count.saturating_sub(before.count),
            sum_ns: self.sum_ns.saturating_sub(before.sum_ns),
            buckets,
        }
    }

    /// The lower bound of the bucket holding the `pct`-th percentile.
    pub fn percentile_low(&self, pct: u64) -> Option<u64> {
        let total: u64 = self.buckets.values().sum();
        let want = (total * pct).div_ceil(100).max(1);
        let mut seen = 0;
        for (&lo, &n) in &self.buckets {
            seen += n;
            if seen >= want {
                return Some(lo);
            }
        }
        None
    }
}

/// The upper bound of the bucket whose lower bound is `lo`.
pub fn bucket_high(lo: u64) -> u64 {
    if lo == 0 {
        1
    } else {
        lo.saturating_mul(2)
    }
}

fn bound(word: &str) -> Result<u64> {
    let (digits, mult) = match word.chars().last() {
        Some('K') => (&word[..word.len() - 1], 1u64 << 10),
        Some('M') => (&word[..word.len() - 1], 1 << 20),
        Some('G') => (&word[..word.len() - 1], 1 << 30),
        Some('T') => (&word[..word.len() - 1], 1 << 40),
        Some('P') => (&word[..word.len() - 1], 1 << 50),
        _ => (word, 1),
    };
    Ok(digits.parse::<u64>().context("bad bucket bound")? * mult)
}

fn summary_number(summary: &str, key: &str) -> Option<u64> {
    summary.split(',').find_map(|part| {
        let mut w = part.split_whitespace();
        (w.next() == Some(key)).then(|| w.next()?.parse().ok())?
    })
}

/// Every `@name:` histogram of `text`, by name.
pub fn histograms(text: &str) -> Result<BTreeMap<String, Histogram>> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, Histogram)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('@') {
            if let Some((name, h)) = current.take() {
                out.insert(name, h);
            }
            let (name, summary) = rest.split_once(':').context("bad histogram line")?;
            let h = Histogram {
                count: summary_number(summary, "count").unwrap_or(0),
                sum_ns: summary_number(summary, "sum").unwrap_or(0),
                buckets: BTreeMap::new(),
            };
            current = Some((name.to_string(), h));
        } else if let (Some(range), Some((_, h))) = (line.strip_prefix('['), current.as_mut()) {
            let (range, rest) = range.split_once([')', ']']).context("bad bucket line")?;
            let lo = bound(range.split(',').next().unwrap_or("").trim())?;
            let n: u64 = rest
                .split_whitespace()
                .next()
                .context("bucket without a count")?
                .parse()
                .context("bad bucket count")?;
            h.buckets.insert(lo, n);
        } else if line.trim().is_empty() {
            if let Some((name, h)) = current.take() {
                out.insert(name, h);
            }
        }
    }
    if let Some((name, h)) = current {
        out.insert(name, h);
    }
    Ok(out)
}

/// One line of `tasks`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub pid: i32,
    pub comm: String,
    pub switched_in: u64,
    pub switched_out: u64,
    pub preempted: u64,
    pub voluntary: u64,
    pub migrated: u64,
    pub cpu: Option<u32>,
}

/// The rows of `tasks` (a `#` footer line is skipped).
pub fn tasks(text: &str) -> Result<Vec<Task>> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 8 {
            bail!("tasks: short line {line:?}");
        }
        // The comm may hold spaces: numbers are counted from the end.
        let n = w.len();
        let num = |i: usize| -> Result<u64> { w[i].parse().context("tasks: bad number") };
        out.push(Task {
            pid: w[0].parse().context("tasks: bad pid")?,
            comm: w[1..n - 6].join(" "),
            switched_in: num(n - 6)?,
            switched_out: num(n - 5)?,
            preempted: num(n - 4)?,
            voluntary: num(n - 3)?,
            migrated: num(n - 2)?,
            cpu: w[n - 1].parse().ok(),
        });
    }
    Ok(out)
}

/// A task that preempted others, and how often (`by_pid` absent for the `(others)` and `(none)` lines).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preemptor {
    pub by_pid: Option<i32>,
    pub by_comm: String,
    pub count: u64,
}

/// What the exited tasks of one root (the process that attached them) were preempted by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExitedRoot {
    pub root: i32,
    pub comm: String,
    pub tasks: u64,
    /// Most frequent first, as the module prints them.
    pub by: Vec<Preemptor>,
}

/// The char columns of `preempted_by_exited`'s lines (`{:>8} {:<16} {:>6} {:>8} {:<16} {:>10}`):
/// fixed, so that names with spaces parse.
const EXITED_COLUMNS: [(usize, usize); 6] =
    [(0, 8), (9, 25), (26, 32), (33, 41), (42, 58), (59, 69)];

/// The entries of `preempted_by_exited`, in its order (the header and `#` lines skipped).
pub fn preempted_by_exited(text: &str) -> Result<Vec<ExitedRoot>> {
    let mut out: Vec<ExitedRoot> = Vec::new();
    for line in text.lines().skip(1) {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let [root, comm, tasks, by_pid, by_comm, count] = columns(line, EXITED_COLUMNS);
        let bad = || format!("preempted_by_exited: bad line {line:?}");
        let root: i32 = root.parse().with_context(bad)?;
        let by = Preemptor {
            by_pid: if by_pid == "-" {
                None
            } else {
                Some(by_pid.parse().with_context(bad)?)
            },
            by_comm,
            count: count.parse().with_context(bad)?,
        };
        match out.last_mut() {
            Some(last) if last.root == root => last.by.push(by),
            _ => out.push(ExitedRoot {
                root,
                comm,
                tasks: tasks.parse().with_context(bad)?,
                by: vec![by],
            }),
        }
    }
    Ok(out)
}

/// The trimmed text of `line` in each of `cols`, char columns `[from, to)` (short lines give empty ones).
fn columns<const N: usize>(line: &str, cols: [(usize, usize); N]) -> [String; N] {
    let chars: Vec<char> = line.chars().collect();
    cols.map(|(a, b)| {
        chars[a.min(chars.len())..b.min(chars.len())]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    })
}

/// The lines of `preempted_by` as (attached task's pid, preemptor), by its fixed char columns
/// (`{:>8} {:<16} {:>8} {:<16} {:>10}`).
pub fn preempted_by(text: &str) -> Result<Vec<(i32, Preemptor)>> {
    const COLUMNS: [(usize, usize); 5] = [(0, 8), (9, 25), (26, 34), (35, 51), (52, 62)];
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let [pid, _comm, by_pid, by_comm, count] = columns(line, COLUMNS);
        let bad = || format!("preempted_by: bad line {line:?}");
        out.push((
            pid.parse().with_context(bad)?,
            Preemptor {
                by_pid: by_pid.parse().ok(),
                by_comm,
                count: count.parse().with_context(bad)?,
            },
        ));
    }
    Ok(out)
}

/// One line of `pairs`: a sender -> target count of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pair {
    pub sender: u32,
    pub target: u32,
    pub kind: String,
    pub count: u64,
}

/// The rows of `pairs` (lines `COUNT KIND CPU<sender> CPU<target>`; the header lines are skipped).
pub fn pairs(text: &str) -> Result<Vec<Pair>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() != 4 {
            continue;
        }
        let (Some(s), Some(t)) = (w[2].strip_prefix("CPU"), w[3].strip_prefix("CPU")) else {
            continue;
        };
        let (Ok(count), Ok(sender), Ok(target)) = (w[0].parse(), s.parse(), t.parse()) else {
            continue;
        };
        out.push(Pair {
            sender,
            target,
            kind: w[1].to_string(),
            count,
        });
    }
    Ok(out)
}

/// Counts by (sender, target) CPU.
pub type Cells = BTreeMap<(u32, u32), u64>;

/// `matrix`: per block (`RES`, `CAL`), count by (sender, target).
pub fn matrix(text: &str) -> Result<BTreeMap<String, Cells>> {
    let mut out: BTreeMap<String, Cells> = BTreeMap::new();
    let mut block: Option<String> = None;
    let mut cpus: Vec<u32> = Vec::new();
    for line in text.lines() {
        if let Some((kind, _)) = line.split_once(": ") {
            if !kind.starts_with("CPU") && !kind.starts_with(' ') && !kind.is_empty() {
                block = Some(kind.to_string());
                continue;
            }
        }
        if is_header(line) {
            cpus = line
                .split_whitespace()
                .filter_map(|w| w[3..].parse().ok())
                .collect();
            continue;
        }
        let (Some(b), Some((sender, rest))) = (&block, line.trim_start().split_once(':')) else {
            continue;
        };
        let Some(Ok(sender)) = sender.strip_prefix("CPU").map(str::parse::<u32>) else {
            continue;
        };
        for (&target, v) in cpus.iter().zip(rest.split_whitespace()) {
            let v: u64 = v.parse().context("matrix: bad count")?;
            out.entry(b.clone())
                .or_default()
                .insert((sender, target), v);
        }
    }
    if out.is_empty() {
        bail!("matrix: no block");
    }
    Ok(out)
}

/// One row of `noise/cpuN`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseRow {
    pub source: String,
    pub what: String,
    pub count: u64,
    pub time_ns: u64,
}

/// The table of `noise/cpuN`: after the header line `source count time_ns mean_ns max_ns share what`,
/// one row per source until a blank line.
pub fn noise(text: &str) -> Result<Vec<NoiseRow>> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("source"));
    if lines.next().is_none() {
        bail!("noise: no header line");
    }
    let mut rows = Vec::new();
    for line in lines.take_while(|l| !l.trim().is_empty()) {
        let mut rest = line;
        let mut field = || {
            rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (f, r) = rest.split_at(end);
            rest = r;
            f
        };
        let source = field().to_string();
        let count = field()
            .parse()
            .with_context(|| format!("noise: count in {line:?}"))?;
        let time_ns = field()
            .parse()
            .with_context(|| format!("noise: time in {line:?}"))?;
        let _mean = field();
        let _max = field();
        let _share = field();
        let what = rest.trim().to_string();
        rows.push(NoiseRow {
            source,
            what,
            count,
            time_ns,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_preemption_model_line() {
        let text = "# From the first ...\n# preemption model: lazy (dynamic: preempt= at boot)\n@local: count 0\n";
        assert_eq!(super::preemption_model(text).as_deref(), Some("lazy"));
        assert_eq!(super::preemption_model("@local: count 0\n"), None);
    }

    use super::*;

    const IPI: &str = include_str!("../tests/fixtures/ipi");
    const RECEIVED: &str = include_str!("../tests/fixtures/received");
    const RESCHED: &str = include_str!("../tests/fixtures/latency_resched");
    const TASKS: &str = include_str!("../tests/fixtures/tasks");
    const EXITED: &str = include_str!("../tests/fixtures/preempted_by_exited");

    #[test]
    fn noise_rows() {
        let rows = noise(include_str!("../tests/fixtures/noise_cpu3")).unwrap();
        assert_eq!(rows.len(), 10);
        assert_eq!(
            (
                rows[0].source.as_str(),
                rows[0].count,
                rows[0].time_ns,
                rows[0].what.as_str()
            ),
            ("LOC", 2531, 214090721, "Local timer interrupts")
        );
        assert_eq!(rows[5].what, "IRQ virtio1-requests");
        assert_eq!(
            (rows[8].source.as_str(), rows[8].what.as_str()),
            ("CSD", "ipi_mb")
        );
        assert!(noise("# nothing\n").is_err());
    }

    #[test]
    fn preempted_by_lines() {
        let rows = preempted_by(include_str!("../tests/fixtures/preempted_by")).unwrap();
        assert_eq!(rows.len(), 10);
        assert_eq!(rows[1].0, 166);
        assert_eq!(rows[1].1.by_pid, Some(165));
        assert_eq!(rows[1].1.count, 249);
        assert_eq!(rows[2].1.by_comm, "kworker/0:0");
    }

    #[test]
    fn exited_roots() {
        let roots = preempted_by_exited(EXITED).unwrap();
        assert_eq!(roots.len(), 2);
        assert_eq!(
            (roots[0].root, roots[0].comm.as_str(), roots[0].tasks),
            (212, "my app", 3)
        );
        assert_eq!(
            roots[0].by[0],
            Preemptor {
                by_pid: Some(198),
                by_comm: "sh".to_string(),
                count: 412
            }
        );
        assert_eq!(roots[0].by[2].by_pid, None);
        assert_eq!(roots[0].by[2].count, 2);
        assert_eq!(roots[1].by[0].by_comm, "(none)");
        assert!(preempted_by_exited("ROOT\n     x  y\n").is_err());
    }
    const PAIRS: &str = include_str!("../tests/fixtures/pairs");

    #[test]
    fn ipi_table() {
        let t = table(IPI).unwrap();
        assert_eq!(t.cpus, vec![0, 1, 2, 3]);
        assert_eq!(
            t.rows.keys().collect::<Vec<_>>(),
            ["CFM", "CFS", "CFT", "RES", "RSC", "WKL"]
        );
        assert_eq!(t.get("RES", 1), 2013);
        assert_eq!(t.total("CFT"), 902);
    }

    #[test]
    fn received_table() {
        let t = table(RECEIVED).unwrap();
        assert_eq!(t.total("CAL"), t.total("CFS") + t.total("CFM"));
    }

    #[test]
    fn latency_file() {
        let h = histograms(RESCHED).unwrap();
        let local = &h["local"];
        assert_eq!(local.count, local.buckets.values().sum::<u64>());
        assert!(local.sum_ns > 0);
        assert_eq!(local.buckets.get(&(64 << 10)), Some(&1493));
        let t = table(RESCHED).unwrap();
        assert_eq!(t.total("LN"), local.count);
        assert_eq!(t.get("IDL", 2), 1546);
    }

    #[test]
    fn since_subtracts() {
        let h = histograms(RESCHED).unwrap();
        let d = h["remote"].since(&h["remote"]);
        assert_eq!(d.count, 0);
        assert!(d.buckets.is_empty());
        assert_eq!(h["remote"].percentile_low(50), Some(2 << 20));
    }

    #[test]
    fn task_rows() {
        let t = tasks(TASKS).unwrap();
        assert!(!t.is_empty());
        assert!(t.iter().all(|r| r.switched_out <= r.switched_in + 1));
    }

    #[test]
    fn pair_rows() {
        let p = pairs(PAIRS).unwrap();
        assert!(!p.is_empty());
        assert!(p.windows(2).all(|w| w[0].count >= w[1].count));
    }

    #[test]
    fn attached_task_histograms() {
        for text in [
            include_str!("../tests/fixtures/latency_wakeup"),
            include_str!("../tests/fixtures/latency_slices"),
        ] {
            let hists = histograms(text).unwrap();
            assert!(!hists.is_empty());
            for h in hists.values() {
                assert_eq!(h.count, h.buckets.values().sum::<u64>());
            }
        }
    }

    #[test]
    fn matrix_blocks() {
        let m = matrix(include_str!("../tests/fixtures/matrix")).unwrap();
        assert_eq!(m.keys().collect::<Vec<_>>(), ["CAL", "RES"]);
        assert!(m.values().all(|cells| cells.len() == 16));
        assert!(m["CAL"].iter().all(|(&(s, t), &v)| s != t || v == 0));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(table("nothing here").is_err());
        assert!(histograms("@x: count 1\n[1K, 2K) oops |@|\n").is_err());
    }
}
