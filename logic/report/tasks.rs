// SPDX-License-Identifier: GPL-2.0

//! Task switches: `sched` (every CPU's context switches), and for the attached tasks `tasks`,
//! `preempted_by`, `preempted_by_exited`, `attach` and `attach_capacity`.

use super::table::{render, table, Row};
use crate::logic::counters::Local;
use crate::logic::engine::Engine;
use crate::logic::exited::ROOTS;
use crate::logic::ratelimit::warn_ratelimited;
use crate::logic::tasks::{Tasks, MAX_ATTACHED, MAX_PENDING};
use crate::logic::text::{comm_str, line, parse_count};
use crate::sys::debugfs::{Node, Shown, Text};
use crate::sys::task::Current;
use core::fmt::Write;
use kernel::prelude::*;
use kernel::sync::Arc;

/// `attach_capacity`: how many tasks may be attached at once (default 1024); writing a number from 1
/// to the slots allocated at load sets it (tasks attached beyond a lower value stay); anything else is
/// `-EINVAL`. An attach beyond it fails with `-ENOSPC` (a new child: not attached), counted in `tasks`.
pub(crate) struct AttachCapacity(pub(crate) Arc<Tasks>);

#[vtable]
impl Node for AttachCapacity {
    fn show(&self, out: &mut Text) -> Shown {
        Ok(writeln!(out, "{}", self.0.capacity())?)
    }

    fn store(&self, input: &[u8], _writer: &Current<'_>) -> Result {
        let r = parse_count(line(input))
            .ok_or(EINVAL)
            .and_then(|n| self.0.set_capacity(n));
        if r.is_err() {
            warn_ratelimited!(
                "attach_capacity: expected a number from 1 to {}, got {} bytes; nothing changed\n",
                MAX_ATTACHED,
                input.len()
            );
        }
        r
    }
}

/// `sched`: context switches per CPU, of attached tasks (preempt notifiers) and of every task
/// (`sched_switch`).
pub(crate) struct Sched(pub(crate) Arc<Engine>);

#[vtable]
impl Node for Sched {
    fn show(&self, out: &mut Text) -> Shown {
        render(out, &self.0, |out, cols, s| {
            let local = |local| move |c| s.local(c, local);
            #[rustfmt::skip]
            let rows = [
                Row("IN", &local(Local::SchedIn), "Attached tasks switched in"),
                Row("OUT", &local(Local::SchedOut), "Attached tasks switched out"),
                Row("PRE", &local(Local::Preempted), "... of which preempted (still runnable)"),
                Row("VOL", &local(Local::Voluntary), "... of which blocking (voluntary)"),
                Row("MIG", &local(Local::Migrated), "Attached tasks switched in after running on another CPU"),
                Row("CSW", &local(Local::Switches), "Context switches, all tasks"),
                Row("CSP", &local(Local::SwitchesPreempt), "... of which the previous task was preempted"),
            ];
            table(out, cols, 4, &rows)
        })
    }
}

/// `tasks`: one line per attached task.
pub(crate) struct TaskList(pub(crate) Arc<Tasks>);

#[vtable]
impl Node for TaskList {
    fn show(&self, out: &mut Text) -> Shown {
        let rows = self.0.rows()?;
        writeln!(
            out,
            "{:>8} {:<16} {:>10} {:>10} {:>10} {:>10} {:>10} {:>4}",
            "PID", "COMM", "IN", "OUT", "PREEMPTED", "VOLUNTARY", "MIGRATED", "CPU"
        )?;
        for t in rows.iter() {
            let comm = comm_str(&t.comm);
            write!(
                out,
                "{:>8} {:<16} {:>10} {:>10} {:>10} {:>10} {:>10} ",
                t.pid, comm, t.ins, t.outs, t.preempted, t.voluntary, t.migrations
            )?;
            match t.last_cpu {
                Some(cpu) => writeln!(out, "{cpu:>4}")?,
                None => writeln!(out, "{:>4}", "-")?,
            }
        }
        if let n @ 1.. = self.0.full() {
            writeln!(
                out,
                "# {n} tasks not attached: attach_capacity ({}) tasks were attached",
                self.0.capacity()
            )?;
        }
        match self.0.pending() {
            0 => Ok(()),
            n => Ok(writeln!(
                out,
                "# {n} attach/detach works wait for their threads to run (at most {MAX_PENDING})"
            )?),
        }
    }
}

/// `preempted_by`: for each attached task, the tasks that took its CPU when it was preempted, most
/// frequent first (the idle task never counts).
pub(crate) struct PreemptedByList(pub(crate) Arc<Tasks>);

#[vtable]
impl Node for PreemptedByList {
    fn show(&self, out: &mut Text) -> Shown {
        let rows = self.0.preempted_by()?;
        writeln!(
            out,
            "{:>8} {:<16} {:>8} {:<16} {:>10}",
            "PID", "COMM", "BY_PID", "BY_COMM", "COUNT"
        )?;
        for t in rows.iter() {
            let comm = comm_str(&t.comm);
            for (pid, by, count) in t.by.iter() {
                let by = comm_str(by);
                writeln!(
                    out,
                    "{:>8} {:<16} {pid:>8} {by:<16} {count:>10}",
                    t.pid, comm
                )?;
            }
            if t.others != 0 {
                writeln!(
                    out,
                    "{:>8} {:<16} {:>8} {:<16} {:>10}",
                    t.pid, comm, "-", "(others)", t.others
                )?;
            }
        }
        Ok(())
    }
}

/// `preempted_by_exited`: for the attached tasks that have exited, per root (the process that attached
/// them), the tasks that took their CPU when they were preempted, most frequent first.
pub(crate) struct PreemptedByExited(pub(crate) Arc<Tasks>);

#[vtable]
impl Node for PreemptedByExited {
    fn show(&self, out: &mut Text) -> Shown {
        let (roots, replaced) = self.0.preempted_by_exited()?;
        writeln!(
            out,
            "{:>8} {:<16} {:>6} {:>8} {:<16} {:>10}",
            "ROOT", "COMM", "TASKS", "BY_PID", "BY_COMM", "COUNT"
        )?;
        for r in roots.iter().filter(|r| r.root != 0) {
            let comm = comm_str(&r.comm);
            let lead = |out: &mut Text| write!(out, "{:>8} {comm:<16} {:>6} ", r.root, r.tasks);
            for (pid, by, count) in r.by.iter().filter(|p| p.0 != 0) {
                lead(out)?;
                writeln!(out, "{pid:>8} {:<16} {count:>10}", comm_str(by))?;
            }
            if r.others != 0 || r.by.iter().all(|p| p.0 == 0) {
                lead(out)?;
                let what = if r.others != 0 { "(others)" } else { "(none)" };
                writeln!(out, "{:>8} {what:<16} {:>10}", "-", r.others)?;
            }
        }
        if replaced != 0 {
            writeln!(
                out,
                "# {replaced} processes' entries made room for others (the {ROOTS} most recent kept)"
            )?;
        }
        Ok(())
    }
}

/// `attach`: the writing task writes `attach` to attach itself (and the tasks it creates from then
/// on), `detach` to detach itself; anything else is `-EINVAL`.
pub(crate) struct Attach(pub(crate) Arc<Tasks>);

#[vtable]
impl Node for Attach {
    fn store(&self, input: &[u8], writer: &Current<'_>) -> Result {
        let by_pid = |rest: &[u8], attach: bool| -> Result {
            let pid = parse_count(rest)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or(EINVAL)?;
            match self.0.queue_pid(pid, attach) {
                Err(e) if e == EPERM => {
                    warn_ratelimited!(
                        "attach: {pid} is a kernel thread: only user tasks can be attached\n"
                    );
                    Err(e)
                }
                r => r.map(|_| ()),
            }
        };
        let r = match line(input) {
            b"attach" => self.0.attach_current(writer),
            b"detach" => self.0.detach_current(writer),
            l => match (l.strip_prefix(b"attach "), l.strip_prefix(b"detach ")) {
                (Some(pid), _) => by_pid(pid, true),
                (_, Some(pid)) => by_pid(pid, false),
                _ => Err(EINVAL),
            },
        };
        if r == Err(EINVAL) {
            warn_ratelimited!(
                "attach: expected \"attach\", \"detach\", \"attach PID\" or \"detach PID\", got {} bytes\n",
                input.len()
            );
        }
        r
    }
}
