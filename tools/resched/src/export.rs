// SPDX-License-Identifier: GPL-2.0
//! `resched export --prometheus DIR`: node_exporter's textfile collector format. Counters end in
//! `_total`; per-CPU series carry `cpu` (and `type` for the IPI kind), the labels of node_exporter's
//! own `node_interrupts_total{cpu,type}`, so `resched_ipi_received_total` joins it on `type="RES"` and
//! `type="CAL"`. The file is written beside its final name and renamed into place.

use crate::module::Module;
use crate::parse::{self, bucket_high, Histogram, NoiseRow};
use crate::snapshot::Snapshot;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The file node_exporter reads.
pub const FILE: &str = "resched.prom";

/// (metric, help, file, [(row, type label)]) of the per-CPU counters.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const FAMILIES: [Family; 9] = [
    (
        "resched_ipi_sent_total",
        "IPIs sent by this CPU (CFM: call-function sends, one per call; CFT: their target CPUs).",
        "ipi",
        &[
            ("RES", "RES"),
            ("CFS", "CFS"),
            ("CFM", "CFM"),
            ("CFT", "CFT"),
        ],
    ),
    (
        "resched_ipi_targeted_total",
        "IPIs sent to this CPU (CAL: single + many), comparable with node_interrupts_total.",
        "targets",
        &[("RES", "RES"), ("CAL", "CAL")],
    ),
    (
        "resched_ipi_received_total",
        "IPIs received by this CPU, counted at their handler as /proc/interrupts counts them.",
        "received",
        &[("RES", "RES"), ("CAL", "CAL")],
    ),
    (
        "resched_requests_total",
        "Reschedule requests made by this CPU.",
        "ipi",
        &[("RSC", "RSC")],
    ),
    (
        "resched_requests_by_kind_total",
        "Reschedule requests made by this CPU, by kind: lazy (no IPI), promoted (immediate while a lazy one was pending).",
        "ipi",
        &[("RSL", "lazy"), ("RSP", "promoted")],
    ),
    (
        "resched_ipi_not_needed_total",
        "IPIs this CPU did not send because the target was polling idle.",
        "ipi",
        &[("NIP", "NIP")],
    ),
    (
        "resched_wakelist_wakeups_total",
        "Wakeups this CPU queued on another CPU's wakelist.",
        "ipi",
        &[("WKL", "WKL")],
    ),
    (
        "resched_context_switches_total",
        "Context switches on this CPU (CSP: those that preempted the previous task).",
        "sched",
        &[("CSW", "all"), ("CSP", "preempt")],
    ),
    (
        "resched_attached_switches_total",
        "Switches of attached tasks on this CPU.",
        "sched",
        &[
            ("IN", "in"),
            ("OUT", "out"),
            ("PRE", "preempted"),
            ("VOL", "voluntary"),
            ("MIG", "migrated"),
        ],
    ),
];

/// The histograms, by snapshot key, as the `interval` label.
const HISTS: [(&str, &str); 9] = [
    ("latency/resched/local", "resched_local"),
    ("latency/resched/remote", "resched_remote"),
    ("latency/resched/lazy", "resched_lazy"),
    ("latency/ipi/RES", "ipi_delivery_res"),
    ("latency/ipi/CFS", "ipi_delivery_cfs"),
    ("latency/ipi/CFM", "ipi_delivery_cfm"),
    ("latency/wakeup/wakeup", "attached_wakeup_to_run"),
    ("latency/slices/preempted", "attached_slice_preempted"),
    ("latency/slices/blocked", "attached_slice_blocked"),
];

/// The buckets' upper bounds are the same in every file and at every write: 2^k ns for k up to this
/// (about 18 minutes), then `+Inf`.
const MAX_LE_LOG2: u32 = 40;

fn histogram(out: &mut String, interval: &str, h: &Histogram) {
    for k in 0..=MAX_LE_LOG2 {
        let le_ns = 1u64 << k;
        let cumulative: u64 = h
            .buckets
            .iter()
            .filter(|(&lo, _)| bucket_high(lo) <= le_ns)
            .map(|(_, &n)| n)
            .sum();
        let le = le_ns as f64 / 1e9;
        let _ = writeln!(
            out,
            "resched_latency_seconds_bucket{{interval=\"{interval}\",le=\"{le:e}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "resched_latency_seconds_bucket{{interval=\"{interval}\",le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(
        out,
        "resched_latency_seconds_sum{{interval=\"{interval}\"}} {:e}",
        h.sum_ns as f64 / 1e9
    );
    let _ = writeln!(
        out,
        "resched_latency_seconds_count{{interval=\"{interval}\"}} {}",
        h.count
    );
}

/// The labels of a `noise/cpuN` row, the names `node_interrupts_total` has (`cpu`, `devices`, `info`,
/// `type`: one label set per family, which node_exporter requires): `type` the vector (`LOC`, `RES`,
/// `CAL`, `IWI`) with its description in `info`, or the interrupt's number with its name in `devices`;
/// softirqs `type="softirq"` with their name in `info`, the queued calls `type="CSD"` with the function
/// in `info`, kernel threads `type="TASK"` with their name and pid in `info`.
fn noise_labels(cpu: u32, row: &NoiseRow) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let (kind, devices, info) = if row.source == "CSD" {
        ("CSD", String::new(), escape(&row.what))
    } else if row.source.bytes().all(|b| b.is_ascii_digit()) {
        let name = row.what.strip_prefix("IRQ ").unwrap_or(&row.what);
        (row.source.as_str(), escape(name), String::new())
    } else if row.what.starts_with("softirq") {
        ("softirq", String::new(), escape(&row.source))
    } else {
        (row.source.as_str(), String::new(), escape(&row.what))
    };
    format!("cpu=\"{cpu}\",devices=\"{devices}\",info=\"{info}\",type=\"{kind}\"")
}

/// The `noise/cpuN` series: interruptions and the seconds their handlers took, per CPU and source.
fn noise(out: &mut String, noise: &[(u32, Vec<NoiseRow>)]) {
    if noise.is_empty() {
        return;
    }
    for (name, help, seconds) in [
        ("resched_noise_interruptions_total", "Interruptions of this CPU by source (noise/cpuN; CSD: the queued calls, run inside CAL; TASK: kernel threads' turns).", false),
        ("resched_noise_seconds_total", "Seconds the handlers of each source took on this CPU (softirqs and kernel threads without the hard interrupts in them).", true),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (cpu, rows) in noise {
            for row in rows {
                let labels = noise_labels(*cpu, row);
                if seconds {
                    let _ = writeln!(out, "{name}{{{labels}}} {:e}", row.time_ns as f64 / 1e9);
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {}", row.count);
                }
            }
        }
    }
}

/// The text of the textfile for `s`, the rows of each CPU's `noise/cpuN` (none where the module has
/// none) and the matrix when asked.
pub fn render(
    s: &Snapshot,
    noise_rows: &[(u32, Vec<NoiseRow>)],
    matrix: Option<&str>,
) -> Result<String> {
    let mut out = String::new();
    for (name, help, file, rows) in FAMILIES {
        let Some(t) = s.tables.get(file) else {
            continue;
        };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for &(row, kind) in rows {
            for &cpu in &t.cpus {
                let _ = writeln!(
                    out,
                    "{name}{{cpu=\"{cpu}\",type=\"{kind}\"}} {}",
                    t.get(row, cpu)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP resched_latency_seconds Latency histograms of the module (log2 buckets)."
    );
    let _ = writeln!(out, "# TYPE resched_latency_seconds histogram");
    for (key, interval) in HISTS {
        if let Some(h) = s.histograms.get(key) {
            histogram(&mut out, interval, h);
        }
    }
    noise(&mut out, noise_rows);
    if let Some(text) = matrix {
        let m = parse::matrix(text).context("parsing matrix")?;
        let _ = writeln!(
            out,
            "# HELP resched_ipi_pair_total IPIs sent from CPU sender to CPU target (RES, CAL)."
        );
        let _ = writeln!(out, "# TYPE resched_ipi_pair_total counter");
        for (kind, cells) in &m {
            for (&(sender, target), v) in cells {
                let _ = writeln!(
                    out,
                    "resched_ipi_pair_total{{sender=\"{sender}\",target=\"{target}\",type=\"{kind}\"}} {v}"
                );
            }
        }
    }
    Ok(out)
}

/// Writes `DIR/resched.prom` through a temporary file renamed into place.
fn write(m: &Module, dir: &Path, matrix: bool) -> Result<()> {
    let s = Snapshot::read(m)?;
    let matrix_text = if matrix {
        Some(m.read("matrix")?)
    } else {
        None
    };
    // Each CPU's noise/cpuN, where the module has them (older modules: none).
    let mut noise_rows = Vec::new();
    for &cpu in &s.cpus {
        let name = format!("noise/cpu{cpu}");
        if m.path(&name).exists() {
            noise_rows.push((cpu, parse::noise(&m.read(&name)?)?));
        }
    }
    let text = render(&s, &noise_rows, matrix_text.as_deref())?;
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(FILE))
        .with_context(|| format!("cannot rename {} into place", tmp.display()))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Once, or every `interval` seconds until SIGINT or SIGTERM.
pub fn run(dir: &Path, interval: Option<f64>, matrix: bool) -> Result<()> {
    let m = Module::open()?;
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    write(&m, dir, matrix)?;
    let Some(every) = interval else {
        return Ok(());
    };
    // SAFETY: The handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    while !STOP.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_secs_f64(every));
        if !STOP.load(Ordering::Relaxed) {
            write(&m, dir, matrix)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;
    use std::collections::BTreeMap;

    #[test]
    fn textfile_from_real_outputs() {
        let mut tables = BTreeMap::new();
        tables.insert(
            "ipi".to_string(),
            parse::table(include_str!("../tests/fixtures/ipi")).unwrap(),
        );
        let text = include_str!("../tests/fixtures/latency_resched");
        let mut histograms = BTreeMap::new();
        for (k, h) in parse::histograms(text).unwrap() {
            histograms.insert(format!("latency/resched/{k}"), h);
        }
        let s = Snapshot {
            schema: crate::snapshot::SCHEMA,
            seconds: None,
            cpus: vec![0, 1, 2, 3],
            tables,
            histograms,
            pairs: vec![],
            tasks: vec![],
            preemption_model: None,
            preempted_by: None,
            taken: None,
        };
        let rows = parse::noise(include_str!("../tests/fixtures/noise_cpu3")).unwrap();
        let out = render(&s, &[(3, rows)], None).unwrap();
        assert!(out.contains("resched_ipi_sent_total{cpu=\"1\",type=\"RES\"} 2013\n"));
        // noise/cpu3's rows, labelled as node_interrupts_total is.
        for line in [
            "resched_noise_interruptions_total{cpu=\"3\",devices=\"\",info=\"Local timer interrupts\",type=\"LOC\"} 2531\n",
            "resched_noise_interruptions_total{cpu=\"3\",devices=\"virtio1-requests\",info=\"\",type=\"39\"} 5\n",
            "resched_noise_interruptions_total{cpu=\"3\",devices=\"\",info=\"TIMER\",type=\"softirq\"} 65\n",
            "resched_noise_interruptions_total{cpu=\"3\",devices=\"\",info=\"ipi_mb\",type=\"CSD\"} 300\n",
            "resched_noise_seconds_total{cpu=\"3\",devices=\"\",info=\"Local timer interrupts\",type=\"LOC\"} 2.14090721e-1\n",
        ] {
            assert!(out.contains(line), "{line}");
        }
        // Buckets are cumulative and end at +Inf with the count.
        let local: Vec<u64> = out
            .lines()
            .filter(|l| l.starts_with("resched_latency_seconds_bucket{interval=\"resched_local\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(local.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            *local.last().unwrap(),
            s.histograms["latency/resched/local"].count
        );
    }
}
