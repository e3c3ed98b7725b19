// SPDX-License-Identifier: GPL-2.0
//! One reading of every number the module exports, its difference with an earlier one, and the JSON
//! document (schema `resched/1`, described in tools/resched/README.md).

use crate::module::Module;
use crate::parse::{self, Histogram, Pair, Preemptor, Table, Task};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// The schema of the JSON document; bumped when a field changes meaning or goes away.
pub const SCHEMA: &str = "resched/1";

/// The tables the tool reads, by file name.
pub const TABLES: [&str; 4] = ["ipi", "targets", "received", "sched"];
/// The histogram files, by file name.
pub const LATENCY: [&str; 4] = [
    "latency/resched",
    "latency/ipi",
    "latency/wakeup",
    "latency/slices",
];

/// Every number of the module at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub schema: &'static str,
    /// Seconds the numbers cover: since the previous snapshot for a difference, else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The online CPUs (the tables' columns).
    pub cpus: Vec<u32>,
    /// `ipi`, `targets`, `received`, `sched`, and the per-CPU rows of the latency files, by file name.
    pub tables: BTreeMap<String, Table>,
    /// Every histogram, by `<file>/<name>` (`latency/resched/local`, ...).
    pub histograms: BTreeMap<String, Histogram>,
    /// Nonzero (sender, target, kind) counts, most counted first (the `pairs` file).
    pub pairs: Vec<Pair>,
    /// Attached tasks (per-task counts run from their attach; not differences).
    pub tasks: Vec<Task>,
    /// The preemption model in force (`none`, `voluntary`, `full`, `lazy`, `rt`), as `latency/resched`
    /// names it; absent from modules that do not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preemption_model: Option<String>,
    /// `stat -- CMD` only: who preempted CMD's tasks (read once they have exited), most frequent
    /// first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preempted_by: Option<Vec<Preemptor>>,
    #[serde(skip)]
    pub taken: Option<Instant>,
}

impl Snapshot {
    /// Reads every file.
    pub fn read(m: &Module) -> Result<Self> {
        let taken = Instant::now();
        let mut tables = BTreeMap::new();
        for name in TABLES {
            let text = m.read(name)?;
            // `received` is a note on kernels without the IPI entry tracepoints.
            if name == "received" && text.starts_with('#') {
                continue;
            }
            tables.insert(
                name.to_string(),
                parse::table(&text).with_context(|| format!("parsing {name}"))?,
            );
        }
        let mut histograms = BTreeMap::new();
        let mut preemption_model = None;
        for name in LATENCY {
            let text = m.read(name)?;
            if name == "latency/resched" {
                preemption_model = parse::preemption_model(&text);
            }
            for (h, v) in parse::histograms(&text).with_context(|| format!("parsing {name}"))? {
                histograms.insert(format!("{name}/{h}"), v);
            }
            if let Ok(t) = parse::table(&text) {
                tables.insert(name.to_string(), t);
            }
        }
        let cpus = tables
            .get("ipi")
            .map(|t| t.cpus.clone())
            .unwrap_or_default();
        Ok(Snapshot {
            schema: SCHEMA,
            seconds: None,
            cpus,
            tables,
            histograms,
            pairs: parse::pairs(&m.read("pairs")?)?,
            tasks: parse::tasks(&m.read("tasks")?)?,
            preemption_model,
            preempted_by: None,
            taken: Some(taken),
        })
    }

    /// What happened between `before` and `self`: counters and histograms subtracted (a `reset` in
    /// between makes some differences 0), tasks as they are now. Rows that are not counts (the
    /// latency tables' percentiles and largest values, `received`'s coalesced) are left out.
    pub fn since(&self, before: &Snapshot) -> Snapshot {
        let mut tables = BTreeMap::new();
        for (name, t) in &self.tables {
            let old = before.tables.get(name);
            let mut rows = BTreeMap::new();
            for (label, values) in &t.rows {
                if name.starts_with("latency/") && !is_count_row(label) || is_derived(label) {
                    continue;
                }
                let d = t
                    .cpus
                    .iter()
                    .zip(values)
                    .map(|(&cpu, &v)| v.saturating_sub(old.map_or(0, |o| o.get(label, cpu))))
                    .collect();
                rows.insert(label.clone(), d);
            }
            tables.insert(
                name.clone(),
                Table {
                    cpus: t.cpus.clone(),
                    rows,
                },
            );
        }
        let histograms = self
            .histograms
            .iter()
            .map(|(k, h)| {
                let empty = Histogram::default();
                (
                    k.clone(),
                    h.since(before.histograms.get(k).unwrap_or(&empty)),
                )
            })
            .collect();
        let old: BTreeMap<(u32, u32, &str), u64> = before
            .pairs
            .iter()
            .map(|p| ((p.sender, p.target, p.kind.as_str()), p.count))
            .collect();
        let mut pairs: Vec<Pair> = self
            .pairs
            .iter()
            .map(|p| Pair {
                count: p.count.saturating_sub(
                    old.get(&(p.sender, p.target, p.kind.as_str()))
                        .copied()
                        .unwrap_or(0),
                ),
                ..p.clone()
            })
            .filter(|p| p.count > 0)
            .collect();
        pairs.sort_by_key(|p| std::cmp::Reverse(p.count));
        let seconds = match (self.taken, before.taken) {
            (Some(a), Some(b)) => Some(a.duration_since(b).as_secs_f64()),
            _ => None,
        };
        Snapshot {
            schema: SCHEMA,
            seconds,
            cpus: self.cpus.clone(),
            tables,
            histograms,
            pairs,
            tasks: self.tasks.clone(),
            preemption_model: self.preemption_model.clone(),
            preempted_by: self.preempted_by.clone(),
            taken: self.taken,
        }
    }

    /// Row `row` of table `file` for `cpu` (0 when absent).
    pub fn get(&self, file: &str, row: &str, cpu: u32) -> u64 {
        self.tables.get(file).map_or(0, |t| t.get(row, cpu))
    }

    /// Row `row` of table `file` over all CPUs.
    pub fn total(&self, file: &str, row: &str) -> u64 {
        self.tables.get(file).map_or(0, |t| t.total(row))
    }
}

/// Whether a row is computed from others and may go down (`received`'s `sent - received`).
fn is_derived(label: &str) -> bool {
    matches!(label, "RCO" | "CCO")
}

/// Whether a row of a per-CPU latency table is a count (`LN`, `PRE`, ...) rather than a percentile or
/// a largest value.
fn is_count_row(label: &str) -> bool {
    label.ends_with('N') || matches!(label, "PRE" | "BLK" | "IDL")
}
