// SPDX-License-Identifier: GPL-2.0
//! `resched stat -- CMD` and `resched show`: a command's numbers in the manner of `perf stat`, and every
//! number now.

use crate::module::Module;
use crate::parse::{self, bucket_high, Histogram, Preemptor};
use crate::snapshot::Snapshot;
use anyhow::{Context, Result};
use std::ffi::CString;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// What `stat` prints, in order: (file, row, what it counts).
/// A row the module does not show is left out (`received` has no CFS and CFM rows on arm64, where one
/// IPI carries both call-function kinds: its CAL line stands for them).
pub const LINES: [(&str, &str, &str); 21] = [
    ("ipi", "RES", "reschedule IPIs sent"),
    ("ipi", "CFS", "function call (single) IPIs sent"),
    ("ipi", "CFM", "function call (many) sends"),
    ("ipi", "CFT", "function call (many) target CPUs"),
    ("received", "RES", "reschedule IPIs received"),
    ("received", "CAL", "function call IPIs received"),
    ("received", "CFS", "... of which single"),
    ("received", "CFM", "... of which many"),
    ("ipi", "RSC", "reschedule requests"),
    ("ipi", "RSL", "... of which lazy"),
    ("ipi", "RSP", "... of which promoted from lazy"),
    ("ipi", "WKL", "wakeups queued on a wakelist"),
    ("ipi", "NIP", "IPIs not needed: target polling idle"),
    ("sched", "CSW", "context switches, all tasks"),
    ("sched", "CSP", "... of which preemptions"),
    ("sched", "IN", "attached tasks switched in"),
    ("sched", "OUT", "attached tasks switched out"),
    ("sched", "PRE", "... preempted"),
    ("sched", "VOL", "... blocking (voluntary)"),
    ("sched", "MIG", "attached tasks migrated"),
    ("targets", "RSC", "remote reschedule requests"),
];

/// Preemptors `stat -- CMD` prints (the JSON document has all the module keeps: 8 per root).
const PREEMPTORS_SHOWN: usize = 5;

/// The histograms `stat` summarizes: (key, what it measures).
const HISTS: [(&str, &str); 9] = [
    ("latency/resched/local", "resched -> switch, local"),
    ("latency/resched/remote", "resched -> switch, remote"),
    ("latency/resched/lazy", "resched -> switch, lazy"),
    ("latency/ipi/RES", "IPI delivery, RES"),
    ("latency/ipi/CFS", "IPI delivery, CFS"),
    ("latency/ipi/CFM", "IPI delivery, CFM"),
    ("latency/wakeup/wakeup", "attached: wakeup -> run"),
    ("latency/slices/preempted", "attached: slice, preempted"),
    ("latency/slices/blocked", "attached: slice, blocking"),
];

/// Runs `cmd` attached (it writes `attach` before it execs), and prints the difference of the module's
/// numbers across it. Returns CMD's exit code (128 + signal when killed).
pub fn run(cmd: &[String], per_cpu: bool, json: bool) -> Result<u8> {
    let m = Module::open()?;
    let attach = CString::new(m.path("attach").as_os_str().as_bytes())?;
    let before = Snapshot::read(&m)?;
    let start = Instant::now();
    let mut command = Command::new(&cmd[0]);
    command.args(&cmd[1..]);
    // SAFETY: Between fork and exec the closure only makes the open, write and close system calls on
    // memory allocated before the fork.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(attach.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let n = libc::write(fd, b"attach".as_ptr().cast(), 6);
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if n == 6 {
                Ok(())
            } else {
                Err(err)
            }
        })
    };
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {:?} attached", cmd[0]))?;
    // Ctrl-C goes to CMD (same process group); this process waits for it and reports.
    // SAFETY: Setting a signal's disposition to ignore has no preconditions.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    let root = i32::try_from(child.id()).context("CMD's pid")?;
    let status = child.wait().context("waiting for the command")?;
    let elapsed = start.elapsed().as_secs_f64();
    let after = Snapshot::read(&m)?;
    let mut d = after.since(&before);
    d.preempted_by = exited_preemptors(&m, root)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print_stat(&d, &cmd.join(" "), per_cpu, elapsed);
    }
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c as u8,
        (None, Some(s)) => 128u8.wrapping_add(s as u8),
        _ => 1,
    })
}

/// Who preempted the tasks of root `root` that have exited (`preempted_by_exited`); `None` from a
/// module without that file.
fn exited_preemptors(m: &Module, root: i32) -> Result<Option<Vec<Preemptor>>> {
    let Ok(text) = m.read("preempted_by_exited") else {
        return Ok(None);
    };
    let roots = parse::preempted_by_exited(&text)?;
    Ok(Some(
        roots
            .into_iter()
            .find(|r| r.root == root)
            .map(|r| r.by.into_iter().filter(|p| p.by_pid.is_some()).collect())
            .unwrap_or_default(),
    ))
}

/// Who preempted the processes `pids` since they were attached: their live threads' `preempted_by`
/// rows and their exited tasks' (`preempted_by_exited`), merged by preemptor, most frequent first.
fn watched_preemptors(m: &Module, pids: &[i32]) -> Result<Option<Vec<Preemptor>>> {
    let Some(mut merged) = pids
        .iter()
        .map(|&p| exited_preemptors(m, p))
        .collect::<Result<Option<Vec<_>>>>()?
        .map(|v| v.concat())
    else {
        return Ok(None);
    };
    let threads: Vec<i32> = pids
        .iter()
        .flat_map(|p| {
            std::fs::read_dir(format!("/proc/{p}/task"))
                .into_iter()
                .flatten()
        })
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for (pid, p) in parse::preempted_by(&m.read("preempted_by")?)? {
        if threads.contains(&pid) && p.by_pid.is_some() {
            merged.push(p);
        }
    }
    let mut by: Vec<Preemptor> = Vec::new();
    for p in merged {
        match by.iter_mut().find(|q| q.by_pid == p.by_pid) {
            Some(q) => q.count += p.count,
            None => by.push(p),
        }
    }
    by.sort_by(|a, b| b.count.cmp(&a.count).then(a.by_pid.cmp(&b.by_pid)));
    Ok(Some(by))
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Writes `line` to the module's `attach` file.
fn attach_write(m: &Module, line: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(m.path("attach"))?
        .write_all(line.as_bytes())
}

/// `resched stat -p PID[,PID...]`: attaches every thread of each process (the module does it in each
/// thread's own context), watches until Ctrl-C, `duration` or the processes' exit, detaches them, and
/// prints the differences.
pub fn pids(pids: &[i32], duration: Option<f64>, per_cpu: bool, json: bool) -> Result<()> {
    let m = Module::open()?;
    for &pid in pids {
        if let Err(e) = attach_write(&m, &format!("attach {pid}")) {
            let why = match e.raw_os_error() {
                Some(libc::ESRCH) => "no such process".to_string(),
                Some(libc::EPERM) => "a kernel thread: only user tasks can be attached".to_string(),
                Some(libc::EINVAL) => {
                    "the module does not attach by pid (older than this tool)".to_string()
                }
                _ => e.to_string(),
            };
            // Those already attached go again.
            for &done in pids.iter().take_while(|&&p| p != pid) {
                let _ = attach_write(&m, &format!("detach {done}"));
            }
            anyhow::bail!("cannot attach {pid}: {why}");
        }
    }
    let before = Snapshot::read(&m)?;
    let start = Instant::now();
    // SAFETY: The handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let alive = |pid: &i32| std::path::Path::new(&format!("/proc/{pid}")).exists();
    while !STOP.load(Ordering::Relaxed)
        && duration.is_none_or(|d| start.elapsed().as_secs_f64() < d)
        && pids.iter().any(alive)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = Snapshot::read(&m)?;
    let by = watched_preemptors(&m, pids)?;
    for &pid in pids {
        let _ = attach_write(&m, &format!("detach {pid}"));
    }
    let mut d = after.since(&before);
    d.preempted_by = by;
    let label = pids
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else {
        print_stat(&d, &format!("pid {label}"), per_cpu, elapsed);
    }
    Ok(())
}

/// `resched show [--json]`: every number now.
pub fn show(json: bool) -> Result<()> {
    let m = Module::open()?;
    let s = Snapshot::read(&m)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_stat(&s, "", false, 0.0);
    }
    Ok(())
}

/// Groups of three digits, as `perf stat` prints counts.
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration in ns with a unit that keeps it short: `812 ns`, `64.0 us`, `3.1 ms`, `1.20 s`.
pub fn duration(ns: u64) -> String {
    let v = ns as f64;
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} us", v / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", v / 1e6)
    } else {
        format!("{:.2} s", v / 1e9)
    }
}

fn hist_line(h: &Histogram) -> String {
    let p = |pct| {
        h.percentile_low(pct).map_or("-".to_string(), |lo| {
            format!("< {}", duration(bucket_high(lo)))
        })
    };
    let mean = h.sum_ns.checked_div(h.count).unwrap_or(0);
    format!(
        "{:>10} measured, mean {:>9}, p50 {:>10}, p99 {:>10}",
        thousands(h.count),
        duration(mean),
        p(50),
        p(99)
    )
}

/// Prints `d` as `perf stat` does: one line per count, then the histograms' summaries.
pub fn print_stat(d: &Snapshot, cmd: &str, per_cpu: bool, elapsed: f64) {
    println!();
    if cmd.is_empty() {
        println!(" resched_probe counters since the last reset:");
    } else {
        println!(" resched_probe stats for '{cmd}' (attached: it and the tasks it starts):");
    }
    if let Some(model) = &d.preemption_model {
        println!(" preemption model: {model}");
    }
    println!();
    for (file, row, what) in LINES {
        if !d.tables.get(file).is_some_and(|t| t.rows.contains_key(row)) {
            continue;
        }
        let event = format!("{file}:{row}");
        if per_cpu {
            for &cpu in &d.cpus {
                println!(
                    "CPU{cpu:<4} {:>18}      {event:<14} # {what}",
                    thousands(d.get(file, row, cpu))
                );
            }
        } else {
            println!(
                "{:>23}      {event:<14} # {what}",
                thousands(d.total(file, row))
            );
        }
    }
    println!();
    for (key, what) in HISTS {
        if let Some(h) = d.histograms.get(key) {
            println!("  {:<28} {}", what, hist_line(h));
        }
    }
    if let Some(by) = &d.preempted_by {
        println!();
        if by.is_empty() {
            println!("  preempted by: no other task");
        } else {
            println!("  preempted by (most frequent first):");
            for p in by.iter().take(PREEMPTORS_SHOWN) {
                let pid = p.by_pid.map_or("-".to_string(), |p| p.to_string());
                println!(
                    "{:>23}      {:<16} pid {pid}",
                    thousands(p.count),
                    p.by_comm
                );
            }
        }
    }
    if !cmd.is_empty() {
        println!();
        println!("{elapsed:>23.9} seconds time elapsed");
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_of_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(812), "812 ns");
        assert_eq!(duration(65_536), "65.5 us");
        assert_eq!(duration(4_194_304), "4.2 ms");
    }
}
