// SPDX-License-Identifier: GPL-2.0
//! `resched top`: per-second rates per CPU and kind, the busiest pairs and the attached tasks,
//! refreshed every `delay` seconds, in the terminal's alternate screen; `q` or Ctrl-C quits.

use crate::module::Module;
use crate::snapshot::Snapshot;
use crate::stat::thousands;
use anyhow::Result;
use crossterm::event::{self, Event, KeyCode, KeyModifiers};
use crossterm::style::Print;
use crossterm::terminal::{self, ClearType};
use crossterm::{cursor, execute, queue};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The rows shown per CPU: (file, row, label).
const RATES: [(&str, &str, &str); 8] = [
    ("ipi", "RES", "RES sent"),
    ("ipi", "CFS", "CFS sent"),
    ("ipi", "CFT", "CFM targets"),
    ("received", "RES", "RES recv"),
    ("received", "CAL", "CAL recv"),
    ("ipi", "RSC", "resched"),
    ("ipi", "WKL", "wakelist"),
    ("sched", "CSW", "switches"),
];

/// One frame: rates between `before` and `now`.
pub fn frame(before: &Snapshot, now: &Snapshot, delay: f64) -> String {
    let d = now.since(before);
    let secs = d.seconds.unwrap_or(delay).max(1e-3);
    let rate = |v: u64| thousands((v as f64 / secs).round() as u64);
    let mut out = String::new();
    out.push_str(&format!(
        "resched top - per second over {secs:.1} s ('q' quits)\r\n\r\n{:<12}",
        ""
    ));
    for cpu in &d.cpus {
        out.push_str(&format!("{:>10}", format!("CPU{cpu}")));
    }
    out.push_str("\r\n");
    for (file, row, label) in RATES {
        if !d.tables.contains_key(file) {
            continue;
        }
        out.push_str(&format!("{label:<12}"));
        for &cpu in &d.cpus {
            out.push_str(&format!("{:>10}", rate(d.get(file, row, cpu))));
        }
        out.push_str("\r\n");
    }
    out.push_str("\r\nbusiest pairs (per second)\r\n");
    for p in d.pairs.iter().take(8) {
        out.push_str(&format!(
            "  {:>10}  {:<4} CPU{} -> CPU{}\r\n",
            rate(p.count),
            p.kind,
            p.sender,
            p.target
        ));
    }
    out.push_str(&format!(
        "\r\nattached tasks: {}\r\n{:>8} {:<16} {:>10} {:>10} {:>4}\r\n",
        now.tasks.len(),
        "PID",
        "COMM",
        "PREEMPTED",
        "VOLUNTARY",
        "CPU"
    ));
    for t in now.tasks.iter().take(10) {
        out.push_str(&format!(
            "{:>8} {:<16} {:>10} {:>10} {:>4}\r\n",
            t.pid,
            t.comm,
            t.preempted,
            t.voluntary,
            t.cpu.map_or("-".to_string(), |c| c.to_string())
        ));
    }
    out
}

/// Waits up to `timeout` for `q` or Ctrl-C; true when one came.
fn quit_key(timeout: Duration) -> Result<bool> {
    let end = Instant::now() + timeout;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || !event::poll(left)? {
            return Ok(false);
        }
        if let Event::Key(k) = event::read()? {
            let ctrl_c =
                k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
            if k.code == KeyCode::Char('q') || ctrl_c {
                return Ok(true);
            }
        }
    }
}

/// Runs until `q`, Ctrl-C or `iterations` refreshes.
pub fn run(delay: f64, iterations: Option<u64>) -> Result<()> {
    let m = Module::open()?;
    if !std::io::stdout().is_terminal() {
        anyhow::bail!("top needs a terminal (use `resched show` or `stat` in scripts)");
    }
    let mut before = Snapshot::read(&m)?;
    terminal::enable_raw_mode()?;
    let mut out = std::io::stdout();
    execute!(out, terminal::EnterAlternateScreen, cursor::Hide)?;
    let result = (|| -> Result<()> {
        let mut n = 0;
        loop {
            if quit_key(Duration::from_secs_f64(delay))? {
                return Ok(());
            }
            let now = Snapshot::read(&m)?;
            queue!(
                out,
                cursor::MoveTo(0, 0),
                terminal::Clear(ClearType::All),
                Print(frame(&before, &now, delay))
            )?;
            out.flush()?;
            before = now;
            n += 1;
            if iterations.is_some_and(|max| n >= max) {
                return Ok(());
            }
        }
    })();
    // The terminal is given back whatever happened.
    let _ = execute!(out, cursor::Show, terminal::LeaveAlternateScreen);
    let _ = terminal::disable_raw_mode();
    result
}
